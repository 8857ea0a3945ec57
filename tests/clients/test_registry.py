"""Registry preflight and image size against the real Distribution registry on 127.0.0.1, unmocked."""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Iterator
from typing import Any

import grpc
import pulumi
import pytest

from clients.registry import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_INDEX,
    OCI_MANIFEST,
    RegistryClient,
)
from clients.registry_session import RegistryError
from components.image_size import ImageSize, ImageSizeProvider, size_annotation
from components.registry_preflight import RegistryPreflight, RegistryPreflightProvider
from model.config import RegistryConfig
from tests.support.dynamic_provider import UNKNOWN, DynamicProviderServer
from tests.support.processes import free_port
from tests.support.registry import (
    LocalRegistry,
    NotARegistry,
    PushedImage,
    TokenIssuer,
    random_layer,
    require_binaries,
)

PASSWORD = "S3cr3t-Pw-7vQ!pushy"
READER_PASSWORD = "R3ader-Pw-2kX!pully"
WRONG = "Wr0ng-Pw-0000!nope"
ALL_PASSWORDS = (PASSWORD, READER_PASSWORD, WRONG)
REPO = "team/web"


def assert_no_password(text: str) -> None:
    """No password of the test, in any form it was given, appears in `text`."""
    for secret in ALL_PASSWORDS:
        assert secret not in text, f"a password leaked into: {text!r}"


# -- fixtures: one registry per auth mode, started and stopped by the tests ------------------------


@pytest.fixture(scope="module")
def basic_registry() -> Iterator[LocalRegistry]:
    """htpasswd (bcrypt, `htpasswd -B`) auth over plain HTTP."""
    with LocalRegistry(users={"alice": PASSWORD}) as registry:
        yield registry


@pytest.fixture(scope="module")
def issuer() -> Iterator[TokenIssuer]:
    """The token service: `bob` may pull and push, `reader` may only pull."""
    token_issuer = TokenIssuer(
        users={"bob": PASSWORD, "reader": READER_PASSWORD},
        grants={"bob": ["pull", "push"], "reader": ["pull"]},
    ).start()
    yield token_issuer
    token_issuer.stop()


@pytest.fixture(scope="module")
def token_registry(issuer: TokenIssuer) -> Iterator[LocalRegistry]:
    """`auth.token` pointing at the test's issuer, which signs with its own key and certificate."""
    with LocalRegistry(issuer=issuer) as registry:
        yield registry


@pytest.fixture(scope="module")
def tls_registry() -> Iterator[LocalRegistry]:
    """htpasswd auth behind TLS with a self-signed certificate."""
    with LocalRegistry(users={"alice": PASSWORD}, tls=True) as registry:
        yield registry


@pytest.fixture(scope="module")
def images(token_registry: LocalRegistry) -> dict[str, Any]:
    """Small real images: OCI and Docker manifests, an OCI index and a Docker manifest list."""
    amd = token_registry.push_image(REPO, [random_layer(3000), random_layer(1200)], platform="linux/amd64")
    arm = token_registry.push_image(REPO, [random_layer(700)], platform="linux/arm64/v8")
    docker = token_registry.push_image(REPO, [random_layer(500)], media_type=DOCKER_MANIFEST)
    docker_arm = token_registry.push_image(
        REPO, [random_layer(900), random_layer(90)], platform="linux/arm64/v8", media_type=DOCKER_MANIFEST
    )
    return {
        "amd": amd,
        "arm": arm,
        "docker": docker,
        "index": token_registry.push_index(REPO, [amd, arm]),
        "list": token_registry.push_index(REPO, [docker, docker_arm], media_type=DOCKER_MANIFEST_LIST),
        "docker_arm": docker_arm,
    }


def preflight_error(server: str, user: str, password: str, **kwargs: Any) -> str:
    """The message of the RegistryError a preflight raises (it must raise)."""
    with RegistryClient(server, user, password, **kwargs) as client, pytest.raises(RegistryError) as info:
        client.preflight([REPO])
    message = str(info.value)
    assert server in message and repr(user) in message, message
    assert_no_password(message)
    return message


# -- the harness itself ---------------------------------------------------------------------------


def test_binaries_are_installed_or_the_suite_says_how() -> None:
    """Without the packages the tests fail with the install command; here they must be present."""
    registry, htpasswd = require_binaries()
    assert registry.endswith("docker-registry") and htpasswd.endswith("htpasswd")


