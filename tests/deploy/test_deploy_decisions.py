"""The deploy's decisions on recorded engine event streams, its command line, and the pin path under mocks.

The deploy flow itself (config, `up` calls, rollback, record, signals) runs through the real
`pulumi.automation` against a stand-in CLI: test_deploy_flow.py and test_deploy_signals.py.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pulumi.automation import OutputValue, UpdateSummary
from pulumi.automation.events import EngineEvent

from deploy import recovery
from deploy.cli import INSTALL_HINT, policy_config
from deploy.decide import (
    built_digests,
    classify,
    is_await_timeout,
    pending_operations,
    pin_key,
    plan_rollback,
    was_cancelled,
)
from deploy.events import app_of, exception_text
from deploy.outcome import EXIT_CODES, Exit
from deploy.report import EXIT_CODES as REPORT_EXIT_CODES
from deploy.view import AppEntry, app_entries, last_known_good
from model.names import APPLICATION_TYPE, HEALTH_CHECK_TYPE
from policy_check.simulate import Simulation
from tests.support import engine_events
from tests.support.engine_events import check_stream, events, read, urn
from tests.support.fake_pulumi import FakePulumi
from tests.support.fake_pulumi.project import OUTPUTS, STACK, make_project

PROJECT_DIR = Path(__file__).resolve().parents[2]
APPS = ("web", "api")
GOOD = {
    "web": "registry.example.com/platform/web@sha256:" + "1" * 64,
    "api": "registry.example.com/platform/api@sha256:" + "2" * 64,
}
NEW_WEB = "registry.example.com/platform/web@sha256:" + "3" * 64
FIXTURES = engine_events.recorded()


def health_urn(app: str) -> str:
    return urn(HEALTH_CHECK_TYPE, f"{app}-health", ["gitops-deploy:index:AppRelease"])


def application_urn(app: str) -> str:
    parents = ["gitops-deploy:index:AppRelease", "gitops-deploy:index:ArgoApplication"]
    return urn(APPLICATION_TYPE, f"{app}-argocd-application", parents)


# --- the recorded streams follow the engine's rules ---


def test_there_is_a_recorded_stream_for_every_case() -> None:
    assert set(FIXTURES) >= {
        "good_deploy.jsonl",
        "health_failure_web.jsonl",
        "rollback_ok.jsonl",
        "rollback_failed.jsonl",
        "registry_401.jsonl",
        "policy_violation.jsonl",
        "cancelled.jsonl",
        "terminated.jsonl",
        "application_timeout.jsonl",
        "application_await_error.jsonl",
    }


@pytest.mark.parametrize("name", FIXTURES)
def test_every_recorded_stream_is_one_the_engine_writes(name: str) -> None:
    lines = read(name)
    assert check_stream(lines) == [], name
    assert "cancelEvent" in lines[-1], f"{name}: the engine always ends with the cancel event"
    parsed = events(name)
    assert parsed[-1].cancel_event is not None and parsed[-2].summary_event is not None


def test_the_rules_reject_streams_the_engine_never_writes() -> None:
    lines = read("health_failure_web.jsonl")
    without_cancel = lines[:-1]
    assert any("cancelEvent" in p for p in check_stream(without_cancel))
    renumbered = [{**line, "sequence": i + 1} for i, line in enumerate(lines)]
    assert any("sequence" in p for p in check_stream(renumbered))
    no_closing = [line for line in lines if "update failed" not in json.dumps(line)]
    assert any("update failed" in p for p in check_stream(engine_events.restamp(no_closing)))
    failed = next(i for i, line in enumerate(lines) if "resOpFailedEvent" in line)
    no_diag = [line for i, line in enumerate(lines) if i != failed - 1]
    assert any("error diagnostic" in p for p in check_stream(engine_events.restamp(no_diag)))
    unknown = [*lines[:2], {"sequence": 2, "timestamp": 0, "surpriseEvent": {}}, *lines[2:]]
    assert any("payload" in p for p in check_stream(engine_events.restamp(unknown)))


# --- §1: the end-of-stream cancel event vs a real cancellation ---


def test_the_closing_cancel_event_of_a_health_failure_is_not_a_cancellation() -> None:
    stream = events("health_failure_web.jsonl")
    assert stream[-1].cancel_event is not None
    verdict = classify(stream, APPS)
    assert not verdict.cancelled and verdict.other == ()
    assert verdict.rollback, "a health failure must roll back, whatever the stream ends with"
    [failure] = verdict.health
    assert (failure.app, failure.kind, failure.urn) == ("web", "health-check", health_urn("web"))


def test_the_health_report_is_the_exception_without_its_traceback() -> None:
    [failure] = classify(events("health_failure_web.jsonl"), APPS).health
    assert failure.report.startswith("health check GET https://web.example.com/healthz FAILED after 10")
    assert "10   wrong-status      503        41 ms" in failure.report
    assert "Traceback" not in failure.report and 'File "' not in failure.report


@pytest.mark.parametrize("name", ["cancelled.jsonl", "terminated.jsonl"])
def test_a_cancelled_or_terminated_update_is_a_cancellation_and_never_rolled_back(name: str) -> None:
    verdict = classify(events(name), APPS)
    assert verdict.cancelled and not verdict.rollback


def test_cancellation_read_from_each_of_its_signs() -> None:
    stdout_only = [e for e in events("cancelled.jsonl") if e.diagnostic_event is None]
    assert was_cancelled(stdout_only), "the cancellation scope's stdout event"
    diag_only = [e for e in events("cancelled.jsonl") if e.stdout_event is None]
    assert was_cancelled(diag_only), "the 'update canceled' diagnostic"
    assert was_cancelled([], "error: update cancelled"), "the CLI's CancelledError"
    assert not was_cancelled(events("rollback_failed.jsonl"), "error: update failed")


def test_a_health_failure_inside_a_cancelled_update_is_not_rolled_back() -> None:
    failed = [
        e for e in events("health_failure_web.jsonl") if e.summary_event is None and e.cancel_event is None
    ]
    tail = [e for e in events("cancelled.jsonl") if e.stdout_event is not None]
    verdict = classify([*failed, *tail], APPS)
    assert [f.app for f in verdict.health] == ["web"] and verdict.cancelled
    assert not verdict.rollback


# --- other failures are reported as they are ---


def test_registry_401_is_reported_as_is() -> None:
    verdict = classify(events("registry_401.jsonl"), APPS)
    assert not verdict.rollback and verdict.health == ()
    [line] = verdict.other
    assert line.startswith(
        "pulumi-python:dynamic/registry:RegistryPreflight registry-preflight: has a problem:"
    )
    assert "401 Unauthorized" in line


def test_mandatory_policy_violation_is_reported_as_is() -> None:
    verdict = classify(events("policy_violation.jsonl"), APPS)
    assert not verdict.rollback
    [line] = verdict.other
    assert line.startswith("policy violation gitops-deploy/image-size-limit on web-image-size: web: image")


def test_advisory_policy_violation_is_not_a_failure() -> None:
    stream = events("health_failure_web.jsonl")
    for event in events("policy_violation.jsonl"):
        if event.policy_event is not None:
            event.policy_event.enforcement_level = "advisory"
            stream.insert(3, event)
    assert classify(stream, APPS).rollback


def test_urnless_errors_other_than_the_closing_line_are_failures() -> None:
    closing = [
        e for e in events("health_failure_web.jsonl") if e.diagnostic_event and not e.diagnostic_event.urn
    ]
    [event] = closing
    assert event.diagnostic_event is not None
    event.diagnostic_event.message = "<{%reset%}>failed to analyze resources: boom<{%reset%}>\n"
    verdict = classify([*events("health_failure_web.jsonl")[:-3], event], APPS)
    assert verdict.other == ("failed to analyze resources: boom",) and not verdict.rollback


def test_health_failure_next_to_another_failure_is_not_rolled_back() -> None:
    failure = events("health_failure_web.jsonl")
    violation = [e for e in events("policy_violation.jsonl") if e.policy_event is not None]
    verdict = classify([*failure, *violation], APPS)
    assert [f.app for f in verdict.health] == ["web"] and len(verdict.other) == 1
    assert not verdict.rollback


def test_events_arriving_through_from_json_keep_their_meaning() -> None:
    """The Automation API parses each `--event-log` line with EngineEvent.from_json: the same verdict."""
    lines = read("health_failure_web.jsonl")
    parsed = [EngineEvent.from_json(json.loads(json.dumps(line))) for line in lines]
    assert classify(parsed, APPS).rollback


# --- §6: an Application whose wait timed out, and one that failed otherwise ---


def test_application_wait_that_timed_out_is_a_health_failure() -> None:
    verdict = classify(events("application_timeout.jsonl"), APPS)
    assert verdict.rollback
    [failure] = verdict.health
    assert (failure.app, failure.kind) == ("api", "application")
    assert failure.report.endswith(
        "failed to fully initialize or become live: timed out waiting for the condition"
    )


def test_application_await_error_that_is_not_a_timeout_is_not_rolled_back() -> None:
    verdict = classify(events("application_await_error.jsonl"), APPS)
    assert verdict.health == () and not verdict.rollback
    [line] = verdict.other
    assert line.startswith(f"{APPLICATION_TYPE} api-argocd-application:")
    assert "has a non-primitive value" in line


@pytest.mark.parametrize(
    "message, timeout",
    [
        # pulumi-kubernetes provider.go Create and Update, generic awaiter (internal/awaiter.go).
        (
            'resource "urn:x" was successfully created, but the Kubernetes API server reported that it '
            "failed to fully initialize or become live: timed out waiting for the condition",
            True,
        ),
        (
            'the Kubernetes API server reported that "argocd/web" failed to fully initialize or become '
            "live: timed out waiting for the condition",
            True,
        ),
        # A built-in awaiter's timeoutError (await/error.go).
        (
            'the Kubernetes API server reported that "apps/web" failed to fully initialize or become '
            "live: 'web' timed out waiting to be Ready",
            True,
        ),
        # The same wrapping around other causes.
        (
            'the Kubernetes API server reported that "argocd/web" failed to fully initialize or become '
            "live: context canceled",
            False,
        ),
        (
            'resource "urn:x" was successfully created, but the Kubernetes API server reported that it '
            'failed to fully initialize or become live: Resource operation was cancelled for "web"',
            False,
        ),
        ("timed out waiting for the condition", False),
        ('admission webhook "validate.argoproj.io" denied the request: application spec is invalid', False),
    ],
)
def test_await_timeout_is_matched_on_its_cause(message: str, timeout: bool) -> None:
    assert is_await_timeout(message) is timeout


# --- what else the deploy reads from a stream ---


def test_pending_operations_from_an_interrupted_run_are_listed() -> None:
    assert pending_operations(events("good_deploy_pending_operations.jsonl")) == [
        f"{health_urn('web')} (interrupted while updating)"
    ]
    assert pending_operations(events("good_deploy.jsonl")) == []


def test_built_digests_come_from_each_docker_image_outputs() -> None:
    assert built_digests(events("health_failure_web.jsonl"), APPS) == {"web": NEW_WEB, "api": GOOD["api"]}
    assert built_digests(events("rollback_ok.jsonl"), APPS) == {"api": GOOD["api"]}


def test_exception_text_strips_tracebacks_and_multierror_lists() -> None:
    traceback = (
        "Traceback (most recent call last):\n"
        '  File "x.py", line 1, in f\n'
        "    raise Boom('a: b')\n"
        "During handling of the above exception, another exception occurred:\n\n"
        "Traceback (most recent call last):\n"
        '  File "y.py", line 2, in g\n'
        "    raise Other()\n"
        "pkg.mod.Other: the message: with colons\n"
        "  and a second line"
    )
    assert exception_text(traceback) == "the message: with colons\n  and a second line"
    assert exception_text("2 errors occurred:\n\t* first\n\t* second\n\n") == "first\nsecond"
    assert exception_text("<{%reset%}>plain<{%reset%}>\n") == "plain"


def test_app_of_matches_by_type_suffix_and_app_name() -> None:
    apps = ("web", "web-health", "api")
    assert app_of(health_urn("web"), apps) == "web"
    assert app_of(health_urn("web-health"), apps) == "web-health"
    assert app_of(application_urn("api"), apps) == "api"
    assert app_of(health_urn("gone"), apps) is None


def test_health_check_of_an_unknown_app_is_reported_as_is() -> None:
    verdict = classify(events("health_failure_web.jsonl"), ("api",))
    assert not verdict.rollback and verdict.other[0].startswith(f"{HEALTH_CHECK_TYPE} web-health:")


def test_last_known_good_reads_the_apps_output() -> None:
    outputs = {
        "apps": OutputValue(
            {
                "web": {"imageDigest": GOOD["web"], "application": "web", "pullSecret": "web-registry"},
                "api": {"imageDigest": "registry.example.com/platform/api:latest"},
            },
            secret=False,
        )
    }
    assert last_known_good(outputs) == {"web": GOOD["web"]}
    assert last_known_good({}) == {}
    assert last_known_good({"apps": {"api": {"imageDigest": GOOD["api"]}}}) == {"api": GOOD["api"]}


def _apps_config() -> list[dict[str, Any]]:
    return [
        {"name": "web", "namespace": "web", "image": {"repository": "registry.example.com/platform/web"}},
        {"name": "api", "namespace": "web", "image": {"repository": "registry.example.com/platform/api"}},
    ]


def test_app_entries_from_the_cli_config_json() -> None:
    config = _apps_config()
    config[1]["image"]["pin"] = GOOD["api"]
    assert app_entries(json.dumps(config)) == {
        "web": AppEntry(0, "registry.example.com/platform/web", None),
        "api": AppEntry(1, "registry.example.com/platform/api", GOOD["api"]),
    }
    assert app_entries(None) == {} and app_entries("not json") == {}


def test_plan_pins_each_failed_app_to_its_last_known_good_digest() -> None:
    entries = app_entries(_apps_config())
    stream = [*events("application_timeout.jsonl")[:-3], *events("health_failure_web.jsonl")]
    plan = plan_rollback(classify(stream, entries), GOOD, entries)
    assert [(p.app, p.key, p.digest, p.previous) for p in plan.pins] == [
        ("api", "gitops-deploy:apps[1].image.pin", GOOD["api"], None),
        ("web", "gitops-deploy:apps[0].image.pin", GOOD["web"], None),
    ]
    assert plan.stuck == ()


def test_plan_cannot_roll_back_a_first_deploy_or_a_moved_repository() -> None:
    apps = _apps_config()
    apps[1]["image"]["repository"] = "registry.example.com/team/api"
    entries = app_entries(apps)
    stream = [*events("application_timeout.jsonl")[:-3], *events("health_failure_web.jsonl")]
    plan = plan_rollback(classify(stream, entries), {"api": GOOD["api"]}, entries)
    assert plan.pins == ()
    assert plan.stuck[0].startswith("api: the last known good digest")
    assert "not in the configured repository registry.example.com/team/api" in plan.stuck[0]
    assert plan.stuck[1].startswith("web: no last known good digest")


def test_pin_key_is_the_documented_path_key() -> None:
    assert pin_key(2) == "gitops-deploy:apps[2].image.pin"
    assert policy_config("dev") == "policies/config.dev.json"
    assert policy_config("acme/gitops-deploy/prod") == "policies/config.prod.json"


# --- §5: locked stacks and in-progress updates ---

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
DIY_LOCK = (
    "error: the stack is currently locked by 1 lock(s). Either wait for the other process(es) to end or "
    "delete the lock file with `pulumi cancel`.\n"
    "  s3://state/.pulumi/locks/organization/gitops-deploy/prod/1f.json: "
    "created by runner@{host} (pid {pid}) at {time}"
)


def _lock(host: str, pid: int, minutes_ago: int) -> str:
    return DIY_LOCK.format(host=host, pid=pid, time=(NOW - timedelta(minutes=minutes_ago)).isoformat())


def _explain(stderr: str, history: Sequence[UpdateSummary] | None = None, **kw: Any) -> recovery.Conflict:
    kw.setdefault("alive", lambda pid: pid == 4242)
    return recovery.explain(
        stderr, history, now=NOW, stale_after=timedelta(minutes=30), hostname="here", **kw
    )


def _summary(result: str, minutes_ago: int) -> UpdateSummary:
    start = (NOW - timedelta(minutes=minutes_ago)).replace(tzinfo=None)
    return UpdateSummary("update", start, "", {}, {}, result, None)


def test_diy_lock_of_a_live_process_here_is_an_update_in_progress() -> None:
    conflict = _explain(_lock("here", 4242, 3))
    assert conflict.kind == "in-progress"
    assert "runner@here (pid 4242) since 2026-05-01T11:57:00Z (3 min ago)" in conflict.summary


def test_diy_lock_of_a_dead_process_or_an_old_lock_is_left_over() -> None:
    assert _explain(_lock("here", 99, 1)).kind == "left-over"
    assert _explain(_lock("elsewhere", 4242, 45)).kind == "left-over"


def test_diy_lock_from_another_machine_recently_is_undecided() -> None:
    assert _explain(_lock("elsewhere", 4242, 5)).kind == "unknown"


def test_409_is_in_progress_only_while_the_update_is_recent() -> None:
    conflict = _explain(recovery.CONFLICT_TEXT, [_summary("in-progress", 4)])
    assert conflict.kind == "in-progress"
    assert conflict.summary.endswith("an update started at 2026-05-01T11:56:00Z (4 min ago)")
    assert _explain(recovery.CONFLICT_TEXT, [_summary("in-progress", 50)]).kind == "left-over"
    assert _explain(recovery.CONFLICT_TEXT, [_summary("failed", 4)]).kind == "unknown"
    assert _explain(recovery.CONFLICT_TEXT, None).kind == "unknown"


def test_the_runbook_names_the_commands_the_cli_really_has() -> None:
    commands = [line for line in recovery.runbook("prod") if not line.startswith(" ")]
    assert commands == [
        "pulumi cancel --stack prod --yes",
        "pulumi refresh --stack prod --yes --import-pending-creates URN --import-pending-creates "
        "NAMESPACE/NAME --clear-pending-creates",
        "python -m deploy up --stack prod",
    ]
    # The flags exist in the CLI source we read (pkg/cmd/pulumi/cancel/cancel.go, operations/refresh.go).
    refresh = _cli_source("pkg/cmd/pulumi/operations/refresh.go")
    cancel = _cli_source("pkg/cmd/pulumi/cancel/cancel.go")
    if refresh is None or cancel is None:
        pytest.skip("the pulumi/pulumi mirror is not on this machine")
    assert '"clear-pending-creates"' in refresh and '"import-pending-creates"' in refresh
    assert 'Use:   "cancel"' in cancel and '&yes, "yes", "y"' in cancel


def _runbook_commands(project: Path) -> list[list[str]]:
    """The runbook's `pulumi` commands, split as a shell splits them."""
    return [shlex.split(line) for line in recovery.runbook(STACK) if line.startswith("pulumi ")]


