"""What the render modules share: their results, errors and bounds, YAML splitting, a bounded run."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import yaml

from model.errors import GitopsError

MAX_OBJECTS_PER_APPLICATION = 1_000
"""Most objects one Application may render; the pack judges each one, and Kubernetes schema checks it."""
MAX_BYTES_PER_APPLICATION = 16 * 1024 * 1024
"""Most bytes of manifests one Application may render (a chart with big CRDs stays well under)."""
MAX_SECONDS_AFTER_RENDER = 60.0
"""Most seconds one Application's rendered objects may take to read, type and schema-check."""
MAX_VALUES_PER_APPLICATION = 1_000_000
"""Most values (mappings, lists and scalars, as YAML aliases expand them) one Application may render."""
MAX_RENDERS_IN_PARALLEL = max(2, os.cpu_count() or 1)
"""Most Applications rendered at once: their engines are processes, which the cores run side by side."""
MAX_OBJECT_DEPTH = 100
"""Most levels one rendered object may nest (a big CRD's schema needs a few dozen); deeper, the YAML
reader, the schema check and the pack's gRPC would run out of stack."""


class RenderError(GitopsError):
    """The engine could not render the source; the message is the engine's, plus the file when known."""


class CannotJudge(GitopsError):
    """The source cannot be rendered offline as Argo CD would (a remote part): "can't judge yet", why."""


@dataclass(frozen=True)
class RenderedObject:
    """One object a chart or overlay renders, typed (`kubernetes:apps/v1:Deployment`) and named."""

    type: str
    name: str
    urn: str
    """URN whose parent is the Application it came from."""
    scaled_by: str | None = None
    """`HorizontalPodAutoscaler 'ns/name'` when a rendered HPA owns this workload's omitted `replicas`."""
    namespace: str | None = None
    template: str | None = None
    """Project path of the chart template or overlay file it came from, when known."""
    manifest: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    """The object as Argo CD would apply it."""


@dataclass(frozen=True)
class RenderResult:
    """What one Application's source renders to, or why it was not rendered."""

    application: str
    application_urn: str
    engine: str
    """`helm` or `kustomize`."""
    path: str
    status: str
    """rendered, not-rendered or error."""
    reason: str
    """'' when rendered; why not; or the error naming the Application, the path and the file."""
    objects: tuple[RenderedObject, ...] = ()
    """Also kept on a schema-validation error, empty on an engine error."""
    seconds: float = 0.0


@dataclass
class RenderBounds:
    """What one Application's render may still produce: objects, and the deadline after the engine ran."""

    objects: int = 0
    values: int = 0
    deadline: float | None = None

    def start_reading(self) -> None:
        """The engine is done: the time after rendering starts now."""
        if self.deadline is None:
            self.deadline = time.monotonic() + MAX_SECONDS_AFTER_RENDER

    def add_object(self) -> None:
        """Count one more object; past either bound, a RenderError naming it."""
        self.objects += 1
        if self.objects > MAX_OBJECTS_PER_APPLICATION:
            raise RenderError(
                f"renders more than {MAX_OBJECTS_PER_APPLICATION} objects, the bound per Application"
            )
        self.check_time()

    def add_values(self, count: int) -> None:
        """Count the values of one more document; past the bound, a RenderError naming it."""
        self.values += count
        if self.values > MAX_VALUES_PER_APPLICATION:
            raise RenderError(
                f"renders more than {MAX_VALUES_PER_APPLICATION} values (YAML aliases counted as they "
                "expand), the bound per Application"
            )

    def check_time(self) -> None:
        """A RenderError once reading the render has taken longer than its bound."""
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise RenderError(
                f"reading the rendered objects took over {MAX_SECONDS_AFTER_RENDER:g}s, the bound per "
                "Application"
            )


def too_many_bytes(size: int) -> RenderError:
    """The one-line error of a render past the byte bound."""
    return RenderError(
        f"renders {size} bytes of manifests or more, over {MAX_BYTES_PER_APPLICATION} bytes, the bound per "
        "Application"
    )


def relative(path: Path, project_dir: Path | None) -> str:
    """`path` relative to the project, POSIX style, or as given when it lies outside."""
    if project_dir is not None:
        try:
            return path.resolve().relative_to(project_dir.resolve()).as_posix()
        except ValueError:
            pass
    return path.as_posix()


FAST_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""PyYAML's safe loader on libyaml when it was built with it: the same objects, read several times faster."""


def parse_documents(text: str, origin: str, bounds: RenderBounds | None = None) -> list[dict[str, Any]]:
    """Every non-empty YAML document of a rendered stream, each a Kubernetes object, read one at a time
    so that a render past a bound stops being read there (by libyaml; PyYAML's own reader names an error)."""
    bounds = bounds or RenderBounds()
    counted = bounds.objects, bounds.values
    try:
        return _documents(text, origin, bounds, FAST_LOADER)
    except yaml.YAMLError:  # only libyaml's: PyYAML's own reader says what is wrong, as it always has
        bounds.objects, bounds.values = counted
        return _documents(text, origin, bounds, yaml.SafeLoader)


