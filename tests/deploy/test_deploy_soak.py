"""`python -m deploy up` soaks what it released: the real `pulumi.automation` against the stand-in `pulumi`
(tests/support/fake_pulumi), the release's health endpoint a real server on 127.0.0.1."""

from __future__ import annotations

import copy
import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deploy.runtime_config import SOAKED_KEY
from deploy.visibility import NOTIFY_CONFIG_KEY
from model.record import read_record
from tests.support.fake_pulumi import (
    FILE_TRANSPORT,
    GRPC_TRANSPORT,
    FakePulumi,
    read_config,
    run_deploy,
    start_deploy,
)
from tests.support.fake_pulumi.fixtures import fake_fixture, project_fixture
from tests.support.fake_pulumi.project import CONFIG, NEW_WEB, OLD, OUTPUTS, STACK, apps_output, write_config
from tests.support.health_servers import Reply, ScriptedServer
from tests.support.kube_api import Flow, StandInKubeAPI, kubeconfig, load_flow
from tests.support.processes import wait_until
from tests.support.webhook_server import SECRET_PATH, WebhookServer

pytestmark = pytest.mark.cli

HEADERS_KEY = "gitops-deploy:healthHeaders"
TOKEN = "Bearer soak-cli-secret-58d1"

project = project_fixture()
fake = fake_fixture(FILE_TRANSPORT, GRPC_TRANSPORT)
grpc_fake = fake_fixture(GRPC_TRANSPORT)


def _soak_config(project: Path, url: str, **soak: Any) -> dict[str, Any]:
    """web soaks (its health URL on 127.0.0.1, a secret header); api's soak is off."""
    config = copy.deepcopy(CONFIG)
    web, api = config["gitops-deploy:apps"]
    web["health"]["url"] = url
    api["soak"] = {"seconds": 0}
    config["gitops-deploy:deploy"] = {"soak": {"seconds": 2, "intervalSeconds": 1, **soak}}
    config[HEADERS_KEY] = {"secure": "v1:aGVhZGVycw=="}
    write_config(project, config)
    return config


def _secrets() -> dict[str, str]:
    return {HEADERS_KEY: json.dumps({"web": {"Authorization": TOKEN}})}


@pytest.fixture
def flaky() -> Iterator[ScriptedServer]:
    """The release answers 503 twice (the new release's soak), then 200 (the restored release's)."""
    with ScriptedServer({"/healthz": [Reply(503), Reply(503), Reply(200)]}) as server:
        yield server


def test_a_failed_soak_rolls_back_as_a_failed_gate_and_the_restored_release_is_soaked_and_marked(
    fake: FakePulumi, project: Path, flaky: ScriptedServer, tmp_path: Path
) -> None:
    config = _soak_config(project, flaky.url("/healthz"), failuresInARow=2, maxErrorPercent=100)
    fake.play(
        {"fixture": "good_deploy.jsonl", "outputs": apps_output(NEW_WEB, OLD["api"])},
        {"fixture": "rollback_ok.jsonl", "outputs": apps_output(OLD["web"], OLD["api"])},
        outputs=OUTPUTS,
        secrets=_secrets(),
    )
    path = tmp_path / "record.json"
    proc = run_deploy(fake, project, "--stack", STACK, "--record", str(path))
    assert proc.returncode == 3, proc.stderr
    release, rollback, follow_up = fake.ups()
    assert release.config == config
    # The same pin path as a failed gate: web pinned to its last good digest, a fresh rollbackId, the record.
    assert rollback.config["gitops-deploy:apps"][0]["image"]["pin"] == OLD["web"]
    assert "gitops-deploy:rollbackId" in rollback.config
    [entry] = json.loads(rollback.config["gitops-deploy:failedReleases"])["web"]
    assert entry["reason"].startswith(
        "soak failed after 1 s of 2 s: 2 failed probes in a row (failuresInARow 2)"
    )
    # The restored release passed its soak: one follow-up update marks it, with web still pinned.
    assert json.loads(follow_up.config.pop(SOAKED_KEY)) == {"web": OLD["web"]}
    assert follow_up.config["gitops-deploy:apps"][0]["image"]["pin"] == OLD["web"]
    assert "gitops-deploy:rollbackId" not in follow_up.config
    assert read_config(project, STACK) == config, "the stack file is never changed"
    assert [h.get("Authorization") for h in flaky.headers_seen] == [TOKEN] * len(flaky.headers_seen)
    for words in (
        "deploy: soaking web (release " + NEW_WEB,
        "deploy: the release failed its soak:\n  - web: soak failed\n",
        "last 60 s: 2 of 2 probes failed (2 of 2 in all); first failing probe #1 HTTP 503 ",
        f"deploy: rolling web back to {OLD['web']}",
        "deploy: soak web (restored release): passed after 2s of 2s, 3 probes every 1s, 0 failed",
        "deploy: marked web soaked",
    ):
        assert words in proc.stderr, words
    assert proc.stderr.count("the soak probes the health URLs alone") == 1, "one warning line"
    record = read_record(path)
    assert (record.outcome, record.cause) == ("rolled-back", "soak")
    [failure] = record.failures
    assert (failure.cause, failure.during, failure.app) == ("soak", "release", "web")
    assert "first failing probe #1 HTTP 503" in failure.message and "last #2 HTTP 503" in failure.message
    web = next(a for a in record.apps if a.name == "web")
    assert [(s.verdict, s.restored, s.probes, s.failures) for s in web.soaks] == [
        ("failed", False, 2, 2),
        ("passed", True, 3, 0),
    ]
    api = next(a for a in record.apps if a.name == "api")
    assert api.soaks == (), "api was not released"
    assert record.soak_seconds >= 3 and record.deploy_seconds == record.duration_seconds - record.soak_seconds
    assert web.phases["rollback"].seconds <= record.deploy_seconds, "the soak is not the rollback's time"
    shown = proc.stdout + proc.stderr + path.read_text()
    assert TOKEN not in shown and "decrypted-secret" not in shown


