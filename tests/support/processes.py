"""Start and stop the tests' local servers: free ports, bounded waits, subprocesses, HTTP server threads.

Every wait here has a bound, so a server that never comes up (or never goes away) fails a test instead
of hanging the suite.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any, Self

LOCALHOST = "127.0.0.1"


def free_port() -> int:
    """A port nothing listens on right now (the kernel refuses connections to it)."""
    with socket.socket() as s:
        s.bind((LOCALHOST, 0))
        return int(s.getsockname()[1])


def wait_until(ready: Callable[[], bool], *, timeout: float, interval: float) -> bool:
    """Poll `ready` every `interval` s until it is true (True) or `timeout` s have passed (False)."""
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
    return True


def read_line(stream: IO[Any], timeout: float) -> Any:
    """One line from a pipe, or None when none came within `timeout` s (the reader thread is left behind)."""
    line: list[Any] = []
    reader = threading.Thread(target=lambda: line.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return line[0] if line else None


def stop_process(process: subprocess.Popen[Any], timeout: float) -> None:
    """Terminate a running process and wait up to `timeout` s; then kill it and wait as long again."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout)


class ServerProcess:
    """A server subprocess with a temp dir of its own and its output in a log file there."""

    def __init__(self, name: str, *, prefix: str, log_name: str) -> None:
        self.name = name
        self.dir = Path(tempfile.mkdtemp(prefix=prefix))
        self.log_path = self.dir / log_name
        self._log = self.log_path.open("wb")
        self.process: subprocess.Popen[bytes] | None = None

    def start(
        self,
        args: Sequence[str],
        probe: Callable[[], object],
        retry_on: tuple[type[Exception], ...],
        *,
        timeout: float,
        interval: float,
        **popen: Any,
    ) -> None:
        """Start `args` and call `probe` until it stops raising `retry_on`; raise, with the log, if the
        process exits first or `timeout` s pass."""
        process = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT, **popen)
        self.process = process
        last: Exception | None = None

        def answers() -> bool:
            nonlocal last
            if process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {process.returncode} while starting:\n{self.log_tail()}"
                )
            try:
                probe()
            except retry_on as exc:
                last = exc
                return False
            return True

        if not wait_until(answers, timeout=timeout, interval=interval):
            raise RuntimeError(
                f"{self.name} did not answer within {timeout:g}s (last: {last}):\n{self.log_tail()}"
            )

    def log_text(self) -> str:
        """What the process logged so far."""
        return self.log_path.read_text(errors="replace")

    def log_tail(self, lines: int = 30) -> str:
        """The end of what the process logged."""
        return "\n".join(self.log_text().splitlines()[-lines:])

    def stop(self, timeout: float) -> None:
        """Stop the process (bounded by `timeout` s per step) and close the log; the dir stays."""
        if self.process is not None:
            stop_process(self.process, timeout)
        if not self._log.closed:
            self._log.close()

    def remove(self) -> None:
        """Remove the temp dir and everything in it."""
        shutil.rmtree(self.dir, ignore_errors=True)


def serve_in_thread(server: ThreadingHTTPServer, *, poll_interval: float = 0.5) -> threading.Thread:
    """Run `server.serve_forever` in a daemon thread; return the thread."""
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": poll_interval}, daemon=True
    )
    thread.start()
    return thread


def stop_serving(server: ThreadingHTTPServer, thread: threading.Thread | None = None) -> None:
    """Stop serving, release the port, and give the serving thread a bounded time to end."""
    server.shutdown()
    server.server_close()
    if thread is not None:
        thread.join(5)


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that logs nothing (pytest shows a test's output) and answers with `reply`."""

    def reply(
        self, status: int, body: bytes, headers: Mapping[str, str], *, reason: str | None = None
    ) -> None:
        """Send the status (with `reason` as its phrase when given), the headers, and the body."""
        self.send_response(status, reason)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class LocalHTTPServer:
    """An HTTP server for `handler` on a free port of 127.0.0.1, served in a daemon thread until stop()."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self._server = ThreadingHTTPServer((LOCALHOST, 0), handler)
        self._thread = serve_in_thread(self._server)

    @property
    def port(self) -> int:
        """The bound port."""
        return int(self._server.server_address[1])

    @property
    def server(self) -> str:
        """`127.0.0.1:<port>`."""
        return f"{LOCALHOST}:{self.port}"

    def stop(self) -> None:
        """Stop serving."""
        stop_serving(self._server, self._thread)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
