"""Render the example stacks' Applications with Helm's and kustomize's own engines; break copies of them."""

from __future__ import annotations

import dataclasses
import subprocess
import sysconfig
from pathlib import Path
from typing import Any

import pytest
import yaml

from model.names import APPLICATION_TYPE
from model.stack_files import read_stack_config
from policy_check import render_helm
from policy_check.render import (
    REMOTE_SOURCE,
    child_urn,
    render_all,
    type_token,
)
from policy_check.render_common import PYTHON, RenderedObject, RenderError, RenderResult
from policy_check.render_helm import HelmWorker
from policy_check.render_kustomize import _check_replicas, kubectl_path, parse_image
from policy_check.render_source import Repository, normalize_repo_url
from policy_check.simulate import UNKNOWN, simulate
from tests.support.applications import APPLICATION_CHAIN, application, built_digest, stack_applications
from tests.support.example_project import OVERLAY, STACKS, overlay_app
from tests.support.projects import REPO_URL

pytestmark = pytest.mark.render
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
SERVICE = "kubernetes:core/v1:Service"
HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
CHART = "examples/app/chart"
HERE = Repository(normalize_repo_url(REPO_URL), "--repo-url")
"""This repository as the example stacks name it."""


def _apps(stack: str, project_dir: Path) -> dict[str, dict[str, Any]]:
    """The stack file's apps by name."""
    return {app["name"]: app for app in read_stack_config(stack, project_dir)["gitops-deploy:apps"]}


def _settings(stack: str, project_dir: Path) -> dict[str, Any]:
    values = read_stack_config(stack, project_dir)
    return {
        "argocd": values.get("gitops-deploy:argocd") or {},
        "cluster": values.get("gitops-deploy:cluster") or {},
    }


def _render_one(
    stack: str, app: str, project_dir: Path, source: dict[str, Any] | None = None
) -> RenderResult:
    """Render one app of a stack, from `project_dir`, optionally with a hand-made `spec.source`."""
    resource = application(stack, _settings(stack, project_dir), _apps(stack, project_dir)[app], source)
    [result] = render_all([resource], project_dir, stack, repository=HERE)
    return result


def _only(result: RenderResult, type_: str) -> RenderedObject:
    found = [o for o in result.objects if o.type == type_]
    assert len(found) == 1, f"{result.application}: expected one {type_}, got {[o.urn for o in found]}"
    return found[0]


def _container(deployment: RenderedObject) -> dict[str, Any]:
    [container] = deployment.manifest["spec"]["template"]["spec"]["containers"]
    return container


@pytest.fixture
def project(example_project: Path) -> Path:
    """The example project: the example stacks, chart and overlay (never the project's own stacks)."""
    return example_project


@pytest.fixture
def project_copy(example_copy: Path) -> Path:
    """A copy of the example project, for tests to break."""
    return example_copy


def _object_name(app: dict[str, Any]) -> str:
    """What the chart names an app's objects (the release), or the overlay (`<app>-<workload>`)."""
    source = app["source"]
    if source["type"] == "helm":
        return str(app["name"])
    return f"{app['name']}-{source.get('workload') or app['name']}"


# --- the example stacks ------------------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_shipped_stacks_render_every_application(project: Path, stack: str) -> None:
    results = render_all(stack_applications(stack, project), project, stack, repository=HERE)
    assert {r.application for r in results} == set(_apps(stack, project))
    for result in results:
        assert result.status == "rendered", result.reason
        assert result.reason == ""
        assert {o.type for o in result.objects} == {DEPLOYMENT, SERVICE}, result.application


def test_the_stacks_use_both_the_chart_and_the_overlay(project: Path) -> None:
    used = {
        (r.engine, r.path)
        for stack in STACKS
        for r in render_all(stack_applications(stack, project), project, stack, repository=HERE)
    }
    assert used == {("helm", CHART), ("kustomize", OVERLAY)}


@pytest.mark.parametrize("stack", STACKS)
def test_workloads_run_the_built_digest_with_the_stacks_replicas(project: Path, stack: str) -> None:
    apps = _apps(stack, project)
    for result in render_all(stack_applications(stack, project), project, stack, repository=HERE):
        app = apps[result.application]
        deployment = _only(result, DEPLOYMENT)
        assert deployment.name == _object_name(app)
        assert deployment.namespace == app["namespace"]
        assert deployment.manifest["metadata"]["namespace"] == app["namespace"]
        assert _container(deployment)["image"] == built_digest(app), deployment.urn
        assert deployment.manifest["spec"]["replicas"] == app["replicas"], deployment.urn


