"""See a Degraded release in pulumi-kubernetes' progress reports while `up` waits, and say when to give up.

How the reports reach the deploy (pulumi-kubernetes v4.32, pulumi/pulumi v3.259):

- The Application's wait is pulumi-kubernetes' generic awaiter over the `pulumi.com/waitFor` conditions
  (provider/pkg/await/await.go, internal/awaiter.go). It re-evaluates them on every watch event of the
  object, in order, stopping at the first that does not hold (condition/all.go). For each it logs, as
  the resource's status, `Found <expr>` or `Waiting for <expr> (found "<value>")`, or `<path> selected
  nothing` (condition/jsonpath.go, `Satisfied`), where `<expr>` is the path in braces, `=`, the value
  (jsonpath/jsonpath.go, `Parsed.String`) and `<value>` is Go's `%q` of what it found.
- Status messages go through a DedupLogger (provider/pkg/logging/dedup_logger.go): each distinct
  message is sent once per operation, when first seen. So a status that comes back to a message seen
  before (Degraded, Progressing, Degraded again) is not reported again.
- The provider sends them with `LogStatus` (severity info, ephemeral); the engine turns them into
  diagnostic events naming the Application's URN (pkg/host/host_server.go `Log`, pkg/engine/events.go
  `diagEvent`), which the CLI writes to the event log and the Automation API hands to `on_event` as
  they come (pkg/backend/display/display.go `startEventLogger`).

Our conditions put the release's identity first, then Synced, then the health of the release's
workload (components/argo_wait.py). So a `found "Degraded"` on that condition (the path ending in
`.health.status`, argo_wait's HEALTH_PATH) says that the earlier conditions hold: Argo CD compared the
digest and replica count this update wrote, synced them, and reports the workload that runs them
Degraded (or the app, where Argo CD keeps no resource health on the Application). The wording is
pulumi-kubernetes', so it is matched loosely; a report that does not match is ignored, and the wait
then ends at its timeout as it would without this.

When the deploy can read the Application (clients/argo_cluster.py), the line only triggers a read:
at the end of the grace period the watch asks `judge`, which applies the wait's rule to what it reads
(deploy/argo_status.py `health`): only a Degraded release workload stops the update; one that is no
longer Degraded is kept in `excused` for the report. When the read fails or cannot judge (no resource
health on the Application), the line decides, as it does without cluster access.

"Degraded for the grace period" means: the last status line of that Application has been the Degraded
one for that long. Because of the deduplication, a status that went back to a line seen before in the
same wait (Progressing, then Degraded again) cannot be seen; the grace period is what keeps a short
Degraded spell from stopping a release that recovers.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Protocol

from pulumi.automation.events import EngineEvent

from components.argo_wait import HEALTH_PATH
from deploy.argo_status import Health
from deploy.stream import clean, urn_type
from deploy.timings import recognise
from model.names import APPLICATION_TYPE

# jsonpath.go's three status messages for a condition of the wait.
STATUS_LINE = re.compile(r"^(Waiting for \S|Found \S|\S.*\bselected nothing\b)", re.IGNORECASE)
DEGRADED_LINE = re.compile(
    rf"^Waiting for\s*{HEALTH_PATH.pattern}.*\bfound\s*\W?degraded\W?", re.IGNORECASE | re.DOTALL
)


class Timer(Protocol):
    """What the watch needs of a timer: threading.Timer's start and cancel."""

    def start(self) -> None: ...

    def cancel(self) -> None: ...


def _thread_timer(seconds: float, fn: Callable[[], None]) -> Timer:
    timer = threading.Timer(seconds, fn)
    timer.daemon = True
    return timer


@dataclass(frozen=True)
class Degraded:
    """An app whose Application Argo CD reported Degraded for the whole grace period."""

    app: str
    urn: str
    """The Application's URN."""
    line: str
    """The status line as pulumi-kubernetes wrote it."""
    seconds: float
    """How long it had been Degraded when the deploy gave up on it."""
    workloads: tuple[str, ...] = ()
    """The Degraded workloads the Application listed, when the deploy could read it."""


