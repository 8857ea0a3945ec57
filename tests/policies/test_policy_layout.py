"""policies/ is the CrossGuard pack and nothing else, and its rules load under one name: `rules`."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from model.stack_files import PROJECT_DIR

PACK = PROJECT_DIR / "policies"
PACK_FILES = {"PulumiPolicy.yaml", "__main__.py", "requirements.txt", "rules"}
"""What the pack runs (`pulumi policy publish` uploads the folder); besides these, per-stack configs."""
CACHES = {"__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache"}


def test_the_pack_folder_holds_only_what_the_pack_runs() -> None:
    entries = {p.name for p in PACK.iterdir() if p.name not in CACHES}
    configs = {name for name in entries if name.startswith("config.") and name.endswith(".json")}
    assert entries - configs == PACK_FILES


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
    return found


def test_no_module_imports_the_pack_under_another_name() -> None:
    skip = {".venv", ".git", "node_modules", *CACHES}
    for path in PROJECT_DIR.rglob("*.py"):
        if skip & set(path.relative_to(PROJECT_DIR).parts):
            continue
        wrong = {m for m in _imports(path) if m == "policies" or m.startswith("policies.")}
        assert not wrong, f"{path.relative_to(PROJECT_DIR)} imports {wrong}: import the rules as `rules`"


def test_the_rules_refuse_a_second_name() -> None:
    """`policies` has no __init__.py, but Python would still import it as a namespace package."""
    second = subprocess.run(
        [sys.executable, "-c", "import policies.rules"],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode != 0
    assert "the policy pack's rules were imported as 'policies.rules'" in second.stderr
    # As the pack loads them: its folder first on sys.path (python -m pulumi.policy <engine> . in it).
    first = subprocess.run(
        [sys.executable, "-c", "import sys; sys.path.insert(0, '.'); import rules; print(rules.__file__)"],
        cwd=PACK,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert first.returncode == 0, first.stderr
    assert Path(first.stdout.strip()) == PACK / "rules" / "__init__.py"


def test_this_run_loaded_the_rules_once() -> None:
    import rules

    assert Path(rules.__file__ or "") == PACK / "rules" / "__init__.py"
    assert not [name for name in sys.modules if name == "policies" or name.startswith("policies.")]
