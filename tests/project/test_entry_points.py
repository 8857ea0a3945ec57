"""`--help` on every entry point says what it does, its options and its exit codes.

`python -m policy_check --help` is tested with the check (tests/policy_check/test_check_report.py); `python -m
deploy` documents its own.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from model.stack_files import PROJECT_DIR

SCRIPTS = sorted(str(p.relative_to(PROJECT_DIR)) for p in (PROJECT_DIR / "benchmarks").glob("bench_*.py"))
ENTRY_POINTS = [*SCRIPTS, "examples/app/app.py", "policy_check/helm_worker.py"]


@pytest.mark.parametrize("script", ENTRY_POINTS)
def test_help_describes_the_command_and_its_exit_codes(script: str) -> None:
    done = subprocess.run(
        [sys.executable, str(PROJECT_DIR / script), "--help"],  # as `make bench` runs them
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert text.startswith("usage: "), text
    description = text.split("\n\n")[1]
    assert len(description) > 40, f"{script}: --help must say what it does:\n{text}"
    assert "exit codes:" in text and "\n  0  " in text and "\n  2  a bad option" in text, text


def test_the_example_app_says_why_it_cannot_listen(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-I", str(PROJECT_DIR / "examples/app/app.py")],
        env={"PORT": "not-a-port"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("error: cannot listen: ") and "Traceback" not in done.stderr
