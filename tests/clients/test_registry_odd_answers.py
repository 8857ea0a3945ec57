"""A corpus of odd registry answers, and properties over generated ones: each is one RegistryError line
that says what was wrong, filed under the cause the deploy reports, never a TypeError, a RecursionError
or an AttributeError; and no size the registry does not serve is ever measured.

Every case goes over a real socket to the stand-in registry on 127.0.0.1 (tests/support/odd_registry.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clients.registry import RegistryClient
from clients.registry_session import RegistryError
from clients.registry_shapes import MAX_DEPTH, MAX_LAYERS
from components.image_size import ImageSizeProvider
from deploy.causes import classify
from model.names import IMAGE_SIZE_TYPE, REGISTRY_PREFLIGHT_TYPE
from tests.support.dynamic_provider import DynamicProviderServer
from tests.support.engine_events import check_failure_text
from tests.support.odd_registry import OCI_INDEX, Answer, OddRegistry, json_answer

PASSWORD = "Odd-pw-5Rt!corpus"
REPO = "team/web"
CONFIG = "sha256:" + "c" * 64
PROPERTY_SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
"""Modest: every example is a few requests over a real socket, and CI has two cores."""
CRASHES = ("TypeError", "AttributeError", "RecursionError", "KeyError", "IndexError", "Traceback")


def layer(i: int) -> str:
    """The digest of the test's i-th layer."""
    return f"sha256:{i:064x}"


def manifest(*sizes: Any, config_size: Any = 100) -> dict[str, Any]:
    """An OCI image manifest declaring these layer sizes."""
    return {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": CONFIG,
            "size": config_size,
        },
        "layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer(i), "size": size}
            for i, size in enumerate(sizes)
        ],
    }


def deep(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = [value]
    return value


def assert_one_line(message: str) -> None:
    assert "\n" not in message and PASSWORD not in message, message
    assert not any(word in message for word in CRASHES), message
    assert len(message) < 600, message


@pytest.fixture
def odd() -> Iterator[OddRegistry]:
    registry = OddRegistry(auth="basic", password=PASSWORD)
    registry.blobs = {CONFIG: "100", **{layer(i): "1000" for i in range(MAX_LAYERS + 2)}}
    yield registry
    registry.stop()


def client(odd: OddRegistry) -> RegistryClient:
    # The stand-in speaks plain HTTP: `insecure` lets the client fall back from https, as the config allows.
    return RegistryClient(odd.server, "ci", PASSWORD, insecure=True, timeout=5, deadline=10)


def size_error(
    odd: OddRegistry, value: Any, media_type: str = "application/vnd.oci.image.manifest.v1+json"
) -> str:
    digest = odd.serve_manifest(value, media_type)
    with client(odd) as api, pytest.raises(RegistryError) as info:
        api.image_size(odd.reference(digest), "linux/amd64")
    message = str(info.value)
    assert_one_line(message)
    return message


def preflight_error(odd: OddRegistry) -> str:
    with client(odd) as api, pytest.raises(RegistryError) as info:
        api.preflight([REPO])
    message = str(info.value)
    assert_one_line(message)
    return message


# -- manifests ------------------------------------------------------------------------------------

MANIFEST_CASES: list[tuple[str, Any, str]] = [
    (
        "negative-and-float",
        manifest(3e9, -2.5e9),
        "whose layers[0].size is 3000000000.0; expected a non-negative integer",
    ),
    (
        "negative",
        manifest(10, -2500000000),
        "whose layers[1].size is -2500000000; expected a non-negative integer",
    ),
    ("string", manifest("1000"), 'whose layers[0].size is "1000"; expected a non-negative integer'),
    ("boolean", manifest(True), "whose layers[0].size is true; expected a non-negative integer"),
    ("null", manifest(None), "whose layers[0].size is null; expected a non-negative integer"),
    ("fraction", manifest(1.5), "whose layers[0].size is 1.5; expected a non-negative integer"),
    (
        "exponent",
        json.dumps(manifest(1000)).replace('"size": 1000}', '"size": 1e3}').encode(),
        "whose layers[0].size is 1000.0; expected a non-negative integer",
    ),
    ("over-int64", manifest(2**64), "whose layers[0].size is 18446744073709551616; expected a non-negative"),
    (
        "config-size",
        manifest(1000, config_size=-1),
        "whose config.size is -1; expected a non-negative integer",
    ),
    ("no-size", {**manifest(), "layers": [{"digest": layer(0)}]}, "a manifest without layers[0].size"),
    (
        "no-config",
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "layers": []},
        "without config",
    ),
    (
        "layers-object",
        {**manifest(), "layers": {"a": 1}},
        "whose layers is an object; expected a list of at most",
    ),
    (
        "layer-a-string",
        {**manifest(), "layers": ["sha256:x"]},
        'whose layers[0] is "sha256:x"; expected a descriptor',
    ),
    (
        "bad-digest",
        {**manifest(1), "config": {"digest": "md5:x", "size": 1}},
        'whose config.digest is "md5:x"',
    ),
    ("a-list", [manifest(1)], "answered a manifest that is a list; expected an object"),
    ("a-number", 5, "answered a manifest that is 5; expected an object"),
    (
        "deep",
        b"[" * 100_000 + b"1" + b"]" * 100_000,
        f"answered a manifest that nests deeper than {MAX_DEPTH}",
    ),
    (
        "deep-inside",
        {**manifest(1), "annotations": deep(MAX_DEPTH + 5)},
        f"nests deeper than {MAX_DEPTH} levels",
    ),
    ("not-json", b'{"layers": [', "answered a manifest that is not JSON"),
    ("nan", b'{"layers": [], "config": {"size": NaN}}', "that is not JSON (NaN is not a JSON number)"),
    (
        "too-many-layers",
        manifest(*[1000] * (MAX_LAYERS + 1)),
        f"whose layers has {MAX_LAYERS + 1} entries; expected",
    ),
    ("media-type-number", {**manifest(1), "mediaType": 5}, "whose mediaType is 5; expected a string"),
]


