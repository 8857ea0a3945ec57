"""The example app the stacks build: GET /healthz answers 200 on a real socket."""

from __future__ import annotations

import importlib.util
import json
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from types import ModuleType

import httpx
import pytest

from offline.stack_files import PROJECT_DIR


def _load_app() -> ModuleType:
    spec = importlib.util.spec_from_file_location("example_app", PROJECT_DIR / "examples/app/app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    srv: ThreadingHTTPServer = _load_app().serve(host="127.0.0.1", port=0)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(timeout=5)


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
