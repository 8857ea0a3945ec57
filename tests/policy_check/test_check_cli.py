"""`python -m policy_check`: the table, the exit code, and clear errors without a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from model.stack_files import read_stack_config
from policy_check.check import evaluate, main, run_check
from policy_check.render_common import RenderedObject, RenderResult
from policy_check.report_format import formatted
from tests.support.example_project import STACKS
from tests.support.policy_resources import REPO, app_urn, application, health_check, image_size, workload


@pytest.mark.grpc
def test_unknown_stack_is_a_clear_error(example_project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--stack", "nope", "--no-render", "--project-dir", str(example_project)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no stack file Pulumi.nope.yaml") and "Traceback" not in err
    assert "(stacks: dev, prod, staging)" in err


@pytest.mark.grpc
def test_bad_policy_config_is_a_clear_error(
    example_project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "c.json"
    bad.write_text('{"minimum-replicas": {"enforcementLevel": "sometimes"}}')
    argv = [
        "--stack",
        "dev",
        "--no-render",
        "--policy-config",
        str(bad),
        "--project-dir",
        str(example_project),
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "minimum-replicas.enforcementLevel 'sometimes'" in err and "Traceback" not in err


@pytest.mark.grpc
def test_table_with_render_results(tmp_path: Path) -> None:
    app = application(replicas=3)
    deployment = workload(replicas=1, parent=app.urn, image=f"{REPO}:stale")
    renders = [
        RenderResult(
            "web",
            app.urn,
            "helm",
            "examples/app/chart",
            "rendered",
            "",
            (RenderedObject(deployment.type, deployment.name, deployment.urn),),
        ),
        RenderResult("api", app_urn("api"), "helm", "charts/api", "not-rendered", "remote source"),
    ]
    inputs = [app, health_check((app.urn,)), image_size(10), deployment]
    report = evaluate("prod", inputs, inputs, renders=renders)
    text = formatted(report, "table")
    assert report.exit_code == 1
    assert "MANDATORY minimum-replicas" in text and "MANDATORY workload-uses-built-image" in text
    assert "api: not rendered: remote source" in text
    assert "MANDATORY minimum-replicas, MANDATORY workload-uses-built-image" in text
    assert text.splitlines()[-1].startswith("FAIL: stack prod")


@pytest.mark.grpc
def test_render_error_fails_the_check() -> None:
    app = application()
    renders = [
        RenderResult(
            "web", app.urn, "kustomize", "examples/app/kustomize", "error", "replicas 'x' matched nothing"
        )
    ]
    inputs = [app, health_check((app.urn,)), image_size(10)]
    report = evaluate("prod", inputs, inputs, renders=renders)
    assert report.mandatory == [] and report.exit_code == 1
    assert "RENDER ERROR (kustomize examples/app/kustomize): replicas 'x' matched nothing" in formatted(
        report, "table"
    )


@pytest.mark.grpc
def test_clean_resources_pass() -> None:
    app = application()
    inputs = [app, health_check((app.urn,)), image_size(10), workload(parent=app.urn)]
    report = evaluate("prod", inputs, inputs, rendering=False)
    assert report.diagnostics == [] and report.exit_code == 0
    assert formatted(report, "table").splitlines()[-1].startswith("PASS")


@pytest.mark.grpc
@pytest.mark.parametrize("stack", STACKS)
def test_example_stacks_pass(example_project: Path, stack: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--stack", stack, "--no-render", "--project-dir", str(example_project)]) == 0, (
        capsys.readouterr().out
    )


@pytest.mark.grpc
@pytest.mark.render
@pytest.mark.parametrize("stack", STACKS)
def test_example_stacks_pass_with_rendering(
    example_project: Path, stack: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["--stack", stack, "--project-dir", str(example_project)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "Rendered objects per Application:" in out, out
    # A promoting stack's upstream stack file is here: its simulated exports stand in for its state,
    # so the promoted digests are known and every chart and overlay renders.
    assert "not rendered" not in out, out
    if "gitops-deploy:promote" in read_stack_config(stack, example_project):
        assert "No images to build" in out, out
    assert "RENDER ERROR" not in out and out.splitlines()[-1].startswith(f"PASS: stack {stack}"), out


@pytest.mark.grpc
def test_a_stack_made_to_violate_fails(example_project: Path) -> None:
    config = read_stack_config("staging", example_project)
    config.pop("gitops-deploy:promote", None)  # judged with its digests known
    config["gitops-deploy:apps"][0]["replicas"] = 1
    report = run_check("staging", project_dir=example_project, render=False, config=config)
    assert report.exit_code == 1
    assert any(d.policy == "minimum-replicas" and d.level == "mandatory" for d in report.violations)


@pytest.mark.grpc
@pytest.mark.render
def test_a_stack_file_made_to_violate_fails(example_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stack_file = example_copy / "Pulumi.staging.yaml"
    data = yaml.safe_load(stack_file.read_text())
    # Built here, so its digests are known offline (a promoting stack's are not: "can't judge yet").
    data["config"].pop("gitops-deploy:promote", None)
    data["config"]["gitops-deploy:apps"][0]["replicas"] = 2
    stack_file.write_text(yaml.safe_dump(data))
    assert main(["--stack", "staging", "--project-dir", str(example_copy)]) == 1
    out = capsys.readouterr().out
    assert "MANDATORY minimum-replicas" in out and "is 2, under minReplicas 3" in out, out
    assert "change: gitops-deploy:apps[0] (web).replicas (Pulumi.staging.yaml:" in out, out
    assert out.splitlines()[-1].startswith("FAIL: stack staging"), out