# -- client: preflight ----------------------------------------------------------------------------


@pytest.mark.registry
def test_basic_good_credentials(basic_registry: LocalRegistry) -> None:
    with RegistryClient(basic_registry.server, "alice", PASSWORD, insecure=True) as client:
        result = client.preflight([REPO, "team/api"])
    assert result.auth == "basic"
    assert result.base_url == f"http://{basic_registry.server}"
    assert result.repositories == (REPO, "team/api")


@pytest.mark.registry
def test_basic_wrong_password(basic_registry: LocalRegistry) -> None:
    message = preflight_error(basic_registry.server, "alice", WRONG, insecure=True)
    assert "wrong credentials" in message and "401" in message


@pytest.mark.registry
def test_basic_unknown_user(basic_registry: LocalRegistry) -> None:
    message = preflight_error(basic_registry.server, "mallory", PASSWORD, insecure=True)
    assert "wrong credentials" in message and "401" in message


@pytest.mark.registry
def test_bearer_good_credentials_request_the_push_scope(
    token_registry: LocalRegistry, issuer: TokenIssuer
) -> None:
    issuer.requests.clear()
    with RegistryClient(token_registry.server, "bob", PASSWORD, insecure=True) as client:
        result = client.preflight([REPO])
    assert result.auth == "bearer"
    assert any(q.get("scope") == [f"repository:{REPO}:pull,push"] for q in issuer.requests), issuer.requests
    assert all(q.get("service") == ["gitops-deploy-test-registry"] for q in issuer.requests)


@pytest.mark.registry
def test_bearer_wrong_password(token_registry: LocalRegistry, issuer: TokenIssuer) -> None:
    message = preflight_error(token_registry.server, "bob", WRONG, insecure=True)
    assert "wrong credentials" in message and issuer.realm in message


@pytest.mark.registry
def test_bearer_unknown_user(token_registry: LocalRegistry) -> None:
    message = preflight_error(token_registry.server, "mallory", PASSWORD, insecure=True)
    assert "wrong credentials" in message


@pytest.mark.registry
def test_bearer_token_without_push_scope(token_registry: LocalRegistry) -> None:
    message = preflight_error(token_registry.server, "reader", READER_PASSWORD, insecure=True)
    assert f"no push permission on repository '{REPO}'" in message
    assert "granted pull" in message


@pytest.mark.registry
def test_registry_rejects_a_pull_only_token_on_the_push_probe(
    token_registry: LocalRegistry, issuer: TokenIssuer
) -> None:
    """The push probe alone (as for registries whose tokens are opaque) also catches a missing scope."""
    pull_only = issuer.mint("reader", [{"type": "repository", "name": REPO, "actions": ["pull"]}])
    with RegistryClient(token_registry.server, "reader", READER_PASSWORD, insecure=True) as client:
        client.ping()
        client._tokens[(f"repository:{REPO}:pull,push",)] = pull_only
        with pytest.raises(RegistryError, match=r"no push permission .* answered 401"):
            client._probe_push(REPO, [f"repository:{REPO}:pull,push"])


def test_registry_down() -> None:
    server = f"127.0.0.1:{free_port()}"
    message = preflight_error(server, "alice", PASSWORD, insecure=True)
    assert "unreachable" in message


def test_not_a_registry() -> None:
    web = NotARegistry()
    try:
        message = preflight_error(web.server, "alice", PASSWORD, insecure=True)
    finally:
        web.stop()
    assert "not a registry" in message and "404" in message


