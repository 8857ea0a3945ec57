"""Put the stand-in `pulumi` (cli.py) first on PATH for a test, script it, and read what it was asked."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.support.fake_pulumi.cli import lock_path
from tests.support.processes import wait_until

CLI = Path(__file__).resolve().parent / "cli.py"
PROJECT_ROOT = Path(__file__).resolve().parents[3]
FILE_TRANSPORT = "3.205.0"
"""The newest CLI the Automation API gives a file to (`--event-log <path>`)."""
GRPC_TRANSPORT = "3.272.0"
"""A CLI the Automation API streams events to over gRPC (`--event-log tcp://...`)."""


@dataclass(frozen=True)
class Up:
    """One `pulumi up` the fake answered: its argv and the stack's config at that moment."""

    argv: list[str]
    config: dict[str, Any]

    def flag(self, name: str) -> str | None:
        """The value after `name`."""
        return self.argv[self.argv.index(name) + 1] if name in self.argv else None


class FakePulumi:
    """A directory with `bin/pulumi`, the scenario it plays and the log of every call."""

    def __init__(self, root: Path, *, version: str = GRPC_TRANSPORT) -> None:
        self.root = root
        self.bin = root / "bin"
        self.bin.mkdir(parents=True, exist_ok=True)
        exe = self.bin / "pulumi"
        exe.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} {shlex.quote(str(CLI))} "$@"\n')
        exe.chmod(0o755)
        self.scenario: dict[str, Any] = {"version": version, "outputs": {}, "ups": [], "history": []}
        self.write()

    def write(self) -> None:
        """Save the scenario for the next call."""
        (self.root / "scenario.json").write_text(json.dumps(self.scenario, indent=1), encoding="utf-8")

    def play(
        self,
        *ups: Mapping[str, Any],
        outputs: Mapping[str, Any] | None = None,
        history: Sequence[Mapping[str, Any]] = (),
        secrets: Mapping[str, str] | None = None,
        refresh: Mapping[str, Any] | None = None,
        failures: Sequence[Mapping[str, Any]] = (),
        pending: Sequence[Mapping[str, str]] = (),
    ) -> None:
        """Script the `up`s (each {"fixture", "exit", "stderr", "outputs", "pause_before", "drain_s",
        "before_window_s", ...}), the plaintext of secret config values, how a `refresh` ends ({"exit",
        "stderr"}), commands that fail ({"command": argv prefix, "stderr", "exit"}) and the stack's
        pending operations ({"urn", "type": "creating" | "updating" | "deleting"})."""
        self.scenario.update(
            ups=list(ups),
            outputs=dict(outputs or {}),
            history=list(history),
            ups_done=0,
            secrets=dict(secrets or {}),
            refresh=dict(refresh or {}),
            failures=[dict(f) for f in failures],
            pending=[dict(p) for p in pending],
        )
        self.write()

    def state(self) -> dict[str, Any]:
        """The scenario as the calls left it (pending operations, imported resources)."""
        data: dict[str, Any] = json.loads((self.root / "scenario.json").read_text(encoding="utf-8"))
        return data

    def locked(self, stack: str) -> bool:
        """Whether an update left the stack's lock file behind."""
        return lock_path(self.root, stack).exists()

    def usage_errors(self) -> list[str]:
        """The errors of commands the stand-in rejected as the CLI's flag parsing would."""
        return [c["error"] for c in self.calls() if "usage_error" in c]

    def env(self) -> dict[str, str]:
        """The environment a test runs `python -m deploy` with: the fake first on PATH."""
        env = {
            # Nor Actions' variables: a test run in CI must not report to the CI's own repository.
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("PULUMI_", "GITHUB_"))
        }
        env.update(
            PATH=f"{self.bin}{os.pathsep}{os.environ.get('PATH', '')}",
            FAKE_PULUMI_DIR=str(self.root),
            PYTHONPATH=str(PROJECT_ROOT),
            PULUMI_HOME=str(self.root / "home"),
            # No kubeconfig unless a test gives one: the deploy then says it cannot reach Argo CD.
            KUBECONFIG=str(self.root / "no-kubeconfig"),
        )
        return env

    def calls(self) -> list[dict[str, Any]]:
        """Every line of the call log."""
        path = self.root / "calls.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]

    def commands(self) -> list[list[str]]:
        """The argv of every call, without `--non-interactive`."""
        return [[a for a in c["argv"] if a != "--non-interactive"] for c in self.calls() if "argv" in c]

    def ups(self) -> list[Up]:
        """The `up` calls, in order."""
        return [Up(c["up"], c["config"]) for c in self.calls() if "up" in c]

    def refreshes(self) -> list[list[str]]:
        """The URNs each `refresh` targeted, in order."""
        return [c["targets"] for c in self.calls() if "refresh" in c]

    def config_writes(self) -> list[list[str]]:
        """The `pulumi config set/rm/rm-all` calls."""
        return [c for c in self.commands() if c[:1] == ["config"] and c[1:2] in (["set"], ["rm"], ["rm-all"])]

    def signals(self) -> list[str]:
        """The signals the fake CLI received during `up`."""
        return [c["signal"] for c in self.calls() if "signal" in c]

    def killed_outside_window(self) -> list[str]:
        """Signals that reached the CLI outside its cancellation window (each one killed it)."""
        return [c["signal"] for c in self.calls() if c.get("outside_window")]

    def wait_until_logged(self, key: str, timeout: float = 60.0) -> None:
        """Block until the stand-in logged an entry with `key` (a bounded wait)."""
        if not wait_until(lambda: any(key in c for c in self.calls()), timeout=timeout, interval=0.02):
            raise TimeoutError(f"the fake pulumi never logged {key!r}: {self.calls()[-3:]}")

    def unsupported(self) -> list[list[str]]:
        """Calls the fake could not answer (the Automation API asked for something else)."""
        return [c["unsupported"] for c in self.calls() if "unsupported" in c]

    def wait_until_waiting(self, count: int = 1, timeout: float = 60.0) -> None:
        """Block until the fake `up` sits at its `count`-th scripted pause (a bounded wait)."""
        if not wait_until(
            lambda: sum(1 for c in self.calls() if "waiting" in c) >= count, timeout=timeout, interval=0.02
        ):
            raise TimeoutError(f"the fake pulumi up never reached pause {count}: {self.calls()[-3:]}")


def read_config(project: Path, stack: str) -> dict[str, Any]:
    """The `config:` of a stack file."""
    data = yaml.safe_load((project / f"Pulumi.{stack}.yaml").read_text(encoding="utf-8")) or {}
    config = data.get("config") or {}
    assert isinstance(config, dict)
    return config


def run_deploy(
    fake: FakePulumi,
    project: Path,
    *args: str,
    timeout: float = 120.0,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """`python -m deploy up` as a user runs it, against the fake CLI (`env` adds to its environment)."""
    return subprocess.run(
        [sys.executable, "-m", "deploy", "up", "--work-dir", str(project), *args],
        cwd=project,
        env={**fake.env(), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_deploy(fake: FakePulumi, project: Path, *args: str) -> subprocess.Popen[str]:
    """The same, left running (to signal it)."""
    return subprocess.Popen(
        [sys.executable, "-m", "deploy", "up", "--work-dir", str(project), *args],
        cwd=project,
        env=fake.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
