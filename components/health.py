"""HealthCheck: a dynamic resource that gates a release on its live HTTP endpoint."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pulumi
from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    CreateResult,
    DiffResult,
    Resource,
    ResourceProvider,
    UpdateResult,
)
from pulumi.runtime import rpc

from components.dynamic_inputs import is_unknown
from components.health_budget import worst_case_seconds
from components.health_probe import CheckOutcome, ProbeSettings, check_endpoint
from components.names import HEALTH_CHECK_MODULE, HEALTH_CHECK_NAME

PROVIDER_VERSION = "1"
"""Bump when the probe logic changes: every HealthCheck then re-runs on the next `pulumi up`."""
MAX_BUDGET_SECONDS = 15 * 60
"""Longest worst-case check accepted (matches the config validation)."""

DEFAULTS: dict[str, Any] = {
    "expected_status": 200,
    "max_latency_ms": 200,
    "attempts": 10,
    "interval_seconds": 5.0,
    "timeout_seconds": 5.0,
    "success_threshold": 3,
    "verify_tls": True,
    "trigger": "",
    "provider_version": PROVIDER_VERSION,
}
MAX_COUNT = 1000
"""Most attempts (and so most consecutive passes) one check may ask for."""
INPUTS = ("url", *DEFAULTS, "headers")
DIFF_KEYS = (
    "trigger",
    "url",
    "expected_status",
    "max_latency_ms",
    "attempts",
    "timeout_seconds",
    "success_threshold",
    "verify_tls",
    "provider_version",
)
"""Inputs whose change means a new check; `interval_seconds` (pacing) and `headers` do not."""
OUTPUTS = ("status_code", "attempts_used", "p50_ms", "p95_ms", "max_ms", "checked_at", "report")

_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_HEADER_VALUE = re.compile(r"[\t\x20-\x7e]*")
"""Visible ASCII, space and tab: httpx encodes header values as ASCII and would fail on anything else."""


class HealthCheckFailed(Exception):
    """The endpoint did not pass; the message is the release report (never any header value)."""


def _plain_headers(value: Any) -> dict[str, str]:
    """Headers as a plain dict, whether or not the engine sent them wrapped as a secret."""
    value = rpc.unwrap_rpc_secret(value)
    if not isinstance(value, Mapping):
        return {}
    return {str(k): str(rpc.unwrap_rpc_secret(v)) for k, v in value.items()}


def _number(failures: list[CheckFailure], props: dict[str, Any], key: str, *, whole: bool) -> float | None:
    """A positive finite number (a whole one when `whole`), or a failure naming the property."""
    value = props[key]
    if is_unknown(value):
        return None
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    if ok and whole and (float(value) != int(value) or value > MAX_COUNT):
        ok = False
    if not ok:
        what = f"a whole number from 1 to {MAX_COUNT}" if whole else "a positive number"
        failures.append(CheckFailure(key, f"got {value!r}; expected {what}"))
        return None
    return int(value) if whole else float(value)


def _check_url(failures: list[CheckFailure], url: Any) -> None:
    if is_unknown(url):
        return
    try:
        parsed = httpx.URL(url) if isinstance(url, str) else None
    except httpx.InvalidURL:
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        shown = repr(url) if isinstance(url, str) and "@" not in url else f"a {type(url).__name__}"
        failures.append(CheckFailure("url", f"got {shown}; expected an http:// or https:// URL with a host"))


def _check_status(failures: list[CheckFailure], status: Any) -> None:
    if is_unknown(status):
        return
    number = isinstance(status, int | float) and not isinstance(status, bool) and math.isfinite(status)
    if not (number and status == int(status) and 100 <= status <= 599):
        failures.append(CheckFailure("expected_status", f"got {status!r}; expected an HTTP status 100-599"))


def _check_budget(
    failures: list[CheckFailure],
    attempts: float | None,
    interval: float | None,
    timeout: float | None,
    threshold: float | None,
) -> None:
    """The threshold must be reachable and the worst case at most 15 minutes."""
    if attempts is not None and threshold is not None and threshold > attempts:
        reason = f"got {threshold:g}; expected at most attempts ({attempts:g}): the check could never pass"
        failures.append(CheckFailure("success_threshold", reason))
    if attempts is None or interval is None or timeout is None:
        return
    budget = worst_case_seconds(int(attempts), interval, timeout)
    if budget > MAX_BUDGET_SECONDS:
        reason = (
            f"attempts={attempts:g}, interval_seconds={interval:g}, timeout_seconds={timeout:g} give a "
            f"worst-case check of {budget:.0f} s; expected at most {MAX_BUDGET_SECONDS} s (15 minutes)"
        )
        failures.append(CheckFailure("attempts", reason))


def _check_headers(failures: list[CheckFailure], headers: Any) -> None:
    """Names and value syntax only; a value is never quoted back."""
    if is_unknown(headers):
        return
    raw = rpc.unwrap_rpc_secret(headers)
    if not isinstance(raw, Mapping):
        failures.append(CheckFailure("headers", "expected an object of header name -> string value"))
        return
    for name, value in raw.items():
        value = rpc.unwrap_rpc_secret(value)
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
            failures.append(CheckFailure("headers", f"header name {name!r} is not a valid HTTP token"))
        elif is_unknown(value):
            continue
        elif not isinstance(value, str) or not _HEADER_VALUE.fullmatch(value):
            failures.append(
                CheckFailure(f"headers.{name}", "value must be a string of printable ASCII characters")
            )


def settings_from(props: Mapping[str, Any]) -> ProbeSettings:
    """The probe settings of checked inputs."""
    return ProbeSettings(
        url=str(props["url"]),
        expected_status=int(props["expected_status"]),
        max_latency_ms=float(props["max_latency_ms"]),
        attempts=int(props["attempts"]),
        interval_seconds=float(props["interval_seconds"]),
        timeout_seconds=float(props["timeout_seconds"]),
        success_threshold=int(props["success_threshold"]),
        verify_tls=bool(props["verify_tls"]),
    )


class HealthCheckProvider(ResourceProvider):
    """Probes the endpoint on create and update; holds no state and no client between calls."""

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        """Fill defaults and return one CheckFailure per bad input, naming it."""
        props = {k: v for k, v in news.items() if k in INPUTS}
        for key, default in DEFAULTS.items():
            if props.get(key) is None:
                props[key] = default
        failures: list[CheckFailure] = []
        if "url" not in props:
            failures.append(CheckFailure("url", "missing; expected an http:// or https:// URL"))
        else:
            _check_url(failures, props["url"])
        _check_status(failures, props["expected_status"])
        _number(failures, props, "max_latency_ms", whole=False)
        attempts = _number(failures, props, "attempts", whole=True)
        interval = _number(failures, props, "interval_seconds", whole=False)
        timeout = _number(failures, props, "timeout_seconds", whole=False)
        threshold = _number(failures, props, "success_threshold", whole=True)
        _check_budget(failures, attempts, interval, timeout, threshold)
        if not is_unknown(props["verify_tls"]) and not isinstance(props["verify_tls"], bool):
            failures.append(
                CheckFailure("verify_tls", f"got {props['verify_tls']!r}; expected true or false")
            )
        for key in ("trigger", "provider_version"):
            if not is_unknown(props[key]) and not isinstance(props[key], str):
                failures.append(CheckFailure(key, f"got a {type(props[key]).__name__}; expected a string"))
        if "headers" in props:
            _check_headers(failures, props["headers"])
        return CheckResult(props, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        """A new check only when the trigger, URL, a threshold or the provider version changed."""
        changed = [k for k in DIFF_KEYS if is_unknown(news.get(k)) or olds.get(k) != news.get(k)]
        stables = [k for k in DIFF_KEYS if k not in changed]
        return DiffResult(changes=bool(changed), replaces=[], stables=stables, delete_before_replace=False)

    def create(self, props: dict[str, Any]) -> CreateResult:
        """Run the check; fail with the report unless it passes."""
        return CreateResult(_id(props), self._probe(props))

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        """Run the check again for the new inputs."""
        return UpdateResult(self._probe(news))

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """Nothing to delete: a health check leaves nothing behind."""
        pulumi.log.info("HealthCheck delete: nothing to do, a health check leaves nothing behind")

    def _probe(self, props: dict[str, Any]) -> dict[str, Any]:
        headers = _plain_headers(props.get("headers"))
        # `check` rejects these first; this keeps an httpx encoding error (which quotes part of the
        # value) out of the engine's error message even if a caller skipped `check`.
        bad = sorted(
            k for k, v in headers.items() if not _HEADER_NAME.fullmatch(k) or not _HEADER_VALUE.fullmatch(v)
        )
        if bad:
            raise HealthCheckFailed(f"headers {', '.join(map(repr, bad))}: name or value is not valid HTTP")
        outcome = check_endpoint(settings_from(props), headers)
        if not outcome.passed:
            raise HealthCheckFailed(_scrub(outcome.report(), headers))
        return _outputs(props, outcome, headers)


def _id(props: Mapping[str, Any]) -> str:
    """A stable, non-secret id: the probed URL's host and path."""
    url = httpx.URL(str(props["url"]))
    return f"{url.scheme}://{url.host}{'' if url.port is None else f':{url.port}'}{url.path}"


