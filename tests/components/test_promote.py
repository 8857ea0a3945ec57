"""Build once, promote: a promoting stack builds nothing and deploys its upstream stack's digests."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from components.deployment import PromotionError, stack_reference_name
from model.config import PromoteConfig
from model.config_schema import NAMESPACE, SOAKED_KEY
from model.names import (
    APPLICATION_TYPE,
    DOCKER_IMAGE_TYPE,
    HEALTH_CHECK_TYPE,
    REGISTRY_PREFLIGHT_TYPE,
    health_check_name,
)
from model.stack_files import PROJECT_DIR, read_stack_config, stack_names
from policy_check.check import run_check
from policy_check.promotion import PROMOTE_KEY, upstream_of
from policy_check.report_format import formatted
from policy_check.simulate import ProgramFailed, ProgramMocks, Simulation, simulate
from tests.conftest import TEST_PASSWORD
from tests.support import projects
from tests.support.projects import make_project, write_chart, write_policy_config, write_stack

REPO = "https://github.com/example-org/gitops-deploy.git"
WEB = "registry.example.com/team/web"
API = "registry.example.com/team/api"
WORKER = "registry.example.com/team/worker@sha256:" + "f" * 64


def _app(name: str, repository: str, kind: str = "helm") -> dict[str, Any]:
    source: dict[str, Any] = {"repoURL": REPO, "targetRevision": "main", "type": kind}
    source["path"] = "examples/app/chart" if kind == "helm" else "examples/app/kustomize"
    if kind == "kustomize":
        source["imageName"] = "web"
    return {
        "name": name,
        "namespace": "team",
        "replicas": 3,
        "image": {"repository": repository, "context": "examples/app", "buildArgs": {"APP_ROLE": name}},
        "source": source,
        "health": {"url": f"https://{name}.example.com/healthz"},
    }


def _stack(*apps: dict[str, Any], promote: str | None = None) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "gitops-deploy:registry": {"server": "registry.example.com", "username": "ci-pusher"},
        "gitops-deploy:apps": list(apps),
    }
    if promote is not None:
        cfg[PROMOTE_KEY] = {"from": promote}
    return cfg


def _upstream() -> Simulation:
    """A stack that builds web and api, as dev does, after its soak passed: the deploy's follow-up update
    hands the program the digests that passed it."""
    cfg = _stack(_app("web", WEB), _app("api", API))
    released = simulate("up", config=cfg, password=TEST_PASSWORD)
    cfg[f"{NAMESPACE}:{SOAKED_KEY}"] = json.dumps(
        {app: e["imageDigest"] for app, e in released.exports["apps"].items()}
    )
    return simulate("up", config=cfg, password=TEST_PASSWORD)


def _promote(cfg: dict[str, Any], outputs: dict[str, Any], **kwargs: Any) -> tuple[Simulation, ProgramMocks]:
    mocks = ProgramMocks(stack_outputs={"up": outputs})
    return simulate("down", config=cfg, password=TEST_PASSWORD, mocks=mocks, **kwargs), mocks


def _application(sim: Simulation, app: str) -> dict[str, Any]:
    [res] = [r for r in sim.by_type(APPLICATION_TYPE) if r.inputs["metadata"]["name"] == app]
    return dict(res.inputs)


def test_a_promoting_stack_builds_nothing_and_deploys_the_upstream_digests() -> None:
    upstream = _upstream()
    digests = {app: upstream.exports["apps"][app]["imageDigest"] for app in ("web", "api")}
    sim, mocks = _promote(
        _stack(_app("web", WEB), _app("api", API, "kustomize"), promote="up"), upstream.exports
    )
    assert sim.by_type(DOCKER_IMAGE_TYPE) == [], [r.urn for r in sim.by_type(DOCKER_IMAGE_TYPE)]
    assert mocks.stack_references == ["up"], "one StackReference, to the upstream stack"
    web = _application(sim, "web")["spec"]["source"]["helm"]["valuesObject"]["image"]
    assert f"{web['repository']}@{web['digest']}" == digests["web"]
    assert web["tag"] == "", "no content tag: nothing was built here"
    assert _application(sim, "api")["spec"]["source"]["kustomize"]["images"] == [f"web={digests['api']}"]
    assert {a: sim.exports["apps"][a]["imageDigest"] for a in digests} == digests
    # What still runs: the credential check (no push probe, no repository), pull secrets, size, gate.
    (preflight,) = sim.by_type(REGISTRY_PREFLIGHT_TYPE)
    assert preflight.inputs["repositories"] == [], preflight.urn
    for app in digests:
        [size] = [r for r in sim.resources if r.name == f"{app}-image-size"]
        assert size.inputs["image"] == digests[app], size.urn


def test_a_promoting_stack_lints_no_dockerfile(example_copy: Path) -> None:
    """Its apps' build inputs are not used: a Dockerfile that would fail the lint does not matter."""
    (example_copy / "lint").mkdir()
    (example_copy / "lint" / "Dockerfile").write_text("FROM debian:latest\nRUN echo hi\n")
    upstream = _upstream()
    web = _app("web", WEB)
    web["image"]["dockerfile"] = "lint/Dockerfile"  # inside the project, as a Dockerfile must be
    sim, _ = _promote(_stack(web, promote="up"), upstream.exports, project_dir=example_copy)
    assert not [line for line in sim.logs if "hadolint" in line], sim.logs
    # The same stack building its own image fails on that Dockerfile before registering anything.
    with pytest.raises(ProgramFailed, match="DL3007"):
        simulate("down", config=_stack(web), password=TEST_PASSWORD, project_dir=example_copy)


