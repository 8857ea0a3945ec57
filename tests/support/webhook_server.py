"""A notification webhook on 127.0.0.1: it keeps every JSON body posted to its secret path, and answers
from a script (a status with headers, or a hang) before it answers 200."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any

from tests.support.processes import QuietHandler, serve_in_thread, stop_serving

SECRET_PATH = "/services/T0KEN-IN-THE-PATH/must-never-show"
"""Slack's incoming webhooks carry their token in the path: so does this one."""
HANG_BOUND_S = 30.0


@dataclass(frozen=True)
class Answer:
    """One scripted answer."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False


class WebhookServer:
    """The n-th request gets the n-th scripted answer; once the script is used up, 200."""

    def __init__(self, script: Sequence[Answer] = ()) -> None:
        self.script = list(script)
        self.bodies: list[Any] = []
        """Every body posted to the secret path, decoded, in order (the failed tries too)."""
        self.delivered: list[Any] = []
        """The bodies answered 2xx."""
        self.paths: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        hook = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                hook._handle(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = serve_in_thread(self._server, poll_interval=0.05)

    @property
    def url(self) -> str:
        """The webhook URL, token and all."""
        return f"http://127.0.0.1:{self._server.server_address[1]}{SECRET_PATH}"

    def close(self) -> None:
        """Release a hanging answer and stop serving."""
        self._stop.set()
        stop_serving(self._server, self._thread)

    def _handle(self, handler: QuietHandler) -> None:
        raw = handler.rfile.read(min(int(handler.headers.get("content-length") or 0), 1024 * 1024))
        with self._lock:
            self.paths.append(handler.path)
            body = json.loads(raw) if handler.headers.get("content-type") == "application/json" else raw
            self.bodies.append(body)
            answer = self.script.pop(0) if self.script else Answer()
            if 200 <= answer.status < 300 and not answer.hang:
                self.delivered.append(body)
        if answer.hang:
            self._stop.wait(HANG_BOUND_S)
            return
        handler.reply(answer.status, b"ok" if answer.status < 300 else b"no", answer.headers)