def test_silent_server_times_out_within_the_bound() -> None:
    """A port that accepts connections but never answers fails after the request timeout, not later."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        server = f"127.0.0.1:{listener.getsockname()[1]}"
        started = time.monotonic()
        message = preflight_error(server, "alice", PASSWORD, timeout=0.5)
        elapsed = time.monotonic() - started
    assert "did not answer within 0.5s" in message
    assert elapsed < 5


def test_trickling_server_is_cut_off_at_the_request_deadline() -> None:
    """A server that sends a byte at a time never trips a per-read timeout; the whole exchange is bounded."""
    from tests.support.health_servers import trickling_headers_server

    with trickling_headers_server(byte_every=0.05) as url:
        server = url.removeprefix("http://").rstrip("/")
        started = time.monotonic()
        message = preflight_error(server, "alice", PASSWORD, insecure=True, timeout=0.5)
        elapsed = time.monotonic() - started
    assert "did not finish answering within 1.5s" in message, message
    assert PASSWORD not in message
    # insecure tries https, then http: two exchanges at most, each cut off at 3 x 0.5 s.
    assert elapsed < 2 * 1.5 + 1.5, elapsed


@pytest.mark.registry
def test_tls_self_signed_without_insecure_explains_insecure(tls_registry: LocalRegistry) -> None:
    message = preflight_error(tls_registry.server, "alice", PASSWORD)
    assert "TLS certificate verification failed" in message
    assert "insecure: true" in message


@pytest.mark.registry
def test_tls_self_signed_with_insecure(tls_registry: LocalRegistry) -> None:
    with RegistryClient(tls_registry.server, "alice", PASSWORD, insecure=True) as client:
        result = client.preflight([REPO])
    assert result.base_url == f"https://{tls_registry.server}"


@pytest.mark.registry
def test_tls_with_the_certificate_trusted(tls_registry: LocalRegistry) -> None:
    assert tls_registry.tls_cert is not None
    with RegistryClient(
        tls_registry.server,
        "alice",
        PASSWORD,
        verify=ssl.create_default_context(cafile=tls_registry.tls_cert),
    ) as client:
        assert client.preflight([REPO]).auth == "basic"


@pytest.mark.registry
def test_tls_wrong_password_still_says_wrong_credentials(tls_registry: LocalRegistry) -> None:
    message = preflight_error(tls_registry.server, "alice", WRONG, insecure=True)
    assert "wrong credentials" in message


@pytest.mark.registry
def test_plain_http_registry_without_insecure(basic_registry: LocalRegistry) -> None:
    message = preflight_error(basic_registry.server, "alice", PASSWORD)
    assert "TLS handshake failed" in message and "insecure: true" in message


# -- client: image size ---------------------------------------------------------------------------


def _client(registry: LocalRegistry, user: str = "bob", password: str = PASSWORD) -> RegistryClient:
    return RegistryClient(registry.server, user, password, insecure=True)


@pytest.mark.registry
def test_size_of_a_single_platform_oci_manifest(
    token_registry: LocalRegistry, images: dict[str, Any]
) -> None:
    amd: PushedImage = images["amd"]
    with _client(token_registry, "reader", READER_PASSWORD) as client:  # pull is enough
        info = client.image_size(amd.reference, "linux/amd64")
    assert info.media_type == OCI_MANIFEST
    # Layers plus the config blob, counted from what was uploaded, not from the manifest.
    assert amd.config_size > 0
    assert info.size_bytes == amd.size_bytes == 3000 + 1200 + amd.config_size
    assert info.layers == 2
    assert info.manifest_digest == amd.digest


@pytest.mark.registry
def test_size_of_a_docker_v2_manifest(token_registry: LocalRegistry, images: dict[str, Any]) -> None:
    docker: PushedImage = images["docker"]
    with _client(token_registry) as client:
        info = client.image_size(docker.reference, "linux/amd64")
    assert (info.media_type, info.size_bytes, info.layers) == (DOCKER_MANIFEST, docker.size_bytes, 1)


@pytest.mark.registry
def test_size_of_an_oci_index_picks_the_platform(
    token_registry: LocalRegistry, images: dict[str, Any]
) -> None:
    amd: PushedImage = images["amd"]
    arm: PushedImage = images["arm"]
    with _client(token_registry) as client:
        for platform, image in (("linux/amd64", amd), ("linux/arm64", arm), ("linux/arm64/v8", arm)):
            info = client.image_size(images["index"], platform)
            assert info.media_type == OCI_INDEX
            assert (info.size_bytes, info.layers, info.manifest_digest) == (
                image.size_bytes,
                image.layers,
                image.digest,
            ), platform
        with pytest.raises(
            RegistryError, match=r"no image for platform linux/s390x \(it has: linux/amd64, linux/arm64/v8\)"
        ):
            client.image_size(images["index"], "linux/s390x")


@pytest.mark.registry
def test_size_of_a_docker_manifest_list(token_registry: LocalRegistry, images: dict[str, Any]) -> None:
    target: PushedImage = images["docker_arm"]
    with _client(token_registry) as client:
        info = client.image_size(images["list"], "linux/arm64")
    assert (info.media_type, info.size_bytes, info.layers) == (DOCKER_MANIFEST_LIST, target.size_bytes, 2)


@pytest.mark.registry
def test_size_of_a_missing_digest(token_registry: LocalRegistry) -> None:
    missing = f"{token_registry.server}/{REPO}@sha256:{'0' * 64}"
    with _client(token_registry) as client, pytest.raises(RegistryError) as info:
        client.image_size(missing, "linux/amd64")
    assert "manifest not found" in str(info.value) and "MANIFEST_UNKNOWN" in str(info.value)
    assert_no_password(str(info.value))


@pytest.mark.registry
def test_size_over_basic_auth_and_tls(tls_registry: LocalRegistry) -> None:
    image = tls_registry.push_image(REPO, [random_layer(256)])
    with RegistryClient(tls_registry.server, "alice", PASSWORD, insecure=True) as client:
        assert client.image_size(image.reference, "linux/amd64").size_bytes == image.size_bytes


@pytest.mark.registry
def test_reference_on_another_registry_is_refused(token_registry: LocalRegistry) -> None:
    with _client(token_registry) as client, pytest.raises(RegistryError, match="is not on registry"):
        client.image_size(f"docker.io/team/web@sha256:{'a' * 64}", "linux/amd64")


# -- the annotation -------------------------------------------------------------------------------


def test_size_annotation_is_a_whole_number_string() -> None:
    assert size_annotation(123456789.0) == "123456789"
    assert size_annotation(5) == "5"
    assert size_annotation(3.0e9) == "3000000000"
    for bad in (1.5, -1, True, "12"):
        with pytest.raises(ValueError, match="image size"):
            size_annotation(bad)  # type: ignore[arg-type]


# -- RegistryPreflight over gRPC, as the engine drives it -----------------------------------------


def _preflight_inputs(registry: LocalRegistry, user: str, password: Any, **extra: Any) -> dict[str, Any]:
    return {
        "server": registry.server,
        "username": user,
        "password": password,
        "repositories": [REPO],
        "insecure": True,
        "timeout_seconds": 10,
        "provider_version": "1",
        **extra,
    }


@pytest.fixture(scope="module")
def preflight_server() -> Iterator[DynamicProviderServer]:
    with DynamicProviderServer(RegistryPreflightProvider()) as server:
        yield server
    assert_no_password(server.stderr_text())


@pytest.mark.grpc
@pytest.mark.registry
def test_preflight_check_passes_in_preview_and_up(
    preflight_server: DynamicProviderServer, basic_registry: LocalRegistry, token_registry: LocalRegistry
) -> None:
    for registry, user in ((basic_registry, "alice"), (token_registry, "bob")):
        result = preflight_server.check(_preflight_inputs(registry, user, PASSWORD))
        assert result.failures == [], result.failures


@pytest.mark.grpc
@pytest.mark.registry
@pytest.mark.parametrize(
    ("user", "password", "cause"),
    [
        ("bob", WRONG, "wrong credentials"),
        ("mallory", PASSWORD, "wrong credentials"),
        ("reader", READER_PASSWORD, "no push permission on repository 'team/web'"),
    ],
)
def test_preflight_check_fails_with_one_clear_message(
    preflight_server: DynamicProviderServer,
    token_registry: LocalRegistry,
    user: str,
    password: str,
    cause: str,
) -> None:
    result = preflight_server.check(_preflight_inputs(token_registry, user, password))
    assert len(result.failures) == 1
    prop, reason = result.failures[0]
    # No property: the engine would otherwise print the property's value next to the reason.
    assert prop == ""
    assert reason.startswith(f"registry {token_registry.server} (user {user!r}): ") and cause in reason
    assert_no_password(reason)


@pytest.mark.grpc
def test_preflight_check_reports_a_down_registry(preflight_server: DynamicProviderServer) -> None:
    inputs = _preflight_inputs(LocalRegistryAddress(f"127.0.0.1:{free_port()}"), "alice", PASSWORD)  # type: ignore[arg-type]
    ((_, reason),) = preflight_server.check(inputs).failures
    assert "unreachable" in reason


@pytest.mark.grpc
def test_preflight_check_with_unknown_inputs_waits_for_up(preflight_server: DynamicProviderServer) -> None:
    """A preview with a password not known yet asks nothing (the server below is down) and fails nothing."""
    inputs = _preflight_inputs(LocalRegistryAddress(f"127.0.0.1:{free_port()}"), "alice", UNKNOWN)  # type: ignore[arg-type]
    assert preflight_server.check(inputs).failures == []


@pytest.mark.grpc
def test_preflight_check_names_bad_inputs(preflight_server: DynamicProviderServer) -> None:
    inputs = {
        "server": "",
        "username": "alice",
        "password": PASSWORD,
        "repositories": ["Team/Web"],
        "insecure": "yes",
        "timeout_seconds": 0,
    }
    props = {p for p, _ in preflight_server.check(inputs).failures}
    assert props == {"server", "repositories", "insecure", "timeout_seconds"}


@pytest.mark.grpc
@pytest.mark.registry
def test_preflight_create_keeps_no_credentials_and_diff_ignores_them(
    preflight_server: DynamicProviderServer, basic_registry: LocalRegistry
) -> None:
    inputs = _preflight_inputs(basic_registry, "alice", PASSWORD)
    _, outs = preflight_server.create(inputs)
    assert "password" not in outs and "username" not in outs
    assert_no_password(repr(outs))
    assert outs["repositories"] == [REPO]
    assert not preflight_server.diff(outs, inputs).has_changes
    assert not preflight_server.diff(outs, {**inputs, "password": WRONG}).has_changes
    assert preflight_server.diff(outs, {**inputs, "repositories": [REPO, "team/api"]}).has_changes


class LocalRegistryAddress:
    """Just a `server` for input builders, where nothing listens."""

    def __init__(self, server: str) -> None:
        self.server = server


# -- ImageSize over gRPC --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def size_server() -> Iterator[DynamicProviderServer]:
    with DynamicProviderServer(ImageSizeProvider()) as server:
        yield server
    assert_no_password(server.stderr_text())


def _size_inputs(
    registry: LocalRegistry, image: Any, platform: str = "linux/amd64", **extra: Any
) -> dict[str, Any]:
    return {
        "image": image,
        "tag": "",
        "server": registry.server,
        "username": "bob",
        "password": PASSWORD,
        "platform": platform,
        "insecure": True,
        "timeout_seconds": 10,
        "provider_version": "1",
        **extra,
    }


@pytest.mark.grpc
@pytest.mark.registry
def test_image_size_create_single_and_index(
    size_server: DynamicProviderServer, token_registry: LocalRegistry, images: dict[str, Any]
) -> None:
    amd: PushedImage = images["amd"]
    arm: PushedImage = images["arm"]
    _, outs = size_server.create(_size_inputs(token_registry, amd.reference))
    assert isinstance(outs["size_bytes"], float)  # what the engine hands back: a protobuf number
    assert size_annotation(outs["size_bytes"]) == str(amd.size_bytes)
    assert (outs["layers"], outs["media_type"]) == (2, OCI_MANIFEST)
    assert "password" not in outs and "username" not in outs
    assert_no_password(repr(outs))
    _, outs = size_server.create(_size_inputs(token_registry, images["index"], "linux/arm64"))
    assert (outs["size_bytes"], outs["media_type"], outs["manifest_digest"]) == (
        arm.size_bytes,
        OCI_INDEX,
        arm.digest,
    )


@pytest.mark.grpc
@pytest.mark.registry
def test_image_size_missing_digest_fails_clearly(
    size_server: DynamicProviderServer, token_registry: LocalRegistry
) -> None:
    missing = f"{token_registry.server}/{REPO}@sha256:{'1' * 64}"
    with pytest.raises(grpc.RpcError) as info:
        size_server.create(_size_inputs(token_registry, missing))
    details = info.value.details()
    assert (
        f"image size of {missing}: registry {token_registry.server} (user 'bob'): manifest not found"
        in details
    )
    assert_no_password(details)


@pytest.mark.grpc
@pytest.mark.registry
def test_image_size_wrong_password_fails_clearly(
    size_server: DynamicProviderServer, images: dict[str, Any], token_registry: LocalRegistry
) -> None:
    with pytest.raises(grpc.RpcError) as info:
        size_server.create(_size_inputs(token_registry, images["amd"].reference, password=WRONG))
    details = info.value.details()
    assert "wrong credentials" in details
    assert_no_password(details)


@pytest.mark.grpc
@pytest.mark.registry
def test_image_size_diff_and_update_follow_the_digest(
    size_server: DynamicProviderServer, token_registry: LocalRegistry, images: dict[str, Any]
) -> None:
    amd: PushedImage = images["amd"]
    docker: PushedImage = images["docker"]
    inputs = _size_inputs(token_registry, amd.reference)
    _, outs = size_server.create(inputs)
    assert not size_server.diff(outs, inputs).has_changes
    assert not size_server.diff(outs, {**inputs, "password": WRONG, "username": "other"}).has_changes
    assert size_server.diff(outs, {**inputs, "image": docker.reference}).has_changes
    assert size_server.diff(outs, {**inputs, "image": UNKNOWN}).has_changes
    assert size_server.diff(outs, {**inputs, "image": docker.reference}).replaces == []
    new_outs = size_server.update(outs, {**inputs, "image": docker.reference})
    assert new_outs["size_bytes"] == docker.size_bytes and new_outs["media_type"] == DOCKER_MANIFEST


@pytest.mark.grpc
@pytest.mark.registry
def test_image_size_check_names_bad_inputs(
    size_server: DynamicProviderServer, token_registry: LocalRegistry
) -> None:
    bad = _size_inputs(token_registry, f"{token_registry.server}/{REPO}:latest", platform="amd64")
    failures = dict(size_server.check(bad).failures)
    assert set(failures) == {"image", "platform"}
    assert "sha256" in failures["image"]
    assert size_server.check(_size_inputs(token_registry, UNKNOWN)).failures == []


# -- the resources as the program registers them (SDK mocks) --------------------------------------


class _Mocks(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.registered: list[pulumi.runtime.MockResourceArgs] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.registered.append(args)
        state = dict(args.inputs)
        if args.typ.endswith(":ImageSize"):
            state["size_bytes"] = 123456789.0  # a number, as it crosses the engine
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], None]:
        return {}, None


class _Logs:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, msg: str, *args: Any, **_: Any) -> None:
        self.lines.append(msg % args if args else msg)

    def debug(self, msg: str, *args: Any, **_: Any) -> None:
        pass

    warning = error = info


def test_resources_register_with_their_tokens_secrets_and_one_info_line() -> None:
    mocks, logs = _Mocks(), _Logs()
    pulumi.runtime.set_mocks(mocks, project="gitops-deploy", stack="dev", preview=True, logger=logs)  # type: ignore[arg-type]
    password = pulumi.Output.secret(PASSWORD)

    @pulumi.runtime.test
    def program() -> pulumi.Output[Any]:
        registry = RegistryConfig(server="registry.example.com", username="ci")
        preflight = RegistryPreflight("registry-preflight", registry, password, [REPO, REPO])
        size = ImageSize(
            "web-image-size",
            registry,
            password,
            image=f"registry.example.com/{REPO}@sha256:{'a' * 64}",
            opts=pulumi.ResourceOptions(depends_on=[preflight]),
        )
        return pulumi.Output.all(preflight.urn, size.annotation).apply(lambda v: seen.append(v[1]))

    seen: list[str] = []
    program()
    assert seen == ["123456789"]
    types = {a.typ for a in mocks.registered}
    assert types == {
        "pulumi-python:dynamic/registry:RegistryPreflight",
        "pulumi-python:dynamic/image:ImageSize",
    }
    by_type = {a.typ: a for a in mocks.registered}
    assert by_type["pulumi-python:dynamic/registry:RegistryPreflight"].inputs["repositories"] == [REPO]
    preflight_lines = [line for line in logs.lines if "registry preflight passed" in line]
    assert preflight_lines == [
        f"registry preflight passed: user 'ci' may push to registry.example.com/{REPO}"
    ]
    for line in logs.lines:
        assert_no_password(line)


def test_missing_binaries_fail_with_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    """Locally, without the Debian packages, the suite fails and says how to install them."""
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(
        RuntimeError,
        match=r"docker-registry and htpasswd not found .*apt-get install docker-registry apache2-utils",
    ):
        require_binaries()


# -- what the registry serves decides: declared sizes, the pushed tag's digest --------------------


def _hand_made_image(
    registry: LocalRegistry, layer: bytes, *, declared: int | None = None, tag: str | None = None
) -> tuple[str, dict[str, Any]]:
    """Push a config, one layer and a manifest written by hand (declaring `declared` bytes for the layer);
    the image's reference and the layer's descriptor."""
    config = registry.push_blob(
        REPO, b'{"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers"}}'
    )
    blob = registry.push_blob(REPO, layer)
    descriptor = {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **blob}
    if declared is not None:
        descriptor["size"] = declared
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
        "layers": [descriptor],
    }
    digest = registry.push_manifest(REPO, manifest, OCI_MANIFEST)
    if tag is not None:
        registry.push_manifest(REPO, manifest, OCI_MANIFEST, tag=tag)
    return f"{registry.server}/{REPO}@{digest}", blob


@pytest.mark.registry
def test_a_layer_declared_smaller_than_its_blob_is_refused_naming_the_layer(
    token_registry: LocalRegistry,
) -> None:
    """Distribution accepts the lying manifest (the push below succeeds); the size read does not."""
    reference, blob = _hand_made_image(token_registry, random_layer(1024 * 1024), declared=0)
    with _client(token_registry) as client, pytest.raises(RegistryError) as info:
        client.image_size(reference, "linux/amd64")
    message = str(info.value)
    assert (
        f"declares layers[0] ({blob['digest']}) as 0 bytes, but the registry serves 1048576 bytes" in message
    )
    assert_no_password(message)


@pytest.mark.grpc
@pytest.mark.registry
def test_image_size_refuses_a_digest_the_pushed_tag_does_not_serve(
    size_server: DynamicProviderServer, token_registry: LocalRegistry
) -> None:
    """pulumi-docker v4's digest comes from the local store; the registry's tag is what a pull gets."""
    stale, _ = _hand_made_image(token_registry, random_layer(300), tag="c0ffee-1")
    served, _ = _hand_made_image(token_registry, random_layer(400), tag="c0ffee-1")  # the tag moved on
    with pytest.raises(grpc.RpcError) as info:
        size_server.create(_size_inputs(token_registry, stale, tag="c0ffee-1"))
    details = str(info.value.details()).strip()
    stale_digest, served_digest = stale.split("@")[1], served.split("@")[1]
    assert (
        f"digest mismatch: the registry serves {served_digest} for {token_registry.server}/{REPO}:c0ffee-1, "
        f"but pulumi-docker's repoDigest is {stale_digest}"
    ) in details, details
    assert "\n" not in details
    assert_no_password(details)
    _, outs = size_server.create(_size_inputs(token_registry, served, tag="c0ffee-1"))
    assert outs["tag"] == "c0ffee-1" and outs["manifest_digest"] == served_digest
    with pytest.raises(grpc.RpcError, match=r"manifest not found: .*:no-such-tag does not exist"):
        size_server.create(_size_inputs(token_registry, served, tag="no-such-tag"))


@pytest.mark.registry
def test_a_tag_that_names_an_index_serves_each_of_its_images(
    token_registry: LocalRegistry, images: dict[str, Any]
) -> None:
    amd: PushedImage = images["amd"]
    index_digest = images["index"].split("@")[1]
    index_body = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {
                "mediaType": OCI_MANIFEST,
                "digest": image.digest,
                "size": image.manifest_size,
                "platform": dict(
                    zip(("os", "architecture", "variant"), image.platform.split("/"), strict=False)
                ),
            }
            for image in (images["amd"], images["arm"])
        ],
    }
    assert token_registry.push_manifest(REPO, index_body, OCI_INDEX, tag="multi-1") == index_digest
    with _client(token_registry) as client:
        assert client.check_tag(amd.reference, "multi-1") == index_digest
        with pytest.raises(RegistryError, match="digest mismatch"):
            client.check_tag(images["docker"].reference, "multi-1")


@pytest.mark.grpc
def test_image_size_check_explains_a_store_without_repo_digests(size_server: DynamicProviderServer) -> None:
    inputs = _size_inputs(LocalRegistryAddress("registry.example.com"), "<none>@<none>", tag="c0ffee-1")  # type: ignore[arg-type]
    ((prop, reason),) = size_server.check(inputs).failures
    assert prop == "image" and "pulumi-docker answered <none>@<none>" in reason and "Podman" in reason
    bad_tag = size_server.check(_size_inputs(LocalRegistryAddress("r.example.com"), UNKNOWN, tag="-x\n"))  # type: ignore[arg-type]
    assert [p for p, _ in bad_tag.failures] == ["tag"]
