"""A registry stand-in on 127.0.0.1 whose every answer a test sets: odd bodies, lying manifests, gzip bombs,
slow, trickling and stalling answers.

It speaks the API v2 just far enough for the client's preflight, image-size read and tag check: `/v2/`
(no auth, Basic or Bearer), a token endpoint, blob uploads, manifests by digest or tag, blob HEADs.
Everything is a mutable attribute, so one server serves many cases (and hypothesis examples).
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlparse

from tests.support.processes import LocalHTTPServer, QuietHandler

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
_STALL_LIMIT_S = 60.0
"""A stalled answer is given up by the server itself after this, should a test forget to stop it."""


def digest_of(body: bytes) -> str:
    """`sha256:<hex>` of a body."""
    return "sha256:" + hashlib.sha256(body).hexdigest()


@dataclass
class Answer:
    """One HTTP answer, and how it is delivered."""

    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    """Seconds before the status line is sent."""
    trickle: float | None = None
    """Send the body one byte at a time, this many seconds apart."""
    stall: bool = False
    """Read the request and never answer."""


def json_answer(
    status: int, value: Any, *, headers: Mapping[str, str] | None = None, **kwargs: Any
) -> Answer:
    """An answer with a JSON body."""
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    return Answer(status, json.dumps(value).encode(), all_headers, **kwargs)


Override = Callable[[str, str], Answer | None]
"""(method, path) -> the answer to give instead of the registry's own, or None."""


class OddRegistry(LocalHTTPServer):
    """A registry whose manifests, blob sizes, upload answer and token answer are the test's to set."""

    def __init__(
        self, *, auth: Literal["none", "basic", "bearer"] = "none", user: str = "ci", password: str = "pw"
    ) -> None:
        self.auth = auth
        self.basic = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.manifests: dict[str, tuple[str, bytes]] = {}
        """Reference (digest or tag) -> (content type, body)."""
        self.blobs: dict[str, str] = {}
        """Blob digest -> the Content-Length a HEAD answers (a string: it may be anything)."""
        self.upload: Answer = Answer(202, headers={"Location": "/v2/upload/1"})
        self.token: Answer = json_answer(200, {"token": "opaque-token-0123456789"})
        self.override: Override | None = None
        self.delay = 0.0
        """Seconds every answer waits before its own delay, as a slow registry would."""
        self.requests: list[tuple[str, str]] = []
        """(method, path) of every request."""
        self.credentialed: list[tuple[str, str]] = []
        """(method, path) of every request that carried an Authorization header."""
        self.stop_event = threading.Event()
        outer = self

        class Handler(QuietHandler):
            protocol_version = "HTTP/1.1"

            def _send(self, answer: Answer) -> None:
                if answer.stall:
                    outer.stop_event.wait(_STALL_LIMIT_S)
                    self.close_connection = True
                    return
                if answer.delay or outer.delay:
                    outer.stop_event.wait(answer.delay + outer.delay)
                headers = {"Docker-Distribution-Api-Version": "registry/2.0", **answer.headers}
                if answer.trickle is None:
                    if self.command == "HEAD":
                        self.send_response(answer.status)
                        for name, value in headers.items():
                            self.send_header(name, value)
                        self.end_headers()
                        return
                    self.reply(answer.status, answer.body, headers)
                    return
                self.send_response(answer.status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                try:
                    for byte in answer.body:
                        if outer.stop_event.is_set():
                            return
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        time.sleep(answer.trickle)
                except OSError:
                    return

            def _answer(self) -> Answer:
                path = urlparse(self.path).path
                outer.requests.append((self.command, path))
                if self.headers.get("Authorization"):
                    outer.credentialed.append((self.command, path))
                if outer.override is not None and (special := outer.override(self.command, path)) is not None:
                    return special
                if path == "/token":
                    return outer.token
                if not self._authorized():
                    if outer.auth == "basic":
                        challenge = 'Basic realm="odd"'
                    else:
                        challenge = f'Bearer realm="http://127.0.0.1:{outer.port}/token",service="odd"'
                    return json_answer(401, {"errors": []}, headers={"WWW-Authenticate": challenge})
                if path == "/v2/":
                    return json_answer(200, {})
                if path.endswith("/blobs/uploads/"):
                    return outer.upload
                if "/manifests/" in path:
                    found = outer.manifests.get(path.rsplit("/", 1)[-1])
                    if found is None:
                        return json_answer(404, {"errors": [{"code": "MANIFEST_UNKNOWN", "message": "?"}]})
                    return Answer(200, found[1], {"Content-Type": found[0]})
                if "/blobs/" in path:
                    length = outer.blobs.get(path.rsplit("/", 1)[-1])
                    if length is None:
                        return Answer(404)
                    return Answer(200, headers={"Content-Length": length})
                return Answer(202 if self.command == "DELETE" else 404)

            def _authorized(self) -> bool:
                given = self.headers.get("Authorization", "")
                if outer.auth == "none":
                    return True
                return given == outer.basic if outer.auth == "basic" else given.startswith("Bearer ")

            def do_GET(self) -> None:
                self._send(self._answer())

            do_HEAD = do_POST = do_DELETE = do_GET

        super().__init__(Handler)

    def serve_manifest(self, value: Any, media_type: str = OCI_MANIFEST, *, tag: str | None = None) -> str:
        """Serve a manifest (any JSON value, or raw bytes) under its digest (and a tag); its digest."""
        body = value if isinstance(value, bytes) else json.dumps(value).encode()
        digest = digest_of(body)
        self.manifests[digest] = (media_type, body)
        if tag is not None:
            self.manifests[tag] = (media_type, body)
        return digest

    def reference(self, digest: str, repo: str = "team/web") -> str:
        """`127.0.0.1:<port>/<repo>@<digest>`."""
        return f"{self.server}/{repo}@{digest}"

    def stop(self) -> None:
        """Release every stalled or trickling answer, then stop serving."""
        self.stop_event.set()
        super().stop()
