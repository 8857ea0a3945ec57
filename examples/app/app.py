"""The example app: a stdlib HTTP server on port 8080 with GET /healthz, for the stacks to build."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType

ROLE = os.environ.get("APP_ROLE", "web")


class Handler(BaseHTTPRequestHandler):
    """Answers /healthz for probes and / with the app's role."""

    server_version = "example-app"

    def do_GET(self) -> None:
        if self.path == "/healthz":
            self._send(200, {"status": "ok"})
        elif self.path == "/":
            self._send(200, {"app": "example", "role": ROLE})
        else:
            self._send(404, {"error": "not found"})

    def _send(self, status: int, body: dict[str, str]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        # Probes every few seconds would flood the pod log; errors still go to stderr.
        if not self.path.startswith("/healthz"):
            super().log_message(format, *args)


def serve(host: str = "0.0.0.0", port: int = 8080) -> ThreadingHTTPServer:
    """Bind the server (port 0 picks a free port) without starting it."""
    return ThreadingHTTPServer((host, port), Handler)


def main() -> None:
    server = serve(host=os.environ.get("HOST", "0.0.0.0"), port=int(os.environ.get("PORT", "8080")))

    def stop(signum: int, frame: FrameType | None) -> None:
        # As PID 1 the process gets no default SIGTERM handling: shut down so the pod stops at once.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    print(f"listening on :{server.server_address[1]} as {ROLE}", file=sys.stderr, flush=True)
    with server:
        server.serve_forever()


if __name__ == "__main__":
    main()
