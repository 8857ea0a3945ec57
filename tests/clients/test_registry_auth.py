"""The registry client's auth paths, fast, through `client_from_inputs` with an `httpx.MockTransport`.

The real-registry tests (test_registry.py, test_credentials.py) prove the wire format;
these pin each decision: 401 and 403, token grants, JWT access claims, digest checks, where
credentials may go.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from clients.registry import RegistryClient, client_from_inputs
from clients.registry_session import RegistryError

SERVER = "registry.test:5000"
BASE = f"https://{SERVER}"
REALM = "https://auth.test/token"
USER, PASSWORD = "bob", "Pw-unit-7Qz!x"
BASIC = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
REPO = "team/web"


def reply(
    status: int,
    *,
    json_body: Any = None,
    content: bytes = b"",
    headers: dict[str, str] | None = None,
    reason: str | None = None,
) -> httpx.Response:
    """A response that streams its body, as a network transport's does (`content=` would pre-read it)."""
    data = json.dumps(json_body).encode() if json_body is not None else content
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    extensions = {"reason_phrase": reason.encode()} if reason else {}
    return httpx.Response(status, headers=all_headers, stream=httpx.ByteStream(data), extensions=extensions)


def jwt(claims: dict[str, Any]) -> str:
    """An unsigned JWT with these claims (the client only reads them to explain a missing scope)."""

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none'})}.{part(claims)}.c2lnbmF0dXJlLXBhcnQtb2YtdGhlLXRva2Vu"


@dataclass
class FakeRegistry:
    """Routes of a registry and its token service; records every request."""

    auth: str = "bearer"
    """`basic`, `bearer` or `none`."""
    realm: str = REALM
    token: str = field(
        default_factory=lambda: jwt(
            {"access": [{"type": "repository", "name": REPO, "actions": ["pull", "push"]}]}
        )
    )
    token_status: int = 200
    token_body: Any = None
    upload_status: int = 202
    location: str | None = "/v2/team/web/blobs/uploads/u1?_state=s"
    manifests: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    blobs: dict[str, int] = field(default_factory=dict)
    """Blob digest -> the size a HEAD answers."""
    requests: list[httpx.Request] = field(default_factory=list)

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        url, given = request.url, request.headers.get("authorization")
        if str(url).startswith(self.realm):
            if given != BASIC:
                return reply(401, json_body={"details": "bad credentials"})
            body = self.token_body if self.token_body is not None else {"token": self.token}
            return reply(self.token_status, json_body=body)
        if url.path == "/v2/" and given is None and self.auth != "none":
            challenge = (
                'Basic realm="r"' if self.auth == "basic" else f'Bearer realm="{self.realm}",service="svc"'
            )
            return reply(401, headers={"WWW-Authenticate": challenge})
        if self.auth != "none" and given not in (BASIC, f"Bearer {self.token}"):
            return reply(401, json_body={"errors": [{"code": "UNAUTHORIZED", "message": "no"}]})
        if url.path == "/v2/":
            return reply(200, headers={"Docker-Distribution-Api-Version": "registry/2.0"})
        if url.path.endswith("/blobs/uploads/") and request.method == "POST":
            headers = {"Location": self.location} if self.location else {}
            return reply(
                self.upload_status,
                headers=headers,
                json_body={
                    "errors": [{"code": "DENIED", "message": "requested access to the resource is denied"}]
                },
            )
        if "/blobs/sha256:" in url.path and request.method == "HEAD":
            size = self.blobs.get(url.path.rsplit("/", 1)[-1])
            if size is None:
                return reply(404)
            return httpx.Response(200, headers={"Content-Length": str(size)})
        if "/manifests/" in url.path:
            reference = url.path.rsplit("/", 1)[-1]
            if reference not in self.manifests:
                return reply(404, json_body={"errors": [{"code": "MANIFEST_UNKNOWN", "message": "?"}]})
            media_type, content = self.manifests[reference]
            return reply(200, headers={"Content-Type": media_type}, content=content)
        return reply(202 if request.method == "DELETE" else 404)

    def client(self, **props: Any) -> RegistryClient:
        inputs = {"server": SERVER, "username": USER, "password": PASSWORD, **props}
        return client_from_inputs(inputs, httpx.MockTransport(self.handler))

    def sent(self, method: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.method == method]


