"""What the render modules share: the error they raise and YAML splitting."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml


class RenderError(Exception):
    """The engine could not render the source; the message is the engine's, plus the file when known."""


def relative(path: Path, project_dir: Path) -> str:
    """`path` relative to the project, POSIX style, or absolute when it lies outside."""
    try:
        return path.resolve().relative_to(project_dir.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def parse_documents(text: str, origin: str) -> list[dict[str, Any]]:
    """Every non-empty YAML document of a rendered stream, each a Kubernetes object."""
    try:
        documents = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        raise RenderError(f"{origin}: rendered output is not valid YAML: {exc}") from exc
    objects: list[dict[str, Any]] = []
    for doc in documents:
        if doc is None:
            continue
        if not isinstance(doc, dict) or not doc.get("apiVersion") or not doc.get("kind"):
            raise RenderError(
                f"{origin}: rendered a document that is not a Kubernetes object (no apiVersion/kind)"
            )
        if doc["kind"].endswith("List") and isinstance(doc.get("items"), list):
            objects.extend(item for item in doc["items"] if isinstance(item, dict))
        else:
            objects.append(doc)
    return objects


def run_bounded(
    argv: list[str], *, timeout: float, what: str, stdin: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a command with a hard timeout; a hang becomes a RenderError naming `what`."""
    try:
        return subprocess.run(
            argv, input=stdin, capture_output=True, text=True, timeout=timeout, cwd=cwd, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise RenderError(f"{what} did not finish within {timeout:g}s") from exc
    except OSError as exc:
        raise RenderError(f"{what} could not start: {exc}") from exc


PYTHON = sys.executable
"""The interpreter that runs the Helm worker: the one running this check."""
