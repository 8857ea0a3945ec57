"""The README's commands, run for real: `make up STACK=<stack>`, `make preview`, `make test`, `test-fast`;
and `make test-floor` (docs/testing.md).

Each runs the real Makefile in a project of the test's own, with stand-ins for the Pulumi and Docker
CLIs that record their calls, and a virtualenv that is either already installed or must not be built.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from model.stack_files import PROJECT_DIR
from tests.support.example_project import FIXTURES

# Records every call; `whoami` answers as FAKE_WHOAMI_RC says; `config set` reads its value from stdin.
FAKE_PULUMI = """#!/bin/sh
echo "$*" >> "$FAKE_PULUMI_LOG"
case "$1" in
  whoami) exit "${FAKE_WHOAMI_RC:-1}" ;;
  config) read -r value; echo "stdin: ${#value} chars" >> "$FAKE_PULUMI_LOG" ;;
esac
exit 0
"""
# `docker info` answers as FAKE_DOCKER_RC says (0: an engine answers).
FAKE_DOCKER = """#!/bin/sh
echo "docker $*" >> "$FAKE_PULUMI_LOG"
exit "${FAKE_DOCKER_RC:-0}"
"""
MAKE = shutil.which("make")
MAKEFILE = PROJECT_DIR / "Makefile"


def _project(tmp_path: Path, *, venv: bool = True) -> Path:
    """What `make up` reads (requirements, stack files of the test's own), with or without a virtualenv."""
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
    for stack in ("dev", "prod"):
        shutil.copy(FIXTURES / f"Pulumi.{stack}.yaml", project / f"Pulumi.{stack}.yaml")
    if venv:
        stamp = project / ".venv/.installed"
        stamp.parent.mkdir()
        stamp.touch()
        # Newer than the requirements files, so make does not reinstall the virtualenv.
        later = time.time() + 60
        os.utime(stamp, (later, later))
    return project


def _bin(tmp_path: Path, *, pulumi: bool = True, docker: bool = True) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, script, wanted in (("pulumi", FAKE_PULUMI, pulumi), ("docker", FAKE_DOCKER, docker)):
        if wanted:
            (bin_dir / name).write_text(script)
            (bin_dir / name).chmod(0o755)
    return bin_dir


def _make(project: Path, *args: str, path: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The real Makefile, run in `project`, with only the given PATH and no Pulumi settings."""
    assert MAKE, "make is required (.ci/run installs it)"
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PULUMI_", "DOCKER_"))}
    return subprocess.run(
        [MAKE, "-s", "-f", str(MAKEFILE), *args],
        cwd=project,
        env={**base, "PATH": path, **env},
        input="Tst-pw-from-stdin\n",
        capture_output=True,
        text=True,
        timeout=120,
    )


def _run(
    tmp_path: Path,
    target: str,
    stack: str,
    *,
    project: Path | None = None,
    docker_rc: int = 0,
    env: dict[str, str] | None = None,
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """`make <target> STACK=<stack>` against stand-in Pulumi and Docker CLIs that record their calls."""
    project = project or _project(tmp_path)
    log = tmp_path / "calls.log"
    bin_dir = _bin(tmp_path)
    proc = _make(
        project,
        target,
        f"STACK={stack}",
        path=f"{bin_dir}:/usr/bin:/bin",
        FAKE_PULUMI_LOG=str(log),
        FAKE_DOCKER_RC=str(docker_rc),
        **(env or {}),
    )
    return proc, log.read_text().splitlines() if log.exists() else []


# --- make up / make preview --------------------------------------------------------------------------


def test_make_up_logs_in_to_a_file_backend_when_none_is_set(tmp_path: Path) -> None:
    proc, calls = _run(tmp_path, "up", "dev")
    assert proc.returncode == 0, proc.stderr
    assert calls == [
        "docker info",
        "whoami",
        f"login file://{tmp_path / 'project/.pulumi-state'}",
        "stack select --create dev",
        # The stack file holds no password yet, so the first run asks for it.
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
    proc, calls = _run(tmp_path, "up", "prod", env=env)
    assert proc.returncode == 0, proc.stderr
    assert not any(c.startswith("login") for c in calls), calls
    assert calls[: len(first) + 1] == [*first, "stack select --create prod"], "prod promotes: no Docker"
    assert (
        calls[-1] == "up --stack prod --policy-pack policies --policy-pack-config policies/config.prod.json"
    )
    assert not (tmp_path / "project/.pulumi-state").exists()


def test_make_up_skips_the_password_prompt_once_the_stack_has_one(tmp_path: Path) -> None:
    """What the first `make up` leaves: an encrypted password and a salt in the stack file."""
    project = _project(tmp_path)
    stack_file = project / "Pulumi.dev.yaml"
    stack_file.write_text(
        "encryptionsalt: v1:c2FsdA==:v1:aXY=:Y2lwaGVy\n"
        + stack_file.read_text()
        + "  gitops-deploy:registryPassword:\n    secure: v1:AAAA\n",
        encoding="utf-8",
    )
    proc, calls = _run(tmp_path, "up", "dev", project=project)
    assert proc.returncode == 0, proc.stderr
    assert not any(c.startswith("config set") for c in calls), calls
    assert calls[-1].startswith("up --stack dev "), calls


def test_without_the_pulumi_cli_nothing_is_installed_and_the_check_is_named(tmp_path: Path) -> None:
    project = _project(tmp_path, venv=False)
    for target in ("up", "preview"):
        proc = _make(project, target, "STACK=dev", path=f"{_bin(tmp_path, pulumi=False)}:/usr/bin:/bin")
        assert proc.returncode != 0
        assert f"make {target}: the Pulumi CLI is not on PATH" in proc.stderr, proc.stderr
        assert "pulumi.com/docs/install" in proc.stderr
        assert "`make policy-check STACK=dev`" in proc.stderr
        assert not (project / ".venv").exists(), "checked before the virtualenv is built"


@pytest.mark.parametrize("target", ["up", "preview"])
def test_a_stack_that_builds_needs_a_docker_engine_first(tmp_path: Path, target: str) -> None:
    project = _project(tmp_path, venv=False)
    proc, calls = _run(tmp_path, target, "dev", project=project, docker_rc=1)
    assert proc.returncode != 0
    assert f"make {target}: no Docker engine answers" in proc.stderr, proc.stderr
    assert "`make policy-check STACK=dev`" in proc.stderr
    assert ("onPreview: false" in proc.stderr) == (target == "preview")
    assert calls == ["docker info"], "nothing else runs"
    assert not (project / ".venv").exists(), "checked before the virtualenv is built"


def test_stacks_that_build_nothing_here_need_no_docker_engine(tmp_path: Path) -> None:
    promoting, calls = _run(tmp_path, "preview", "prod", docker_rc=1)
    assert promoting.returncode == 0, promoting.stderr
    assert "docker info" not in calls and calls[-1].startswith("preview --diff --stack prod "), calls
    project = _project(tmp_path / "no-build-on-preview")
    stack_file = project / "Pulumi.dev.yaml"
    stack_file.write_text(stack_file.read_text().replace("onPreview: true", "onPreview: false"))
    preview, calls = _run(tmp_path / "no-build-on-preview", "preview", "dev", project=project, docker_rc=1)
    assert preview.returncode == 0, preview.stderr
    assert "docker info" not in calls, calls
    up, _ = _run(tmp_path / "no-build-on-preview", "up", "dev", project=project, docker_rc=1)
    assert up.returncode != 0 and "no Docker engine answers" in up.stderr, "`up` still builds and pushes"


# --- make test / make test-fast ----------------------------------------------------------------------

MARKED = """
import pytest


def test_fast() -> None:
    assert True


@pytest.mark.registry
def test_registry() -> None:
    assert True


@pytest.mark.render
def test_render() -> None:
    assert True


@pytest.mark.grpc
def test_grpc() -> None:
    assert True


@pytest.mark.docker
def test_docker() -> None:
    assert True


@pytest.mark.cli
def test_cli() -> None:
    assert True
"""


def _suite(tmp_path: Path, source: str = "from __future__ import annotations\n") -> Path:
    """A project whose suite has one fast test and one test per slow marker, with this pyproject.toml."""
    project = _project(tmp_path, venv=False)
    shutil.copy(PROJECT_DIR / "pyproject.toml", project / "pyproject.toml")
    (project / "policies/__main__.py").write_text(source)
    (project / "tests/__init__.py").write_text("")
    (project / "tests/test_suite.py").write_text("from __future__ import annotations\n" + MARKED)
    (project / "tests/support").mkdir()
    shutil.copy(PROJECT_DIR / "tests/support/floors.py", project / "tests/support/floors.py")
    stamp = project / "tests/schemas/node_modules/.package-lock.json"
    stamp.parent.mkdir(parents=True)
    # A virtualenv that runs this one's interpreter, newer than every file it is built from.
    python = project / "venv/bin/python"
    python.parent.mkdir(parents=True)
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    # The floor run's virtualenv: the same interpreter, logging how it was called.
    floor = project / "floor/bin/python"
    floor.parent.mkdir(parents=True)
    floor.write_text(f'#!/bin/sh\necho "$*" >> "{project}/floor.log"\nexec "{sys.executable}" "$@"\n')
    floor.chmod(0o755)
    for done in (stamp, project / "venv/.installed", project / "floor/.installed"):
        done.touch()
        later = time.time() + 60
        os.utime(done, (later, later))
    return project


def _pytest_summary(out: str) -> str:
    [line] = [line for line in out.splitlines() if re.search(r"\d+ passed", line)]
    return line


@pytest.mark.parametrize(
    ("target", "summary"),
    [("test", "6 passed"), ("test-fast", "1 passed, 5 deselected")],
)
def test_make_test_runs_everything_and_test_fast_skips_the_slow_markers(
    tmp_path: Path, target: str, summary: str
) -> None:
    project = _suite(tmp_path)
    proc = _make(project, target, "VENV=venv", path="/usr/bin:/bin")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert summary in _pytest_summary(proc.stdout), proc.stdout


@pytest.mark.parametrize("target", ["test", "test-fast"])
def test_a_lint_finding_fails_before_any_test_runs(tmp_path: Path, target: str) -> None:
    project = _suite(tmp_path, source="import os\n")  # F401: os is imported but unused
    proc = _make(project, target, "VENV=venv", path="/usr/bin:/bin")
    assert proc.returncode != 0
    assert "F401" in proc.stdout + proc.stderr
    assert not re.search(r"\d+ passed", proc.stdout), "pytest must not run"


def test_make_test_floor_runs_all_but_the_cli_cases_in_the_floor_virtualenv_without_lint(
    tmp_path: Path,
) -> None:
    """The floors judge the versions, not the code: a lint finding does not stop it (`make test` does)."""
    project = _suite(tmp_path, source="import os\n")
    proc = _make(project, "test-floor", "VENV=venv", "FLOOR_VENV=floor", path="/usr/bin:/bin")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "5 passed, 1 deselected" in _pytest_summary(proc.stdout), proc.stdout
    assert "F401" not in proc.stdout + proc.stderr
    assert (project / "floor.log").read_text().splitlines() == ["-m pytest -p no:cacheprovider -m not cli"]


def test_the_floor_virtualenv_is_rebuilt_from_the_pins_when_a_requirement_file_changes(
    tmp_path: Path,
) -> None:
    project = _suite(tmp_path)
    plan = ("-n", "test-floor", "VENV=venv", "FLOOR_VENV=floor")  # -n: print the recipes, run none
    kept = _make(project, *plan, path="/usr/bin:/bin")
    assert kept.returncode == 0 and "pip install" not in kept.stdout, kept.stdout
    os.utime(project / "policies/requirements.txt", (time.time() + 120, time.time() + 120))
    rebuilt = _make(project, *plan, path="/usr/bin:/bin")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert rebuilt.stdout.splitlines()[:5] == [
        "rm -rf floor",
        "python3 -m venv floor",
        "floor/bin/python -m pip install --quiet --upgrade pip packaging",
        "floor/bin/python -m tests.support.floors requirements-dev.txt policies/requirements.txt"
        " > floor/floors.txt",
        "floor/bin/python -m pip install --quiet -r floor/floors.txt",
    ]


def test_the_readme_commands_are_targets_of_the_makefile() -> None:
    """Every `make ...` line of the README names a target the Makefile has."""
    readme = (PROJECT_DIR / "README.md").read_text(encoding="utf-8")
    commands = re.findall(r"^\s*make ([a-z-]+)", readme, flags=re.M)
    assert {"up", "test", "policy-check"} <= set(commands), commands
    targets = set(re.findall(r"^([a-z][a-z-]*):", MAKEFILE.read_text(encoding="utf-8"), flags=re.M))
    assert set(commands) <= targets, set(commands) - targets
