"""The rollback-aware deploy: decisions from recorded engine events, the runner, the CLI, the pin path."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from pulumi.automation import ConfigValue, OutputValue
from pulumi.automation._cmd import CommandResult
from pulumi.automation.errors import CommandError, ConcurrentUpdateError
from pulumi.automation.events import (
    CancelEvent,
    DiagnosticEvent,
    EngineEvent,
    OpType,
    PolicyEvent,
    ResOpFailedEvent,
    StepEventMetadata,
)

from deploy.cli import INSTALL_HINT, policy_config
from deploy.decide import (
    APPLICATION_TYPE,
    HEALTH_CHECK_TYPE,
    AppEntry,
    app_entries,
    app_of,
    classify,
    last_known_good,
    pin_key,
    plan_rollback,
)
from deploy.run import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_ROLLBACK_FAILED,
    EXIT_ROLLED_BACK,
    UpOptions,
    deploy_up,
)
from offline.simulate import Simulation

PROJECT_DIR = Path(__file__).resolve().parents[1]
STACK_URN = "urn:pulumi:prod::gitops-deploy::pulumi:pulumi:Stack::gitops-deploy-prod"
PREFLIGHT_TYPE = "pulumi-python:dynamic/registry:RegistryPreflight"
PREFLIGHT_URN = f"urn:pulumi:prod::gitops-deploy::{PREFLIGHT_TYPE}::registry-preflight"
GOOD = {
    "web": "registry.example.com/platform/web@sha256:" + "1" * 64,
    "api": "registry.example.com/platform/api@sha256:" + "2" * 64,
}
HEALTH_REPORT = (
    "Exception: health check of https://web.example.com/healthz failed after 10 attempts:\n"
    "  attempt 10: HTTP 503 in 41 ms (expected 200)"
)


def health_urn(app: str) -> str:
    return f"urn:pulumi:prod::gitops-deploy::gitops-deploy:index:AppRelease${HEALTH_CHECK_TYPE}::{app}-health"


def application_urn(app: str) -> str:
    return (
        "urn:pulumi:prod::gitops-deploy::gitops-deploy:index:AppRelease$gitops-deploy:index:ArgoApplication$"
        f"{APPLICATION_TYPE}::{app}-argocd-application"
    )


class Recorder:
    """Builds engine events the way the engine numbers them, with the SDK's own event classes."""

    def __init__(self) -> None:
        self.seq = 0

    def _event(self, **kwargs: Any) -> EngineEvent:
        self.seq += 1
        return EngineEvent(sequence=self.seq, timestamp=1_700_000_000 + self.seq, **kwargs)

    def diag(self, urn: str | None, message: str, severity: str = "error") -> EngineEvent:
        return self._event(
            diagnostic_event=DiagnosticEvent(message=message, color="raw", severity=severity, urn=urn)
        )

    def op_failed(self, urn: str, type_: str, op: OpType = OpType.UPDATE) -> EngineEvent:
        meta = StepEventMetadata(op=op, urn=urn, type=type_, provider="")
        return self._event(res_op_failed_event=ResOpFailedEvent(metadata=meta, status=1, steps=3))

    def failed(self, urn: str, type_: str, message: str) -> list[EngineEvent]:
        """A resource failure as the engine reports it: its diagnostic, then the failed operation."""
        return [self.diag(urn, message), self.op_failed(urn, type_)]

    def update_failed(self) -> EngineEvent:
        return self.diag(STACK_URN, "<{%reset%}>update failed<{%reset%}>\n")

    def policy(self, level: str, urn: str | None = None) -> EngineEvent:
        return self._event(
            policy_event=PolicyEvent(
                message="Image is 1.4 GB; the limit is 1 GB.",
                color="raw",
                policy_name="image-size-limit",
                policy_pack_name="gitops-deploy-policies",
                policy_pack_version="0.1.0",
                policy_pack_version_tag="0.1.0",
                enforcement_level=level,
                resource_urn=urn,
            )
        )


@pytest.fixture
def rec() -> Recorder:
    return Recorder()


APPS = ("web", "api")


# --- decisions from recorded events ---


def test_failed_health_check_is_a_health_failure_of_its_app(rec: Recorder) -> None:
    events = [
        rec.diag(None, "Updating (prod)", severity="info"),
        *rec.failed(health_urn("web"), HEALTH_CHECK_TYPE, HEALTH_REPORT + "\n"),
        rec.update_failed(),
    ]
    verdict = classify(events, APPS)
    assert verdict.rollback
    assert verdict.other == ()
    [failure] = verdict.health
    assert (failure.app, failure.kind, failure.urn) == ("web", "health-check", health_urn("web"))
    assert failure.report == HEALTH_REPORT