def test_an_app_missing_upstream_is_one_clear_error_and_nothing_is_registered() -> None:
    upstream = _upstream()
    only_web = {"apps": {"web": upstream.exports["apps"]["web"]}}
    cfg = _stack(
        _app("web", WEB), _app("api", API), _app("worker", "registry.example.com/team/worker"), promote="up"
    )
    cfg["gitops-deploy:argocd"] = {"project": "team", "manageProject": True}  # the AppProject waits too
    with pytest.raises(ProgramFailed) as failed:
        _promote(cfg, only_web)
    cause = failed.value.cause
    assert isinstance(cause, PromotionError), cause
    text = str(cause)
    assert text.startswith("gitops-deploy:promote: stack 'up' cannot supply 2 apps:"), text
    assert "app 'api' is not in stack 'up' (its apps: web)" in text, text
    assert "gitops-deploy:apps[1].image.pin" in text and "app 'worker'" in text, text
    # Only providers and components (which create nothing) were registered before the error.
    applied = [
        r.urn for r in failed.value.resources if r.custom and not r.type.startswith("pulumi:providers:")
    ]
    assert applied == [], applied
    # Not vacuous: the same stack, with its upstream complete, registers all of that.
    worker = {"imageDigest": WORKER, "soakedDigest": WORKER}
    complete, _ = _promote(cfg, {"apps": {**upstream.exports["apps"], "worker": worker}})
    registered = {r.type for r in complete.resources}
    assert {"kubernetes:core/v1:NamespacePatch", "kubernetes:argoproj.io/v1alpha1:AppProject"} <= registered


@pytest.mark.parametrize(
    ("outputs", "message"),
    [
        ({}, "stack 'up' exports no 'apps'"),
        ({"apps": {"web": {"imageDigest": None}}}, "app 'web' has no verified digest in stack 'up'"),
        (
            {"apps": {"web": {"imageDigest": "registry.example.com/team/other@sha256:" + "c" * 64}}},
            "this stack expects an image of 'registry.example.com/team/web'",
        ),
    ],
    ids=["no-apps-export", "no-digest", "other-repository"],
)
def test_an_unusable_upstream_is_a_clear_error(outputs: dict[str, Any], message: str) -> None:
    with pytest.raises(ProgramFailed) as failed:
        _promote(_stack(_app("web", WEB), promote="up"), outputs)
    assert isinstance(failed.value.cause, PromotionError) and message in str(failed.value.cause)


def test_a_pin_still_wins() -> None:
    upstream = _upstream()
    pin = f"{WEB}@sha256:" + "d" * 64
    web = _app("web", WEB)
    web["image"]["pin"] = pin
    # The pinned app need not exist upstream (a hotfix); the unpinned one still comes from there.
    sim, _ = _promote(
        _stack(web, _app("api", API), promote="up"), {"apps": {"api": upstream.exports["apps"]["api"]}}
    )
    assert sim.exports["apps"]["web"]["imageDigest"] == pin
    assert sim.exports["apps"]["api"]["imageDigest"] == upstream.exports["apps"]["api"]["imageDigest"]
    assert sim.by_type(DOCKER_IMAGE_TYPE) == []


