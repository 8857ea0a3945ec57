"""The probe loop of a health check: bounded HTTP probes with backoff, and the report a person reads."""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from clients import http_bounds
from model.health_settings import PROBE_OVERHEAD_SECONDS, HealthSettings, waits
from model.http_origin import origin, redact_url, redact_urls, show_origin

BODY_LIMIT_BYTES = 64 * 1024
"""Most body bytes read per probe; the rest is never downloaded (the connection is closed)."""
MAX_REDIRECTS = 5
"""Redirects followed in one probe before it counts as a redirect loop."""

T = TypeVar("T")
Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

OK = "ok"
HTTP_5XX = "HTTP 5xx"
WRONG_STATUS = "wrong status"
TOO_SLOW = "too slow"
OFF_ORIGIN = "off-origin"
"""A redirect to another origin (scheme, host or port), which is refused: see `probe_once`."""


@dataclass(frozen=True)
class Probe:
    """One attempt's result."""

    attempt: int
    """1-based attempt number."""
    outcome: str
    """`ok` or the failure class (refused, DNS, timeout, TLS, HTTP 5xx, wrong status, too slow...)."""
    status: int | None
    """Final HTTP status, when a response arrived."""
    latency_ms: float
    """Time to the final response's headers (or to the failure), monotonic clock."""
    body_bytes: int = 0
    """Body bytes read (at most BODY_LIMIT_BYTES)."""
    note: str = ""
    """One line on a failure that its class alone does not explain (a refused redirect's target)."""

    @property
    def passed(self) -> bool:
        """True when this probe counts towards the success threshold."""
        return self.outcome == OK

    def line(self) -> str:
        """One row of the report."""
        status = "-" if self.status is None else str(self.status)
        note = f"  {self.note}" if self.note else ""
        return f"  #{self.attempt:<3} {self.outcome:<16} {status:>6} {self.latency_ms:>9.1f} ms{note}"

    def short(self) -> str:
        """A compact form for the output report."""
        status = "" if self.status is None or self.outcome in (HTTP_5XX, WRONG_STATUS) else f" {self.status}"
        label = f"HTTP {self.status}" if self.outcome in (HTTP_5XX, WRONG_STATUS) else self.outcome
        return f"#{self.attempt} {label}{status} {self.latency_ms:.0f} ms"


@dataclass(frozen=True)
class CheckOutcome:
    """Every probe of a check and its verdict."""

    settings: HealthSettings
    probes: tuple[Probe, ...]
    passed: bool
    elapsed_seconds: float
    verdict: str

    @property
    def attempts_used(self) -> int:
        """Probes made."""
        return len(self.probes)

    @property
    def status_code(self) -> int:
        """Status of the last probe that got a response; 0 if none did."""
        return next((p.status for p in reversed(self.probes) if p.status is not None), 0)

    def latency_ms(self, percentile: float) -> float:
        """Nearest-rank percentile of the passing probes' latency; 0 when none passed."""
        values = sorted(p.latency_ms for p in self.probes if p.passed)
        if not values:
            return 0.0
        rank = max(math.ceil(percentile / 100 * len(values)), 1)
        return round(values[rank - 1], 1)

    def headline(self) -> str:
        """One line: verdict, attempts, time against the budget."""
        s = self.settings
        word = "passed" if self.passed else "FAILED"
        return (
            f"health check GET {redact_url(s.url)} {word} after {self.attempts_used} of {s.attempts} "
            f"attempts in {self.elapsed_seconds:.2f} s (worst case {s.budget_seconds:.1f} s)"
        )

    def summary(self) -> str:
        """The short report kept as an output."""
        probes = "; ".join(p.short() for p in self.probes)
        latency = ""
        if self.passed:
            latency = f"; p50 {self.latency_ms(50):.1f} ms, p95 {self.latency_ms(95):.1f} ms"
        return f"{self.headline()}{latency}\nprobes: {probes}\nverdict: {self.verdict}"

    def report(self) -> str:
        """The full release report: one row per attempt, then the verdict."""
        s = self.settings
        rows = "\n".join(p.line() for p in self.probes)
        return (
            f"{self.headline()}\n"
            f"  passing = HTTP {s.expected_status} within {s.max_latency_ms:g} ms, "
            f"{s.success_threshold} in a row; timeout {s.timeout_seconds:g} s per probe\n"
            f"  {'#':<4} {'result':<16} {'status':>6} {'latency':>12}\n"
            f"{rows}\n"
            f"verdict: {self.verdict}"
        )


async def _read_capped(response: httpx.Response) -> int:
    """Read at most BODY_LIMIT_BYTES of the body, never holding more than one chunk beyond it."""
    total = 0
    async for chunk in response.aiter_raw():
        total += len(chunk)
        if total >= BODY_LIMIT_BYTES:
            return BODY_LIMIT_BYTES
    return total


