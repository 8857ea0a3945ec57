"""Run the Pulumi CLI for the Automation API; pass SIGINT/SIGTERM on to a running `pulumi up`, within bounds.

GitHub Actions cancels a step (a manual cancel, or `timeout-minutes`) by sending SIGINT to the step's
process, SIGTERM 7.5 s later and killing it 2.5 s after that (actions/runner src/Runner.Sdk/
ProcessInvoker.cs, `CancelAndKillProcessTree`); only that process is signalled, so the workflow
`exec`s the deploy. The Pulumi CLI cancels on its first SIGINT or SIGTERM and terminates on the
second (pulumi/pulumi pkg/backend/cancellation_scope.go). So the deploy:

- runs each CLI command in a process group of its own, so that a terminal's Ctrl-C reaches only the
  deploy, which forwards it exactly once (the SDK's own runner leaves the CLI in the deploy's group);
- forwards the first signal to a running `up` (a graceful cancel), and escalates with a second one
  (terminate) after a grace period, or at once on a second signal; SIGKILL comes last;
- never signals the short `pulumi config` commands that restore the stack's config afterwards;
- handles SIGTERM like SIGINT, so the cleanup in `finally` always runs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
from collections.abc import Iterator, Mapping
from types import FrameType
from typing import TextIO

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


class Interrupted(Exception):
    """The deploy was signalled: stop at the next step, restore config, exit with 128 + the signal."""


class Interrupts:
    """The signals a deploy received, and the one `pulumi up` they are forwarded to."""

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
        self._up: subprocess.Popen[str] | None = None
        self._sent = 0
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
            for timer in self._timers:
                timer.cancel()
            for s, handler in previous.items():
                signal.signal(s, handler)

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        self.received.append(signum)
        name = signal.Signals(signum).name
        if self._up is None:
            self.out.write(f"deploy: {name} received; stopping after the current step\n")
            return
        self.out.write(f"deploy: {name} received; passing it to the Pulumi CLI\n")
        self._forward()

    def attach(self, process: subprocess.Popen[str]) -> None:
        """Track the running `up`; a signal that came just before it started is passed on at once."""
        with _signals_blocked():
            self._up = process
            if self.received:
                self._forward()

    def detach(self) -> None:
        """The `up` exited: nothing to forward to any more."""
        with _signals_blocked():
            self._up = None
            for timer in self._timers:
                timer.cancel()

    def _forward(self) -> None:
        """Send the CLI one signal per signal received: the first cancels, the next terminates."""
        process = self._up
        while process is not None and self._sent < len(self.received):
            signum = self.received[self._sent]
            self._sent += 1
            if self._sent == 1:
                _send(process, signum)
                self._later(self.grace.get(signum, SIGTERM_GRACE_S), self._escalate, process, signum)
            else:
                self._escalate(process, signum)

    def _escalate(self, process: subprocess.Popen[str], signum: int) -> None:
        if process.poll() is not None or self.terminated:
            return
        self.terminated = True
        self.out.write("deploy: telling the Pulumi CLI to stop now (operations in flight stay pending)\n")
        _send(process, signum)
        self._later(self.kill_after_s, self._kill, process)

    def _kill(self, process: subprocess.Popen[str]) -> None:
        if process.poll() is None:
            self.out.write("deploy: the Pulumi CLI did not stop; killing it\n")
            process.kill()

    def _later(self, seconds: float, fn: object, *args: object) -> None:
        timer = threading.Timer(seconds, fn, args)  # type: ignore[arg-type]
        timer.daemon = True
        self._timers.append(timer)
        timer.start()


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
        is_up = args[:2] == ["--non-interactive", "up"]
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
            if is_up:
                self.interrupts.attach(process)
            try:
                for reader in readers:
                    reader.start()
                for reader in readers:
                    reader.join()
                process.wait()
            finally:
                if is_up:
                    self.interrupts.detach()
        result = CommandResult(
            stdout="\n".join(stdout_chunks), stderr="\n".join(stderr_chunks), code=process.returncode
        )
        if process.returncode != 0:
            raise create_command_error(result)
        return result
