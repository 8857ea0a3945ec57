"""The smoke run on the PR, with a real Docker Engine and busybox images (tests/fixtures/smoke).

One private dockerd for the module (tests/support/docker_engine.py), DOCKER_HOST pointing at it. One check of
a stack holding every kind of image is run once, and each format of its report is read; after every run no
container or network with the smoke run's label is left.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from clients.image_engine import BuildSpec, build_image
from clients.smoke_run import (
    EXPIRES_LABEL,
    LABEL,
    NAME_PREFIX,
    SmokeSpec,
    leftovers,
    remove,
    run_smoke,
    sweep,
)
from model.health_settings import HealthSettings
from policy_check import github, report_format
from policy_check.check import main, run_check
from policy_check.report import CheckReport
from tests.support.docker_engine import LocalDockerEngine, import_busybox, write_context
from tests.support.projects import app, make_project, stack_config, write_policy_config, write_stack

pytestmark = pytest.mark.docker

FIXTURES = Path(__file__).parents[1] / "fixtures"
ROOT = Path(__file__).parents[2]
DATABASE_URL = "postgres://smoke:Sm0ke-db-pw-7Qx@db.stub:5432/app"
TOKEN = "Hdr-token-5e1f0c"
GATE = {"attempts": 3, "successThreshold": 2, "intervalSeconds": 0.2, "timeoutSeconds": 2}
GATE["maxLatencyMs"] = 400
NEVER_LISTENS_TIMEOUT = 8


@pytest.fixture(scope="module")
def engine() -> Iterator[LocalDockerEngine]:
    with LocalDockerEngine() as started, pytest.MonkeyPatch.context() as env:
        env.setenv("DOCKER_HOST", started.host)
        with started.client() as client:
            import_busybox(client)
        yield started


@pytest.fixture(scope="module")
def client(engine: LocalDockerEngine) -> Iterator[docker.DockerClient]:
    with engine.client() as c:
        yield c


def _none_left(client: docker.DockerClient) -> None:
    containers, networks = leftovers(client)
    assert containers == [] and networks == [], (containers, networks)
    assert not [c for c in client.api.containers(all=True) if c["Names"][0].startswith("/" + NAME_PREFIX)]


def _smoke_app(name: str, fixture: Path, path: str = "/healthz", **smoke: Any) -> dict[str, Any]:
    config = app(name, name)
    config["health"] = {"url": f"https://{name}.example.com{path}", **GATE, "headers": {"X-Token": TOKEN}}
    config["smoke"] = {"env": {"DATABASE_URL": DATABASE_URL}, "timeoutSeconds": 20, **smoke}
    config["_fixture"] = fixture
    return config


def _project(tmp_path: Path, apps: list[dict[str, Any]]) -> tuple[Path, Path]:
    project = make_project(tmp_path / "project")
    for config in apps:
        shutil.copytree(config.pop("_fixture"), project / config["name"])
    write_stack(project, "t", stack_config(apps))
    return project, write_policy_config(tmp_path / "policy.json")


KINDS = {
    "serves": (FIXTURES / "smoke" / "serves", "/healthz", {}),
    "exits": (FIXTURES / "smoke" / "exits", "/healthz", {}),
    "answers500": (FIXTURES / "smoke" / "answers_500", "/cgi-bin/healthz?deep=1", {}),
    "slow": (FIXTURES / "smoke" / "too_slow", "/cgi-bin/healthz", {}),
    "silent": (FIXTURES / "smoke" / "never_listens", "/healthz", {"timeoutSeconds": NEVER_LISTENS_TIMEOUT}),
    "missingdep": (FIXTURES / "missing_dependency" / "run_time", "/healthz", {}),
}


@pytest.fixture(scope="module")
def every_kind(
    engine: LocalDockerEngine, client: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory
) -> tuple[CheckReport, float]:
    """One check of a stack holding each kind of image, and how long it took."""
    apps = [_smoke_app(name, fixture, path, **smoke) for name, (fixture, path, smoke) in KINDS.items()]
    project, policy = _project(tmp_path_factory.mktemp("every-kind"), apps)
    start = time.monotonic()
    report = run_check("t", project_dir=project, config_file=policy, build=True, render=False)
    seconds = time.monotonic() - start
    _none_left(client)
    return report, seconds


def _row(report: dict[str, Any], name: str) -> dict[str, Any]:
    [row] = [s for s in report["smoke"] if s["app"] == name]
    return row


def test_each_kind_passes_or_fails_for_its_cause(every_kind: tuple[CheckReport, float]) -> None:
    report, seconds = every_kind
    data = report_format.to_dict(report)
    assert data["verdict"] == "fail" and data["exitCode"] == 1
    assert data["counts"]["smokeFailures"] == 5 and data["counts"]["buildErrors"] == 0, data["counts"]
    statuses = {s["app"]: (s["status"], s["cause"], s["exitCode"]) for s in data["smoke"]}
    assert statuses == {
        "serves": ("passed", None, None),
        "exits": ("failed", "exited", 3),
        "answers500": ("failed", "wrong status", None),
        "slow": ("failed", "too slow", None),
        "silent": ("failed", "never answered", None),
        "missingdep": ("failed", "exited", 127),
    }, statuses

    serves = _row(data, "serves")
    assert serves["detail"].startswith("health check GET http://127.0.0.1:"), serves
    assert "/healthz passed after 2 of 3 attempts" in serves["detail"] and serves["logs"] == []

    exits = _row(data, "exits")
    assert exits["detail"].startswith("the container stopped before its endpoint passed: exit code 3")
    assert "fatal: cannot reach the database" in exits["logs"], exits
    assert "connecting to [secret]" in exits["logs"], "the smoke env value is scrubbed from the logs"
    assert "retry via https://db.internal/app" in exits["logs"], "a URL's credentials are dropped"

    answers500 = _row(data, "answers500")
    assert answers500["detail"].startswith("GET /cgi-bin/healthz?deep=1: expected HTTP 200 within 400 ms")
    assert "probes: #1 HTTP 500 " in answers500["detail"], answers500

    slow = _row(data, "slow")
    assert "probes: #1 too slow 200 1" in slow["detail"], slow  # HTTP 200 after ~1000 ms, over 400 ms

    silent = _row(data, "silent")
    assert silent["detail"] == (
        f"GET /healthz on port 8080 never answered HTTP in the {NEVER_LISTENS_TIMEOUT} s of "
        "smoke.timeoutSeconds: does the app listen on that port?"
    ), silent
    assert silent["logs"] == ["waiting for a queue that never comes"], silent
    assert NEVER_LISTENS_TIMEOUT - 3 < silent["seconds"] <= NEVER_LISTENS_TIMEOUT + 1, silent

    missing = _row(data, "missingdep")
    # stdout and stderr are two streams: the engine's merged order between them is not guaranteed.
    assert sorted(missing["logs"]) == [
        "/app/start.sh: exec: line 3: /usr/lib/httpd-lib/server: not found",
        "starting httpd-lib on :8080",
    ], missing
    for row in data["smoke"]:
        assert row["seconds"] <= 20 + 1, row  # each bounded by its smoke.timeoutSeconds
    print(f"six smoke runs (builds included) in {seconds:.1f} s: " + ", ".join(
        f"{s['app']} {s['seconds']:.1f} s" for s in data["smoke"]
    ))  # fmt: skip


def test_no_format_shows_a_smoke_env_value_or_a_header(every_kind: tuple[CheckReport, float]) -> None:
    report, _ = every_kind
    texts = [report_format.formatted(report, f) for f in ("table", "json", "markdown")]
    texts += github.finding_annotations(report)
    for text in texts:
        for secret in (DATABASE_URL, "Sm0ke-db-pw-7Qx", TOKEN, "hunter2-pw"):
            assert secret not in text


def test_every_format_reports_the_failures_and_the_last_log_lines(
    every_kind: tuple[CheckReport, float],
) -> None:
    report, _ = every_kind
    table = report_format.formatted(report, "table")
    assert max(len(line) for line in table.splitlines()) <= report_format.WIDTH
    assert "  SMOKE RUN FAILED (exits/Dockerfile): exited: the container stopped before its" in table
    assert "      | fatal: cannot reach the database" in table
    assert "Smoke runs (--build: each image started alone" in table
    assert "0 build error(s), 5 smoke failure(s)" in " ".join(table.split("\n\n")[-1].split())

    markdown = report_format.formatted(report, "markdown")

    assert (
        "- **SMOKE RUN FAILED \\(missingdep/Dockerfile\\)**: exited: the container stopped before its "
        "endpoint passed: exit code 127\n  - Last log lines:\n\n    ```\n"
    ) in markdown
    assert "    /app/start.sh: exec: line 3: /usr/lib/httpd-lib/server: not found" in markdown
    assert "<details><summary>Smoke runs</summary>" in markdown

    [annotation] = [a for a in github.finding_annotations(report) if "(answers500)" in a]
    assert annotation.startswith("::error file=answers500/Dockerfile,title=smoke run failed (answers500)::")
    assert "wrong status" in annotation and "%0Alast log lines:%0A" in annotation


def test_a_passing_image_passes_the_check_and_smoke_false_skips(
    engine: LocalDockerEngine, client: docker.DockerClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    apps = [
        _smoke_app("serves", FIXTURES / "smoke" / "serves"),
        _smoke_app("off", FIXTURES / "smoke" / "exits"),
    ]
    apps[1]["smoke"] = False
    project, policy = _project(tmp_path, apps)
    summary = tmp_path / "summary.md"
    argv = ["--stack", "t", "--project-dir", str(project), "--policy-config", str(policy), "--build"]
    with pytest.MonkeyPatch.context() as env:
        env.setenv("GITHUB_ACTIONS", "true")
        env.setenv("GITHUB_STEP_SUMMARY", str(summary))
        code = main([*argv, "--no-render", "--format", "json"])
    out = capsys.readouterr()
    report = json.loads(out.out)
    assert code == 0 and report["verdict"] == "pass", report
    assert [(s["app"], s["status"]) for s in report["smoke"]] == [("off", "skipped"), ("serves", "passed")]
    assert _row(report, "off")["detail"] == "smoke: false in the stack config"
    assert "::error" not in out.err
    assert "- serves \\(registry.example.com/team/serves:" in summary.read_text(), "the step summary"
    _none_left(client)


def test_without_an_engine_the_smoke_run_cant_judge_yet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project, policy = _project(tmp_path, [_smoke_app("serves", FIXTURES / "smoke" / "serves")])
    argv = ["--stack", "t", "--project-dir", str(project), "--policy-config", str(policy), "--build"]
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DOCKER_HOST", f"unix://{tmp_path / 'no-engine.sock'}")
        code = main([*argv, "--no-render", "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0, report
    reason = f"no Docker Engine reachable at unix://{tmp_path / 'no-engine.sock'} (No such file or directory)"
    assert _row(report, "serves")["status"] == "cant-judge"
    assert _row(report, "serves")["detail"] == f"{reason}; the smoke run can't judge it yet"
    assert {"policy": "smoke-run", "urn": "", "resource": "App serves"} | {
        "reason": f"{reason}; the smoke run can't judge it yet"
    } in report["cantJudge"]
    assert report["counts"]["smokeFailures"] == 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_stopped_check_leaves_no_container_running(
    engine: LocalDockerEngine, client: docker.DockerClient, tmp_path: Path, sig: signal.Signals
) -> None:
    project, policy = _project(
        tmp_path, [_smoke_app("silent", FIXTURES / "smoke" / "never_listens", timeoutSeconds=120)]
    )
    argv = ["--stack", "t", "--project-dir", str(project), "--policy-config", str(policy), "--build"]
    env = {**os.environ, "DOCKER_HOST": engine.host}
    check = [sys.executable, "-m", "policy_check", *argv, "--no-render"]
    quiet, piped = subprocess.DEVNULL, subprocess.PIPE
    with subprocess.Popen(check, cwd=ROOT, env=env, stdout=quiet, stderr=piped) as proc:
        try:
            deadline = time.monotonic() + 90
            while not client.api.containers(filters={"label": [LABEL], "status": ["running"]}):
                assert proc.poll() is None and time.monotonic() < deadline, "the smoke run never started"
                time.sleep(0.2)
            proc.send_signal(sig)
            _, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 128 + sig, err
    assert f"error: stopped ({sig.name})".encode() in err, err
    _none_left(client)


def test_a_run_removes_what_a_killed_run_left_once_its_time_is_over(client: docker.DockerClient) -> None:
    """A SIGKILLed check cannot clean up; the next run removes its objects once they expired, not before."""
    now = time.time()
    for name, expires in (("gitops-smoke-killed-1", now - 1), ("gitops-smoke-running-1", now + 60)):
        labels = {LABEL: "web", EXPIRES_LABEL: str(int(expires))}
        client.api.create_network(name, driver="bridge", labels=labels)
        client.api.create_container("gitops-test/busybox:1", "sh", name=name, labels=labels)
    assert sweep(client, now) == ["gitops-smoke-killed-1"]
    containers, networks = leftovers(client)
    assert [c["Names"] for c in containers] == [["/gitops-smoke-running-1"]]
    assert [n["Name"] for n in networks] == ["gitops-smoke-running-1"]
    assert sweep(client, now + 120) == ["gitops-smoke-running-1"]
    _none_left(client)


def test_an_image_without_a_command_did_not_start_and_leaves_nothing(
    client: docker.DockerClient, tmp_path: Path
) -> None:
    context = write_context(tmp_path / "data", "FROM scratch\nCOPY payload /payload\n", {"payload": b"x"})
    image = build_image(client, BuildSpec(context, context / "Dockerfile"))
    health = HealthSettings("https://data.example.com/healthz")
    spec = SmokeSpec("data", image, 8080, health, timeout_seconds=10)
    found = run_smoke(client, spec)
    assert (found.passed, found.cause, found.exit_code) == (False, "did not start", None), found
    assert found.detail.startswith("the engine refused to start it: "), found
    assert "no command specified" in found.detail.lower(), found
    _none_left(client)


def test_a_ctrl_c_during_the_clean_up_acts_once_it_is_done(client: docker.DockerClient) -> None:
    name = "gitops-smoke-interrupted-1"
    labels = {LABEL: "web", EXPIRES_LABEL: str(int(time.time() + 60))}
    client.api.create_network(name, driver="bridge", labels=labels)
    client.api.create_container("gitops-test/busybox:1", "sh", name=name, labels=labels)

    class Interrupting:
        """The real engine's API, with a Ctrl-C arriving as the container is being removed."""

        def __getattr__(self, attribute: str) -> Any:
            return getattr(client.api, attribute)

        def remove_container(self, *args: Any, **kwargs: Any) -> Any:
            os.kill(os.getpid(), signal.SIGINT)
            return client.api.remove_container(*args, **kwargs)

    class Client:
        api = Interrupting()

    with pytest.raises(KeyboardInterrupt):
        remove(Client(), name)
    _none_left(client)  # the network too: the Ctrl-C waited for the clean-up
