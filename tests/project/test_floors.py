"""The floors `make test-floor` installs: read from every requirement file, each package once, at its floor.

`make test-floor` runs the suite on exactly those versions; these tests keep the pins complete and
honest, and hold the floor whose rule lives in an engine the suite cannot run (pulumi-kubernetes').
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from components.argo_wait import RFC9535_SINCE
from model.stack_files import PROJECT_DIR
from tests.support.floors import FloorError, floor, floors

MAKEFILE = PROJECT_DIR / "Makefile"


def _floor_files() -> list[Path]:
    """The files the Makefile's floor run reads (FLOOR_REQUIREMENTS)."""
    [line] = re.findall(r"^FLOOR_REQUIREMENTS := (.+)$", MAKEFILE.read_text(encoding="utf-8"), flags=re.M)
    return [PROJECT_DIR / name for name in line.split()]


def _pins() -> dict[str, Requirement]:
    return {canonicalize_name(pin.name): pin for pin in floors(_floor_files())}


def _requirement_files() -> list[Path]:
    """Every requirement file of the project, wherever it is."""
    skip = {".venv", ".venv-floor", "node_modules", ".git"}
    return [
        path
        for path in sorted(PROJECT_DIR.rglob("requirements*.txt"))
        if not skip & set(path.relative_to(PROJECT_DIR).parts)
    ]


def test_every_requirement_of_every_file_is_pinned_at_its_floor() -> None:
    """A requirement added to any requirement file is in the floor run, at the version its `>=` names."""
    pins = _pins()
    files = _requirement_files()
    assert {"requirements.txt", "requirements-dev.txt", "policies/requirements.txt"} <= {
        str(path.relative_to(PROJECT_DIR)) for path in files
    }
    for path in files:
        for line in path.read_text(encoding="utf-8").splitlines():
            line = line.split(" #", 1)[0].strip()
            if not line or line.startswith(("#", "-r ")):
                continue
            req = Requirement(line)
            [low] = [s.version for s in req.specifier if s.operator == ">="]
            assert str(pins[canonicalize_name(req.name)].specifier) == f"=={low}", (path, line)


def test_pins_keep_extras_and_markers_and_follow_includes(tmp_path: Path) -> None:
    (tmp_path / "base.txt").write_text("# runtime\nalpha[fast]>=1.2,<2  # why\n", encoding="utf-8")
    (tmp_path / "dev.txt").write_text(
        "-r base.txt\n\nbeta>=0.3 ; python_version < '4'\nalpha[fast]>=1.2,<2\n", encoding="utf-8"
    )
    pins = [str(pin) for pin in floors([tmp_path / "dev.txt", tmp_path / "base.txt"])]
    assert pins == ["alpha[fast]==1.2", 'beta==0.3; python_version < "4"']


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("gamma", "gamma has no single floor"),
        ("gamma<2", "gamma has no single floor"),
        ("gamma>=1,>=1.5", "gamma has no single floor"),
        ("gamma==1.*", "gamma has no single floor"),
        ("gamma>=2,<1", "gamma's floor 2 is outside its own range"),
        ("gamma @ https://example.invalid/gamma.whl", "gamma comes from a URL"),
        ("gamma>=", "is not a requirement"),
    ],
)
def test_a_requirement_without_one_usable_floor_is_refused(line: str, expected: str) -> None:
    with pytest.raises(FloorError, match=re.escape(expected)) as info:
        floor(line, "requirements.txt:3")
    assert str(info.value).startswith("requirements.txt:3: "), info.value


def test_two_files_naming_different_floors_for_one_package_are_refused(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("Delta_Pkg>=1.0,<2\n", encoding="utf-8")
    (tmp_path / "b.txt").write_text("# pack\ndelta-pkg>=1.1,<2\n", encoding="utf-8")
    with pytest.raises(FloorError, match=r"^b\.txt:2: delta-pkg ==1\.1 disagrees with a\.txt:1 \(==1\.0\)"):
        floors([tmp_path / "a.txt", tmp_path / "b.txt"])


def test_an_option_line_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("--index-url https://example.invalid/simple\n", encoding="utf-8")
    with pytest.raises(FloorError, match=r"^a\.txt:1: option '--index-url"):
        floors([tmp_path / "a.txt"])


def test_the_command_prints_the_pins_or_one_line_naming_the_problem(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "tests.support.floors"]
    ok = subprocess.run(
        [*command, *map(str, _floor_files())], cwd=PROJECT_DIR, capture_output=True, text=True, timeout=60
    )
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.splitlines() == [str(pin) for pin in _pins().values()]
    (tmp_path / "bad.txt").write_text("epsilon<3\n", encoding="utf-8")
    bad = subprocess.run(
        [*command, str(tmp_path / "bad.txt")], cwd=PROJECT_DIR, capture_output=True, text=True, timeout=60
    )
    assert (bad.returncode, bad.stdout) == (1, "")
    assert bad.stderr == "floors: bad.txt:1: epsilon has no single floor ('epsilon<3'); expected name>=X,<Y\n"


def test_the_waitfor_parser_floor_holds_in_the_requirements_and_in_the_installed_plugin() -> None:
    """pulumi-kubernetes' parser runs in its plugin, whose version the installed package names."""
    pin = _pins()["pulumi-kubernetes"]
    assert Version(str(pin.specifier).removeprefix("==")) >= Version(RFC9535_SINCE), pin
    plugin = json.loads(resources.files("pulumi_kubernetes").joinpath("pulumi-plugin.json").read_text())
    assert plugin["name"] == "kubernetes"
    assert Version(plugin["version"]) >= Version(RFC9535_SINCE), plugin