def test_application_that_never_became_healthy_is_a_health_failure(rec: Recorder) -> None:
    message = (
        "resource urn:... was successfully updated, but the Kubernetes API server reported that it "
        "failed to fully initialize or become live: 'api' timed out waiting to be Ready"
    )
    events = [*rec.failed(application_urn("api"), APPLICATION_TYPE, message), rec.update_failed()]
    verdict = classify(events, APPS)
    assert verdict.rollback
    assert [(f.app, f.kind) for f in verdict.health] == [("api", "application")]


def test_application_rejected_by_the_api_server_is_not_a_health_failure(rec: Recorder) -> None:
    message = 'admission webhook "validate.argoproj.io" denied the request: application spec is invalid'
    verdict = classify(rec.failed(application_urn("api"), APPLICATION_TYPE, message), APPS)
    assert not verdict.rollback and verdict.health == ()
    assert verdict.other == (f"{APPLICATION_TYPE} api-argocd-application: {message}",)


def test_mandatory_policy_violation_is_reported_as_is(rec: Recorder) -> None:
    image_urn = "urn:pulumi:prod::gitops-deploy::pulumi-python:dynamic/image:ImageSize::web-size"
    verdict = classify([rec.policy("mandatory", image_urn), rec.update_failed()], APPS)
    assert not verdict.rollback
    assert verdict.other == (
        "policy violation gitops-deploy-policies/image-size-limit on web-size: "
        "Image is 1.4 GB; the limit is 1 GB.",
    )


def test_advisory_policy_violation_is_not_a_failure(rec: Recorder) -> None:
    events = [rec.policy("advisory"), *rec.failed(health_urn("web"), HEALTH_CHECK_TYPE, HEALTH_REPORT)]
    verdict = classify(events, APPS)
    assert verdict.rollback and verdict.other == ()


def test_preflight_failure_is_reported_as_is(rec: Recorder) -> None:
    message = "registry.example.com: credentials rejected (HTTP 401 from GET /v2/)"
    verdict = classify([*rec.failed(PREFLIGHT_URN, PREFLIGHT_TYPE, message), rec.update_failed()], APPS)
    assert not verdict.rollback
    assert verdict.other == (f"{PREFLIGHT_TYPE} registry-preflight: {message}",)


def test_program_error_is_reported_as_is(rec: Recorder) -> None:
    message = "Program failed with an unhandled exception:\nerror: invalid stack configuration (1 problem)"
    verdict = classify([rec.diag(STACK_URN, message), rec.update_failed()], APPS)
    assert not verdict.rollback and verdict.health == ()
    assert verdict.other == (f"pulumi:pulumi:Stack gitops-deploy-prod: {message}",)


def test_health_failure_next_to_another_failure_is_not_rolled_back(rec: Recorder) -> None:
    events = [
        *rec.failed(health_urn("web"), HEALTH_CHECK_TYPE, HEALTH_REPORT),
        *rec.failed(PREFLIGHT_URN, PREFLIGHT_TYPE, "registry unreachable"),
    ]
    verdict = classify(events, APPS)
    assert [f.app for f in verdict.health] == ["web"] and len(verdict.other) == 1
    assert not verdict.rollback


def test_cancelled_update_is_not_rolled_back(rec: Recorder) -> None:
    cancel = rec._event(cancel_event=CancelEvent())
    events = [*rec.failed(health_urn("web"), HEALTH_CHECK_TYPE, HEALTH_REPORT), cancel]
    assert not classify(events, APPS).rollback


def test_op_failed_without_diagnostic_still_counts(rec: Recorder) -> None:
    verdict = classify([rec.op_failed(health_urn("api"), HEALTH_CHECK_TYPE)], APPS)
    assert [(f.app, f.report) for f in verdict.health] == [("api", "no error text was reported")]


