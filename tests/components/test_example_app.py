"""The example app the stacks build: GET /healthz answers 200 on a real socket."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from types import ModuleType

import httpx
import pytest

from model.stack_files import PROJECT_DIR
from tests.support.processes import read_line, serve_in_thread, stop_process, stop_serving


def _load_app() -> ModuleType:
    spec = importlib.util.spec_from_file_location("example_app", PROJECT_DIR / "examples/app/app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    srv: ThreadingHTTPServer = _load_app().serve(host="127.0.0.1", port=0)
    thread = serve_in_thread(srv)
    yield srv
    stop_serving(srv, thread)


def _url(srv: ThreadingHTTPServer, path: str) -> str:
    return f"http://127.0.0.1:{srv.server_address[1]}{path}"


def test_healthz_answers_200(server: ThreadingHTTPServer) -> None:
    response = httpx.get(_url(server, "/healthz"), timeout=5)
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_root_reports_the_role_and_unknown_paths_are_404(server: ThreadingHTTPServer) -> None:
    assert json.loads(httpx.get(_url(server, "/"), timeout=5).text)["role"] == "web"
    assert httpx.get(_url(server, "/nope"), timeout=5).status_code == 404


def test_the_app_listens_on_8080_by_default() -> None:
    assert _load_app().serve.__defaults__ == ("0.0.0.0", 8080)


def test_the_app_runs_as_its_own_process_and_stops_on_sigterm() -> None:
    """As the container runs it (`python app.py`), on 127.0.0.1, stopped the way Kubernetes stops a pod."""
    env = {**os.environ, "HOST": "127.0.0.1", "PORT": "0", "APP_ROLE": "api"}
    proc = subprocess.Popen(
        [sys.executable, "app.py"],
        cwd=PROJECT_DIR / "examples/app",
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        line = ""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and "listening" not in line:
            # Bounded even if the app prints nothing and does not exit.
            line = read_line(proc.stderr, max(0.0, deadline - time.monotonic())) or ""
            if not line and proc.poll() is not None:
                break
        match = re.search(r"listening on :(\d+) as api", line)
        assert match, f"no listening line, got {line!r} (exit {proc.poll()})"
        base = f"http://127.0.0.1:{match.group(1)}"
        response = httpx.get(f"{base}/healthz", timeout=5)
        assert response.status_code == 200 and response.json() == {"status": "ok"}
        assert httpx.get(f"{base}/", timeout=5).json()["role"] == "api"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        stop_process(proc, 10)