@pytest.mark.parametrize(
    ("value", "expected"), [c[1:] for c in MANIFEST_CASES], ids=[c[0] for c in MANIFEST_CASES]
)
def test_an_odd_manifest_is_one_line_saying_what_was_wrong(
    odd: OddRegistry, value: Any, expected: str
) -> None:
    message = size_error(odd, value)
    assert expected in message, message
    # A manifest that lies is the registry's content, not its reachability nor the credentials.
    assert classify(IMAGE_SIZE_TYPE, f"image size of x: {message}") == "other"


INDEX_CASES: list[tuple[str, Any, str]] = [
    ("manifests-a-number", {"mediaType": OCI_INDEX, "manifests": 5}, "whose manifests is 5; expected a list"),
    (
        "entry-without-digest",
        {"mediaType": OCI_INDEX, "manifests": [{"size": 1}]},
        "without manifests[0].digest",
    ),
    (
        "platform-a-string",
        {"mediaType": OCI_INDEX, "manifests": [{"digest": layer(1), "size": 1, "platform": "linux/amd64"}]},
        'whose manifests[0].platform is "linux/amd64"; expected an object',
    ),
    ("no-manifests", {"mediaType": OCI_INDEX}, "a manifest without manifests"),
]


@pytest.mark.parametrize(("value", "expected"), [c[1:] for c in INDEX_CASES], ids=[c[0] for c in INDEX_CASES])
def test_an_odd_index_is_one_line_saying_what_was_wrong(odd: OddRegistry, value: Any, expected: str) -> None:
    assert expected in size_error(odd, value, OCI_INDEX)


# -- declared sizes against the blobs the registry serves -----------------------------------------


def test_a_declared_size_must_be_what_the_registry_serves_for_that_blob(odd: OddRegistry) -> None:
    odd.blobs[layer(1)] = "12582912"
    message = size_error(odd, manifest(1000, 0))
    assert f"declares layers[1] ({layer(1)}) as 0 bytes, but the registry serves 12582912 bytes" in message
    odd.blobs[CONFIG] = "7"
    assert f"declares config ({CONFIG}) as 100 bytes, but the registry serves 7 bytes" in size_error(
        odd, manifest(1000)
    )


@pytest.mark.parametrize(
    ("served", "expected"),
    [
        (None, f"blob {layer(0)} of repository 'team/web' is not in the registry (HEAD answered 404)"),
        ("", "answered without a usable Content-Length ('')"),
        # h11 refuses these before the client reads them: still one line, naming the header.
        ("-5", "did not answer HTTP (RemoteProtocolError: bad Content-Length)"),
        ("1e3", "did not answer HTTP (RemoteProtocolError: bad Content-Length)"),
        ("0x10", "did not answer HTTP (RemoteProtocolError: bad Content-Length)"),
    ],
)
def test_a_blob_whose_size_the_registry_does_not_say_fails(
    odd: OddRegistry, served: str | None, expected: str
) -> None:
    if served is None:
        del odd.blobs[layer(0)]
    elif served == "":
        # No Content-Length at all.
        odd.override = lambda method, path: (
            Answer(200) if method == "HEAD" and path.endswith(layer(0)) else None
        )
    else:
        odd.blobs[layer(0)] = served
    assert expected in size_error(odd, manifest(1000))


