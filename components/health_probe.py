"""The probe loop of a health check: bounded HTTP probes with backoff, and the report a person reads."""

from __future__ import annotations

import asyncio
import math
import socket
import ssl
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx

from components.health_budget import PROBE_OVERHEAD_SECONDS, waits, worst_case_seconds

BODY_LIMIT_BYTES = 64 * 1024
"""Most body bytes read per probe; the rest is never downloaded (the connection is closed)."""
MAX_REDIRECTS = 5
"""Redirects followed in one probe before it counts as a redirect loop."""

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

OK = "ok"
REFUSED = "refused"
DNS = "DNS"
TIMEOUT = "timeout"
TLS = "TLS"
HTTP_5XX = "HTTP 5xx"
WRONG_STATUS = "wrong status"
TOO_SLOW = "too slow"
REDIRECT_LOOP = "redirect loop"
CONNECT_ERROR = "connect error"
PROTOCOL_ERROR = "protocol error"


@dataclass(frozen=True)
class ProbeSettings:
    """What a check probes and what counts as passing; the provider's inputs, minus headers."""

    url: str
    """Endpoint probed with GET."""
    expected_status: int = 200
    """Status a passing probe returns (after redirects)."""
    max_latency_ms: float = 200
    """Most time to the response headers of a passing probe."""
    attempts: int = 10
    """Most probes made."""
    interval_seconds: float = 5.0
    """First wait between probes; waits after failures back off from it."""
    timeout_seconds: float = 5.0
    """Bound on one probe, from connecting to the capped body read."""
    success_threshold: int = 3
    """Consecutive passing probes needed."""
    verify_tls: bool = True
    """Verify the endpoint's TLS certificate."""

    @property
    def budget_seconds(self) -> float:
        """The worst-case duration of the check; the loop never runs longer."""
        return worst_case_seconds(self.attempts, self.interval_seconds, self.timeout_seconds)


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

    @property
    def passed(self) -> bool:
        """True when this probe counts towards the success threshold."""
        return self.outcome == OK

    def line(self) -> str:
        """One row of the report."""
        status = "-" if self.status is None else str(self.status)
        return f"  #{self.attempt:<3} {self.outcome:<14} {status:>6} {self.latency_ms:>9.1f} ms"

    def short(self) -> str:
        """A compact form for the output report."""
        status = "" if self.status is None or self.outcome in (HTTP_5XX, WRONG_STATUS) else f" {self.status}"
        label = f"HTTP {self.status}" if self.outcome in (HTTP_5XX, WRONG_STATUS) else self.outcome
        return f"#{self.attempt} {label}{status} {self.latency_ms:.0f} ms"


@dataclass(frozen=True)
class CheckOutcome:
    """Every probe of a check and its verdict."""

    settings: ProbeSettings
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
            f"  {'#':<4} {'result':<14} {'status':>6} {'latency':>12}\n"
            f"{rows}\n"
            f"verdict: {self.verdict}"
        )


def redact_url(url: str) -> str:
    """The URL without a userinfo password."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return "<invalid URL>"
    return str(parsed.copy_with(password="***")) if parsed.password else url


def _connect_class(exc: BaseException) -> str:
    """Refused, DNS or TLS, from the exception chain under an httpx.ConnectError."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return TLS
        if isinstance(seen, socket.gaierror):
            return DNS
        if isinstance(seen, ConnectionRefusedError):
            return REFUSED
        seen = seen.__cause__ or seen.__context__
    text = str(exc).lower()
    if "ssl" in text or "certificate" in text:
        return TLS
    if "refused" in text:
        return REFUSED
    return CONNECT_ERROR


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
    settings: ProbeSettings,
    headers: Mapping[str, str],
    attempt: int,
    limit_seconds: float,
    clock: Clock,
) -> Probe:
    """One probe, all of it (connect, redirects, headers, capped body) bounded by `limit_seconds`."""
    start = clock()
    status: int | None = None
    body = 0
    headers_at: float | None = None

    def elapsed() -> float:
        return ((headers_at if headers_at is not None else clock()) - start) * 1000

    try:
        async with asyncio.timeout(limit_seconds):
            request = client.build_request("GET", settings.url, headers=dict(headers))
            for _ in range(MAX_REDIRECTS + 1):
                response = await client.send(request, stream=True)
                try:
                    if response.next_request is None:
                        headers_at, status = clock(), response.status_code
                        body = await _read_capped(response)
                        break
                    request = response.next_request
                finally:
                    await response.aclose()
            else:
                return Probe(attempt, REDIRECT_LOOP, None, elapsed())
    except (TimeoutError, httpx.TimeoutException):
        return Probe(attempt, TIMEOUT, status, elapsed(), body)
    except httpx.ConnectError as exc:
        return Probe(attempt, _connect_class(exc), None, elapsed())
    except httpx.TooManyRedirects:
        return Probe(attempt, REDIRECT_LOOP, None, elapsed())
    except (httpx.HTTPError, httpx.InvalidURL, OSError):
        return Probe(attempt, PROTOCOL_ERROR, status, elapsed(), body)
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


def _client(settings: ProbeSettings, transport: httpx.AsyncBaseTransport | None) -> httpx.AsyncClient:
    """A client that opens a fresh connection per probe and follows no redirects by itself.

    An injected transport brings its own TLS verification and connection limits.
    """
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
    settings: ProbeSettings,
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
    async with _client(s, transport) as client:
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


def _failure_verdict(s: ProbeSettings, probes: list[Probe], attempt: int) -> str:
    """Why the check failed, with the most common failure class."""
    failures = [p.outcome for p in probes if not p.passed]
    common = Counter(failures).most_common(1)[0][0] if failures else "none"
    left = s.attempts - attempt
    why = "no attempts left" if left == 0 else f"only {left} attempt(s) left, too few to pass"
    return (
        f"failed: needed {s.success_threshold} consecutive passing probes; {why} "
        f"(last: {probes[-1].outcome}; most common failure: {common})"
    )


def check_endpoint(
    settings: ProbeSettings,
    headers: Mapping[str, str] | None = None,
    *,
    clock: Clock = time.monotonic,
    sleep: Sleep = asyncio.sleep,
    transport: httpx.AsyncBaseTransport | None = None,
) -> CheckOutcome:
    """Run the check on a fresh event loop that is closed without waiting for stuck DNS lookups.

    `asyncio.run` would wait for the default executor, where a resolver that never answers keeps a
    thread busy long after the probe timed out; that wait would break the worst-case bound.
    """
    loop = asyncio.new_event_loop()
    executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="health-dns")
    loop.set_default_executor(executor)
    try:
        check = run_check(settings, headers, clock=clock, sleep=sleep, transport=transport)
        return loop.run_until_complete(check)
    finally:
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            executor.shutdown(wait=False, cancel_futures=True)
            loop.close()
