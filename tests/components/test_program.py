"""The real `__main__.py` with each example stack, under the SDK's mocks: what it registers, and how."""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from model.config import DEFAULT_SYNC_TIMEOUT_SECONDS
from model.health_settings import DEFAULTS
from model.stack_files import read_stack_config
from policy_check.promotion import PROMOTE_KEY, simulate_promoted
from policy_check.simulate import SimResource, Simulation
from tests.conftest import TEST_PASSWORD
from tests.support.example_project import STACKS

PER_APP_TYPES = Counter(
    {
        "gitops-deploy:index:AppRelease": 1,
        "gitops-deploy:index:RegistrySecret": 1,
        "kubernetes:core/v1:Secret": 1,
        "gitops-deploy:index:AppImage": 1,
        "docker:index/image:Image": 1,
        "pulumi-python:dynamic/image:ImageSize": 1,
        "gitops-deploy:index:ArgoApplication": 1,
        "kubernetes:argoproj.io/v1alpha1:Application": 1,
        "pulumi-python:dynamic/health:HealthCheck": 1,
    }
)
# Which component each resource type is a child of, within one app.
PARENT_TYPE = {
    "gitops-deploy:index:AppRelease": "pulumi:pulumi:Stack",
    "gitops-deploy:index:RegistrySecret": "gitops-deploy:index:AppRelease",
    "kubernetes:core/v1:Secret": "gitops-deploy:index:RegistrySecret",
    "gitops-deploy:index:AppImage": "gitops-deploy:index:AppRelease",
    "docker:index/image:Image": "gitops-deploy:index:AppImage",
    "pulumi-python:dynamic/image:ImageSize": "gitops-deploy:index:AppRelease",
    "gitops-deploy:index:ArgoApplication": "gitops-deploy:index:AppRelease",
    "kubernetes:argoproj.io/v1alpha1:Application": "gitops-deploy:index:ArgoApplication",
    "pulumi-python:dynamic/health:HealthCheck": "gitops-deploy:index:AppRelease",
}


def _type_of(urn: str) -> str:
    """The resource type of a URN (the last segment of its qualified type)."""
    return urn.split("::")[2].split("$")[-1]


def _ancestors(sim: Simulation, res: SimResource) -> list[str]:
    """URNs from the resource's parent up to the stack."""
    chain, parent = [], res.parent
    while parent:
        chain.append(parent)
        parent = "" if _type_of(parent) == "pulumi:pulumi:Stack" else sim.get(parent).parent
    return chain


def _app_resources(sim: Simulation, app: str) -> list[SimResource]:
    """Every resource under the app's AppRelease."""
    release = next(r for r in sim.by_type("gitops-deploy:index:AppRelease") if r.name == app)
    return [r for r in sim.resources if r is release or release.urn in _ancestors(sim, r)]


def _expected_types(cfg: dict[str, Any], app: dict[str, Any]) -> Counter[str]:
    """An app's resource types: no docker Image when it is not built (pinned, or the stack promotes)."""
    if PROMOTE_KEY in cfg or app["image"].get("pin"):
        return PER_APP_TYPES - Counter({"docker:index/image:Image": 1})
    return PER_APP_TYPES


def _one(sim: Simulation, type_: str, app: str) -> SimResource:
    found = [r for r in _app_resources(sim, app) if r.type == type_]
    assert len(found) == 1, f"{app}: expected one {type_}, found {[r.urn for r in found]}"
    return found[0]


@pytest.fixture(scope="module")
def sims(example_project: Path) -> Iterator[dict[str, Simulation]]:
    """One simulation of each example stack, after the stacks it promotes from, shared by the tests."""
    yield {
        stack: simulate_promoted(stack, password=TEST_PASSWORD, project_dir=example_project)[0]
        for stack in STACKS
    }


