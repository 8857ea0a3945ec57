"""The soak: probe each released app at its interval for its soak time, as its health gate probes, and read
that Argo CD keeps it Synced and Healthy on the same release; stop at the first app that fails, or a signal.

The rule that fails a soak: model/soak.py. What the deploy does with the verdicts: deploy/soak_phase.py.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from clients.health_probe import Probe, probe_client, probe_once, run_fresh
from deploy.argo_status import ReleaseState
from model.config_types import SoakConfig
from model.health_settings import HealthSettings
from model.record import SoakRecord, SoakVerdict
from model.soak import Breach, Judge, Sample, percentile

STOP_POLL_S = 0.02
"""How often a probe in flight looks for a signal: a soak never waits out a probe once signalled."""

ProbeAll = Callable[[Sequence["Target"]], Sequence[Probe | None]]
"""One probe of each target, concurrently; None for a probe a signal cut short."""
ReadRelease = Callable[[str], ReleaseState | None]
"""The app's Application as Argo CD reports it; None when it cannot be read this time."""
Wait = Callable[[float], bool]
"""Wait up to that many seconds; True when a signal ended the wait."""


@dataclass(frozen=True)
class Target:
    """One app to soak: its release, its soak settings, and its gate's probe settings and headers."""

    app: str
    digest: str | None
    soak: SoakConfig
    settings: HealthSettings
    headers: Mapping[str, str] = field(repr=False)
    """The gate's headers (secret values): sent with each probe, never printed."""
    restored: bool = False
    """The release a rollback restored (its soak's failure cannot be rolled back)."""


@dataclass
class Soaked:
    """One app's soak so far."""

    target: Target
    judge: Judge
    started: float
    ended: float
    verdict: SoakVerdict = "not-soaked"
    breach: Breach | None = None
    why: str = ""
    """Why it was not soaked (cut short by a signal or another app's rollback)."""
    first_release: ReleaseState | None = None
    next_at: float = 0.0

    def record(self) -> SoakRecord:
        """What the deploy record keeps of it."""
        samples = self.judge.samples
        failed = self.judge.failures
        latency = [s.latency_ms for s in samples]
        c = self.target.soak
        return SoakRecord(
            digest=self.target.digest, restored=self.target.restored,
            seconds=round(self.ended - self.started), planned_seconds=c.seconds,
            interval_seconds=c.interval_seconds, window_seconds=c.window_seconds,
            probes=len(samples), failures=len(failed),
            latency_ms=(round(percentile(latency, 50), 1), round(percentile(latency, 95), 1),
                        round(max(latency, default=0.0), 1)),
            verdict=self.verdict, reason=self.breach.rule if self.breach else (self.why or None),
            first_failure=_label(failed[0]) if failed else None,
            last_failure=_label(failed[-1]) if failed else None,
        )  # fmt: skip


def _label(sample: Sample) -> str:
    return f"{sample.label} at +{sample.at:.0f} s"


@dataclass(frozen=True)
class Outcome:
    """Every app's soak, and how the soak ended."""

    apps: tuple[Soaked, ...]
    interrupted: bool

    @property
    def failed(self) -> tuple[Soaked, ...]:
        """The apps whose soak failed."""
        return tuple(s for s in self.apps if s.verdict == "failed")

    @property
    def passed(self) -> tuple[Soaked, ...]:
        """The apps whose soak passed."""
        return tuple(s for s in self.apps if s.verdict == "passed")


def _sample(soaked: Soaked, at: float, probe: Probe, read: ReadRelease | None) -> Sample:
    """One probe and, where the cluster answers, Argo CD's word on the release, as one sample."""
    label, passed = probe.short(), probe.passed
    state = read(soaked.target.app) if read is not None else None
    if state is not None:
        soaked.first_release = soaked.first_release or state
        problem = state.problem(soaked.first_release)
        if problem is not None:
            passed, label = False, f"{label}; {problem}"
    return Sample(at, passed, probe.latency_ms, label)


def run_soak(
    targets: Sequence[Target],
    probe_all: ProbeAll,
    read: ReadRelease | None,
    *,
    clock: Callable[[], float],
    wait: Wait,
    stopped: Callable[[], bool],
) -> Outcome:
    """Soak every target at once; the first failed app ends the soak of all (the rest are not soaked)."""
    start = clock()
    soaks = [Soaked(t, Judge(t.soak), start, start, next_at=start) for t in targets]
    active = list(soaks)
    while active and not stopped():
        now = clock()
        due = [s for s in active if s.next_at <= now]
        probes = probe_all([s.target for s in due]) if due else []
        for soaked, probe in zip(due, probes, strict=True):
            if probe is None:
                continue
            sample = _sample(soaked, now - soaked.started, probe, read)
            soaked.ended = clock()
            breach = soaked.judge.add(sample)
            if breach is not None:
                soaked.verdict, soaked.breach = "failed", breach
                return _end(soaks, clock(), "another app's release failed its soak and is rolled back")
            # A probe that outlasts the interval delays the next one rather than bunching them up.
            soaked.next_at = max(soaked.next_at + soaked.target.soak.interval_seconds, clock())
            if soaked.next_at - soaked.started > soaked.target.soak.seconds:
                soaked.verdict = "passed"
                active.remove(soaked)
        if stopped() or not active:
            break
        if wait(max(min(s.next_at for s in active) - clock(), 0.0)):
            break
    interrupted = stopped()
    return Outcome(_end(soaks, clock(), "interrupted by a signal").apps, interrupted)


def _end(soaks: Sequence[Soaked], now: float, why: str) -> Outcome:
    for soaked in soaks:
        if soaked.verdict == "not-soaked":
            soaked.ended, soaked.why = max(soaked.ended, now), why
    return Outcome(tuple(soaks), False)


def http_probes(clock: Callable[[], float], stopped: Callable[[], bool]) -> ProbeAll:
    """The real probes: each target's gate probe (status, latency, timeout, headers, TLS) at once."""
    counts: dict[str, int] = {}

    async def one(target: Target, attempt: int) -> Probe:
        s = target.settings
        async with probe_client(s, None) as client:
            return await probe_once(client, s, target.headers, attempt, s.timeout_seconds, clock)

    async def every(targets: Sequence[Target]) -> Sequence[Probe | None]:
        numbered = []
        for t in targets:
            counts[t.app] = counts.get(t.app, 0) + 1
            numbered.append(asyncio.ensure_future(one(t, counts[t.app])))
        gathered = asyncio.gather(*numbered)
        while not gathered.done():
            if stopped():
                gathered.cancel()
                return [None] * len(targets)
            await asyncio.wait([gathered], timeout=STOP_POLL_S)
        return gathered.result()

    return lambda targets: run_fresh(every(targets))


def monotonic() -> float:
    """The soak's clock."""
    return time.monotonic()