@pytest.mark.parametrize("stack", STACKS)
def test_pods_pull_with_the_apps_secret_and_run_as_non_root(project: Path, stack: str) -> None:
    for result in render_all(stack_applications(stack, project), project, stack, repository=HERE):
        pod = _only(result, DEPLOYMENT).manifest["spec"]["template"]["spec"]
        assert pod["imagePullSecrets"] == [{"name": f"{result.application}-registry"}]
        assert pod["securityContext"] == {"runAsNonRoot": True, "runAsUser": 10001}


@pytest.mark.parametrize("stack", STACKS)
def test_probes_hit_healthz_on_the_apps_port_and_resources_are_bounded(project: Path, stack: str) -> None:
    for result in render_all(stack_applications(stack, project), project, stack, repository=HERE):
        container = _container(_only(result, DEPLOYMENT))
        assert container["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
        for probe in ("readinessProbe", "livenessProbe"):
            assert container[probe]["httpGet"] == {"path": "/healthz", "port": "http"}, probe
        for bound in ("requests", "limits"):
            assert set(container["resources"][bound]) == {"cpu", "memory"}, bound


@pytest.mark.parametrize("stack", STACKS)
def test_service_selects_the_pods(project: Path, stack: str) -> None:
    for result in render_all(stack_applications(stack, project), project, stack, repository=HERE):
        deployment, service = _only(result, DEPLOYMENT), _only(result, SERVICE)
        selector = service.manifest["spec"]["selector"]
        pod_labels = deployment.manifest["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= pod_labels.items()
        assert selector == deployment.manifest["spec"]["selector"]["matchLabels"]
        assert service.manifest["spec"]["ports"][0]["targetPort"] == "http"


def test_objects_are_typed_and_parented_on_their_application(project: Path) -> None:
    [web, api] = render_all(stack_applications("staging", project), project, "staging", repository=HERE)
    assert web.engine == "kustomize" and api.engine == "helm"
    chain = f"urn:pulumi:staging::gitops-deploy::{APPLICATION_CHAIN}"
    assert web.application_urn == f"{chain}::web-argocd-application"
    assert _only(web, DEPLOYMENT).urn == f"{chain}${DEPLOYMENT}::web-app"
    assert _only(api, SERVICE).urn == f"{chain}${SERVICE}::api"
    assert _only(web, DEPLOYMENT).template == f"{OVERLAY}/deployment.yaml"
    assert _only(api, DEPLOYMENT).template == f"{CHART}/templates/deployment.yaml"
    # kustomize's origin annotation is how the file is known; it is not applied.
    assert "annotations" not in _only(web, DEPLOYMENT).manifest["metadata"]


def test_type_tokens_and_urns_follow_pulumi_kubernetes() -> None:
    assert type_token("v1", "Service") == SERVICE
    assert type_token("networking.k8s.io/v1", "Ingress") == "kubernetes:networking.k8s.io/v1:Ingress"
    parent = f"urn:pulumi:dev::gitops-deploy::{APPLICATION_CHAIN}::web-argocd-application"
    assert (
        child_urn("dev", parent, HPA, "web")
        == f"urn:pulumi:dev::gitops-deploy::{APPLICATION_CHAIN}${HPA}::web"
    )


def test_only_applications_are_rendered(project: Path) -> None:
    resources = stack_applications("dev", project)
    other = application("dev", _settings("dev", project), _apps("dev", project)["web"])
    other = dataclasses.replace(other, type="kubernetes:core/v1:Secret")
    assert [r.application for r in render_all([*resources, other], project, "dev", repository=HERE)] == list(
        _apps("dev", project)
    )
    assert resources[0].type == APPLICATION_TYPE


def test_program_applications_render(project: Path) -> None:
    """The Applications the real program registers render like the hand-built ones."""
    config = read_stack_config("staging", project)
    config.pop("gitops-deploy:promote", None)  # built here: a promoting stack's digests come from upstream
    sim = simulate("staging", project_dir=project, config=config)
    results = render_all(sim.resources, project, "staging", repository=HERE)
    assert [r.status for r in results] == ["rendered", "rendered"], [r.reason for r in results]
    digests = {r.application: _container(_only(r, DEPLOYMENT))["image"] for r in results}
    exports = sim.exports["apps"]
    assert digests == {name: exports[name]["imageDigest"] for name in digests}


# --- the chart's values contract -----------------------------------------------------------------


def _helm_source(values: dict[str, Any], **helm: Any) -> dict[str, Any]:
    return {
        "repoURL": REPO_URL,
        "path": CHART,
        "helm": {"valuesObject": values, **helm},
    }


DIGEST = "sha256:" + "ab" * 32
IMAGE = {"repository": "registry.example.com/platform/web", "tag": "c0ffee", "digest": DIGEST}


def test_digest_wins_over_tag_and_tag_is_used_without_digest(project: Path) -> None:
    pinned = _render_one("dev", "web", project, _helm_source({"image": IMAGE}))
    assert _container(_only(pinned, DEPLOYMENT))["image"] == f"{IMAGE['repository']}@{DIGEST}"
    tagged = _render_one("dev", "web", project, _helm_source({"image": {**IMAGE, "digest": ""}}))
    assert _container(_only(tagged, DEPLOYMENT))["image"] == f"{IMAGE['repository']}:c0ffee"


def test_hpa_is_off_by_default_and_owns_the_replicas_when_on(project: Path) -> None:
    off = _render_one("dev", "web", project, _helm_source({"image": IMAGE}))
    assert HPA not in {o.type for o in off.objects}
    values = {"image": IMAGE, "autoscaling": {"enabled": True, "minReplicas": 3, "maxReplicas": 9}}
    on = _render_one("dev", "web", project, _helm_source(values))
    assert on.status == "rendered", on.reason
    hpa = _only(on, HPA)
    assert (hpa.manifest["spec"]["minReplicas"], hpa.manifest["spec"]["maxReplicas"]) == (3, 9)
    assert hpa.manifest["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "web",
    }
    assert "replicas" not in _only(on, DEPLOYMENT).manifest["spec"]


def test_helm_parameters_override_the_values_object(project: Path) -> None:
    params = [
        {"name": "replicaCount", "value": "5"},
        {"name": "image.tag", "value": "123", "forceString": True},
    ]
    result = _render_one(
        "dev", "web", project, _helm_source({"image": {**IMAGE, "digest": ""}}, parameters=params)
    )
    deployment = _only(result, DEPLOYMENT)
    assert deployment.manifest["spec"]["replicas"] == 5
    assert _container(deployment)["image"] == f"{IMAGE['repository']}:123"


def test_values_failing_the_chart_schema_are_a_render_error(project: Path) -> None:
    result = _render_one("dev", "web", project, _helm_source({"image": IMAGE, "replicaCount": "three"}))
    assert result.status == "error" and result.objects == ()
    assert "Application 'web'" in result.reason and CHART in result.reason
    assert "/replicaCount" in result.reason and "want integer" in result.reason


def test_an_unsupported_helm_option_is_an_error_not_ignored(project: Path) -> None:
    result = _render_one("dev", "web", project, _helm_source({"image": IMAGE}, fileParameters=[]))
    assert result.status == "error"
    assert "helm.fileParameters is not supported" in result.reason


def test_a_hung_render_is_bounded(project: Path) -> None:
    resource = stack_applications("dev", project)[0]
    [result] = render_all([resource], project, "dev", timeout=0.001, repository=HERE)
    assert result.status == "error"
    assert "did not finish within 0.001s" in result.reason


# --- broken copies of the project ----------------------------------------------------------------


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new), encoding="utf-8")


