"""The deploy's dealings with Argo CD operations: wait for a foreign one, terminate the failed release's.

Why: docs/engine-rules.md#argo-cd-operations.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TextIO

from clients.argo_cluster import Applications, ClusterError, Conflict
from deploy.argo_status import (
    Health,
    Operation,
    ReleaseState,
    health,
    operation,
    release_state,
    terminate_patch,
)

POLL_S = 2.0
"""How often the wait reads the Applications again."""
TERMINATE_ATTEMPTS = 3
"""Reads and patches per app when the Application keeps changing under the patch (409)."""


@dataclass(frozen=True)
class Foreign:
    """An operation that did not end within the wait: the deploy stops, nothing changed."""

    operation: Operation
    waited_s: float

    def message(self, key: str, wait_s: int) -> str:
        """The one-line error."""
        op = self.operation
        return (
            f"Argo CD's Application {op.app} has an operation in progress that this deploy did not start "
            f"({op.describe()}); it did not end within {key} ({wait_s} s), so nothing was changed: "
            "let it finish (or `argocd app terminate-op " + op.app + "`), then deploy again"
        )


def wait_for_operations(
    applications: Applications,
    apps: Sequence[str],
    wait_s: float,
    out: TextIO,
    check: Callable[[], None],
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Foreign | None:
    """Wait until no app's Application has an operation in progress; the one still running at the end.

    ClusterError when a read fails. `check` raises when the deploy is interrupted.
    """
    start = clock()
    pending = list(apps)
    told: set[str] = set()
    while True:
        running: list[Operation] = []
        for app in pending:
            found = applications.get(app)
            if found is not None:
                op = operation(app, found)
                if op.in_progress:
                    running.append(op)
        if not running:
            return None
        waited = clock() - start
        if waited >= wait_s:
            return Foreign(running[0], waited)
        for op in running:
            if op.app not in told:
                told.add(op.app)
                out.write(
                    f"deploy: Argo CD's Application {op.app} has an operation in progress ({op.describe()}); "
                    f"waiting for it to end, at most {wait_s:g} s\n"
                )
        pending = [op.app for op in running]
        until = start + min(wait_s, waited + POLL_S)
        while clock() < until:
            check()
            sleep(min(0.2, max(until - clock(), 0.0)))


@dataclass(frozen=True)
class Termination:
    """What the deploy did to one app's operation before the rollback."""

    app: str
    action: str
    """`terminated`, `terminating`, `none` or `failed`."""
    detail: str


def terminate_operations(applications: Applications, apps: Sequence[str]) -> list[Termination]:
    """Terminate each app's running operation as TerminateOperation does; never raises."""
    return [_terminate(applications, app) for app in apps]


def _terminate(applications: Applications, app: str) -> Termination:
    try:
        for _ in range(TERMINATE_ATTEMPTS):
            found = applications.get(app)
            if found is None:
                return Termination(app, "none", "no such Application")
            op = operation(app, found)
            if op.phase == "Terminating":
                return Termination(app, "terminating", op.describe())
            if not op.terminable:
                what = op.describe() if op.in_progress else "no operation in progress"
                return Termination(app, "none", what)
            try:
                applications.merge_patch(app, terminate_patch(found))
            except Conflict:
                continue  # as the server does: read again and retry
            return Termination(app, "terminated", op.describe())
        return Termination(app, "failed", f"the Application kept changing ({TERMINATE_ATTEMPTS} conflicts)")
    except ClusterError as err:
        return Termination(app, "failed", str(err))


def read_health(applications: Applications, app: str) -> Health | None:
    """The app's Degraded objects; None when the Application cannot be read or judged."""
    try:
        found = applications.get(app)
    except ClusterError:
        return None
    return health(found) if found is not None else None


def read_release(applications: Applications, app: str) -> ReleaseState | None:
    """The app's sync, health and release; None when the Application cannot be read."""
    try:
        found = applications.get(app)
    except ClusterError:
        return None
    return release_state(found) if found is not None else None