@pytest.mark.parametrize("stack", STACKS)
def test_each_app_registers_exactly_its_resources(
    sims: dict[str, Simulation], example_project: Path, stack: str
) -> None:
    sim = sims[stack]
    cfg = read_stack_config(stack, example_project)
    apps = [a["name"] for a in cfg["gitops-deploy:apps"]]
    per_app = 0
    for app in cfg["gitops-deploy:apps"]:
        counts = Counter(r.type for r in _app_resources(sim, app["name"]))
        assert counts == _expected_types(cfg, app), f"{stack}/{app['name']}: {counts}"
        per_app += counts.total()
    in_apps = {r.urn for app in apps for r in _app_resources(sim, app)}
    stack_level = [r for r in sim.resources if r.urn not in in_apps]
    assert len(sim.resources) == per_app + len(stack_level)
    # Besides the apps: providers, namespaces, the preflight and (when managed) the AppProject.
    assert {r.type for r in stack_level} <= {
        "pulumi:providers:kubernetes",
        "kubernetes:core/v1:NamespacePatch",
        "pulumi-python:dynamic/registry:RegistryPreflight",
        "gitops-deploy:index:ArgoProject",
        "kubernetes:argoproj.io/v1alpha1:AppProject",
    }, stack_level
    stack_types = Counter(r.type for r in stack_level)
    assert stack_types["pulumi-python:dynamic/registry:RegistryPreflight"] == 1, stack_types
    namespaces = {a["namespace"] for a in read_stack_config(stack, example_project)["gitops-deploy:apps"]}
    assert stack_types["kubernetes:core/v1:NamespacePatch"] == len(namespaces)


@pytest.mark.parametrize("stack", STACKS)
def test_parent_chain_of_every_app_resource(
    sims: dict[str, Simulation], example_project: Path, stack: str
) -> None:
    sim = sims[stack]
    for app in (a["name"] for a in read_stack_config(stack, example_project)["gitops-deploy:apps"]):
        for res in _app_resources(sim, app):
            parent_type = _type_of(res.parent)
            assert parent_type == PARENT_TYPE[res.type], f"{res.urn}: parent is {res.parent}"
            assert _type_of(_ancestors(sim, res)[-1]) == "pulumi:pulumi:Stack", res.urn
            assert res.name.startswith(f"{app}"), f"{res.urn}: child names derive from the app's"


@pytest.mark.parametrize("stack", STACKS)
def test_pull_secret_inputs(sims: dict[str, Simulation], example_project: Path, stack: str) -> None:
    sim = sims[stack]
    registry = read_stack_config(stack, example_project)["gitops-deploy:registry"]
    for app in read_stack_config(stack, example_project)["gitops-deploy:apps"]:
        secret = _one(sim, "kubernetes:core/v1:Secret", app["name"])
        assert secret.inputs["type"] == "kubernetes.io/dockerconfigjson", secret.urn
        assert secret.inputs["metadata"]["namespace"] == app["namespace"], secret.urn
        assert secret.inputs["metadata"]["name"] == f"{app['name']}-registry", secret.urn
        assert secret.inputs["metadata"]["labels"]["gitops-deploy/role"] == "image-pull-secret"
        assert "data" in secret.secret_paths, f"{secret.urn}: data must be secret"
        config = json.loads(base64.b64decode(secret.inputs["data"][".dockerconfigjson"]))
        entry = config["auths"][registry["server"]]
        assert entry["username"] == registry["username"]
        assert entry["password"] == TEST_PASSWORD
        assert base64.b64decode(entry["auth"]).decode() == f"{registry['username']}:{TEST_PASSWORD}"


@pytest.mark.parametrize("stack", STACKS)
def test_image_build_inputs(sims: dict[str, Simulation], example_project: Path, stack: str) -> None:
    sim = sims[stack]
    cfg = read_stack_config(stack, example_project)
    built = [a for a in cfg["gitops-deploy:apps"] if "docker:index/image:Image" in _expected_types(cfg, a)]
    for app in built:
        image = _one(sim, "docker:index/image:Image", app["name"])
        name = image.inputs["imageName"]
        repo, tag = name.rsplit(":", 1)
        assert repo == app["image"]["repository"], image.urn
        assert tag.startswith("ctx-") and tag != "latest", f"{image.urn}: tag {tag!r}"
        build = image.inputs["build"]
        assert build["context"] == app["image"]["context"], f"{image.urn}: context must be project-relative"
        assert build["dockerfile"] == f"{app['image']['context']}/Dockerfile"
        assert build["platform"] == app["image"].get("platform", "linux/amd64")
        assert build.get("args", {}) == app["image"].get("buildArgs", {})
        assert image.inputs["registry"]["server"] == cfg["gitops-deploy:registry"]["server"]
        assert "registry.password" in image.secret_paths, image.urn
        assert image.inputs["buildOnPreview"] is cfg.get("gitops-deploy:build", {}).get("onPreview", True)
        preflight = sim.by_type("pulumi-python:dynamic/registry:RegistryPreflight")[0]
        assert preflight.urn in image.dependencies, f"{image.urn} must wait for the registry preflight"