def test_events_read_back_from_the_engine_event_log_json(rec: Recorder) -> None:
    """The same decision from events parsed the way the Automation API reads `--event-log` lines."""
    lines = [
        {
            "sequence": 1,
            "timestamp": 1,
            "diagnosticEvent": {
                "urn": health_urn("web"),
                "message": HEALTH_REPORT,
                "color": "raw",
                "severity": "error",
            },
        },
        {
            "sequence": 2,
            "timestamp": 1,
            "resOpFailedEvent": {
                "metadata": {
                    "op": "create",
                    "urn": health_urn("web"),
                    "type": HEALTH_CHECK_TYPE,
                    "provider": "",
                },
                "status": 1,
                "steps": 4,
            },
        },
        {
            "sequence": 3,
            "timestamp": 2,
            "diagnosticEvent": {
                "urn": STACK_URN,
                "message": "update failed",
                "color": "raw",
                "severity": "error",
            },
        },
    ]
    events = [EngineEvent.from_json(json.loads(json.dumps(line))) for line in lines]
    verdict = classify(events, APPS)
    assert verdict.rollback and [f.app for f in verdict.health] == ["web"]


def test_app_of_matches_by_type_suffix_and_app_name() -> None:
    apps = ("web", "web-health", "api")
    assert app_of(health_urn("web"), apps) == "web"
    assert app_of(health_urn("web-health"), apps) == "web-health"
    assert app_of(application_urn("api"), apps) == "api"
    assert app_of(health_urn("gone"), apps) is None


def test_health_check_of_an_unknown_app_is_reported_as_is(rec: Recorder) -> None:
    verdict = classify(rec.failed(health_urn("gone"), HEALTH_CHECK_TYPE, HEALTH_REPORT), APPS)
    assert not verdict.rollback and verdict.other[0].startswith(f"{HEALTH_CHECK_TYPE} gone-health:")


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


def test_app_entries_from_the_cli_config_json() -> None:
    config = json.dumps(
        [
            {"name": "web", "image": {"repository": "registry.example.com/platform/web"}},
            {"name": "api", "image": {"repository": "registry.example.com/platform/api", "pin": GOOD["api"]}},
        ]
    )
    assert app_entries(config) == {
        "web": AppEntry(0, "registry.example.com/platform/web", None),
        "api": AppEntry(1, "registry.example.com/platform/api", GOOD["api"]),
    }
    assert app_entries(None) == {}


def test_plan_pins_each_failed_app_to_its_last_known_good_digest(rec: Recorder) -> None:
    entries = app_entries(_apps_config())
    events = [
        *rec.failed(health_urn("api"), HEALTH_CHECK_TYPE, "api down"),
        *rec.failed(health_urn("web"), HEALTH_CHECK_TYPE, "web down"),
    ]
    plan = plan_rollback(classify(events, entries), GOOD, entries)
    assert [(p.app, p.key, p.digest, p.previous) for p in plan.pins] == [
        ("api", "gitops-deploy:apps[1].image.pin", GOOD["api"], None),
        ("web", "gitops-deploy:apps[0].image.pin", GOOD["web"], None),
    ]
    assert plan.stuck == ()


def test_plan_cannot_roll_back_a_first_deploy_or_a_moved_repository(rec: Recorder) -> None:
    apps = _apps_config()
    apps[1]["image"]["repository"] = "registry.example.com/team/api"
    entries = app_entries(apps)
    events = [e for a in ("web", "api") for e in rec.failed(health_urn(a), HEALTH_CHECK_TYPE, "down")]
    plan = plan_rollback(classify(events, entries), {"api": GOOD["api"]}, entries)
    assert plan.pins == ()
    assert plan.stuck[0].startswith("web: no last known good digest")
    assert "not in the configured repository registry.example.com/team/api" in plan.stuck[1]


def test_pin_key_is_the_documented_path_key() -> None:
    assert pin_key(2) == "gitops-deploy:apps[2].image.pin"
    assert policy_config("dev") == "policies/config.dev.json"
    assert policy_config("acme/gitops-deploy/prod") == "policies/config.prod.json"


# --- the runner, against a stand-in for automation.Stack ---


def _apps_config() -> list[dict[str, Any]]:
    return [
        {"name": "web", "namespace": "web", "image": {"repository": "registry.example.com/platform/web"}},
        {"name": "api", "namespace": "web", "image": {"repository": "registry.example.com/platform/api"}},
    ]


_PATH_KEY = re.compile(r"^gitops-deploy:apps\[(\d+)\]\.image\.pin$")