def preflight_error(fake: FakeRegistry, **props: Any) -> str:
    with fake.client(**props) as client, pytest.raises(RegistryError) as info:
        client.preflight([REPO])
    message = str(info.value)
    assert PASSWORD not in message and BASIC.split()[1] not in message and fake.token not in message
    return message


# -- the transport reaches the client through client_from_inputs ---------------------------------


def test_client_from_inputs_passes_the_transport() -> None:
    fake = FakeRegistry()
    with fake.client() as client:
        assert client.preflight([REPO]).auth == "bearer"
    assert fake.requests and all(r.url.host in ("registry.test", "auth.test") for r in fake.requests)


# -- 401 and 403 ---------------------------------------------------------------------------------


def test_basic_401_with_credentials_is_wrong_credentials() -> None:
    fake = FakeRegistry(auth="basic")
    message = preflight_error(fake, password="Wrong-pw-0000")
    assert "wrong credentials" in message and "401" in message


def test_push_refused_with_403_names_the_repository_and_the_registry_text() -> None:
    message = preflight_error(FakeRegistry(auth="basic", upload_status=403))
    assert f"no push permission on repository '{REPO}'" in message and "403" in message
    assert "DENIED: requested access to the resource is denied" in message


def test_token_service_401_and_403() -> None:
    assert "wrong credentials" in preflight_error(FakeRegistry(), password="Wrong-pw-0000")
    message = preflight_error(FakeRegistry(token_status=403))
    assert "no permission" in message and f"repository:{REPO}:pull,push" in message


@pytest.mark.parametrize(
    ("body", "expected"),
    [({"nothing": 1}, "without a token"), ([], "without a token"), ({"token": ""}, "without a token")],
)
def test_token_service_answers_without_a_token(body: Any, expected: str) -> None:
    assert expected in preflight_error(FakeRegistry(token_body=body))


# -- token grants and JWT access claims ----------------------------------------------------------


def test_the_token_grant_asks_for_the_push_scope_with_basic_credentials() -> None:
    fake = FakeRegistry()
    with fake.client() as client:
        client.preflight([REPO])
    grants = [r for r in fake.requests if str(r.url).startswith(REALM)]
    assert grants and all(r.headers["authorization"] == BASIC for r in grants)
    query = parse_qs(grants[0].url.query.decode())
    assert query == {"account": [USER], "service": ["svc"], "scope": [f"repository:{REPO}:pull,push"]}
    on_registry = [r for r in fake.requests if r.url.host == "registry.test" and "authorization" in r.headers]
    assert on_registry and all(r.headers["authorization"] == f"Bearer {fake.token}" for r in on_registry)


@pytest.mark.parametrize(
    ("actions", "passes"), [(["pull"], False), ([], False), (["push"], True), (["*"], True)]
)
def test_jwt_access_claims_decide_before_the_push_probe(actions: list[str], passes: bool) -> None:
    token = jwt({"access": [{"type": "repository", "name": REPO, "actions": actions}]})
    fake = FakeRegistry(token=token)
    if passes:
        with fake.client() as client:
            client.preflight([REPO])
        return
    message = preflight_error(fake)
    assert f"no push permission on repository '{REPO}'" in message
    assert f"granted {', '.join(sorted(actions)) or 'nothing'}" in message
    assert fake.sent("POST") == []  # the claims decided; no upload was started


def test_an_opaque_token_leaves_the_decision_to_the_push_probe() -> None:
    fake = FakeRegistry(token="opaque-token-value-1234567890", upload_status=401)
    message = preflight_error(fake)
    assert "no push permission" in message and "401" in message


def test_a_plain_http_realm_from_an_https_registry_is_refused() -> None:
    fake = FakeRegistry(realm="http://auth.test/token")
    message = preflight_error(fake)
    assert "plain-HTTP token realm" in message
    assert not [r for r in fake.requests if r.url.host == "auth.test"], "credentials went to the realm"
    with fake.client(insecure=True) as client:  # `insecure` opts in to plain HTTP
        assert client.preflight([REPO]).auth == "bearer"


