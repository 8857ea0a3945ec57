"""The soak's failure rule: failures in a row, or the failed share of a sliding window; times are given."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from model.config_types import SoakConfig


@dataclass(frozen=True)
class Sample:
    """One soak probe: when (seconds since the soak began), whether it passed, and what it saw."""

    at: float
    passed: bool
    latency_ms: float
    label: str
    """One line: `HTTP 503 4 ms`, `timeout 3000 ms`, `Argo CD: OutOfSync`."""


@dataclass(frozen=True)
class Breach:
    """Why the soak failed, in one line, and the failing probes it judged."""

    rule: str
    failures: tuple[Sample, ...]


def percentile(values: Sequence[float], percent: float) -> float:
    """Nearest-rank percentile; 0 without values."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[max(math.ceil(percent / 100 * len(ordered)), 1) - 1]


@dataclass
class Judge:
    """Feed it each probe in order; it says when the soak has failed by `config`'s rules."""

    config: SoakConfig
    samples: list[Sample] = field(default_factory=list)
    _streak: list[Sample] = field(default_factory=list)
    _window: deque[Sample] = field(default_factory=deque)

    def add(self, sample: Sample) -> Breach | None:
        """Record one probe; the Breach once a rule is broken (and on every later probe)."""
        c = self.config
        self.samples.append(sample)
        self._streak = [] if sample.passed else [*self._streak, sample]
        if c.failures_in_a_row and len(self._streak) >= c.failures_in_a_row:
            rule = f"{len(self._streak)} failed probes in a row (failuresInARow {c.failures_in_a_row})"
            return Breach(rule, tuple(self._streak))
        self._window.append(sample)
        while self._window and self._window[0].at <= sample.at - c.window_seconds:
            self._window.popleft()
        # A share is only judged over a whole window: one early blip is never 100 % of it.
        if c.max_error_percent < 100 and sample.at - self.samples[0].at >= c.window_seconds:
            failed = tuple(s for s in self._window if not s.passed)
            share = 100 * len(failed) / len(self._window)
            if share > c.max_error_percent:
                return Breach(
                    f"{len(failed)} of {len(self._window)} probes failed in the last {c.window_seconds} s "
                    f"({share:.0f} % > maxErrorPercent {c.max_error_percent})",
                    failed,
                )
        return None

    @property
    def failures(self) -> tuple[Sample, ...]:
        """Every failed probe so far."""
        return tuple(s for s in self.samples if not s.passed)


def lag_bound(config: SoakConfig) -> float:
    """The longest time from a lasting degradation to the failed verdict, in probe intervals of time.

    In a row: the N-th failing probe comes at most N intervals after it. By share: the window then holds
    more than the share of failures once enough of its probes failed; one interval more for the probe
    that was under way as it began."""
    c = config
    bounds = []
    if c.failures_in_a_row:
        bounds.append(c.failures_in_a_row * c.interval_seconds)
    if c.max_error_percent < 100:
        per_window = max(c.window_seconds // c.interval_seconds, 1)
        needed = math.floor(per_window * c.max_error_percent / 100) + 1
        bounds.append(max(needed * c.interval_seconds, c.window_seconds))
    return float(min(bounds)) if bounds else math.inf
