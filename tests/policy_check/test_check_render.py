"""The CLI-free check on copies of the example project: what Argo CD would render, judged by the real pack."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from model.stack_files import read_stack_config
from policy_check.check import run_check
from policy_check.report import CheckReport
from policy_check.report_format import formatted
from tests.support.example_project import OVERLAY, overlay_app

pytestmark = [pytest.mark.render, pytest.mark.grpc]

Edit = Callable[[Path], None]


@pytest.fixture
def project_copy(example_copy: Path) -> Path:
    """The program, the example stacks and the example app, copied so a test may break them."""
    return example_copy


def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{path}: {old!r} not found, the example changed"
    path.write_text(text.replace(old, new))


def _check(project: Path, stack: str, config: dict[str, Any] | None = None) -> CheckReport:
    """Judge the stack as one that builds: a promoting stack's digests are unknown offline, so it renders
    nothing (tests/components/test_promote.py covers that); these tests are about what renders."""
    values = read_stack_config(stack, project) if config is None else config
    values.pop("gitops-deploy:promote", None)
    return run_check(stack, project_dir=project, config=values)


def _violations(report: CheckReport, policy: str, level: str) -> list[str]:
    return [d.urn for d in report.violations if d.policy == policy and d.level == level]


def test_shipped_example_renders_and_passes(project_copy: Path) -> None:
    report = _check(project_copy, "staging")
    assert report.exit_code == 0, formatted(report, "table")
    rendered = {r.application: r for r in report.renders}
    assert {r.status for r in rendered.values()} == {"rendered"}, formatted(report, "table")
    assert all(r.objects for r in rendered.values())
    assert not _violations(report, "container-resources", "advisory")


def test_chart_hard_coding_one_replica_fails_minimum_replicas_on_the_deployment(project_copy: Path) -> None:
    _replace(
        project_copy / "examples/app/chart/templates/deployment.yaml",
        "replicas: {{ .Values.replicaCount }}",
        "replicas: 1",
    )
    report = _check(project_copy, "prod")
    urns = _violations(report, "minimum-replicas", "mandatory")
    # The Application asks for 4 and passes; the Deployment Argo CD would apply runs 1 and fails.
    assert [u for u in urns if u.endswith("kubernetes:apps/v1:Deployment::web")], formatted(report, "table")
    assert not [u for u in urns if u.endswith("Application::web-argocd-application")], formatted(
        report, "table"
    )
    assert report.exit_code == 1


def test_overlay_image_renamed_is_a_render_error_naming_the_key(project_copy: Path) -> None:
    _replace(project_copy / OVERLAY / "deployment.yaml", "image: app\n", "image: webapp\n")
    report = _check(project_copy, "staging")
    (web,) = [r for r in report.renders if r.application == "web"]
    assert web.status == "error", formatted(report, "table")
    # kustomize would silently leave the placeholder image: the pods would never run the built digest.
    expected = (
        f"Application 'web': kustomize render of {OVERLAY} failed: kustomize.images replaces image 'app', "
        "but the overlay's containers run webapp; set gitops-deploy:apps[0] (web).source.imageName: webapp"
    )
    assert web.reason == expected
    assert report.exit_code == 1


def test_deployment_without_resources_gets_the_container_resources_advisory(project_copy: Path) -> None:
    path = project_copy / "examples/app/kustomize/deployment.yaml"
    text = path.read_text()
    path.write_text(text[: text.index("          resources:")])
    report = _check(project_copy, "staging")
    urns = _violations(report, "container-resources", "advisory")
    assert [u for u in urns if u.endswith("kubernetes:apps/v1:Deployment::web-app")], formatted(
        report, "table"
    )
    assert report.exit_code == 0, "an advisory never fails the check"


def test_template_syntax_error_names_the_template_file(project_copy: Path) -> None:
    service = project_copy / "examples/app/chart/templates/service.yaml"
    service.write_text(service.read_text() + "\n{{ .Values.service.port \n")
    report = _check(project_copy, "dev")
    (web,) = [r for r in report.renders if r.application == "web"]
    assert web.status == "error", formatted(report, "table")
    assert "examples/app/chart/templates/service.yaml" in web.reason
    assert "web" in web.reason
    assert report.exit_code == 1


def test_kustomize_workload_renamed_is_one_line_naming_the_key(project_copy: Path) -> None:
    _replace(project_copy / OVERLAY / "deployment.yaml", "  name: app\n", "  name: server\n")
    report = _check(project_copy, "staging")
    (web,) = [r for r in report.renders if r.application == "web"]
    assert web.status == "error", formatted(report, "table")
    assert web.reason == (
        f"Application 'web': kustomize render of {OVERLAY} failed: kustomize.replicas names workload "
        "'app', but the overlay has Deployment 'server'; set gitops-deploy:apps[0] (web).source.workload: "
        "server"
    )
    assert "\n" not in web.reason
    assert report.exit_code == 1
    assert "RENDER ERROR" in formatted(report, "table")


def test_the_overlay_serves_an_app_of_any_name_unedited(project_copy: Path) -> None:
    """The staging stack copied, its kustomize app renamed from web to storefront."""
    overlay = {p.name: p.read_text() for p in (project_copy / OVERLAY).iterdir()}
    stack = project_copy / "Pulumi.staging.yaml"
    stack.write_text(stack.read_text().replace("- name: web\n", "- name: storefront\n"))
    report = _check(project_copy, "staging")
    assert report.exit_code == 0, formatted(report, "table")
    (shop,) = [r for r in report.renders if r.application == "storefront"]
    assert {(o.type.rsplit(":", 1)[-1], o.name) for o in shop.objects} == {
        ("Deployment", "storefront-app"),
        ("Service", "storefront-app"),
    }
    assert {p.name: p.read_text() for p in (project_copy / OVERLAY).iterdir()} == overlay


def test_two_apps_share_the_overlay_in_one_namespace(project_copy: Path) -> None:
    config = read_stack_config("staging", project_copy)
    config["gitops-deploy:apps"] = [overlay_app("web", "shop"), overlay_app("cart", "shop")]
    report = _check(project_copy, "staging", config)
    assert report.exit_code == 0 and not [f for f in report.findings if f.blocking], formatted(
        report, "table"
    )
    objects = {
        (r.application, o.namespace, o.type.rsplit(":", 1)[-1], o.name)
        for r in report.renders
        for o in r.objects
    }
    assert objects == {
        (app, "shop", kind, f"{app}-app") for app in ("web", "cart") for kind in ("Deployment", "Service")
    }, "no object of one app may replace the other's (test_render.py checks selectors and secrets)"


def test_remote_source_is_listed_as_not_rendered(project_copy: Path) -> None:
    config = read_stack_config("staging", project_copy)
    config["gitops-deploy:apps"][1]["source"].update(
        repoURL="https://github.com/other-org/charts.git", path="charts/api"
    )
    report = _check(project_copy, "staging", config)
    text = formatted(report, "table")
    assert "api: not rendered: remote source" in text, text
    (web,) = [r for r in report.renders if r.application == "web"]
    assert web.status == "rendered"


@pytest.mark.parametrize(("hpa_min", "fails"), [(3, False), (2, True)])
def test_deployment_scaled_by_a_rendered_hpa_is_judged_through_the_hpa(
    project_copy: Path, hpa_min: int, fails: bool
) -> None:
    values = project_copy / "examples/app/chart/values.yaml"
    _replace(values, "  enabled: false\n  minReplicas: 2\n", f"  enabled: true\n  minReplicas: {hpa_min}\n")
    report = _check(project_copy, "prod")
    (web,) = [r for r in report.renders if r.application == "web"]
    (deployment,) = [o for o in web.objects if o.type == "kubernetes:apps/v1:Deployment"]
    (hpa,) = [o for o in web.objects if o.type == "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"]
    # The chart omits the Deployment's replicas when the HPA is on: the HPA's minReplicas is what runs.
    assert deployment.scaled_by == f"HorizontalPodAutoscaler 'web/{hpa.name}'", formatted(report, "table")
    urns = _violations(report, "minimum-replicas", "mandatory")
    assert deployment.urn not in urns, formatted(report, "table")
    assert (hpa.urn in urns) == fails, formatted(report, "table")
    assert report.exit_code == (1 if fails else 0), formatted(report, "table")
    assert "replicas owned by HorizontalPodAutoscaler" in formatted(report, "table")
