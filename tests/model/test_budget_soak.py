"""The soak is printed apart from the deploy budget and never counts against it."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from model.budget import app_budgets, budget_problems, human, soak_line, soak_rules
from model.config import parse_config
from model.config_schema import (
    DEFAULT_BUDGET_SECONDS,
    DEFAULT_SOAK_FAILURES_IN_A_ROW,
    DEFAULT_SOAK_INTERVAL_SECONDS,
    DEFAULT_SOAK_MAX_ERROR_PERCENT,
    DEFAULT_SOAK_SECONDS,
    DEFAULT_SOAK_WINDOW_SECONDS,
    MAX_SOAK_SECONDS,
)
from model.config_types import SoakConfig, StackConfig

REPO = Path(__file__).resolve().parents[2]


def _config(project: Path, soak: dict[str, int] | None = None) -> StackConfig:
    (project / "app").mkdir(exist_ok=True)
    (project / "app" / "Dockerfile").write_text("FROM scratch\n")
    app = {
        "name": "web",
        "namespace": "apps",
        "image": {"repository": "registry.example.com/platform/web", "context": "app"},
        "source": {
            "repoURL": "https://git.example.com/platform/deploy.git",
            "targetRevision": "main",
            "path": "charts/web",
            "type": "helm",
        },
        "health": {"url": "https://web.example.com/healthz"},
    }
    raw = {"registry": {"server": "registry.example.com", "username": "ci"}, "apps": [app]}
    if soak is not None:
        raw["deploy"] = {"soak": soak}
    return parse_config(raw, project)


def test_the_longest_soak_does_not_count_against_the_budget(tmp_path: Path) -> None:
    short, longest = _config(tmp_path, {"seconds": 0}), _config(tmp_path, {"seconds": MAX_SOAK_SECONDS})
    assert MAX_SOAK_SECONDS > DEFAULT_BUDGET_SECONDS, "a soak alone is longer than the whole budget"
    assert budget_problems(longest) == []
    assert [b.worst_case for b in app_budgets(longest)] == [b.worst_case for b in app_budgets(short)]


@pytest.mark.parametrize(
    ("soak", "words"),
    [
        (
            SoakConfig(),
            f"soak {human(DEFAULT_SOAK_SECONDS)} after the update, a probe every "
            f"{human(DEFAULT_SOAK_INTERVAL_SECONDS)}, failing on {DEFAULT_SOAK_FAILURES_IN_A_ROW} failed "
            f"probes in a row or on over {DEFAULT_SOAK_MAX_ERROR_PERCENT}% failed probes in "
            f"{human(DEFAULT_SOAK_WINDOW_SECONDS)}",
        ),
        (
            SoakConfig(seconds=120, interval_seconds=5, max_error_percent=100),
            "soak 2m after the update, a probe every 5s, failing on 3 failed probes in a row",
        ),
        (SoakConfig(seconds=0), "no soak (soak.seconds 0): promotable as soon as its health gate passes"),
    ],
    ids=["defaults", "one-rule", "off"],
)
def test_the_soak_in_words(soak: SoakConfig, words: str) -> None:
    assert soak_rules(soak) == words


def test_each_app_gets_its_own_soak_line(tmp_path: Path) -> None:
    [app] = _config(tmp_path, {"seconds": 600}).apps
    assert soak_line(app) == (
        "web: soak 10m after the update, a probe every 10s, failing on 3 failed probes in a row or on over "
        "50% failed probes in 1m; not part of the deploy budget "
        "(gitops-deploy:apps[0].soak over gitops-deploy:deploy.soak)"
    )
    off = dataclasses.replace(app, soak=SoakConfig(seconds=0))
    assert soak_line(off).startswith("web: no soak (soak.seconds 0)"), soak_line(off)


def test_python_m_model_budget_prints_the_budget_then_the_soak() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "model.budget"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    budget, soak = done.stdout.splitlines()
    assert f"of the {DEFAULT_BUDGET_SECONDS} s" in budget and "soak" not in budget, budget
    assert soak == f"then, apart from the budget, the default {soak_rules(SoakConfig())}", soak