_SCRUB_MIN_CHARS = 6
"""Shorter values (`1`, `yes`) would mangle the numbers of the report if replaced.

Not a leak: header values never flow into a report, an output or an error (they are built from
statuses, numbers, the failure class names and the password-redacted URL; httpx errors are classed,
never quoted). The scrub only guards that construction; tests prove short values stay out too.
"""


def _scrub(text: str, headers: Mapping[str, str]) -> str:
    """Defence in depth: the report is built from statuses and numbers, but no header value may show."""
    for value in headers.values():
        if len(value) >= _SCRUB_MIN_CHARS:
            text = text.replace(value, "[secret]")
    return text


def _outputs(props: Mapping[str, Any], outcome: CheckOutcome, headers: Mapping[str, str]) -> dict[str, Any]:
    """Echo the non-secret inputs (so Diff sees them) and add the results; headers are never included."""
    echoed = {k: props[k] for k in INPUTS if k != "headers" and k in props}
    return {
        **echoed,
        "status_code": outcome.status_code,
        "attempts_used": outcome.attempts_used,
        "p50_ms": outcome.latency_ms(50),
        "p95_ms": outcome.latency_ms(95),
        "max_ms": outcome.latency_ms(100),
        "checked_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "report": _scrub(outcome.summary(), headers),
    }


