"""The runtime lint in the Dockerfile lint: thresholds and `ignore`, the program's preview and the check."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from clients.dockerlint import LintError, lint_stack
from model.config import parse_config
from model.runtime import CONTRADICTS, MALFORMED, NOT_CHECKABLE
from policy_check.check import main
from policy_check.simulate import ProgramFailed, Simulation

FIXTURES = Path(__file__).parents[1] / "fixtures" / "runtime"


def _lint(tmp_path: Path, fixture: str, build: dict[str, Any] | None = None) -> tuple[Any, list[str]]:
    shutil.copytree(FIXTURES / fixture, tmp_path / "app")
    raw = {
        "registry": {"server": "registry.example.com", "username": "ci"},
        "build": build,
        "apps": [
            {
                "name": "web",
                "namespace": "team",
                "image": {"repository": "registry.example.com/team/web", "context": "app"},
                "source": {
                    "repoURL": "https://github.com/example-org/x.git",
                    "targetRevision": "main",
                    "path": "chart",
                    "type": "helm",
                },
                "health": {"url": "https://web.example.com/healthz"},
            }
        ],
    }
    warnings: list[str] = []
    return lint_stack(parse_config(raw, tmp_path), warn=warnings.append), warnings


def test_a_contradiction_fails_the_lint_by_default(tmp_path: Path) -> None:
    with pytest.raises(LintError) as err:
        _lint(tmp_path, "engines-contradicts")
    msg = str(err.value)
    assert "  app/Dockerfile (app web):\n" in msg, msg
    assert (
        f"    line 1: {CONTRADICTS} (error) base image node:18-alpine (app/Dockerfile line 1) runs node 18, "
        "but app/package.json line 4 declares node '>=20'"
    ) in msg, msg
    # hadolint's inline pragma cannot lower a runtime rule: the hint names only what can.
    assert msg.endswith(
        "Fix the Dockerfile (or the app's runtime declaration), or, after review, add the rule code to "
        "gitops-deploy:build.ignore."
    ), msg


def test_a_contradiction_is_lowered_by_the_threshold_or_skipped_by_ignore(tmp_path: Path) -> None:
    report, warnings = _lint(tmp_path / "a", "requires-python-contradicts", {"lintThreshold": "none"})
    assert not report.failed and [f.code for f in report.results[0].warnings] == [CONTRADICTS]
    assert warnings[0].startswith(f"runtime: app/Dockerfile (app web) line 1: {CONTRADICTS} (error)"), (
        warnings
    )
    report, warnings = _lint(tmp_path / "b", "requires-python-contradicts", {"ignore": [CONTRADICTS]})
    assert not report.failed and report.results[0].warnings == () and warnings == []


def test_not_checkable_is_reported_below_the_default_threshold_and_fails_at_info(tmp_path: Path) -> None:
    report, warnings = _lint(tmp_path / "a", "not-checkable")
    assert not report.failed
    assert warnings == [
        f"runtime: app/Dockerfile (app web) line 1: {NOT_CHECKABLE} (info) runtime not checkable: "
        "base image node:lts-alpine names no version; app/package.json line 1 declares node '>=20'"
    ], warnings
    with pytest.raises(LintError, match=NOT_CHECKABLE):
        _lint(tmp_path / "b", "not-checkable", {"lintThreshold": "info"})


def test_a_malformed_declaration_fails_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(LintError) as err:
        _lint(tmp_path, "malformed")
    [line] = [x for x in str(err.value).splitlines() if MALFORMED in x]
    assert "runtime declaration app/package.json cannot be read: " in line, line
    assert "Traceback" not in str(err.value)


@pytest.mark.parametrize("fixture", ["engines-agrees", "node-version-agrees", "python-version-agrees"])
def test_agreeing_fixtures_pass_clean(tmp_path: Path, fixture: str) -> None:
    report, warnings = _lint(tmp_path, fixture)
    assert not report.failed and report.results[0].warnings == () and warnings == []


def _contradict(project: Path) -> None:
    """The example app declares a Python its base image (python:3.12.8-slim) does not run."""
    (project / "examples/app/pyproject.toml").write_text(
        '[project]\nname = "app"\nversion = "1.0"\nrequires-python = ">=3.13"\n', encoding="utf-8"
    )


WANTED = f"{CONTRADICTS} (error) base image python:3.12.8-slim"


def test_a_preview_fails_with_the_finding_before_any_resource(
    example_copy: Path,
    run_program: Callable[..., Simulation],
    stack_config: Callable[[str], dict[str, Any]],
) -> None:
    _contradict(example_copy)
    cfg = stack_config("dev")
    cfg.pop("gitops-deploy:promote", None)
    with pytest.raises(ProgramFailed) as failed:
        run_program("dev", config=cfg, preview=True, project_dir=example_copy)
    assert isinstance(failed.value.cause, LintError), failed.value.cause
    assert WANTED in str(failed.value.cause)
    assert "examples/app/pyproject.toml line 4 declares python '>=3.13'" in str(failed.value.cause)
    assert failed.value.resources == []


@pytest.mark.grpc
@pytest.mark.parametrize("fmt", ["table", "json", "markdown"])
def test_the_check_reports_the_finding_in_every_format(
    example_copy: Path,
    fmt: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    _contradict(example_copy)
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    argv = ["--stack", "dev", "--no-render", "--format", fmt, "--project-dir", str(example_copy)]
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert WANTED in err and "::error" in err, err
    assert WANTED in summary.read_text(encoding="utf-8")
    if fmt == "json":
        assert WANTED in json.dumps(json.loads(out))
    elif fmt == "markdown":
        assert WANTED in out
