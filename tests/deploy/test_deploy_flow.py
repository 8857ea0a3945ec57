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

from deploy.recovery import runbook
from model.failed_releases import FailedRelease, blocked_message
from model.record import read_record
from model.record_table import render_markdown, render_text
from tests.deploy.test_deploy_degraded import WEB_HEALTH
from tests.support import engine_events
from tests.support.fake_pulumi import (
    FILE_TRANSPORT,
    GRPC_TRANSPORT,
    FakePulumi,
    read_config,
    run_deploy,
)
from tests.support.fake_pulumi.cli import history_entry
from tests.support.fake_pulumi.fixtures import fake_fixture, project_fixture
from tests.support.fake_pulumi.project import (
    CONFIG,
    NEW_WEB,
    OLD,
    OUTPUTS,
    STACK,
    apps_output,
    deploy_key,
    tag,
    write_config,
)

# `python -m deploy` against the stand-in Pulumi CLI, a subprocess per case: `make test-fast` skips it.
pytestmark = pytest.mark.cli

CONFLICT = (
    "error: [409] Conflict: Another update is currently in progress.\n"
    "To learn more about possible reasons and resolution, visit "
    "https://www.pulumi.com/docs/support/troubleshooting/common-issues/update-conflicts/"
)


project = project_fixture()
fake = fake_fixture(FILE_TRANSPORT, GRPC_TRANSPORT)
"""The stand-in CLI, as a CLI that takes an event-log file, and as one that streams over gRPC."""
grpc_fake = fake_fixture(GRPC_TRANSPORT)
"""The stand-in CLI of a current version (events over gRPC)."""


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


def play_rollback(fake: FakePulumi, failing: str, outputs: dict[str, Any] = OUTPUTS) -> None:
    """Script a first `up` that fails (the recorded `failing` stream) and a rollback `up` that succeeds."""
    fake.play({"fixture": failing, "exit": 255}, {"fixture": "rollback_ok.jsonl"}, outputs=outputs)


def deploy_stopped_at_one_up(fake: FakePulumi, project: Path, fixture: str, outputs: dict[str, Any]) -> str:
    """An `up` that fails (the recorded `fixture`) and is not rolled back: exit 1 after that one `up`,
    run with the stack file as is. Returns the deploy's stderr."""
    fake.play({"fixture": fixture, "exit": 255}, outputs=outputs)
    proc = run_deploy(fake, project, "--stack", STACK)
    assert proc.returncode == 1, proc.stderr
    assert_one_up_with_the_stack_file_as_is(fake)
    return proc.stderr


# --- the cases of the issue ---


def test_good_deploy_runs_one_up_and_changes_no_config(fake: FakePulumi, project: Path) -> None:
    fake.play({"fixture": "good_deploy.jsonl"}, outputs=OUTPUTS)
    proc = run_deploy(fake, project, "--stack", STACK)
    assert proc.returncode == 0, proc.stderr
    assert_one_up_with_the_stack_file_as_is(fake)
    assert_clean(fake, project)
    assert "Updating (prod):" in proc.stdout, "the CLI's output is streamed"
    assert "deploy: the update succeeded" in proc.stderr


def test_health_failure_rolls_back_with_pins_rollback_id_and_the_record(
    fake: FakePulumi, project: Path
) -> None:
    play_rollback(fake, "health_failure_web.jsonl")
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
        play_rollback(grpc_fake, "health_failure_web.jsonl")
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
    stderr = deploy_stopped_at_one_up(fake, project, "registry_401.jsonl", OUTPUTS)
    assert_clean(fake, project)
    assert "nothing was rolled back (only a failed health gate is)" in stderr
    assert "answered 401 Unauthorized" in stderr


def test_policy_violation_changes_nothing(grpc_fake: FakePulumi, project: Path) -> None:
    stderr = deploy_stopped_at_one_up(grpc_fake, project, "policy_violation.jsonl", OUTPUTS)
    assert_clean(grpc_fake, project)
    assert "policy violation gitops-deploy/image-size-limit on web-image-size" in stderr


