"""Per-app phase timings of a deploy, from the events of its `up`s: the release, then any rollback.

When the engine emits what, and why an app's phases add up: docs/engine-rules.md#phase-timings.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise

from pulumi.automation.events import EngineEvent, OpType

from deploy.events import Event, Recognised, bounds, decode
from model.record import PHASES, Phase, PhaseOutcome, PhaseTiming

# Steps that remove or forget a resource: not part of shipping a release, so not timed.
_NOT_WORK = frozenset(
    op.value
    for op in (
        OpType.DELETE,
        OpType.DELETE_REPLACED,
        OpType.DISCARD,
        OpType.DISCARD_REPLACED,
        OpType.REMOVE_PENDING_REPLACE,
        OpType.REFRESH,
    )
)
CHECK_OP = "check"
"""The op recorded for a resource whose provider `check` failed (it never got a step)."""
ROLLBACK_OP = "rollback"


@dataclass(frozen=True)
class AppTimings:
    """One app's phases, in PHASES order; a phase that did not run is absent."""

    app: str
    phases: Mapping[Phase, PhaseTiming]

    @property
    def total(self) -> int:
        """Seconds spent in this app's phases (they run one after another)."""
        return sum(p.seconds for p in self.phases.values())


@dataclass(frozen=True)
class DeployTimings:
    """Every app's phases, and the wall clock of all the `up`s together."""

    apps: tuple[AppTimings, ...]
    start: int | None
    end: int | None

    @property
    def seconds(self) -> int | None:
        """Wall-clock seconds from the first event to the last."""
        return None if self.start is None or self.end is None else self.end - self.start


@dataclass
class _Step:
    """One resource's work within one `up`, as its events show it."""

    urn: str
    found: Recognised | None
    check_start: int
    """When the step generator was free to check it: the previous pre event (or the `up`'s start)."""
    start: int | None = None
    end: int | None = None
    op: str = ""
    outcome: PhaseOutcome = "unfinished"
    checked_out: bool = False
    """It failed in `check` and never got a step."""


def _steps(events: Sequence[Event]) -> dict[str, _Step]:
    """Each resource's work in one `up`, in the order first seen; deletions are left out."""
    span = bounds(events)
    if span is None:
        return {}
    steps: dict[str, _Step] = {}
    last_pre = span.start
    for e in events:
        ts = e.timestamp
        if e.kind == "pre":
            if e.op not in _NOT_WORK:
                step = steps.setdefault(e.urn, _Step(e.urn, _recognised(e), last_pre))
                if step.start is None or step.checked_out:
                    step.start, step.op, step.end, step.checked_out = ts, e.op, None, False
                    step.outcome = "unfinished"
            last_pre = ts
        elif e.kind == "outputs":
            done = steps.get(e.urn)
            if done is not None and e.op not in _NOT_WORK and done.start is not None:
                done.end = ts
                if done.outcome != "failed":
                    done.outcome = "succeeded"
        elif e.kind == "failed":
            failed = steps.setdefault(e.urn, _Step(e.urn, _recognised(e), last_pre, start=ts, op=e.op))
            failed.end, failed.outcome = ts, "failed"
        elif e.error and e.urn and e.urn not in steps:
            # An error before any step: the provider's check refused the inputs.
            steps[e.urn] = _Step(e.urn, _recognised(e), last_pre, last_pre, ts, CHECK_OP, "failed", True)
    for step in steps.values():
        if step.start is not None and step.end is None:
            step.end = span.end
    return steps


def _recognised(e: Event) -> Recognised | None:
    return Recognised(e.phase, None if e.phase == "preflight" else e.app) if e.phase is not None else None


def _timing(step: _Step, start: int) -> PhaseTiming:
    end = step.end if step.end is not None else start
    return PhaseTiming(max(end - start, 0), step.outcome, step.op)


