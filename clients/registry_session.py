"""One conversation with a registry as one user: every exchange under one deadline, every body bounded, the
auth challenge answered, every server text scrubbed (docs/engine-rules.md#registry-api-v2)."""

from __future__ import annotations

import base64
import re
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import httpx

from clients import http_bounds, registry_shapes
from clients.http_bounds import ACCEPT_ENCODING, BodyRefused, BoundedBody, Deadline, DeadlineExceeded
from clients.registry_shapes import ShapeError
from model.budget import REGISTRY_DEADLINE_S
from model.errors import GitopsError
from model.http_origin import origin, redact

DEFAULT_TIMEOUT_S = 10.0
"""Timeout of every socket operation (connect, read, write and pool), in seconds."""
REQUEST_DEADLINE_FACTOR = 3
"""A whole exchange (connect, headers, body) gets this many times the per-operation timeout."""
MAX_BODY_BYTES = 8 * 1024 * 1024
"""Registries cap manifests at 4 MiB; anything far bigger is not an answer to read whole, raw or decoded."""
_CHALLENGE_PARAM = re.compile(r'([A-Za-z_]+)\s*=\s*(?:"([^"]*)"|([^,\s]*))')
_SCRUB_MIN_CHARS = 3
"""A shorter password is not replaced in server texts (it would mangle them); the Basic value still is."""
_JWT_PART_CHARS = 16
_INSECURE_HINT = (
    "`insecure: true` in gitops-deploy:registry skips certificate verification (and allows plain HTTP); "
    "prefer a certificate the machine trusts"
)


class RegistryError(GitopsError):
    """A registry check failed; the message names the registry, the user and the cause, never the password."""

    def __init__(self, registry: str, username: str, cause: str) -> None:
        self.registry = registry
        self.username = username
        self.cause = cause
        super().__init__(f"registry {registry} (user {username!r}): {cause}")


@dataclass(frozen=True)
class Challenge:
    """A parsed `WWW-Authenticate` header: `basic` or `bearer`, and its parameters (`realm`, `service`)."""

    scheme: str
    params: Mapping[str, str]


def parse_challenge(header: str) -> Challenge:
    """Parse `Basic realm="x"` or `Bearer realm="x",service="y",scope="z"`."""
    scheme, _, rest = header.strip().partition(" ")
    params = {m[1].lower(): m[2] if m[2] is not None else m[3] for m in _CHALLENGE_PARAM.finditer(rest)}
    return Challenge(scheme=scheme.lower(), params=params)


