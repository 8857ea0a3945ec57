"""The health check's settings, defined and validated once: each field, its config key, default and limits."""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import Field, dataclass, field, fields
from typing import Any, Literal

from model.errors import GitopsError, Problem
from model.http_origin import HEADER_NAME, HEADER_VALUE, redact_url, url_problem

MAX_COUNT = 1000
"""Most attempts (and so most consecutive passes) one check may ask for."""
MAX_BUDGET_SECONDS = 15 * 60
"""Longest worst-case check accepted."""
BACKOFF_FACTOR = 1.5
"""Each wait between probes is this many times the previous one..."""
MAX_WAIT_SECONDS = 30.0
"""...but never longer than this (or than `interval_seconds`, when that is longer)..."""
MAX_WAIT_INTERVALS = 4.0
"""...nor than this many intervals, so a short interval keeps the detection lag short."""
PROBE_OVERHEAD_SECONDS = 0.5
"""Bound on one probe's work beyond its timeout (reading a capped body, closing the connection)."""

Kind = Literal["url", "whole", "positive", "bool"]


def waits(attempts: int, interval_seconds: float) -> list[float]:
    """The waits between consecutive probes: `attempts - 1` of them, backing off from the interval."""
    cap = max(interval_seconds, min(MAX_WAIT_SECONDS, MAX_WAIT_INTERVALS * interval_seconds))
    return [min(interval_seconds * BACKOFF_FACTOR**k, cap) for k in range(max(attempts - 1, 0))]


def worst_case_seconds(attempts: int, interval_seconds: float, timeout_seconds: float) -> float:
    """Longest a check can take: every probe times out and every wait is taken."""
    probes = attempts * (timeout_seconds + PROBE_OVERHEAD_SECONDS)
    return probes + sum(waits(attempts, interval_seconds))


@dataclass(frozen=True)
class Limit:
    """How one setting is named in the stack config and which values it accepts."""

    key: str
    """The camelCase key under an app's `health` in the stack config."""
    kind: Kind
    """`url`, `whole` (a whole number within bounds), `positive` (a positive finite number) or `bool`."""
    minimum: int = 1
    maximum: int = MAX_COUNT

    @property
    def expected(self) -> str:
        """What a valid value looks like, for messages."""
        if self.kind == "url":
            return "an http:// or https:// URL with a host, a port from 1 to 65535 and no userinfo"
        if self.kind == "whole":
            return f"a whole number from {self.minimum} to {self.maximum}"
        return "a positive number" if self.kind == "positive" else "true or false"

    def problem(self, value: Any) -> str | None:
        """Why `value` is not acceptable (without quoting it), or None."""
        if self.kind == "bool":
            return None if isinstance(value, bool) else "not true or false"
        if self.kind == "url":
            return url_problem(value) if isinstance(value, str) else "not a string"
        number = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        if not number:
            return "not a finite number"
        if self.kind == "positive":
            return None if value > 0 else "not positive"
        if value != int(value):
            return "not a whole number"
        return None if self.minimum <= value <= self.maximum else "out of range"


def _setting(default: Any, limit: Limit) -> Any:
    return field(default=default, metadata={"limit": limit})


@dataclass(frozen=True)
class HealthSettings:
    """What a check probes and what counts as passing."""

    url: str = field(metadata={"limit": Limit("url", "url")})
    """Endpoint probed with GET (http or https); redirects are followed only within its origin."""
    expected_status: int = _setting(200, Limit("expectedStatus", "whole", 100, 599))
    """HTTP status a passing probe returns (after same-origin redirects)."""
    max_latency_ms: float = _setting(200, Limit("maxLatencyMs", "positive"))
    """Latency budget of one probe, to the response headers."""
    attempts: int = _setting(6, Limit("attempts", "whole"))
    """Most probes made before the check fails."""
    interval_seconds: float = _setting(4.0, Limit("intervalSeconds", "positive"))
    """First wait between probes; waits after failures back off from it (x1.5, at most 30 s)."""
    timeout_seconds: float = _setting(3.0, Limit("timeoutSeconds", "positive"))
    """Bound on one whole probe (connect, redirects, headers, capped body read)."""
    success_threshold: int = _setting(3, Limit("successThreshold", "whole"))
    """Consecutive passing probes needed."""
    verify_tls: bool = _setting(True, Limit("verifyTls", "bool"))
    """Verify the endpoint's TLS certificate."""

    @property
    def budget_seconds(self) -> float:
        """The worst-case duration of the check; the loop never runs longer."""
        return worst_case_seconds(self.attempts, self.interval_seconds, self.timeout_seconds)


