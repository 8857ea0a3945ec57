"""Render a local Helm chart as Argo CD would, through Helm's own engine in a worker process."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from offline.render_common import PYTHON, RenderError, parse_documents, relative, run_bounded

HELM_TIMEOUT_SECONDS = 60.0
"""Upper bound on one chart render, worker start-up included."""

WORKER = Path(__file__).with_name("helm_worker.py")
"""Run by path in isolated mode: it needs only helm_python, not this project on sys.path."""

SUPPORTED_KEYS = frozenset({"valuesObject", "values", "valueFiles", "parameters", "releaseName"})
"""`spec.source.helm` keys the render honours; any other key is a render error, never ignored."""


def _value_files(chart_dir: Path, project_dir: Path, files: Any) -> list[str]:
    """Absolute paths of `helm.valueFiles`, which must be files of this repository."""
    if not isinstance(files, list):
        raise RenderError(f"helm.valueFiles: expected a list of paths, got {files!r}")
    paths = []
    for entry in files:
        path = (chart_dir / str(entry)).resolve()
        if not path.is_file() or not path.is_relative_to(project_dir.resolve()):
            raise RenderError(f"helm.valueFiles: {entry!r} is not a file of this repository")
        paths.append(str(path))
    return paths


def _template_path(chart_dir: Path, project_dir: Path, chart: str, key: str) -> str:
    """`app/templates/x.yaml` (the engine's name) as the project path of the file."""
    inner = key.split("/", 1)[1] if key.startswith(f"{chart}/") else key
    return relative(chart_dir / inner, project_dir)


def _name_template(message: str, chart_dir: Path, project_dir: Path, chart: str) -> str:
    """Append the project path of the template the engine's message points at."""
    match = re.search(rf"{re.escape(chart)}/((?:charts/[^/\s]+/)*templates/[^\s:)\"']+)", message)
    if not match:
        return message
    return f"{message} (template {relative(chart_dir / match.group(1), project_dir)})"


def render_helm(
    chart_dir: Path,
    helm_source: Mapping[str, Any],
    *,
    release: str,
    namespace: str,
    project_dir: Path,
    timeout: float = HELM_TIMEOUT_SECONDS,
) -> list[tuple[str, dict[str, Any]]]:
    """(template path, object) for everything the chart renders with the Application's values."""
    unknown = sorted(set(helm_source) - SUPPORTED_KEYS)
    if unknown:
        raise RenderError(f"helm.{unknown[0]} is not supported by the offline render")
    request = {
        "chart_dir": str(chart_dir),
        "release": str(helm_source.get("releaseName") or release),
        "namespace": namespace,
        "value_files": _value_files(chart_dir, project_dir, helm_source.get("valueFiles") or []),
        "values_yaml": helm_source.get("values"),
        "values_object": helm_source.get("valuesObject"),
        "parameters": helm_source.get("parameters") or [],
    }
    done = run_bounded(
        [PYTHON, "-I", str(WORKER)], stdin=json.dumps(request), timeout=timeout, what="helm template"
    )
    try:
        answer = json.loads(done.stdout)
    except json.JSONDecodeError:
        raise RenderError(
            f"helm worker failed (exit {done.returncode}): {done.stderr.strip()[-2000:]}"
        ) from None
    if "error" in answer:
        raise RenderError(_name_template(answer["error"], chart_dir, project_dir, _chart_name(chart_dir)))
    chart = answer["chart"]
    rendered: list[tuple[str, dict[str, Any]]] = []
    for crd in answer.get("crds") or []:
        path = relative(chart_dir / str(crd.get("filename", "crds")), project_dir)
        rendered.extend((path, obj) for obj in parse_documents(str(crd.get("data", "")), path))
    for key in sorted(answer["manifests"]):
        if key.endswith("NOTES.txt"):
            continue
        path = _template_path(chart_dir, project_dir, chart, key)
        rendered.extend((path, obj) for obj in parse_documents(answer["manifests"][key], path))
    return rendered


def _chart_name(chart_dir: Path) -> str:
    """`name` from Chart.yaml, read without the engine, for naming a template in an error."""
    try:
        metadata = yaml.safe_load((chart_dir / "Chart.yaml").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return chart_dir.name
    name = metadata.get("name") if isinstance(metadata, dict) else None
    return str(name) if name else chart_dir.name
