"""The example app: a stdlib HTTP server on port 8080 with GET /healthz, for the stacks to build.

GET /healthz answers 200 {"status": "ok"} (the health gate's and the probes' endpoint), GET / the app's
role. It stops cleanly on SIGTERM, as a pod's PID 1 must.
"""

from __future__ import annotations

import argparse
import contextlib
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


EPILOG = """\
environment:
  PORT      port to listen on (default 8080)
  HOST      address to listen on (default 0.0.0.0)
  APP_ROLE  the role GET / reports (default web; the image's build argument sets it)

exit codes:
  0  stopped by SIGTERM or SIGINT
  1  could not listen (the port is taken, or PORT is not a number)
  2  a bad option
"""


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGTERM; the environment, not options, configures it."""
    argparse.ArgumentParser(
        description=__doc__, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    ).parse_args(argv)
    try:
        server = serve(host=os.environ.get("HOST", "0.0.0.0"), port=int(os.environ.get("PORT", "8080")))
    except (OSError, ValueError) as exc:
        print(f"error: cannot listen: {exc}", file=sys.stderr)
        return 1

    def stop(signum: int, frame: FrameType | None) -> None:
        # As PID 1 the process gets no default SIGTERM handling: shut down so the pod stops at once.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    print(f"listening on :{server.server_address[1]} as {ROLE}", file=sys.stderr, flush=True)
    with server, contextlib.suppress(KeyboardInterrupt):  # Ctrl-C when run by hand
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
