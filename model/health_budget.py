"""The worst-case duration of a health check, computable from its inputs alone."""

from __future__ import annotations

BACKOFF_FACTOR = 1.5
"""Each wait between probes is this many times the previous one..."""
MAX_WAIT_SECONDS = 30.0
"""...but never longer than this (or than `interval_seconds`, when that is longer)..."""
MAX_WAIT_INTERVALS = 4.0
"""...nor than this many intervals, so a short interval keeps the detection lag short."""
PROBE_OVERHEAD_SECONDS = 0.5
"""Bound on one probe's work beyond its timeout (reading a capped body, closing the connection)."""


def waits(attempts: int, interval_seconds: float) -> list[float]:
    """The waits between consecutive probes: `attempts - 1` of them, backing off from the interval."""
    cap = max(interval_seconds, min(MAX_WAIT_SECONDS, MAX_WAIT_INTERVALS * interval_seconds))
    return [min(interval_seconds * BACKOFF_FACTOR**k, cap) for k in range(max(attempts - 1, 0))]


def worst_case_seconds(attempts: int, interval_seconds: float, timeout_seconds: float) -> float:
    """Longest a check can take: every probe times out and every wait is taken."""
    probes = attempts * (timeout_seconds + PROBE_OVERHEAD_SECONDS)
    return probes + sum(waits(attempts, interval_seconds))