def test_every_blob_is_asked_once_and_the_sizes_add_up(odd: OddRegistry) -> None:
    digest = odd.serve_manifest(manifest(1000, 1000, 1000))
    with client(odd) as api:
        info = api.image_size(odd.reference(digest), "linux/amd64")
    assert (info.size_bytes, info.layers) == (3100, 3)
    heads = [path for method, path in odd.requests if method == "HEAD"]
    assert sorted(heads) == sorted(f"/v2/{REPO}/blobs/{d}" for d in (CONFIG, layer(0), layer(1), layer(2)))


def test_a_blob_head_redirected_elsewhere_gets_no_credentials(odd: OddRegistry) -> None:
    storage = OddRegistry()  # another origin, as a presigned object-store URL is
    storage.blobs[layer(0)] = "1000"
    try:
        odd.override = lambda method, path: (
            Answer(307, headers={"Location": f"http://{storage.server}/v2/{REPO}/blobs/{layer(0)}?sig=1"})
            if method == "HEAD" and path.endswith(layer(0))
            else None
        )
        digest = odd.serve_manifest(manifest(1000))
        with client(odd) as api:
            assert api.image_size(odd.reference(digest), "linux/amd64").size_bytes == 1100
    finally:
        storage.stop()
    assert storage.requests == [("HEAD", f"/v2/{REPO}/blobs/{layer(0)}")]
    assert storage.credentialed == [], "the registry's credentials went to another origin"


# -- error bodies, token answers: the cause stays the registry's -----------------------------------

ERROR_BODIES: list[tuple[str, bytes]] = [
    ("errors-a-number", b'{"errors": 5}'),
    ("errors-of-numbers", b'{"errors": [1, 2]}'),
    ("code-an-object", b'{"errors": [{"code": {"a": 1}, "message": [1]}]}'),
    ("a-list", b"[1, 2, 3]"),
    ("deep", b"[" * 100_000 + b"]" * 100_000),
    ("nan", b'{"errors": NaN}'),
    ("not-json", b"<html>denied</html>"),
    ("not-utf8", b"\xff\xfe\x00"),
]


@pytest.mark.parametrize("body", [c[1] for c in ERROR_BODIES], ids=[c[0] for c in ERROR_BODIES])
def test_a_refused_push_with_an_odd_body_is_still_registry_auth(odd: OddRegistry, body: bytes) -> None:
    odd.upload = Answer(403, body, {"Content-Type": "application/json"})
    message = preflight_error(odd)
    assert f"no push permission on repository '{REPO}'" in message and "403 Forbidden" in message
    assert classify(REGISTRY_PREFLIGHT_TYPE, check_failure_text(REGISTRY_PREFLIGHT_TYPE, "p", message)) == (
        "registry-auth"
    )


TOKEN_ANSWERS: list[tuple[str, Answer, str]] = [
    (
        "token-a-number",
        json_answer(200, {"token": 5}),
        "answered without a token: an answer whose token is 5",
    ),
    ("a-list", json_answer(200, ["t"]), "answered without a token: an answer that is a list"),
    ("empty", json_answer(200, {"token": ""}), "answered without a token"),
    ("deep", Answer(200, b"[" * 50_000), "did not answer JSON: an answer that nests deeper"),
    ("not-json", Answer(200, b"token=abc"), "did not answer JSON: an answer that is not JSON"),
]


@pytest.mark.parametrize(
    ("answer", "expected"), [c[1:] for c in TOKEN_ANSWERS], ids=[c[0] for c in TOKEN_ANSWERS]
)
def test_an_odd_token_answer_is_registry_auth(answer: Answer, expected: str) -> None:
    odd = OddRegistry(auth="bearer", password=PASSWORD)
    odd.token = answer
    try:
        message = preflight_error(odd)
    finally:
        odd.stop()
    assert expected in message, message
    assert classify(REGISTRY_PREFLIGHT_TYPE, check_failure_text(REGISTRY_PREFLIGHT_TYPE, "p", message)) == (
        "registry-auth"
    )


