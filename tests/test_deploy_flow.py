"""`python -m deploy up` as a user runs it: the real `pulumi.automation` against a stand-in `pulumi` on PATH.

The stand-in (tests/support/fake_pulumi) answers the argv the Automation API sends, keeps the stack's
config in the project's `Pulumi.prod.yaml` as the CLI does, and streams recorded engine events
(tests/fixtures/engine_events) over the transport the Automation API picks from `pulumi version`:
a file for CLIs up to 3.205, its gRPC Events service for newer ones.
"""

from __future__ import annotations

import copy
import json
import re
import socket
from pathlib import Path
from typing import Any

import pytest

from components.failed_releases import FailedRelease, blocked_message
from tests.support.fake_pulumi import (
    FILE_TRANSPORT,
    GRPC_TRANSPORT,
    FakePulumi,
    read_config,
    run_deploy,
)
from tests.support.fake_pulumi.project import (
    CONFIG,
    NEW_WEB,
    OLD,
    OUTPUTS,
    STACK,
    make_project,
    tag,
    write_config,
)

CONFLICT = (
    "error: [409] Conflict: Another update is currently in progress.\n"
    "To learn more about possible reasons and resolution, visit "
    "https://www.pulumi.com/docs/support/troubleshooting/common-issues/update-conflicts/"
)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project of the test's own (tests/support/fake_pulumi/project.py)."""
    return make_project(tmp_path / "project")


@pytest.fixture(params=[FILE_TRANSPORT, GRPC_TRANSPORT], ids=["file-events", "grpc-events"])
def fake(request: pytest.FixtureRequest, tmp_path: Path) -> FakePulumi:
    """The stand-in CLI, as a CLI that takes an event-log file, and as one that streams over gRPC."""
    return FakePulumi(tmp_path / "fake", version=request.param)


@pytest.fixture
def grpc_fake(tmp_path: Path) -> FakePulumi:
    """The stand-in CLI of a current version (events over gRPC)."""
    return FakePulumi(tmp_path / "fake", version=GRPC_TRANSPORT)


def assert_up_argv(fake: FakePulumi, argv: list[str]) -> None:
    """Every `up` the Automation API sends for the deploy, with the policy pack and the event log."""
    log = argv[argv.index("--event-log") + 1]
    assert argv == [
        "up",
        "--yes",
        "--skip-preview",
        "--policy-pack",
        "policies",
        "--policy-pack-config",
        "policies/config.prod.json",
        "--exec-kind",
        "auto.local",
        "--event-log",
        log,
        "--stack",
        STACK,
    ]
    if fake.scenario["version"] == FILE_TRANSPORT:
        assert log.endswith("eventlog.txt") and not log.startswith("tcp://")
    else:
        assert re.fullmatch(r"tcp://127\.0\.0\.1:\d+", log), log


def assert_one_up_with_the_stack_file_as_is(fake: FakePulumi) -> None:
    """Exactly one `up`, run with the stack's config as the test wrote it, and no config written."""
    [up] = fake.ups()
    assert_up_argv(fake, up.argv)
    assert up.config == CONFIG
    assert fake.config_writes() == []


def assert_clean(fake: FakePulumi, project: Path) -> None:
    """The Automation API asked only what the stand-in answers, and the stack file is as the test wrote it."""
    assert fake.unsupported() == []
    assert read_config(project, STACK) == CONFIG


# --- the cases of the issue ---


def test_good_deploy_runs_one_up_and_changes_no_config(fake: FakePulumi, project: Path) -> None:
    fake.play({"fixture": "good_deploy.jsonl"}, outputs=OUTPUTS)
    proc = run_deploy(fake, project, "--stack", STACK)
    assert proc.returncode == 0, proc.stderr
    [up] = fake.ups()
    assert_up_argv(fake, up.argv)
    assert up.config == CONFIG
    assert fake.config_writes() == []
    assert_clean(fake, project)
    assert "Updating (prod):" in proc.stdout, "the CLI's output is streamed"
    assert "deploy: the update succeeded" in proc.stderr