def _app_names(ups: Sequence[Sequence[Event]], extra: Iterable[str]) -> list[str]:
    """Apps in the order the program registered them, then any the caller knows of."""
    names: dict[str, None] = {}
    for events in ups:
        for e in events:
            if e.kind == "pre" and e.app is not None:
                names.setdefault(e.app, None)
    names.update(dict.fromkeys(extra))
    return list(names)


def _release_phases(
    steps: Mapping[str, _Step],
) -> tuple[PhaseTiming | None, dict[str, dict[Phase, PhaseTiming]]]:
    """The stack's preflight, and each app's phases, from the release `up`."""
    preflight: PhaseTiming | None = None
    by_app: dict[str, dict[Phase, PhaseTiming]] = {}
    for step in steps.values():
        found = step.found
        if found is None or step.start is None:
            continue
        if found.phase == "preflight":
            preflight = _timing(step, step.check_start)
        elif found.app is not None:
            by_app.setdefault(found.app, {})[found.phase] = _timing(step, step.start)
    return preflight, by_app


def _rollbacks(
    ups: Sequence[Sequence[Event]], rolled_back: Collection[str], idle: Sequence[int] = ()
) -> dict[str, PhaseTiming]:
    """Per app, the time from the end of the previous `up` to the end of its own steps in a later one,
    less the soak between them (`idle`, per `up`)."""
    result: dict[str, PhaseTiming] = {}
    for index, (previous, events) in enumerate(pairwise(ups), start=1):
        soaked = idle[index] if index < len(idle) else 0
        before, this = bounds(previous), bounds(events)
        if before is None or this is None:
            continue
        worked: dict[str, list[_Step]] = {}
        for step in _steps(events).values():
            found = step.found
            if found is not None and found.app is not None and step.op != OpType.SAME.value:
                worked.setdefault(found.app, []).append(step)
        for app in {*worked, *rolled_back}:
            app_steps = worked.get(app, [])
            if app_steps:
                end = max(s.end if s.end is not None else this.end for s in app_steps)
                outcomes = {s.outcome for s in app_steps}
            else:
                failed = any(e.kind == "failed" or e.error for e in events)
                end, outcomes = this.end, {"failed" if failed else "succeeded"}
            outcome: PhaseOutcome = next(o for o in ("failed", "unfinished", "succeeded") if o in outcomes)
            seconds = max(end - before.end - soaked, 0)
            earlier = result.get(app)
            if earlier is not None:
                seconds += earlier.seconds
                outcome = earlier.outcome if earlier.outcome != "succeeded" else outcome
            result[app] = PhaseTiming(seconds, outcome, ROLLBACK_OP)
    return result


def measure(
    streams: Sequence[Iterable[EngineEvent | Event]],
    *,
    apps: Iterable[str] = (),
    rolled_back: Collection[str] = (),
    idle: Sequence[int] = (),
) -> DeployTimings:
    """Time each app's phases: the release is `ups[0]`, any later `up` is a rollback.

    `apps` adds apps the events may not show; `rolled_back` names apps a later `up` rolled back even if
    none of their steps ran in it; `idle` gives, per `up`, the seconds before it spent soaking.
    """
    ups = [decode(s) for s in streams]
    preflight, by_app = _release_phases(_steps(ups[0])) if ups else (None, {})
    rollbacks = _rollbacks(ups, rolled_back, idle)
    timings = []
    for app in _app_names(ups, [*apps, *rolled_back]):
        own: dict[Phase, PhaseTiming | None] = {**by_app.get(app, {}), "preflight": preflight}
        own["rollback"] = rollbacks.get(app)
        phases = {phase: t for phase in PHASES if (t := own.get(phase)) is not None}
        timings.append(AppTimings(app, phases))
    spans = [b for b in map(bounds, ups) if b is not None]
    start = min(b.start for b in spans) if spans else None
    end = max(b.end for b in spans) if spans else None
    return DeployTimings(tuple(timings), start, end)
