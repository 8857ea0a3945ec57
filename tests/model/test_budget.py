"""The deploy budget, checked before anything runs: the real program under the SDK's mocks, with a stack
config and a project folder of the test's own (no shipped stack file is read)."""

from __future__ import annotations

import copy
import math
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from model.budget import LINT_TIMEOUT_SECONDS, REGISTRY_DEADLINE_S, app_budgets, human, info_line
from model.config import (
    DEFAULT_BUDGET_SECONDS,
    DEFAULT_DEGRADED_GRACE_SECONDS,
    DEFAULT_SYNC_TIMEOUT_SECONDS,
    DeployConfig,
    parse_config,
    read_deploy,
)
from model.config_reader import ConfigError
from model.health_settings import DEFAULTS, worst_case_seconds
from policy_check.simulate import ProgramFailed, Simulation, simulate

REPO = Path(__file__).resolve().parents[2]
PIN = "registry.example.com/platform/api@sha256:" + "2" * 64


def _app(name: str, **health: Any) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": "apps",
        "image": {"repository": f"registry.example.com/platform/{name}", "context": "app"},
        "source": {
            "repoURL": "https://git.example.com/platform/deploy.git",
            "targetRevision": "main",
            "path": f"charts/{name}",
            "type": "helm",
        },
        "health": {"url": f"https://{name}.example.com/healthz", **health},
    }


