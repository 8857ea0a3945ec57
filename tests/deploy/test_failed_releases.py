"""The program's side of the rollback, under the SDK's mocks: verified digests and the failed-release record.

§3: each app's exported `imageDigest` resolves only once its HealthCheck passed. When a check fails,
the Python SDK never sends the stack's RegisterResourceOutputs (pulumi/runtime/resource.py
`register_resource_outputs` awaits every output first), so the engine keeps the stack's previous
outputs (pkg/resource/deploy/step.go `SameStep.Apply`; step_executor.go only merges outputs it
received). docs/release.md has the full chain.

§4: the program stops before registering anything when an app would ship content recorded as failed,
in `up`, in `preview` and in the CLI-free check, with the message `python -m deploy` prints.
"""

from __future__ import annotations

import copy
import gc
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pulumi
import pytest
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import settings
from pulumi.runtime.stack import wait_for_rpcs
from pulumi.runtime.sync_await import _sync_await

from model.config_reader import ConfigError
from model.content_tag import content_tag
from model.failed_releases import (
    READ_STACK_OUTPUTS,
    FailedRelease,
    FailedReleaseBlocked,
    blocked_message,
)
from model.names import HEALTH_CHECK_TYPE, STACK_TYPE
from policy_check import check
from policy_check.simulate import ProgramFailed, ProgramMocks, Simulation, simulate
from tests.support.projects import write_policy_config

PROJECT_DIR = Path(__file__).resolve().parents[2]
STACK = "recordtest"
CONTEXT = PROJECT_DIR / "examples" / "app"


def _app(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": "apps",
        "image": {"repository": f"registry.example.com/platform/{name}", "context": "examples/app"},
        "source": {
            "repoURL": "https://git.example.com/platform/deploy.git",
            "targetRevision": "main",
            "path": "examples/app/chart",
            "type": "helm",
        },
        "health": {"url": f"https://{name}.example.com/healthz"},
    }


CONFIG: dict[str, Any] = {
    "gitops-deploy:registry": {"server": "registry.example.com", "username": "ci"},
    "gitops-deploy:apps": [_app("web"), _app("api")],
}
TAG = content_tag(CONTEXT, CONTEXT / "Dockerfile", "linux/amd64", {}, root=PROJECT_DIR)
"""Both apps build the example app, so both have this content tag."""
FAILED = FailedRelease(
    "web",
    TAG,
    "registry.example.com/platform/web@sha256:" + "3" * 64,
    "2026-05-01T12:00:00Z",
    "health check FAILED",
)


def record(*releases: FailedRelease) -> dict[str, Any]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in releases:
        out.setdefault(r.app, []).append(r.to_json())
    return out


def config(**extra: Any) -> dict[str, Any]:
    cfg = copy.deepcopy(CONFIG)
    cfg.update({f"gitops-deploy:{k}": v for k, v in extra.items()})
    return cfg


@pytest.fixture(autouse=True)
def _collect_event_loops() -> Iterator[None]:
    """Finalize the event loops the SDK's mock monitor leaves behind now, not at some later allocation.

    MockMonitor calls `_ensure_event_loop()` on executor threads and never closes those loops; their
    `__del__` then runs wherever the garbage collector happens to run. Left to run later, it was seen to
    break pytest's own assertion rewriting at the end of a session ("AST constructor recursion depth
    mismatch", CPython 3.11) after these tests.
    """
    yield
    gc.collect()


@pytest.fixture
def rpcs(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, str, Any]]]:
    """Every RegisterResource and RegisterResourceOutputs the program sends the (mock) monitor, in order."""
    calls: list[tuple[str, str, Any]] = []
    register, outputs = (
        pulumi_mocks.MockMonitor.RegisterResource,
        pulumi_mocks.MockMonitor.RegisterResourceOutputs,
    )

    def record_register(self: Any, request: Any) -> Any:
        response = register(self, request)
        calls.append(("register", request.type, request.name))
        return response

    def record_outputs(self: Any, request: Any) -> Any:
        from google.protobuf import json_format

        calls.append(("outputs", request.urn, json_format.MessageToDict(request.outputs)))
        return outputs(self, request)

    monkeypatch.setattr(pulumi_mocks.MockMonitor, "RegisterResource", record_register)
    monkeypatch.setattr(pulumi_mocks.MockMonitor, "RegisterResourceOutputs", record_outputs)
    yield calls


class FailingHealth(ProgramMocks):
    """The HealthCheck of one app fails: the engine answers its registration with the provider's error."""

    def __init__(self, app: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.app = app

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        if args.typ == HEALTH_CHECK_TYPE and args.name == f"{self.app}-health":
            raise RuntimeError(f"health check GET https://{self.app}.example.com/healthz FAILED")
        return super().new_resource(args)


class RecordingCalls(ProgramMocks):
    """Keeps every invoke the program makes."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        self.calls.append((args.token, dict(args.args)))
        return super().call(args)


def run(cfg: dict[str, Any], **kwargs: Any) -> Simulation:
    return simulate(STACK, config=cfg, password="Tst-pw-9f3K!x7Qz", **kwargs)


def register_stack_outputs() -> BaseException | None:
    """Send the stack's outputs as `run_in_stack` does at the end of a program (pulumi/runtime/stack.py
    `Stack._finish` -> `register_outputs`); the mocks' Stack already sent an empty set at start-up."""
    root: Any = settings.get_root_resource()
    root.register_outputs(dict(root.outputs))
    try:
        _sync_await(wait_for_rpcs())
    except Exception as err:  # the SDK re-raises the failed output here
        return err
    return None


