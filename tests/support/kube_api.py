"""A stand-in Kubernetes API server on 127.0.0.1 for Argo CD Applications, and a kubeconfig that names it.

It answers as the real API server does for a custom resource without a status subresource:
- `GET /apis/argoproj.io/v1alpha1/namespaces/{ns}/applications/{name}`: the object, or a 404 Status;
- `PATCH` the same path with `application/merge-patch+json` (RFC 7386) or `application/json-patch+json`;
  a strategic merge patch, or any other type, is a 415 Status (custom resources refuse it); a patch
  naming a `metadata.resourceVersion` other than the stored one is a 409 Conflict Status;
- every write gives the object a new `metadata.resourceVersion`.
Each Application plays a recorded flow: its objects in order, the next one after `reads` GETs, and,
once a patch sets `status.operationState.phase: Terminating`, the `terminated` objects (the controller's
answer). Every request is logged with the moment the test's `mark` returned.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.support.processes import LOCALHOST, LocalHTTPServer, QuietHandler

PREFIX = "/apis/argoproj.io/v1alpha1/namespaces/"
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"


@dataclass
class Flow:
    """One Application's recorded objects, played in order."""

    objects: list[dict[str, Any]]
    reads: int = 1
    """GETs each object answers before the next one is served (the last one stays)."""
    terminated: list[dict[str, Any]] = field(default_factory=list)
    """What the controller writes once the operation is Terminating."""
    index: int = 0
    served: int = 0
    current: dict[str, Any] | None = None


@dataclass(frozen=True)
class Request:
    """One request as the stand-in saw it."""

    method: str
    path: str
    content_type: str
    body: Any
    status: int
    mark: Any


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


class StandInKubeAPI:
    """The server, its flows by (namespace, name), and the request log."""

    def __init__(self, mark: Callable[[], Any] = lambda: None) -> None:
        self.flows: dict[tuple[str, str], Flow] = {}
        self.log: list[Request] = []
        self.mark = mark
        self._lock = threading.Lock()
        self._version = 1000
        api = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                api._handle(self, "GET")

            def do_PATCH(self) -> None:
                api._handle(self, "PATCH")

        self._server = LocalHTTPServer(Handler)

    @property
    def url(self) -> str:
        """`http://127.0.0.1:<port>`."""
        return f"http://{LOCALHOST}:{self._server.port}"

    def play(self, namespace: str, name: str, flow: Flow) -> None:
        """Serve `flow` as the Application `namespace/name`."""
        with self._lock:
            self.flows[(namespace, name)] = flow

    def stop(self) -> None:
        """Stop serving."""
        self._server.stop()

    def patches(self) -> list[Request]:
        """The PATCH requests, in order."""
        return [r for r in self.log if r.method == "PATCH"]

    def _next_version(self) -> str:
        self._version += 1
        return str(self._version)

    def _current(self, flow: Flow) -> dict[str, Any]:
        if flow.current is None:
            flow.current = copy.deepcopy(flow.objects[flow.index])
            flow.current.setdefault("metadata", {})["resourceVersion"] = self._next_version()
        return flow.current

    def _advance(self, flow: Flow) -> None:
        flow.served += 1
        if flow.served >= flow.reads and flow.index + 1 < len(flow.objects):
            flow.index, flow.served, flow.current = flow.index + 1, 0, None

    def _handle(self, handler: QuietHandler, method: str) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        content_type = (handler.headers.get("Content-Type") or "").split(";")[0].strip()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        with self._lock:
            code, answer = self._answer(method, handler.path, content_type, body)
            self.log.append(Request(method, handler.path, content_type, body, code, self.mark()))
        handler.reply(code, json.dumps(answer).encode(), {"Content-Type": "application/json"})

    def _answer(self, method: str, path: str, content_type: str, body: Any) -> tuple[int, dict[str, Any]]:
        parts = path.split("?")[0].removeprefix(PREFIX).split("/")
        if not path.startswith(PREFIX) or len(parts) != 3 or parts[1] != "applications":
            return 404, _status(404, "NotFound", "the server could not find the requested resource")
        namespace, _, name = parts
        flow = self.flows.get((namespace, name))
        if flow is None:
            return 404, _status(404, "NotFound", f'applications.argoproj.io "{name}" not found')
        current = self._current(flow)
        if method == "GET":
            answer = copy.deepcopy(current)
            self._advance(flow)
            return 200, answer
        if content_type not in (MERGE, JSON_PATCH):
            return 415, _status(
                415,
                "UnsupportedMediaType",
                f"the body of the request was in an unknown format - accepted media types include: "
                f"{JSON_PATCH}, {MERGE}, application/apply-patch+yaml",
            )
        if content_type == JSON_PATCH or not isinstance(body, dict):
            return 422, _status(422, "Invalid", "this stand-in applies merge patches only")
        wanted = (body.get("metadata") or {}).get("resourceVersion")
        if wanted is not None and wanted != current["metadata"]["resourceVersion"]:
            return 409, _status(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on applications.argoproj.io "{name}": the object has been '
                "modified; please apply your changes to the latest version and try again",
            )
        patched = merge_patch(current, body)
        patched["metadata"]["resourceVersion"] = self._next_version()
        flow.current = patched
        phase = ((patched.get("status") or {}).get("operationState") or {}).get("phase")
        if phase == "Terminating" and flow.terminated:
            # The controller takes over: its writes are what the next reads see.
            flow.objects = [patched, *flow.terminated]
            flow.index, flow.served = 0, 0
        return 200, copy.deepcopy(patched)


def kubeconfig(path: Path, server: str, *, context: str = "stand-in", token: str = "stand-in-token") -> Path:
    """Write a kubeconfig whose `context` reaches `server` with a bearer token; return its path."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": context, "cluster": {"server": server}}],
        "users": [{"name": context, "user": {"token": token}}],
        "contexts": [{"name": context, "context": {"cluster": context, "user": context}}],
        "current-context": context,
    }
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def load_flow(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """A recorded operation flow (tests/fixtures/argocd/operations/*.yaml): its header, objects, and
    the objects after a termination."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    objects = [step["application"] for step in data["steps"]]
    terminated = [step["application"] for step in data.get("terminated") or []]
    return data, objects, terminated


def all_objects(flows: Sequence[Path]) -> list[dict[str, Any]]:
    """Every Application object of the flows, for the schema check."""
    found: list[dict[str, Any]] = []
    for path in flows:
        _, objects, terminated = load_flow(path)
        found += [*objects, *terminated]
    return found