def test_an_update_cancelled_from_outside_is_not_rolled_back(grpc_fake: FakePulumi, project: Path) -> None:
    """A signal that reached the CLI without the deploy (another process, a kill): no rollback."""
    stderr = deploy_stopped_at_one_up(grpc_fake, project, "cancelled.jsonl", OUTPUTS)
    assert "the update was cancelled" in stderr and "pulumi cancel --stack prod --yes" in stderr


def test_application_wait_timeout_rolls_that_app_back(grpc_fake: FakePulumi, project: Path) -> None:
    play_rollback(grpc_fake, "application_timeout.jsonl")
    proc = run_deploy(grpc_fake, project, "--stack", STACK)
    assert proc.returncode == 3, proc.stderr
    assert grpc_fake.ups()[1].config["gitops-deploy:apps"][1]["image"]["pin"] == OLD["api"]
    assert "api: Application's wait timed out" in proc.stderr


def test_application_await_error_is_not_rolled_back(grpc_fake: FakePulumi, project: Path) -> None:
    stderr = deploy_stopped_at_one_up(grpc_fake, project, "application_await_error.jsonl", OUTPUTS)
    assert "has a non-primitive value" in stderr


# --- a concurrent update: a live one, a left-over one ---


def test_409_from_a_live_update_is_in_progress(fake: FakePulumi, project: Path) -> None:
    recent = history_entry("in-progress", "2099-01-01T00:00:00.000000Z")
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
    grpc_fake.play({"refuse": CONFLICT, "exit": 255}, outputs=OUTPUTS, history=[history_entry("in-progress")])
    proc = run_deploy(grpc_fake, project, "--stack", STACK)
    assert proc.returncode == 6, proc.stderr
    assert "in progress" not in proc.stderr.split("still marked as updating")[0]
    assert "the stack is still marked as updating by an update started at 2026-05-01T12:00:00Z" in proc.stderr
    commands = [line for line in runbook(STACK) if not line.startswith(" ")]
    assert [c.split()[:2] for c in commands] == [
        ["pulumi", "cancel"],
        ["pulumi", "refresh"],
        ["python", "-m"],
    ]
    for command in commands:
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


def test_pending_operations_of_an_interrupted_run_are_reported(grpc_fake: FakePulumi, project: Path) -> None:
    grpc_fake.play({"fixture": "good_deploy_pending_operations.jsonl"}, outputs=OUTPUTS)
    proc = run_deploy(grpc_fake, project, "--stack", STACK)
    assert proc.returncode == 0, proc.stderr
    assert "operations an interrupted run left pending:" in proc.stderr
    assert "HealthCheck::web-health (interrupted while updating)" in proc.stderr
    [refresh] = [line for line in runbook(STACK) if line.startswith("pulumi refresh")]
    assert f"\n  {refresh}\n" in proc.stderr


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
    play_rollback(grpc_fake, "health_failure_web.jsonl", outputs)
    assert run_deploy(grpc_fake, project, "--stack", STACK).returncode == 3
    first, rollback = grpc_fake.ups()
    assert "gitops-deploy:failedReleases" not in first.config
    record = json.loads(rollback.config["gitops-deploy:failedReleases"])
    assert record["api"] == [older.to_json()] and [e["tag"] for e in record["web"]] == [tag(project, "web")]


def test_a_first_deploy_that_fails_cannot_roll_back_and_records_nothing(
    grpc_fake: FakePulumi, project: Path
) -> None:
    stderr = deploy_stopped_at_one_up(grpc_fake, project, "health_failure_web.jsonl", {})
    assert "cannot roll back web: no last known good digest" in stderr
    assert "nothing to roll back to; the failed release stays as it is (and is not recorded)" in stderr


def test_a_user_pin_is_put_back_after_the_rollback(grpc_fake: FakePulumi, project: Path) -> None:
    config = copy.deepcopy(CONFIG)
    user_pin = "registry.example.com/platform/api@sha256:" + "9" * 64
    config["gitops-deploy:apps"][1]["image"]["pin"] = user_pin
    write_config(project, config)
    play_rollback(grpc_fake, "health_failure_web.jsonl")
    proc = run_deploy(grpc_fake, project, "--stack", STACK)
    assert proc.returncode == 3, proc.stderr
    assert "api is pinned to" in proc.stderr
    assert grpc_fake.ups()[1].config["gitops-deploy:apps"][1]["image"]["pin"] == user_pin
    assert read_config(project, STACK) == config


