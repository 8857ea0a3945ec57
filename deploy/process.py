"""Run the Pulumi CLI for the Automation API; pass SIGINT/SIGTERM on to a running `pulumi up`, within bounds.

Why signals are held, forwarded once and escalated: docs/engine-rules.md#signals-and-cancellation.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from queue import SimpleQueue
from types import FrameType
from typing import Literal, TextIO

from pulumi.automation.events import OpType

from deploy.events import Event
from model.errors import GitopsError
from model.health_settings import MAX_BUDGET_SECONDS

SIGNALS = (signal.SIGINT, signal.SIGTERM)
CANCEL_GRACE_S = 30.0
"""After a first SIGINT, how long the CLI may take to cancel before it is told to terminate."""
SIGTERM_GRACE_S = 5.0
"""The same after a first SIGTERM, whose sender usually kills soon after (GitHub: 2.5 s)."""
KILL_AFTER_S = 2.0
"""After the terminate signal, how long before the CLI is killed."""
HOLD_S = 10.0
"""Longest a signal is held while the CLI is outside its cancellation window (then it is passed on)."""
STEP_MARGIN_S = 5.0
"""Added to a provider step's worst case: the provider call's own start-up and reply."""
WORKING_OPS = frozenset(op.value for op in (OpType.CREATE, OpType.UPDATE, OpType.CREATE_REPLACEMENT))
"""The steps in which a provider does its work (a HealthCheck probes), as opposed to deletes or reads."""
UNKNOWN_STEP_BOUND_S = float(MAX_BUDGET_SECONDS)
"""The worst case of a step whose own is not known: the longest check any stack may configure."""

Window = Literal["unknown", "before", "open", "closed"]
"""Where the tracked command stands, by its events: no events to tell, not yet started, running, done."""
StepBound = Callable[[Event], float | None]
"""A step's bounded worst case (s) when its provider ignores a cancel; None otherwise."""


def health_step_bound(worst_cases: Mapping[str, float]) -> StepBound:
    """Each app's HealthCheck (a Python dynamic provider) runs for up to its check's worst case."""

    def bound(step: Event) -> float | None:
        if step.phase != "health" or step.app is None:
            return None
        return worst_cases.get(step.app, UNKNOWN_STEP_BOUND_S)

    return bound


class Interrupted(GitopsError):
    """The deploy was signalled: stop at the next step, restore config, exit with 128 + the signal."""

    def __init__(self, message: str, events: Sequence[Event] = ()) -> None:
        super().__init__(message)
        self.events = list(events)
        """The engine events of the `up` the signal interrupted, for the deploy record."""