class FakeStack:
    """`automation.Stack`'s deploy-facing surface, scripted: each `up` replays recorded events."""

    def __init__(
        self, ups: Sequence[list[EngineEvent] | None], apps: list[dict[str, Any]] | None = None
    ) -> None:
        self.apps = apps if apps is not None else _apps_config()
        self.ups = list(ups)
        self.calls: list[dict[str, Any]] = []
        self.config_writes: list[tuple[str, str, str | None]] = []
        self.outputs_value = {
            "apps": OutputValue({n: {"imageDigest": d} for n, d in GOOD.items()}, secret=False)
        }

    def outputs(self) -> dict[str, OutputValue]:
        return self.outputs_value

    def get_all_config(self) -> dict[str, ConfigValue]:
        return {"gitops-deploy:apps": ConfigValue(json.dumps(self.apps))}

    def _image(self, key: str, path: bool) -> dict[str, Any]:
        match = _PATH_KEY.match(key)
        assert path and match, f"expected a --path pin key, got {key!r} (path={path})"
        image: dict[str, Any] = self.apps[int(match.group(1))]["image"]
        return image

    def set_config(self, key: str, value: ConfigValue, *, path: bool = False) -> None:
        assert not value.secret
        self._image(key, path)["pin"] = value.value
        self.config_writes.append(("set", key, value.value))

    def remove_config(self, key: str, *, path: bool = False) -> None:
        self._image(key, path).pop("pin")
        self.config_writes.append(("remove", key, None))

    def up(self, **kwargs: Any) -> None:
        pins = {a["name"]: a["image"].get("pin") for a in self.apps}
        self.calls.append({**kwargs, "pins": pins})
        script = self.ups.pop(0)
        kwargs["on_output"]("Updating (prod)")
        if script is None:
            return
        for event in script:
            kwargs["on_event"](event)
        raise CommandError(CommandResult(stdout="...", stderr="error: update failed", code=255))


def _options() -> tuple[UpOptions, list[str]]:
    lines: list[str] = []
    return UpOptions(["policies"], ["policies/config.prod.json"], lines.append), lines


def _run(stack: FakeStack) -> tuple[int, str, list[str]]:
    options, streamed = _options()
    out = io.StringIO()
    return deploy_up(stack, options, out), out.getvalue(), streamed


def test_successful_deploy_runs_one_up_with_the_policy_pack_and_changes_no_config() -> None:
    stack = FakeStack([None])
    code, report, streamed = _run(stack)
    assert code == EXIT_OK
    [call] = stack.calls
    assert call["policy_packs"] == ["policies"]
    assert call["policy_pack_configs"] == ["policies/config.prod.json"]
    assert call["show_secrets"] is False
    assert call["pins"] == {"web": None, "api": None}
    assert stack.config_writes == []
    assert streamed == ["Updating (prod)"]
    assert "succeeded" in report


def test_health_failure_rolls_back_the_failed_app_and_leaves_no_pin(rec: Recorder) -> None:
    failed = [*rec.failed(health_urn("web"), HEALTH_CHECK_TYPE, HEALTH_REPORT), rec.update_failed()]
    stack = FakeStack([failed, None])
    code, report, _ = _run(stack)
    assert code == EXIT_ROLLED_BACK
    assert [c["pins"] for c in stack.calls] == [{"web": None, "api": None}, {"web": GOOD["web"], "api": None}]
    assert all(c["policy_packs"] == ["policies"] for c in stack.calls)
    assert stack.config_writes == [
        ("set", "gitops-deploy:apps[0].image.pin", GOOD["web"]),
        ("remove", "gitops-deploy:apps[0].image.pin", None),
    ]
    assert all("pin" not in a["image"] for a in stack.apps)
    assert "web: health check failed" in report
    assert "attempt 10: HTTP 503 in 41 ms (expected 200)" in report
    assert f"rolled back web -> {GOOD['web']}" in report


def test_non_health_failure_changes_nothing(rec: Recorder) -> None:
    failed = [*rec.failed(PREFLIGHT_URN, PREFLIGHT_TYPE, "credentials rejected"), rec.update_failed()]
    stack = FakeStack([failed])
    code, report, _ = _run(stack)
    assert code == EXIT_FAILED
    assert len(stack.calls) == 1 and stack.config_writes == []
    assert "nothing was rolled back" in report and "credentials rejected" in report


def test_failure_without_events_reports_the_cli_error() -> None:
    stack = FakeStack([[]])
    code, report, _ = _run(stack)
    assert code == EXIT_FAILED and stack.config_writes == []
    assert "error: update failed" in report and "stdout" not in report


