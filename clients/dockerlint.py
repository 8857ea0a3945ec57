"""Lint every Dockerfile the stack builds, once each, before any resource is registered."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pulumi

from clients.hadolint import LEVELS, Finding, LintError, find_hadolint, run_hadolint
from model.budget import LINT_TIMEOUT_SECONDS
from model.build_context import MAX_DOCKERFILE_BYTES
from model.config import NAMESPACE, BuildConfig, StackConfig
from model.config_schema import UNTRUSTED_REGISTRY
from model.files import FileRefused, read_text
from model.runtime import RULE_LEVELS, check_dockerfile

__all__ = ["DockerfileLint", "LintError", "LintReport", "lint_stack"]


@dataclass(frozen=True)
class DockerfileLint:
    """The lint result of one Dockerfile and the apps that build from it."""

    dockerfile: Path
    """The Dockerfile (absolute)."""
    relative: str
    """Its path relative to the project directory, as reported."""
    apps: tuple[str, ...]
    failures: tuple[Finding, ...]
    """Findings at or above the threshold (and every untrusted-registry finding)."""
    warnings: tuple[Finding, ...]
    """Findings below the threshold, logged as warnings."""


@dataclass(frozen=True)
class LintReport:
    """What one lint run looked at and found."""

    threshold: str
    results: tuple[DockerfileLint, ...]
    """One entry per distinct Dockerfile, in app order."""

    @property
    def failed(self) -> bool:
        """Whether any Dockerfile has a finding that fails the run."""
        return any(r.failures for r in self.results)


def fails(finding: Finding, build: BuildConfig) -> bool:
    """Whether a finding fails the run under the stack's build settings."""
    if finding.code == UNTRUSTED_REGISTRY and build.trusted_registries:
        return True
    if build.lint_threshold == "none":
        return False
    return LEVELS.index(finding.level) >= LEVELS.index(build.lint_threshold)


def _line(f: Finding) -> str:
    return f"line {f.line}: {f.code} ({f.level}) {f.message}"


def _apps_label(apps: Sequence[str]) -> str:
    return ("app " if len(apps) == 1 else "apps ") + ", ".join(apps)


def failure_message(report: LintReport) -> str:
    """One readable error for every failing Dockerfile."""
    failing = [r for r in report.results if r.failures]
    count = sum(len(r.failures) for r in failing)
    lines = [
        f"Dockerfile lint failed: {count} finding(s) at or above gitops-deploy:build.lintThreshold "
        f"'{report.threshold}' in {len(failing)} Dockerfile(s):"
    ]
    for r in failing:
        lines.append(f"  {r.relative} ({_apps_label(r.apps)}):")
        lines.extend(f"    {_line(f)}" for f in r.failures)
    codes = {f.code for r in failing for f in r.failures}
    # hadolint reads its inline pragma; the runtime rules are ours and only build.ignore lowers them.
    inline = (
        " or put `# hadolint ignore=<code>` on the line above the instruction"
        if codes - set(RULE_LEVELS)
        else ""
    )
    runtime = " (or the app's runtime declaration)" if codes & set(RULE_LEVELS) else ""
    ignore = f"add the rule code to {NAMESPACE}:build.ignore{inline}"
    lines.append(f"Fix the Dockerfile{runtime}, or, after review, {ignore}.")
    return "\n".join(lines)


def lint_stack(
    cfg: StackConfig,
    *,
    binary: str | None = None,
    timeout: float = LINT_TIMEOUT_SECONDS,
    warn: Callable[[str], None] = pulumi.log.warn,
) -> LintReport:
    """Lint each distinct Dockerfile of the built apps; raise LintError on failing findings."""
    by_file: dict[Path, list[str]] = {}
    for app in cfg.built_apps:
        by_file.setdefault(app.image.dockerfile.resolve(), []).append(app.name)
    if not by_file:
        return LintReport(threshold=cfg.build.lint_threshold, results=())
    missing = [
        f"{_rel(path, cfg.project_dir)} ({_apps_label(apps)})"
        for path, apps in by_file.items()
        if not path.is_file()
    ]
    if missing:
        raise LintError("Dockerfile not found, so it cannot be linted: " + "; ".join(missing))
    found = run_hadolint(
        list(by_file),
        ignore=[code for code in cfg.build.ignore if code not in RULE_LEVELS],
        trusted_registries=cfg.build.trusted_registries,
        binary=binary or find_hadolint(),
        timeout=timeout,
    )
    for path, finding in _runtime_findings(cfg):
        if finding not in found.setdefault(path, []) and finding.code not in cfg.build.ignore:
            found[path].append(finding)
    results = []
    for path, apps in by_file.items():
        findings = sorted(found.get(path, []), key=lambda f: (f.line, f.code))
        results.append(
            DockerfileLint(
                dockerfile=path,
                relative=_rel(path, cfg.project_dir),
                apps=tuple(apps),
                failures=tuple(f for f in findings if fails(f, cfg.build)),
                warnings=tuple(f for f in findings if not fails(f, cfg.build)),
            )
        )
    report = LintReport(threshold=cfg.build.lint_threshold, results=tuple(results))
    for r in report.results:
        for f in r.warnings:
            tool = "runtime" if f.code in RULE_LEVELS else "hadolint"
            warn(f"{tool}: {r.relative} ({_apps_label(r.apps)}) {_line(f)}")
    if report.failed:
        raise LintError(failure_message(report))
    return report


def _runtime_findings(cfg: StackConfig) -> list[tuple[Path, Finding]]:
    """Each built app's Dockerfile against the runtime its build context declares."""
    out = []
    for app in cfg.built_apps:
        path = app.image.dockerfile.resolve()
        try:
            text = read_text(path, MAX_DOCKERFILE_BYTES)
        except FileRefused as exc:
            raise LintError(f"{_rel(path, cfg.project_dir)} ({_apps_label([app.name])}) {exc}") from None
        for f in check_dockerfile(text, _rel(path, cfg.project_dir), app.image.context, cfg.project_dir):
            out.append((path, Finding(path, f.line, f.code, RULE_LEVELS[f.code], f.message)))
    return out


def _rel(path: Path, project_dir: Path) -> str:
    """The path relative to the project, with forward slashes."""
    return Path(os.path.relpath(path, project_dir.resolve())).as_posix()
