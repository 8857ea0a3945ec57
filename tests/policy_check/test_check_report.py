"""The check speaks CI: findings by app and root cause, naming the key, the file and
its line; table, JSON and Markdown in a stable order; GitHub annotations and the job summary; exit codes."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from model.stack_files import key_line, read_stack_config
from policy_check import check_context, github
from policy_check.check import evaluate, main, run_check
from policy_check.inputs import render_applications, sim_inputs
from policy_check.promotion import upstream_outputs
from policy_check.report import CheckReport
from policy_check.report_format import formatted
from policy_check.simulate import PLACEHOLDER_PASSWORD, ProgramMocks, simulate
from rules.replicas import replicas_findings
from tests.support.policy_resources import workload

pytestmark = [pytest.mark.grpc, pytest.mark.render]

STACK = "staging"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The example project whose staging stack builds its apps, the first (web, kustomize) with 2 replicas."""
    from tests.support.example_project import make_example_project

    root = make_example_project(tmp_path_factory.mktemp("report"))
    path = root / f"Pulumi.{STACK}.yaml"
    text = path.read_text().replace("  gitops-deploy:promote:\n    from: dev\n", "")
    path.write_text(text.replace("      replicas: 3\n", "      replicas: 2\n", 1))
    yield root


@pytest.fixture(scope="module")
def report(project: Path) -> CheckReport:
    return run_check(STACK, project_dir=project)


def _replicas_line(project: Path) -> int:
    line = key_line(
        (project / f"Pulumi.{STACK}.yaml").read_text(), ("config", "gitops-deploy:apps", 0, "replicas")
    )
    assert line is not None
    return line


def test_one_root_cause_is_one_finding_shown_at_each_place(report: CheckReport, project: Path) -> None:
    replicas = [f for f in report.findings if "minimum-replicas" in f.policies]
    assert len(replicas) == 1, formatted(report, "table")
    [finding] = replicas
    assert (finding.app, finding.level, finding.blocking) == ("web", "mandatory", True)
    assert [p.resource for p in finding.places] == [
        "Application 'argocd/web'",
        "Deployment 'web-staging/web-app'",
    ]
    assert finding.places[1].file == "examples/app/kustomize/deployment.yaml"
    change = finding.change
    assert (change.key, change.file, change.line) == (
        "gitops-deploy:apps[0] (web).replicas",
        "Pulumi.staging.yaml",
        _replicas_line(project),
    )
    assert change.alternative == (
        "lower minimum-replicas.minReplicas in policies/config.staging.json for a non-production stack"
    )
    assert "<stack>" not in formatted(report, "table"), "real file names only"


def test_findings_are_grouped_by_app_in_config_order_then_the_stack(report: CheckReport) -> None:
    table = formatted(report, "table")
    web, api, stack = (table.index(h) for h in ("\nApp web (", "\nApp api (", "\nStack (every app)"))
    assert web < api < stack
    assert "App api (gitops-deploy:apps[1] (api))\n  no findings" in table
    assert table.index("MANDATORY minimum-replicas") < api, "web's finding is in web's group"
    assert table.index("advisory argocd-project-scoped") > stack, "the project setting is the stack's"


def test_the_table_fits_a_100_column_terminal_and_ends_with_the_verdict(report: CheckReport) -> None:
    lines = formatted(report, "table").splitlines()
    assert max(len(line) for line in lines) <= 100, [line for line in lines if len(line) > 100]
    assert lines[0] == "Policy check of stack staging: FAIL (exit 1)"
    assert lines[-1].startswith("FAIL: stack staging: 1 mandatory, 1 advisory; 0 render error(s);")


def test_json_and_markdown_say_the_same_in_the_same_order(report: CheckReport, project: Path) -> None:
    data = json.loads(formatted(report, "json"))
    assert (data["verdict"], data["exitCode"]) == ("fail", 1)
    assert data["files"] == {"stack": "Pulumi.staging.yaml", "policyConfig": "policies/config.staging.json"}
    assert [a["key"] for a in data["apps"]] == ["gitops-deploy:apps[0] (web)", "gitops-deploy:apps[1] (api)"]
    assert [(f["app"], f["policies"]) for f in data["findings"]] == [
        (f.app, list(f.policies)) for f in report.findings
    ]
    replicas = data["findings"][0]
    assert replicas["change"]["line"] == _replicas_line(project)
    assert [p["file"] for p in replicas["places"]] == [None, "examples/app/kustomize/deployment.yaml"]
    markdown = formatted(report, "markdown")
    assert markdown.startswith("### Policy check of `staging` (without the Pulumi CLI): FAILED (exit 1)\n")
    assert "#### App `web` · `gitops-deploy:apps[0] (web)`" in markdown
    where = f"`Pulumi.staging.yaml:{_replicas_line(project)}`"
    assert f"  - Change: `gitops-deploy:apps[0] (web).replicas` in {where}" in markdown
    assert markdown.index("`minimum-replicas`") < markdown.index("`argocd-project-scoped`")


def _inputs(project: Path, seed: int) -> tuple[Any, ...]:
    """The check's own inputs for the stack, in an order shuffled by `seed` (registration order varies)."""
    values = read_stack_config(STACK, project)
    upstream = upstream_outputs(values, password=PLACEHOLDER_PASSWORD, project_dir=project)
    sim = simulate(STACK, project_dir=project, config=values, mocks=ProgramMocks(stack_outputs=upstream))
    analyze, whole = sim_inputs(sim.resources)
    renders, rendered = render_applications(sim, project)
    analyze, whole = analyze + rendered, whole + rendered
    for items in (analyze, whole, renders):
        random.Random(seed).shuffle(items)
    return values, analyze, whole, renders