def test_chart_with_hard_coded_replicas_renders_one_replica(project_copy: Path) -> None:
    _edit(
        project_copy / CHART / "templates/deployment.yaml",
        "replicas: {{ .Values.replicaCount }}",
        "replicas: 1",
    )
    result = _render_one("prod", "web", project_copy)
    assert result.status == "rendered", result.reason
    assert _apps("prod", project_copy)["web"]["replicas"] == 4
    assert _only(result, DEPLOYMENT).manifest["spec"]["replicas"] == 1


def test_overlay_image_renamed_is_an_error_naming_the_key(project_copy: Path) -> None:
    _edit(project_copy / OVERLAY / "deployment.yaml", "image: app", "image: webapp")
    result = _render_one("staging", "web", project_copy)
    assert result.status == "error", (
        "kustomize leaves the placeholder image: the pods would not run the digest"
    )
    assert result.reason.endswith(
        "kustomize.images replaces image 'app', but the overlay's containers run webapp; "
        "set app 'web' source.imageName: webapp"
    ), result.reason


def test_template_syntax_error_names_the_template_file(project_copy: Path) -> None:
    _edit(
        project_copy / CHART / "templates/service.yaml",
        "{{ .Values.service.type }}",
        "{{ .Values.service.type }",
    )
    result = _render_one("dev", "web", project_copy)
    assert result.status == "error" and result.objects == ()
    assert result.reason.startswith(f"Application 'web': helm render of {CHART} failed: ")
    assert f"(template {CHART}/templates/service.yaml)" in result.reason
    assert "service.yaml:9" in result.reason