def stack_outputs_rpcs(calls: list[tuple[str, str, Any]]) -> list[tuple[int, Any]]:
    """The stack's RegisterResourceOutputs that carried the `apps` export, with their position."""
    return [
        (i, value)
        for i, (kind, urn, value) in enumerate(calls)
        if kind == "outputs" and urn.endswith(f"::{STACK_TYPE}::gitops-deploy-{STACK}") and "apps" in value
    ]


# --- §3: the exported digest waits for the health gate ---


def test_the_exported_digests_are_registered_only_after_every_health_check(
    rpcs: list[tuple[str, str, Any]],
) -> None:
    sim = run(config())
    assert register_stack_outputs() is None
    [(sent, outputs)] = stack_outputs_rpcs(rpcs)
    digests = {app: sim.exports["apps"][app]["imageDigest"] for app in ("web", "api")}
    assert {app: outputs["apps"][app]["imageDigest"] for app in digests} == digests
    health = [i for i, c in enumerate(rpcs) if c[:2] == ("register", HEALTH_CHECK_TYPE)]
    assert len(health) == 2 and max(health) < sent, (
        "the stack's outputs went out before a health check finished"
    )
    for app in ("web", "api"):
        [(release, value)] = [
            (i, v)
            for i, (k, urn, v) in enumerate(rpcs)
            if k == "outputs" and urn.endswith(f"AppRelease::{app}")
        ]
        assert value["verified_digest"] == digests[app]
        assert release > rpcs.index(("register", HEALTH_CHECK_TYPE, f"{app}-health"))


def test_the_exported_digest_depends_on_its_health_check() -> None:
    run(config())
    root: Any = settings.get_root_resource()
    for app in ("web", "api"):
        depends = _sync_await(pulumi.Output.from_input(root.outputs["apps"][app]["imageDigest"]).resources())
        names = {str(_sync_await(r.urn.future())).rsplit("::", 1)[-1] for r in depends}
        assert f"{app}-health" in names, names


def test_a_failed_health_check_leaves_the_stack_outputs_unsent(rpcs: list[tuple[str, str, Any]]) -> None:
    with pytest.raises(ProgramFailed) as failed:
        run(config(), mocks=FailingHealth("web"))
    assert "web.example.com/healthz FAILED" in str(failed.value.cause)
    assert "FAILED" in str(register_stack_outputs())
    assert stack_outputs_rpcs(rpcs) == [], "no digest of this update reaches the stack's outputs"
    assert not any(k == "outputs" and urn.endswith("AppRelease::web") for k, urn, _ in rpcs)


def test_the_digest_output_of_the_release_that_passed_is_unaffected() -> None:
    """api's HealthCheck passes while web's fails: api's own verified digest resolves, web's never."""
    with pytest.raises(ProgramFailed):
        run(config(), mocks=FailingHealth("web"))
    root: Any = settings.get_root_resource()
    apps = root.outputs["apps"]
    api = str(_sync_await(pulumi.Output.from_input(apps["api"]["imageDigest"]).future()))
    assert api.startswith("registry.example.com/platform/api@sha256:")
    with pytest.raises(Exception, match="FAILED"):
        _sync_await(pulumi.Output.from_input(apps["web"]["imageDigest"]).future())


# --- §4: the record, read, enforced and exported by the program ---


def test_the_program_reads_its_own_stack_outputs_and_exports_the_record() -> None:
    mocks = RecordingCalls(
        own_outputs={
            "failedReleases": record(
                FailedRelease("web", "ctx-0123456789ab", None, "2026-04-01T08:00:00Z", "old")
            )
        }
    )
    sim = run(config(), mocks=mocks)
    assert mocks.calls == [(READ_STACK_OUTPUTS, {"name": STACK})], (
        "a bare name: no organization under mocks (DIY)"
    )
    assert sim.exports["failedReleases"] == {
        "web": [
            {"tag": "ctx-0123456789ab", "digest": None, "failedAt": "2026-04-01T08:00:00Z", "reason": "old"}
        ]
    }


def test_no_record_exports_an_empty_one() -> None:
    assert run(config()).exports["failedReleases"] == {}


@pytest.mark.parametrize("preview", [False, True], ids=["up", "preview"])
def test_recorded_content_stops_the_program_before_any_resource(
    rpcs: list[tuple[str, str, Any]], preview: bool
) -> None:
    with pytest.raises(ProgramFailed) as failed:
        run(config(), own_outputs={"failedReleases": record(FAILED)}, preview=preview)
    assert isinstance(failed.value.cause, FailedReleaseBlocked)
    assert str(failed.value.cause) == blocked_message([FAILED], STACK)
    assert failed.value.resources == []
    assert [c for c in rpcs if c[0] == "register" and c[1] != STACK_TYPE] == []