@pytest.mark.parametrize("stack", STACKS)
def test_application_inputs(sims: dict[str, Simulation], example_project: Path, stack: str) -> None:
    sim = sims[stack]
    cfg = read_stack_config(stack, example_project)
    argocd = cfg.get("gitops-deploy:argocd", {})
    for app in cfg["gitops-deploy:apps"]:
        res = _one(sim, "kubernetes:argoproj.io/v1alpha1:Application", app["name"])
        digest = sim.exports["apps"][app["name"]]["imageDigest"]
        repo, sha = digest.split("@")
        assert repo == app["image"]["repository"] and sha.startswith("sha256:")
        meta, spec = res.inputs["metadata"], res.inputs["spec"]
        assert meta["name"] == app["name"] and meta["namespace"] == argocd.get("namespace", "argocd")
        assert meta["finalizers"] == ["resources-finalizer.argocd.argoproj.io"]
        # The release's identity first, then Synced, then its workload Healthy (test_release_wait.py
        # runs them): a chart's workload is named after the app, an overlay's is `<app>-<source.workload>`.
        wait_for = json.loads(meta["annotations"]["pulumi.com/waitFor"])
        source = app["source"]
        workload = (
            app["name"]
            if source["type"] == "helm"
            else f"{app['name']}-{source.get('workload', app['name'])}"
        )
        assert sha in wait_for[0] and wait_for[2] == "jsonpath={.status.sync.status}=Synced", res.urn
        assert wait_for[3].startswith("jsonpath={$..[?") and wait_for[3].endswith("].health.status}=Healthy")
        assert f"@.name == '{workload}' && @.namespace == '{app['namespace']}'" in wait_for[3], res.urn
        assert meta["annotations"]["pulumi.com/timeoutSeconds"] == str(
            argocd.get("syncTimeoutSeconds", DEFAULT_SYNC_TIMEOUT_SECONDS)
        )
        assert spec["project"] == argocd.get("project", "default")
        assert spec["destination"]["namespace"] == app["namespace"]
        # Spelled out as the spec states it, not read back from the code under test.
        retry = {"limit": 3, "backoff": {"duration": "10s", "factor": 2, "maxDuration": "3m"}}
        if argocd.get("retryRefresh", True):  # absent when false (older Argo CD CRDs)
            retry["refresh"] = True
        assert spec["syncPolicy"] == {
            "automated": {"prune": True, "selfHeal": True},
            "syncOptions": ["CreateNamespace=true"],
            "retry": retry,
        }, res.urn
        assert spec["destination"] == (
            {"server": "https://kubernetes.default.svc", "namespace": app["namespace"]}
            if "gitops-deploy:cluster" not in cfg
            else {"name": cfg["gitops-deploy:cluster"]["name"], "namespace": app["namespace"]}
        ), res.urn
        source = spec["source"]
        assert source["repoURL"] == app["source"]["repoURL"]
        assert source["path"] == app["source"]["path"]
        assert source["targetRevision"] == app["source"]["targetRevision"]
        if app["source"]["type"] == "helm":
            values = source["helm"]["valuesObject"]
            assert values["image"]["repository"] == repo
            assert values["image"]["digest"] == sha
            # The content tag of a build; none for a promoted (or pinned) digest, which the digest pins.
            built = "docker:index/image:Image" in _expected_types(cfg, app)
            assert values["image"]["tag"].startswith("ctx-") if built else values["image"]["tag"] == ""
            assert values["replicaCount"] == app["replicas"]
            assert values["imagePullSecrets"] == [{"name": f"{app['name']}-registry"}]
            assert "kustomize" not in source
        else:
            image_name = app["source"].get("imageName", app["image"]["repository"])
            workload = app["source"].get("workload", app["name"])
            kustomize = source["kustomize"]
            assert kustomize["images"] == [f"{image_name}={digest}"]
            assert kustomize["replicas"] == [{"name": workload, "count": app["replicas"]}]
            # What lets apps share an overlay: their own names, pod selectors and pull secret.
            assert kustomize["namePrefix"] == f"{app['name']}-"
            assert kustomize["commonLabels"] == {"app.kubernetes.io/name": app["name"]}
            secret = {"name": f"{app['name']}-registry"}
            path = "/spec/template/spec/imagePullSecrets"
            workloads, selector = "Deployment|StatefulSet", "gitops-deploy/pull-secrets"
            assert [(p["target"], json.loads(p["patch"])) for p in kustomize["patches"]] == [
                (
                    {"kind": workloads, "annotationSelector": f"{selector}!=append"},
                    [
                        {"op": "test", "path": path, "value": None},
                        {"op": "add", "path": path, "value": [secret]},
                    ],
                ),
                (
                    {"kind": workloads, "annotationSelector": f"{selector}=append"},
                    [{"op": "add", "path": f"{path}/-", "value": secret}],
                ),
            ]
            assert "helm" not in source