def test_kustomize_replicas_matching_no_workload_is_an_error(project_copy: Path) -> None:
    _edit(project_copy / OVERLAY / "deployment.yaml", "  name: app\n", "  name: frontend\n")
    result = _render_one("staging", "web", project_copy)
    assert result.status == "error"
    assert result.reason == (
        f"Application 'web': kustomize render of {OVERLAY} failed: kustomize.replicas names workload 'app', "
        "but the overlay has Deployment 'frontend'; set app 'web' source.workload: frontend"
    )


_OWN_SECRETS = (
    "      securityContext:\n        runAsNonRoot",
    "      imagePullSecrets:\n        - name: sidecar-registry\n      securityContext:\n        runAsNonRoot",
)
_APPEND = ("metadata:\n", "metadata:\n  annotations:\n    gitops-deploy/pull-secrets: append\n")


def _pull_secrets(result: RenderResult) -> list[dict[str, str]]:
    assert result.status == "rendered", result.reason
    return list(_only(result, DEPLOYMENT).manifest["spec"]["template"]["spec"]["imagePullSecrets"])


def test_a_workload_listing_its_own_pull_secrets_fails_the_render_instead_of_losing_them(
    project_copy: Path,
) -> None:
    _edit(project_copy / OVERLAY / "deployment.yaml", *_OWN_SECRETS)
    result = _render_one("staging", "web", project_copy)
    assert result.status == "error"
    assert result.reason == (
        f"Application 'web': kustomize render of {OVERLAY} failed: the overlay's Deployment 'app' lists its "
        "own imagePullSecrets, which the app's pull secret would replace; annotate it "
        "gitops-deploy/pull-secrets: append to add the app's to them, or remove them"
    )


def test_an_annotated_workload_keeps_its_own_pull_secrets_and_gets_the_apps(project_copy: Path) -> None:
    _edit(project_copy / OVERLAY / "deployment.yaml", *_OWN_SECRETS)
    _edit(project_copy / OVERLAY / "deployment.yaml", *_APPEND)
    result = _render_one("staging", "web", project_copy)
    assert _pull_secrets(result) == [{"name": "sidecar-registry"}, {"name": "web-registry"}]


def test_an_annotated_workload_without_pull_secrets_is_an_error(project_copy: Path) -> None:
    _edit(project_copy / OVERLAY / "deployment.yaml", *_APPEND)
    result = _render_one("staging", "web", project_copy)
    assert result.status == "error"
    assert result.reason.endswith(
        "the overlay's Deployment 'app' is annotated gitops-deploy/pull-secrets: append but lists no "
        "imagePullSecrets; remove the annotation"
    ), result.reason


def test_replicas_check_catches_a_kustomize_that_ignores_the_name() -> None:
    workload = {"kind": "Deployment", "metadata": {"name": "frontend"}, "spec": {"replicas": 2}}
    with pytest.raises(RenderError, match="names workload 'web', but the overlay has Deployment 'frontend'"):
        _check_replicas([(None, workload)], [{"name": "web", "count": 3}], "k")
    _check_replicas(
        [(None, {**workload, "metadata": {"name": "web"}, "spec": {"replicas": 3}})],
        [{"name": "web", "count": 3}],
        "k",
    )


def test_overlay_object_failing_the_kubernetes_schema_is_an_error(project_copy: Path) -> None:
    _edit(
        project_copy / OVERLAY / "deployment.yaml",
        "imagePullPolicy: IfNotPresent",
        "imagePullPolice: IfNotPresent",
    )
    result = _render_one("staging", "web", project_copy)
    assert result.status == "error"
    assert f"Deployment/web-app ({OVERLAY}/deployment.yaml)" in result.reason
    assert "imagePullPolice" in result.reason
    assert {o.type for o in result.objects} == {DEPLOYMENT, SERVICE}