def _documents(
    text: str, origin: str, bounds: RenderBounds, loader: type[yaml.SafeLoader]
) -> list[dict[str, Any]]:
    objects: list[dict[str, Any]] = []
    try:
        for doc in yaml.load_all(text, Loader=loader):
            if doc is None:
                continue
            if not isinstance(doc, dict) or not doc.get("apiVersion") or not doc.get("kind"):
                raise RenderError(
                    f"{origin}: rendered a document that is not a Kubernetes object (no apiVersion/kind)"
                )
            values, depth = _measure(doc, MAX_VALUES_PER_APPLICATION - bounds.values)
            if depth > MAX_OBJECT_DEPTH:
                raise _too_deep(origin)
            bounds.add_values(values)
            items = doc.get("items")
            listed = str(doc["kind"]).endswith("List") and isinstance(items, list)
            for item in items if listed and isinstance(items, list) else [doc]:
                if isinstance(item, dict):
                    bounds.add_object()
                    objects.append(item)
    except yaml.YAMLError as exc:
        if loader is not yaml.SafeLoader:
            raise
        raise RenderError(f"{origin}: rendered output is not valid YAML: {exc}") from exc
    except RecursionError:
        raise _too_deep(origin) from None
    return objects


def _too_deep(origin: str) -> RenderError:
    return RenderError(
        f"{origin}: rendered a document nesting deeper than {MAX_OBJECT_DEPTH} levels, the bound per object"
    )


def _measure(value: Any, limit: int) -> tuple[int, int]:
    """(values, depth) of a document, counted without recursion (an alias counts each time it is used);
    the count stops once past `limit` values or MAX_OBJECT_DEPTH levels."""
    values, deepest, todo = 0, 0, [(value, 0)]
    while todo and values <= limit and deepest <= MAX_OBJECT_DEPTH:
        current, level = todo.pop()
        values += 1
        if isinstance(current, dict | list):
            deepest = max(deepest, level + 1)
            todo.extend(
                (child, level + 1) for child in (current.values() if isinstance(current, dict) else current)
            )
    return values, deepest


MAX_STDERR_BYTES = 1024 * 1024
"""Most bytes of an engine's stderr kept; the rest is dropped (errors quote its end)."""
_CHUNK = 64 * 1024


def drain(stream: IO[bytes], limit: int, into: bytearray, over: threading.Event, keep_tail: bool) -> None:
    """Read `stream` to its end; keep at most `limit` bytes (the last ones with `keep_tail`)."""
    while chunk := stream.read(_CHUNK):
        into.extend(chunk)
        if len(into) > limit:
            if not keep_tail:
                over.set()
                return
            del into[: len(into) - limit]


def run_bounded(
    argv: list[str],
    *,
    timeout: float,
    what: str,
    stdin: str | None = None,
    cwd: Path | None = None,
    max_output: int = MAX_BYTES_PER_APPLICATION,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command with a hard timeout and a bound on its stdout; a hang becomes a RenderError naming
    `what`, more than `max_output` bytes on stdout the byte bound's RenderError (the process is killed)."""
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env=env,
        )
    except OSError as exc:
        raise RenderError(f"{what} could not start: {exc}") from exc
    out, err, over = bytearray(), bytearray(), threading.Event()
    assert proc.stdout is not None and proc.stderr is not None and proc.stdin is not None
    readers = [
        threading.Thread(target=drain, args=(proc.stdout, max_output, out, over, False), daemon=True),
        threading.Thread(target=drain, args=(proc.stderr, MAX_STDERR_BYTES, err, threading.Event(), True)),
    ]
    for reader in readers:
        reader.daemon = True
        reader.start()
    try:
        proc.stdin.write((stdin or "").encode())
        proc.stdin.close()
    except OSError:
        pass  # it exited without reading its input: its exit code and stderr say why
    deadline = time.monotonic() + timeout
    try:
        while proc.poll() is None and not over.is_set():
            if time.monotonic() > deadline:
                raise RenderError(f"{what} did not finish within {timeout:g}s")
            readers[0].join(0.05)
        if over.is_set():
            raise too_many_bytes(len(out))
        proc.wait(max(0.0, deadline - time.monotonic()))
        for reader in readers:
            reader.join(max(0.0, deadline - time.monotonic()))
        if over.is_set():
            raise too_many_bytes(len(out))
    except subprocess.TimeoutExpired as exc:
        raise RenderError(f"{what} did not finish within {timeout:g}s") from exc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = (bytes(out).decode("utf-8", "replace"), bytes(err).decode("utf-8", "replace"))
    return subprocess.CompletedProcess(argv, proc.returncode, *text)


PYTHON = sys.executable
"""The interpreter that runs the Helm worker: the one running this check."""


def object_label(kind: str, namespace: str | None, name: str) -> str:
    """`Kind 'namespace/name'` (or `Kind 'name'`), as the pack's messages and the report name an object."""
    return f"{kind} '{namespace}/{name}'" if namespace else f"{kind} '{name}'"