@pytest.mark.parametrize("stack", STACKS)
def test_health_check_follows_the_application(
    sims: dict[str, Simulation], example_project: Path, stack: str
) -> None:
    sim = sims[stack]
    for app in read_stack_config(stack, example_project)["gitops-deploy:apps"]:
        check = _one(sim, "pulumi-python:dynamic/health:HealthCheck", app["name"])
        application = _one(sim, "kubernetes:argoproj.io/v1alpha1:Application", app["name"])
        assert application.urn in check.dependencies, check.urn
        assert check.inputs["url"] == app["health"]["url"]
        # A hash over the whole release (test_health_trigger.py drives it through the provider).
        trigger = check.inputs["trigger"]
        assert trigger.startswith("sha256:") and len(trigger) == len("sha256:") + 64, check.urn
        health = app["health"]
        assert check.inputs["max_latency_ms"] == health.get("maxLatencyMs", DEFAULTS["max_latency_ms"])
        assert check.inputs["attempts"] == health.get("attempts", DEFAULTS["attempts"])
        assert "headers" in check.secret_paths, f"{check.urn}: headers must be secret"


@pytest.mark.parametrize("stack", STACKS)
def test_exports_name_each_app(sims: dict[str, Simulation], example_project: Path, stack: str) -> None:
    apps = read_stack_config(stack, example_project)["gitops-deploy:apps"]
    exported = sims[stack].exports["apps"]
    assert sorted(exported) == sorted(a["name"] for a in apps)
    for app in apps:
        assert exported[app["name"]]["application"] == app["name"]
        assert exported[app["name"]]["pullSecret"] == f"{app['name']}-registry"