@pytest.mark.parametrize(
    "source",
    [
        {"repoURL": "https://github.com/other/repo.git", "path": "deploy/chart", "helm": {}},
        {"repoURL": "https://charts.example.com", "chart": "web", "targetRevision": "1.2.3"},
        {"repoURL": "https://github.com/other/repo.git", "path": "../outside", "kustomize": {}},
    ],
    ids=["path-elsewhere", "helm-repo", "escapes-project"],
)
def test_remote_source_is_listed_not_rendered(project_copy: Path, source: dict[str, Any]) -> None:
    (project_copy.parent / "outside").mkdir(exist_ok=True)
    result = _render_one("dev", "web", project_copy, source)
    assert (result.status, result.reason, result.objects) == ("not-rendered", REMOTE_SOURCE, ())


def test_unknown_inputs_are_not_rendered(project: Path) -> None:
    source = {"repoURL": "x", "path": OVERLAY, "kustomize": {"images": [UNKNOWN], "replicas": []}}
    result = _render_one("staging", "web", project, source)
    assert result.status == "not-rendered" and "unknown" in result.reason


# --- kustomize plumbing --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("web=reg.io/p/web@sha256:abc", {"name": "web", "newName": "reg.io/p/web", "digest": "sha256:abc"}),
        ("web=reg.io:5000/p/web:v2", {"name": "web", "newName": "reg.io:5000/p/web", "newTag": "v2"}),
        ("web:v3", {"name": "web", "newTag": "v3"}),
        ("web@sha256:abc", {"name": "web", "digest": "sha256:abc"}),
        ("web=other", {"name": "web", "newName": "other"}),
    ],
)
def test_argo_image_entries_become_kustomization_images(entry: str, expected: dict[str, str]) -> None:
    assert parse_image(entry) == expected


def test_kubectl_comes_from_next_to_the_interpreter() -> None:
    assert kubectl_path() == Path(sysconfig.get_path("scripts")) / "kubectl"


def test_render_results_are_frozen(project: Path) -> None:
    result = render_all(stack_applications("dev", project), project, "dev", repository=HERE)[0]
    with pytest.raises(AttributeError):
        result.status = "error"  # type: ignore[misc]


def test_value_files_come_first_and_must_be_files_of_the_repository(project_copy: Path) -> None:
    (project_copy / CHART / "values-big.yaml").write_text("replicaCount: 7\n", encoding="utf-8")
    (project_copy.parent / "outside.yaml").write_text("replicaCount: 9\n", encoding="utf-8")
    files = _render_one(
        "dev", "web", project_copy, _helm_source({"image": IMAGE}, valueFiles=["values-big.yaml"])
    )
    assert _only(files, DEPLOYMENT).manifest["spec"]["replicas"] == 7
    values = {"image": IMAGE, "replicaCount": 2}
    both = _render_one("dev", "web", project_copy, _helm_source(values, valueFiles=["values-big.yaml"]))
    assert _only(both, DEPLOYMENT).manifest["spec"]["replicas"] == 2
    outside = _render_one(
        "dev", "web", project_copy, _helm_source(values, valueFiles=["../../../../outside.yaml"])
    )
    assert outside.status == "error"
    assert "helm.valueFiles: '../../../../outside.yaml' is not a file of this repository" in outside.reason


def test_replicas_check_reads_malformed_objects_without_crashing() -> None:
    odd: list[tuple[str | None, dict[str, Any]]] = [
        (None, {"kind": "Deployment", "metadata": "web", "spec": []}),
        (None, {"kind": "Deployment"}),
    ]
    with pytest.raises(RenderError, match="names workload 'web', but the overlay has no Deployment"):
        _check_replicas(odd, [{"name": "web", "count": 3}], "k")


# --- one overlay for any app ---------------------------------------------------------------------


def test_two_apps_from_the_overlay_keep_their_names_selectors_and_secrets(project: Path) -> None:
    settings: dict[str, Any] = {"argocd": {}, "cluster": {}}
    apps = [application("staging", settings, overlay_app(n, "shop")) for n in ("web", "cart")]
    results = {r.application: r for r in render_all(apps, project, "staging", repository=HERE)}
    selectors = set()
    for name in ("web", "cart"):
        result = results[name]
        assert result.status == "rendered", result.reason
        deployment, service = _only(result, DEPLOYMENT), _only(result, SERVICE)
        assert deployment.name == service.name == f"{name}-app"
        pod = deployment.manifest["spec"]["template"]["spec"]
        assert pod["imagePullSecrets"] == [{"name": f"{name}-registry"}]
        assert _container(deployment)["image"] == built_digest(overlay_app(name, "shop"))
        selector = service.manifest["spec"]["selector"]
        assert selector == deployment.manifest["spec"]["selector"]["matchLabels"]
        assert selector["app.kubernetes.io/name"] == name
        selectors.add(tuple(sorted(selector.items())))
    assert len(selectors) == 2, "each Service must select its own app's pods only"