def test_a_rollback_in_a_promoting_stack_probes_again() -> None:
    """A promoted digest has no tag, as a pin: only the rollback id makes the restored release's gate run."""
    upstream = _upstream()
    promoted, _ = _promote(_stack(_app("web", WEB), promote="up"), upstream.exports)
    web = _app("web", WEB)
    web["image"]["pin"] = upstream.exports["apps"]["web"]["imageDigest"]
    rollback = _stack(web, promote="up")
    rollback["gitops-deploy:rollbackId"] = "rb-77"

    def trigger(sim: Simulation) -> str:
        [check] = [r for r in sim.by_type(HEALTH_CHECK_TYPE) if r.name == health_check_name("web")]
        return str(check.inputs["trigger"])

    pinned_no_id, _ = _promote(_stack(web, promote="up"), upstream.exports)
    assert trigger(pinned_no_id) == trigger(promoted), "same release, same trigger"
    assert trigger(_promote(rollback, upstream.exports)[0]) != trigger(promoted)


def test_stack_reference_names_the_running_stacks_org_and_project() -> None:
    promote = PromoteConfig(from_stack="staging")
    assert stack_reference_name(promote, "acme", "gitops-deploy") == "acme/gitops-deploy/staging"
    # A DIY backend's org is always "organization" (pulumi/pulumi pkg/backend/diy/store.go).
    assert (
        stack_reference_name(promote, "organization", "gitops-deploy") == "organization/gitops-deploy/staging"
    )
    qualified = PromoteConfig(from_stack="platform/shared-images/prod")
    assert stack_reference_name(qualified, "acme", "gitops-deploy") == "platform/shared-images/prod"
    assert stack_reference_name(promote, None, "gitops-deploy") == "staging", (
        "no org known: the backend decides"
    )


@pytest.mark.parametrize(
    ("value", "key", "expected"),
    [
        ("dev", "gitops-deploy:promote:", "an object"),
        ({}, "gitops-deploy:promote.from:", "missing; expected a non-empty string"),
        ({"from": "dev", "to": "prod"}, "gitops-deploy:promote.to:", "an unknown key"),
        ({"from": "a/b"}, "gitops-deploy:promote.from:", "'<org>/<project>/<stack>'"),
        ({"from": "dev stack"}, "gitops-deploy:promote.from:", "'<org>/<project>/<stack>'"),
        ({"from": "down"}, "gitops-deploy:promote.from:", "a stack cannot promote from itself"),
    ],
)
def test_bad_promote_config_is_one_clear_error(value: Any, key: str, expected: str) -> None:
    cfg = _stack(_app("web", WEB))
    cfg[PROMOTE_KEY] = value
    with pytest.raises(ProgramFailed) as failed:
        simulate("down", config=cfg, password=TEST_PASSWORD)
    text = str(failed.value.cause)
    assert key in text and expected in text and text.count("\n  - ") == 1, text
    assert failed.value.resources == []


@pytest.mark.grpc
@pytest.mark.render
def test_offline_check_of_a_promoting_stack_cannot_judge_the_digests_yet(tmp_path: Path) -> None:
    """Offline there is no upstream state: the digests are unknown, rendering says so, nothing crashes."""
    cfg = _stack(_app("web", WEB), _app("api", API, "kustomize"), promote="up")
    report = run_check("down", config=cfg, config_file=write_policy_config(tmp_path / "policy.json"))
    text = formatted(report, "table")
    assert report.exit_code == 0, text
    assert sorted((r.application, r.status) for r in report.renders) == [
        ("api", "not-rendered"),
        ("web", "not-rendered"),
    ]
    assert all("image digest is known" in r.reason for r in report.renders), text
    assert "Can't judge yet" in text and "image-size-limit" in text, text