def _leaves(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(v, f"{path}.{k}" if path else k)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _leaves(v, f"{path}[{i}]")
    elif isinstance(value, str):
        yield path, value


def _contains_password(text: str) -> bool:
    if TEST_PASSWORD in text:
        return True
    try:
        decoded = base64.b64decode(text, validate=True).decode(errors="ignore")
    except ValueError:
        return False
    return _contains_password(decoded) if decoded != text else False


def _under_secret(path: str, secret_paths: frozenset[str]) -> bool:
    return any(path == s or path.startswith(s + ".") or path.startswith(s + "[") for s in secret_paths)


@pytest.mark.parametrize("stack", STACKS)
def test_password_appears_only_inside_secrets(sims: dict[str, Simulation], stack: str) -> None:
    sim = sims[stack]
    carriers = set()
    for res in sim.resources:
        for where, values in (("input", res.inputs), ("output", res.outputs)):
            for path, text in _leaves(values):
                if _contains_password(text):
                    secret_paths = res.secret_paths if where == "input" else res.output_secret_paths
                    assert _under_secret(path, secret_paths), (
                        f"{res.urn}: the password is in plaintext at {where} {path}"
                    )
                    carriers.add((res.type, path.split(".")[0]))
    assert ("kubernetes:core/v1:Secret", "data") in carriers
    assert carriers <= {
        ("kubernetes:core/v1:Secret", "data"),
        ("docker:index/image:Image", "registry"),
        ("pulumi-python:dynamic/registry:RegistryPreflight", "password"),
        ("pulumi-python:dynamic/image:ImageSize", "password"),
    }, carriers
    assert not any(_contains_password(t) for _, t in _leaves(sim.exports))
    assert not any(TEST_PASSWORD in line for line in sim.logs)


@pytest.mark.parametrize("stack", STACKS)
def test_core_objects_validate_against_the_kubernetes_schema(sims: dict[str, Simulation], stack: str) -> None:
    core = [r for r in sims[stack].resources if r.type.startswith("kubernetes:core/")]
    assert core
    for res in core:
        manifest = {k: v for k, v in res.inputs.items() if not k.startswith("__")}
        try:
            kubernetes_validate.validate(manifest, "1.33", strict=True)
        except kubernetes_validate.ValidationError as err:
            pytest.fail(f"{res.urn}: {err.message} at {list(err.path)}")


def test_several_apps_get_independent_resources(
    run_program: Callable[..., Simulation], stack_config: Callable[[str], dict[str, Any]]
) -> None:
    cfg = stack_config("staging")
    cfg.pop(PROMOTE_KEY, None)  # these apps build their own images
    template = cfg["gitops-deploy:apps"][0]
    apps = []
    for i, name in enumerate(["alpha", "beta", "gamma"]):
        app = json.loads(json.dumps(template))
        app["name"], app["namespace"], app["replicas"] = name, f"team-{i % 2}", 3 + i
        app["image"]["repository"] = f"registry.example.com/platform/{name}"
        apps.append(app)
    cfg["gitops-deploy:apps"] = apps
    sim = run_program("staging", config=cfg)
    for i, name in enumerate(["alpha", "beta", "gamma"]):
        owned = _app_resources(sim, name)
        assert Counter(r.type for r in owned) == PER_APP_TYPES
        assert all(r.name.startswith(name) for r in owned)
        application = _one(sim, "kubernetes:argoproj.io/v1alpha1:Application", name)
        assert application.inputs["spec"]["source"]["kustomize"]["replicas"][0]["count"] == 3 + i
        assert application.inputs["metadata"]["name"] == name
    assert len(sim.by_type("kubernetes:core/v1:NamespacePatch")) == 2
    assert len({r.urn for r in sim.resources}) == len(sim.resources)


def test_secret_health_headers_stay_secret(
    run_program: Callable[..., Simulation], stack_config: Callable[[str], dict[str, Any]]
) -> None:
    token = "Bearer hh-7c1e-secret-token"
    sim = run_program(
        "dev",
        config=stack_config("dev"),
        secret_config={"gitops-deploy:healthHeaders": {"web": {"Authorization": token}}},
    )
    check = _one(sim, "pulumi-python:dynamic/health:HealthCheck", "web")
    assert check.inputs["headers"]["Authorization"] == token
    assert "headers" in check.secret_paths
    for res in sim.resources:
        for path, text in _leaves(res.outputs):
            if token in text:
                assert _under_secret(path, res.output_secret_paths), f"{res.urn}: token in output {path}"
        for path, text in _leaves(res.inputs):
            if token in text:
                assert res is check and _under_secret(path, res.secret_paths), f"{res.urn}: {path}"
    assert not any(token in t for _, t in _leaves(sim.exports))


def test_registry_preflight_runs_once_per_stack_with_every_repository(
    run_program: Callable[..., Simulation], stack_config: Callable[[str], dict[str, Any]]
) -> None:
    cfg = stack_config("staging")
    cfg.pop(PROMOTE_KEY, None)  # a stack that builds both of its apps
    sim = run_program("staging", config=cfg)
    (preflight,) = sim.by_type("pulumi-python:dynamic/registry:RegistryPreflight")
    assert preflight.inputs["server"] == "registry.example.com"
    assert preflight.inputs["username"] == "ci-pusher"
    assert sorted(preflight.inputs["repositories"]) == sorted(
        a["image"]["repository"].split("/", 1)[1] for a in cfg["gitops-deploy:apps"]
    )
    assert "password" in preflight.secret_paths
    assert sum("registry preflight" in line for line in sim.logs) == 1, sim.logs


def test_image_size_feeds_the_application_annotation(run_program: Callable[..., Simulation]) -> None:
    from policy_check.simulate import ProgramMocks

    mocks = ProgramMocks(image_sizes={"web-image-size": 123456789.0})
    sim = run_program("dev", mocks=mocks)
    size = _one(sim, "pulumi-python:dynamic/image:ImageSize", "web")
    assert size.inputs["image"] == sim.exports["apps"]["web"]["imageDigest"]
    assert size.inputs["platform"] == "linux/amd64"
    application = _one(sim, "kubernetes:argoproj.io/v1alpha1:Application", "web")
    assert application.inputs["metadata"]["annotations"]["gitops-deploy/image-size-bytes"] == "123456789"
