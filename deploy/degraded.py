"""See a Degraded release in pulumi-kubernetes' progress reports while `up` waits, and say when to give up.

How the reports reach the deploy and what "Degraded for the grace period" means:
docs/engine-rules.md#degraded-early-stop.
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
from deploy.events import Event, event
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

    def on_event(self, raw: EngineEvent | Event) -> None:
        """Follow one event: a status line of an Application, or the start or end of its step."""
        e = event(raw)
        if e.type != APPLICATION_TYPE:
            return
        if e.step:
            self._clear(e.urn)
            return
        if e.kind != "diag" or e.severity == "error" or e.app is None or e.app not in self.apps:
            return
        if DEGRADED_LINE.search(e.text):
            self._degraded(e.app, e.urn, e.text)
        elif STATUS_LINE.search(e.text):
            self._clear(e.urn)

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
