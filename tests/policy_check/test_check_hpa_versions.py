"""A chart whose HorizontalPodAutoscaler is autoscaling/v1 is judged like a v2 one,
through `python -m policy_check` with rendering, on a chart of the test's own."""

from __future__ import annotations

from pathlib import Path

import pytest

from policy_check.check import run_check
from policy_check.report import CheckReport
from policy_check.report_format import formatted
from tests.support.project import APP, base_config, empty_policy_config, make_project
from tests.support.projects import CHART_FILES, deployment_template, write_chart

# The Deployment leaves `spec.replicas` out when an HPA scales it, and (unlike the values contract)
# also when none does, so Kubernetes' default of 1 is what the check must see.
REPLICAS_UNLESS_AUTOSCALED = """\
  {{- if not .Values.autoscaling.enabled }}
  {{- if .Values.setReplicas }}
  replicas: {{ .Values.replicaCount }}
  {{- end }}
  {{- end }}
"""
AUTOSCALED_CHART = {
    "values.yaml": CHART_FILES["values.yaml"]
    + "autoscaling: {enabled: true, minReplicas: 1, maxReplicas: 4}\n",
    "templates/deployment.yaml": deployment_template(REPLICAS_UNLESS_AUTOSCALED),
    "templates/hpa.yaml": """\
{{- if .Values.autoscaling.enabled }}
apiVersion: autoscaling/v1
kind: HorizontalPodAutoscaler
metadata:
  name: {{ .Release.Name }}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: {{ .Release.Name }}}
  minReplicas: {{ .Values.autoscaling.minReplicas }}
  maxReplicas: {{ .Values.autoscaling.maxReplicas }}
  targetCPUUtilizationPercentage: 70
{{- end }}
""",
}
HPA_V1 = "kubernetes:autoscaling/v1:HorizontalPodAutoscaler"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"


def _project(root: Path) -> Path:
    project = make_project(root)
    write_chart(project, "app/chart", files=AUTOSCALED_CHART)
    return project


def _check(project: Path) -> CheckReport:
    return run_check(
        "hpa",
        project_dir=project,
        config=base_config(),
        config_file=empty_policy_config(project),
        repo_url=APP["source"]["repoURL"],  # this project is the repository the app reads
    )


def _urns(report: CheckReport, policy: str) -> set[str]:
    return {d.urn for d in report.violations if d.policy == policy and d.level == "mandatory"}


def _object_urn(report: CheckReport, type_: str) -> str:
    (web,) = report.renders
    assert web.status == "rendered", formatted(report, "table")
    (urn,) = [o.urn for o in web.objects if o.type == type_]
    return urn


@pytest.mark.grpc
@pytest.mark.render
@pytest.mark.parametrize(("hpa_min", "fails"), [(1, True), (3, False)])
def test_a_v1_hpa_is_judged_and_owns_the_deployment(tmp_path: Path, hpa_min: int, fails: bool) -> None:
    project = _project(tmp_path)
    values = project / "app" / "chart" / "values.yaml"
    values.write_text(values.read_text().replace("minReplicas: 1", f"minReplicas: {hpa_min}"))
    report = _check(project)
    hpa, deployment = _object_urn(report, HPA_V1), _object_urn(report, DEPLOYMENT)
    assert (hpa in _urns(report, "minimum-replicas")) == fails, formatted(report, "table")
    assert deployment not in _urns(report, "minimum-replicas") | _urns(report, "minimum-replicas-rendered")
    assert report.exit_code == (1 if fails else 0), formatted(report, "table")


@pytest.mark.grpc
@pytest.mark.render
def test_a_deployment_without_replicas_and_without_hpa_runs_one(tmp_path: Path) -> None:
    project = _project(tmp_path)
    values = project / "app" / "chart" / "values.yaml"
    values.write_text(values.read_text().replace("enabled: true", "enabled: false"))
    report = _check(project)
    deployment = _object_urn(report, DEPLOYMENT)
    assert _urns(report, "minimum-replicas-rendered") == {deployment}, formatted(report, "table")
    assert report.exit_code == 1
    (finding,) = [d for d in report.violations if d.policy == "minimum-replicas-rendered"]
    assert "no HorizontalPodAutoscaler targets it, so Kubernetes runs 1" in finding.detail
