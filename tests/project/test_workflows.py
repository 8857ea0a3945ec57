"""The GitHub workflows: valid against GitHub's workflow schema, their scripts working as the runner runs
them, and their invariants: the promotion chain, the time limits against the deploy budget, credentials."""

from __future__ import annotations

import itertools
import json
import math
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
from deploy.view import APPS_KEY, DEPLOY_KEY
from model.config import read_deploy
from model.config_schema import DEFAULT_SOAK_SECONDS, MAX_SOAK_SECONDS
from model.stack_files import PROJECT_DIR, read_stack_config, stack_names
from tests.support.example_project import COPY_IGNORED, make_example_project

WORKFLOWS = PROJECT_DIR / ".github" / "workflows"
NAMES = sorted(p.stem for p in WORKFLOWS.glob("*.yml"))
DEPLOY_STACK = "./.github/workflows/deploy-stack.yml"
PULUMI_CREDENTIALS = {"PULUMI_ACCESS_TOKEN", "PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE"}
ALLOWED_SECRETS = {*PULUMI_CREDENTIALS, "KUBECONFIG", "GITHUB_TOKEN"}
# The inputs of pulumi/actions' action.yml at v6.6.1, the v6 the workflows use: the schema of its `with`.
PULUMI_ACTION_INPUTS = {
    *("command", "stack-name", "pulumi-version", "pulumi-version-file", "work-dir", "comment-on-pr"),
    *("comment-on-pr-number", "comment-on-summary", "github-token", "cloud-url", "secrets-provider"),
    *("parallel", "message", "config-map", "expect-no-changes", "diff", "replace", "exclude"),
    *("exclude-dependents", "target", "target-dependents", "policyPacks", "policyPackConfigs", "refresh"),
    *("upsert", "remove", "edit-pr-comment", "color", "exclude-protected", "plan", "suppress-outputs"),
    *("suppress-progress", "always-include-summary", "continue-on-error", "log-verbosity", "log-flow"),
    "debug",
}
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
# What the deploy budget does not bound (the image build, plugin downloads, the rollback target's check,
# each `up`'s start-up), and a graceful cancel after the runner's SIGINT (SIGTERM at 7.5 s, kill at 10 s:
# actions/runner ProcessInvoker.cs); then what a job needs around the deploy (checkout, installs, cleanup).
UNBOUNDED_MINUTES = 11
GRACEFUL_CANCEL_MINUTES = 1
SETUP_MINUTES = 5
# The soak, apart from the budget: the release's, then a failed one's restored release's, each as long as
# the stack's longest soak; then the follow-up update that marks the soaked digests (a program run).
SOAK_ROUNDS = 2
FOLLOW_UP_MINUTES = 2


