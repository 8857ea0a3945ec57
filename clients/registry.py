"""A small typed client for the container registry HTTP API v2: auth challenge, push preflight, image size.

Every conversation (one client: a preflight, an image-size read, a rollback-target check) has one
deadline that all its exchanges share, so a registry that answers slowly, trickles or stalls costs at
most that long, which is what the deploy budget counts (model/budget.py). Every body is
read with a cap on its raw and its decoded size (http_bounds.BoundedBody), and every JSON answer is
read against its shape (clients/registry_shapes.py).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import re
import ssl
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import httpx

from clients import http_bounds, registry_shapes
from clients.http_bounds import (
    ACCEPT_ENCODING,
    BodyRefused,
    BoundedBody,
    Deadline,
    DeadlineExceeded,
    call_within,
)
from clients.registry_shapes import ShapeError
from model.budget import REGISTRY_DEADLINE_S
from model.http_origin import origin, redact_urls
from model.image_ref import DIGEST

DEFAULT_TIMEOUT_S = 10.0
"""Timeout of every socket operation (connect, read, write and pool), in seconds."""
REQUEST_DEADLINE_FACTOR = 3
"""A whole exchange (connect, headers, body) gets this many times the per-operation timeout."""
MAX_BODY_BYTES = 8 * 1024 * 1024
"""Registries cap manifests at 4 MiB; anything far bigger is not an answer to read whole, raw or decoded."""
BLOB_CHECK_WORKERS = 4
"""Blob HEADs in flight at once while an image's declared sizes are checked."""
_REDIRECTS = (301, 302, 303, 307, 308)

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
IMAGE_MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEX_TYPES = (OCI_INDEX, DOCKER_MANIFEST_LIST)
ACCEPT = ", ".join((*IMAGE_MANIFEST_TYPES, *INDEX_TYPES))

_CHALLENGE_PARAM = re.compile(r'([A-Za-z_]+)\s*=\s*(?:"([^"]*)"|([^,\s]*))')
_SCRUB_MIN_CHARS = 3
"""A shorter password is not replaced in server texts (it would mangle them); the Basic value still is."""
_INSECURE_HINT = (
    "`insecure: true` in gitops-deploy:registry skips certificate verification (and allows plain HTTP); "
    "prefer a certificate the machine trusts"
)


class RegistryError(Exception):
    """A registry check failed; the message names the registry, the user and the cause, never the password."""

    def __init__(self, registry: str, username: str, cause: str) -> None:
        self.registry = registry
        self.username = username
        self.cause = cause
        super().__init__(f"registry {registry} (user {username!r}): {cause}")


@dataclass(frozen=True)
class Challenge:
    """A parsed `WWW-Authenticate` header."""

    scheme: str
    """`basic` or `bearer` (lower case)."""
    params: Mapping[str, str]
    """Challenge parameters such as `realm`, `service`, `scope`, `error`."""


@dataclass(frozen=True)
class PreflightResult:
    """What a passing preflight found."""

    registry: str
    """The registry host."""
    username: str
    """The user that was checked."""
    auth: str
    """`basic`, `bearer` or `none` (the registry asked for no credentials)."""
    base_url: str
    """`https://host` or, with `insecure`, possibly `http://host`."""
    repositories: tuple[str, ...]
    """Repositories the user may push to."""


@dataclass(frozen=True)
class ImageInfo:
    """The size of one platform's image, as the registry's manifests describe it."""

    reference: str
    """The digest reference that was read."""
    media_type: str
    """Media type of the manifest the reference points to (image manifest, index or manifest list)."""
    manifest_digest: str
    """Digest of the platform's image manifest (the reference's digest for a single-platform image)."""
    platform: str
    """Platform that was selected from an index, or the requested one for a single manifest."""
    layers: int
    """Number of layers."""
    size_bytes: int
    """Sum of the layer sizes plus the config blob size (compressed, as pushed)."""


def parse_challenge(header: str) -> Challenge:
    """Parse `Basic realm="x"` or `Bearer realm="x",service="y",scope="z"`."""
    scheme, _, rest = header.strip().partition(" ")
    params = {
        m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
        for m in _CHALLENGE_PARAM.finditer(rest)
    }
    return Challenge(scheme=scheme.lower(), params=params)