def test_a_soak_that_passes_marks_the_digest_with_one_follow_up_update(
    grpc_fake: FakePulumi, project: Path, tmp_path: Path
) -> None:
    with ScriptedServer({"/healthz": [Reply(200)]}) as server:
        config = _soak_config(project, server.url("/healthz"))
        grpc_fake.play(
            {"fixture": "good_deploy.jsonl", "outputs": apps_output(NEW_WEB, OLD["api"])},
            outputs=OUTPUTS,
            secrets=_secrets(),
        )
        path = tmp_path / "record.json"
        proc = run_deploy(grpc_fake, project, "--stack", STACK, "--record", str(path))
    assert proc.returncode == 0, proc.stderr
    release, follow_up = grpc_fake.ups()
    assert release.config == config
    assert json.loads(follow_up.config.pop(SOAKED_KEY)) == {"web": NEW_WEB}
    assert follow_up.config == config, "only the soaked digests are added"
    assert read_config(project, STACK) == config
    record = read_record(path)
    assert record.outcome == "succeeded" and record.soak_seconds >= 2
    [soak] = next(a for a in record.apps if a.name == "web").soaks
    assert (soak.verdict, soak.digest, soak.probes, soak.reason) == ("passed", NEW_WEB, 3, None)
    assert "(and a soak of " in proc.stderr and "soak web (release): passed after 2s of 2s" in proc.stderr