def load(name: str) -> dict[Any, Any]:
    data = yaml.safe_load((WORKFLOWS / f"{name}.yml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def steps(workflow: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for job_id, job in workflow["jobs"].items():
        for step in job.get("steps", []):
            yield job_id, step


def uses(step: dict[str, Any], action: str) -> bool:
    return str(step.get("uses", "")).startswith(f"{action}@")


def deployed_stacks() -> list[str]:
    """The stacks deploy.yml deploys, in the order of its jobs."""
    jobs = load("deploy")["jobs"].values()
    return [job["with"]["stack"] for job in jobs if job.get("uses") == DEPLOY_STACK]


def deploy_job() -> dict[str, Any]:
    [job] = load("deploy-stack")["jobs"].values()
    assert isinstance(job, dict)
    return job


def deploy_step(job: dict[str, Any]) -> dict[str, Any]:
    [step] = [s for s in job["steps"] if "python -m deploy up" in s.get("run", "")]
    assert isinstance(step, dict)
    return step


def check_jsonschema(*paths: Path) -> subprocess.CompletedProcess[str]:
    """check-jsonschema with the GitHub workflow schema it ships (no network)."""
    command = [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows"]
    return subprocess.run([*command, *map(str, paths)], capture_output=True, text=True, timeout=120)


def run_step(step: dict[str, Any], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """A `run:` step as the runner runs it: `bash -e` in the checkout."""
    return subprocess.run(
        ["bash", "-e", "-c", step["run"]], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


# --- the schema ---


def test_every_workflow_is_valid_against_the_github_workflow_schema() -> None:
    proc = check_jsonschema(*sorted(WORKFLOWS.glob("*.yml")))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_schema_check_rejects_a_broken_workflow(tmp_path: Path) -> None:
    broken = load("deploy-stack")
    broken["jobs"]["deploy"]["concurrency"]["cancel-in-progress"] = "sometimes"
    del broken["jobs"]["deploy"]["runs-on"]
    path = tmp_path / "broken.yml"
    path.write_text(yaml.safe_dump(broken), encoding="utf-8")
    proc = check_jsonschema(path)
    assert proc.returncode == 1 and "broken.yml" in proc.stdout, proc.stdout


def test_pulumi_actions_get_only_inputs_it_has() -> None:
    for name in NAMES:
        for job_id, step in steps(load(name)):
            if uses(step, "pulumi/actions"):
                assert set(step.get("with", {})) <= PULUMI_ACTION_INPUTS, (name, job_id)


# --- the scripts, as the runner runs them ---


@pytest.mark.parametrize(
    "files",
    [["dev", "staging", "prod"], ["dev", "qa", "staging", "prod"], ["sandbox"]],
    ids=["example", "a-stack-added", "renamed-and-removed"],
)
def test_the_matrix_is_every_stack_file_of_the_commit(tmp_path: Path, files: list[str]) -> None:
    [step] = [s for s in load("preview")["jobs"]["stacks"]["steps"] if s.get("id") == "list"]
    for stack in files:
        (tmp_path / f"Pulumi.{stack}.yaml").write_text("config: {}\n")
    (tmp_path / "Pulumi.yaml").write_text("name: gitops-deploy\n")
    output = tmp_path / "output"
    proc = run_step(step, tmp_path, {"PATH": os.environ["PATH"], "GITHUB_OUTPUT": str(output)})
    assert proc.returncode == 0, proc.stderr
    [line] = output.read_text().splitlines()
    key, _, value = line.partition("=")
    assert key == "stacks" and json.loads(value) == sorted(files)


@pytest.mark.grpc
@pytest.mark.render
@pytest.mark.parametrize(("replicas", "exit_code"), [(3, 0), (2, 1)])
def test_the_check_step_writes_the_markdown_report_and_keeps_its_exit_code(
    tmp_path: Path, replicas: int, exit_code: int
) -> None:
    """In a copy of the project whose staging stack builds its images, `replicas` for its first app."""
    project = make_example_project(tmp_path / "checkout")
    for package in ("components", "model", "clients", "policy_check", "policies"):
        shutil.copytree(PROJECT_DIR / package, project / package, dirs_exist_ok=True, ignore=COPY_IGNORED)
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
    [check] = [s for s in job["steps"] if s.get("id") == "check"]
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        **{key: value.replace("${{ matrix.stack }}", "staging") for key, value in check["env"].items()},
        "GITHUB_ACTIONS": "true",
        "GITHUB_OUTPUT": str(tmp_path / "output"),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary"),
        "DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock",  # --build: the size can't be judged here
    }
    proc = run_step(check, project, env)
    assert proc.returncode == 0, proc.stderr
    [post] = [s for s in job["steps"] if uses(s, "marocchino/sticky-pull-request-comment")]
    report = (project / post["with"]["path"]).read_text()
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


# --- the invariants ---


def test_the_check_report_is_posted_before_the_job_fails_and_needs_no_credentials() -> None:
    """pulumi/actions v6 throws before it comments on a failed preview (src/main.ts): this job comments,
    for forks' pull requests too (their report is in the summary: their token cannot comment)."""
    job = load("preview")["jobs"]["policy-check"]
    assert "if" not in job and "environment" not in job
    assert not SECRET_REF.search(yaml.safe_dump(job)), "the check must work without secrets"
    order = [s.get("id") or s.get("uses", "").split("@")[0] or s["name"] for s in job["steps"]]
    check, post, fail = order.index("check"), order.index("marocchino/sticky-pull-request-comment"), -1
    assert check < post < len(order) - 1 and "exit-code" in job["steps"][fail]["if"]
    assert SAME_REPO in job["steps"][post]["if"] and "always()" in job["steps"][post]["if"]


def test_previews_run_only_for_pull_requests_from_this_repository() -> None:
    """Previews get the stack's passphrase: no fork's code runs with it (docs/ci-credentials.md)."""
    job = load("preview")["jobs"]["preview"]
    assert job["if"] == SAME_REPO
    assert "${{ matrix.stack }}" in job["environment"]


def test_nothing_deploys_before_the_tests_of_the_same_commit_pass() -> None:
    jobs = load("deploy")["jobs"]
    assert jobs["test"]["uses"] == "./.github/workflows/test.yml"
    assert "make test" in [s.get("run") for _, s in steps(load("test"))]
    test = load("test")
    triggers = test.get("on", test.get(True))  # YAML 1.1 reads `on` as True
    assert isinstance(triggers, dict), triggers
    assert "workflow_call" in triggers and "push" not in triggers, "one test run per push"


def test_the_system_packages_are_listed_once_in_ci_run() -> None:
    for name in NAMES:
        for job_id, step in steps(load(name)):
            assert "apt-get" not in step.get("run", ""), (
                f"{name}.yml {job_id}: install with `.ci/run install`"
            )
    assert ".ci/run install" in [s.get("run") for _, s in steps(load("test"))]


def test_deploy_promotes_one_stack_after_the_other_each_with_its_files() -> None:
    """A stack file without a job is not deployed by CI (a user's own stack, deployed by hand)."""
    jobs = load("deploy")["jobs"]
    by_stack = {
        job["with"]["stack"]: job_id for job_id, job in jobs.items() if job.get("uses") == DEPLOY_STACK
    }
    order = deployed_stacks()
    assert order, "deploy.yml deploys at least one stack"
    assert jobs[by_stack[order[0]]]["needs"] == "test", "the first stack waits for the tests only"
    for before, stack in itertools.pairwise(order):
        assert jobs[by_stack[stack]]["needs"] == by_stack[before], f"{stack} is promoted from {before}"
    for stack in order:
        assert stack in stack_names(), f"deploy.yml deploys {stack}, which has no Pulumi.{stack}.yaml"
        assert (PROJECT_DIR / policy_config(stack)).is_file(), f"{stack} has no {policy_config(stack)}"


def test_each_stack_deploys_alone_in_its_environment_and_is_never_cancelled() -> None:
    job = deploy_job()
    assert (
        job["environment"]["name"] == "${{ inputs.stack }}"
        and "${{ inputs.stack }}" in job["concurrency"]["group"]
    )
    assert job["concurrency"]["cancel-in-progress"] is False


def test_the_deploy_reports_to_githubs_deployments_in_place_of_the_environments_own() -> None:
    """The deploy creates the stack's deployment and its statuses (docs/visibility.md): it gets the token
    and the permission, from the caller too (a called workflow gets no more than its caller grants); the
    job's environment creates no second deployment."""
    job = deploy_job()
    assert job["environment"]["deployment"] is False
    assert deploy_step(job)["env"]["GITHUB_TOKEN"] == "${{ secrets.GITHUB_TOKEN }}"
    assert load("deploy-stack")["permissions"] == {"contents": "read", "deployments": "write"}
    callers = [j for j in load("deploy")["jobs"].values() if j.get("uses") == DEPLOY_STACK]
    assert callers and all(j["permissions"] == {"contents": "read", "deployments": "write"} for j in callers)
    assert load("deploy")["permissions"] == {"contents": "read"}, "the tests get no write permission"


def test_the_deploy_is_the_steps_process_and_its_record_is_uploaded_whatever_the_outcome() -> None:
    job = deploy_job()
    step = deploy_step(job)
    # `exec`: the deploy is the step's process, the one the runner signals on a cancel or timeout.
    assert step["run"].startswith('exec python -m deploy up --stack "$STACK" --record "$RUNNER_TEMP/')
    assert step["env"]["STACK"] == "${{ inputs.stack }}", "an input reaches a script through env only"
    after = job["steps"][job["steps"].index(step) + 1 :]
    [upload] = [s for s in after if uses(s, "actions/upload-artifact")]
    assert upload["if"] == "always()", "a failed or rolled-back deploy is the record that matters most"
    assert upload["with"]["path"] == "${{ runner.temp }}/deploy-record.json"
    # Artifact names are unique in a run, and a re-run of a job is another attempt.
    assert {"${{ inputs.stack }}", "${{ github.run_attempt }}"} <= set(
        re.findall(r"\$\{\{[^}]*\}\}", upload["with"]["name"])
    )


def _longest_soak(config: dict[str, Any], stack_seconds: int) -> int:
    """The longest soak of the stack's apps: an app's own `soak.seconds`, else the stack's."""
    apps = config.get(APPS_KEY) or []
    own = [app["soak"].get("seconds", stack_seconds) for app in apps if isinstance(app.get("soak"), dict)]
    return max([stack_seconds, *own])


def test_the_soak_is_in_the_time_limit_with_its_defaults_and_its_longest() -> None:
    assert _longest_soak({}, DEFAULT_SOAK_SECONDS) == DEFAULT_SOAK_SECONDS
    assert _longest_soak({APPS_KEY: [{"soak": {"seconds": MAX_SOAK_SECONDS}}, {}]}, 0) == MAX_SOAK_SECONDS


@pytest.mark.parametrize("stack", deployed_stacks())
def test_time_limits_leave_room_for_the_budget_and_a_graceful_cancel(stack: str) -> None:
    """The stack's budget, read as `python -m deploy` reads it: model/budget.py fits a release and its
    rollback into it."""
    config = read_stack_config(stack)
    deploy = read_deploy(config.get(DEPLOY_KEY))
    budget_minutes = deploy.budget_seconds / 60
    soak_minutes = (
        math.ceil(SOAK_ROUNDS * _longest_soak(config, deploy.soak.seconds) / 60) + FOLLOW_UP_MINUTES
    )
    job = deploy_job()
    step = deploy_step(job)["timeout-minutes"]
    least = math.ceil(budget_minutes) + UNBOUNDED_MINUTES + soak_minutes + GRACEFUL_CANCEL_MINUTES
    assert step >= least, stack
    assert job["timeout-minutes"] >= step + SETUP_MINUTES
    # A lock or in-progress update older than any job is left over (`python -m deploy up --stale-after`).
    assert job["timeout-minutes"] < STALE_AFTER.total_seconds() / 60


def test_policy_pack_on_every_preview_and_up() -> None:
    for name in NAMES:
        for _, step in steps(load(name)):
            if step.get("with", {}).get("command") in ("preview", "up", "update"):
                assert step["with"]["policyPacks"] == POLICY_PACK
                assert step["with"]["policyPackConfigs"] == policy_config("${{ matrix.stack }}")
            for cmd in re.findall(r"pulumi (?:up|preview)[^\n]*", step.get("run", "")):
                assert "--policy-pack " in cmd and "--policy-pack-config " in cmd, cmd
            # `python -m deploy up` passes the pack itself (tests/deploy checks its `up` calls).


@pytest.mark.parametrize("name", NAMES)
def test_secrets_only_from_github_secrets_and_only_through_env(name: str) -> None:
    for job_id, step in steps(load(name)):
        assert not SECRET_REF.search(str(step.get("run", ""))), f"{job_id}: secret inlined in a script"
        assert not SECRET_REF.search(yaml.safe_dump(step.get("with", {}))), f"{job_id}: secret in `with`"
        for key, value in step.get("env", {}).items():
            refs = SECRET_REF.findall(str(value))
            assert set(refs) <= ALLOWED_SECRETS, refs
            if SENSITIVE_ENV.search(key):
                assert refs, f"{job_id}: {key} must come from ${{{{ secrets.* }}}}, got {value!r}"
        if step.get("with", {}).get("command") or "python -m deploy" in step.get("run", ""):
            assert set(step.get("env", {})) >= PULUMI_CREDENTIALS, f"{job_id}: every Pulumi run gets them"
    text = (WORKFLOWS / f"{name}.yml").read_text(encoding="utf-8")
    for pattern in CREDENTIAL_LITERALS:
        assert not pattern.search(text), f"{name}.yml: credential-like literal {pattern.pattern}"


@pytest.mark.parametrize("name", NAMES)
def test_kubeconfig_goes_to_a_private_temp_file_that_is_removed(name: str) -> None:
    for job_id, job in load(name)["jobs"].items():
        writes = [s for s in job.get("steps", []) if "secrets.KUBECONFIG" in yaml.safe_dump(s)]
        if not writes:
            continue
        [write] = writes
        assert "umask 077" in write["run"] and 'mktemp "$RUNNER_TEMP/' in write["run"], job_id
        assert 'echo "KUBECONFIG=' in write["run"] and '>> "$GITHUB_ENV"' in write["run"], job_id
        cleanup = job["steps"][-1]
        assert cleanup.get("if") == "always()" and 'rm -f "${KUBECONFIG' in cleanup["run"], job_id


@pytest.mark.parametrize("name", NAMES)
def test_every_job_has_a_time_limit_and_caches_pip_over_every_requirements_file(name: str) -> None:
    venv = yaml.safe_load((PROJECT_DIR / "Pulumi.yaml").read_text(encoding="utf-8"))["runtime"]["options"]
    for job_id, job in load(name)["jobs"].items():
        if "uses" in job:
            continue  # a called workflow: checked as its own file
        assert job.get("timeout-minutes"), f"{job_id}: every job has a time limit"
        runs = "\n".join(s.get("run", "") for s in job["steps"])
        if "pip install" not in runs and "make test" not in runs:
            continue  # installs nothing (the stack list runs on the runner's own python3)
        [setup] = [s for s in job["steps"] if uses(s, "actions/setup-python")]
        assert setup["with"]["cache"] == "pip", job_id
        requirements = {"requirements.txt", "requirements-dev.txt", "policies/requirements.txt"}
        assert requirements <= set(setup["with"]["cache-dependency-path"].split()), job_id
        if any(uses(s, "pulumi/actions") for s in job["steps"]):  # the program runs in Pulumi.yaml's venv
            assert f"python -m venv {venv['virtualenv']}" in runs, job_id
