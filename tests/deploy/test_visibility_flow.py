"""`python -m deploy up` reporting to a stand-in GitHub and a loopback webhook, against the stand-in `pulumi`:
the deployment and its statuses, one notification per event, and neither ever failing or slowing a deploy."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from deploy import notices
from deploy.outcome import Exit
from tests.deploy.test_deploy_flow import CONFLICT
from tests.support.engine_events import read
from tests.support.fake_pulumi import GRPC_TRANSPORT, FakePulumi, run_deploy
from tests.support.fake_pulumi.fixtures import fake_fixture, project_fixture
from tests.support.fake_pulumi.project import CONFIG, OLD, OUTPUTS, STACK, tag, write_config
from tests.support.github_api import OWNER, REPO, SHA, TOKEN, Failure, GitHubAPI
from tests.support.webhook_server import SECRET_PATH, Answer, WebhookServer

pytestmark = pytest.mark.cli

project = project_fixture()
fake = fake_fixture(GRPC_TRANSPORT)
NOTIFY = "gitops-deploy:notify"
DOCUMENT = Draft202012Validator(notices.SCHEMA)
BOUND_S = 6.0
"""What GitHub (5 s) may add to a deploy, with room for a loaded machine."""


@pytest.fixture
def github() -> Iterator[GitHubAPI]:
    api = GitHubAPI()
    yield api
    api.close()


@pytest.fixture
def hook() -> Iterator[WebhookServer]:
    server = WebhookServer()
    yield server
    server.close()


def actions_env(api: GitHubAPI) -> dict[str, str]:
    """What GitHub Actions gives the deploy step (deploy-stack.yml passes the token)."""
    return {
        "GITHUB_ACTIONS": "true", "GITHUB_API_URL": api.api_url, "GITHUB_REPOSITORY": f"{OWNER}/{REPO}",
        "GITHUB_SHA": SHA, "GITHUB_TOKEN": TOKEN, "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_RUN_ID": "7",
    }  # fmt: skip


def with_webhook(
    fake: FakePulumi, project: Path, hook: WebhookServer, *, fmt: str = "json", plain: bool = False
) -> None:
    """The stack's notify key: encrypted (its plaintext given to the stand-in as the CLI decrypts it)."""
    value = {"url": hook.url, "format": fmt}
    write_config(project, {**CONFIG, NOTIFY: value if plain else {"secure": "v1:bm90aWZ5"}})
    fake.scenario["secrets"] = {} if plain else {NOTIFY: json.dumps(value)}
    fake.write()


def deploy(fake: FakePulumi, project: Path, api: GitHubAPI | None, *args: str) -> tuple[Any, dict[str, Any]]:
    path = project.parent / "record.json"
    env = actions_env(api) if api is not None else {}
    proc = run_deploy(fake, project, "--stack", STACK, "--record", str(path), *args, env=env)
    for text in (proc.stdout, proc.stderr, path.read_text(encoding="utf-8")):
        assert TOKEN not in text and SECRET_PATH not in text and "T0KEN" not in text
    return proc, json.loads(path.read_text(encoding="utf-8"))


def events(hook: WebhookServer) -> list[str]:
    for body in hook.delivered:
        assert list(DOCUMENT.iter_errors(body)) == [], body
    return [body["event"] for body in hook.delivered]


def play(fake: FakePulumi, *ups: dict[str, Any], outputs: dict[str, Any] = OUTPUTS) -> None:
    secrets = fake.scenario.get("secrets", {})
    fake.play(*ups, outputs=outputs, secrets=secrets)


# --- what a deploy leaves ---