def test_the_render_equals_argo_cds_own_build_of_the_overlay(project: Path, tmp_path: Path) -> None:
    """Argo CD edits a copy of the overlay's own kustomization and builds it (argoproj/argo-cd
    util/kustomize/kustomize.go, `Build`: `kustomize edit set nameprefix/image/replicas`, `edit add
    label`, and the patches appended to the file); the offline render wraps the overlay instead."""
    app = overlay_app("storefront", "shop")
    resource = application("staging", {"argocd": {}, "cluster": {}}, app)
    [ours] = render_all([resource], project, "staging", repository=HERE)
    options = resource.inputs["spec"]["source"]["kustomize"]
    copy = tmp_path / "overlay"
    copy.mkdir()
    for item in (project / OVERLAY).iterdir():
        (copy / item.name).write_text(item.read_text())
    kustomization = yaml.safe_load((copy / "kustomization.yaml").read_text())
    kustomization["namePrefix"] = options["namePrefix"]
    kustomization["commonLabels"] = options["commonLabels"]
    kustomization["images"] = [parse_image(entry) for entry in options["images"]]
    kustomization["replicas"] = options["replicas"]
    kustomization["patches"] = options["patches"]
    (copy / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    built = subprocess.run(
        [str(kubectl_path()), "kustomize", str(copy)], capture_output=True, text=True, timeout=60, check=True
    )
    argo = {(o["kind"], o["metadata"]["name"]): o for o in yaml.safe_load_all(built.stdout)}
    offline = {}
    for o in ours.objects:
        manifest = dict(o.manifest)
        manifest["metadata"] = {k: v for k, v in manifest["metadata"].items() if k != "namespace"}
        offline[(manifest["kind"], o.name)] = manifest
    assert offline == argo


# --- one Helm worker for every chart, apps rendered a few at once --------------------------------------


def test_one_helm_worker_renders_every_chart_and_results_keep_their_order(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[subprocess.Popen[bytes]] = []
    start = HelmWorker._start

    def counted(worker: HelmWorker) -> subprocess.Popen[bytes]:
        started.append(start(worker))
        return started[-1]

    monkeypatch.setattr(HelmWorker, "_start", counted)
    settings, apps = _settings("dev", project), list(_apps("dev", project).values())
    names = [f"{apps[i % len(apps)]['name']}{i}" for i in range(6)]
    resources = [
        application("dev", settings, {**apps[i % len(apps)], "name": n}) for i, n in enumerate(names)
    ]
    results = render_all(resources, project, "dev", repository=HERE)
    assert [r.application for r in results] == names
    assert {r.status for r in results} == {"rendered"}, [r.reason for r in results]
    assert len(started) == 1 and started[0].poll() is not None, "one worker, ended with the render"


def test_a_worker_that_dies_is_one_line_and_the_next_chart_gets_a_new_one(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dying = tmp_path / "dying_worker.py"
    dying.write_text("import sys\nsys.stdin.readline()\nsys.exit('the engine crashed')\n")
    chart = str(project / CHART)
    request = {"chart_dir": chart, "release": "web", "namespace": "web"}
    with HelmWorker() as worker:
        monkeypatch.setattr(render_helm, "WORKER", dying)
        with pytest.raises(RenderError, match=r"^helm worker failed \(exit 1\): the engine crashed$"):
            worker.ask(request, 60)
        monkeypatch.setattr(render_helm, "WORKER", Path(render_helm.__file__).with_name("helm_worker.py"))
        assert "manifests" in worker.ask(request, 60)
        alive = worker._proc
        assert alive is not None and alive.poll() is None
    assert alive.poll() is not None and worker._proc is None


def test_the_helm_worker_starts_with_only_what_every_render_needs() -> None:
    """Its start-up is paid per check; what only file:// dependencies or --help need loads when they do."""
    started = subprocess.run(
        [PYTHON, "-I", "-X", "importtime", str(render_helm.WORKER)],
        input="",
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    loaded = {line.rsplit("|", 1)[-1].strip() for line in started.stderr.splitlines() if "|" in line}
    assert "json" in loaded, started.stderr[-500:]
    assert not loaded & {"argparse", "shutil", "tempfile"}, sorted(loaded)
