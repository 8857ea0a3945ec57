"""Over gRPC, as the engine calls them: a provider failure is one line naming the app and the cause,
never a traceback or an exception group."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from components.health import PROVIDER_VERSION, HealthCheckProvider
from components.image_size import ImageSizeProvider
from components.registry_preflight import RegistryPreflightProvider
from tests.support.dynamic_provider import DynamicProviderServer
from tests.support.failing_providers import GroupRaisingHealthCheck, MalformedIndexRegistry

SECRET = "Bearer hc-secret-Zk3x9QpL"


def _health(url: str, **overrides: Any) -> dict[str, Any]:
    return {
        "url": url,
        "attempts": 1,
        "success_threshold": 1,
        "timeout_seconds": 1,
        "headers": {"Authorization": SECRET},
        "trigger": "sha256:" + "a" * 64,
        "provider_version": PROVIDER_VERSION,
        "app": "web",
        **overrides,
    }


def _one_line(details: str) -> None:
    assert "\n" not in details.strip(), details
    assert "Traceback" not in details and "ExceptionGroup" not in details and "+-+" not in details, details
    assert SECRET not in details and "hc-secret" not in details


@pytest.fixture(scope="module")
def health() -> Iterator[DynamicProviderServer]:
    with DynamicProviderServer(HealthCheckProvider()) as server:
        yield server


@pytest.mark.grpc
def test_check_rejects_a_health_url_with_an_impossible_port(health: DynamicProviderServer) -> None:
    result = health.check(_health("http://127.0.0.1:99999/healthz"))
    assert [p for p, _ in result.failures] == ["url"]
    assert "port 99999 is outside 1-65535" in result.failures[0][1]


@pytest.mark.grpc
def test_create_refuses_inputs_check_would_refuse_in_one_line(health: DynamicProviderServer) -> None:
    """The engine always checks first; a create that skipped it still fails in one line."""
    with pytest.raises(grpc.RpcError) as info:
        health.create(
            {
                **_health("http://127.0.0.1:99999/"),
                "expected_status": 200,
                "max_latency_ms": 100,
                "interval_seconds": 1,
                "verify_tls": True,
            }
        )
    details = str(info.value.details())
    assert details.startswith("components.health.HealthCheckFailed: health check of app 'web'"), details
    assert "invalid inputs: url:" in details and "port 99999" in details
    _one_line(details)


@pytest.mark.grpc
def test_an_exception_group_inside_create_is_one_line_naming_the_app_and_the_cause() -> None:
    with DynamicProviderServer(GroupRaisingHealthCheck()) as server:
        inputs = server.check(_health("http://127.0.0.1:8080/healthz")).inputs
        with pytest.raises(grpc.RpcError) as info:
            server.create(inputs)
        with pytest.raises(grpc.RpcError) as updated:
            server.update(inputs, inputs)
    for details in (str(info.value.details()), str(updated.value.details())):
        assert details.strip() == (
            "components.health.HealthCheckFailed: health check of app 'web' "
            "(GET http://127.0.0.1:8080/healthz) could not run: "
            "OverflowError: connect(): port must be 0-65535."
        ), details
        _one_line(details)


@pytest.mark.grpc
def test_the_preflight_checks_the_registry_port() -> None:
    with DynamicProviderServer(RegistryPreflightProvider()) as server:
        result = server.check(
            {
                "server": "registry.example.com:99999",
                "username": "ci",
                "password": "pw-preflight-1",
                "repositories": ["team/web"],
                "insecure": False,
                "timeout_seconds": 5,
                "provider_version": "1",
            }
        )
    assert [p for p, _ in result.failures] == ["server"]
    assert "port 99999 is outside 1-65535" in result.failures[0][1]


@pytest.mark.grpc
def test_a_manifest_of_the_wrong_shape_fails_image_size_in_one_line_naming_what_is_missing() -> None:
    registry = MalformedIndexRegistry()
    digest = "sha256:" + hashlib.sha256(registry.body).hexdigest()
    props = {
        "image": f"{registry.server}/team/web@{digest}",
        "platform": "linux/amd64",
        "server": registry.server,
        "username": "ci",
        "password": "pw-image-size-1",
        "insecure": True,
        "timeout_seconds": 5,
        "provider_version": "1",
    }
    try:
        with DynamicProviderServer(ImageSizeProvider()) as server, pytest.raises(grpc.RpcError) as info:
            server.create(props)
    finally:
        registry.stop()
    details = str(info.value.details())
    assert details.strip() == (
        f"RuntimeError: image size of {props['image']}: registry {registry.server} (user 'ci'): "
        f"{props['image']} answered a manifest without manifests[0].digest"
    ), details
    _one_line(details)