def _run_pulumi(fake: FakePulumi, project: Path, argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), cwd=project, env=fake.env(), capture_output=True, text=True, timeout=60)


def test_each_runbook_command_parses_as_the_cli_parses_it(tmp_path: Path) -> None:
    """As printed (placeholders and all: an id that names no pending create is only a warning)."""
    project = make_project(tmp_path / "project")
    fake = FakePulumi(tmp_path / "fake")
    fake.play(outputs=OUTPUTS)
    for argv in _runbook_commands(project):
        result = _run_pulumi(fake, project, argv)
        assert result.returncode == 0, (argv, result.stderr)
    assert fake.usage_errors() == []
    # The form the runbook printed before: a second value after one --import-pending-creates is a
    # positional argument, which `pulumi refresh` refuses.
    old = ["pulumi", "refresh", "--stack", STACK, "--yes", "--import-pending-creates", "urn", "id"]
    assert _run_pulumi(fake, project, old).returncode != 0
    assert fake.usage_errors()[-1].startswith('unknown command "id"')


def test_the_runbook_keeps_a_finished_create_and_drops_the_rest(tmp_path: Path) -> None:
    """A pending create of web's Application that did reach the cluster is imported, not dropped
    (dropped, the next `up` would fail with AlreadyExists); api's HealthCheck create is dropped."""
    project = make_project(tmp_path / "project")
    fake = FakePulumi(tmp_path / "fake")
    application, health = application_urn("web"), health_urn("api")
    fake.play(
        outputs=OUTPUTS,
        pending=[{"urn": application, "type": "creating"}, {"urn": health, "type": "creating"}],
    )
    [cancel, refresh] = _runbook_commands(project)
    assert _run_pulumi(fake, project, cancel).returncode == 0
    filled = [{recovery.IMPORT_URN: application, recovery.IMPORT_ID: "argocd/web"}.get(a, a) for a in refresh]
    result = _run_pulumi(fake, project, filled)
    assert result.returncode == 0, result.stderr
    state = fake.state()
    assert state["pending"] == [] and state["state"] == {application: "argocd/web"}