BASE: dict[str, Any] = {
    "gitops-deploy:registry": {"server": "registry.example.com", "username": "ci"},
    "gitops-deploy:apps": [_app("web"), {**_app("api"), "image": {**_app("api")["image"], "pin": PIN}}],
}
"""web is built; api is pinned (a rollback, a hotfix): it builds nothing."""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The program with a build context of its own."""
    shutil.copy(REPO / "__main__.py", tmp_path)
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "Dockerfile").write_text("FROM scratch\nCOPY app.txt /\n")
    (tmp_path / "app" / "app.txt").write_text("v1\n")
    return tmp_path


def run(project: Path, config: dict[str, Any]) -> Simulation:
    return simulate("budget", project_dir=project, config=config, password="budget-test-password")


def failure(project: Path, config: dict[str, Any]) -> ProgramFailed:
    with pytest.raises(ProgramFailed) as caught:
        run(project, config)
    return caught.value


def budget_lines(sim: Simulation) -> dict[str, str]:
    return {
        line.split(": ", 2)[1]: line.split(": ", 1)[1]
        for line in sim.logs
        if line.startswith("info: ") and ": worst case " in line
    }


def test_the_defaults_fit_and_each_app_says_what_it_can_cost(project: Path) -> None:
    sim = run(project, copy.deepcopy(BASE))
    lines = budget_lines(sim)
    assert set(lines) == {"web", "api"}, sim.logs
    gate = worst_case_seconds(DEFAULTS["attempts"], DEFAULTS["interval_seconds"], DEFAULTS["timeout_seconds"])
    once = DEFAULT_SYNC_TIMEOUT_SECONDS + gate
    # The longest path is a release that fails its gate and is rolled back: the wait for an Argo CD
    # operation the deploy did not start, then the wait and gate, twice.
    # Unset, the operation wait is what the budget leaves.
    wait = DEFAULT_BUDGET_SECONDS - math.ceil(2 * once)
    worst = wait + 2 * once
    assert wait > 0 and worst <= DEFAULT_BUDGET_SECONDS
    head = (
        f"worst case {human(worst)} of the {human(DEFAULT_BUDGET_SECONDS)} budget (operation wait "
        f"{human(wait)}, sync wait "
        f"{human(DEFAULT_SYNC_TIMEOUT_SECONDS)}, health gate {human(gate)}, a rollback's second wait "
        f"and gate {human(once)}; "
    )
    for app, line in lines.items():
        assert line.startswith(f"{app}: {head}"), line
        assert f"give up within {human(LINT_TIMEOUT_SECONDS)}" in line, "the stack builds: the lint bounds"
    assert lines["web"].endswith("; the build is not bounded")
    assert lines["api"].endswith("; nothing is built"), "a pinned app builds nothing"


def test_an_over_budget_stack_is_refused_naming_the_keys_and_what_would_fit(project: Path) -> None:
    config = copy.deepcopy(BASE)
    config["gitops-deploy:apps"][0]["health"]["attempts"] = 8
    failed = failure(project, config)
    assert isinstance(failed.cause, ConfigError) and failed.resources == [], "refused before anything runs"
    [problem] = failed.cause.problems
    gate = worst_case_seconds(8, DEFAULTS["interval_seconds"], DEFAULTS["timeout_seconds"])
    for words in (
        "gitops-deploy:deploy.budgetSeconds: got 300 s, but app 'web' can take "
        f"{human(2 * (DEFAULT_SYNC_TIMEOUT_SECONDS + gate))}",
        f"gitops-deploy:argocd.syncTimeoutSeconds {DEFAULT_SYNC_TIMEOUT_SECONDS}",
        f"health gate {human(gate)} (gitops-deploy:apps[0].health: attempts 8, intervalSeconds 4, "
        "timeoutSeconds 3), twice when the release is rolled back",
        "expected a worst case within the deploy budget",
    ):
        assert words in problem, problem
    # Each way out the error names does fit.
    attempts = int(re.search(r"for example attempts (\d+)", problem)[1])  # type: ignore[index]
    sync = int(re.search(r"syncTimeoutSeconds at most (\d+)", problem)[1])  # type: ignore[index]
    budget = int(re.search(r"budgetSeconds at least (\d+)", problem)[1])  # type: ignore[index]
    fewer = copy.deepcopy(config)
    fewer["gitops-deploy:apps"][0]["health"]["attempts"] = attempts
    shorter = {**copy.deepcopy(config), "gitops-deploy:argocd": {"syncTimeoutSeconds": sync}}
    bigger = {**copy.deepcopy(config), "gitops-deploy:deploy": {"budgetSeconds": budget}}
    for fixed in (fewer, shorter, bigger):
        assert set(budget_lines(run(project, fixed))) == {"web", "api"}
    # ...and just past each of them does not.
    past = {**copy.deepcopy(config), "gitops-deploy:deploy": {"budgetSeconds": budget - 1}}
    assert isinstance(failure(project, past).cause, ConfigError)


def test_a_longer_wait_needs_a_bigger_budget(project: Path) -> None:
    config = {**copy.deepcopy(BASE), "gitops-deploy:argocd": {"syncTimeoutSeconds": 600}}
    problems = failure(project, config).cause.problems  # type: ignore[attr-defined]
    named = [re.findall(r"but app '(\w+)'", p) for p in problems]
    assert named == [["web"], ["api"]], problems
    config["gitops-deploy:deploy"] = {"budgetSeconds": 900}
    assert "got 900 s, but app 'web' can take 22m19s" in str(failure(project, config).cause), "10m, twice"
    config["gitops-deploy:deploy"] = {"budgetSeconds": 1500}
    assert (
        "of the 25m budget (operation wait 2m41s, sync wait 10m," in budget_lines(run(project, config))["web"]
    )


def _parse(config: dict[str, Any], project: Path) -> Any:
    raw = {key.split(":", 1)[1]: value for key, value in config.items()}
    return parse_config(raw, project)


def test_what_each_figure_comes_from(project: Path) -> None:
    config = copy.deepcopy(BASE)
    config["gitops-deploy:registry"]["insecure"] = True
    config["gitops-deploy:argocd"] = {"syncTimeoutSeconds": 60}
    config["gitops-deploy:apps"][1]["health"].update(attempts=4, intervalSeconds=2, timeoutSeconds=1)
    web, api = app_budgets(_parse(config, project))
    assert [(b.phase, b.seconds, b.key) for b in api.release] == [
        ("sync wait", 60, "gitops-deploy:argocd.syncTimeoutSeconds"),
        ("health gate", worst_case_seconds(4, 2, 1), "gitops-deploy:apps[1].health"),
    ]
    # Every request of a preflight or a size read, https then plain http too, shares the client's deadline.
    assert {b.phase: b.seconds for b in web.gives_up} == {
        "registry preflight": REGISTRY_DEADLINE_S,
        "image size read": REGISTRY_DEADLINE_S,
        "lint": LINT_TIMEOUT_SECONDS,
    }
    assert [b.phase for b in web.rollback] == ["second wait", "health gate"]
    once = 60 + worst_case_seconds(
        DEFAULTS["attempts"], DEFAULTS["interval_seconds"], DEFAULTS["timeout_seconds"]
    )
    wait = 300 - math.ceil(max(2 * once, 2 * (60 + worst_case_seconds(4, 2, 1))))
    assert [(b.phase, b.seconds, b.key) for b in web.before] == [
        ("operation wait", wait, "gitops-deploy:deploy.operationWaitSeconds")
    ], "unset: what the budget leaves after the longest app"
    assert web.rollback_seconds == once and web.worst_case == wait + 2 * once
    promoted = {**copy.deepcopy(config), "gitops-deploy:promote": {"from": "dev"}}
    web, _ = app_budgets(_parse(promoted, project))
    assert "lint" not in {b.phase for b in web.gives_up}, "a promoting stack lints nothing"
    assert info_line(web).endswith("; nothing is built")


@pytest.mark.parametrize(
    ("value", "key", "expected"),
    [
        ("5m", "gitops-deploy:deploy", "an object"),
        ({"budgetSeconds": "300"}, "gitops-deploy:deploy.budgetSeconds", "a whole number from 60 to 7200"),
        ({"budgetSeconds": 59}, "gitops-deploy:deploy.budgetSeconds", "a whole number from 60 to 7200"),
        ({"budgetSeconds": 299.5}, "gitops-deploy:deploy.budgetSeconds", "a whole number from 60 to 7200"),
        ({"degradedGraceSeconds": -1}, "gitops-deploy:deploy.degradedGraceSeconds", "from 0 to 7200"),
        ({"degradedGraceSeconds": True}, "gitops-deploy:deploy.degradedGraceSeconds", "from 0 to 7200"),
        ({"budget": 300}, "gitops-deploy:deploy.budget", "did you mean deploy.budgetSeconds?"),
    ],
)
def test_the_deploy_key_is_validated_like_every_other(
    project: Path, value: Any, key: str, expected: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        read_deploy(value)
    [problem] = caught.value.problems
    assert problem.startswith(f"{key}: got ") and expected in problem, problem
    with pytest.raises(ConfigError) as whole:
        _parse({**copy.deepcopy(BASE), "gitops-deploy:deploy": value}, project)
    assert problem in whole.value.problems


def test_the_deploy_key_defaults(project: Path) -> None:
    assert read_deploy(None) == DeployConfig(DEFAULT_BUDGET_SECONDS, DEFAULT_DEGRADED_GRACE_SECONDS)
    assert read_deploy({"degradedGraceSeconds": 0}).degraded_grace_seconds == 0
    assert _parse(copy.deepcopy(BASE), project).deploy == DeployConfig()


def test_a_set_operation_wait_is_counted_in_the_budget(project: Path) -> None:
    config = {**copy.deepcopy(BASE), "gitops-deploy:deploy": {"operationWaitSeconds": 60}}
    [problem, _] = failure(project, config).cause.problems  # type: ignore[attr-defined]
    assert "after the operation wait 1m (gitops-deploy:deploy.operationWaitSeconds 60)" in problem
    least = re.search(r"budgetSeconds at least (\d+)", problem)
    assert least is not None, problem
    config["gitops-deploy:deploy"]["budgetSeconds"] = int(least[1])
    lines = budget_lines(run(project, config))
    assert all("(operation wait 1m, sync wait" in line for line in lines.values()), lines
