"""What the deploy reads from an Argo CD Application: its operation, and whether the release is Degraded.

Argo CD's rules: docs/engine-rules.md#argo-cd-operations.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from model.release_workload import declared_workload, resource_health_inline

RUNNING = "Running"
TERMINATING = "Terminating"
COMPLETED = frozenset({"Succeeded", "Failed", "Error"})
"""`OperationPhase.Completed`: the phases that end an operation."""
DEGRADED = "Degraded"


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True)
class Operation:
    """An Application's operation as the deploy judges it."""

    app: str
    requested: bool
    """`operation` is set: auto-sync is held."""
    phase: str | None
    """`status.operationState.phase`; None when no operation ever ran."""
    started_at: str | None
    finished_at: str | None
    automated: bool
    username: str | None
    retry_count: int
    message: str

    @property
    def in_progress(self) -> bool:
        """Auto-sync is held, or the controller still runs it."""
        return self.requested or (self.phase is not None and self.phase not in COMPLETED)

    @property
    def started(self) -> bool:
        """The controller runs the requested operation (not the record of an earlier one)."""
        return self.phase in (RUNNING, TERMINATING)

    @property
    def in_backoff(self) -> bool:
        """A failed attempt waiting for its retry."""
        return self.phase == RUNNING and self.finished_at is not None

    @property
    def terminable(self) -> bool:
        """What TerminateOperation accepts, and still running (Terminating is on its way already)."""
        return self.requested and self.phase == RUNNING

    @property
    def initiator(self) -> str:
        """Who started it, in words."""
        if self.username:
            return f"user {self.username}"
        return "Argo CD's automated sync" if self.automated else "an unknown initiator"

    def describe(self) -> str:
        """`phase Running (retry backoff after attempt #2), started <time> by <who>`, one line."""
        if not self.started:
            return f"requested by {self.initiator}, not started yet"
        phase = f"phase {self.phase}"
        if self.in_backoff:
            phase += f" (in its retry backoff after attempt #{self.retry_count})"
        started = self.started_at or "at an unrecorded time"
        return f"{phase}, started {started} by {self.initiator}"


def operation(app: str, application: Mapping[str, Any]) -> Operation:
    """The operation of one Application object (as the API serves it)."""
    requested = _map(application.get("operation"))
    state = _map(_map(application.get("status")).get("operationState"))
    # The request names its initiator; once running, the state's copy of it does too.
    initiated = _map(requested.get("initiatedBy")) or _map(_map(state.get("operation")).get("initiatedBy"))
    retries = state.get("retryCount")
    return Operation(
        app=app,
        requested=bool(requested),
        phase=_text(state.get("phase")),
        started_at=_text(state.get("startedAt")),
        finished_at=_text(state.get("finishedAt")),
        automated=initiated.get("automated") is True,
        username=_text(initiated.get("username")),
        retry_count=retries if isinstance(retries, int) else 0,
        message=_text(state.get("message")) or "",
    )


def terminate_patch(application: Mapping[str, Any]) -> dict[str, Any]:
    """The merge patch that does what TerminateOperation's update does, guarded by the version read."""
    version = _map(application.get("metadata")).get("resourceVersion")
    patch: dict[str, Any] = {"status": {"operationState": {"phase": TERMINATING}}}
    if isinstance(version, str) and version:
        patch["metadata"] = {"resourceVersion": version}
    return patch


@dataclass(frozen=True)
class Health:
    """The Degraded objects of an Application, sorted into the release's workload and the rest."""

    workload: str
    """`namespace/name` of the release's workload."""
    workloads: tuple[str, ...]
    """`Kind/namespace/name` of the release's workload when it is Degraded: the release is Degraded."""
    others: tuple[str, ...]
    """Other Degraded objects (an HPA without metrics, ...): reported only."""

    @property
    def release_degraded(self) -> bool:
        """The workload that runs the release is Degraded."""
        return bool(self.workloads)


def health(application: Mapping[str, Any]) -> Health | None:
    """Judge an Application's `status.resources[]`; None when they cannot say if the release is Degraded."""
    workload = declared_workload(application)
    if workload is None or not resource_health_inline(application):
        return None
    workloads: list[str] = []
    others: list[str] = []
    resources = _map(application.get("status")).get("resources")
    for res in resources if isinstance(resources, list) else []:
        res = _map(res)
        if _map(res.get("health")).get("status") != DEGRADED:
            continue
        where = "/".join(str(p) for p in (res.get("kind") or "?", res.get("namespace"), res.get("name")) if p)
        message = _text(_map(res.get("health")).get("message"))
        named = f"{where} ({message})" if message else where
        (workloads if workload.carries(res) else others).append(named)
    return Health(str(workload), tuple(workloads), tuple(others))


SYNCED, HEALTHY = "Synced", "Healthy"


@dataclass(frozen=True)
class ReleaseState:
    """An Application's sync and health status, and which release it compared (revision and source)."""

    sync: str | None
    health: str | None
    release: str
    """`status.sync.revision(s)` and `status.sync.comparedTo.source(s)`, as one comparable text."""

    def problem(self, first: ReleaseState) -> str | None:
        """Why this read fails a soak probe, against the soak's first read; None when Synced and Healthy on
        the same release."""
        if self.release != first.release:
            return "Argo CD: another release than at the soak's start"
        if self.sync != SYNCED or self.health != HEALTHY:
            return f"Argo CD: {self.sync or 'no sync status'}/{self.health or 'no health status'}"
        return None


def release_state(application: Mapping[str, Any]) -> ReleaseState:
    """The soak's view of one Application object (as the API serves it)."""
    status = _map(application.get("status"))
    sync = _map(status.get("sync"))
    compared = _map(sync.get("comparedTo"))
    release = repr(
        (sync.get("revision"), sync.get("revisions"), compared.get("source"), compared.get("sources"))
    )
    return ReleaseState(_text(sync.get("status")), _text(_map(status.get("health")).get("status")), release)