def test_a_good_deploy_leaves_a_successful_deployment_and_the_gate_notification(
    fake: FakePulumi, project: Path, github: GitHubAPI, hook: WebhookServer
) -> None:
    with_webhook(fake, project, hook)
    play(fake, {"fixture": "good_deploy.jsonl"})
    proc, record = deploy(fake, project, github)
    assert proc.returncode == Exit.OK, proc.stderr
    assert github.problems() == []
    assert github.environment(STACK) == [["in_progress", "success"]]
    [deployment] = github.deployments
    assert deployment.sha == SHA and deployment.payload["apps"]["web"]["digestBefore"] == OLD["web"]
    final = deployment.statuses[-1]
    assert final["environment_url"] == "https://web.example.com/healthz", "the first app's health URL"
    assert final["log_url"] == f"https://github.com/{OWNER}/{REPO}/actions/runs/7"
    assert final["description"] == f"deployed api sha256:{'2' * 12}, web sha256:{'1' * 12}"
    assert events(hook) == ["gate"]
    assert hook.delivered[0]["details"]["passed"] is True and hook.delivered[0]["stack"] == STACK
    assert record["warnings"] == [] and "GitHub" not in proc.stderr and "notification" not in proc.stderr


def test_a_rolled_back_release_fails_its_deployment_and_notifies_the_gate_and_the_rollback(
    fake: FakePulumi, project: Path, github: GitHubAPI, hook: WebhookServer
) -> None:
    with_webhook(fake, project, hook)
    play(fake, {"fixture": "health_failure_web.jsonl", "exit": 255}, {"fixture": "rollback_ok.jsonl"})
    proc, _ = deploy(fake, project, github)
    assert proc.returncode == Exit.ROLLED_BACK, proc.stderr
    assert github.problems() == [] and github.environment(STACK) == [["in_progress", "failure"]]
    description = github.deployments[0].statuses[-1]["description"]
    assert description.startswith(f"rolled back (health): restored web sha256:{'1' * 12}; health check GET")
    assert events(hook) == ["gate", "rollback"]
    gate, rollback = hook.delivered
    assert [a["app"] for a in gate["details"]["apps"] if not a["passed"]] == ["web"]
    assert gate["details"]["passed"] is False and "FAILED" in gate["text"]
    assert rollback["details"]["outcome"] == "restored"
    assert rollback["details"]["apps"] == [{"app": "web", "digest": OLD["web"]}]


def test_the_earlier_deployment_stays_live_after_a_rollback_and_is_retired_by_the_next_success(
    fake: FakePulumi, project: Path, github: GitHubAPI
) -> None:
    for ups in (
        [{"fixture": "good_deploy.jsonl"}],
        [{"fixture": "health_failure_web.jsonl", "exit": 255}, {"fixture": "rollback_ok.jsonl"}],
        [{"fixture": "good_deploy.jsonl"}],
    ):
        play(fake, *ups)
        deploy(fake, project, github)
    assert github.environment(STACK) == [
        ["in_progress", "success", "inactive"],
        ["in_progress", "failure"],
        ["in_progress", "success"],
    ]


@pytest.mark.parametrize("how", ["locked", "blocked"])
def test_a_stopped_deploy_ends_its_deployment_and_says_why(
    fake: FakePulumi, project: Path, github: GitHubAPI, hook: WebhookServer, how: str
) -> None:
    with_webhook(fake, project, hook)
    if how == "locked":
        play(fake, {"refuse": CONFLICT, "exit": 255})
    else:
        failed = {
            "tag": "ctx-000000000000",
            "digest": None,
            "failedAt": "2026-05-01T12:00:00Z",
            "reason": "x",
        }
        failed["tag"] = tag(project, "web")
        play(fake, {"fixture": "good_deploy.jsonl"}, outputs={**OUTPUTS, "failedReleases": {"web": [failed]}})
    proc, _ = deploy(fake, project, github)
    assert proc.returncode == (Exit.LOCKED if how == "locked" else Exit.BLOCKED), proc.stderr
    assert github.environment(STACK) == [["in_progress", "error" if how == "locked" else "failure"]]
    assert events(hook) == ["stopped"]
    assert (
        hook.delivered[0]["details"]["by"] == how and hook.delivered[0]["details"]["exit"] == proc.returncode
    )


def test_slack_format_posts_one_text_line(fake: FakePulumi, project: Path, hook: WebhookServer) -> None:
    with_webhook(fake, project, hook, fmt="slack")
    play(fake, {"fixture": "good_deploy.jsonl"})
    proc, _ = deploy(fake, project, None)
    assert proc.returncode == Exit.OK, proc.stderr
    [body] = hook.delivered
    assert set(body) == {"text"} and body["text"].startswith(
        f"*gitops-deploy {STACK}* (gate): the release passed"
    )