def test_a_token_realm_with_userinfo_is_printed_without_it() -> None:
    """The realm is the registry's to name; whatever it holds before an '@' is never shown."""
    odd = OddRegistry(auth="bearer", password=PASSWORD)
    realm = f"http://realm-user:REALM-secret-7Qw@127.0.0.1:{odd.port}/token"
    challenge = {"WWW-Authenticate": f'Bearer realm="{realm}",service="odd"'}
    odd.override = lambda method, path: (
        json_answer(401, {"errors": []}, headers=challenge) if path == "/v2/" else None
    )
    odd.token = json_answer(401, {"errors": []})
    try:
        message = preflight_error(odd)
    finally:
        odd.stop()
    assert f"the token service http://127.0.0.1:{odd.port}/token answered 401" in message, message
    assert "realm-user" not in message and "REALM-secret" not in message, message


def test_a_jwt_with_odd_access_claims_leaves_the_decision_to_the_push_probe() -> None:
    import base64

    claims = base64.urlsafe_b64encode(json.dumps({"access": [{"actions": 5}]}).encode()).decode().rstrip("=")
    odd = OddRegistry(auth="bearer", password=PASSWORD)
    odd.token = json_answer(200, {"token": f"eyJhbGciOiJub25lIn0.{claims}.c2lnbmF0dXJlLXBhcnQ"})
    try:
        with client(odd) as api:
            assert api.preflight([REPO]).auth == "bearer"
    finally:
        odd.stop()
    assert ("POST", f"/v2/{REPO}/blobs/uploads/") in odd.requests


# -- over gRPC, as the engine calls ImageSize -----------------------------------------------------


@pytest.mark.grpc
def test_a_forged_size_fails_image_size_over_grpc_in_one_line(odd: OddRegistry) -> None:
    import grpc

    digest = odd.serve_manifest(manifest(3e9, -2.5e9))
    props = {
        "image": odd.reference(digest),
        "tag": "",
        "platform": "linux/amd64",
        "server": odd.server,
        "username": "ci",
        "password": PASSWORD,
        "insecure": True,
        "timeout_seconds": 5,
        "provider_version": "2",
    }
    with DynamicProviderServer(ImageSizeProvider()) as server, pytest.raises(grpc.RpcError) as info:
        server.create(props)
    details = str(info.value.details()).strip()
    assert details.endswith("whose layers[0].size is 3000000000.0; expected a non-negative integer"), details
    assert_one_line(details)


# -- properties -----------------------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
SIZE = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=6),
    st.booleans(),
    st.none(),
)


@PROPERTY_SETTINGS
@given(
    declared=st.lists(SIZE, min_size=0, max_size=4),
    served=st.lists(st.integers(min_value=0, max_value=10**12), min_size=4, max_size=4),
)
def test_no_size_the_registry_does_not_serve_is_ever_measured(
    odd: OddRegistry, declared: list[Any], served: list[int]
) -> None:
    """Whatever a manifest declares, the measured size is the served sizes' sum, or one clear error."""
    odd.blobs.update({layer(i): str(size) for i, size in enumerate(served)})
    digest = odd.serve_manifest(manifest(*declared))
    with client(odd) as api:
        try:
            info = api.image_size(odd.reference(digest), "linux/amd64")
        except RegistryError as exc:
            assert_one_line(str(exc))
            return
    assert type(info.size_bytes) is int
    assert info.size_bytes == 100 + sum(served[: len(declared)])
    assert declared == served[: len(declared)]


@PROPERTY_SETTINGS
@given(value=JSON)
def test_any_json_manifest_is_measured_or_one_clear_error(odd: OddRegistry, value: Any) -> None:
    for media_type in ("application/vnd.oci.image.manifest.v1+json", OCI_INDEX):
        digest = odd.serve_manifest(value, media_type)
        with client(odd) as api:
            try:
                info = api.image_size(odd.reference(digest), "linux/amd64")
            except RegistryError as exc:
                assert_one_line(str(exc))
                continue
        assert type(info.size_bytes) is int and info.size_bytes >= 0


@PROPERTY_SETTINGS
@given(body=JSON.map(lambda v: json.dumps(v).encode()) | st.binary(max_size=64))
def test_any_body_on_a_refused_push_is_registry_auth(odd: OddRegistry, body: bytes) -> None:
    odd.upload = Answer(403, body, {"Content-Type": "application/json"})
    message = preflight_error(odd)
    assert classify(REGISTRY_PREFLIGHT_TYPE, check_failure_text(REGISTRY_PREFLIGHT_TYPE, "p", message)) == (
        "registry-auth"
    ), message