# --- every deploy measured, recorded and tabled ---

WEB_APPLICATION = (
    "urn:pulumi:prod::gitops-deploy::gitops-deploy:index:AppRelease$gitops-deploy:index:ArgoApplication$"
    "kubernetes:argoproj.io/v1alpha1:Application::web-argocd-application"
)
API_NEW = "registry.example.com/platform/api@sha256:" + "b" * 64
# What the recorded health_rollback deploy took, read off its timestamps (test_deploy_timings.py).
RECORDED_WEB = {"preflight": 3, "build": 42, "image-size": 1, "sync": 72, "health": 100, "rollback": 58}
RECORDED_API = {"preflight": 3, "build": 30, "image-size": 2, "sync": 40, "health": 12}


def _with_deploy_key(project: Path, value: dict[str, Any]) -> dict[str, Any]:
    config = {**copy.deepcopy(CONFIG), "gitops-deploy:deploy": deploy_key(**value)}
    write_config(project, config)
    return config


def test_a_rolled_back_deploy_writes_its_record_the_table_and_the_step_summary(
    fake: FakePulumi, project: Path, tmp_path: Path
) -> None:
    config = _with_deploy_key(project, {"budgetSeconds": 240})
    fake.play(
        {"fixture": "health_rollback/up-1.jsonl", "exit": 255, "stderr": "error: update failed"},
        {"fixture": "health_rollback/up-2.jsonl", "outputs": apps_output(OLD["web"], API_NEW)},
        outputs=OUTPUTS,
    )
    summary = tmp_path / "step-summary.md"
    summary.write_text("### the job's earlier steps\n", encoding="utf-8")
    path = tmp_path / "records" / "deploy-record.json"
    proc = run_deploy(
        fake, project, "--stack", STACK, "--record", str(path), env={"GITHUB_STEP_SUMMARY": str(summary)}
    )
    assert proc.returncode == 3, proc.stderr
    record = read_record(path)
    assert (record.stack, record.outcome, record.cause) == ("prod", "rolled-back", "health")
    assert record.budget_seconds == 240, "the budget is the stack's gitops-deploy:deploy.budgetSeconds"
    assert record.duration_seconds >= 281 and record.over_budget, "the recorded deploy took 4m41s"
    [failure] = record.failures
    assert (failure.cause, failure.during, failure.app) == ("health", "release", "web")
    web, api = sorted(record.apps, key=lambda a: a.name != "web")
    assert (web.digest_before, web.digest_after) == (OLD["web"], OLD["web"])
    assert (api.digest_before, api.digest_after) == (OLD["api"], API_NEW), "read back after the deploy"
    assert {p: t.seconds for p, t in web.phases.items()} == RECORDED_WEB
    assert {p: t.seconds for p, t in api.phases.items()} == RECORDED_API
    # The table ends the deploy's output, and the job summary gets the same as Markdown, appended.
    assert render_text(record) in proc.stderr
    assert proc.stderr.index("deploy: rolled back web") < proc.stderr.index("gitops-deploy prod: rolled-back")
    assert (
        summary.read_text(encoding="utf-8")
        == "### the job's earlier steps\n" + render_markdown(record) + "\n"
    )
    assert f"deploy record written to {path}" in proc.stderr
    assert read_config(project, STACK) == config
    assert "decrypted-secret" not in path.read_text() + proc.stderr + summary.read_text()