def test_health_failure_rolls_back_with_pins_rollback_id_and_the_record(
    fake: FakePulumi, project: Path
) -> None:
    fake.play(
        {"fixture": "health_failure_web.jsonl", "exit": 255},
        {"fixture": "rollback_ok.jsonl"},
        outputs=OUTPUTS,
    )
    proc = run_deploy(fake, project, "--stack", STACK)
    assert proc.returncode == 3, proc.stderr
    first, rollback = fake.ups()
    assert_up_argv(fake, first.argv)
    assert_up_argv(fake, rollback.argv)
    assert first.config == CONFIG, "the first up runs the stack file as it is"
    expected = copy.deepcopy(CONFIG)
    expected["gitops-deploy:apps"][0]["image"]["pin"] = OLD["web"]
    rollback_id = rollback.config.pop("gitops-deploy:rollbackId")
    record = json.loads(rollback.config.pop("gitops-deploy:failedReleases"))
    assert rollback.config == expected, "only web is pinned, to its last digest that passed"
    assert re.fullmatch(r"[0-9a-f]{32}", rollback_id)
    [entry] = record["web"]
    assert (entry["tag"], entry["digest"]) == (tag(project, "web"), NEW_WEB)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", entry["failedAt"])
    assert entry["reason"].startswith("health check GET https://web.example.com/healthz FAILED after 10")
    assert set(record) == {"web"}
    assert_clean(fake, project)
    assert "web: health check failed" in proc.stderr
    assert "10   wrong-status      503        41 ms" in proc.stderr
    assert f"rolled back web -> {OLD['web']}" in proc.stderr
    assert f"recorded web:{tag(project, 'web')} as failed" in proc.stderr


def test_each_rollback_gets_a_fresh_rollback_id(grpc_fake: FakePulumi, project: Path) -> None:
    ids = []
    for _ in range(2):
        grpc_fake.play(
            {"fixture": "health_failure_web.jsonl", "exit": 255},
            {"fixture": "rollback_ok.jsonl"},
            outputs=OUTPUTS,
        )
        assert run_deploy(grpc_fake, project, "--stack", STACK).returncode == 3
        ids.append(grpc_fake.ups()[-1].config["gitops-deploy:rollbackId"])
    assert ids[0] != ids[1]


def test_a_rollback_that_fails_too_still_removes_everything_it_set(fake: FakePulumi, project: Path) -> None:
    fake.play(
        {"fixture": "health_failure_web.jsonl", "exit": 255},
        {"fixture": "rollback_failed.jsonl", "exit": 255},
        outputs=OUTPUTS,
    )
    proc = run_deploy(fake, project, "--stack", STACK)
    assert proc.returncode == 4, proc.stderr
    _first, rollback = fake.ups()
    assert rollback.config["gitops-deploy:apps"][0]["image"]["pin"] == OLD["web"]
    assert "gitops-deploy:rollbackId" in rollback.config
    assert_clean(fake, project)
    assert "the rollback failed too (the failed release is not recorded)" in proc.stderr
    assert "40.87 s" in proc.stderr, "the rollback's own health report"


def test_registry_401_changes_nothing(fake: FakePulumi, project: Path) -> None:
    fake.play({"fixture": "registry_401.jsonl", "exit": 255}, outputs=OUTPUTS)
    proc = run_deploy(fake, project, "--stack", STACK)
    assert proc.returncode == 1, proc.stderr
    assert_one_up_with_the_stack_file_as_is(fake)
    assert_clean(fake, project)
    assert "nothing was rolled back (only a failed health gate is)" in proc.stderr
    assert "answered 401 Unauthorized" in proc.stderr


