"""The README and the docs pages link to files and headings that exist (GitHub's heading anchors), and the
README's default figures (the sync wait, the health gate, the budget line, the timeline) are the code's."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from model.budget import app_budgets, human, info_line
from model.config import StackConfig, parse_config
from model.health_settings import DEFAULTS, limit
from model.stack_files import PROJECT_DIR

PAGES = [PROJECT_DIR / "README.md", *sorted((PROJECT_DIR / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def anchors(page: Path) -> set[str]:
    """The anchors GitHub gives a page's headings: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    headings = re.findall(r"^#{1,6} (.+)$", text, flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(PROJECT_DIR)))
def test_every_relative_link_resolves(page: Path) -> None:
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    for target in LINK.findall(text):
        if re.match(r"^[a-z]+:", target):
            continue  # https:, mailto:
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        assert linked.exists(), f"{page.name}: {target} does not exist"
        if anchor and linked.suffix == ".md":
            assert anchor in anchors(linked), f"{page.name}: no heading #{anchor} in {linked.name}"


# --- The README's default figures are the program's (it says what the code does) ---


def _default_stack(project: Path) -> StackConfig:
    """A stack that sets only what has no default: one app the stack builds, every other value left out."""
    (project / "app").mkdir()
    (project / "app" / "Dockerfile").write_text("FROM scratch\n", encoding="utf-8")
    raw = {
        "registry": {"server": "registry.example.com", "username": "ci"},
        "apps": [
            {
                "name": "web",
                "namespace": "web",
                "image": {"repository": "registry.example.com/platform/web", "context": "app"},
                "source": {
                    "repoURL": "https://github.com/example-org/gitops-deploy.git",
                    "targetRevision": "main",
                    "path": "examples/app/chart",
                    "type": "helm",
                },
                "health": {"url": "https://web.example.com/healthz"},
            }
        ],
    }
    return parse_config(raw, project)


def _flat(text: str) -> str:
    """Text with every run of whitespace as one space, so a line wrapped in a page still matches."""
    return " ".join(text.split())


def _readme() -> str:
    return (PROJECT_DIR / "README.md").read_text(encoding="utf-8")


def test_the_budget_line_in_the_readme_and_release_md_is_the_one_the_program_prints(tmp_path: Path) -> None:
    (budget,) = app_budgets(_default_stack(tmp_path))
    line = info_line(budget)
    assert line in _readme(), f"README.md: the default budget line is now:\n{line}"
    release = (PROJECT_DIR / "docs" / "release.md").read_text(encoding="utf-8")
    assert _flat(line) in _flat(release), f"docs/release.md: the default budget line is now:\n{line}"


def test_the_default_operation_wait_in_the_docs_is_the_programs(tmp_path: Path) -> None:
    (budget,) = app_budgets(_default_stack(tmp_path))
    [wait] = budget.before
    release = _flat((PROJECT_DIR / "docs" / "release.md").read_text(encoding="utf-8"))
    assert f"what the budget leaves, {wait.seconds:g} s by default" in _flat(_readme())
    assert f"after the longest path below ({wait.seconds:g} s by default)" in release


def test_the_readme_timeline_and_defaults_are_the_programs(tmp_path: Path) -> None:
    cfg = _default_stack(tmp_path)
    sync, gate = cfg.argocd.sync_timeout_seconds, cfg.apps[0].health.budget_seconds
    budget, grace = cfg.deploy.budget_seconds, cfg.deploy.degraded_grace_seconds
    readme = _flat(_readme())
    expected = [
        f"syncTimeoutSeconds: {sync},",
        f"{{budgetSeconds: {budget}, degradedGraceSeconds: {grace}}}",
        f"`argocd.syncTimeoutSeconds` (default **{sync} s**)",
        f"`deploy.degradedGraceSeconds` (default {grace} s)",
        f"| the wait | {sync} s (never Healthy), or {grace} s after Argo CD reports it Degraded | {sync} s |",
        f"| {gate:g} s |",
        f"at most 2 \N{MULTIPLICATION SIGN} ({sync} + {gate:g} s) = {human(2 * (sync + gate))}",
    ]
    for text in expected:
        assert text in readme, f"README.md does not say {text!r}"


def test_the_readme_app_example_shows_the_health_defaults(tmp_path: Path) -> None:
    """The `Each app:` example spells out the health settings and the replicas at their defaults."""
    blocks = re.findall(r"```yaml\n(.*?)```", _readme(), flags=re.S)
    (example,) = [yaml.safe_load(b)[0] for b in blocks if b.startswith("- name: ")]
    app = _default_stack(tmp_path).apps[0]
    assert example["replicas"] == app.replicas
    for name, default in DEFAULTS.items():
        key = limit(name).key
        assert example["health"].get(key, default) == default, f"README.md: health.{key} is now {default}"
    shown = {limit(name).key for name in DEFAULTS} & set(example["health"])
    assert {"attempts", "intervalSeconds", "timeoutSeconds", "successThreshold"} <= shown


def test_health_md_states_the_default_worst_case(tmp_path: Path) -> None:
    health = _default_stack(tmp_path).apps[0].health
    text = (
        f"With the defaults ({health.attempts} attempts, {health.interval_seconds:g} s interval, "
        f"{health.timeout_seconds:g} s timeout) that is {health.budget_seconds:g} s"
    )
    page = (PROJECT_DIR / "docs" / "health.md").read_text(encoding="utf-8")
    assert text in _flat(page), f"docs/health.md does not say {text!r}"
