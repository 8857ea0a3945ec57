"""Render a local Helm chart as Argo CD would, through Helm's own engine in a worker process
(docs/engine-rules.md#argo-cds-render)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from model.files import FileRefused, read_text
from policy_check.render_common import (
    MAX_BYTES_PER_APPLICATION,
    PYTHON,
    CannotJudge,
    RenderBounds,
    RenderError,
    parse_documents,
    relative,
    run_bounded,
    too_many_bytes,
)
from policy_check.render_confine import check_symlinks, confined_path

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
        what = f"helm.valueFiles: {entry!r}"
        path = (chart_dir / str(entry)).resolve()
        if not path.is_file() or not path.is_relative_to(project_dir.resolve()):
            raise RenderError(f"{what} is not a file of this repository")
        paths.append(str(confined_path(chart_dir / str(entry), project_dir, what)))
    return paths


def _template_path(
    chart_dir: Path, project_dir: Path, chart: str, key: str, built: Mapping[str, Path] | None = None
) -> str:
    """`app/templates/x.yaml` (the engine's name) as the project path of the file."""
    inner = key.split("/", 1)[1] if key.startswith(f"{chart}/") else key
    parts = inner.split("/", 2)
    if len(parts) == 3 and parts[0] == "charts" and parts[1] in (built or {}):
        return relative((built or {})[parts[1]] / parts[2], project_dir)
    return relative(chart_dir / inner, project_dir)


def _metadata(chart_dir: Path) -> dict[str, Any]:
    """Chart.yaml as a mapping ({} when unreadable: the engine then says why)."""
    try:
        metadata = yaml.safe_load(read_text(chart_dir / "Chart.yaml", MAX_BYTES_PER_APPLICATION))
    except (FileRefused, yaml.YAMLError, RecursionError):
        return {}
    return metadata if isinstance(metadata, dict) else {}


def local_dependencies(chart_dir: Path, project_dir: Path) -> dict[str, Path]:
    """Each `file://` dependency's folder by name and alias, each a chart of this repository."""
    found: dict[str, Path] = {}
    dependencies = _metadata(chart_dir).get("dependencies")
    for dep in dependencies if isinstance(dependencies, list) else []:
        repository = dep.get("repository") if isinstance(dep, dict) else None
        if not isinstance(repository, str) or not repository.startswith("file://"):
            continue
        name = str(dep.get("name", ""))
        what = f"dependency {name!r} ({repository})"
        target = repository.removeprefix("file://")
        if not target or Path(target).is_absolute():
            raise RenderError(f"{what}: expected a path relative to the chart")
        folder = confined_path(chart_dir / target, project_dir, what)
        if not (folder / "Chart.yaml").is_file():
            raise RenderError(f"{what} is not a chart folder of this repository")
        check_symlinks(folder, project_dir)
        for key in (name, dep.get("alias")):
            if isinstance(key, str) and key:
                found[key] = folder
    return found


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
    bounds: RenderBounds | None = None,
) -> list[tuple[str, dict[str, Any]]]:
    """(template path, object) for everything the chart renders with the Application's values."""
    unknown = sorted(set(helm_source) - SUPPORTED_KEYS)
    if unknown:
        raise RenderError(f"helm.{unknown[0]} is not supported by the offline render")
    check_symlinks(chart_dir, project_dir)
    built = local_dependencies(chart_dir, project_dir)
    bounds = bounds or RenderBounds()
    request = {
        "chart_dir": str(chart_dir),
        "release": str(helm_source.get("releaseName") or release),
        "namespace": namespace,
        "value_files": _value_files(chart_dir, project_dir, helm_source.get("valueFiles") or []),
        "values_yaml": helm_source.get("values"),
        "values_object": helm_source.get("valuesObject"),
        "parameters": helm_source.get("parameters") or [],
        "has_dependencies": bool(_metadata(chart_dir).get("dependencies")),
        "local_dependencies": {name: str(path) for name, path in built.items()},
        "max_bytes": MAX_BYTES_PER_APPLICATION,
    }
    # The answer is JSON around the manifests: escaping may grow it, so it may take twice the bound.
    done = run_bounded(
        [PYTHON, "-I", str(WORKER)],
        stdin=json.dumps(request),
        timeout=timeout,
        what="helm template",
        max_output=2 * MAX_BYTES_PER_APPLICATION + 64 * 1024,
    )
    try:
        answer = json.loads(done.stdout)
    except json.JSONDecodeError:
        raise RenderError(
            f"helm worker failed (exit {done.returncode}): {done.stderr.strip()[-2000:]}"
        ) from None
    if "error" in answer:
        raise RenderError(_name_template(answer["error"], chart_dir, project_dir, _chart_name(chart_dir)))
    if "cant_judge" in answer:
        raise CannotJudge(str(answer["cant_judge"]))
    if "too_big" in answer:
        raise too_many_bytes(int(answer["too_big"]))
    chart = answer["chart"]
    bounds.start_reading()
    rendered: list[tuple[str, dict[str, Any]]] = []
    for crd in answer.get("crds") or []:
        path = relative(chart_dir / str(crd.get("filename", "crds")), project_dir)
        rendered.extend((path, obj) for obj in parse_documents(str(crd.get("data", "")), path, bounds))
    for key in sorted(answer["manifests"]):
        if key.endswith("NOTES.txt"):
            continue
        path = _template_path(chart_dir, project_dir, chart, key, built)
        rendered.extend((path, obj) for obj in parse_documents(answer["manifests"][key], path, bounds))
    return rendered


def _chart_name(chart_dir: Path) -> str:
    """`name` from Chart.yaml, read without the engine, for naming a template in an error."""
    name = _metadata(chart_dir).get("name")
    return str(name) if name else chart_dir.name
