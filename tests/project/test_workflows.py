"""The GitHub workflows: valid against the workflow schema, and doing what "Running it in CI" says."""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy.cli import POLICY_PACK, policy_config
from deploy.commands import STALE_AFTER
from model.config import DEFAULT_BUDGET_SECONDS
from model.stack_files import read_stack_config, stack_names
from tests.support.example_project import COPY_IGNORED, make_example_project

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
NAMES = ("preview", "deploy", "test")
ALLOWED_SECRETS = {"PULUMI_ACCESS_TOKEN", "PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE", "KUBECONFIG"}
# The inputs of pulumi/actions' action.yml at v6.6.1, the v6 the workflows use. policyPacks and
# policyPackConfigs really are camelCase there; every other input is kebab-case.
PULUMI_ACTION_INPUTS = set(
    [
        "command",
        "stack-name",
        "pulumi-version",
        "pulumi-version-file",
        "work-dir",
        "comment-on-pr",
        "comment-on-pr-number",
        "comment-on-summary",
        "github-token",
        "cloud-url",
        "secrets-provider",
        "parallel",
        "message",
        "config-map",
        "expect-no-changes",
        "diff",
        "replace",
        "exclude",
        "exclude-dependents",
        "target",
        "target-dependents",
        "policyPacks",
        "policyPackConfigs",
        "refresh",
        "upsert",
        "remove",
        "edit-pr-comment",
        "color",
        "exclude-protected",
        "plan",
        "suppress-outputs",
        "suppress-progress",
        "always-include-summary",
        "continue-on-error",
        "log-verbosity",
        "log-flow",
        "debug",
    ]
)
SECRET_REF = re.compile(r"\$\{\{\s*secrets\.([A-Za-z0-9_]+)\s*\}\}")
CREDENTIAL_LITERALS = [
    re.compile(r"pul-[0-9a-f]{40}"),  # Pulumi access token
    re.compile(r"gh[pousr]_[A-Za-z0-9]{30,}"),  # GitHub token
    re.compile(r"AKIA[0-9A-Z]{16}"),  # AWS access key id
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"(client-key-data|client-certificate-data|certificate-authority-data)\s*:"),
    re.compile(r"(?i)(password|passphrase|token)\s*[:=]\s*['\"]?(?!\$\{\{)[A-Za-z0-9+/_-]{8,}"),
]
SENSITIVE_ENV = re.compile(r"TOKEN|PASSWORD|PASSPHRASE|SECRET|KUBECONFIG|BACKEND_URL")
SAME_REPO = "github.event.pull_request.head.repo.full_name == github.repository"
# Time a deploy job needs besides the deploy (checkout, Python and pip, the CLI, kubeconfig, cleanup),
# and what a deploy may spend outside its budgeted phases (the unbounded image build, plugin downloads).
SETUP_MINUTES = 5
UNBOUNDED_MINUTES = 6
# After the runner's SIGINT: SIGTERM at 7.5 s, kill at 10 s (actions/runner ProcessInvoker.cs).
GRACEFUL_CANCEL_MINUTES = 1


