"""The README's two commands: `make up STACK=<stack>` runs the documented steps, `make test` the checks."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from offline.stack_files import PROJECT_DIR

# Records every call; `whoami` answers as FAKE_WHOAMI_RC says; `config set` reads its value from stdin.
FAKE_PULUMI = """#!/bin/sh
echo "$*" >> "$FAKE_PULUMI_LOG"
case "$1" in
  whoami) exit "${FAKE_WHOAMI_RC:-1}" ;;
  config) read -r value; echo "stdin: ${#value} chars" >> "$FAKE_PULUMI_LOG" ;;
esac
exit 0
"""
MAKE = shutil.which("make")


def _project(tmp_path: Path) -> Path:
    """A copy of what `make up` reads (stack files, requirements) with a virtualenv already installed."""
    project = tmp_path / "project"
    (project / "policies").mkdir(parents=True)
    (project / "tests/schemas").mkdir(parents=True)
    for name in (
        "requirements.txt",
        "requirements-dev.txt",
        "policies/requirements.txt",
        "tests/schemas/package.json",
        "tests/schemas/package-lock.json",
    ):
        shutil.copy(PROJECT_DIR / name, project / name)
    for stack_file in PROJECT_DIR.glob("Pulumi.*yaml"):
        shutil.copy(stack_file, project / stack_file.name)
    stamp = project / ".venv/.installed"
    stamp.parent.mkdir()
    stamp.touch()
    # Newer than the requirements files, so make does not reinstall the virtualenv.
    later = time.time() + 60
    os.utime(stamp, (later, later))
    return project


def _make(project: Path, *args: str, path: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The real Makefile, run in `project`, with only the given PATH and no Pulumi settings."""
    assert MAKE, "make is required (.ci/run installs it)"
    base = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_")}
    return subprocess.run(
        [MAKE, "-s", "-f", str(PROJECT_DIR / "Makefile"), *args],
        cwd=project,
        env={**base, "PATH": path, **env},
        input="Tst-pw-from-stdin\n",
        capture_output=True,
        text=True,
        timeout=60,
    )


def _make_up(tmp_path: Path, stack: str, **env: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """`make up STACK=<stack>` against a fake Pulumi CLI that records its calls."""
    project = _project(tmp_path)
    bin_dir, log = tmp_path / "bin", tmp_path / "pulumi.log"
    bin_dir.mkdir()
    fake = bin_dir / "pulumi"
    fake.write_text(FAKE_PULUMI)
    fake.chmod(0o755)
    proc = _make(
        project, "up", f"STACK={stack}", path=f"{bin_dir}:/usr/bin:/bin", FAKE_PULUMI_LOG=str(log), **env
    )
    return proc, log.read_text().splitlines() if log.exists() else []


def test_make_up_logs_in_to_a_file_backend_when_none_is_set(tmp_path: Path) -> None:
    proc, calls = _make_up(tmp_path, "dev")
    assert proc.returncode == 0, proc.stderr
    assert calls == [
        "whoami",
        f"login file://{tmp_path / 'project/.pulumi-state'}",
        "stack select --create dev",
        # The shipped stack files hold no password, so the first run asks for it.
        "config set --stack dev --secret gitops-deploy:registryPassword",
        "stdin: 17 chars",
        "up --stack dev --policy-pack policies --policy-pack-config policies/config.dev.json",
    ]
    assert (tmp_path / "project/.pulumi-state").is_dir()


@pytest.mark.parametrize(
    ("env", "first"),
    [({"PULUMI_BACKEND_URL": "s3://bucket/state"}, []), ({"FAKE_WHOAMI_RC": "0"}, ["whoami"])],
    ids=["backend-url-set", "already-logged-in"],
)
def test_make_up_keeps_a_configured_backend(tmp_path: Path, env: dict[str, str], first: list[str]) -> None:
    proc, calls = _make_up(tmp_path, "prod", **env)
    assert proc.returncode == 0, proc.stderr
    assert not any(c.startswith("login") for c in calls), calls
    assert calls[: len(first) + 1] == [*first, "stack select --create prod"]
    assert (
        calls[-1] == "up --stack prod --policy-pack policies --policy-pack-config policies/config.prod.json"
    )
    assert not (tmp_path / "project/.pulumi-state").exists()


def test_make_up_skips_the_password_prompt_when_the_stack_has_one(tmp_path: Path) -> None:
    project = _project(tmp_path / "x")
    stack_file = project / "Pulumi.dev.yaml"
    stack_file.write_text(
        stack_file.read_text() + "  gitops-deploy:registryPassword:\n    secure: v1:AAAA\n", encoding="utf-8"
    )
    bin_dir, log = tmp_path / "bin", tmp_path / "pulumi.log"
    bin_dir.mkdir()
    (bin_dir / "pulumi").write_text(FAKE_PULUMI)
    (bin_dir / "pulumi").chmod(0o755)
    proc = _make(project, "up", "STACK=dev", path=f"{bin_dir}:/usr/bin:/bin", FAKE_PULUMI_LOG=str(log))
    assert proc.returncode == 0, proc.stderr
    calls = log.read_text().splitlines()
    assert not any(c.startswith("config set") for c in calls), calls
    assert calls[-1].startswith("up --stack dev "), calls


def test_make_up_without_the_pulumi_cli_says_how_to_install_it(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = _make(_project(tmp_path), "up", "STACK=dev", path=str(empty))
    assert proc.returncode != 0
    assert "the Pulumi CLI is not on PATH" in proc.stderr and "pulumi.com/docs/install" in proc.stderr


def test_make_test_runs_ruff_mypy_and_pytest_in_the_venv(tmp_path: Path) -> None:
    project = _project(tmp_path)
    proc = _make(project, "-n", "test", path="/usr/bin:/bin")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        ".venv/bin/python -m ruff check .",
        ".venv/bin/python -m mypy .",
        # Argo CD's Application schema, pinned by the lock file (tests/support/argocd_schema.py).
        "cd tests/schemas && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error",
        "touch tests/schemas/node_modules/.package-lock.json",
        ".venv/bin/python -m pytest",
    ]