async def probe_once(
    client: httpx.AsyncClient,
    settings: HealthSettings,
    headers: Mapping[str, str],
    attempt: int,
    limit_seconds: float,
    clock: Clock,
) -> Probe:
    """One probe, all of it bounded by `limit_seconds`; redirects only within the URL's origin, so the
    headers go nowhere else (another origin, https to http included, fails the probe as `off-origin`)."""
    start = clock()
    status: int | None = None
    body = 0
    headers_at: float | None = None
    home = origin(settings.url)

    def elapsed() -> float:
        return ((headers_at if headers_at is not None else clock()) - start) * 1000

    async def exchange() -> Probe | None:
        nonlocal status, body, headers_at
        request = client.build_request("GET", settings.url, headers=dict(headers))
        for _ in range(MAX_REDIRECTS + 1):
            response = await client.send(request, stream=True)
            try:
                target = response.next_request
                if target is None:
                    headers_at, status = clock(), response.status_code
                    body = await _read_capped(response)
                    return None
                if origin(target.url) != home:
                    note = (
                        f"redirect to {show_origin(origin(target.url))} refused: the check follows "
                        f"redirects only within {show_origin(home)}"
                    )
                    return Probe(attempt, OFF_ORIGIN, response.status_code, elapsed(), note=note)
                request = target
            finally:
                await response.aclose()
        return Probe(attempt, http_bounds.REDIRECT_LOOP, None, elapsed())

    try:
        early = await http_bounds.await_within(limit_seconds, exchange(), what="the probe")
    except TimeoutError:
        return Probe(attempt, http_bounds.TIMEOUT, status, elapsed(), body)
    except Exception as exc:  # every failure is a probe result, never an error out of the check
        cause = http_bounds.classify(exc)
        # An exception's text may quote the URL; it is printed as every URL is (no userinfo).
        quiet = (http_bounds.REFUSED, http_bounds.DNS, http_bounds.TLS, http_bounds.CONNECT)
        note = "" if cause.kind in quiet else redact_urls(cause.detail)
        return Probe(attempt, cause.kind, status, elapsed(), body, note=note)
    if early is not None:
        return early
    latency = elapsed()
    if status is not None and status >= 500 and status != settings.expected_status:
        outcome = HTTP_5XX
    elif status != settings.expected_status:
        outcome = WRONG_STATUS
    elif latency > settings.max_latency_ms:
        outcome = TOO_SLOW
    else:
        outcome = OK
    return Probe(attempt, outcome, status, latency, body)


def probe_client(settings: HealthSettings, transport: httpx.AsyncBaseTransport | None) -> httpx.AsyncClient:
    """A fresh connection per probe that follows no redirect itself (a given transport brings its own TLS)."""
    timeout = httpx.Timeout(settings.timeout_seconds)
    if transport is not None:
        return httpx.AsyncClient(transport=transport, timeout=timeout, follow_redirects=False)
    return httpx.AsyncClient(
        verify=settings.verify_tls,
        timeout=timeout,
        follow_redirects=False,
        limits=httpx.Limits(max_keepalive_connections=0),
    )


async def run_check(
    settings: HealthSettings,
    headers: Mapping[str, str] | None = None,
    *,
    clock: Clock = time.monotonic,
    sleep: Sleep = asyncio.sleep,
    transport: httpx.AsyncBaseTransport | None = None,
) -> CheckOutcome:
    """Probe until `success_threshold` consecutive passes, `attempts` run out, or passing is impossible."""
    s = settings
    start = clock()
    deadline = start + s.budget_seconds
    schedule = waits(s.attempts, s.interval_seconds)
    probes: list[Probe] = []
    streak = 0
    verdict = ""
    async with probe_client(s, transport) as client:
        for attempt in range(1, s.attempts + 1):
            limit = min(s.timeout_seconds, deadline - clock() - PROBE_OVERHEAD_SECONDS)
            if limit <= 0:
                verdict = f"failed: the worst-case budget of {s.budget_seconds:.1f} s ran out"
                break
            probe = await probe_once(client, s, headers or {}, attempt, limit, clock)
            probes.append(probe)
            streak = streak + 1 if probe.passed else 0
            if streak >= s.success_threshold:
                verdict = (
                    f"passed: {streak} consecutive probes returned HTTP {s.expected_status} "
                    f"within {s.max_latency_ms:g} ms"
                )
                break
            if s.attempts - attempt < s.success_threshold - streak:
                verdict = _failure_verdict(s, probes, attempt)
                break
            # After a pass, confirm at the interval; after a failure, back off. Both are at most
            # schedule[attempt - 1], so the total stays within worst_case_seconds.
            wait = s.interval_seconds if probe.passed else schedule[attempt - 1]
            await sleep(max(0.0, min(wait, deadline - clock())))
    passed = streak >= s.success_threshold
    return CheckOutcome(s, tuple(probes), passed, clock() - start, verdict)


def _failure_verdict(s: HealthSettings, probes: list[Probe], attempt: int) -> str:
    """Why the check failed, with the most common failure class."""
    failures = [p.outcome for p in probes if not p.passed]
    common = Counter(failures).most_common(1)[0][0] if failures else "none"
    left = s.attempts - attempt
    why = "no attempts left" if left == 0 else f"only {left} attempt(s) left, too few to pass"
    note = f"; {probes[-1].note}" if probes[-1].note else ""
    return (
        f"failed: needed {s.success_threshold} consecutive passing probes; {why} "
        f"(last: {probes[-1].outcome}; most common failure: {common}){note}"
    )


def check_endpoint(
    settings: HealthSettings,
    headers: Mapping[str, str] | None = None,
    *,
    clock: Clock = time.monotonic,
    sleep: Sleep = asyncio.sleep,
    transport: httpx.AsyncBaseTransport | None = None,
) -> CheckOutcome:
    """Run the check on a fresh loop (`run_fresh`)."""
    return run_fresh(run_check(settings, headers, clock=clock, sleep=sleep, transport=transport))


def run_fresh(work: Coroutine[Any, Any, T]) -> T:
    """Run `work` on a fresh loop, closed without waiting for stuck DNS lookups (`asyncio.run` would wait
    for the executor where a resolver that never answers keeps a thread, past the worst-case bound), and
    never made the thread's current loop (so `asyncio.run` does not leave the thread without one)."""
    loop = asyncio.new_event_loop()
    executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="health-dns")
    loop.set_default_executor(executor)
    try:
        return loop.run_until_complete(work)
    finally:
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            executor.shutdown(wait=False, cancel_futures=True)
            loop.close()
