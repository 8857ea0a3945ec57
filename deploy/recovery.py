"""A stack that is locked, or still marked as updating: is another update live, and how to recover if not.

The CLI's words and the recovery commands: docs/engine-rules.md#locks-and-recovery.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from pulumi.automation import UpdateSummary

CONFLICT_TEXT = "[409] Conflict: Another update is currently in progress."
DIY_LOCK_TEXT = "the stack is currently locked by"
_LOCK_LINE = re.compile(
    r"^\s*(?P<url>\S.*?): created by (?P<user>[^@\s]+)@(?P<host>\S+) "
    r"\(pid (?P<pid>\d+)\) at (?P<time>\S+)\s*$"
)


@dataclass(frozen=True)
class LockHolder:
    """One lock of a DIY backend, as the CLI describes it."""

    user: str
    host: str
    pid: int
    since: datetime | None


@dataclass(frozen=True)
class Conflict:
    """What blocked the update, and whether another update is really running."""

    kind: Literal["in-progress", "left-over", "unknown"]
    summary: str


def pid_alive(pid: int) -> bool:
    """True when a process with this pid exists on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _utc(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def lock_holders(stderr: str) -> list[LockHolder]:
    """The locks a DIY backend listed in its error."""
    holders = []
    for line in stderr.splitlines():
        match = _LOCK_LINE.match(line)
        if match:
            holders.append(LockHolder(match["user"], match["host"], int(match["pid"]), _utc(match["time"])))
    return holders


def _when(at: datetime | None, now: datetime) -> str:
    if at is None:
        return "an unknown time"
    minutes = max(0, int((now - at).total_seconds() // 60))
    return f"{at.strftime('%Y-%m-%dT%H:%M:%SZ')} ({minutes} min ago)"


IMPORT_URN, IMPORT_ID = "URN", "NAMESPACE/NAME"
"""The runbook's placeholders for a pending create to import: shell-safe, so the line parses as printed."""


def runbook(stack: str) -> list[str]:
    """The commands that bring a stack back after an interrupted update, with what each one does."""
    return [
        f"pulumi cancel --stack {stack} --yes",
        "    only when no update of this stack is running: removes a DIY backend's lock file, or ends",
        "    the update Pulumi Cloud still shows as in progress",
        f"pulumi refresh --stack {stack} --yes --import-pending-creates {IMPORT_URN} "
        f"--import-pending-creates {IMPORT_ID} --clear-pending-creates",
        "    for each pending create of an Application or pull Secret that is in the cluster",
        f"    (kubectl get), one pair of flags: {IMPORT_URN} is its URN, {IMPORT_ID} its id; it stays in",
        "    the state, where a dropped one makes the next up fail with AlreadyExists (pulumi-kubernetes",
        "    v4.29+). --clear-pending-creates drops the other pending creates (the next up creates them",
        "    again) and the refresh settles the other pending operations. With nothing to import, leave",
        "    out the pair. The refresh reads the Kubernetes objects back from the cluster; HealthChecks,",
        "    ImageSizes and docker Images are not read back: their state stays as it is",
        f"python -m deploy up --stack {stack}",
    ]


def explain(
    stderr: str,
    history: Sequence[UpdateSummary] | None,
    *,
    now: datetime,
    stale_after: timedelta,
    hostname: str,
    alive: Callable[[int], bool] = pid_alive,
) -> Conflict:
    """Judge a ConcurrentUpdateError: a live update ("in-progress"), a left-over, or unknown."""
    holders = lock_holders(stderr)
    if DIY_LOCK_TEXT in stderr and holders:
        who = "; ".join(f"{h.user}@{h.host} (pid {h.pid}) since {_when(h.since, now)}" for h in holders)
        if any(h.host == hostname and alive(h.pid) for h in holders):
            return Conflict("in-progress", f"another update of this stack is in progress: locked by {who}")
        stale = all(
            (h.host == hostname and not alive(h.pid))
            or (h.since is not None and now - h.since >= stale_after)
            for h in holders
        )
        if stale:
            return Conflict("left-over", f"the stack is locked by an update that is no longer running: {who}")
        return Conflict("unknown", f"the stack is locked by {who}")
    running = [h for h in history or () if h.result == "in-progress"]
    if running:
        start = running[0].start_time
        since = start if start.tzinfo else start.replace(tzinfo=UTC)
        kind = "an update" if running[0].kind == "update" else f"a `{running[0].kind}`"
        what = f"{kind} started at {_when(since, now)}"
        if now - since < stale_after:
            return Conflict("in-progress", f"another update of this stack is in progress: {what}")
        return Conflict(
            "left-over",
            f"the stack is still marked as updating by {what}, longer than any deploy runs "
            f"({int(stale_after.total_seconds() // 60)} min)",
        )
    return Conflict("unknown", "the backend reports another update of this stack in progress")