def test_concurrent_update_is_reported_and_nothing_changes() -> None:
    class Locked(FakeStack):
        def up(self, **kwargs: Any) -> None:
            self.calls.append(kwargs)
            raise ConcurrentUpdateError(CommandResult("", "the stack is currently locked by 1 lock(s)", 255))

    stack = Locked([])
    code, report, _ = _run(stack)
    assert code == EXIT_FAILED and stack.config_writes == []
    assert "another update of this stack is in progress" in report


def test_health_failure_of_a_first_deploy_cannot_roll_back(rec: Recorder) -> None:
    stack = FakeStack([rec.failed(health_urn("web"), HEALTH_CHECK_TYPE, HEALTH_REPORT)])
    stack.outputs_value = {}
    code, report, _ = _run(stack)
    assert code == EXIT_FAILED
    assert len(stack.calls) == 1 and stack.config_writes == []
    assert "cannot roll back web: no last known good digest" in report


def test_failed_rollback_still_removes_its_pins(rec: Recorder) -> None:
    first = rec.failed(health_urn("api"), HEALTH_CHECK_TYPE, "api down")
    second = rec.failed(health_urn("api"), HEALTH_CHECK_TYPE, "api still down")
    stack = FakeStack([first, second])
    code, report, _ = _run(stack)
    assert code == EXIT_ROLLBACK_FAILED
    assert stack.calls[1]["pins"] == {"web": None, "api": GOOD["api"]}
    assert all("pin" not in a["image"] for a in stack.apps)
    assert "the rollback failed too" in report and "api still down" in report


def test_a_pin_set_by_the_user_is_restored_after_the_rollback(rec: Recorder) -> None:
    apps = _apps_config()
    user_pin = "registry.example.com/platform/web@sha256:" + "9" * 64
    apps[0]["image"]["pin"] = user_pin
    stack = FakeStack([rec.failed(health_urn("web"), HEALTH_CHECK_TYPE, "down"), None], apps)
    code, report, _ = _run(stack)
    assert code == EXIT_ROLLED_BACK
    assert stack.calls[1]["pins"]["web"] == GOOD["web"]
    assert stack.apps[0]["image"]["pin"] == user_pin
    assert "web is pinned to" in report


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


def test_usage_error_names_the_missing_option(tmp_path: Path) -> None:
    proc = _cli(["up"], path=str(tmp_path))
    assert proc.returncode == 2 and "--stack" in proc.stderr and "Traceback" not in proc.stderr


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
    # The gate's trigger covers the deployed digest (tests/test_health_trigger.py has the whole rule).
    [check] = [r for r in sim.by_type(HEALTH_CHECK_TYPE) if r.name == f"{app}-health"]
    [before] = [r for r in built.by_type(HEALTH_CHECK_TYPE) if r.name == f"{app}-health"]
    assert check.inputs["trigger"] != before.inputs["trigger"]


def test_pins_are_removed_even_when_setting_them_fails_half_way(rec: Recorder) -> None:
    class Flaky(FakeStack):
        def set_config(self, key: str, value: ConfigValue, *, path: bool = False) -> None:
            if "apps[1]" in key:
                raise CommandError(CommandResult("", "error: could not save Pulumi.prod.yaml", 255))
            super().set_config(key, value, path=path)

    events = [e for a in ("web", "api") for e in rec.failed(health_urn(a), HEALTH_CHECK_TYPE, "down")]
    stack = Flaky([events])
    with pytest.raises(CommandError, match="could not save"):
        _run(stack)
    assert len(stack.calls) == 1, "no rollback `up` runs with half the pins set"
    assert all("pin" not in a["image"] for a in stack.apps), stack.apps
    assert stack.config_writes == [
        ("set", "gitops-deploy:apps[0].image.pin", GOOD["web"]),
        ("remove", "gitops-deploy:apps[0].image.pin", None),
    ]


def test_an_interrupted_rollback_still_removes_its_pins(rec: Recorder) -> None:
    class Interrupted(FakeStack):
        def up(self, **kwargs: Any) -> None:
            if self.calls:
                self.calls.append(kwargs)
                raise KeyboardInterrupt
            super().up(**kwargs)

    stack = Interrupted([rec.failed(health_urn("web"), HEALTH_CHECK_TYPE, HEALTH_REPORT)])
    with pytest.raises(KeyboardInterrupt):
        _run(stack)
    assert len(stack.calls) == 2
    assert all("pin" not in a["image"] for a in stack.apps), stack.apps
