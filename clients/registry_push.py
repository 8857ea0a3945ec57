"""The push preflight: prove the credentials work and may push to each repository, pushing nothing
(docs/engine-rules.md#registry-api-v2)."""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from clients import registry_shapes
from clients.registry_session import RegistryError, RegistrySession
from clients.registry_shapes import ShapeError


@dataclass(frozen=True)
class PreflightResult:
    """What a passing preflight found."""

    registry: str
    username: str
    auth: str
    """`basic`, `bearer` or `none` (the registry asked for no credentials)."""
    base_url: str
    """`https://host` or, with `insecure`, possibly `http://host`."""
    repositories: tuple[str, ...]
    """Repositories the user may push to."""


class PushPreflight(RegistrySession):
    """A session that can prove push permission."""

    def preflight(self, repositories: Sequence[str]) -> PreflightResult:
        """Prove the credentials work and may push to each repository; RegistryError otherwise."""
        challenge = self.ping()
        scopes = [f"repository:{repo}:pull,push" for repo in repositories]
        if challenge is not None:
            response = self.request("GET", "/v2/", scopes)
            if response.status_code == 401:
                raise self._error(
                    f"wrong credentials: GET {response.request.url} answered 401 Unauthorized "
                    "(unknown user or wrong password)"
                )
            if response.status_code != 200:
                raise self._error(
                    f"GET {response.request.url} answered {self._reason(response)} with credentials"
                )
            if challenge.scheme == "bearer":
                self._check_token_scopes(repositories, scopes)
        for repo in repositories:
            self._probe_push(repo, scopes)
        return PreflightResult(
            registry=self.server,
            username=self.username,
            auth=challenge.scheme if challenge else "none",
            base_url=self._base_url or "",
            repositories=tuple(repositories),
        )

    def _check_token_scopes(self, repositories: Sequence[str], scopes: Sequence[str]) -> None:
        """When the token is a JWT with an `access` claim, read the granted actions from it."""
        claims = _jwt_claims(self._token(scopes))
        if claims is None or registry_shapes.problem(claims, registry_shapes.TOKEN_CLAIMS) is not None:
            return  # an opaque token, or claims of another shape: the push probe decides
        granted: dict[str, set[str]] = {}
        for entry in claims["access"]:
            if entry.get("type") == "repository":
                granted.setdefault(str(entry.get("name")), set()).update(entry.get("actions") or ())
        for repo in repositories:
            actions = granted.get(repo, set())
            if "push" not in actions and "*" not in actions:
                raise self._error(
                    f"no push permission on repository {repo!r}: the token service granted "
                    f"{', '.join(sorted(actions)) or 'nothing'} for scope repository:{repo}:pull,push"
                )

    def _probe_push(self, repo: str, scopes: Sequence[str]) -> None:
        """Start a blob upload and cancel it at once: the one request that proves push permission."""
        path = f"/v2/{repo}/blobs/uploads/"
        response = self.request("POST", path, scopes)
        if response.status_code in (401, 403):
            raise self._error(
                f"no push permission on repository {repo!r}: POST {path} answered "
                f"{self._reason(response)}{self._error_text(response)}"
            )
        if response.status_code != 202:
            raise self._error(
                f"cannot start an upload to repository {repo!r}: "
                f"{self._reason(response)}{self._error_text(response)}"
            )
        target = self.upload_cancel_url(response.headers.get("location"))
        if target is not None:
            # Best effort, under the conversation's deadline: the registry purges an abandoned upload anyway.
            with contextlib.suppress(RegistryError):
                self._send("DELETE", target, headers=self._auth_header(scopes))

    def upload_cancel_url(self, location: str | None) -> str | None:
        """Where to cancel an upload: a Location on the registry's own origin (resolved against it), else None
        (another origin, or a downgrade to http behind a TLS-terminating proxy, gets no credentials)."""
        url = self._resolve(location)
        return str(url) if url is not None and self._on_registry(url) else None


def _jwt_claims(token: str) -> dict[str, Any] | None:
    """The unverified claims of a JWT (only to explain a missing scope; the registry verifies it)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = registry_shapes.load(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, ShapeError):
        return None
    return claims if isinstance(claims, dict) else None
