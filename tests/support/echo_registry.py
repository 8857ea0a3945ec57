"""A registry stand-in on 127.0.0.1 that echoes the credentials it receives into its error texts.

Distribution never does this, but a proxy or a registry with verbose errors may; the client must
scrub every text it shows. It speaks just enough of the API v2 for a preflight and a manifest read:
`/v2/` with a Basic or Bearer challenge, a token endpoint, an upload that is refused, a manifest that
is unknown. Every error text, and the reason phrase, repeats the request's Authorization header.
"""

from __future__ import annotations

import base64
import json
import secrets
from typing import Any, Literal
from urllib.parse import urlparse

from tests.support.processes import LocalHTTPServer, QuietHandler


def fake_jwt() -> str:
    """A token shaped like a JWT (three base64url parts), unique per call."""
    parts = [secrets.token_urlsafe(24), secrets.token_urlsafe(48), secrets.token_urlsafe(32)]
    return ".".join(parts)


class EchoingRegistry(LocalHTTPServer):
    """Accepts `user`/`password`; refuses pushes and knows no manifest, quoting the credentials back."""

    def __init__(self, user: str, password: str, *, auth: Literal["basic", "bearer"] = "basic") -> None:
        self.user, self.password, self.auth = user, password, auth
        self.tokens: list[str] = []
        self.basic = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        outer = self

        class Handler(QuietHandler):
            protocol_version = "HTTP/1.1"

            def _answer(
                self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
            ) -> None:
                echo = self.headers.get("Authorization", "")
                self.reply(
                    status,
                    json.dumps(body).encode(),
                    {
                        "Content-Type": "application/json",
                        "Docker-Distribution-Api-Version": "registry/2.0",
                        **(headers or {}),
                    },
                    reason=f"Refused {echo}" if status >= 400 else None,
                )

            def _authorized(self) -> bool:
                given = self.headers.get("Authorization", "")
                if outer.auth == "basic":
                    return given == outer.basic
                return given.removeprefix("Bearer ") in outer.tokens

            def _challenge(self) -> None:
                port = outer.port
                if outer.auth == "basic":
                    challenge = 'Basic realm="echo"'
                else:
                    challenge = f'Bearer realm="http://127.0.0.1:{port}/token",service="echo"'
                self._answer(401, {"errors": [{"code": "UNAUTHORIZED"}]}, {"WWW-Authenticate": challenge})

            def _errors(self, status: int, code: str) -> None:
                echo = self.headers.get("Authorization", "")
                token = echo.removeprefix("Bearer ")
                message = f"header was {echo}; token {token}; password {outer.password}"
                self._answer(status, {"errors": [{"code": code, "message": message}]})

            def do_GET(self) -> None:
                path = urlparse(self.path).path
                if path == "/token":
                    if self.headers.get("Authorization") != outer.basic:
                        self._errors(401, "UNAUTHORIZED")
                        return
                    token = fake_jwt()
                    outer.tokens.append(token)
                    self._answer(200, {"token": token})
                elif not self._authorized():
                    self._challenge()
                elif path == "/v2/":
                    self._answer(200, {})
                else:
                    self._errors(404, "MANIFEST_UNKNOWN")

            def do_POST(self) -> None:
                if not self._authorized():
                    self._challenge()
                else:
                    self._errors(403, "DENIED")

        super().__init__(Handler)