class Interrupts:
    """The signals a deploy received, and the one `pulumi up` (or `refresh`) they are forwarded to.

    Shared state changes under a lock; the signal handler itself never takes it."""

    def __init__(
        self,
        out: TextIO,
        *,
        cancel_grace_s: float = CANCEL_GRACE_S,
        sigterm_grace_s: float = SIGTERM_GRACE_S,
        kill_after_s: float = KILL_AFTER_S,
    ) -> None:
        self.out = out
        self.grace: dict[int, float] = {signal.SIGINT: cancel_grace_s, signal.SIGTERM: sigterm_grace_s}
        self.kill_after_s = kill_after_s
        self.received: list[int] = []
        self.terminated = False  # the CLI was told to terminate (or killed): expect a lock
        self.stopped_by_deploy: str | None = None  # why the deploy itself cancelled the command
        self._lock = threading.Lock()
        self._up: subprocess.Popen[str] | None = None
        self._forwarded = 0  # how many of `received` were dealt with
        self._to_cli = 0  # signals the current command got: the first cancels, the next terminates
        self._timers: list[threading.Timer] = []
        self.window: Window = "unknown"  # the command's cancellation window, as its events show it
        self.step_bound: StepBound = lambda _step: None  # provider steps that outlast a cancel
        self._steps: dict[str, float] = {}  # such steps in flight: URN -> when their worst case passed
        self._holding = False
        self._queue: SimpleQueue[int | None] | None = None
        self.clock: Callable[[], float] = time.monotonic
        self.wake = threading.Event()
        """Set once a signal arrived (by the worker thread, not the handler): a deploy's wait ends at once."""

    @property
    def interrupted(self) -> bool:
        """True once a SIGINT or SIGTERM arrived."""
        return bool(self.received)

    @property
    def signal_name(self) -> str:
        """SIGINT or SIGTERM: the first signal received."""
        return signal.Signals(self.received[0]).name if self.received else "no signal"

    @property
    def exit_code(self) -> int:
        """128 + the first signal's number, as a shell reports a process a signal stopped."""
        return 128 + self.received[0] if self.received else 0

    def check(self) -> None:
        """Raise Interrupted when a signal arrived: called before each step of the deploy."""
        if self.received:
            raise Interrupted(signal.Signals(self.received[0]).name)

    @contextlib.contextmanager
    def installed(self) -> Iterator[Interrupts]:
        """Handle SIGINT and SIGTERM for the duration (main thread only)."""
        queue: SimpleQueue[int | None] = SimpleQueue()
        worker = threading.Thread(target=self._decide_each, args=(queue,), name="deploy-signals", daemon=True)
        worker.start()
        self._queue = queue
        previous = {s: signal.signal(s, self._handle) for s in SIGNALS}
        try:
            yield self
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
            queue.put(None)
            worker.join(timeout=HOLD_S)
            self._cancel_timers()

    def _say(self, text: str) -> None:
        """Write a note; never raises (the handler may interrupt the main thread's own write)."""
        with contextlib.suppress(RuntimeError, OSError, ValueError):
            self.out.write(text)
            self.out.flush()

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        # Python runs this on the main thread between any two bytecodes, even inside the main thread's own
        # `with self._lock:`: it only records the signal, and one worker thread decides, in arrival order.
        self.received.append(signum)
        if self._queue is not None:
            self._queue.put(signum)

    def _decide_each(self, queue: SimpleQueue[int | None]) -> None:
        while (signum := queue.get()) is not None:
            self._decide(signum)

    def _decide(self, signum: int) -> None:
        self.wake.set()
        name = signal.Signals(signum).name
        with self._lock:
            if self._up is None:
                # Left for `attach`, should a command start before the deploy checks again.
                self._say(f"deploy: {name} received; stopping after the current step\n")
                return
            if self.window in ("before", "closed") and not self._holding:
                self._hold(name)
                return
            self._say(f"deploy: {name} received; passing it to the Pulumi CLI\n")
            self._forward()

    def _hold(self, name: str) -> None:
        """Keep a signal from a CLI outside its cancellation window, within HOLD_S (lock held)."""
        self._holding = True
        until = (
            "until the Pulumi CLI's update is under way"
            if self.window == "before"
            else "while the Pulumi CLI saves the finished update"
        )
        self._say(
            f"deploy: {name} received; holding it {until} (outside the update a signal kills the CLI and "
            "leaves the stack locked)\n"
        )
        self._later(HOLD_S, self._release, self._up)

    def _release(self, process: subprocess.Popen[str] | None) -> None:
        with self._lock:
            if process is self._up and self._holding:
                self._say(
                    f"deploy: the Pulumi CLI stayed outside its update for {HOLD_S:.0f} s; "
                    "passing the signal on\n"
                )
                self._forward()

    def attach(self, process: subprocess.Popen[str], *, streams_events: bool = False) -> None:
        """Track the running command; a signal that came just before it started is passed on at once,
        or, for a command whose events show its cancellation window, once that window opens."""
        with self._lock:
            self._up = process
            self._to_cli = 0
            self.stopped_by_deploy = None
            self.window = "before" if streams_events else "unknown"
            self._steps = {}
            self._holding = False
            if self._forwarded < len(self.received):
                if self.window == "before":
                    self._hold(signal.Signals(self.received[self._forwarded]).name)
                else:
                    self._forward(pending=True)

    def detach(self) -> None:
        """The command exited: nothing to forward to any more."""
        with self._lock:
            self._up = None
            self._forwarded = len(self.received)
            self.window = "unknown"
            self._holding = False
        self._cancel_timers()

    def on_event(self, event: Event) -> None:
        """Follow the running command's engine events (from the Automation API's event thread)."""
        with self._lock:
            if self._up is None:
                return
            if self.window == "before":
                self.window = "open"
                if self._holding:
                    self._say("deploy: the Pulumi CLI's update has started; passing the signal on\n")
                    self._forward()
            if event.kind in ("summary", "cancel"):
                self.window = "closed"
            # A provider step that outlasts a cancel is noted as it starts, and forgotten as it ends.
            if event.kind == "pre" and event.op in WORKING_OPS:
                bound = self.step_bound(event)
                if bound is not None:
                    self._steps[event.urn] = self.clock() + bound + STEP_MARGIN_S
            elif event.kind in ("outputs", "failed"):
                self._steps.pop(event.urn, None)

    def stop(self, why: str) -> bool:
        """Cancel the running command as a first Ctrl-C would, for the deploy's own reason (then go on);
        False when nothing is running or the command was already signalled."""
        with self._lock:
            process = self._up
            if process is None or self._to_cli or process.poll() is not None:
                return False
            if self.window in ("before", "closed"):
                # Not started, or done: a signal would only kill the CLI, with the lock held.
                return False
            self.stopped_by_deploy = why
            self._say(f"deploy: {why}; cancelling the update, as a first Ctrl-C would\n")
            self._signal(process, signal.SIGINT)
            return True

    def _forward(self, *, pending: bool = False) -> None:
        """Pass each signal received, and not dealt with yet, on to the command (lock held)."""
        process = self._up
        self._holding = False
        if process is not None and self.window in ("before", "closed"):
            self.terminated = True  # it dies of the signal where it stands: expect a lock
        while process is not None and self._forwarded < len(self.received):
            signum = self.received[self._forwarded]
            self._forwarded += 1
            if pending:
                self._say(
                    f"deploy: {signal.Signals(signum).name} came as the command started; passing it on\n"
                )
            self._signal(process, signum)

    def _signal(self, process: subprocess.Popen[str], signum: int) -> None:
        """The first signal cancels (then a grace period), any later one terminates (lock held)."""
        if self._to_cli == 0:
            self._to_cli = 1
            _send(process, signum)
            self._later(self.grace.get(signum, SIGTERM_GRACE_S), self._escalate, process, signum)
        else:
            self._terminate(process, signum)

    def _escalate(self, process: subprocess.Popen[str], signum: int) -> None:
        with self._lock:
            now = self.clock()
            waiting = {urn: end - now for urn, end in self._steps.items() if end > now}
            if waiting and process is self._up and process.poll() is None:
                wait = max(waiting.values())
                names = ", ".join(sorted(urn.split("::")[-1] for urn in waiting))
                self._say(
                    f"deploy: {names} still within its worst case (its provider ignores a cancel); "
                    f"telling the Pulumi CLI to stop in {wait:.0f} s at the latest\n"
                )
                self._later(wait, self._escalate, process, signum)
                return
            self._terminate(process, signum)

    def _terminate(self, process: subprocess.Popen[str], signum: int) -> None:
        """Tell the command to stop now (lock held); kill it if it still runs after `kill_after_s`."""
        if process is not self._up or process.poll() is not None or self.terminated:
            return
        self.terminated = True
        self._to_cli += 1
        self._say("deploy: telling the Pulumi CLI to stop now (operations in flight stay pending)\n")
        _send(process, signum)
        self._later(self.kill_after_s, self._kill, process)

    def _kill(self, process: subprocess.Popen[str]) -> None:
        if process.poll() is None:
            self._say("deploy: the Pulumi CLI did not stop; killing it\n")
            process.kill()

    def _later(self, seconds: float, fn: object, *args: object) -> None:
        timer = threading.Timer(seconds, fn, args)  # type: ignore[arg-type]
        timer.daemon = True
        self._timers.append(timer)
        timer.start()

    def _cancel_timers(self) -> None:
        timers, self._timers = self._timers, []
        for timer in timers:
            timer.cancel()


def _send(process: subprocess.Popen[str], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signum)
