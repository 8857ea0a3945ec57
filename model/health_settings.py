"""The health check's settings, defined once: each field, its config key, its default and its limits.

The stack config (`HealthConfig`), the provider's inputs (`HealthCheckArgs`, its defaults and its
`check`) and the probe loop all derive from `HealthSettings`.
"""

from __future__ import annotations

import math
from dataclasses import Field, dataclass, field, fields
from typing import Any, Literal

from model.health_budget import worst_case_seconds
from model.http_origin import url_problem

MAX_COUNT = 1000
"""Most attempts (and so most consecutive passes) one check may ask for."""
MAX_BUDGET_SECONDS = 15 * 60
"""Longest worst-case check accepted."""

Kind = Literal["url", "whole", "positive", "bool"]


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
        if self.kind == "positive":
            return "a positive number"
        return "true or false"

    def problem(self, value: Any) -> str | None:
        """Why `value` is not acceptable (without quoting it), or None."""
        if self.kind == "bool":
            return None if isinstance(value, bool) else "not true or false"
        if self.kind == "url":
            if not isinstance(value, str):
                return "not a string"
            return url_problem(value)
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


def limit(name: str) -> Limit:
    """The limit of one setting, by field name."""
    for f in SETTINGS:
        if f.name == name:
            result: Limit = f.metadata["limit"]
            return result
    raise KeyError(name)


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