@dataclass(frozen=True)
class HealthCheckArgs:
    """Inputs of a HealthCheck; `headers` may be a secret Output and stays secret in state."""

    url: pulumi.Input[str]
    """Endpoint probed with GET (http or https)."""
    expected_status: pulumi.Input[int] = 200
    """Status a passing probe returns (after up to 5 redirects)."""
    max_latency_ms: pulumi.Input[float] = 200
    """Most time to the response headers for a probe to pass."""
    attempts: pulumi.Input[int] = 10
    """Most probes made before the check fails."""
    interval_seconds: pulumi.Input[float] = 5.0
    """First wait between probes; waits after failures back off from it (x1.5, at most 30 s)."""
    timeout_seconds: pulumi.Input[float] = 5.0
    """Bound on one whole probe (connect, headers, capped body read)."""
    success_threshold: pulumi.Input[int] = 3
    """Consecutive passing probes needed."""
    headers: pulumi.Input[Mapping[str, str]] = field(default_factory=dict)
    """Request headers, for example a bearer token; always stored as a secret."""
    verify_tls: pulumi.Input[bool] = True
    """Verify the endpoint's TLS certificate."""
    trigger: pulumi.Input[str] = ""
    """What forces a new check when it changes: the image digest."""


class HealthCheck(Resource, module=HEALTH_CHECK_MODULE, name=HEALTH_CHECK_NAME):
    """Passes once the endpoint answers `expected_status` fast enough, `success_threshold` times in a row."""

    status_code: pulumi.Output[int]
    """Status of the last probe that got a response."""
    attempts_used: pulumi.Output[int]
    """Probes made."""
    p50_ms: pulumi.Output[float]
    """Median latency to the response headers over the passing probes."""
    p95_ms: pulumi.Output[float]
    """95th-percentile latency over the passing probes."""
    max_ms: pulumi.Output[float]
    """Highest latency over the passing probes."""
    checked_at: pulumi.Output[str]
    """When the check passed (UTC, ISO 8601)."""
    report: pulumi.Output[str]
    """A short report: verdict, each probe's result and latency."""

    def __init__(self, name: str, args: HealthCheckArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        props: dict[str, Any] = {
            "url": args.url,
            "expected_status": args.expected_status,
            "max_latency_ms": args.max_latency_ms,
            "attempts": args.attempts,
            "interval_seconds": args.interval_seconds,
            "timeout_seconds": args.timeout_seconds,
            "success_threshold": args.success_threshold,
            "headers": pulumi.Output.secret(args.headers),
            "verify_tls": args.verify_tls,
            "trigger": args.trigger,
            "provider_version": PROVIDER_VERSION,
            **dict.fromkeys(OUTPUTS),
        }
        secret_opts = pulumi.ResourceOptions(additional_secret_outputs=["headers"])
        super().__init__(HealthCheckProvider(), name, props, pulumi.ResourceOptions.merge(secret_opts, opts))
