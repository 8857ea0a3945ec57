"""Every registry conversation is bounded: in memory (compressed bodies are decoded with a cap) and in
time (every exchange of a preflight or a size read shares one deadline), against real sockets on
127.0.0.1 that send gzip bombs, answer slowly, trickle and stall."""

from __future__ import annotations

import gzip
import time
import tracemalloc
import zlib
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clients.http_bounds import BodyRefused, BoundedBody
from clients.registry import RegistryClient, client_from_inputs
from clients.registry_session import MAX_BODY_BYTES, RegistryError
from model.budget import REGISTRY_DEADLINE_S
from tests.support.odd_registry import Answer, OddRegistry

PASSWORD = "Bound-pw-8Kq!x"
REPO = "team/web"
BOMB_BYTES = 256 * 1024 * 1024
"""What the bomb decodes to: far past the cap, and far past what the test's memory bound allows."""
MEMORY_BOUND = 64 * 1024 * 1024
"""Peak Python allocations while the bomb is refused: the caps (8 MiB raw, 8 MiB per decoded layer) and
their working copies, nowhere near what the bomb decodes to."""


def _gzip_stream(total: int) -> bytes:
    """gzip of `total` zero bytes, compressed a MiB at a time (never held whole)."""
    packer = zlib.compressobj(1, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = bytes(1024 * 1024)
    parts = [packer.compress(chunk) for _ in range(total // len(chunk))]
    return b"".join(parts) + packer.flush()


@pytest.fixture(scope="module")
def bomb() -> bytes:
    """`Content-Encoding: gzip, gzip`: a few KiB that decode to BOMB_BYTES."""
    return gzip.compress(_gzip_stream(BOMB_BYTES), 9)


@pytest.fixture
def odd() -> Iterator[OddRegistry]:
    registry = OddRegistry(auth="basic", password=PASSWORD)
    yield registry
    registry.stop()


def _client(odd: OddRegistry, **kwargs: float) -> RegistryClient:
    return RegistryClient(odd.server, "ci", PASSWORD, insecure=True, **kwargs)  # type: ignore[arg-type]


def _preflight_error(odd: OddRegistry, repos: int = 1, **kwargs: float) -> tuple[str, float]:
    started = time.monotonic()
    with _client(odd, **kwargs) as api, pytest.raises(RegistryError) as info:
        api.preflight([f"team/app{i}" for i in range(repos)])
    message = str(info.value)
    assert "\n" not in message and PASSWORD not in message, message
    return message, time.monotonic() - started


# -- gzip bombs -----------------------------------------------------------------------------------


def test_a_gzip_bomb_is_refused_with_bounded_memory(odd: OddRegistry, bomb: bytes) -> None:
    assert len(bomb) < 64 * 1024, len(bomb)
    odd.override = lambda method, path: Answer(
        200, bomb, {"Content-Type": "application/json", "Content-Encoding": "gzip, gzip"}
    )
    tracemalloc.start()
    try:
        message, _ = _preflight_error(odd)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert f"answered with a body that decodes to more than {MAX_BODY_BYTES} bytes" in message, message
    assert peak < MEMORY_BOUND, f"peak {peak} bytes while refusing the bomb"


def test_a_bomb_in_a_manifest_answer_is_refused(odd: OddRegistry, bomb: bytes) -> None:
    odd.override = lambda method, path: (
        Answer(200, bomb, {"Content-Type": "application/json", "Content-Encoding": "gzip, gzip"})
        if "/manifests/" in path
        else None
    )
    with _client(odd) as api, pytest.raises(RegistryError) as info:
        api.image_size(f"{odd.server}/{REPO}@sha256:{'a' * 64}", "linux/amd64")
    assert "decodes to more than" in str(info.value) and "\n" not in str(info.value)


def test_a_bomb_from_the_token_service_is_refused_with_bounded_memory(bomb: bytes) -> None:
    odd = OddRegistry(auth="bearer", password=PASSWORD)
    odd.token = Answer(200, bomb, {"Content-Type": "application/json", "Content-Encoding": "gzip, gzip"})
    tracemalloc.start()
    try:
        message, _ = _preflight_error(odd)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        odd.stop()
    assert f"/token answered with a body that decodes to more than {MAX_BODY_BYTES} bytes" in message, message
    assert peak < MEMORY_BOUND, f"peak {peak} bytes while refusing the bomb"


@pytest.mark.parametrize(
    ("encoding", "body", "expected"),
    [
        ("gzip", gzip.compress(b"x" * (MAX_BODY_BYTES + 1)), f"decodes to more than {MAX_BODY_BYTES} bytes"),
        (
            "deflate",
            zlib.compress(b"x" * (MAX_BODY_BYTES + 1)),
            f"decodes to more than {MAX_BODY_BYTES} bytes",
        ),
        ("gzip, gzip, gzip, gzip", b"x", "a body encoded 4 times"),
        ("br", b"x", "Content-Encoding 'br', which is not asked for"),
        ("gzip", b"not gzip at all", "does not decode as gzip"),
        ("gzip", gzip.compress(b'{"a": 1}')[:-12], "a truncated gzip body"),
    ],
)
def test_bodies_that_do_not_decode_within_the_bound_are_one_line(
    odd: OddRegistry, encoding: str, body: bytes, expected: str
) -> None:
    odd.override = lambda method, path: Answer(200, body, {"Content-Encoding": encoding})
    message, _ = _preflight_error(odd)
    assert expected in message and "not a registry:" in message, message


def test_an_encoded_manifest_is_decoded_and_its_digest_checked(odd: OddRegistry) -> None:
    """A registry may compress its answers: the digest is the decoded manifest's, as pulls see it."""
    body = b'{"mediaType": "application/vnd.oci.image.manifest.v1+json", "config": 1, "layers": []}'
    digest = odd.serve_manifest(body)
    odd.override = lambda method, path: (
        Answer(200, gzip.compress(body), {"Content-Encoding": "gzip"}) if path.endswith(digest) else None
    )
    with _client(odd) as api, pytest.raises(RegistryError) as info:
        api.image_size(odd.reference(digest), "linux/amd64")
    # The digest matched (it is over the decoded bytes); the shape is what is wrong.
    assert "answered a manifest whose config is 1; expected a descriptor" in str(info.value), info.value


def test_the_decoder_never_holds_more_than_its_limit() -> None:
    body = BoundedBody("gzip", 1000)
    packed = gzip.compress(b"y" * 5000)
    with pytest.raises(BodyRefused, match="decodes to more than 1000 bytes"):
        for i in range(0, len(packed), 7):
            body.feed(packed[i : i + 7])
    ok = BoundedBody("identity, gzip", 1000)
    ok.feed(gzip.compress(b"z" * 1000))
    assert ok.content() == b"z" * 1000


_ENCODE = {"gzip": gzip.compress, "deflate": zlib.compress, "identity": lambda data: data}


@given(
    payload=st.one_of(st.binary(max_size=3000), st.integers(0, 5000).map(lambda n: b"x" * n)),
    encodings=st.lists(st.sampled_from(sorted(_ENCODE)), max_size=3),
    chunk=st.integers(1, 700),
)
@settings(max_examples=300, deadline=None)
def test_a_body_is_decoded_whole_or_refused_and_never_held_past_its_limit(
    payload: bytes, encodings: list[str], chunk: int
) -> None:
    """Any payload under any stack of encodings, in any chunking: decoded to itself when the payload and
    every encoded form fit the limit, refused otherwise, and no form ever held past the limit."""
    limit = 1000
    forms = [payload]
    for name in encodings:
        forms.append(_ENCODE[name](forms[-1]))
    body = BoundedBody(", ".join(encodings), limit)
    try:
        for i in range(0, len(forms[-1]), chunk):
            body.feed(forms[-1][i : i + chunk])
        decoded = body.content()
    except BodyRefused:
        assert any(len(form) > limit for form in forms), (len(payload), encodings)
        return
    assert decoded == payload
    assert all(len(form) <= limit for form in forms), (len(payload), encodings)


# -- one deadline per conversation ----------------------------------------------------------------


def test_slow_answers_share_one_deadline(odd: OddRegistry) -> None:
    """Each answer takes 0.3 s, well within the 1 s timeout; three repositories take 8 exchanges."""
    odd.delay = 0.3
    message, elapsed = _preflight_error(odd, repos=3, timeout=1, deadline=1.2)
    assert "unreachable: the registry did not finish answering within 1.2s" in message, message
    assert elapsed < 1.2 + 0.5, elapsed


def test_a_trickle_is_cut_at_the_conversation_deadline(odd: OddRegistry) -> None:
    odd.upload = Answer(202, b"x" * 10_000, {"Location": "/v2/upload/1"}, trickle=0.02)
    message, elapsed = _preflight_error(odd, timeout=1, deadline=1.5)
    assert "did not finish answering within 1.5s" in message, message
    assert elapsed < 1.5 + 0.5, elapsed


def test_slow_answers_then_a_trickle_still_end_at_the_deadline(odd: OddRegistry) -> None:
    """Every answer slow, then one that trickles: the total is still the deadline."""
    odd.delay = 0.4
    odd.upload = Answer(202, b"x" * 10_000, {"Location": "/v2/upload/1"}, trickle=0.02)
    message, elapsed = _preflight_error(odd, timeout=1, deadline=2)
    assert "did not finish answering within 2s" in message, message
    assert elapsed < 2 + 0.5, elapsed


def test_a_stalled_answer_ends_at_the_conversation_deadline(odd: OddRegistry) -> None:
    odd.upload = Answer(stall=True)
    message, elapsed = _preflight_error(odd, timeout=5, deadline=1)
    assert "within 1s" in message, message
    assert elapsed < 1 + 0.5, elapsed


def test_slow_blob_heads_of_a_size_read_share_its_deadline(odd: OddRegistry) -> None:
    config, layers = "sha256:" + "c" * 64, [f"sha256:{i:064x}" for i in range(40)]
    odd.blobs = {d: "10" for d in [config, *layers]}
    digest = odd.serve_manifest(
        {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"digest": config, "size": 10},
            "layers": [{"digest": d, "size": 10} for d in layers],
        }
    )
    slow_head = Answer(200, headers={"Content-Length": "10"}, delay=0.3)
    odd.override = lambda method, path: slow_head if method == "HEAD" else None
    started = time.monotonic()
    with _client(odd, timeout=1, deadline=1.5) as api, pytest.raises(RegistryError) as info:
        api.image_size(odd.reference(digest), "linux/amd64")
    elapsed = time.monotonic() - started
    assert "did not finish answering within 1.5s" in str(info.value), info.value
    assert elapsed < 1.5 + 0.5, elapsed


def test_the_providers_use_the_deadline_the_budget_counts(odd: OddRegistry) -> None:
    """The budget's figure (model/budget.py REGISTRY_DEADLINE_S) is the providers' client's."""
    props = {"server": odd.server, "username": "ci", "password": PASSWORD, "insecure": True}
    with client_from_inputs(props) as api:
        assert api._deadline.seconds == REGISTRY_DEADLINE_S


def test_a_timeout_cut_to_the_rest_of_the_conversation_is_the_conversation_deadline() -> None:
    """httpx's per-operation timeout, cut to what is left of the conversation, may fire before the exchange's
    own deadline is noticed (under load it often does): it is still the conversation's deadline."""

    def early_timeout(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v2/":
            return httpx.Response(
                200, headers={"Content-Type": "application/json"}, stream=httpx.ByteStream(b"{}")
            )
        time.sleep(max(0.0, request.extensions["timeout"]["read"] - 0.05))  # wins the race on purpose
        raise httpx.ReadTimeout("timed out", request=request)

    transport = httpx.MockTransport(early_timeout)
    api = RegistryClient("r.test", "ci", PASSWORD, timeout=5, deadline=0.5, transport=transport)
    with api, pytest.raises(RegistryError) as info:
        api.image_size(f"r.test/{REPO}@sha256:{'a' * 64}", "linux/amd64")
    assert "did not finish answering within 0.5s, the deadline every request" in str(info.value), info.value