def test_a_pinned_app_is_never_stopped() -> None:
    cfg = config()
    cfg["gitops-deploy:apps"][0]["image"]["pin"] = "registry.example.com/platform/web@sha256:" + "1" * 64
    sim = run(cfg, own_outputs={"failedReleases": record(FAILED)})
    assert sim.exports["failedReleases"] == record(FAILED), "kept for the next build of that content"


def test_the_override_in_config_lets_it_ship_and_drops_it_from_the_record() -> None:
    other = FailedRelease("api", "ctx-0123456789ab", None, "2026-04-01T08:00:00Z", "old")
    sim = run(
        config(allowFailedReleases=[FAILED.ref, "api:ctx-aaaaaaaaaaaa"]),
        own_outputs={"failedReleases": record(FAILED, other)},
    )
    assert sim.exports["failedReleases"] == record(other)
    assert any("api:ctx-aaaaaaaaaaaa names no recorded failed release" in line for line in sim.logs), sim.logs


def test_the_record_handed_over_in_config_wins_over_the_outputs() -> None:
    """`python -m deploy` passes the record it computed (an override applied, a failure added)."""
    added = FailedRelease("api", "ctx-0123456789ab", None, "2026-05-01T12:00:00Z", "new")
    sim = run(
        config(failedReleases=json.dumps(record(added))), own_outputs={"failedReleases": record(FAILED)}
    )
    assert sim.exports["failedReleases"] == record(added)


@pytest.mark.parametrize(
    "key, value, named",
    [
        (
            "failedReleases",
            json.dumps({"web": [{"tag": "latest"}]}),
            "gitops-deploy:failedReleases.web[0].tag",
        ),
        ("failedReleases", json.dumps(["web"]), "gitops-deploy:failedReleases: got list"),
        ("allowFailedReleases", ["web"], "gitops-deploy:allowFailedReleases[0]: got string 'web'"),
    ],
)
def test_a_bad_record_or_override_in_config_is_one_clear_error(key: str, value: Any, named: str) -> None:
    with pytest.raises(ProgramFailed) as failed:
        run(config(**{key: value}))
    assert isinstance(failed.value.cause, ConfigError)
    assert len(failed.value.cause.problems) == 1 and named in failed.value.cause.problems[0]


def test_a_malformed_record_in_the_outputs_is_a_warning_not_a_failure() -> None:
    sim = run(config(), own_outputs={"failedReleases": {"web": [{"tag": TAG}], "api": "nope"}})
    assert sim.exports["failedReleases"] == {}
    assert sum("stack output failedReleases" in line for line in sim.logs) == 2, sim.logs


# --- the CLI-free check says the same ---


@pytest.fixture
def check_project(tmp_path: Path) -> Path:
    """A project with the test's own stack file; the program itself is the repository's."""
    (tmp_path / "__main__.py").symlink_to(PROJECT_DIR / "__main__.py")
    (tmp_path / "Pulumi.yaml").write_text((PROJECT_DIR / "Pulumi.yaml").read_text())
    import yaml

    (tmp_path / f"Pulumi.{STACK}.yaml").write_text(yaml.safe_dump({"config": CONFIG}))
    return tmp_path


def _check(project: Path, *extra: str) -> Callable[[pytest.CaptureFixture[str]], tuple[int, str, str]]:
    def run_it(capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
        policy = write_policy_config(project / "policy.json")
        argv = ["--stack", STACK, "--project-dir", str(project), "--policy-config", str(policy)]
        code = check.main([*argv, "--no-render", *extra])
        out, err = capsys.readouterr()
        return code, out, err

    return run_it


@pytest.mark.grpc
def test_the_check_stops_on_recorded_content_with_the_same_message(
    check_project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps({"apps": {}, "failedReleases": record(FAILED)}))
    code, out, err = _check(check_project, "--stack-outputs", str(outputs))(capsys)
    assert code == 2, out + err
    assert blocked_message([FAILED], STACK) in err


@pytest.mark.grpc
def test_the_check_says_when_it_did_not_check_the_record(
    check_project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _check(check_project)(capsys)
    words = " ".join(out.split())  # the table wraps at 100 columns
    assert code == 0 and "failed-release record not checked (pass --stack-outputs FILE" in words
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps({"failedReleases": {}}))
    code, out, _ = _check(check_project, "--stack-outputs", str(outputs))(capsys)
    assert code == 0 and f"failed-release record checked against {outputs}" in " ".join(out.split())


@pytest.mark.grpc
def test_an_unreadable_outputs_file_is_a_clear_error(
    check_project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    code, _, err = _check(check_project, "--stack-outputs", str(bad))(capsys)
    assert code == 2 and "expected the JSON object `pulumi stack output --json` writes" in err
    assert "Traceback" not in err