def test_a_good_deploy_is_recorded_as_succeeded(grpc_fake: FakePulumi, project: Path, tmp_path: Path) -> None:
    after = apps_output(NEW_WEB, API_NEW)
    grpc_fake.play({"fixture": "good/up-1.jsonl", "outputs": after}, outputs=OUTPUTS)
    path = tmp_path / "record.json"
    proc = run_deploy(grpc_fake, project, "--stack", STACK, "--record", str(path))
    assert proc.returncode == 0, proc.stderr
    record = read_record(path)
    assert (record.outcome, record.cause, record.failures, record.budget_seconds) == (
        "succeeded",
        None,
        (),
        300,
    )
    assert {a.name: (a.digest_before, a.digest_after) for a in record.apps} == {
        "web": (OLD["web"], NEW_WEB),
        "api": (OLD["api"], API_NEW),
    }
    assert "gitops-deploy prod: succeeded in " in proc.stderr and "within budget" in proc.stderr
    assert "$GITHUB_STEP_SUMMARY" not in proc.stderr, "no summary outside GitHub Actions, and no complaint"


def test_a_deploy_stopped_before_the_update_is_recorded_as_failed(
    grpc_fake: FakePulumi, project: Path, tmp_path: Path
) -> None:
    release = _recorded(project)
    grpc_fake.play(outputs={**OUTPUTS, "failedReleases": {"web": [release.to_json()]}})
    path = tmp_path / "record.json"
    proc = run_deploy(grpc_fake, project, "--stack", STACK, "--record", str(path))
    assert proc.returncode == 5 and grpc_fake.ups() == []
    record = read_record(path)
    assert (record.outcome, record.cause) == ("failed", "other")
    assert record.failures[0].message == (
        f"stopped before the update: {release.ref} failed its health gate before and may not ship again"
    )


def test_a_record_that_cannot_be_written_is_a_warning_not_a_new_failure(
    grpc_fake: FakePulumi, project: Path, tmp_path: Path
) -> None:
    grpc_fake.play({"fixture": "good_deploy.jsonl"}, outputs=OUTPUTS)
    folder = tmp_path / "a-folder"
    folder.mkdir()
    proc = run_deploy(grpc_fake, project, "--stack", STACK, "--record", str(folder))
    assert proc.returncode == 0, proc.stderr
    assert f"deploy: warning: could not write the deploy record {folder}: " in proc.stderr
    assert "Traceback" not in proc.stderr


# --- a release Argo CD reports Degraded is rolled back before the wait's timeout ---


def _index(fixture: str, text: str) -> int:
    return next(i for i, line in enumerate(engine_events.read(fixture)) if text in json.dumps(line))


def _degraded_play(fake: FakePulumi, **refresh: Any) -> None:
    fixture = "degraded_rollback/up-1.jsonl"
    fake.play(
        # The recorded CLI sits in the Application's wait until a signal comes, as the real one does.
        {
            "fixture": fixture,
            "pause_before": [_index(fixture, "received; cancelling")],
            "exit": 255,
            "stderr": "error: update failed",
        },
        {"fixture": "degraded_rollback/up-2.jsonl", "outputs": apps_output(OLD["web"], OLD["api"])},
        outputs=OUTPUTS,
        refresh=refresh,
    )


def test_a_release_degraded_for_the_grace_period_is_rolled_back_without_waiting_for_the_timeout(
    fake: FakePulumi, project: Path, tmp_path: Path
) -> None:
    config = _with_deploy_key(project, {"degradedGraceSeconds": 1})
    _degraded_play(fake)
    path = tmp_path / "record.json"
    proc = run_deploy(fake, project, "--stack", STACK, "--record", str(path))
    assert proc.returncode == 3, proc.stderr
    assert fake.signals() == ["SIGINT"], "one graceful cancel, the deploy's own"
    assert "deploy: Argo CD has reported web Degraded for " in proc.stderr
    assert "(gitops-deploy:deploy.degradedGraceSeconds is 1); cancelling the update" in proc.stderr
    # The stopped wait left the state at the last release: web's Application is read back, then rolled back.
    assert fake.refreshes() == [[WEB_APPLICATION]]
    commands = [c[0] for c in fake.commands() if c[0] in ("up", "refresh")]
    assert commands == ["up", "refresh", "up"]
    first, rollback = fake.ups()
    assert first.config == config
    assert rollback.config["gitops-deploy:apps"][0]["image"]["pin"] == OLD["web"]
    [entry] = json.loads(rollback.config["gitops-deploy:failedReleases"])["web"]
    assert entry["reason"].startswith("Argo CD reported the release Degraded for ")
    assert read_config(project, STACK) == config
    record = read_record(path)
    assert (record.outcome, record.cause) == ("rolled-back", "health")
    web = next(a for a in record.apps if a.name == "web")
    assert (web.phases["sync"].outcome, web.phases["rollback"].outcome) == ("failed", "succeeded")
    assert "health" not in web.phases, "the health check never ran on the Degraded release"


