"""The README and the docs pages: links resolve, the README stays short and leads, and the output it shows
is what the check, the program and the deploy record print today."""

from __future__ import annotations

import re
from contextlib import redirect_stdout
from io import StringIO
from pathlib import Path

import pytest
import yaml

from deploy.outcome import build_record
from model.budget import app_budgets, info_line
from model.config import StackConfig, parse_config
from model.record_table import render_text
from model.stack_files import PROJECT_DIR
from policy_check.check import main as check_main
from policy_check.simulate import Simulation, simulate
from tests.conftest import TEST_PASSWORD
from tests.support.engine_events import load_case
from tests.support.example_project import FIXTURES, make_example_project

README = PROJECT_DIR / "README.md"
PAGES = [README, *sorted((PROJECT_DIR / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")
DOC_PATH = re.compile(r"(?<![\w\"'/!])docs/[a-z][a-z-]+\.md\b")
"""A page of docs/ named in a file, as prose names it (not a quoted path in a test's made-up tree)."""
README_MAX_LINES = 160
FIRST_RESULT_WITHIN = 40
ELISION = "…"
"""A line of its own in a shown output block: lines of the real output are left out there."""


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


def _project_files() -> list[Path]:
    """The files a maintainer reads besides the docs: code, workflows, stack and project files, tests."""
    found = [
        p
        for pattern in ("*.py", "*.yaml", "*.yml", "Makefile")
        for p in PROJECT_DIR.rglob(pattern)
        if not {".venv", ".venv-floor", "node_modules", ".git"} & set(p.relative_to(PROJECT_DIR).parts)
    ]
    return [*found, *PAGES]


def test_every_docs_page_named_in_the_project_exists() -> None:
    """A `docs/<page>.md` named in code, tests, workflows, stack files or the docs is a page of docs/."""
    missing = {
        f"{path.relative_to(PROJECT_DIR)}: {name}"
        for path in _project_files()
        for name in DOC_PATH.findall(path.read_text(encoding="utf-8", errors="replace"))
        if not (PROJECT_DIR / name).exists()
    }
    assert not missing, sorted(missing)


PROJECT_PATH = re.compile(
    r"(?<![\w./-])((?:model|clients|components|deploy|policy_check|policies|tests|benchmarks|examples|\.github)"
    r"/[\w./<>{}*$-]*[\w>*])(?![\w./$<{*-])"
)
"""A path into the project's own folders, as the docs name code, tests and examples."""


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(PROJECT_DIR)))
def test_every_project_path_a_page_names_exists(page: Path) -> None:
    """Code, tests and examples the docs point at are where the docs say (globs and placeholders aside)."""
    named = set(PROJECT_PATH.findall(page.read_text(encoding="utf-8")))
    missing = sorted(p for p in named if not re.search(r"[*<{$]", p) and not (PROJECT_DIR / p).exists())
    assert not missing, f"{page.name} names paths that do not exist: {missing}"


# --- The README leads: short, the no-infrastructure result first, its shown output real ---


def _readme() -> str:
    return README.read_text(encoding="utf-8")


def _console_block(first_line: str) -> list[str]:
    """The lines of the README's ```console block that starts with `first_line`, after that line."""
    for block in re.findall(r"```console\n(.*?)```", _readme(), flags=re.S):
        lines = block.splitlines()
        if lines and lines[0] == first_line:
            return lines[1:]
    raise AssertionError(f"README.md has no console block starting {first_line!r}")


def _assert_shown(shown: list[str], printed: str, what: str) -> None:
    """The shown lines are the printed ones, in order; an elision line stands for lines left out there."""
    lines, at = printed.splitlines(), 0
    runs = "\n".join(shown).split(ELISION)
    for i, run in enumerate(r.strip("\n").splitlines() for r in runs):
        if not run:
            continue  # the block starts or ends with an elision
        starts = [k for k in range(at, len(lines) - len(run) + 1) if lines[k : k + len(run)] == run]
        first, last = i == 0, i == len(runs) - 1
        ok = (
            bool(starts)
            and (not first or starts[0] == 0)
            and (not last or starts[-1] + len(run) == len(lines))
        )
        assert ok, f"README.md: {what} now prints:\n{printed}"
        at = (starts[-1] if last else starts[0]) + len(run)


def test_the_readme_is_at_most_160_lines() -> None:
    count = len(_readme().splitlines())
    assert count <= README_MAX_LINES, f"README.md has {count} lines; at most {README_MAX_LINES}"


def test_the_readme_starts_with_the_two_commands_then_the_no_infrastructure_result() -> None:
    lines = _readme().splitlines()
    first = {
        cmd: next(i for i, line in enumerate(lines) if line.startswith(cmd))
        for cmd in ("make up STACK=dev", "make test", "$ make policy-check STACK=dev")
    }
    assert first["make up STACK=dev"] < first["make test"] < first["$ make policy-check STACK=dev"]
    assert first["$ make policy-check STACK=dev"] < FIRST_RESULT_WITHIN, first


def _shipped_project(root: Path) -> Path:
    """A project of the tests' own with the dev stack file exactly as the project ships it.

    The fixture is that file behind a two-line header, which would shift the line numbers the check prints.
    """
    project = make_example_project(root)
    fixture = (FIXTURES / "Pulumi.dev.yaml").read_text(encoding="utf-8").splitlines(keepends=True)
    assert fixture[0].startswith("# Test fixture") and fixture[1].startswith("# use this copy")
    (project / "Pulumi.dev.yaml").write_text("".join(fixture[2:]), encoding="utf-8")
    return project


def test_the_readme_shows_what_the_policy_check_prints(tmp_path: Path) -> None:
    shown = _console_block("$ make policy-check STACK=dev")
    assert shown[0] == '.venv/bin/python -m policy_check --stack "dev"', "make echoes the command first"
    out = StringIO()
    with redirect_stdout(out):
        code = check_main(["--stack", "dev", "--project-dir", str(_shipped_project(tmp_path / "p"))])
    assert code == 0
    _assert_shown(shown[1:], out.getvalue(), "`python -m policy_check --stack dev`")


def resource_tree(sim: Simulation) -> str:
    """The Type/Name/Status tree `pulumi up` prints for what the program registers.

    Siblings come in the order they depend on each other (registration order varies from run to run).
    """
    stack = f"gitops-deploy-{sim.stack}"
    by_urn = {r.urn: r for r in sim.resources}
    children: dict[str, list[str]] = {}
    for r in sim.resources:
        children.setdefault(r.parent if r.parent in by_urn else stack, []).append(r.urn)

    def rank(urn: str) -> int:
        """How long a chain of dependencies comes first; a component's, its first descendant's."""
        if not by_urn[urn].custom:
            return min((rank(kid) for kid in children.get(urn, [])), default=0)
        return 1 + max((rank(dep) for dep in by_urn[urn].dependencies if dep in by_urn), default=-1)

    for kids in children.values():
        kids.sort(key=lambda urn: (rank(urn), not by_urn[urn].custom, by_urn[urn].name))
    rows = [("pulumi:pulumi:Stack", stack)]

    def walk(parent: str, indent: str) -> None:
        kids = children.get(parent, [])
        for i, urn in enumerate(kids):
            last = i == len(kids) - 1
            rows.append((f"{indent}{'└─' if last else '├─'} {by_urn[urn].type}", by_urn[urn].name))
            walk(urn, indent + ("   " if last else "│  "))

    walk(stack, "")
    width = max(len(t) for t, _ in rows) + 2
    name_width = max(len(n) for _, n in rows) + 2
    lines = [f"     {'Type':<{width}}{'Name':<{name_width}}Status"]
    lines += [f" +   {t:<{width}}{n:<{name_width}}created" for t, n in rows]
    return "\n".join(lines) + "\n"


def test_the_readme_shows_the_resource_tree_the_program_registers(tmp_path: Path) -> None:
    sim = simulate("dev", project_dir=_shipped_project(tmp_path / "p"), password=TEST_PASSWORD)
    _assert_shown(_console_block("$ make up STACK=dev"), resource_tree(sim), "the dev stack's resource tree")


def test_the_readme_shows_the_deploy_record_table() -> None:
    table = render_text(build_record("dev", load_case("good"), "succeeded"))
    _assert_shown(_console_block("$ .venv/bin/python -m deploy up --stack dev"), table, "the record table")


def test_the_readme_stack_example_is_a_valid_stack_config() -> None:
    """The README's first stack file parses as the program reads it, with every other key at its default."""
    blocks = re.findall(r"```yaml\n(.*?)```", _readme(), flags=re.S)
    (example,) = [yaml.safe_load(b) for b in blocks if b.startswith("config:")]
    raw = {key.removeprefix("gitops-deploy:"): value for key, value in example["config"].items()}
    assert parse_config(raw, PROJECT_DIR).apps


# --- Figures derived from the defaults are the code's, where a page states them ---


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


def _page(name: str) -> str:
    return _flat((PROJECT_DIR / "docs" / name).read_text(encoding="utf-8"))


def test_release_md_shows_the_budget_line_the_program_prints(tmp_path: Path) -> None:
    (budget,) = app_budgets(_default_stack(tmp_path))
    line = info_line(budget)
    assert _flat(line) in _page("release.md"), f"docs/release.md: the default budget line is now:\n{line}"


def test_health_md_states_the_default_worst_case(tmp_path: Path) -> None:
    health = _default_stack(tmp_path).apps[0].health
    text = (
        f"With the defaults ({health.attempts} attempts, {health.interval_seconds:g} s interval, "
        f"{health.timeout_seconds:g} s timeout) that is {health.budget_seconds:g} s"
    )
    assert text in _page("health.md"), f"docs/health.md does not say {text!r}"
