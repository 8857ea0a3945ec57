"""A cancelled or timed-out job: SIGINT/SIGTERM reach the deploy, which passes them to the CLI and cleans up.

GitHub Actions signals only the step's process (SIGINT, SIGTERM 7.5 s later, then a kill: actions/runner
ProcessInvoker.cs), so the tests signal only the deploy's pid, as `exec python -m deploy` makes it. The
stand-in CLI runs in its own process group and records every signal it receives: what it gets came
from the deploy. Its scripted `up` pauses where the real engine would be mid-update.
"""

from __future__ import annotations

import copy
import json
import os
import shlex
import signal
import subprocess
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from deploy.process import STEP_MARGIN_S
from deploy.pulumi_cli import wait_awake
from deploy.recovery import runbook
from model.health_settings import worst_case_seconds
from model.record import read_record
from tests.support.engine_events import check_stream, read
from tests.support.fake_pulumi import (
    FILE_TRANSPORT,
    GRPC_TRANSPORT,
    FakePulumi,
    read_config,
    run_deploy,
    start_deploy,
)
from tests.support.fake_pulumi.fixtures import fake_fixture, project_fixture
from tests.support.fake_pulumi.project import (
    CONFIG,
    OLD,
    OUTPUTS,
    STACK,
    apps_output,
    deploy_key,
    write_config,
)

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
    # Passed on at once, or, when the deploy had not read an event of the update yet, once it did.
    assert (
        "deploy: SIGINT received; passing it to the Pulumi CLI" in stderr
        or "the Pulumi CLI's update has started; passing the signal on" in stderr
    )
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
    [refresh] = [line for line in runbook(STACK) if line.startswith("pulumi refresh")]
    assert f"\n  {refresh}\n" in stderr


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


# --- The CLI's cancellation window (the rule: deploy/process.py) ---------------------------------------
# The stand-in takes the stack's lock before its scope opens and drops it after the scope closes; a
# signal outside the scope kills it where it stands and the lock stays.


def _cancelled_before_window(before_window_s: float) -> dict[str, Any]:
    """A cancelled `up` that spends `before_window_s` locked but before its engine starts."""
    return {
        "fixture": "cancelled.jsonl",
        "before_window_s": before_window_s,
        "pause_before": [_index("cancelled.jsonl", "stdoutEvent")],
        "exit": 255,
    }


def test_a_signal_before_the_engine_starts_is_held_until_the_update_is_under_way(
    either_fake: FakePulumi, project: Path
) -> None:
    fake = either_fake
    fake.play(_cancelled_before_window(1.5), outputs=OUTPUTS)
    proc = start_deploy(fake, project, "--stack", STACK)
    fake.wait_until_logged("before_window")
    os.kill(proc.pid, signal.SIGINT)
    code, stderr = _finish(proc)
    assert code == 128 + signal.SIGINT, stderr
    assert fake.killed_outside_window() == [], "never sent while the CLI held the lock outside the engine"
    assert fake.signals() == ["SIGINT"], "passed on once the update was under way: a graceful cancel"
    assert not fake.locked(STACK), "the cancelled CLI released its lock"
    assert "SIGINT received; holding it until the Pulumi CLI's update is under way" in stderr
    assert "the Pulumi CLI's update has started; passing the signal on" in stderr


def test_what_a_signal_outside_the_window_leaves_is_recovered_by_the_printed_runbook(
    fake: FakePulumi, project: Path
) -> None:
    """A second signal while the first is held (GitHub's SIGTERM 7.5 s after SIGINT): the deploy passes
    both on, the CLI dies outside its scope and its lock stays; the runbook clears it."""
    fake.play(_cancelled_before_window(WAIT_S), {"fixture": "good_deploy.jsonl"}, outputs=OUTPUTS)
    proc = start_deploy(fake, project, "--stack", STACK)
    fake.wait_until_logged("before_window")
    os.kill(proc.pid, signal.SIGINT)
    os.kill(proc.pid, signal.SIGTERM)
    code, stderr = _finish(proc)
    assert code == 128 + signal.SIGINT, stderr
    assert fake.killed_outside_window() == ["SIGINT"] and fake.locked(STACK)
    assert "the Pulumi CLI was stopped mid-update: the stack may be locked" in stderr

    again = run_deploy(fake, project, "--stack", STACK)
    assert again.returncode == 6, again.stderr
    assert "locked by an update that is no longer running" in again.stderr
    printed = [line.strip() for line in again.stderr.splitlines() if line.strip().startswith("pulumi ")]
    assert printed == [line for line in runbook(STACK) if line.startswith("pulumi ")]
    for command in printed:
        result = subprocess.run(
            shlex.split(command), cwd=project, env=fake.env(), capture_output=True, text=True, timeout=WAIT_S
        )
        assert result.returncode == 0, (command, result.stderr)
    assert not fake.locked(STACK) and fake.usage_errors() == []
    assert run_deploy(fake, project, "--stack", STACK).returncode == 0