def test_a_webhook_in_plain_text_gets_one_warning(
    fake: FakePulumi, project: Path, hook: WebhookServer
) -> None:
    with_webhook(fake, project, hook, plain=True)
    play(fake, {"fixture": "good_deploy.jsonl"})
    proc = run_deploy(fake, project, "--stack", STACK)
    assert proc.returncode == Exit.OK, proc.stderr
    [line] = [line for line in proc.stderr.splitlines() if "plain text" in line]
    assert line.startswith(f"deploy: warning: {NOTIFY} (the webhook to 127.0.0.1) is stored in plain text")
    assert len(hook.delivered) == 1, "it is still used"


# --- nothing here fails or slows a deploy ---


@pytest.mark.parametrize(
    ("failure", "words"),
    [
        (Failure(500), "answered 500 Internal Server Error (2 tries)"),
        (Failure(403, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "4102444800"}), "(rate-limited)"),
        (Failure(401), "answered 401 Unauthorized (1 try)"),
        (Failure(hang=True), "did not answer within"),
    ],
    ids=["500", "403-rate-limited", "401", "hang"],
)
def test_github_failing_is_one_warning_and_a_note_in_the_record(
    fake: FakePulumi, project: Path, github: GitHubAPI, failure: Failure, words: str
) -> None:
    play(fake, {"fixture": "good_deploy.jsonl"})
    github.failure = failure
    start = time.monotonic()
    proc, record = deploy(fake, project, github)
    elapsed = time.monotonic() - start
    assert proc.returncode == Exit.OK, proc.stderr
    [line] = [line for line in proc.stderr.splitlines() if "GitHub" in line]
    assert (
        line.startswith("deploy: warning: GitHub deployment statuses not reported: 127.0.0.1 ")
        and words in line
    )
    [note] = record["warnings"]
    assert note.startswith("GitHub deployment statuses not reported:") and words in note
    assert len(github.requests) <= 2, "after GitHub failed, the deploy leaves it alone"
    assert elapsed < 60, elapsed  # the stand-in deploy itself; the bound is checked just below
    if failure.hang:
        assert elapsed >= 4.5, "the hang used its allowance"


def test_a_hanging_github_adds_at_most_its_allowance(
    fake: FakePulumi, project: Path, github: GitHubAPI
) -> None:
    play(fake, {"fixture": "good_deploy.jsonl"})
    start = time.monotonic()
    deploy(fake, project, None)
    baseline = time.monotonic() - start
    github.failure = Failure(hang=True)
    play(fake, {"fixture": "good_deploy.jsonl"})
    start = time.monotonic()
    proc, _ = deploy(fake, project, github)
    assert proc.returncode == Exit.OK
    assert time.monotonic() - start - baseline < BOUND_S


@pytest.mark.parametrize("answer", [Answer(500), Answer(hang=True)], ids=["500", "hang"])
def test_a_failing_webhook_is_one_warning_and_never_changes_the_exit(
    fake: FakePulumi, project: Path, hook: WebhookServer, answer: Answer
) -> None:
    with_webhook(fake, project, hook)
    hook.script = [answer] * 20
    play(fake, {"fixture": "health_failure_web.jsonl", "exit": 255}, {"fixture": "rollback_ok.jsonl"})
    start = time.monotonic()
    proc, record = deploy(fake, project, None)
    assert proc.returncode == Exit.ROLLED_BACK, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if "notification" in line]
    assert len(warnings) == 1 and warnings[0].startswith(
        "deploy: warning: the gate notification was not delivered"
    )
    [note] = record["warnings"]
    assert note.startswith("2 of 2 notifications to 127.0.0.1 not delivered")
    assert hook.delivered == [] and 1 <= len(hook.bodies) <= 6, "three tries each at most"
    assert time.monotonic() - start < 60


