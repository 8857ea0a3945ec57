"""Per-app phase timings of a deploy, from the engine events of its `up`s (the release, then any rollback).

When the engine emits what (pulumi/pulumi v3.259, the source this follows):
- `pkg/resource/deploy/step_executor.go` emits a resource's pre event right before its provider call
  (create, update, ...) and, through `OnResourceStepPost` in `pkg/engine/update.go`, an outputs event
  when that call returns, or an error diagnostic and then a failed-operation event. Pre to outputs is the
  provider's work: the image build and push, the Application's await, the health probes.
- `pkg/resource/deploy/step_generator.go` calls the provider's `check` before the step exists, one
  registration at a time. The registry preflight does its work there (components/registry_preflight.py),
  so its pre event marks the end of that work, and a failed check is an error diagnostic naming the
  resource with no pre event at all. Its start is taken as the previous step's pre event: the step
  generator was free from then on. This also counts the dynamic provider's start-up, which the preflight
  is the first to need.
- Steps run in parallel across apps; within one app the phases follow each other (the build waits for
  the preflight, the size for the digest, the Application for the size, the health check for the
  Application), so an app's phases add up to its own time and apps are timed independently.

Resources are recognised by the type tokens and name suffixes of model/names.py. Timestamps are
whole seconds (see deploy/stream.py), so every duration is too.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Literal

from pulumi.automation.events import EngineEvent, OpType

from deploy.stream import bounds, urn_name, urn_type
from model.names import (
    APP_RELEASE_TYPE,
    APPLICATION_TYPE,
    DOCKER_IMAGE_TYPE,
    HEALTH_CHECK_TYPE,
    IMAGE_SIZE_SUFFIX,
    IMAGE_SIZE_TYPE,
    IMAGE_SUFFIX,
    REGISTRY_PREFLIGHT_TYPE,
    application_resource_name,
    health_check_name,
)

Phase = Literal["preflight", "build", "image-size", "sync", "health", "rollback"]
PHASES: tuple[Phase, ...] = ("preflight", "build", "image-size", "sync", "health", "rollback")
"""Every phase, in the order an app goes through them."""
PHASE_LABELS: Mapping[Phase, str] = {
    "preflight": "credential preflight",
    "build": "image build and push",
    "image-size": "image size",
    "sync": "Application sync wait",
    "health": "health gate",
    "rollback": "rollback",
}
PhaseOutcome = Literal["succeeded", "failed", "unfinished"]
PHASE_OUTCOMES: tuple[PhaseOutcome, ...] = ("succeeded", "failed", "unfinished")

# The docker Image is the AppImage component's child, both named with the image suffix:
# AppRelease `web` -> AppImage `web-image` -> Image `web-image-image` (components/app_release.py).
_BUILD_SUFFIX = f"{IMAGE_SUFFIX}{IMAGE_SUFFIX}"
_APP_PHASES: Mapping[str, tuple[Phase, str]] = {
    DOCKER_IMAGE_TYPE: ("build", _BUILD_SUFFIX),
    IMAGE_SIZE_TYPE: ("image-size", IMAGE_SIZE_SUFFIX),
    APPLICATION_TYPE: ("sync", application_resource_name("")),
    HEALTH_CHECK_TYPE: ("health", health_check_name("")),
}
# Steps that remove or forget a resource: not part of shipping a release (a replaced image's old copy
# is deleted at the very end of the update), so they are not timed.
_NOT_WORK = frozenset(
    {
        OpType.DELETE,
        OpType.DELETE_REPLACED,
        OpType.DISCARD,
        OpType.DISCARD_REPLACED,
        OpType.REMOVE_PENDING_REPLACE,
        OpType.REFRESH,
    }
)
CHECK_OP = "check"
"""The op recorded for a resource whose provider `check` failed (it never got a step)."""
ROLLBACK_OP = "rollback"


@dataclass(frozen=True)
class Recognised:
    """What a resource is to the deploy: the phase it times, and its app (None: the whole stack's)."""

    phase: Phase
    app: str | None


def recognise(urn: str) -> Recognised | None:
    """The phase and app of a resource URN, or None when it times no phase."""
    type_, name = urn_type(urn), urn_name(urn)
    if type_ == REGISTRY_PREFLIGHT_TYPE:
        return Recognised("preflight", None)
    known = _APP_PHASES.get(type_)
    if known is None:
        return None
    phase, suffix = known
    if not name.endswith(suffix) or len(name) == len(suffix):
        return None
    return Recognised(phase, name[: -len(suffix)])


def app_of(urn: str) -> str | None:
    """The app a resource belongs to, when it is one of the timed resources or the AppRelease itself."""
    if urn_type(urn) == APP_RELEASE_TYPE:
        return urn_name(urn)
    found = recognise(urn)
    return found.app if found is not None else None


@dataclass(frozen=True)
class PhaseTiming:
    """How long one phase took, and how it ended."""

    seconds: int
    outcome: PhaseOutcome
    op: str
    """The engine's step (`create`, `update`, `same`, ...), `check` for a failed check, or `rollback`."""


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
    """Timestamp of the first event of the first `up` (None: no events)."""
    end: int | None
    """Timestamp of the last event of the last `up`."""

    @property
    def seconds(self) -> int | None:
        """Wall-clock seconds from the first event to the last."""
        return None if self.start is None or self.end is None else self.end - self.start


@dataclass
class _Step:
    """One resource's work within one `up`, as its events show it."""

    urn: str
    check_start: int
    """When the step generator was free to check it: the previous pre event (or the `up`'s start)."""
    start: int | None = None
    end: int | None = None
    op: str = ""
    outcome: PhaseOutcome = "unfinished"
    checked_out: bool = False
    """It failed in `check` and never got a step."""


def _steps(events: Sequence[EngineEvent]) -> dict[str, _Step]:
    """Each resource's work in one `up`, in the order first seen; deletions are left out."""
    span = bounds(events)
    if span is None:
        return {}
    steps: dict[str, _Step] = {}
    last_pre = span.start
    for event in sorted(events, key=lambda e: e.sequence):
        ts = event.timestamp
        if event.resource_pre_event is not None:
            meta = event.resource_pre_event.metadata
            if meta.op not in _NOT_WORK:
                step = steps.setdefault(meta.urn, _Step(meta.urn, last_pre))
                if step.start is None or step.checked_out:
                    step.start, step.op, step.end, step.checked_out = ts, meta.op.value, None, False
                    step.outcome = "unfinished"
            last_pre = ts
        elif event.res_outputs_event is not None:
            meta = event.res_outputs_event.metadata
            step_done = steps.get(meta.urn)
            if step_done is not None and meta.op not in _NOT_WORK and step_done.start is not None:
                step_done.end = ts
                if step_done.outcome != "failed":
                    step_done.outcome = "succeeded"
        elif event.res_op_failed_event is not None:
            meta = event.res_op_failed_event.metadata
            failed = steps.setdefault(meta.urn, _Step(meta.urn, last_pre, start=ts, op=meta.op.value))
            failed.end, failed.outcome = ts, "failed"
        elif event.diagnostic_event is not None:
            diag = event.diagnostic_event
            if diag.severity == "error" and diag.urn and diag.urn not in steps:
                # An error before any step: the provider's check refused the inputs.
                steps[diag.urn] = _Step(
                    diag.urn,
                    last_pre,
                    start=last_pre,
                    end=ts,
                    op=CHECK_OP,
                    outcome="failed",
                    checked_out=True,
                )
    for step in steps.values():
        if step.start is not None and step.end is None:
            step.end = span.end
    return steps


def _timing(step: _Step, start: int) -> PhaseTiming:
    end = step.end if step.end is not None else start
    return PhaseTiming(max(end - start, 0), step.outcome, step.op)


def _app_names(ups: Sequence[Sequence[EngineEvent]], extra: Iterable[str]) -> list[str]:
    """Apps in the order the program registered them, then any the caller knows of."""
    names: dict[str, None] = {}
    for events in ups:
        for event in events:
            pre = event.resource_pre_event
            if pre is not None:
                app = app_of(pre.metadata.urn)
                if app is not None:
                    names.setdefault(app, None)
    for app in extra:
        names.setdefault(app, None)
    return list(names)


def _release_phases(
    steps: Mapping[str, _Step],
) -> tuple[PhaseTiming | None, dict[str, dict[Phase, PhaseTiming]]]:
    """The stack's preflight, and each app's phases, from the release `up`."""
    preflight: PhaseTiming | None = None
    by_app: dict[str, dict[Phase, PhaseTiming]] = {}
    for step in steps.values():
        found = recognise(step.urn)
        if found is None or step.start is None:
            continue
        if found.phase == "preflight":
            preflight = _timing(step, step.check_start)
        elif found.app is not None:
            by_app.setdefault(found.app, {})[found.phase] = _timing(step, step.start)
    return preflight, by_app


def _has_failure(events: Iterable[EngineEvent]) -> bool:
    return any(
        e.res_op_failed_event is not None
        or (e.diagnostic_event is not None and e.diagnostic_event.severity == "error")
        for e in events
    )


def _rollbacks(ups: Sequence[Sequence[EngineEvent]], rolled_back: Collection[str]) -> dict[str, PhaseTiming]:
    """Per app, the time from the end of the previous `up` to the end of its own steps in a later one."""
    result: dict[str, PhaseTiming] = {}
    for previous, events in pairwise(ups):
        before, this = bounds(previous), bounds(events)
        if before is None or this is None:
            continue
        worked: dict[str, list[_Step]] = {}
        for step in _steps(events).values():
            found = recognise(step.urn)
            if found is not None and found.app is not None and step.op != OpType.SAME.value:
                worked.setdefault(found.app, []).append(step)
        for app in {*worked, *rolled_back}:
            app_steps = worked.get(app, [])
            if app_steps:
                end = max(s.end if s.end is not None else this.end for s in app_steps)
                outcomes = {s.outcome for s in app_steps}
            else:
                end, outcomes = this.end, {"failed" if _has_failure(events) else "succeeded"}
            outcome: PhaseOutcome = next(o for o in ("failed", "unfinished", "succeeded") if o in outcomes)
            seconds = max(end - before.end, 0)
            earlier = result.get(app)
            if earlier is not None:
                seconds += earlier.seconds
                outcome = earlier.outcome if earlier.outcome != "succeeded" else outcome
            result[app] = PhaseTiming(seconds, outcome, ROLLBACK_OP)
    return result


def measure(
    ups: Sequence[Sequence[EngineEvent]],
    *,
    apps: Iterable[str] = (),
    rolled_back: Collection[str] = (),
) -> DeployTimings:
    """Time each app's phases: the release is `ups[0]`, any later `up` is a rollback.

    `apps` adds apps the events may not show (a failed preflight stops before any app registers);
    `rolled_back` names apps a later `up` rolled back even if none of their steps ran in it. An app
    is otherwise rolled back in a later `up` when any of its timed resources did more than `same`.
    """
    preflight, by_app = _release_phases(_steps(ups[0])) if ups else (None, {})
    rollbacks = _rollbacks(ups, rolled_back)
    timings = []
    for app in _app_names(ups, [*apps, *rolled_back]):
        phases: dict[Phase, PhaseTiming] = {}
        own = by_app.get(app, {})
        for phase in PHASES:
            timing = (
                preflight
                if phase == "preflight"
                else rollbacks.get(app)
                if phase == "rollback"
                else own.get(phase)
            )
            if timing is not None:
                phases[phase] = timing
        timings.append(AppTimings(app, phases))
    spans = [b for b in map(bounds, ups) if b is not None]
    start = min(b.start for b in spans) if spans else None
    end = max(b.end for b in spans) if spans else None
    return DeployTimings(tuple(timings), start, end)
