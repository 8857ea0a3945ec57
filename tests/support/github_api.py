"""A stand-in GitHub REST API on 127.0.0.1 for the deployment endpoints: it checks every request's method,
path, headers and JSON body against GitHub's OpenAPI description (tests/support/github_openapi.py), keeps
the deployments and their statuses, and retires earlier ones on a success as GitHub documents
(`auto_inactive`, docs/engine-rules.md#github-deployments). It can also fail: a status, or a hang."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import ThreadingHTTPServer
from typing import Any

from clients.github_deployments import ACCEPT, API_VERSION
from tests.support.github_openapi import Operation, operations, request_problems
from tests.support.processes import QuietHandler, serve_in_thread, stop_serving

TOKEN = "ghs_" + "T0kenThatMustNeverBeShown" * 2
OWNER, REPO = "acme", "shop"
SHA = "0123456789abcdef0123456789abcdef01234567"
HANG_BOUND_S = 30.0
"""A hanging answer never outlasts this (or the server's stop): a test cannot hang on it."""
MAX_BODY_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Failure:
    """How the stand-in refuses: a status with headers, or (`hang`) no answer at all."""

    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False
    times: int = 1_000_000
    """How many requests fail before it answers again."""


@dataclass
class Deployment:
    """One deployment as the stand-in keeps it."""

    id: int
    environment: str
    sha: str
    payload: Any
    transient: bool
    production: bool
    states: list[str] = field(default_factory=list)
    statuses: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Seen:
    """One request: what came, and what is wrong with it."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    problems: list[str]


class GitHubAPI:
    """The stand-in; `api_url` is what GITHUB_API_URL points at (`/api/v3` under it: GHES's layout)."""

    def __init__(self, *, prefix: str = "", failure: Failure | None = None) -> None:
        self.prefix = prefix
        self.failure = failure
        self.requests: list[Seen] = []
        self.deployments: list[Deployment] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ops = operations()
        api = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                api._handle(self)

            def do_GET(self) -> None:
                api._handle(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = serve_in_thread(self._server, poll_interval=0.05)

    @property
    def api_url(self) -> str:
        """GITHUB_API_URL for this server."""
        return f"http://127.0.0.1:{self._server.server_address[1]}{self.prefix}"

    def close(self) -> None:
        """Release a hanging answer and stop serving."""
        self._stop.set()
        stop_serving(self._server, self._thread)

    def problems(self) -> list[str]:
        """Everything wrong with every request so far."""
        return [f"{s.method} {s.path}: {p}" for s in self.requests for p in s.problems]

    def environment(self, name: str) -> list[list[str]]:
        """Each deployment's states in `name`, oldest deployment first."""
        return [d.states for d in self.deployments if d.environment == name]

    # --- the answers ---

    def _match(self, method: str, path: str) -> tuple[Operation, dict[str, str]] | None:
        for op in self._ops.values():
            found = op.path.fullmatch(path)
            if found and op.method == method:
                return op, found.groupdict()
        return None

    def _check(
        self, handler: QuietHandler, op: Operation | None, params: dict[str, str], body: Any
    ) -> list[str]:
        problems = []
        expected = {
            "authorization": f"Bearer {TOKEN}", "accept": ACCEPT, "x-github-api-version": API_VERSION,
            "content-type": "application/json",
        }  # fmt: skip
        for name, value in expected.items():
            if handler.headers.get(name) != value:
                shown = "<another token>" if name == "authorization" and handler.headers.get(name) else None
                problems.append(f"header {name}: got {shown or handler.headers.get(name)!r}")
        if op is None:
            return [*problems, "no such operation in GitHub's description"]
        if (params.get("owner"), params.get("repo")) != (OWNER, REPO):
            problems.append(f"repository {params.get('owner')}/{params.get('repo')}")
        if "deployment_id" in params and not params["deployment_id"].isdigit():
            problems.append("deployment_id is not an integer")
        return problems + request_problems(op, body)

    def _handle(self, handler: QuietHandler) -> None:
        length = min(int(handler.headers.get("content-length") or 0), MAX_BODY_BYTES)
        raw = handler.rfile.read(length)
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        path = handler.path.split("?")[0]
        matched = (
            self._match(handler.command, path.removeprefix(self.prefix))
            if path.startswith(self.prefix)
            else None
        )
        op, params = matched if matched else (None, {})
        problems = self._check(handler, op, params, body)
        with self._lock:
            self.requests.append(Seen(handler.command, handler.path, dict(handler.headers), body, problems))
            failure = self.failure
            if failure is not None:
                self.failure = Failure(failure.status, failure.headers, failure.hang, failure.times - 1)
                if failure.times <= 0:
                    failure = self.failure = None
        if failure is not None:
            if failure.hang:
                self._stop.wait(HANG_BOUND_S)
                return
            message = json.dumps(
                {"message": "stand-in failure", "documentation_url": "https://docs.github.com"}
            )
            handler.reply(
                failure.status, message.encode(), {"Content-Type": "application/json", **failure.headers}
            )
            return
        if op is None or problems:
            handler.reply(422, json.dumps({"message": "; ".join(problems)}).encode(), {})
            return
        assert isinstance(body, dict)
        answer = self._answer(op, params, body)
        errors = [e.message for e in op.response.iter_errors(answer)]
        assert not errors, f"the stand-in's own answer does not match GitHub's description: {errors}"
        handler.reply(201, json.dumps(answer).encode(), {"Content-Type": "application/json; charset=utf-8"})

    def _answer(self, op: Operation, params: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        base = f"{self.api_url}/repos/{OWNER}/{REPO}"
        with self._lock:
            if op.id == "repos/create-deployment":
                env = body.get("environment", "production")
                deployment = Deployment(
                    len(self.deployments) + 1, env, body["ref"], body.get("payload", ""),
                    body.get("transient_environment", False),
                    body.get("production_environment", env == "production"),
                )  # fmt: skip
                self.deployments.append(deployment)
                url = f"{base}/deployments/{deployment.id}"
                return {
                    "url": url, "id": deployment.id, "node_id": f"DE_{deployment.id}", "sha": deployment.sha,
                    "ref": body["ref"], "task": body.get("task", "deploy"), "payload": deployment.payload,
                    "original_environment": env, "environment": env, "description": body.get("description"),
                    "creator": None, "created_at": now, "updated_at": now, "statuses_url": f"{url}/statuses",
                    "repository_url": base, "transient_environment": deployment.transient,
                    "production_environment": deployment.production,
                }  # fmt: skip
            deployment = self.deployments[int(params["deployment_id"]) - 1]
            state = body["state"]
            deployment.states.append(state)
            deployment.statuses.append(body)
            if state == "success" and body.get("auto_inactive", True):
                # GitHub's documented rule: prior non-transient, non-production deployments of the same
                # environment that had a success get an `inactive` status.
                for earlier in self.deployments:
                    if (
                        earlier is not deployment and earlier.environment == deployment.environment
                        and not earlier.transient and not earlier.production and "success" in earlier.states
                        and earlier.states[-1] != "inactive"
                    ):  # fmt: skip
                        earlier.states.append("inactive")
            return {
                "url": f"{base}/deployments/{deployment.id}/statuses/{len(deployment.states)}",
                "id": len(deployment.states), "node_id": "DES_1", "state": state, "creator": None,
                "description": body.get("description", ""), "environment": deployment.environment,
                "target_url": body.get("log_url", ""), "log_url": body.get("log_url", ""),
                "environment_url": body.get("environment_url", ""), "created_at": now, "updated_at": now,
                "deployment_url": f"{base}/deployments/{deployment.id}", "repository_url": base,
            }  # fmt: skip