def test_github_deployments_asked_for_without_a_token_is_a_setup_error(
    fake: FakePulumi, project: Path
) -> None:
    proc = run_deploy(fake, project, "--stack", STACK, "--github-deployments")
    assert proc.returncode == Exit.SETUP
    assert proc.stderr.strip() == (
        "deploy: error: --github-deployments: GITHUB_REPOSITORY, GITHUB_SHA, GITHUB_TOKEN are not set"
    )


def test_under_actions_without_a_token_the_statuses_are_off_with_a_note(
    fake: FakePulumi, project: Path
) -> None:
    play(fake, {"fixture": "good_deploy.jsonl"})
    proc = run_deploy(fake, project, "--stack", STACK, env={"GITHUB_ACTIONS": "true", "GITHUB_SHA": SHA})
    assert proc.returncode == Exit.OK, proc.stderr
    assert (
        "deploy: note: GitHub deployment statuses are off: GITHUB_REPOSITORY, GITHUB_TOKEN are not set"
        in (proc.stderr)
    )
    off = run_deploy(
        fake, project, "--stack", STACK, "--no-github-deployments", env={"GITHUB_ACTIONS": "true"}
    )
    assert "GitHub" not in off.stderr


def test_a_signal_ends_the_deployment_with_error_and_notifies_the_stop(
    fake: FakePulumi, project: Path, github: GitHubAPI, hook: WebhookServer
) -> None:
    with_webhook(fake, project, hook)
    pause = next(i for i, line in enumerate(read("cancelled.jsonl")) if "stdoutEvent" in str(line))
    play(fake, {"fixture": "cancelled.jsonl", "exit": 255, "pause_before": [pause]})
    path = project.parent / "record.json"
    argv = [sys.executable, "-m", "deploy", "up", "--work-dir", str(project), "--stack", STACK]
    proc = subprocess.Popen(
        [*argv, "--record", str(path)], cwd=project, env={**fake.env(), **actions_env(github)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        fake.wait_until_waiting(1)
        os.kill(proc.pid, signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGINT, stderr
    for text in (stdout, stderr, path.read_text(encoding="utf-8")):
        assert TOKEN not in text and SECRET_PATH not in text
    assert github.problems() == [] and github.environment(STACK) == [["in_progress", "error"]]
    assert events(hook) == ["stopped"]
    assert hook.delivered[0]["details"] == {
        "by": "signal",
        "reason": "interrupted by SIGINT: update canceled",
        "exit": 130,
    }


def test_a_promoting_stack_notifies_the_promotion_with_the_digests_it_runs(
    fake: FakePulumi, project: Path, hook: WebhookServer
) -> None:
    with_webhook(fake, project, hook)
    write_config(
        project, {**CONFIG, NOTIFY: {"secure": "v1:bm90aWZ5"}, "gitops-deploy:promote": {"from": "dev"}}
    )
    play(fake, {"fixture": "good_deploy.jsonl"})
    proc, _ = deploy(fake, project, None)
    assert proc.returncode == Exit.OK, proc.stderr
    assert events(hook) == ["gate", "promotion"]
    promotion = hook.delivered[1]
    assert promotion["details"] == {"from": "dev", "outcome": "succeeded", "digests": OLD}
    assert promotion["text"].startswith(
        "promoted dev's digests (api registry.example.com/platform/api@sha256:"
    )


def test_a_broken_notify_value_is_one_warning_that_never_shows_the_url(
    fake: FakePulumi, project: Path
) -> None:
    url = "ftp://hooks.example.com/services/T0KEN-IN-THE-PATH"
    write_config(project, {**CONFIG, NOTIFY: {"secure": "v1:bm90aWZ5"}})
    fake.scenario["secrets"] = {NOTIFY: json.dumps({"url": url})}
    fake.write()
    play(fake, {"fixture": "good_deploy.jsonl"})
    proc, record = deploy(fake, project, None)
    assert proc.returncode == Exit.OK, proc.stderr
    assert f"deploy: warning: no notifications: {NOTIFY}.url: got a value that is not one (not shown" in (
        proc.stderr
    )
    assert "T0KEN" not in proc.stderr + proc.stdout
    assert record["warnings"] == []