def split_reference(server: str, reference: str) -> tuple[str, str]:
    """`server/team/app@sha256:x` -> (`team/app`, `sha256:x`); ValueError naming what is wrong."""
    repo, sep, digest = reference.partition("@")
    if not sep or not DIGEST.fullmatch(digest):
        raise ValueError(
            f"expected a digest reference '{server}/<repository>@sha256:<64 hex>', got {reference!r}"
        )
    prefix = f"{server}/"
    if not repo.startswith(prefix) or len(repo) == len(prefix):
        raise ValueError(f"image {reference!r} is not on registry {server!r}")
    return repo[len(prefix) :], digest


def parse_platform(platform: str) -> tuple[str, str, str | None]:
    """`linux/arm64/v8` -> (`linux`, `arm64`, `v8`); ValueError when malformed."""
    parts = platform.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise ValueError(f"expected a platform 'os/arch' or 'os/arch/variant', got {platform!r}")
    return parts[0], parts[1], parts[2] if len(parts) == 3 else None


class RegistryClient:
    """Talk to one registry as one user; every request has a timeout, the password only goes in headers.

    Credentials go only to the registry's own origin (the scheme and host:port that answered `/v2/`)
    and to the token realm its challenge names, never over plain HTTP unless `insecure` allows it.
    Every text a registry or token service sends back is scrubbed of the password, the Basic value and
    any token before it becomes part of a message.
    """

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
        self._http = httpx.Client(
            timeout=httpx.Timeout(timeout),
            verify=False if insecure else verify,
            transport=transport,
            follow_redirects=False,
            # Only what BoundedBody decodes (httpx would also offer br and zstd when they are installed).
            headers={"Accept-Encoding": ACCEPT_ENCODING},
        )
        self._timeout = timeout
        self._deadline = Deadline(deadline)
        """Shared by every exchange of this client: it starts now, with the conversation."""
        self._base_url: str | None = None
        self._challenge: Challenge | None = None
        self._tokens: dict[tuple[str, ...], str] = {}

    # -- errors ---------------------------------------------------------------------------------

    def _secrets(self) -> list[str]:
        """Every credential a server could echo: the Basic value, each token, the password; longest first."""
        basic = self._basic()
        values = [basic, basic.removeprefix("Basic ")]
        for token in self._tokens.values():
            values.append(token)
            values += [part for part in token.split(".") if len(part) >= 16]  # a JWT's parts
        if len(self._password) >= _SCRUB_MIN_CHARS:
            values.append(self._password)
        return sorted(set(values), key=len, reverse=True)

    def scrub(self, text: str) -> str:
        """`text` without any credential of this client (for every text a server sends back)."""
        for secret in self._secrets():
            text = text.replace(secret, "[secret]")
        return text

    def _error(self, cause: str) -> RegistryError:
        """Build the one error type; the cause is scrubbed again, in case a server text got in unscrubbed,
        and every URL in it loses its userinfo (a token realm is the registry's to name)."""
        return RegistryError(self.server, self.username, redact_urls(self.scrub(cause)))

    def _transport_error(self, url: str, exc: BaseException, deadline: float) -> RegistryError:
        """Turn a failed exchange into an explained RegistryError (the cause read by http_bounds)."""
        cause = http_bounds.classify(exc)
        if isinstance(exc, DeadlineExceeded):
            if self._deadline.left() <= 0:
                return self._out_of_time(url)
            return self._error(f"unreachable: {url} did not finish answering within {deadline:g}s")
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

    def _out_of_time(self, url: str) -> RegistryError:
        return self._error(
            f"unreachable: the registry did not finish answering within {self._deadline.seconds:g}s, "
            f"the deadline every request of this check shares (last: {url})"
        )

    # -- transport ------------------------------------------------------------------------------

    def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """One request under the conversation's deadline, and a deadline of its own on the whole exchange.

        httpx's timeouts bound each read, so a server that trickles bytes could stretch a request
        without end; the exchange runs in a daemon thread that is abandoned at the deadline.
        Any failure, expected or not, becomes a RegistryError.
        """
        left = self._deadline.left()
        if left <= 0:
            raise self._out_of_time(url)
        seconds = min(REQUEST_DEADLINE_FACTOR * self._timeout, left)
        deadline = Deadline(seconds)
        kwargs.setdefault("timeout", httpx.Timeout(min(self._timeout, left)))
        try:
            return call_within(seconds, lambda: self._exchange(method, url, deadline, **kwargs), what=url)
        except RegistryError:
            raise
        except Exception as exc:
            raise self._transport_error(url, exc, seconds) from None

    def _exchange(self, method: str, url: str, deadline: Deadline, **kwargs: Any) -> httpx.Response:
        """Send, then read and decode a bounded body before the deadline; a buffered copy of the response.

        The body is decoded here, never by httpx (BoundedBody); the copy carries no Content-Encoding.
        """
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
        """` (CODE: message)` from a registry error body, scrubbed, or empty."""
        return self.scrub(_registry_error_text(response))

    def ping(self) -> Challenge | None:
        """`GET /v2/` without credentials: find the scheme and the auth challenge (None: no auth)."""
        if self._base_url is not None:
            return self._challenge
        bases = [f"https://{self.server}"] + ([f"http://{self.server}"] if self.insecure else [])
        response: httpx.Response | None = None
        errors: list[RegistryError] = []
        for base in bases:
            try:
                response = self._send("GET", f"{base}/v2/")
            except RegistryError as err:
                errors.append(err)
                continue
            self._base_url = base
            break
        if response is None:
            if len(errors) == 1:
                raise errors[0]
            # insecure: both schemes failed; each cause matters (a TLS error may only mean plain HTTP).
            raise self._error("; and over plain HTTP: ".join(err.cause for err in errors))
        return self._read_ping(response)

    def _read_ping(self, response: httpx.Response) -> Challenge | None:
        """Decide from the `/v2/` answer whether this is a registry and how it authenticates."""
        url = str(response.request.url)
        header = response.headers.get("www-authenticate", "")
        is_v2 = "docker-distribution-api-version" in response.headers
        if response.status_code == 401 and header:
            challenge = parse_challenge(header)
            if challenge.scheme not in ("basic", "bearer"):
                raise self._error(f"unsupported auth scheme {challenge.scheme!r} in the challenge from {url}")
            if challenge.scheme == "bearer" and not challenge.params.get("realm"):
                raise self._error(f"the Bearer challenge from {url} names no token realm")
            self._challenge = challenge
            return challenge
        if response.status_code == 200 and (is_v2 or _is_json(response)):
            self._challenge = None
            return None
        kind = self.scrub(response.headers.get("content-type", "no content type"))
        raise self._error(
            f"not a registry: GET {url} answered {self._reason(response)} ({kind}) "
            "instead of the registry API v2 (200, or 401 with an auth challenge)"
        )

    # -- auth -----------------------------------------------------------------------------------

    def _basic(self) -> str:
        raw = f"{self.username}:{self._password}".encode()
        return "Basic " + base64.b64encode(raw).decode()

    def _token(self, scopes: Sequence[str]) -> str:
        """A Bearer token for these scopes from the challenge's realm, got with basic credentials."""
        key = tuple(sorted(scopes))
        if key in self._tokens:
            return self._tokens[key]
        assert self._challenge is not None
        realm = self._realm()
        params: list[tuple[str, str]] = [("account", self.username)]
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
        if scheme == "http" and (self._base_url or "").startswith("https://") and not self.insecure:
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
        self.ping()
        all_headers = {**(headers or {}), **self._auth_header(scopes)}
        return self._send(method, f"{self._base_url}{path}", headers=all_headers)

    # -- preflight ------------------------------------------------------------------------------

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
        if challenge is not None and challenge.scheme == "bearer":
            self._check_token_scopes(repositories)
        for repo in repositories:
            self._probe_push(repo, scopes)
        return PreflightResult(
            registry=self.server,
            username=self.username,
            auth=challenge.scheme if challenge else "none",
            base_url=self._base_url or "",
            repositories=tuple(repositories),
        )

    def _check_token_scopes(self, repositories: Sequence[str]) -> None:
        """When the token is a JWT with an `access` claim, read the granted actions from it."""
        token = self._token([f"repository:{repo}:pull,push" for repo in repositories])
        claims = _jwt_claims(token)
        if claims is None or registry_shapes.problem(claims, registry_shapes.TOKEN_CLAIMS) is not None:
            return  # an opaque token, or claims of another shape: the push probe decides
        granted: dict[str, set[str]] = {}
        for entry in claims["access"]:
            if entry.get("type") == "repository":
                granted.setdefault(str(entry.get("name")), set()).update(entry.get("actions") or ())
        for repo in repositories:
            actions = granted.get(repo, set())
            if "push" not in actions and "*" not in actions:
                got = ", ".join(sorted(actions)) or "nothing"
                raise self._error(
                    f"no push permission on repository {repo!r}: the token service granted {got} "
                    f"for scope repository:{repo}:pull,push"
                )

    def _probe_push(self, repo: str, scopes: Sequence[str]) -> None:
        """Start a blob upload and cancel it at once: the one request that proves push permission."""
        response = self.request("POST", f"/v2/{repo}/blobs/uploads/", scopes)
        if response.status_code in (401, 403):
            detail = self._error_text(response)
            raise self._error(
                f"no push permission on repository {repo!r}: POST /v2/{repo}/blobs/uploads/ answered "
                f"{self._reason(response)}{detail}"
            )
        if response.status_code != 202:
            raise self._error(
                f"cannot start an upload to repository {repo!r}: "
                f"{self._reason(response)}{self._error_text(response)}"
            )
        target = self.upload_cancel_url(response.headers.get("location"))
        if target is not None:
            # Best effort, under the same deadline as every request: an abandoned upload is purged
            # by the registry anyway.
            with contextlib.suppress(RegistryError):
                self._send("DELETE", target, headers=self._auth_header(scopes))

    def upload_cancel_url(self, location: str | None) -> str | None:
        """Where to cancel an upload, or None when credentials must not go there.

        A relative Location resolves against the registry. An absolute one on another origin, or one
        that downgrades https to http (common behind a TLS-terminating proxy), gets no request at
        all: the cancel is a courtesy, and credentials go only to the registry's own origin.
        """
        url = self._resolve(location)
        return str(url) if url is not None and origin(url) == origin(self._base_url or "") else None

    def _resolve(self, location: str | None) -> httpx.URL | None:
        """A Location header resolved against the registry; None when there is none or it does not parse."""
        if not location or self._base_url is None:
            return None
        try:
            return httpx.URL(self._base_url).join(location)
        except httpx.InvalidURL:
            return None

    # -- manifests ------------------------------------------------------------------------------

    def _get_manifest(self, repo: str, reference: str) -> httpx.Response:
        """`GET` a manifest by digest or tag (OCI and Docker v2 types): a 200 answer or RegistryError."""
        response = self.request(
            "GET",
            f"/v2/{repo}/manifests/{reference}",
            [f"repository:{repo}:pull"],
            headers={"Accept": ACCEPT},
        )
        where = f"{self.server}/{repo}{'@' if DIGEST.fullmatch(reference) else ':'}{reference}"
        if response.status_code == 404:
            raise self._error(f"manifest not found: {where} does not exist{self._error_text(response)}")
        if response.status_code in (401, 403):
            raise self._error(f"no pull permission on repository {repo!r}: {self._reason(response)}")
        if response.status_code != 200:
            raise self._error(f"GET manifest {where} answered {self._reason(response)}")
        return response

    def _read_manifest(self, response: httpx.Response, where: str) -> tuple[str, dict[str, Any]]:
        """(media type, manifest) of a manifest answer, read against the shape its media type names."""
        try:
            body = registry_shapes.parse(response.content, registry_shapes.ANY_MANIFEST)
        except ShapeError as exc:
            raise self._error(f"{where} answered a manifest {exc}") from None
        media_type = body.get("mediaType") or response.headers.get("content-type", "").split(";")[0]
        if media_type not in (*IMAGE_MANIFEST_TYPES, *INDEX_TYPES):
            raise self._error(f"manifest {where} has unsupported media type {media_type!r}")
        shape = registry_shapes.INDEX if media_type in INDEX_TYPES else registry_shapes.IMAGE_MANIFEST
        if (problem := registry_shapes.problem(body, shape)) is not None:
            raise self._error(f"{where} answered a manifest {problem}")
        return media_type, body

    def manifest(self, repo: str, reference: str) -> tuple[str, dict[str, Any]]:
        """(media type, manifest) of `repo@reference`, checked against the digest and its shape."""
        response = self._get_manifest(repo, reference)
        where = f"{self.server}/{repo}@{reference}"
        if DIGEST.fullmatch(reference):
            actual = "sha256:" + hashlib.sha256(response.content).hexdigest()
            if actual != reference:
                raise self._error(f"manifest {where} has digest {actual}, not the one asked for")
        return self._read_manifest(response, where)

    def image_size(self, reference: str, platform: str) -> ImageInfo:
        """Size of the image `reference` names, for `platform` when it is an index or manifest list.

        The size is what the manifest declares, and each declared size is first checked against what
        the registry serves for that blob (`_check_blob_sizes`): a manifest can declare anything.
        """
        try:
            repo, digest = split_reference(self.server, reference)
            want = parse_platform(platform)
        except ValueError as exc:
            raise self._error(str(exc)) from None
        media_type, body = self.manifest(repo, digest)
        manifest_digest, image_type, image = digest, media_type, body
        if media_type in INDEX_TYPES:
            manifest_digest = self._select_platform(reference, body, want)
            image_type, image = self.manifest(repo, manifest_digest)
            if image_type not in IMAGE_MANIFEST_TYPES:
                raise self._error(
                    f"the {platform} entry of {reference} is not an image manifest ({image_type})"
                )
        layers = image["layers"]
        self._check_blob_sizes(repo, f"{self.server}/{repo}@{manifest_digest}", image)
        return ImageInfo(
            reference=reference,
            media_type=media_type,
            manifest_digest=manifest_digest,
            platform=platform,
            layers=len(layers),
            size_bytes=sum(layer["size"] for layer in layers) + image["config"]["size"],
        )

    def _check_blob_sizes(self, repo: str, where: str, image: Mapping[str, Any]) -> None:
        """Every declared size (config and layers) equals the registry's `Content-Length` for that blob.

        Distribution accepts a manifest whose descriptors understate their blobs, and Docker Engine
        still pulls the image, so the declared sizes alone prove nothing. One HEAD per distinct blob,
        at most BLOB_CHECK_WORKERS at a time, all under the conversation's deadline; the schema
        already bounds the count (registry_shapes.MAX_LAYERS).
        """
        blobs = [("config", image["config"])] + [(f"layers[{i}]", d) for i, d in enumerate(image["layers"])]
        digests = list(dict.fromkeys(d["digest"] for _, d in blobs))
        scopes = [f"repository:{repo}:pull"]
        self._auth_header(scopes)  # a token, when one is needed, is fetched once, before the HEADs
        with ThreadPoolExecutor(BLOB_CHECK_WORKERS, thread_name_prefix="blob-head") as pool:
            futures = {d: pool.submit(self._blob_size, repo, d, scopes) for d in digests}
        for name, desc in blobs:
            served = futures[desc["digest"]].result()  # the first failure in manifest order is raised
            if served != desc["size"]:
                raise self._error(
                    f"{where} declares {name} ({desc['digest']}) as {desc['size']} bytes, "
                    f"but the registry serves {served} bytes for that blob"
                )

    def _blob_size(self, repo: str, digest: str, scopes: Sequence[str]) -> int:
        """The registry's `Content-Length` for a blob (`HEAD /v2/<repo>/blobs/<digest>`).

        A registry on object storage may redirect the HEAD to a presigned URL: one redirect is
        followed, with the credentials only when it stays on the registry's origin.
        """
        path = f"/v2/{repo}/blobs/{digest}"
        response = self.request("HEAD", path, scopes)
        if response.status_code in _REDIRECTS:
            target = self._redirect_target(response.headers.get("location"))
            if target is None:
                raise self._error(
                    f"HEAD {path} redirected to a location the client does not follow "
                    f"({self._reason(response)}); the blob's size cannot be checked"
                )
            same = origin(target) == origin(self._base_url or "")
            response = self._send("HEAD", target, headers=self._auth_header(scopes) if same else {})
        if response.status_code == 404:
            raise self._error(
                f"blob {digest} of repository {repo!r} is not in the registry (HEAD answered 404)"
            )
        if response.status_code in (401, 403):
            raise self._error(
                f"no pull permission on repository {repo!r}: HEAD {path} answered {self._reason(response)}"
            )
        if response.status_code != 200:
            raise self._error(f"HEAD {path} answered {self._reason(response)}")
        length = response.headers.get("content-length", "")
        if not (length.isascii() and length.isdigit() and len(length) <= 19):
            raise self._error(
                f"HEAD {path} answered without a usable Content-Length ({length[:20]!r}); "
                "the blob's declared size cannot be checked"
            )
        return int(length)

    def _redirect_target(self, location: str | None) -> str | None:
        """Where a redirect points, resolved against the registry; None when it is not http(s) or would
        downgrade https to plain http without `insecure`."""
        url = self._resolve(location)
        if url is None or url.scheme not in ("http", "https") or not url.host:
            return None
        if url.scheme == "http" and str(self._base_url).startswith("https://") and not self.insecure:
            return None
        return str(url)

    def check_tag(self, reference: str, tag: str) -> str:
        """The digest the registry serves for `tag` of `reference`'s repository; RegistryError unless that
        is `reference`'s digest, or an index that lists it."""
        try:
            repo, digest = split_reference(self.server, reference)
        except ValueError as exc:
            raise self._error(str(exc)) from None
        response = self._get_manifest(repo, tag)
        served = "sha256:" + hashlib.sha256(response.content).hexdigest()
        if served == digest:
            return served
        where = f"{self.server}/{repo}:{tag}"
        media_type, body = self._read_manifest(response, where)
        if media_type in INDEX_TYPES and digest in {entry["digest"] for entry in body["manifests"]}:
            return served
        raise self._error(
            f"digest mismatch: the registry serves {served} for {where}, but pulumi-docker's repoDigest is "
            f"{digest}; the Application would pin an image the pushed tag does not name"
        )

    def _select_platform(
        self, reference: str, index: Mapping[str, Any], want: tuple[str, str, str | None]
    ) -> str:
        """Digest of the index entry for the wanted platform; a variant is matched only when asked for."""
        os_, arch, variant = want
        seen: list[str] = []
        for entry in index["manifests"]:
            plat = entry.get("platform") or {}
            name = "/".join(filter(None, [plat.get("os"), plat.get("architecture"), plat.get("variant")]))
            seen.append(name or "unknown")
            if (
                plat.get("os") == os_
                and plat.get("architecture") == arch
                and (variant is None or plat.get("variant") == variant)
            ):
                return str(entry["digest"])
        wanted = "/".join(filter(None, want))
        raise self._error(
            f"{reference} has no image for platform {wanted} (it has: {', '.join(seen) or 'none'})"
        )

    # -- lifecycle ------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def client_from_inputs(
    props: Mapping[str, Any], transport: httpx.BaseTransport | None = None
) -> RegistryClient:
    """The client a registry dynamic provider builds from its inputs (credentials arrive as secrets).

    `transport` replaces the network, for tests (`httpx.MockTransport`).
    """
    return RegistryClient(
        props["server"],
        props["username"],
        props["password"],
        insecure=bool(props.get("insecure", False)),
        timeout=float(props.get("timeout_seconds", DEFAULT_TIMEOUT_S)),
        transport=transport,
    )


def _is_json(response: httpx.Response) -> bool:
    return response.headers.get("content-type", "").startswith("application/json")


def _registry_error_text(response: httpx.Response) -> str:
    """` (CODE: message)` from a registry error body, or empty (also when the body has another shape:
    the status already says what failed)."""
    try:
        body = registry_shapes.parse(response.content, registry_shapes.ERRORS)
    except ShapeError:
        return ""
    parts = [f"{e.get('code')}: {e.get('message')}" for e in body["errors"]]
    return f" ({http_bounds.one_line('; '.join(parts))})" if parts else ""


def _jwt_claims(token: str) -> dict[str, Any] | None:
    """The unverified claims of a JWT (only to explain a missing scope; the registry verifies it)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
        claims = registry_shapes.load(payload)
    except (ValueError, ShapeError):
        return None
    return claims if isinstance(claims, dict) else None