def test_a_failing_follow_up_update_is_a_warning_and_rolls_nothing_back(
    grpc_fake: FakePulumi, project: Path, tmp_path: Path
) -> None:
    with ScriptedServer({"/healthz": [Reply(200)]}) as server:
        _soak_config(project, server.url("/healthz"))
        grpc_fake.play(
            {"fixture": "good_deploy.jsonl", "outputs": apps_output(NEW_WEB, OLD["api"])},
            {"fixture": "registry_401.jsonl", "exit": 255, "stderr": "error: update failed"},
            outputs=OUTPUTS,
            secrets=_secrets(),
        )
        path = tmp_path / "record.json"
        proc = run_deploy(grpc_fake, project, "--stack", STACK, "--record", str(path))
    assert proc.returncode == 0, proc.stderr
    assert len(grpc_fake.ups()) == 2, "no rollback of a release that passed its soak"
    assert (
        "deploy: warning: the follow-up update that marks web soaked failed (error: update failed)"
        in proc.stderr
    )
    record = read_record(path)
    [soak] = next(a for a in record.apps if a.name == "web").soaks
    assert soak.verdict == "passed" and (soak.reason or "").startswith("passed, but not marked promotable")


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_during_the_soak_ends_it_not_soaked_with_nothing_rolled_back(
    grpc_fake: FakePulumi, project: Path, tmp_path: Path, signum: signal.Signals, code: int
) -> None:
    with ScriptedServer({"/healthz": [Reply(200)]}) as server:
        config = _soak_config(project, server.url("/healthz"), seconds=600)
        grpc_fake.play(
            {"fixture": "good_deploy.jsonl", "outputs": apps_output(NEW_WEB, OLD["api"])},
            outputs=OUTPUTS,
            secrets=_secrets(),
        )
        path = tmp_path / "record.json"
        proc = start_deploy(grpc_fake, project, "--stack", STACK, "--record", str(path))
        try:
            assert wait_until(lambda: len(server.requests) >= 2, timeout=60, interval=0.05), "no soak probe"
            sent = time.monotonic()
            proc.send_signal(signum)
            _, stderr = proc.communicate(timeout=30)
            took = time.monotonic() - sent
        finally:
            proc.kill()
    assert proc.returncode == code, stderr
    assert took < 10, f"the soak took {took:.1f} s to stop"
    assert len(grpc_fake.ups()) == 1, "no rollback, no follow-up update: the digest stays not promotable"
    assert f"interrupted by {signum.name} during the soak: nothing was rolled back; web not soaked" in stderr
    assert read_config(project, STACK) == config
    record = read_record(path)
    assert record.outcome == "failed"
    [soak] = next(a for a in record.apps if a.name == "web").soaks
    assert (soak.verdict, soak.reason) == ("not-soaked", "interrupted by a signal")
    assert TOKEN not in stderr + path.read_text()


FLOWS = Path(__file__).resolve().parents[1] / "fixtures" / "argocd" / "operations"
KUBE_TOKEN = "stand-in-token-5oak"


@pytest.fixture
def api(grpc_fake: FakePulumi) -> Iterator[StandInKubeAPI]:
    server = StandInKubeAPI(mark=lambda: len(grpc_fake.ups()))
    yield server
    server.stop()


def test_argo_cd_reporting_the_release_out_of_sync_during_the_soak_rolls_it_back(
    grpc_fake: FakePulumi, project: Path, api: StandInKubeAPI, tmp_path: Path
) -> None:
    """The endpoint stays healthy; the Application, read as the deploy reads it for operations, does not."""
    with ScriptedServer({"/healthz": [Reply(200)]}) as server:
        config = _soak_config(project, server.url("/healthz"), failuresInARow=2, maxErrorPercent=100)
        config["kubernetes:kubeconfig"] = str(kubeconfig(tmp_path / "kubeconfig", api.url, token=KUBE_TOKEN))
        write_config(project, config)
        _, objects, _ = load_flow(FLOWS / "user-sync.yaml")
        synced = objects[-1]
        drifted = copy.deepcopy(synced)
        drifted["status"]["sync"]["status"] = "OutOfSync"
        # Read 1: the wait for operations; 2: the soak's first probe; 3-4: out of sync; then synced again.
        api.play("argocd", "web", Flow([synced, drifted, synced], reads=2))
        grpc_fake.play(
            {"fixture": "good_deploy.jsonl", "outputs": apps_output(NEW_WEB, OLD["api"])},
            {"fixture": "rollback_ok.jsonl", "outputs": apps_output(OLD["web"], OLD["api"])},
            outputs=OUTPUTS,
            secrets=_secrets(),
        )
        path = tmp_path / "record.json"
        proc = run_deploy(grpc_fake, project, "--stack", STACK, "--record", str(path))
    assert proc.returncode == 3, proc.stderr
    assert "the soak probes the health URLs alone" not in proc.stderr
    assert "last #3 ok 200 " in proc.stderr and "; Argo CD: OutOfSync/Healthy at +2 s" in proc.stderr
    assert len(grpc_fake.ups()) == 3, "release, rollback, the follow-up that marks the restored release"
    assert [r.mark for r in api.log if r.method == "GET" and "/web" in r.path][:4] == [0, 1, 1, 1]
    record = read_record(path)
    assert (record.outcome, record.cause) == ("rolled-back", "soak")
    assert KUBE_TOKEN not in proc.stderr + proc.stdout + path.read_text()