@dataclass
class _Spell:
    urn: str
    line: str
    since: float
    token: int


class DegradedWatch:
    """Fed every engine event of one `up` (from the Automation API's event thread); calls `on_expired`
    once an app's Application has reported Degraded, and nothing else, for `grace_s` seconds."""

    def __init__(
        self,
        apps: Collection[str],
        grace_s: float,
        on_expired: Callable[[Degraded], None],
        *,
        clock: Callable[[], float] = time.monotonic,
        timer: Callable[[float, Callable[[], None]], Timer] = _thread_timer,
        judge: Callable[[str], Health | None] | None = None,
    ) -> None:
        self.apps = frozenset(apps)
        self.grace_s = grace_s
        self.on_expired = on_expired
        self.clock = clock
        self.timer = timer
        self.judge = judge
        self.excused: dict[str, Health] = {}
        """Apps Degraded for the grace period whose workload was not when read: not stopped for."""
        self.expired: dict[str, Degraded] = {}
        """Apps that were Degraded for the grace period, in the order they expired."""
        self.seen: dict[str, str] = {}
        """Apps reported Degraded at some point (the last such line), whether or not they expired."""
        self._spells: dict[str, _Spell] = {}
        self._token = 0
        self._lock = threading.Lock()
        self._timers: list[Timer] = []
        self._closed = False

    def on_event(self, event: EngineEvent) -> None:
        """Follow one event: a status line of an Application, or the start or end of its step."""
        urn, line = _status(event)
        if urn is None:
            urn = _step_urn(event)
            if urn is not None:
                self._clear(urn)
            return
        found = recognise(urn)
        app = found.app if found is not None else None
        if app is None or app not in self.apps:
            return
        if DEGRADED_LINE.search(line):
            self._degraded(app, urn, line)
        elif STATUS_LINE.search(line):
            self._clear(urn)

    def _degraded(self, app: str, urn: str, line: str) -> None:
        with self._lock:
            self.seen[app] = line
            if self._closed or app in self._spells or app in self.expired:
                return
            self._token += 1
            spell = _Spell(urn, line, self.clock(), self._token)
            self._spells[app] = spell
            timer = self.timer(self.grace_s, lambda: self._expire(app, spell.token))
            self._timers.append(timer)
            timer.start()

    def _clear(self, urn: str) -> None:
        with self._lock:
            for app, spell in list(self._spells.items()):
                if spell.urn == urn:
                    del self._spells[app]

    def _expire(self, app: str, token: int) -> None:
        with self._lock:
            spell = self._spells.get(app)
            if self._closed or spell is None or spell.token != token:
                return
            del self._spells[app]
        # A bounded read (clients/argo_cluster.py), outside the lock: the event thread goes on meanwhile.
        judged = self.judge(app) if self.judge is not None else None
        with self._lock:
            if self._closed:
                return
            if judged is not None and not judged.release_degraded:
                self.excused[app] = judged
                return
            workloads = judged.workloads if judged is not None else ()
            found = Degraded(app, spell.urn, spell.line, self.clock() - spell.since, workloads)
            self.expired[app] = found
        self.on_expired(found)

    def close(self) -> None:
        """The `up` ended: no more expiries."""
        with self._lock:
            self._closed = True
            timers, self._timers = self._timers, []
        for timer in timers:
            timer.cancel()


def _status(event: EngineEvent) -> tuple[str | None, str]:
    """(Application URN, text) of a status diagnostic of an Application, else (None, "")."""
    diag = event.diagnostic_event
    if diag is None or not diag.urn or diag.severity == "error":
        return None, ""
    if urn_type(diag.urn) != APPLICATION_TYPE:
        return None, ""
    return diag.urn, clean(diag.message)


def _step_urn(event: EngineEvent) -> str | None:
    """The URN of an Application whose step starts or ends with this event."""
    for payload in (event.resource_pre_event, event.res_outputs_event, event.res_op_failed_event):
        if payload is not None and payload.metadata.type == APPLICATION_TYPE:
            return payload.metadata.urn
    return None