def _cli_source(path: str) -> str | None:
    repo = Path("/work/.mirror/pulumi+pulumi/repo")
    if not repo.exists():
        return None
    proc = subprocess.run(["git", "-C", str(repo), "show", f"HEAD:{path}"], capture_output=True, text=True)
    return proc.stdout if proc.returncode == 0 else None


# --- the command line ---


def _cli(args: Sequence[str], path: str, cwd: Path = PROJECT_DIR) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PULUMI_BACKEND_URL", "PULUMI_ACCESS_TOKEN")}
    env["PATH"] = path
    env["PYTHONPATH"] = str(PROJECT_DIR)
    return subprocess.run(
        [sys.executable, "-m", "deploy", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


def test_missing_pulumi_cli_is_a_clear_error(tmp_path: Path) -> None:
    proc = _cli(["up", "--stack", "dev"], path=str(tmp_path))
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert f"deploy: error: {INSTALL_HINT}" in proc.stderr
    assert "https://www.pulumi.com/docs/install/" in proc.stderr


def test_missing_policy_config_is_a_clear_error(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # Only looked up on PATH, never run: the check stops before any CLI call.
    fake = bin_dir / "pulumi"
    fake.write_text("#!/bin/sh\nexit 99\n")
    fake.chmod(0o755)
    project = tmp_path / "project"
    project.mkdir()
    (project / "Pulumi.yaml").write_text("name: p\nruntime: python\n")
    proc = _cli(["up", "--stack", "dev", "--work-dir", str(project)], path=str(bin_dir))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "policy pack config policies/config.dev.json not found" in proc.stderr


@pytest.mark.parametrize(
    "args, named",
    [
        (["up"], "--stack"),
        (["up", "--stack", "dev", "--allow-failed-release", "web"], "'<app>:<content tag>'"),
        (["up", "--stack", "dev", "--cancel-grace", "0"], "--cancel-grace"),
        (["up", "--stack", "dev", "--cancel-grace", "0"], "a number of seconds above 0, at most 3600"),
        (["up", "--stack", "dev", "--stale-after", "soon"], "--stale-after"),
        (["up", "--stack", "dev", "--stale-after", "1441"], "a number of minutes above 0, at most 1440"),
    ],
)
def test_usage_errors_name_the_option(tmp_path: Path, args: list[str], named: str) -> None:
    proc = _cli(args, path=str(tmp_path))
    assert proc.returncode == 2 and named in proc.stderr and "Traceback" not in proc.stderr


def _help(*args: str) -> str:
    proc = _cli([*args, "--help"], path="/nonexistent")
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    return proc.stdout


def _words(text: str) -> str:
    return " ".join(text.split())


def test_help_says_what_the_deploy_does_its_commands_and_every_exit_code() -> None:
    text = _words(_help())
    assert text.startswith("usage: python -m deploy [-h] COMMAND ...")
    assert "Deploy a gitops-deploy stack and measure it." in text, "a user's description, not a docstring"
    assert "up deploy a stack; roll apps that fail their release gate back" in text
    assert "report summarize deploy records" in text
    for code, meaning in EXIT_CODES:
        assert f"{code} {meaning}" in text, code
    for code, meaning in REPORT_EXIT_CODES:
        assert f"{code} {meaning}" in text, code
    # The codes the help promises are the ones the deploy returns.
    assert {int(c) for code, _ in EXIT_CODES for c in code.split(", ")} == {
        Exit.OK, Exit.FAILED, Exit.SETUP, Exit.ROLLED_BACK, Exit.ROLLBACK_FAILED, Exit.BLOCKED, Exit.LOCKED,
        128 + signal.SIGINT, 128 + signal.SIGTERM,
    }  # fmt: skip


def test_up_help_names_every_option_and_exit_code() -> None:
    text = _words(_help("up"))
    assert text.startswith(
        "usage: python -m deploy up [-h] --stack STACK [--work-dir WORK_DIR] [--record FILE]"
    )
    assert "check that each app's rollback target still exists in the registry" in text
    assert "Argo CD reports the release Degraded for gitops-deploy:deploy.degradedGraceSeconds" in text
    for option in (
        "--stack",
        "--work-dir",
        "--record FILE",
        "--allow-failed-release APP:TAG",
        "--cancel-grace",
    ):
        assert option in text, option
    assert "write the deploy record (JSON: outcome, digests, phase timings, cause) to FILE" in text
    for code, meaning in EXIT_CODES:
        assert f"{code} {meaning}" in text, code


def test_report_help_says_what_it_reads_and_its_exit_codes() -> None:
    text = _words(_help("report"))
    assert text.startswith(
        "usage: python -m deploy report [-h] [--format {json,markdown,table}] [--since DATE] [--until DATE] "
        "PATH [PATH ...]"
    )
    assert "Summarize gitops-deploy deploy records" in text and "mean time to recovery" in text
    for code, meaning in REPORT_EXIT_CODES:
        assert f"{code} {meaning}" in text, code


# --- the pin path of AppImage, under the SDK's mocks ---

PINS = {
    "web": "registry.example.com/platform/web@sha256:" + "a" * 64,
    "api": "registry.example.com/platform/api@sha256:" + "b" * 64,
}


def _app_types(sim: Simulation, app: str) -> list[str]:
    release = next(r for r in sim.by_type("gitops-deploy:index:AppRelease") if r.name == app)
    found, frontier = [], {release.urn}
    while frontier:
        children = [r for r in sim.resources if r.parent in frontier]
        found += [r.type for r in children]
        frontier = {r.urn for r in children}
    return found


def _application(sim: Simulation, app: str) -> dict[str, Any]:
    [res] = [r for r in sim.by_type(APPLICATION_TYPE) if r.inputs["metadata"]["name"] == app]
    return res.inputs


@pytest.mark.parametrize("stack, app", [("dev", "web"), ("staging", "web"), ("staging", "api")])
def test_pinned_app_builds_nothing_and_runs_the_pinned_digest(
    run_program: Callable[..., Simulation],
    stack_config: Callable[[str], dict[str, Any]],
    stack: str,
    app: str,
) -> None:
    cfg = stack_config(stack)
    cfg.pop("gitops-deploy:promote", None)  # the other apps build here
    apps = cfg["gitops-deploy:apps"]
    entry = next(a for a in apps if a["name"] == app)
    built = run_program(stack, config=cfg)
    entry["image"]["pin"] = PINS[app]
    # A rollback may go to a digest whose build context is gone; a pinned app must not need it.
    entry["image"]["context"] = "no/such/dir"
    sim = run_program(stack, config=cfg)
    assert "docker:index/image:Image" not in _app_types(sim, app), f"{app}: a pinned app must not build"
    assert sim.exports["apps"][app]["imageDigest"] == PINS[app]
    source = _application(sim, app)["spec"]["source"]
    repository, digest = PINS[app].split("@")
    if entry["source"]["type"] == "helm":
        assert source["helm"]["valuesObject"]["image"]["repository"] == repository
        assert source["helm"]["valuesObject"]["image"]["digest"] == digest
    else:
        assert source["kustomize"]["images"] == [f"{entry['source']['imageName']}={PINS[app]}"]
    for other in (a["name"] for a in apps if a["name"] != app):
        assert "docker:index/image:Image" in _app_types(sim, other), f"{other}: unpinned apps still build"
    # The gate's trigger covers the deployed digest (test_health_trigger.py has the whole rule).
    [check] = [r for r in sim.by_type(HEALTH_CHECK_TYPE) if r.name == f"{app}-health"]
    [before] = [r for r in built.by_type(HEALTH_CHECK_TYPE) if r.name == f"{app}-health"]
    assert check.inputs["trigger"] != before.inputs["trigger"]