def test_the_order_does_not_depend_on_the_order_things_were_registered(project: Path) -> None:
    reports = []
    for seed in (1, 2):
        values, analyze, whole, renders = _inputs(project, seed)
        context = check_context.context(
            whole=whole,
            renders=renders,
            thresholds={"minimum-replicas": {"minReplicas": 3}},
            config=check_context.stack_config(values, project, STACK),
            stack_file=project / f"Pulumi.{STACK}.yaml",
            policy_file=project / "policies" / f"config.{STACK}.json",
            project_dir=project,
        )
        report = evaluate(
            STACK,
            analyze,
            whole,
            config_file=project / "policies" / f"config.{STACK}.json",
            renders=renders,
            context=context,
        )
        reports.append(
            (
                formatted(report, "table"),
                formatted(report, "json"),
                formatted(report, "markdown"),
            )
        )
    assert reports[0] == reports[1]


def test_under_github_actions_it_annotates_the_line_and_writes_the_summary(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    code = main(["--stack", STACK, "--project-dir", str(project), "--format", "json"])
    out, err = capsys.readouterr()
    assert code == 1
    assert json.loads(out)["exitCode"] == 1, "stdout stays the report"
    annotations = [line for line in err.splitlines() if line.startswith("::")]
    line = _replicas_line(project)
    assert any(
        a.startswith(f"::error file=Pulumi.staging.yaml,line={line},title=minimum-replicas (web)::")
        for a in annotations
    ), annotations
    assert any(
        a.startswith("::warning file=Pulumi.staging.yaml,line=") and "argocd-project-scoped" in a
        for a in annotations
    ), annotations
    written = summary.read_text()
    assert written.startswith("earlier step\n### Policy check of `staging`"), "appended, not replaced"
    assert written.count("### Policy check") == 1


def test_outside_github_actions_there_is_no_annotation_and_no_summary(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "summary.md"))
    assert main(["--stack", STACK, "--project-dir", str(project), "--no-render"]) == 1
    assert "::" not in capsys.readouterr().err
    assert not (tmp_path / "summary.md").exists()


def test_bad_input_is_exit_2_in_every_format_and_annotated_where_it_is(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("__main__.py", "Pulumi.yaml"):
        (broken / name).write_text((project / name).read_text())
    (broken / "Pulumi.bad.yaml").write_text("config:\n  gitops-deploy:apps:\n\t- name: web\n")
    policy = project / "policies" / "config.dev.json"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "summary.md"))
    argv = ["--stack", "bad", "--project-dir", str(broken), "--policy-config", str(policy)]
    assert main([*argv, "--format", "json"]) == 2
    out, err = capsys.readouterr()
    document = json.loads(out)
    assert (document["verdict"], document["exitCode"]) == ("error", 2)
    assert document["error"].startswith("Pulumi.bad.yaml:3:")
    assert err.splitlines()[0] == f"error: {document['error']}"
    assert "::error file=Pulumi.bad.yaml,line=3,title=policy check::" in err
    assert "ERROR (exit 2)" in (tmp_path / "summary.md").read_text()
    assert main([*argv, "--format", "markdown"]) == 2
    assert capsys.readouterr().out.startswith(
        "### Policy check of `bad` (without the Pulumi CLI): ERROR (exit 2)"
    )


def test_help_says_what_it_does_its_options_and_its_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert "without the Pulumi CLI, a cluster or any credential" in text
    for option in ("--stack", "--policy-config", "--format", "--no-render", "--build", "--stack-outputs"):
        assert option in text, option
    assert "{table,json,markdown}" in text
    for code in ("0  pass", "1  the change would not ship", "2  bad input"):
        assert f"  {code}" in text, code
    assert "GITHUB_STEP_SUMMARY" in text and "make policy-check STACK=dev" in text


def test_a_bad_option_is_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--stack", "dev", "--format", "yaml"])
    assert done.value.code == 2
    assert "invalid choice: 'yaml'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        (
            {"file": "a,b:c.yaml", "line": 3, "title": "x: y"},
            "::error file=a%2Cb%3Ac.yaml,line=3,title=x%3A y::m%25\n",
        ),
        ({}, "::error::m%25\n"),
    ],
)
def test_annotations_escape_as_actions_core_does(kwargs: dict[str, Any], expected: str) -> None:
    assert github.command("error", "m%", **kwargs) + "\n" == expected
    assert github.command("warning", "a\nb") == "::warning::a%0Ab"


def test_the_packs_own_messages_name_the_real_files(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under `pulumi preview --policy-pack`, where the CLI sets PULUMI_STACK for the analyzer."""
    deployment = workload(replicas=1)
    monkeypatch.setenv("PULUMI_STACK", "acme/gitops-deploy/qa")
    [message] = replicas_findings(deployment.type, deployment.props, "w", 3)
    assert "in Pulumi.qa.yaml" in message and "in policies/config.qa.json" in message
    monkeypatch.delenv("PULUMI_STACK")
    [message] = replicas_findings(deployment.type, deployment.props, "w", 3)
    assert "Pulumi.<stack>.yaml" in message, "no stack known: the pattern, not a made-up name"


def test_a_yaml_key_line_is_found_or_its_nearest_parent() -> None:
    text = yaml.safe_dump(
        {"config": {"gitops-deploy:apps": [{"name": "web", "replicas": 2}]}}, sort_keys=False
    )
    lines = ["", *text.splitlines()]  # 1-based
    found = key_line(text, ("config", "gitops-deploy:apps", 0, "replicas"))
    parent = key_line(text, ("config", "gitops-deploy:apps", 0, "source"))
    assert found is not None and lines[found].strip() == "replicas: 2"
    assert parent is not None and lines[parent].strip() == "- name: web"
    assert key_line("config: [", ("config",)) is None