def test_policy_violation_changes_nothing(grpc_fake: FakePulumi, project: Path) -> None:
    grpc_fake.play({"fixture": "policy_violation.jsonl", "exit": 255}, outputs=OUTPUTS)
    proc = run_deploy(grpc_fake, project, "--stack", STACK)
    assert proc.returncode == 1, proc.stderr
    assert_one_up_with_the_stack_file_as_is(grpc_fake)
    assert_clean(grpc_fake, project)
    assert "policy violation gitops-deploy/image-size-limit on web-image-size" in proc.stderr


def test_an_update_cancelled_from_outside_is_not_rolled_back(grpc_fake: FakePulumi, project: Path) -> None:
    """A signal that reached the CLI without the deploy (another process, a kill): no rollback."""
    grpc_fake.play({"fixture": "cancelled.jsonl", "exit": 255}, outputs=OUTPUTS)
    proc = run_deploy(grpc_fake, project, "--stack", STACK)
    assert proc.returncode == 1, proc.stderr
    assert_one_up_with_the_stack_file_as_is(grpc_fake)
    assert "the update was cancelled" in proc.stderr and "pulumi cancel --stack prod --yes" in proc.stderr


def test_application_wait_timeout_rolls_that_app_back(grpc_fake: FakePulumi, project: Path) -> None:
    grpc_fake.play(
        {"fixture": "application_timeout.jsonl", "exit": 255},
        {"fixture": "rollback_ok.jsonl"},
        outputs=OUTPUTS,
    )
    proc = run_deploy(grpc_fake, project, "--stack", STACK)
    assert proc.returncode == 3, proc.stderr
    assert grpc_fake.ups()[1].config["gitops-deploy:apps"][1]["image"]["pin"] == OLD["api"]
    assert "api: Application's wait timed out" in proc.stderr


def test_application_await_error_is_not_rolled_back(grpc_fake: FakePulumi, project: Path) -> None:
    grpc_fake.play({"fixture": "application_await_error.jsonl", "exit": 255}, outputs=OUTPUTS)
    proc = run_deploy(grpc_fake, project, "--stack", STACK)
    assert proc.returncode == 1, proc.stderr
    assert_one_up_with_the_stack_file_as_is(grpc_fake)
    assert "has a non-primitive value" in proc.stderr


# --- a concurrent update: a live one, a left-over one ---


def test_409_from_a_live_update_is_in_progress(fake: FakePulumi, project: Path) -> None:
    recent = _history("in-progress", "2099-01-01T00:00:00.000000Z")
    fake.play({"refuse": CONFLICT, "exit": 255}, outputs=OUTPUTS, history=[recent])
    proc = run_deploy(fake, project, "--stack", STACK)
    assert proc.returncode == 6, proc.stderr
    assert_one_up_with_the_stack_file_as_is(fake)
    assert_clean(fake, project)
    assert "deploy: another update of this stack is in progress: an update started at" in proc.stderr
    assert "nothing was changed" in proc.stderr and "wait for it to finish" in proc.stderr
    assert [
        "stack",
        "history",
        "--json",
        "--page-size",
        "1",
        "--page",
        "1",
        "--stack",
        STACK,
    ] in fake.commands()


def test_409_from_an_update_that_outlived_any_deploy_is_left_over(
    grpc_fake: FakePulumi, project: Path
) -> None:
    grpc_fake.play({"refuse": CONFLICT, "exit": 255}, outputs=OUTPUTS, history=[_history("in-progress")])
    proc = run_deploy(grpc_fake, project, "--stack", STACK)
    assert proc.returncode == 6, proc.stderr
    assert "in progress" not in proc.stderr.split("still marked as updating")[0]
    assert "the stack is still marked as updating by an update started at 2026-05-01T12:00:00Z" in proc.stderr
    for command in (
        "pulumi cancel --stack prod --yes",
        "pulumi refresh --stack prod --yes --clear-pending-creates",
        "python -m deploy up --stack prod",
    ):
        assert f"\n  {command}\n" in proc.stderr


