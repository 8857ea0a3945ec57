"""Real HTTP(S) servers on 127.0.0.1 for health-check tests and benchmarks: scripted, silent, trickling."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from typing import Any, Self

from tests.support.processes import QuietHandler, serve_in_thread, stop_serving

_CHUNK = 64 * 1024


@dataclass(frozen=True)
class Reply:
    """What one request to a path gets."""

    status: int = 200
    delay: float = 0.0
    """Seconds before the status line is sent."""
    body_bytes: int = 2
    location: str | None = None
    trickle_seconds: float = 0.0
    """When set, the body is sent one byte per this many seconds (and never finishes in a test)."""


class ScriptedServer:
    """Answers each path from a script: the n-th request gets the n-th reply (the last one repeats).

    Any method gets the script's reply; every request is recorded (method, path, headers).
    """

    def __init__(
        self,
        routes: Mapping[str, Sequence[Reply]],
        *,
        port: int = 0,
        tls: ssl.SSLContext | None = None,
        start: bool = True,
        host: str = "127.0.0.1",
    ) -> None:
        self.routes = {path: list(replies) for path, replies in routes.items()}
        self.hits: dict[str, int] = {path: 0 for path in routes}
        self.headers_seen: list[dict[str, str]] = []
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        """(method, path, headers) of every request, in order."""
        self.host = host
        self.bytes_sent = 0
        self.unhealthy_until = 0.0
        """Until this `time.monotonic()` moment every request gets a 503, whatever the script says."""
        self._lock = threading.Lock()
        self._port = port
        self._tls = tls
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        if start:
            self.start()

    @property
    def port(self) -> int:
        """The bound port (known before start when given)."""
        return self._server.server_address[1] if self._server else self._port

    def url(self, path: str = "/") -> str:
        """A URL of this server."""
        scheme = "https" if self._tls else "http"
        return f"{scheme}://{self.host}:{self.port}{path}"

    def _next(self, path: str, headers: Mapping[str, str], method: str = "GET") -> Reply | None:
        with self._lock:
            self.headers_seen.append(dict(headers))
            self.requests.append((method, path, dict(headers)))
            replies = self.routes.get(path)
            if not replies:
                return None
            if time.monotonic() < self.unhealthy_until:
                return Reply(503)
            n = self.hits[path]
            self.hits[path] = n + 1
            return replies[min(n, len(replies) - 1)]

    def _count(self, n: int) -> None:
        with self._lock:
            self.bytes_sent += n

    def start(self) -> None:
        """Bind and serve in a daemon thread."""
        outer = self

        class Handler(QuietHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                reply = outer._next(self.path, dict(self.headers.items()), self.command)
                if reply is None:
                    self.send_error(404)
                    return
                time.sleep(reply.delay)
                self.send_response(reply.status)
                if reply.location:
                    self.send_header("Location", reply.location)
                self.send_header("Content-Length", str(reply.body_bytes))
                self.send_header("Connection", "close")
                self.end_headers()
                # The client may stop reading: that is the point of a capped read.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError, ssl.SSLError):
                    self._body(reply)

            def _body(self, reply: Reply) -> None:
                left = reply.body_bytes
                while left > 0:
                    n = 1 if reply.trickle_seconds else min(_CHUNK, left)
                    self.wfile.write(b"x" * n)
                    self.wfile.flush()
                    outer._count(n)
                    left -= n
                    if reply.trickle_seconds:
                        time.sleep(reply.trickle_seconds)

            do_DELETE = do_POST = do_PUT = do_PATCH = do_GET

        server = ThreadingHTTPServer((self.host, self._port), Handler)
        if self._tls is not None:
            server.socket = self._tls.wrap_socket(server.socket, server_side=True)
        self._server = server
        self._thread = serve_in_thread(server, poll_interval=0.02)

    def start_after(self, seconds: float) -> threading.Timer:
        """Start listening later, from another thread."""
        timer = threading.Timer(seconds, self.start)
        timer.daemon = True
        timer.start()
        return timer

    def close(self) -> None:
        """Stop serving and release the port."""
        if self._server is not None:
            stop_serving(self._server, self._thread)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextmanager
def silent_server() -> Iterator[str]:
    """A URL whose server completes the TCP handshake (kernel backlog) and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/"
    finally:
        sock.close()


@contextmanager
def trickling_headers_server(byte_every: float = 0.05) -> Iterator[str]:
    """A server that sends its status line one byte at a time, so no single read ever times out."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    stop = threading.Event()

    def serve() -> None:
        sock.settimeout(0.05)
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            threading.Thread(target=drip, args=(conn,), daemon=True).start()

    def drip(conn: socket.socket) -> None:
        with conn:
            try:
                while not stop.is_set():
                    conn.sendall(b"X")  # never completes a header line
                    time.sleep(byte_every)
            except OSError:
                return

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/"
    finally:
        stop.set()
        thread.join(5)
        sock.close()


class ClockedServer(ScriptedServer):
    """Answers `/healthz` by a clock the test drives: `reply(now())` (degrade at t, blip once, go slow)."""

    def __init__(self, reply: Callable[[float], Reply], now: Callable[[], float], **kwargs: Any) -> None:
        self._reply, self._now = reply, now
        super().__init__({"/healthz": [Reply()]}, **kwargs)

    def _next(self, path: str, headers: Mapping[str, str], method: str = "GET") -> Reply | None:
        with self._lock:
            self.headers_seen.append(dict(headers))
            self.requests.append((method, path, dict(headers)))
            return self._reply(self._now()) if path in self.routes else None
