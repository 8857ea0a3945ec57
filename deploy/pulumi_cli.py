"""The Automation API's PulumiCommand, with each CLI command in its own process group and `up` tracked.

Why: docs/engine-rules.md#signals-and-cancellation.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Mapping
from typing import TextIO

from pulumi.automation import PulumiCommand
from pulumi.automation._cmd import CommandResult, OnOutput, _fixup_path
from pulumi.automation.errors import create_command_error

from deploy.process import Interrupts

WAKE_S = 0.1
"""While the main thread waits for the CLI, it wakes this often to run signal handlers (wait_awake)."""
TRACKED = ("up", "refresh")
"""The commands signals are forwarded to: the ones that change the stack and can take minutes."""


def wait_awake(thread: threading.Thread) -> None:
    """Join a thread while staying able to run signal handlers (a main thread in `join` runs none)."""
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
    """PulumiCommand with each command in its own process group; `run` keeps the SDK's contract."""

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
        streams_events = "--event-log" in (args[: args.index("--")] if "--" in args else args)
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
                self.interrupts.attach(process, streams_events=streams_events)
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