def test_a_refresh_that_fails_stops_the_rollback(
    grpc_fake: FakePulumi, project: Path, tmp_path: Path
) -> None:
    config = _with_deploy_key(project, {"degradedGraceSeconds": 0})
    _degraded_play(grpc_fake, exit=255, stderr="error: could not reach the cluster")
    path = tmp_path / "record.json"
    proc = run_deploy(grpc_fake, project, "--stack", STACK, "--record", str(path))
    assert proc.returncode == 4, proc.stderr
    assert len(grpc_fake.ups()) == 1, "no rollback that would leave web's Application as it is"
    assert "could not read the stopped Applications back" in proc.stderr
    assert "error: could not reach the cluster" in proc.stderr
    assert read_config(project, STACK) == config
    assert read_record(path).outcome == "rollback-failed"


def _reworded(tmp_path: Path, degraded_line: str) -> Path:
    """The recorded Degraded release, had the wait timed out instead (no signal, no `^C received`)."""
    lines = engine_events.read("degraded_rollback/up-1.jsonl")
    kept = [line for line in lines if "stdoutEvent" not in line]
    for line in kept:
        diag = line.get("diagnosticEvent", {})
        if diag.get("urn") == WEB_APPLICATION and diag["severity"] == "error":
            diag["message"] = engine_events.colored(
                '1 error occurred:\n\t* the Kubernetes API server reported that "argocd/web" failed to fully '
                "initialize or become live: timed out waiting for the condition\n\n"
            )
        elif diag.get("urn") == WEB_APPLICATION and "Degraded" in diag["message"]:
            diag["message"] = engine_events.colored(degraded_line)
    path = tmp_path / "timed-out.jsonl"
    restamped = [{**line, "sequence": i} for i, line in enumerate(kept)]
    assert engine_events.check_stream(restamped) == []
    path.write_text("".join(json.dumps(line) + "\n" for line in restamped), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "line",
    [f'Waiting for {WEB_HEALTH} (found "Degraded")', "Health: Degraded (still waiting)"],
    ids=["degraded-but-no-grace-yet", "reworded"],
)
def test_without_a_degraded_spell_to_act_on_the_wait_ends_at_its_timeout(
    grpc_fake: FakePulumi, project: Path, tmp_path: Path, line: str
) -> None:
    """A spell shorter than the grace, or wording the deploy does not recognise: the timeout decides."""
    _with_deploy_key(project, {"degradedGraceSeconds": 600 if "found" in line else 0})
    grpc_fake.play(
        {"fixture": str(_reworded(tmp_path, line)), "exit": 255},
        {"fixture": "degraded_rollback/up-2.jsonl"},
        outputs=OUTPUTS,
    )
    proc = run_deploy(grpc_fake, project, "--stack", STACK)
    assert proc.returncode == 3, proc.stderr
    assert grpc_fake.signals() == [] and grpc_fake.refreshes() == []
    assert "web: Application's wait timed out" in proc.stderr


def test_a_degraded_app_with_nothing_to_roll_back_to_waits_for_its_timeout(
    grpc_fake: FakePulumi, project: Path, tmp_path: Path
) -> None:
    """Stopping early would only cut the other apps' releases short: a first deploy waits it out."""
    _with_deploy_key(project, {"degradedGraceSeconds": 0})
    line = f'Waiting for {WEB_HEALTH} (found "Degraded")'
    grpc_fake.play({"fixture": str(_reworded(tmp_path, line)), "exit": 255}, outputs={})
    proc = run_deploy(grpc_fake, project, "--stack", STACK)
    assert proc.returncode == 1, proc.stderr
    assert grpc_fake.signals() == []
    assert "cannot roll back web: no last known good digest" in proc.stderr