@pytest.mark.grpc
@pytest.mark.render
def test_offline_check_renders_a_promoting_stack_with_its_upstream_stacks_digests(tmp_path: Path) -> None:
    """With the upstream stack's file in the project, its simulated exports stand in for its state."""
    project = make_project(tmp_path / "project")
    chart = write_chart(project)
    (project / "ctx").mkdir()
    (project / "ctx" / "Dockerfile").write_text("FROM scratch\nCOPY . /\n")
    web = projects.app("web", "ctx", chart=chart)
    write_stack(project, "up", projects.stack_config([web]))
    write_stack(project, "down", {**projects.stack_config([web]), PROMOTE_KEY: {"from": "up"}})
    policy = write_policy_config(tmp_path / "policy.json")
    report = run_check("down", project_dir=project, config_file=policy)
    text = formatted(report, "table")
    assert report.exit_code == 0, text
    assert [(r.application, r.status) for r in report.renders] == [("web", "rendered")], text
    [deployment] = [o for r in report.renders for o in r.objects if o.type.endswith(":Deployment")]
    assert deployment.name == "web", text
    assert "No images to build" in text and "BUILD ERROR" not in text, text


def test_example_promotion_chain_is_consistent(example_project: Path) -> None:
    """Every app of a promoting stack file exists in its upstream stack file, from the same repository."""
    stacks = stack_names(example_project)
    checked = 0
    for stack in stacks:
        config = read_stack_config(stack, example_project)
        upstream = upstream_of(config)
        if upstream is None or upstream not in stacks:
            continue  # a stack of another project, or one that builds
        theirs = {
            a["name"]: a["image"]["repository"]
            for a in read_stack_config(upstream, example_project)["gitops-deploy:apps"]
        }
        for app in config["gitops-deploy:apps"]:
            if app["image"].get("pin"):
                continue
            assert app["name"] in theirs, (
                f"Pulumi.{stack}.yaml: app {app['name']} is not in Pulumi.{upstream}.yaml"
            )
            assert theirs[app["name"]] == app["image"]["repository"], (
                f"{stack}/{app['name']}: repository differs"
            )
            checked += 1
    assert checked == 3, "staging's two apps from dev, prod's one from staging"


def test_example_stacks_run_in_promotion_order(
    example_project: Path, stack_config: Callable[[str], dict[str, Any]]
) -> None:
    """Each promoting stack, fed its upstream's exports, deploys exactly the upstream's digests."""
    from policy_check.promotion import simulate_promoted

    promoted = 0
    for stack in stack_names(example_project):
        config = stack_config(stack)
        upstream = upstream_of(config)
        if upstream is None or upstream not in stack_names(example_project):
            continue
        promoted += 1
        sim, mocks = simulate_promoted(
            stack, password=TEST_PASSWORD, config=copy.deepcopy(config), project_dir=example_project
        )
        theirs = mocks.stack_outputs[upstream]["apps"]
        assert sim.by_type(DOCKER_IMAGE_TYPE) == [], stack
        for app in config["gitops-deploy:apps"]:
            expected = app["image"].get("pin") or theirs[app["name"]]["imageDigest"]
            assert sim.exports["apps"][app["name"]]["imageDigest"] == expected, f"{stack}/{app['name']}"
    assert promoted == 2


def test_deploy_workflow_deploys_each_upstream_first() -> None:
    """A promoting stack's deploy job runs after its upstream's (a `needs` chain): fresh digests.

    It reads the project's own stack files for the stacks deploy.yml deploys: a stack with no job
    (a user's own, deployed by hand) is not CI's to order.
    """
    import yaml

    jobs = yaml.safe_load((PROJECT_DIR / ".github/workflows/deploy.yml").read_text(encoding="utf-8"))["jobs"]
    job_of = {
        job["with"]["stack"]: name
        for name, job in jobs.items()
        if job.get("with", {}).get("stack") in stack_names(PROJECT_DIR)
    }
    assert job_of, "deploy.yml deploys its stacks with deploy-stack.yml"

    def after(job: str) -> set[str]:
        needs = jobs[job].get("needs", [])
        direct = {needs} if isinstance(needs, str) else set(needs)
        return direct.union(*(after(n) for n in direct)) if direct else set()

    for stack, job in job_of.items():
        upstream = upstream_of(read_stack_config(stack))
        if upstream is None:
            continue
        assert upstream in job_of, f"deploy.yml deploys {stack} but not {upstream}, which it promotes from"
        assert job_of[upstream] in after(job), f"deploy.yml: {stack} must need {upstream}"
