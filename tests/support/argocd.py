"""Argo CD's status vocabulary and the recorded Application sequences in tests/fixtures/argocd/.

The values an Application's status may take, from argoproj/argo-cd v3.5.1 (the mirror):
- `status.sync.status`: pkg/apis/application/v1alpha1/types.go `SyncStatusCode`;
- `status.health.status`, `status.resources[].health.status`: gitops-engine/pkg/health/health.go
  `HealthStatusCode`;
- `status.operationState.phase`: gitops-engine/pkg/sync/common/types.go `OperationPhase`.
The schema (tests/support/argocd_schema.py) types these as plain strings, so they are checked here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "argocd"

SYNC_STATUSES = frozenset({"Synced", "OutOfSync", "Unknown"})
HEALTH_STATUSES = frozenset({"Unknown", "Progressing", "Healthy", "Suspended", "Degraded", "Missing"})
OPERATION_PHASES = frozenset({"Running", "Terminating", "Failed", "Error", "Succeeded"})


@dataclass(frozen=True)
class Step:
    """One observed Application and what the wait must make of it."""

    index: int
    expect: str
    """`done` (the wait ends here) or `waiting`."""
    found: str | None
    """When set, the progress line reports this value (`(found "<value>")`)."""
    application: dict[str, Any]


@dataclass(frozen=True)
class Sequence:
    """A recorded Argo CD status flow for one update."""

    path: Path
    case: str
    app: dict[str, Any]
    """The app as the test's stack config declares it."""
    spec: dict[str, Any]
    """The Application spec the update writes."""
    steps: tuple[Step, ...]

    @property
    def name(self) -> str:
        """The file's stem, for test ids."""
        return self.path.stem


def load(path: Path) -> Sequence:
    """Read one fixture file."""
    data = yaml.safe_load(path.read_text())
    steps = tuple(
        Step(index=i, expect=s["expect"], found=s.get("found"), application=s["application"])
        for i, s in enumerate(data["steps"])
    )
    if any(s.expect not in ("done", "waiting") for s in steps):
        raise ValueError(f"{path}: each step's expect is 'done' or 'waiting'")
    return Sequence(path=path, case=data["case"], app=data["app"], spec=data["spec"], steps=steps)


def sequences() -> list[Sequence]:
    """Every fixture, sorted by name."""
    return [load(p) for p in sorted(FIXTURES.glob("*.yaml"))]


def vocabulary_errors(application: dict[str, Any]) -> list[str]:
    """Status values Argo CD never writes."""
    status = application.get("status") or {}
    errors = []
    if (status.get("sync") or {}).get("status") not in SYNC_STATUSES:
        errors.append(f"status.sync.status {status.get('sync')!r} is not one of {sorted(SYNC_STATUSES)}")
    if (status.get("health") or {}).get("status") not in HEALTH_STATUSES:
        errors.append(f"status.health.status is not one of {sorted(HEALTH_STATUSES)}")
    for i, res in enumerate(status.get("resources") or []):
        health = (res.get("health") or {}).get("status")
        if health is not None and health not in HEALTH_STATUSES:
            errors.append(f"status.resources[{i}].health.status {health!r} is not a health status")
        if res.get("status") not in SYNC_STATUSES:
            errors.append(f"status.resources[{i}].status {res.get('status')!r} is not a sync status")
    op = status.get("operationState")
    if op is not None and op.get("phase") not in OPERATION_PHASES:
        errors.append(
            f"status.operationState.phase {op.get('phase')!r} is not one of {sorted(OPERATION_PHASES)}"
        )
    return errors