# -- where the upload cancel goes ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("location", "cancelled_at"),
    [
        ("/v2/team/web/blobs/uploads/u1?_state=s", f"{BASE}/v2/team/web/blobs/uploads/u1?_state=s"),
        (f"{BASE}/v2/team/web/blobs/uploads/u2", f"{BASE}/v2/team/web/blobs/uploads/u2"),
        ("https://registry.test:5000/x", f"{BASE}/x"),
        ("http://registry.test:5000/x", None),  # a downgrade, same host and port
        ("https://registry.test:5001/x", None),  # another port
        ("https://elsewhere.test:5000/x", None),  # another host
        ("//elsewhere.test/x", None),  # scheme-relative: another host
        (None, None),
    ],
)
def test_the_upload_cancel_goes_only_to_the_registry_origin(
    location: str | None, cancelled_at: str | None
) -> None:
    fake = FakeRegistry(auth="basic", location=location)
    with fake.client() as client:
        client.preflight([REPO])
    deletes = fake.sent("DELETE")
    if cancelled_at is None:
        assert deletes == []
    else:
        assert [str(r.url) for r in deletes] == [cancelled_at]
        assert deletes[0].headers["authorization"] == BASIC


# -- manifests -----------------------------------------------------------------------------------


CONFIG_DIGEST, LAYER_DIGEST = "sha256:" + "c" * 64, "sha256:" + "1" * 64


def _manifest(size: int) -> bytes:
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"digest": CONFIG_DIGEST, "size": 10},
            "layers": [{"digest": LAYER_DIGEST, "size": size}],
        }
    ).encode()


def test_a_manifest_whose_digest_does_not_match_is_refused() -> None:
    content = _manifest(100)
    asked = "sha256:" + hashlib.sha256(_manifest(999)).hexdigest()
    fake = FakeRegistry(manifests={asked: ("application/vnd.oci.image.manifest.v1+json", content)})
    with fake.client() as client, pytest.raises(RegistryError) as info:
        client.image_size(f"{SERVER}/{REPO}@{asked}", "linux/amd64")
    actual = "sha256:" + hashlib.sha256(content).hexdigest()
    assert f"has digest {actual}, not the one asked for" in str(info.value)


def test_a_matching_manifest_is_measured() -> None:
    content = _manifest(100)
    digest = "sha256:" + hashlib.sha256(content).hexdigest()
    fake = FakeRegistry(
        manifests={digest: ("application/vnd.oci.image.manifest.v1+json", content)},
        blobs={CONFIG_DIGEST: 10, LAYER_DIGEST: 100},
    )
    with fake.client() as client:
        info = client.image_size(f"{SERVER}/{REPO}@{digest}", "linux/amd64")
    assert info.size_bytes == 110 and info.layers == 1
    heads = fake.sent("HEAD")
    assert sorted(r.url.path.rsplit("/", 1)[-1] for r in heads) == sorted([CONFIG_DIGEST, LAYER_DIGEST])
    assert all(r.headers["authorization"] == f"Bearer {fake.token}" for r in heads)


def test_a_reason_phrase_that_echoes_the_credentials_never_shows() -> None:
    """The client keeps the status and the standard phrase; a server's own phrase is not shown."""

    def handler(request: httpx.Request) -> httpx.Response:
        if "authorization" not in request.headers:
            return reply(401, headers={"WWW-Authenticate": 'Basic realm="r"'})
        return reply(500, reason=f"boom {request.headers['authorization']}")

    inputs = {"server": SERVER, "username": USER, "password": PASSWORD}
    with (
        client_from_inputs(inputs, httpx.MockTransport(handler)) as client,
        pytest.raises(RegistryError) as info,
    ):
        client.preflight([REPO])
    message = str(info.value)
    assert "500 Internal Server Error" in message and "boom" not in message, message
    assert BASIC.split()[1] not in message


def test_an_unexpected_exception_in_the_transport_is_one_registry_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise OverflowError("connect(): port must be 0-65535.")

    inputs = {"server": SERVER, "username": USER, "password": PASSWORD}
    with (
        client_from_inputs(inputs, httpx.MockTransport(handler)) as client,
        pytest.raises(RegistryError) as info,
    ):
        client.preflight([REPO])
    assert "port must be 0-65535" in str(info.value) and "\n" not in str(info.value)