SETTINGS: tuple[Field[Any], ...] = tuple(fields(HealthSettings))
"""Every setting, in declaration order (`url` first)."""
NAMES: tuple[str, ...] = tuple(f.name for f in SETTINGS)
DEFAULTS: dict[str, Any] = {f.name: f.default for f in SETTINGS if f.name != "url"}


class InvalidSettings(GitopsError):
    """Settings that break a limit; the message lists each problem and never quotes a header value."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(map(str, problems)))


def limit(name: str) -> Limit:
    """The limit of one setting, by field name."""
    return next(f.metadata["limit"] for f in SETTINGS if f.name == name)


def cross_problems(
    attempts: float | None, interval: float | None, timeout: float | None, threshold: float | None
) -> list[tuple[str, str, str]]:
    """(field, given, expected) for the rules across settings: a reachable threshold, at most 15 minutes."""
    problems: list[tuple[str, str, str]] = []
    if attempts is not None and threshold is not None and threshold > attempts:
        reason = f"at most attempts ({attempts:g}): the check could never pass"
        problems.append(("success_threshold", f"{threshold:g}", reason))
    if attempts is not None and interval is not None and timeout is not None:
        budget = worst_case_seconds(int(attempts), interval, timeout)
        if budget > MAX_BUDGET_SECONDS:
            given = (
                f"attempts {attempts:g}, interval {interval:g} s, timeout {timeout:g} s "
                f"(worst case {budget:.0f} s)"
            )
            expected = f"a worst-case check time of at most {MAX_BUDGET_SECONDS} s (15 minutes)"
            problems.append(("attempts", given, expected))
    return problems


def problems(values: Mapping[str, Any], unknown: Collection[str] = ()) -> list[Problem]:
    """One Problem per bad setting among `values` (by field name), then the cross rules;
    `unknown` names what a preview does not know yet (a missing `url` is a problem, an unknown one is not)."""
    found: list[Problem] = []
    if "url" not in values and "url" not in unknown:
        found.append(Problem("url", "nothing", limit("url").expected))
    valid: dict[str, Any] = {}
    for name in (n for n in NAMES if n in values):
        value, rule = values[name], limit(name)
        problem = rule.problem(value)
        if problem is None:
            valid[name] = value
        elif name == "url":  # printed as every URL is: userinfo (a token written there) is never shown
            shown = repr(redact_url(value)) if isinstance(value, str) else f"a {type(value).__name__}"
            found.append(Problem(name, f"{shown} ({problem})", rule.expected))
        else:
            found.append(Problem(name, repr(value), rule.expected))
    names = ("attempts", "interval_seconds", "timeout_seconds", "success_threshold")
    found += [Problem(*p) for p in cross_problems(*(valid.get(n) for n in names))]
    return found


def header_problems(headers: Any) -> list[Problem]:
    """The one check of header syntax: names are HTTP tokens, values printable ASCII (never quoted back)."""
    if not isinstance(headers, Mapping):
        return [Problem("headers", f"a {type(headers).__name__}", "an object of header name -> string value")]
    found = [Problem("headers", f"header name {n!r}", "an HTTP token") for n in headers if not _token(n)]
    return found + [
        Problem(f"headers.{n}", f"a value of {n!r} that is not valid HTTP", "printable ASCII text")
        for n, v in headers.items()
        if _token(n) and not (isinstance(v, str) and HEADER_VALUE.fullmatch(v))
    ]


def _token(name: Any) -> bool:
    return isinstance(name, str) and HEADER_NAME.fullmatch(name) is not None


def parse_settings(values: Mapping[str, Any], headers: Mapping[str, str]) -> HealthSettings:
    """Checked settings from loose values (numbers cross the engine as floats); InvalidSettings otherwise."""
    values = {**DEFAULTS, **values}
    found = problems(values) + header_problems(headers)
    if found:
        raise InvalidSettings(found)
    coerce: dict[str, Any] = {"whole": int, "positive": float}
    return HealthSettings(**{n: coerce.get(limit(n).kind, lambda v: v)(values[n]) for n in NAMES})