def test_a_lock_left_by_a_killed_cli_on_this_machine_is_left_over(fake: FakePulumi, project: Path) -> None:
    lock = (
        "error: the stack is currently locked by 1 lock(s). Either wait for the other process(es) to end or "
        "delete the lock file with `pulumi cancel`.\n"
        f"  file:///state/.pulumi/locks/organization/gitops-deploy/prod/a1.json: created by runner@"
        f"{socket.gethostname()} (pid {_dead_pid()}) at 2099-01-01T00:00:00Z"
    )
    fake.play({"refuse": lock, "exit": 255}, outputs=OUTPUTS)
    proc = run_deploy(fake, project, "--stack", STACK)
    assert proc.returncode == 6, proc.stderr
    assert "the stack is locked by an update that is no longer running" in proc.stderr
    assert "an interrupted run (a cancelled or timed-out job) left it; recover:" in proc.stderr
    assert "another update of this stack is in progress" not in proc.stderr
    assert_clean(fake, project)


def _dead_pid() -> int:
    """A pid that no process has (the highest the kernel would give, never reached in a test)."""
    return int(Path("/proc/sys/kernel/pid_max").read_text()) - 1


def _history(result: str, start: str = "2026-05-01T12:00:00.000000Z") -> dict[str, Any]:
    return {
        "kind": "update",
        "startTime": start,
        "message": "",
        "environment": {},
        "config": {},
        "result": result,
    }


def test_pending_operations_of_an_interrupted_run_are_reported(grpc_fake: FakePulumi, project: Path) -> None:
    grpc_fake.play({"fixture": "good_deploy_pending_operations.jsonl"}, outputs=OUTPUTS)
    proc = run_deploy(grpc_fake, project, "--stack", STACK)
    assert proc.returncode == 0, proc.stderr
    assert "operations an interrupted run left pending:" in proc.stderr
    assert "HealthCheck::web-health (interrupted while updating)" in proc.stderr
    assert "pulumi refresh --stack prod --yes --clear-pending-creates" in proc.stderr


# --- §4: a failed release stays rolled back ---


def _recorded(project: Path, app: str = "web") -> FailedRelease:
    return FailedRelease(
        app, tag(project, app), NEW_WEB, "2026-05-01T12:00:00Z", "health check GET ... FAILED"
    )


def test_the_same_content_again_stops_before_the_update(fake: FakePulumi, project: Path) -> None:
    release = _recorded(project)
    outputs = {**OUTPUTS, "failedReleases": {"web": [release.to_json()]}}
    fake.play({"fixture": "good_deploy.jsonl"}, outputs=outputs)
    proc = run_deploy(fake, project, "--stack", STACK)
    assert proc.returncode == 5, proc.stderr
    assert fake.ups() == [] and fake.config_writes() == []
    assert blocked_message([release], STACK) in proc.stderr, "the one message the program and the check print"
    for words in (
        f"web: release {release.tag} ({NEW_WEB}) failed its health gate at 2026-05-01T12:00:00Z",
        f"--allow-failed-release web:{release.tag}",
        f"'gitops-deploy:allowFailedReleases[0]' web:{release.tag}",
    ):
        assert words in proc.stderr


def test_changed_source_ships_again(grpc_fake: FakePulumi, project: Path) -> None:
    outputs = {**OUTPUTS, "failedReleases": {"web": [_recorded(project).to_json()]}}
    (project / "apps" / "web" / "web.txt").write_text("web v2, fixed\n")
    grpc_fake.play({"fixture": "good_deploy.jsonl"}, outputs=outputs)
    proc = run_deploy(grpc_fake, project, "--stack", STACK)
    assert proc.returncode == 0, proc.stderr
    [up] = grpc_fake.ups()
    assert up.config == CONFIG, "the record is left for the program to read from the outputs"


