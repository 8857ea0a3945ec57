"""Read a failed `up` from its events: which apps failed their release gate, and what to pin.

How the engine ends a stream and what a cancellation looks like:
docs/engine-rules.md#the-engines-event-stream.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from pulumi.automation.events import EngineEvent

from deploy.events import INTERRUPTED, Event, app_of, clean, decode, exception_text, urn_name
from deploy.view import APPS_KEY, AppEntry
from model.names import APPLICATION_TYPE, HEALTH_CHECK_TYPE, STACK_TYPE

# A pulumi-kubernetes await that ran out of time (docs/engine-rules.md#failure-causes).
_BECOME_LIVE = "failed to fully initialize or become live: "
_AWAIT_TIMEOUT = re.compile(r"^(timed out waiting for the condition|'[^']*' timed out waiting to be Ready)")
_CLOSING_LINE = re.compile(r"^(update|preview|refresh|destroy) (failed|canceled)$", re.IGNORECASE)
_CANCELED_LINE = re.compile(r"^update canceled$", re.IGNORECASE)
_CANCELLING = re.compile(r"(\^C|SIGTERM) received; (cancelling|terminating)")
_CLI_CANCELLED = re.compile(r"\berror: update cancelled\b")
_PENDING_HEAD = re.compile(r"with (\d+) pending operations from previous deployment")
_PENDING_ITEM = re.compile(r"^\s*\* (\S+), interrupted while (\w+)")


def pin_key(index: int) -> str:
    """The config key that pins the app at `index` of `gitops-deploy:apps` (a `--path` key)."""
    return f"{APPS_KEY}[{index}].image.pin"


@dataclass(frozen=True)
class ResourceFailure:
    """A resource whose operation failed, with the error diagnostics the engine reported for it."""

    urn: str
    type: str
    messages: tuple[str, ...]


@dataclass(frozen=True)
class HealthFailure:
    """An app whose release gate failed: the HealthCheck, an Application whose wait timed out, or one
    Argo CD reported Degraded for the grace period (the deploy stopped its wait); or whose soak failed."""

    app: str
    urn: str
    kind: Literal["health-check", "application", "degraded", "soak"]
    report: str
    """The health report (the failed resource's error text, or the Degraded status line)."""


@dataclass(frozen=True)
class Verdict:
    """What a failed `up` means."""

    health: tuple[HealthFailure, ...]
    other: tuple[str, ...]
    """Failures that are not health failures, one line each: reported as they are, never rolled back."""
    cancelled: bool = False
    """The update was cancelled (a signal to the CLI): never rolled back."""
    interrupted: tuple[str, ...] = ()
    """Operations the deploy's own early stop interrupted (`type name`): the rollback `up` runs them again."""

    @property
    def rollback(self) -> bool:
        """Roll back only a pure health failure: rerunning would hit any other failure again."""
        return bool(self.health) and not self.other and not self.cancelled


def failed_resources(stream: Iterable[EngineEvent | Event]) -> list[ResourceFailure]:
    """Every resource the engine reported as failed, in the order first seen, with its error text."""
    messages: dict[str, list[str]] = {}
    failed: dict[str, str] = {}
    for e in decode(stream):
        if e.error and e.urn and e.text:
            messages.setdefault(e.urn, []).append(e.text)
            failed.setdefault(e.urn, e.type)
        elif e.kind == "failed":
            failed.setdefault(e.urn, e.type)
    return [ResourceFailure(urn, type_, tuple(messages.get(urn, ()))) for urn, type_ in failed.items()]


def is_await_timeout(message: str) -> bool:
    """True when a pulumi-kubernetes error is its await running out of time (see `_AWAIT_TIMEOUT`)."""
    for line in clean(message).splitlines():
        _, found, cause = line.partition(_BECOME_LIVE)
        if found and _AWAIT_TIMEOUT.match(cause.strip()):
            return True
    return False


def _health_failure(failure: ResourceFailure, apps: Iterable[str]) -> HealthFailure | None:
    report = "\n".join(exception_text(m) for m in failure.messages) or "no error text was reported"
    if failure.type == HEALTH_CHECK_TYPE:
        kind: Literal["health-check", "application"] = "health-check"
    elif failure.type == APPLICATION_TYPE and any(is_await_timeout(m) for m in failure.messages):
        kind = "application"
    else:
        return None
    app = app_of(failure.urn, apps)
    return HealthFailure(app, failure.urn, kind, report) if app is not None else None


def was_cancelled(stream: Iterable[EngineEvent | Event], stderr: str = "") -> bool:
    """True when the update was cancelled or terminated by a signal to the CLI."""
    for e in decode(stream):
        if e.kind == "stdout" and _CANCELLING.search(e.text):
            return True
        if e.error and not e.urn and _CANCELED_LINE.match(e.text):
            return True
    return bool(_CLI_CANCELLED.search(stderr))


def classify(
    stream: Iterable[EngineEvent | Event],
    apps: Iterable[str],
    stderr: str = "",
    *,
    degraded: Mapping[str, tuple[str, str]] | None = None,
) -> Verdict:
    """Sort a failed `up`'s failures into health failures (per app) and everything else.

    `degraded` (app -> (Application URN, report)): the apps the deploy itself stopped the update for;
    what that cancel interrupted is `interrupted`, not a failure.
    """
    events, apps = decode(stream), tuple(apps)
    stopped = dict(degraded or {})
    health: list[HealthFailure] = [
        HealthFailure(app, urn, "degraded", report) for app, (urn, report) in stopped.items()
    ]
    other: list[str] = []
    interrupted: list[str] = []
    for failure in failed_resources(events):
        found = _health_failure(failure, apps)
        if found is not None and found.app not in stopped:
            health.append(found)
            continue
        if stopped and failure.type != STACK_TYPE and any(INTERRUPTED.search(m) for m in failure.messages):
            if app_of(failure.urn, apps) not in stopped:
                interrupted.append(f"{failure.type} {urn_name(failure.urn)}")
            continue
        if found is not None:
            continue
        # A check failure already names the resource ("<type> resource '<name>' has a problem: ...").
        own = f"{failure.type} resource '{urn_name(failure.urn)}' "
        messages = [exception_text(m).removeprefix(own) for m in failure.messages]
        if failure.type == STACK_TYPE:
            messages = [m for m in messages if not _CLOSING_LINE.match(m)]
            if not messages:
                continue
        text = "; ".join(messages) or "the operation failed"
        other.append(f"{failure.type} {urn_name(failure.urn)}: {text}")
    for e in events:
        if e.error and not e.urn and e.text and not _CLOSING_LINE.match(e.text):
            other.append(e.text)
        elif e.kind == "policy" and e.severity == "mandatory":
            where = urn_name(e.urn) if e.urn else "the stack"
            other.append(f"policy violation {e.policy} on {where}: {clean(e.text)}")
    cancelled = was_cancelled(events, stderr) and not stopped
    return Verdict(tuple(health), tuple(other), cancelled, tuple(interrupted))


def pending_operations(stream: Iterable[EngineEvent | Event]) -> list[str]:
    """The operations an interrupted update left pending, as the engine warns about them (`urn (op)`)."""
    found: list[str] = []
    for e in decode(stream):
        if e.kind == "diag" and e.severity == "warning" and _PENDING_HEAD.search(e.text):
            for line in e.text.splitlines():
                if item := _PENDING_ITEM.match(line):
                    found.append(f"{item.group(1)} (interrupted while {item.group(2)})")
    return found


def built_digests(stream: Iterable[EngineEvent | Event], apps: Iterable[str]) -> dict[str, str]:
    """Each app's digest that the update pushed, from its docker Image's outputs event."""
    known = set(apps)
    return {e.app: e.digest for e in decode(stream) if e.digest is not None and e.app in known}


@dataclass(frozen=True)
class Pin:
    """Pin one app to its last known good digest for the rollback `up`."""

    app: str
    key: str
    digest: str
    previous: str | None
    """The pin the stack file had before (restored afterwards), usually none."""


@dataclass(frozen=True)
class RollbackPlan:
    """The pins to set, and the failed apps that cannot be rolled back (with why)."""

    pins: tuple[Pin, ...]
    stuck: tuple[str, ...]


def plan_rollback(
    verdict: Verdict,
    good: Mapping[str, str],
    entries: Mapping[str, AppEntry],
    missing: Mapping[str, str] | None = None,
) -> RollbackPlan:
    """Pin each app that failed its health gate to its last known good digest, where there is one and
    the registry still has it (`missing`: app -> why not)."""
    pins: list[Pin] = []
    stuck: list[str] = []
    gone = dict(missing or {})
    for app in dict.fromkeys(f.app for f in verdict.health):
        entry, digest = entries.get(app), good.get(app)
        problem = rollback_problem(app, entry, digest, gone)
        if problem is not None:
            stuck.append(f"{app}: {problem}")
        else:
            assert entry is not None and digest is not None
            pins.append(Pin(app, pin_key(entry.index), digest, entry.pin))
    return RollbackPlan(tuple(pins), tuple(stuck))


def rollback_problem(
    app: str, entry: AppEntry | None, digest: str | None, missing: Mapping[str, str]
) -> str | None:
    """Why this app could not be rolled back, or None when it can."""
    if entry is None:
        return f"not in {APPS_KEY} any more"
    if digest is None:
        return "no last known good digest in the stack's outputs (first deploy?)"
    if entry.repository is not None and digest.split("@", 1)[0] != entry.repository:
        return f"the last known good digest {digest} is not in the configured repository {entry.repository}"
    if app in missing:
        return f"its last known good digest {digest} is gone from the registry ({missing[app]})"
    return None
