"""`python -m policies.check`: the table, the exit code, and clear errors without a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from policies.check import evaluate, main
from policies.report import RenderedRow, RenderStatus
from tests.support.policy_resources import REPO, app_urn, application, health_check, image_size, workload


def test_unknown_stack_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--stack", "nope", "--no-render"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no stack file Pulumi.nope.yaml") and "Traceback" not in err


def test_bad_policy_config_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "c.json"
    bad.write_text('{"minimum-replicas": {"enforcementLevel": "sometimes"}}')
    assert main(["--stack", "dev", "--no-render", "--policy-config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "minimum-replicas.enforcementLevel 'sometimes'" in err and "Traceback" not in err


def test_table_with_render_results(tmp_path: Path) -> None:
    app = application(replicas=3)
    deployment = workload(replicas=1, parent=app.urn, image=f"{REPO}:stale")
    renders = [
        RenderStatus(
            "web",
            app.urn,
            "helm",
            "examples/app/chart",
            "rendered",
            "",
            (RenderedRow(deployment.type, deployment.name, deployment.urn),),
        ),
        RenderStatus("api", app_urn("api"), "helm", "charts/api", "not-rendered", "remote source"),
    ]
    inputs = [app, health_check((app.urn,)), image_size(10), deployment]
    report = evaluate("prod", inputs, inputs, renders=renders)
    text = report.format()
    assert report.exit_code == 1
    assert "mandatory  minimum-replicas" in text and "mandatory  workload-uses-built-image" in text
    assert "api: not rendered: remote source" in text
    assert "mandatory minimum-replicas, mandatory workload-uses-built-image" in text
    assert text.splitlines()[-1].startswith("FAIL: stack prod")


def test_render_error_fails_the_check() -> None:
    app = application()
    renders = [
        RenderStatus(
            "web", app.urn, "kustomize", "examples/app/kustomize", "error", "replicas 'x' matched nothing"
        )
    ]
    inputs = [app, health_check((app.urn,)), image_size(10)]
    report = evaluate("prod", inputs, inputs, renders=renders)
    assert report.mandatory == [] and report.exit_code == 1
    assert (
        "web (kustomize examples/app/kustomize): RENDER ERROR: replicas 'x' matched nothing"
        in report.format()
    )


def test_clean_resources_pass() -> None:
    app = application()
    inputs = [app, health_check((app.urn,)), image_size(10), workload(parent=app.urn)]
    report = evaluate("prod", inputs, inputs, rendering=False)
    assert report.diagnostics == [] and report.exit_code == 0
    assert report.format().splitlines()[-1].startswith("PASS")


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_shipped_stacks_pass(stack: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--stack", stack, "--no-render"]) == 0, capsys.readouterr().out


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_shipped_stacks_pass_with_rendering(stack: str, capsys: pytest.CaptureFixture[str]) -> None:
    from offline.stack_files import read_stack_config

    code = main(["--stack", stack])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "Rendered objects per Application:" in out, out
    # A promoting stack's upstream stack file is here: its simulated exports stand in for its state,
    # so the promoted digests are known and every chart and overlay renders.
    assert "not rendered" not in out, out
    if "gitops-deploy:promote" in read_stack_config(stack):
        assert "No images to build" in out, out
    assert "RENDER ERROR" not in out and out.splitlines()[-1].startswith(f"PASS: stack {stack}"), out


def test_a_stack_made_to_violate_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from offline.stack_files import read_stack_config
    from policies.check import run_check

    config = read_stack_config("staging")
    config.pop("gitops-deploy:promote", None)  # judged with its digests known
    config["gitops-deploy:apps"][0]["replicas"] = 1
    report = run_check("staging", render=False, config=config)
    assert report.exit_code == 1
    assert any(d.policy == "minimum-replicas" and d.level == "mandatory" for d in report.violations)


def test_a_stack_file_made_to_violate_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    from offline.stack_files import PROJECT_DIR

    for path in PROJECT_DIR.glob("Pulumi*.yaml"):
        shutil.copy(path, tmp_path / path.name)
    shutil.copy(PROJECT_DIR / "__main__.py", tmp_path / "__main__.py")
    shutil.copytree(PROJECT_DIR / "examples", tmp_path / "examples")
    import yaml

    stack_file = tmp_path / "Pulumi.staging.yaml"
    data = yaml.safe_load(stack_file.read_text())
    # Built here, so its digests are known offline (a promoting stack's are not: "can't judge yet").
    data["config"].pop("gitops-deploy:promote", None)
    data["config"]["gitops-deploy:apps"][0]["replicas"] = 2
    stack_file.write_text(yaml.safe_dump(data))
    assert main(["--stack", "staging", "--project-dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "mandatory  minimum-replicas" in out and "is 2, under minReplicas 3" in out, out
    assert out.splitlines()[-1].startswith("FAIL: stack staging"), out
