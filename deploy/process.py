"""Run the Pulumi CLI for the Automation API; pass SIGINT/SIGTERM on to a running `pulumi up`, within bounds.

GitHub Actions cancels a step (a manual cancel, or `timeout-minutes`) by sending SIGINT to the step's
process, SIGTERM 7.5 s later and killing it 2.5 s after that (actions/runner src/Runner.Sdk/
ProcessInvoker.cs, `CancelAndKillProcessTree`); only that process is signalled, so the workflow
`exec`s the deploy. The Pulumi CLI cancels on its first SIGINT or SIGTERM and terminates on the
second (pulumi/pulumi pkg/backend/cancellation_scope.go). So the deploy:

- runs each CLI command in a process group of its own, so that a terminal's Ctrl-C reaches only the
  deploy, which forwards it exactly once (the SDK's own runner leaves the CLI in the deploy's group);
- forwards the first signal to a running `up` or `refresh` (a graceful cancel), and escalates with a
  second one (terminate) after a grace period, or at once on a second signal; SIGKILL comes last;
- cancels a running `up` the same way for its own reasons (`Interrupts.stop`: an app Degraded for the
  grace period), and then goes on;
- keeps its main thread able to run signal handlers while it waits (`wait_awake`);
- never signals the short `pulumi config` commands that restore the stack's config afterwards;
- handles SIGTERM like SIGINT, so the cleanup in `finally` always runs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
from collections.abc import Iterator, Mapping, Sequence
from types import FrameType
from typing import Any, TextIO

from pulumi.automation import PulumiCommand
from pulumi.automation._cmd import CommandResult, OnOutput, _fixup_path
from pulumi.automation.errors import create_command_error

SIGNALS = (signal.SIGINT, signal.SIGTERM)
CANCEL_GRACE_S = 30.0
"""After a first SIGINT, how long the CLI may take to cancel before it is told to terminate."""
SIGTERM_GRACE_S = 5.0
"""The same after a first SIGTERM, whose sender usually kills soon after (GitHub: 2.5 s)."""
KILL_AFTER_S = 2.0
"""After the terminate signal, how long before the CLI is killed."""
WAKE_S = 0.1
"""While the main thread waits for the CLI, it wakes this often to run signal handlers (wait_awake)."""
TRACKED = ("up", "refresh")
"""The commands signals are forwarded to: the ones that change the stack and can take minutes."""


class Interrupted(Exception):
    """The deploy was signalled: stop at the next step, restore config, exit with 128 + the signal."""

    def __init__(self, message: str, events: Sequence[Any] = ()) -> None:
        super().__init__(message)
        self.events = list(events)
        """The engine events of the `up` the signal interrupted, for the deploy record."""


class Interrupts:
    """The signals a deploy received, and the one `pulumi up` (or `refresh`) they are forwarded to.

    State shared with the timer threads (escalation, kill, the deploy's own cancel) changes under a
    lock. The main thread takes it only with SIGINT/SIGTERM blocked, so its signal handler never waits
    on a lock its own thread holds.
    """

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
        self.terminated = False
        """The CLI was told to terminate (or killed): expect a lock or pending operations."""
        self.stopped_by_deploy: str | None = None
        """Why the deploy itself cancelled the current command (`stop`), or None."""
        self._lock = threading.Lock()
        self._up: subprocess.Popen[str] | None = None
        self._forwarded = 0
        """How many of `received` were dealt with."""
        self._to_cli = 0
        """How many signals the current command got: the first cancels, the next terminates."""
        self._timers: list[threading.Timer] = []

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
        previous = {s: signal.signal(s, self._handle) for s in SIGNALS}
        try:
            yield self
        finally:
            self._cancel_timers()
            for s, handler in previous.items():
                signal.signal(s, handler)

    def _say(self, text: str) -> None:
        """Write a note; never raises (the handler may interrupt the main thread's own write)."""
        with contextlib.suppress(RuntimeError, OSError, ValueError):
            self.out.write(text)
            self.out.flush()

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        self.received.append(signum)
        name = signal.Signals(signum).name
        with self._lock:
            if self._up is None:
                # Left for `attach`, should a command start before the deploy checks again.
                self._say(f"deploy: {name} received; stopping after the current step\n")
                return
            self._say(f"deploy: {name} received; passing it to the Pulumi CLI\n")
            self._forward()

    def attach(self, process: subprocess.Popen[str]) -> None:
        """Track the running command; a signal that came just before it started is passed on at once."""
        with _signals_blocked(), self._lock:
            self._up = process
            self._to_cli = 0
            self.stopped_by_deploy = None
            if self.received:
                self._forward(pending=True)

    def detach(self) -> None:
        """The command exited: nothing to forward to any more."""
        with _signals_blocked(), self._lock:
            self._up = None
            self._forwarded = len(self.received)
        self._cancel_timers()

    def stop(self, why: str) -> bool:
        """Cancel the running command as a first Ctrl-C would, for the deploy's own reason.

        Not an interrupt: the deploy goes on afterwards (it rolls back). False when nothing is running
        or the command was already signalled.
        """
        with self._lock:
            process = self._up
            if process is None or self._to_cli or process.poll() is not None:
                return False
            self.stopped_by_deploy = why
            self._say(f"deploy: {why}; cancelling the update, as a first Ctrl-C would\n")
            self._signal(process, signal.SIGINT)
            return True

    def _forward(self, *, pending: bool = False) -> None:
        """Pass each signal received, and not dealt with yet, on to the command (lock held)."""
        process = self._up
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


@contextlib.contextmanager
def _signals_blocked() -> Iterator[None]:
    """Hold SIGINT/SIGTERM while the tracked process changes, so the handler never sees it half-set."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def wait_awake(thread: threading.Thread) -> None:
    """Join a thread while staying able to run signal handlers.

    CPython runs a Python signal handler only in the main thread, between bytecodes. The kernel may
    hand a process-directed signal to any thread that does not block it (the output readers, the
    Automation API's gRPC threads); that thread's C handler only flags it, and a main thread asleep in
    an untimed `join` would not look at the flag until the thread ends. For `up`, that is when the CLI
    exits, which it never does without the signal the handler was to forward: a hang.
    """
    while thread.is_alive():
        thread.join(WAKE_S)


def wait_process(process: subprocess.Popen[str]) -> None:
    """`process.wait()`, awake in the same way."""
    while True:
        try:
            process.wait(WAKE_S)
            return
        except subprocess.TimeoutExpired:
            continue


class DeployPulumiCommand(PulumiCommand):
    """The Automation API's PulumiCommand, with each command in its own process group and `up` tracked.

    `run` keeps the contract of `pulumi.automation._cmd.PulumiCommand.run` (SDK 3.272): the same
    `--non-interactive` placement, environment and output handling, and `create_command_error`.
    """

    def __init__(self, interrupts: Interrupts) -> None:
        super().__init__()
        self.interrupts = interrupts

    def run(
        self,
        args: list[str],
        cwd: str,
        additional_env: Mapping[str, str],
        on_output: OnOutput | None = None,
        on_error: OnOutput | None = None,
    ) -> CommandResult:
        """Run one CLI command; raise the Automation API's CommandError (or subclass) when it fails."""
        sep_index = args.index("--") if "--" in args else len(args)
        if "--non-interactive" not in args[:sep_index]:
            args.insert(0, "--non-interactive")
        env = {**os.environ, **additional_env, "PULUMI_AUTOMATION_API": "true"}
        if os.path.isabs(self.command):
            env = _fixup_path(env, os.path.dirname(self.command))
        tracked = len(args) > 1 and args[0] == "--non-interactive" and args[1] in TRACKED
        stdout_chunks: list[str] = []
        stderr_chunks: list[str] = []

        def consume(stream: TextIO, callback: OnOutput | None, chunks: list[str]) -> None:
            for line in iter(stream.readline, ""):
                stripped = line.rstrip()
                if callback:
                    callback(stripped)
                chunks.append(stripped)
            stream.close()

        with subprocess.Popen(
            [self.command, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env=env,
            encoding="utf-8",
            process_group=0,
        ) as process:
            assert process.stdout is not None and process.stderr is not None
            readers = [
                threading.Thread(target=consume, args=(process.stdout, on_output, stdout_chunks)),
                threading.Thread(target=consume, args=(process.stderr, on_error, stderr_chunks)),
            ]
            if tracked:
                self.interrupts.attach(process)
            try:
                for reader in readers:
                    reader.start()
                for reader in readers:
                    wait_awake(reader)
                wait_process(process)
            finally:
                if tracked:
                    self.interrupts.detach()
        result = CommandResult(
            stdout="\n".join(stdout_chunks), stderr="\n".join(stderr_chunks), code=process.returncode
        )
        if process.returncode != 0:
            raise create_command_error(result)
        return result