def test_the_override_lets_the_release_ship_once_and_drops_it_from_the_record(
    grpc_fake: FakePulumi, project: Path
) -> None:
    release, other = _recorded(project), _recorded(project, "api")
    outputs = {**OUTPUTS, "failedReleases": {"web": [release.to_json()], "api": [other.to_json()]}}
    (project / "apps" / "api" / "api.txt").write_text("api v2\n")
    grpc_fake.play({"fixture": "good_deploy.jsonl"}, outputs=outputs)
    proc = run_deploy(grpc_fake, project, "--stack", STACK, "--allow-failed-release", release.ref)
    assert proc.returncode == 0, proc.stderr
    [up] = grpc_fake.ups()
    record = json.loads(up.config.pop("gitops-deploy:failedReleases"))
    assert record == {"api": [other.to_json()]}, "web's entry goes; the rest of the record stays"
    assert up.config == CONFIG
    assert_clean(grpc_fake, project)


def test_the_override_in_the_stack_config_is_honoured(grpc_fake: FakePulumi, project: Path) -> None:
    release = _recorded(project)
    config = {**CONFIG, "gitops-deploy:allowFailedReleases": [release.ref]}
    write_config(project, config)
    grpc_fake.play(
        {"fixture": "good_deploy.jsonl"}, outputs={**OUTPUTS, "failedReleases": {"web": [release.to_json()]}}
    )
    proc = run_deploy(grpc_fake, project, "--stack", STACK)
    assert proc.returncode == 0, proc.stderr
    [up] = grpc_fake.ups()
    assert up.config == config, "the program drops the entry itself (components/deployment.py)"


def test_a_new_failure_is_added_to_the_existing_record(grpc_fake: FakePulumi, project: Path) -> None:
    older = FailedRelease("api", "ctx-0123456789ab", None, "2026-04-01T08:00:00Z", "earlier")
    outputs = {**OUTPUTS, "failedReleases": {"api": [older.to_json()]}}
    grpc_fake.play(
        {"fixture": "health_failure_web.jsonl", "exit": 255},
        {"fixture": "rollback_ok.jsonl"},
        outputs=outputs,
    )
    assert run_deploy(grpc_fake, project, "--stack", STACK).returncode == 3
    first, rollback = grpc_fake.ups()
    assert "gitops-deploy:failedReleases" not in first.config
    record = json.loads(rollback.config["gitops-deploy:failedReleases"])
    assert record["api"] == [older.to_json()] and [e["tag"] for e in record["web"]] == [tag(project, "web")]


def test_a_first_deploy_that_fails_cannot_roll_back_and_records_nothing(
    grpc_fake: FakePulumi, project: Path
) -> None:
    grpc_fake.play({"fixture": "health_failure_web.jsonl", "exit": 255}, outputs={})
    proc = run_deploy(grpc_fake, project, "--stack", STACK)
    assert proc.returncode == 1, proc.stderr
    assert_one_up_with_the_stack_file_as_is(grpc_fake)
    assert "cannot roll back web: no last known good digest" in proc.stderr
    assert "nothing to roll back to; the failed release stays as it is (and is not recorded)" in proc.stderr


def test_a_user_pin_is_put_back_after_the_rollback(grpc_fake: FakePulumi, project: Path) -> None:
    config = copy.deepcopy(CONFIG)
    user_pin = "registry.example.com/platform/api@sha256:" + "9" * 64
    config["gitops-deploy:apps"][1]["image"]["pin"] = user_pin
    write_config(project, config)
    grpc_fake.play(
        {"fixture": "health_failure_web.jsonl", "exit": 255},
        {"fixture": "rollback_ok.jsonl"},
        outputs=OUTPUTS,
    )
    proc = run_deploy(grpc_fake, project, "--stack", STACK)
    assert proc.returncode == 3, proc.stderr
    assert "api is pinned to" in proc.stderr
    assert grpc_fake.ups()[1].config["gitops-deploy:apps"][1]["image"]["pin"] == user_pin
    assert read_config(project, STACK) == config