class RegistrySession:
    """Credentials go only to the registry's own origin and the token realm its challenge names, never over
    plain HTTP unless `insecure` allows it; the password only ever travels in headers."""

    def __init__(
        self,
        server: str,
        username: str,
        password: str,
        *,
        insecure: bool = False,
        timeout: float = DEFAULT_TIMEOUT_S,
        deadline: float = REGISTRY_DEADLINE_S,
        verify: ssl.SSLContext | str | bool = True,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.server = server
        self.username = username
        self._password = password
        self.insecure = insecure
        # Only what BoundedBody decodes (httpx would also offer br and zstd when they are installed).
        self._http = httpx.Client(
            timeout=httpx.Timeout(timeout),
            verify=False if insecure else verify,
            transport=transport,
            follow_redirects=False,
            headers={"Accept-Encoding": ACCEPT_ENCODING},
        )
        self._timeout = timeout
        self._deadline = Deadline(deadline)
        """Shared by every exchange of this client: it starts now, with the conversation."""
        self._base_url: str | None = None
        self._challenge: Challenge | None = None
        self._tokens: dict[tuple[str, ...], str] = {}

    def _secrets(self) -> list[str]:
        """Every credential a server could echo: the Basic value, each token (and JWT part), the password."""
        basic = self._basic()
        values = [basic, basic.removeprefix("Basic ")]
        for token in self._tokens.values():
            values += [token, *(part for part in token.split(".") if len(part) >= _JWT_PART_CHARS)]
        if len(self._password) >= _SCRUB_MIN_CHARS:
            values.append(self._password)
        return values

    def scrub(self, text: str) -> str:
        """`text` without any credential of this client and without any URL's userinfo."""
        return redact(text, self._secrets())

    def _error(self, cause: str) -> RegistryError:
        return RegistryError(self.server, self.username, self.scrub(cause))

    def _out_of_time(self, url: str) -> RegistryError:
        return self._error(
            f"unreachable: the registry did not finish answering within {self._deadline.seconds:g}s, "
            f"the deadline every request of this check shares (last: {url})"
        )

    def _transport_error(self, url: str, exc: BaseException, seconds: float) -> RegistryError:
        """A failed exchange, explained from the cause http_bounds reads in its exception chain."""
        cause = http_bounds.classify(exc)
        if isinstance(exc, DeadlineExceeded):
            return self._error(f"unreachable: {url} did not finish answering within {seconds:g}s")
        if cause.kind == http_bounds.TIMEOUT:
            return self._error(f"unreachable: {url} did not answer within {self._timeout:g}s")
        if cause.kind == http_bounds.TLS and url.startswith("https://"):
            if self.insecure:
                return self._error(f"{cause.detail} at {url}, even with `insecure: true`")
            return self._error(f"{cause.detail} at {url}; {_INSECURE_HINT}")
        if cause.kind in (http_bounds.REFUSED, http_bounds.DNS, http_bounds.CONNECT):
            return self._error(f"unreachable: cannot connect to {url} ({cause.detail})")
        if cause.kind == http_bounds.INVALID_URL:
            return self._error(f"cannot send a request to {url} ({cause.detail})")
        if cause.kind == http_bounds.UNEXPECTED:
            return self._error(f"the request to {url} failed unexpectedly ({cause.detail})")
        return self._error(f"not a registry: {url} did not answer HTTP ({cause.detail})")

    def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """One request under the conversation's deadline and a deadline of its own on the whole exchange
        (httpx bounds each read, not a trickle); any failure becomes a RegistryError."""
        left = self._deadline.left()
        if left <= 0:
            raise self._out_of_time(url)
        seconds = min(REQUEST_DEADLINE_FACTOR * self._timeout, left)
        per_operation = min(self._timeout, left)
        kwargs.setdefault("timeout", httpx.Timeout(per_operation))
        deadline = Deadline(seconds)
        try:
            return http_bounds.call_within(
                seconds, lambda: self._exchange(method, url, deadline, **kwargs), what=url
            )
        except RegistryError:
            raise
        except Exception as exc:
            # A bound cut to what is left of the conversation that runs out is the conversation's deadline,
            # whichever of the exchange's deadline and httpx's timeout noticed first.
            exchange = isinstance(exc, DeadlineExceeded)
            timed_out = exchange or http_bounds.classify(exc).kind == http_bounds.TIMEOUT
            if timed_out and ((seconds if exchange else per_operation) >= left or self._deadline.left() <= 0):
                raise self._out_of_time(url) from None
            raise self._transport_error(url, exc, seconds) from None

    def _exchange(self, method: str, url: str, deadline: Deadline, **kwargs: Any) -> httpx.Response:
        """A buffered copy of the response, its body decoded here (BoundedBody), never by httpx."""
        with self._http.stream(method, url, **kwargs) as streamed:
            headers = [(k, v) for k, v in streamed.headers.multi_items() if k.lower() != "content-encoding"]
            try:
                body = BoundedBody(streamed.headers.get("content-encoding", ""), MAX_BODY_BYTES)
                if method != "HEAD":
                    for chunk in streamed.iter_raw():
                        body.feed(chunk)
                        deadline.check(url)
                content = body.content()
            except BodyRefused as exc:
                raise self._error(f"not a registry: {url} answered with {exc}") from None
            return httpx.Response(
                streamed.status_code, headers=headers, content=content, request=streamed.request
            )

    def _reason(self, response: httpx.Response) -> str:
        """`<status> <reason>`, the reason scrubbed: a server chooses it."""
        return self.scrub(f"{response.status_code} {response.reason_phrase}")

    def _error_text(self, response: httpx.Response) -> str:
        """` (CODE: message)` from a registry error body, or empty (a body of another shape says nothing)."""
        try:
            body = registry_shapes.parse(response.content, registry_shapes.ERRORS)
        except ShapeError:
            return ""
        parts = [f"{e.get('code')}: {e.get('message')}" for e in body["errors"]]
        return self.scrub(f" ({http_bounds.one_line('; '.join(parts))})") if parts else ""

    def _resolve(self, location: str | None) -> httpx.URL | None:
        """A Location header resolved against the registry; None when there is none or it does not parse."""
        if not location or self._base_url is None:
            return None
        try:
            return httpx.URL(self._base_url).join(location)
        except httpx.InvalidURL:
            return None

    def _on_registry(self, url: httpx.URL | str) -> bool:
        """Whether `url` is on the registry's own origin, where its credentials may go."""
        return self._base_url is not None and origin(url) == origin(self._base_url)

    def _downgrades(self, scheme: str) -> bool:
        """Whether credentials sent over `scheme` would downgrade the registry's https without `insecure`."""
        return scheme == "http" and (self._base_url or "").startswith("https://") and not self.insecure

    def ping(self) -> Challenge | None:
        """`GET /v2/` without credentials: find the scheme and the auth challenge (None: no auth)."""
        if self._base_url is not None:
            return self._challenge
        errors: list[RegistryError] = []
        for base in [f"https://{self.server}"] + ([f"http://{self.server}"] if self.insecure else []):
            try:
                response = self._send("GET", f"{base}/v2/")
            except RegistryError as err:
                errors.append(err)
                continue
            self._base_url = base
            return self._read_ping(response)
        # insecure: both schemes failed; each cause matters (a TLS error may only mean plain HTTP).
        raise (
            errors[0]
            if len(errors) == 1
            else self._error("; and over plain HTTP: ".join(e.cause for e in errors))
        )

    def _read_ping(self, response: httpx.Response) -> Challenge | None:
        """Decide from the `/v2/` answer whether this is a registry and how it authenticates."""
        url = str(response.request.url)
        header = response.headers.get("www-authenticate", "")
        if response.status_code == 401 and header:
            challenge = parse_challenge(header)
            if challenge.scheme not in ("basic", "bearer"):
                raise self._error(f"unsupported auth scheme {challenge.scheme!r} in the challenge from {url}")
            if challenge.scheme == "bearer" and not challenge.params.get("realm"):
                raise self._error(f"the Bearer challenge from {url} names no token realm")
            self._challenge = challenge
            return challenge
        is_json = response.headers.get("content-type", "").startswith("application/json")
        if response.status_code == 200 and ("docker-distribution-api-version" in response.headers or is_json):
            return None
        kind = self.scrub(response.headers.get("content-type", "no content type"))
        raise self._error(
            f"not a registry: GET {url} answered {self._reason(response)} ({kind}) "
            "instead of the registry API v2 (200, or 401 with an auth challenge)"
        )

    def _basic(self) -> str:
        return "Basic " + base64.b64encode(f"{self.username}:{self._password}".encode()).decode()

    def _token(self, scopes: Sequence[str]) -> str:
        """A Bearer token for these scopes from the challenge's realm, got with basic credentials."""
        key = tuple(sorted(scopes))
        if key in self._tokens:
            return self._tokens[key]
        assert self._challenge is not None
        realm = self._realm()
        params = [("account", self.username)]
        if service := self._challenge.params.get("service"):
            params.append(("service", service))
        params.extend(("scope", scope) for scope in key)
        response = self._send("GET", realm, params=params, headers={"Authorization": self._basic()})
        if response.status_code == 401:
            raise self._error(
                f"wrong credentials: the token service {realm} answered 401 Unauthorized "
                "(unknown user or wrong password)"
            )
        if response.status_code == 403:
            raise self._error(
                f"no permission: the token service {realm} refused scopes {', '.join(key)} (403)"
            )
        if response.status_code != 200:
            raise self._error(f"the token service {realm} answered {self._reason(response)}")
        try:
            body = registry_shapes.load(response.content)
        except ShapeError as exc:
            raise self._error(f"the token service {realm} did not answer JSON: an answer {exc}") from None
        if (problem := registry_shapes.problem(body, registry_shapes.TOKEN)) is not None:
            raise self._error(f"the token service {realm} answered without a token: an answer {problem}")
        token = body.get("token") or body.get("access_token")
        if not token:
            raise self._error(f"the token service {realm} answered without a token")
        self._tokens[key] = token
        return token

    def _realm(self) -> str:
        """The token realm the registry's challenge names; refused when it would downgrade to plain HTTP."""
        assert self._challenge is not None
        realm = self._challenge.params["realm"]
        try:
            scheme = httpx.URL(realm).scheme
        except httpx.InvalidURL:
            scheme = ""
        if scheme not in ("http", "https"):
            raise self._error(f"the token realm {realm!r} the registry names is not an http(s) URL")
        if self._downgrades(scheme):
            raise self._error(
                f"the registry at {self._base_url} names a plain-HTTP token realm {realm}; the credentials "
                "would travel unencrypted, so they are not sent (fix the realm, or set `insecure: true`)"
            )
        return realm

    def _auth_header(self, scopes: Sequence[str]) -> dict[str, str]:
        challenge = self.ping()
        if challenge is None:
            return {}
        if challenge.scheme == "basic":
            return {"Authorization": self._basic()}
        return {"Authorization": f"Bearer {self._token(scopes)}"}

    def request(
        self, method: str, path: str, scopes: Sequence[str], *, headers: Mapping[str, str] | None = None
    ) -> httpx.Response:
        """An authenticated request to `/v2/...` with the credentials or a token for these scopes."""
        auth = self._auth_header(scopes)
        return self._send(method, f"{self._base_url}{path}", headers={**(headers or {}), **auth})

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
