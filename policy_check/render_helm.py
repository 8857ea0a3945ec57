"""Render a local Helm chart as Argo CD would, through Helm's own engine in a worker process
(docs/engine-rules.md#argo-cds-render)."""

from __future__ import annotations

import json
import queue
import re
import subprocess
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import yaml

from model.files import FileRefused, read_text
from policy_check.render_common import (
    MAX_BYTES_PER_APPLICATION,
    MAX_RENDERS_IN_PARALLEL,
    MAX_STDERR_BYTES,
    PYTHON,
    CannotJudge,
    RenderBounds,
    RenderError,
    drain,
    parse_documents,
    relative,
    too_many_bytes,
)
from policy_check.render_confine import check_symlinks, confined_path

HELM_TIMEOUT_SECONDS = 60.0
"""Upper bound on one chart render, worker start-up included."""
WORKER = Path(__file__).with_name("helm_worker.py")
"""Run by path in isolated mode: it needs only helm_python, not this project on sys.path."""
MAX_ANSWER_BYTES = 2 * MAX_BYTES_PER_APPLICATION + 64 * 1024
"""Most bytes of one answer: JSON around the manifests, whose escaping may double them."""
_STOP_SECONDS = 5.0
"""How long a worker told to stop may take before it is killed."""
SUPPORTED_KEYS = frozenset({"valuesObject", "values", "valueFiles", "parameters", "releaseName"})
"""`spec.source.helm` keys the render honours; any other key is a render error, never ignored."""


class HelmWorker:
    """One helm_worker.py process that renders chart after chart, one at a time; a request past its
    timeout or its bound kills it, and the next request starts another."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._answers: queue.Queue[bytes | None] = queue.Queue()
        self._stderr = bytearray()
        self._stderr_reader: threading.Thread | None = None

    def __enter__(self) -> HelmWorker:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _start(self) -> subprocess.Popen[bytes]:
        try:
            proc = subprocess.Popen(
                [PYTHON, "-I", str(WORKER)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        except OSError as exc:
            raise RenderError(f"helm template could not start: {exc}") from exc
        assert proc.stdout is not None and proc.stderr is not None
        self._answers, self._stderr = queue.Queue(), bytearray()
        threading.Thread(target=_read_answers, args=(proc.stdout, self._answers), daemon=True).start()
        self._stderr_reader = threading.Thread(
            target=drain,
            args=(proc.stderr, MAX_STDERR_BYTES, self._stderr, threading.Event(), True),
            daemon=True,
        )
        self._stderr_reader.start()
        self._proc = proc
        return proc

    def ask(self, request: Mapping[str, Any], timeout: float) -> dict[str, Any]:
        """The worker's answer to one request, within `timeout` seconds (start-up included) once it is this
        request's turn; the others' turns are bounded by their own timeouts."""
        if not self._lock.acquire(timeout=timeout * MAX_RENDERS_IN_PARALLEL + _STOP_SECONDS):
            raise RenderError(f"helm template did not finish within {timeout:g}s")
        try:
            deadline = time.monotonic() + timeout
            proc = self._proc if self._proc is not None and self._proc.poll() is None else self._start()
            assert proc.stdin is not None
            try:
                proc.stdin.write(json.dumps(request).encode() + b"\n")
                proc.stdin.flush()
            except OSError:
                pass  # it exited: the missing answer says why
            try:
                line = self._answers.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self._stop()
                raise RenderError(f"helm template did not finish within {timeout:g}s") from None
            if line is not None and len(line) > MAX_ANSWER_BYTES:
                self._stop()
                raise too_many_bytes(len(line))
            try:
                answer = json.loads(line) if line else None
            except json.JSONDecodeError:
                answer = None
            if not isinstance(answer, dict):
                self._stop()
                said = self._stderr.decode("utf-8", "replace").strip()[-2000:]
                raise RenderError(f"helm worker failed (exit {proc.returncode}): {said}")
            return answer
        finally:
            self._lock.release()

    def _stop(self) -> None:
        """Kill the process if it still runs, and reap it; the next request starts another."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
        proc.wait(_STOP_SECONDS)
        if self._stderr_reader is not None:
            self._stderr_reader.join(_STOP_SECONDS)

    def close(self) -> None:
        """Let the worker exit at the end of its input; kill it if it does not within a few seconds."""
        proc = self._proc
        if proc is None:
            return
        try:
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait(_STOP_SECONDS)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self._stop()


def _read_answers(stream: IO[bytes], answers: queue.Queue[bytes | None]) -> None:
    """Put each line the worker writes on `answers`, a line past the bound cut there; None at its end."""
    while line := stream.readline(MAX_ANSWER_BYTES + 1):
        answers.put(line)
        if len(line) > MAX_ANSWER_BYTES:
            return
    answers.put(None)


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


def local_dependencies(chart_dir: Path, project_dir: Path, metadata: Mapping[str, Any]) -> dict[str, Path]:
    """Each `file://` dependency's folder by name and alias (`metadata`: Chart.yaml), each a chart of this
    repository."""
    found: dict[str, Path] = {}
    dependencies = metadata.get("dependencies")
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
    worker: HelmWorker | None = None,
) -> list[tuple[str, dict[str, Any]]]:
    """(template path, object) for everything the chart renders with the Application's values, by
    `worker` (shared by the charts of one check) or a worker of its own."""
    unknown = sorted(set(helm_source) - SUPPORTED_KEYS)
    if unknown:
        raise RenderError(f"helm.{unknown[0]} is not supported by the offline render")
    check_symlinks(chart_dir, project_dir)
    metadata = _metadata(chart_dir)
    built = local_dependencies(chart_dir, project_dir, metadata)
    bounds = bounds or RenderBounds()
    request = {
        "chart_dir": str(chart_dir),
        "release": str(helm_source.get("releaseName") or release),
        "namespace": namespace,
        "value_files": _value_files(chart_dir, project_dir, helm_source.get("valueFiles") or []),
        "values_yaml": helm_source.get("values"),
        "values_object": helm_source.get("valuesObject"),
        "parameters": helm_source.get("parameters") or [],
        "has_dependencies": bool(metadata.get("dependencies")),
        "local_dependencies": {name: str(path) for name, path in built.items()},
        "max_bytes": MAX_BYTES_PER_APPLICATION,
    }
    if worker is None:
        with HelmWorker() as own:
            answer = own.ask(request, timeout)
    else:
        answer = worker.ask(request, timeout)
    if "error" in answer:
        name = str(metadata.get("name") or chart_dir.name)
        raise RenderError(_name_template(answer["error"], chart_dir, project_dir, name))
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
