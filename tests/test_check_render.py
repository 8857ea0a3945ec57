"""`python -m policies.check` on copies of the project: what Argo CD would render, judged by the real pack."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from offline.stack_files import PROJECT_DIR, read_stack_config
from policies.check import run_check
from policies.report import CheckReport

Edit = Callable[[Path], None]


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    """The program, its stack files and the example app, copied so a test may break them."""
    dest = tmp_path / "project"
    dest.mkdir()
    for path in PROJECT_DIR.glob("Pulumi*.yaml"):
        shutil.copy(path, dest / path.name)
    shutil.copy(PROJECT_DIR / "__main__.py", dest / "__main__.py")
    shutil.copytree(PROJECT_DIR / "examples", dest / "examples")
    return dest


def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{path}: {old!r} not found, the example changed"
    path.write_text(text.replace(old, new))


def _check(project: Path, stack: str, config: dict[str, Any] | None = None) -> CheckReport:
    """Judge the stack as one that builds: a promoting stack's digests are unknown offline, so it renders
    nothing (tests/test_promote.py covers that); these tests are about what renders."""
    values = read_stack_config(stack, project) if config is None else config
    values.pop("gitops-deploy:promote", None)
    return run_check(stack, project_dir=project, config=values)


def _violations(report: CheckReport, policy: str, level: str) -> list[str]:
    return [d.urn for d in report.violations if d.policy == policy and d.level == level]


def test_shipped_example_renders_and_passes(project_copy: Path) -> None:
    report = _check(project_copy, "staging")
    assert report.exit_code == 0, report.format()
    rendered = {r.application: r for r in report.renders}
    assert {r.status for r in rendered.values()} == {"rendered"}, report.format()
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
    assert [u for u in urns if "kubernetes:apps/v1:Deployment::web" in u], report.format()
    assert not [u for u in urns if u.endswith("Application::web-argocd-application")], report.format()
    assert report.exit_code == 1


def test_overlay_image_renamed_fails_workload_uses_built_image(project_copy: Path) -> None:
    _replace(project_copy / "examples/app/kustomize/deployment.yaml", "image: web\n", "image: webapp\n")
    report = _check(project_copy, "staging")
    text = report.format()
    assert any(d.policy == "workload-uses-built-image" and d.level == "mandatory" for d in report.violations)
    assert "webapp" in text
    assert report.exit_code == 1


def test_deployment_without_resources_gets_the_container_resources_advisory(project_copy: Path) -> None:
    path = project_copy / "examples/app/kustomize/deployment.yaml"
    text = path.read_text()
    path.write_text(text[: text.index("          resources:")])
    report = _check(project_copy, "staging")
    urns = _violations(report, "container-resources", "advisory")
    assert [u for u in urns if "kubernetes:apps/v1:Deployment::web" in u], report.format()
    assert report.exit_code == 0, "an advisory never fails the check"


def test_template_syntax_error_names_the_template_file(project_copy: Path) -> None:
    service = project_copy / "examples/app/chart/templates/service.yaml"
    service.write_text(service.read_text() + "\n{{ .Values.service.port \n")
    report = _check(project_copy, "dev")
    (web,) = [r for r in report.renders if r.application == "web"]
    assert web.status == "error", report.format()
    assert "examples/app/chart/templates/service.yaml" in web.reason
    assert "web" in web.reason
    assert report.exit_code == 1


def test_kustomize_replicas_name_matching_no_workload_is_a_render_error(project_copy: Path) -> None:
    for name in ("deployment.yaml", "service.yaml"):
        _replace(project_copy / "examples/app/kustomize" / name, "  name: web\n", "  name: web-server\n")
    report = _check(project_copy, "staging")
    (web,) = [r for r in report.renders if r.application == "web"]
    assert web.status == "error", report.format()
    assert "examples/app/kustomize" in web.reason
    assert report.exit_code == 1
    assert "RENDER ERROR" in report.format()


def test_remote_source_is_listed_as_not_rendered(project_copy: Path) -> None:
    config = read_stack_config("staging", project_copy)
    config["gitops-deploy:apps"][1]["source"].update(
        repoURL="https://github.com/other-org/charts.git", path="charts/api"
    )
    report = _check(project_copy, "staging", config)
    text = report.format()
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
    assert deployment.scaled_by == f"HorizontalPodAutoscaler 'web/{hpa.name}'", report.format()
    urns = _violations(report, "minimum-replicas", "mandatory")
    assert deployment.urn not in urns, report.format()
    assert (hpa.urn in urns) == fails, report.format()
    assert report.exit_code == (1 if fails else 0), report.format()
    assert "replicas owned by HorizontalPodAutoscaler" in report.format()
