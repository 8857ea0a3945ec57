"""A cancelled or timed-out job: SIGINT/SIGTERM reach the deploy, which passes them to the CLI and cleans up.

GitHub Actions signals only the step's process (SIGINT, SIGTERM 7.5 s later, then a kill: actions/runner
ProcessInvoker.cs), so the tests signal only the deploy's pid, as `exec python -m deploy` makes it. The
stand-in CLI runs in its own process group and records every signal it receives: what it gets came
from the deploy. Its scripted `up` pauses where the real engine would be mid-update.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from deploy.process import wait_awake
from deploy.record import read_record
from tests.support.engine_events import read
from tests.support.fake_pulumi import FILE_TRANSPORT, GRPC_TRANSPORT, FakePulumi, read_config, start_deploy
from tests.support.fake_pulumi.fixtures import fake_fixture, project_fixture
from tests.support.fake_pulumi.project import CONFIG, OLD, OUTPUTS, STACK

# `python -m deploy` against the stand-in Pulumi CLI, a subprocess per case: `make test-fast` skips it.
pytestmark = pytest.mark.cli

WAIT_S = 60.0


def _index(fixture: str, text: str, nth: int = 0) -> int:
    """Where in a recorded stream the line containing `text` is."""
    found = [i for i, line in enumerate(read(fixture)) if text in str(line)]
    return found[nth]


fake = fake_fixture(GRPC_TRANSPORT)
"""The stand-in CLI (a current version: events over gRPC)."""
either_fake = fake_fixture(FILE_TRANSPORT, GRPC_TRANSPORT)
"""The stand-in CLI with each event transport."""
project = project_fixture()


def _finish(proc: subprocess.Popen[str]) -> tuple[int, str]:
    """The deploy's exit code and stderr; a deploy still running after WAIT_S is killed and fails the test."""
    try:
        _, stderr = proc.communicate(timeout=WAIT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, stderr = proc.communicate(timeout=WAIT_S)
        pytest.fail(f"the deploy did not end within {WAIT_S} s of its signals; killed it:\n{stderr}")
    return proc.returncode, stderr


def _deploy_signalled(
    fake: FakePulumi, project: Path, signals: Sequence[signal.Signals], *args: str
) -> tuple[int, str]:
    """Start the deploy, send its pid the n-th signal once the stand-in `up` sits at its n-th pause, and
    return its exit code and stderr (bounded waits)."""
    proc = start_deploy(fake, project, "--stack", STACK, *args)
    for pause, signum in enumerate(signals, start=1):
        fake.wait_until_waiting(pause)
        os.kill(proc.pid, signum)
    return _finish(proc)


def test_sigint_mid_update_is_passed_to_the_cli_once_and_nothing_is_rolled_back(
    either_fake: FakePulumi, project: Path
) -> None:
    fake = either_fake
    fake.play(
        {
            "fixture": "cancelled.jsonl",
            "pause_before": [_index("cancelled.jsonl", "stdoutEvent")],
            "exit": 255,
        },
        outputs=OUTPUTS,
    )
    record = project / "record.json"
    code, stderr = _deploy_signalled(fake, project, [signal.SIGINT], "--record", str(record))
    assert code == 128 + signal.SIGINT, stderr
    assert fake.signals() == ["SIGINT"], "forwarded once: a second one would make the CLI terminate"
    assert len(fake.ups()) == 1 and fake.config_writes() == []
    assert read_config(project, STACK) == CONFIG
    assert "deploy: SIGINT received; passing it to the Pulumi CLI" in stderr
    assert "interrupted by SIGINT" in stderr and "pulumi cancel --stack prod --yes" in stderr
    assert "Traceback" not in stderr
    # A cancelled or timed-out job is a failed deploy too, timed up to the cancel; the outputs are not
    # read again.
    written = read_record(record)
    assert (written.outcome, written.cause) == ("failed", "other")
    assert [f.message for f in written.failures] == ["update canceled"], "the engine's own words"
    assert {a.name: a.digest_after for a in written.apps} == {"web": None, "api": None}
    web = next(a for a in written.apps if a.name == "web")
    assert web.phases["sync"].op == "update", "the interrupted update's events are in the record"


def test_sigterm_during_the_rollback_still_removes_the_pins(fake: FakePulumi, project: Path) -> None:
    """GitHub's sequence during the rollback `up`: SIGINT (cancel), then SIGTERM (terminate)."""
    cancelling = _index("terminated.jsonl", "stdoutEvent")
    fake.play(
        {"fixture": "health_failure_web.jsonl", "exit": 255},
        {
            "fixture": "terminated.jsonl",
            "pause_before": [cancelling, cancelling + 1],
            "exit": 8,
            "stderr": "error: update cancelled",
        },
        outputs=OUTPUTS,
    )
    code, stderr = _deploy_signalled(fake, project, [signal.SIGINT, signal.SIGTERM])
    assert code == 128 + signal.SIGINT, stderr
    assert fake.signals() == ["SIGINT", "SIGTERM"]
    _first, rollback = fake.ups()
    assert rollback.config["gitops-deploy:apps"][0]["image"]["pin"] == OLD["web"], "the pins were set"
    assert "gitops-deploy:rollbackId" in rollback.config
    assert read_config(project, STACK) == CONFIG, "and removed after the CLI exited"
    assert fake.config_writes()[-1][:5] == ["config", "rm-all", "--stack", STACK, "--path"]
    assert "the Pulumi CLI was stopped mid-update: the stack may be locked" in stderr
    assert "pulumi refresh --stack prod --yes --clear-pending-creates" in stderr


def test_sigterm_alone_is_handled_like_sigint(fake: FakePulumi, project: Path) -> None:
    fake.play(
        {
            "fixture": "cancelled.jsonl",
            "pause_before": [_index("cancelled.jsonl", "stdoutEvent")],
            "exit": 255,
        },
        outputs=OUTPUTS,
    )
    code, stderr = _deploy_signalled(fake, project, [signal.SIGTERM])
    assert code == 128 + signal.SIGTERM, stderr
    assert fake.signals() == ["SIGTERM"]
    assert read_config(project, STACK) == CONFIG
    assert "interrupted by SIGTERM" in stderr


def test_a_cli_slow_to_cancel_is_told_to_terminate_after_the_grace_period(
    fake: FakePulumi, project: Path
) -> None:
    cancelling = _index("terminated.jsonl", "stdoutEvent")
    fake.play(
        {
            "fixture": "terminated.jsonl",
            "pause_before": [cancelling, cancelling + 1],
            "exit": 8,
            "stderr": "error: update cancelled",
        },
        outputs=OUTPUTS,
    )
    code, stderr = _deploy_signalled(fake, project, [signal.SIGINT], "--cancel-grace", "0.5")
    assert code == 128 + signal.SIGINT, stderr
    assert fake.signals() == ["SIGINT", "SIGINT"], "the deploy sent the second signal itself"
    assert "telling the Pulumi CLI to stop now" in stderr
    assert read_config(project, STACK) == CONFIG


def test_a_cli_that_ignores_signals_is_killed_and_the_config_is_still_restored(
    fake: FakePulumi, project: Path
) -> None:
    cancelling = _index("terminated.jsonl", "stdoutEvent")
    fake.play(
        {"fixture": "health_failure_web.jsonl", "exit": 255},
        {"fixture": "terminated.jsonl", "pause_before": [cancelling], "hang_after": True},
        outputs=OUTPUTS,
    )
    code, stderr = _deploy_signalled(fake, project, [signal.SIGINT], "--cancel-grace", "0.2")
    assert code == 128 + signal.SIGINT, stderr
    assert "the Pulumi CLI did not stop; killing it" in stderr
    assert fake.ups()[1].config["gitops-deploy:apps"][0]["image"]["pin"] == OLD["web"]
    assert read_config(project, STACK) == CONFIG


def test_a_signal_another_thread_takes_still_runs_the_handler_while_the_deploy_waits() -> None:
    """The flake this fixes: the deploy's main thread slept in an untimed join on the CLI's output reader.

    CPython runs a Python signal handler only in the main thread, between bytecodes. The kernel may hand
    a signal sent to the process to any thread that does not block it (here: the output readers, the
    Automation API's gRPC threads); that thread's C-level handler only sets a flag. A main thread asleep
    in `Thread.join()` never looked at it, so the SIGINT was never passed on, and the CLI, waiting for it,
    never exited: a hang until the stand-in's bound. `wait_awake` joins in short steps.
    """
    released: list[bool] = []
    release = threading.Event()
    previous = signal.signal(signal.SIGUSR1, lambda *_: release.set())
    try:
        reader = threading.Thread(target=lambda: released.append(release.wait(WAIT_S)))
        reader.start()
        # The kernel's choice, made here on purpose: the signal goes to the reader, not the main thread.
        signal.pthread_kill(reader.ident or 0, signal.SIGUSR1)
        wait_awake(reader)
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert released == [True], "the handler ran while the main thread waited, and released the reader"