def load(name: str) -> dict[Any, Any]:
    data = yaml.safe_load((WORKFLOWS / f"{name}.yml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def triggers(workflow: dict[Any, Any]) -> dict[str, Any]:
    """The `on:` block; YAML 1.1 reads the bare key `on` as the boolean True."""
    value = workflow.get("on", workflow.get(True))
    assert isinstance(value, dict), value
    return value


def deploy_jobs() -> dict[str, Any]:
    """deploy.yml's jobs that deploy a stack (all but the test gate)."""
    return {k: v for k, v in load("deploy")["jobs"].items() if k != "test"}


def steps(workflow: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for job_id, job in workflow["jobs"].items():
        for step in job.get("steps", []):
            yield job_id, step


def pulumi_steps(workflow: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(j, s) for j, s in steps(workflow) if str(s.get("uses", "")).startswith("pulumi/actions@")]


def check_jsonschema(*paths: Path) -> subprocess.CompletedProcess[str]:
    """check-jsonschema with the GitHub workflow schema it ships (no network)."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.github-workflows",
            *map(str, paths),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


# --- schema ---


def test_every_workflow_is_valid_against_the_github_workflow_schema() -> None:
    files = sorted(WORKFLOWS.glob("*.yml"))
    assert [f.stem for f in files] == sorted(NAMES)
    proc = check_jsonschema(*files)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_schema_check_rejects_a_broken_workflow(tmp_path: Path) -> None:
    broken = load("deploy")
    broken["jobs"]["dev"]["concurrency"]["cancel-in-progress"] = "sometimes"
    del broken["jobs"]["staging"]["runs-on"]
    path = tmp_path / "broken.yml"
    path.write_text(yaml.safe_dump(broken), encoding="utf-8")
    proc = check_jsonschema(path)
    assert proc.returncode == 1, proc.stdout
    assert "broken.yml" in proc.stdout


# --- preview.yml ---


def test_preview_runs_on_pull_requests_for_every_stack() -> None:
    wf = load("preview")
    assert set(triggers(wf)) == {"pull_request"}
    assert wf["permissions"]["pull-requests"] == "write"
    for name in ("preview", "policy-check"):
        job = wf["jobs"][name]
        assert job["needs"] == "stacks", name
        assert job["strategy"]["matrix"]["stack"] == "${{ fromJSON(needs.stacks.outputs.stacks) }}", name
    stacks = wf["jobs"]["stacks"]
    assert stacks["outputs"] == {"stacks": "${{ steps.list.outputs.stacks }}"}
    assert not SECRET_REF.search(yaml.safe_dump(stacks)), "listing the stacks needs no secret"


@pytest.mark.parametrize(
    "files",
    [["dev", "staging", "prod"], ["dev", "qa", "staging", "prod"], ["sandbox"]],
    ids=["example", "a-stack-added", "renamed-and-removed"],
)
def test_the_matrix_is_every_stack_file_of_the_commit(tmp_path: Path, files: list[str]) -> None:
    """The `stacks` job's script, run as the runner runs it, on a checkout with these stack files."""
    [step] = [s for s in load("preview")["jobs"]["stacks"]["steps"] if s.get("id") == "list"]
    for stack in files:
        (tmp_path / f"Pulumi.{stack}.yaml").write_text("config: {}\n")
    (tmp_path / "Pulumi.yaml").write_text("name: gitops-deploy\n")
    output = tmp_path / "output"
    proc = subprocess.run(
        ["bash", "-e", "-c", step["run"]],
        cwd=tmp_path,
        env={"PATH": os.environ["PATH"], "GITHUB_OUTPUT": str(output)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    [line] = output.read_text().splitlines()
    key, _, value = line.partition("=")
    assert key == "stacks" and json.loads(value) == sorted(files)


def test_preview_uses_pulumi_actions_with_diff_one_edited_comment_and_the_policy_pack() -> None:
    wf = load("preview")
    [(job, step)] = pulumi_steps(wf)
    assert job == "preview"
    assert step["uses"] == "pulumi/actions@v6"
    args = step["with"]
    assert set(args) <= PULUMI_ACTION_INPUTS, set(args) - PULUMI_ACTION_INPUTS
    assert args["command"] == "preview"
    assert args["stack-name"] == "${{ matrix.stack }}"
    assert args["diff"] is True
    assert args["comment-on-pr"] is True
    assert args["edit-pr-comment"] is True
    assert args["policyPacks"] == POLICY_PACK
    assert args["policyPackConfigs"] == policy_config("${{ matrix.stack }}")
    assert args["policyPackConfigs"] == "policies/config.${{ matrix.stack }}.json"


def test_offline_policy_check_needs_no_credentials() -> None:
    wf = load("preview")
    job = wf["jobs"]["policy-check"]
    assert "environment" not in job and "if" not in job, "forks' PRs get it too"
    assert "if" not in wf["jobs"]["stacks"]
    check = next(s for s in job["steps"] if s.get("id") == "check")
    assert check["env"] == {"STACK": "${{ matrix.stack }}"}
    assert 'python -m policy_check --stack "$STACK" --build --format markdown' in check["run"]
    assert not SECRET_REF.search(yaml.safe_dump(job)), "the offline check must work without secrets"
    assert not any(str(s.get("uses", "")).startswith("pulumi/actions") for s in job["steps"])


def test_the_check_report_is_one_edited_pr_comment_whatever_the_preview_did() -> None:
    """pulumi/actions v6 throws before it comments on a failed preview (src/main.ts): this job comments."""
    job = load("preview")["jobs"]["policy-check"]
    names = [s.get("id") or s.get("uses", "").split("@")[0] or s.get("name") for s in job["steps"]]
    check, comment, fail = (
        names.index(n)
        for n in ("check", "marocchino/sticky-pull-request-comment", "Fail when the check failed")
    )
    assert check < comment < fail, "comment first, fail the job last"
    post = job["steps"][comment]
    assert post["uses"] == "marocchino/sticky-pull-request-comment@v2"
    assert post["with"] == {"header": "policy-check-${{ matrix.stack }}", "path": "policy-check.md"}
    assert post["if"] == f"always() && {SAME_REPO}", (
        "a fork's token cannot comment; its report is in the summary"
    )
    assert "GITHUB_TOKEN" not in yaml.safe_dump(post), "the job's own token (github.token), no secret"
    assert job["steps"][fail]["if"] == "steps.check.outputs.exit-code != '0'"
    assert load("preview")["permissions"]["pull-requests"] == "write"


@pytest.mark.grpc
@pytest.mark.render
@pytest.mark.parametrize(("replicas", "exit_code"), [(3, 0), (2, 1)])
def test_the_check_step_comments_the_markdown_report_and_keeps_its_exit_code(
    tmp_path: Path, replicas: int, exit_code: int
) -> None:
    """The step's script, run as the runner runs it (bash -e, GITHUB_ACTIONS=true), in a copy of the
    project whose staging stack builds its own images with `replicas` replicas for its first app."""
    project = make_example_project(tmp_path / "checkout")
    for package in ("components", "model", "clients", "policy_check", "policies"):
        shutil.copytree(ROOT / package, project / package, dirs_exist_ok=True, ignore=COPY_IGNORED)
    stack_file = project / "Pulumi.staging.yaml"
    data = yaml.safe_load(stack_file.read_text())
    data["config"].pop("gitops-deploy:promote")
    data["config"]["gitops-deploy:apps"][0]["replicas"] = replicas
    stack_file.write_text(yaml.safe_dump(data, sort_keys=False))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    (bin_dir / "python").chmod(0o755)
    job = load("preview")["jobs"]["policy-check"]
    check = next(s for s in job["steps"] if s.get("id") == "check")
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "STACK": "staging",
        "GITHUB_ACTIONS": "true",
        "GITHUB_OUTPUT": str(tmp_path / "output"),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary"),
        "DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock",  # --build: the size can't be judged here
    }
    proc = subprocess.run(
        ["bash", "-e", "-c", check["run"]], cwd=project, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    report = (project / "policy-check.md").read_text()
    verdict = "passed" if exit_code == 0 else f"FAILED (exit {exit_code})"
    assert report.startswith(f"### Policy check of `staging` (without the Pulumi CLI): {verdict}\n"), report
    assert "`gitops-deploy:apps[0] (web)`" in report
    assert (tmp_path / "summary").read_text() == report, "the job summary gets the same report, once"
    assert (tmp_path / "output").read_text() == f"exit-code={exit_code}\n"
    annotations = [line for line in proc.stderr.splitlines() if line.startswith("::")]
    assert annotations, proc.stderr
    if exit_code:
        assert any(
            a.startswith("::error file=Pulumi.staging.yaml,line=") and "minimum-replicas (web)" in a
            for a in annotations
        ), annotations
    assert post_comment_step(job)["with"]["path"] == "policy-check.md"


def post_comment_step(job: dict[str, Any]) -> dict[str, Any]:
    [post] = [s for s in job["steps"] if str(s.get("uses", "")).startswith("marocchino/")]
    return post


def test_previews_run_only_for_pull_requests_from_this_repository() -> None:
    """Previews get the stack's passphrase: no fork's code runs with it (docs/ci-credentials.md)."""
    job = load("preview")["jobs"]["preview"]
    assert job["if"] == SAME_REPO
    assert job["environment"] == "preview-${{ matrix.stack }}"
    assert (ROOT / "docs" / "ci-credentials.md").is_file()


# --- deploy.yml ---


def test_deploy_runs_on_push_to_main_only() -> None:
    assert triggers(load("deploy")) == {"push": {"branches": ["main"]}}


def test_nothing_deploys_before_the_tests_of_the_same_commit_pass() -> None:
    wf = load("deploy")
    assert wf["jobs"]["test"] == {"name": "make test", "uses": "./.github/workflows/test.yml"}
    assert wf["jobs"]["dev"]["needs"] == "test"
    test = load("test")
    assert "workflow_call" in triggers(test) and "push" not in triggers(test), "one test run per push"
    assert test["concurrency"]["cancel-in-progress"] == "${{ github.event_name == 'pull_request' }}", (
        "a newer push must not cancel the tests a deploy waits for"
    )


def test_deploy_promotes_one_stack_after_the_other_each_in_its_environment() -> None:
    """One chain from the tests to the last stack; every stack it deploys has its files.

    A stack file without a job is not deployed by CI (a user's own stack, deployed by hand); README
    "Adapt it to your app" says how to add one to the chain.
    """
    jobs = deploy_jobs()
    order = list(jobs)
    assert order, "deploy.yml deploys at least one stack"
    assert jobs[order[0]]["needs"] == "test", "the first stack waits for the tests only"
    for before, stack in itertools.pairwise(order):
        assert jobs[stack]["needs"] == before, f"{stack} is promoted from {before}"
    for stack, job in jobs.items():
        assert job["environment"] == stack
        assert stack in stack_names(), f"deploy.yml deploys {stack}, which has no Pulumi.{stack}.yaml"
        assert (ROOT / policy_config(stack)).is_file(), (
            f"deploy.yml deploys {stack} without {policy_config(stack)}"
        )


def test_one_update_per_stack_at_a_time_and_never_cancelled() -> None:
    jobs = deploy_jobs()
    groups = {stack: job["concurrency"]["group"] for stack, job in jobs.items()}
    assert len(set(groups.values())) == len(groups), "one concurrency group per stack"
    for stack, job in jobs.items():
        assert stack in groups[stack]
        assert job["concurrency"]["cancel-in-progress"] is False


def test_each_deploy_job_runs_the_rollback_aware_deploy_of_its_stack() -> None:
    for stack, job in deploy_jobs().items():
        runs = [s["run"] for s in job["steps"] if "run" in s]
        # `exec`: the deploy is the step's process, the one the runner signals on a cancel or timeout.
        command = f"exec python -m deploy up --stack {stack}"
        assert any(run == command or run.startswith(f"{command} ") for run in runs), runs
        installs = [s for s in job["steps"] if str(s.get("uses", "")).startswith("pulumi/actions@")]
        assert len(installs) == 1 and "command" not in installs[0].get("with", {}), "install the CLI only"


def test_policy_pack_on_every_preview_and_up() -> None:
    for name in NAMES:
        wf = load(name)
        for _, step in pulumi_steps(wf):
            if step.get("with", {}).get("command") in ("preview", "up", "update"):
                assert step["with"]["policyPacks"] == POLICY_PACK
                assert step["with"]["policyPackConfigs"].startswith(f"{POLICY_PACK}/config.")
        for _, step in steps(wf):
            run = step.get("run", "")
            for cmd in re.findall(r"pulumi (?:up|preview)[^\n]*", run):
                assert "--policy-pack " in cmd and "--policy-pack-config " in cmd, cmd
            # `python -m deploy up` passes the pack itself (test_deploy.py checks its `up` calls).


def test_time_limits_leave_room_for_the_budget_a_rollback_and_a_graceful_cancel() -> None:
    for stack, job in deploy_jobs().items():
        [step] = [s for s in job["steps"] if "python -m deploy" in s.get("run", "")]
        deploy = read_stack_config(stack).get("gitops-deploy:deploy") or {}
        budget = deploy.get("budgetSeconds", DEFAULT_BUDGET_SECONDS) / 60
        # The release fits the budget, and its rollback's second wait and gate take at most as long again
        # (model/budget.py).
        release_and_rollback = 2 * budget
        assert (
            step["timeout-minutes"] >= release_and_rollback + UNBOUNDED_MINUTES + GRACEFUL_CANCEL_MINUTES
        ), stack
        assert job["timeout-minutes"] >= step["timeout-minutes"] + SETUP_MINUTES, stack
        # A lock or in-progress update older than any job is left over (deploy/recovery.py).
        assert job["timeout-minutes"] < STALE_AFTER.total_seconds() / 60, stack


def test_each_deploy_writes_its_record_and_uploads_it_whatever_the_outcome() -> None:
    names = []
    for stack, job in deploy_jobs().items():
        steps = job["steps"]
        [deploy] = [i for i, s in enumerate(steps) if "python -m deploy up" in s.get("run", "")]
        assert steps[deploy]["run"] == (
            f'exec python -m deploy up --stack {stack} --record "$RUNNER_TEMP/deploy-record.json"'
        )
        uploads = [
            s for s in steps[deploy + 1 :] if str(s.get("uses", "")).startswith("actions/upload-artifact@")
        ]
        [upload] = uploads
        assert upload["uses"] == "actions/upload-artifact@v4"
        assert upload["if"] == "always()", "a failed or rolled-back deploy is the record that matters most"
        assert upload["with"]["path"] == "${{ runner.temp }}/deploy-record.json"
        assert upload["with"]["if-no-files-found"] == "warn", "a deploy that could not start writes none"
        names.append(upload["with"]["name"])
        # The runner sets $GITHUB_STEP_SUMMARY for every step: the deploy appends its table there itself.
        assert "GITHUB_STEP_SUMMARY" not in steps[deploy].get("env", {})
    # Artifact names are unique in a run, and a re-run of a job is another attempt.
    assert len(set(names)) == len(names) and all("${{ github.run_attempt }}" in n for n in names)


# --- secrets ---


@pytest.mark.parametrize("name", NAMES)
def test_secrets_only_from_github_secrets_and_only_through_env(name: str) -> None:
    wf = load(name)
    for job_id, step in steps(wf):
        assert not SECRET_REF.search(str(step.get("run", ""))), f"{job_id}: secret inlined in a script"
        assert not SECRET_REF.search(yaml.safe_dump(step.get("with", {}))), f"{job_id}: secret in `with`"
        for key, value in step.get("env", {}).items():
            refs = SECRET_REF.findall(str(value))
            assert set(refs) <= ALLOWED_SECRETS, refs
            if SENSITIVE_ENV.search(key):
                assert refs, f"{job_id}: {key} must come from ${{{{ secrets.* }}}}, got {value!r}"
    text = (WORKFLOWS / f"{name}.yml").read_text(encoding="utf-8")
    for pattern in CREDENTIAL_LITERALS:
        assert not pattern.search(text), f"{name}.yml: credential-like literal {pattern.pattern}"


@pytest.mark.parametrize("name", ["preview", "deploy"])
def test_kubeconfig_goes_to_a_private_temp_file_that_is_removed(name: str) -> None:
    wf = load(name)
    for job_id, job in wf["jobs"].items():
        uses_kubeconfig = [s for s in job.get("steps", []) if "secrets.KUBECONFIG" in yaml.safe_dump(s)]
        if not uses_kubeconfig:
            continue
        [write] = uses_kubeconfig
        assert "umask 077" in write["run"] and "mktemp" in write["run"] and "$RUNNER_TEMP" in write["run"]
        assert 'echo "KUBECONFIG=' in write["run"] and '>> "$GITHUB_ENV"' in write["run"]
        cleanup = job["steps"][-1]
        assert cleanup.get("if") == "always()" and 'rm -f "${KUBECONFIG' in cleanup["run"], job_id
        assert job["steps"].index(write) < len(job["steps"]) - 1


@pytest.mark.parametrize("name", ["preview", "deploy"])
def test_pulumi_credentials_reach_every_pulumi_run(name: str) -> None:
    wf = load(name)
    for job_id, step in steps(wf):
        runs_pulumi = step.get("with", {}).get("command") or "python -m deploy" in step.get("run", "")
        if runs_pulumi:
            env = step.get("env", {})
            assert {"PULUMI_ACCESS_TOKEN", "PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE"} <= set(env), (
                job_id
            )


# --- installs, caching, tests ---


@pytest.mark.parametrize("name", NAMES)
def test_python_is_set_up_with_a_pip_cache_over_the_requirements_files(name: str) -> None:
    for job_id, job in load(name)["jobs"].items():
        if "uses" in job:
            continue  # a called workflow: checked as its own file
        assert job.get("timeout-minutes"), f"{job_id}: every job has a time limit"
        runs = " ".join(s.get("run", "") for s in job["steps"])
        if "pip install" not in runs and "make test" not in runs:
            continue  # installs nothing (the stack list runs on the runner's own python3)
        [setup] = [s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/setup-python@")]
        assert setup["with"]["cache"] == "pip", job_id
        paths = setup["with"]["cache-dependency-path"].split()
        assert {"requirements.txt", "requirements-dev.txt", "policies/requirements.txt"} <= set(paths)
        assert job.get("timeout-minutes"), f"{job_id}: every job has a time limit"


def test_jobs_running_the_program_install_into_the_projects_virtualenv() -> None:
    venv = yaml.safe_load((ROOT / "Pulumi.yaml").read_text(encoding="utf-8"))["runtime"]["options"][
        "virtualenv"
    ]
    for name, job_id in [("preview", "preview"), *(("deploy", s) for s in deploy_jobs())]:
        runs = "\n".join(s.get("run", "") for s in load(name)["jobs"][job_id]["steps"])
        assert f"python -m venv {venv}" in runs
        assert f"{venv}/bin/python -m pip install -r requirements.txt -r policies/requirements.txt" in runs


def test_test_workflow_runs_the_readme_test_command() -> None:
    wf = load("test")
    assert set(triggers(wf)) == {"pull_request", "workflow_call"}
    [job] = wf["jobs"].values()
    runs = [s.get("run", "") for s in job["steps"]]
    assert "make test" in runs
    install = next(r for r in runs if "apt-get install" in r)
    assert "docker-registry" in install and "apache2-utils" in install, "the registry tests need them"