def test_a_gate_rollbacks_restored_release_is_soaked_too(grpc_fake: FakePulumi, project: Path) -> None:
    with ScriptedServer({"/healthz": [Reply(200)]}) as server:
        _soak_config(project, server.url("/healthz"))
        grpc_fake.play(
            {"fixture": "health_failure_web.jsonl", "exit": 255},
            {"fixture": "rollback_ok.jsonl", "outputs": apps_output(OLD["web"], OLD["api"])},
            outputs=OUTPUTS,
            secrets=_secrets(),
        )
        proc = run_deploy(grpc_fake, project, "--stack", STACK)
    assert proc.returncode == 3, proc.stderr
    _, rollback, follow_up = grpc_fake.ups()
    assert "web: health check failed" in proc.stderr
    assert "deploy: soak web (restored release): passed after 2s of 2s" in proc.stderr
    assert json.loads(follow_up.config[SOAKED_KEY]) == {"web": OLD["web"]}
    for up in (rollback, follow_up):
        assert up.config["gitops-deploy:apps"][0]["image"]["pin"] == OLD["web"]


def test_a_restored_release_that_fails_its_soak_too_is_exit_4(
    grpc_fake: FakePulumi, project: Path, tmp_path: Path
) -> None:
    with ScriptedServer({"/healthz": [Reply(503)]}) as server:
        config = _soak_config(project, server.url("/healthz"), failuresInARow=1, maxErrorPercent=100)
        grpc_fake.play(
            {"fixture": "good_deploy.jsonl", "outputs": apps_output(NEW_WEB, OLD["api"])},
            {"fixture": "rollback_ok.jsonl", "outputs": apps_output(OLD["web"], OLD["api"])},
            outputs=OUTPUTS,
            secrets=_secrets(),
        )
        path = tmp_path / "record.json"
        proc = run_deploy(grpc_fake, project, "--stack", STACK, "--record", str(path))
    assert proc.returncode == 4, proc.stderr
    assert len(grpc_fake.ups()) == 2, "no follow-up: nothing passed its soak"
    assert (
        "deploy: the restored release of web failed its soak too: soak failed after 0 s of 2 s" in proc.stderr
    )
    assert read_config(project, STACK) == config
    record = read_record(path)
    assert (record.outcome, record.cause) == ("rollback-failed", "soak")
    assert [(f.cause, f.during) for f in record.failures] == [("soak", "release"), ("soak", "rollback")]


def test_the_soak_verdicts_reach_the_webhook_between_the_gate_and_the_rollback(
    grpc_fake: FakePulumi, project: Path, flaky: ScriptedServer
) -> None:
    config = _soak_config(project, flaky.url("/healthz"), failuresInARow=2, maxErrorPercent=100)
    hook = WebhookServer()
    try:
        notify = {"url": hook.url, "format": "json"}
        write_config(project, {**config, NOTIFY_CONFIG_KEY: {"secure": "v1:bm90aWZ5"}})
        grpc_fake.play(
            {"fixture": "good_deploy.jsonl", "outputs": apps_output(NEW_WEB, OLD["api"])},
            {"fixture": "rollback_ok.jsonl", "outputs": apps_output(OLD["web"], OLD["api"])},
            outputs=OUTPUTS,
            secrets={**_secrets(), NOTIFY_CONFIG_KEY: json.dumps(notify)},
        )
        proc = run_deploy(grpc_fake, project, "--stack", STACK)
        delivered = list(hook.delivered)
    finally:
        hook.close()
    assert proc.returncode == 3, proc.stderr
    soaks = [body for body in delivered if body["event"] == "soak"]
    assert [body["event"] for body in delivered][:2] == ["gate", "soak"], delivered
    failed, restored = (body["details"] for body in soaks)
    assert (failed["passed"], [a["app"] for a in failed["apps"]]) == (False, ["web"])
    assert failed["apps"][0]["failures"] == 2
    assert failed["apps"][0]["reason"] == "2 failed probes in a row (failuresInARow 2)"
    assert restored["passed"] is True and restored["apps"][0]["probes"] == 3
    assert "rollback" in [body["event"] for body in delivered]
    shown = proc.stdout + proc.stderr + json.dumps(delivered)
    assert TOKEN not in shown and SECRET_PATH not in proc.stdout + proc.stderr