def _health_in_flight(tmp_path: Path) -> tuple[Path, int]:
    """The recorded Degraded release, with api's HealthCheck still probing when the deploy cancels: its
    outputs come after the cancel, as the engine waits for the steps in flight. Returns the stream and
    where the cancel's stdout event is."""
    lines = read("degraded_rollback/up-1.jsonl")
    api_health = next(
        i
        for i, line in enumerate(lines)
        if "resOutputsEvent" in line and line["resOutputsEvent"]["metadata"]["urn"].endswith("::api-health")
    )
    moved = lines.pop(api_health)
    failed = next(i for i, line in enumerate(lines) if "resOpFailedEvent" in line)
    lines.insert(failed + 1, {**moved, "timestamp": lines[failed]["timestamp"] + 2})
    restamped = [{**line, "sequence": i} for i, line in enumerate(lines)]
    for i in range(1, len(restamped)):
        restamped[i]["timestamp"] = max(restamped[i]["timestamp"], restamped[i - 1]["timestamp"])
    assert check_stream(restamped) == []
    path = tmp_path / "health-in-flight.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in restamped), encoding="utf-8")
    cancel = next(i for i, line in enumerate(restamped) if "received; cancelling" in json.dumps(line))
    return path, cancel


def _quick_api_health(project: Path) -> float:
    """Give api a check with a short worst case, the Degraded stop a 1 s grace; return the worst case."""
    config = copy.deepcopy(CONFIG)
    health = {"attempts": 1, "intervalSeconds": 1, "timeoutSeconds": 1, "successThreshold": 1}
    config["gitops-deploy:apps"][1]["health"].update(health)
    config["gitops-deploy:deploy"] = deploy_key(degradedGraceSeconds=1)
    write_config(project, config)
    return worst_case_seconds(1, 1, 1)


@pytest.mark.parametrize("drain", ["within", "beyond"])
def test_the_deploys_own_cancel_waits_for_a_health_check_within_its_worst_case(
    fake: FakePulumi, project: Path, tmp_path: Path, drain: str
) -> None:
    """The Degraded stop cancels while another app's HealthCheck probes: a Python dynamic provider
    ignores Cancel, so the CLI finishes that step first. The deploy does not tell it to terminate (which
    would leave the step pending) until the step's worst case has passed."""
    worst = _quick_api_health(project)
    stream, cancel = _health_in_flight(tmp_path)
    # The step ends 2.5 s after the cancel (within its worst case plus margin), or never in time.
    drain_s = 2.5 if drain == "within" else worst + STEP_MARGIN_S + 3
    fake.play(
        {"fixture": str(stream), "pause_before": [cancel], "drain_s": drain_s, "exit": 255},
        {"fixture": "degraded_rollback/up-2.jsonl", "outputs": apps_output(OLD["web"], OLD["api"])},
        outputs=OUTPUTS,
    )
    proc = run_deploy(fake, project, "--stack", STACK, "--cancel-grace", "0.5", timeout=WAIT_S)
    if drain == "within":
        assert proc.returncode == 3, proc.stderr
        assert fake.signals() == ["SIGINT"], "one graceful cancel; no terminate while api-health probed"
        assert "api-health still within its worst case" in proc.stderr
        assert "telling the Pulumi CLI to stop now" not in proc.stderr
    else:
        assert fake.signals() == ["SIGINT", "SIGINT"], "terminated once the worst case had passed"
        assert "telling the Pulumi CLI to stop now" in proc.stderr
    assert fake.killed_outside_window() == []
