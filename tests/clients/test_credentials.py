"""No credential leaves its origin, against real servers on 127.0.0.x.

A second origin is a second port on 127.0.0.1, a second host is 127.0.0.2 (all of 127/8 is loopback).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from clients import health_probe as hp
from clients.health_probe import check_endpoint
from clients.registry import RegistryClient
from clients.registry_session import RegistryError
from components.health import PROVIDER_VERSION, HealthCheckFailed, HealthCheckProvider
from components.image_size import measure
from model.health_settings import HealthSettings
from tests.support.certificates import server_tls_context
from tests.support.dynamic_provider import DynamicProviderServer
from tests.support.echo_registry import EchoingRegistry
from tests.support.health_servers import Reply, ScriptedServer
from tests.support.registry import LocalRegistry

API_KEY = "X-Api-Key"
KEY_VALUE = "key-9f3K2pQz7Lx"
BEARER = "Bearer hc-secret-7Qz9xK2p"
HEADERS = {API_KEY: KEY_VALUE, "Authorization": BEARER}
PASSWORD = "S3cr3t-Pw-7vQ!echo"
LAX_MS = 1500.0
DIGEST = "sha256:" + "c" * 64


def _settings(url: str, **overrides: Any) -> HealthSettings:
    values: dict[str, Any] = {
        "url": url,
        "attempts": 1,
        "success_threshold": 1,
        "interval_seconds": 0.05,
        "timeout_seconds": 2.0,
        "max_latency_ms": LAX_MS,
        **overrides,
    }
    return HealthSettings(**values)


def _no_header_value(text: str) -> None:
    assert KEY_VALUE not in text and BEARER not in text and "hc-secret" not in text, text


@pytest.fixture
def other_host() -> Iterator[ScriptedServer]:
    """A server on 127.0.0.2 that would answer 200 to anything, and records what reaches it."""
    with ScriptedServer({"/x": [Reply(200)]}, host="127.0.0.2") as srv:
        yield srv


@pytest.fixture
def other_port() -> Iterator[ScriptedServer]:
    """A server on another port of 127.0.0.1: another origin on the same host."""
    with ScriptedServer({"/x": [Reply(200)]}) as srv:
        yield srv


# -- 1. health headers stay on the configured origin ----------------------------------------------


@pytest.mark.parametrize("target", ["other_host", "other_port"])
def test_a_redirect_to_another_origin_is_refused_and_sends_it_nothing(
    target: str, request: pytest.FixtureRequest
) -> None:
    other: ScriptedServer = request.getfixturevalue(target)
    with ScriptedServer({"/start": [Reply(302, location=other.url("/x"))]}) as home:
        outcome = check_endpoint(_settings(home.url("/start")), HEADERS)
        assert home.headers_seen[0][API_KEY] == KEY_VALUE  # the configured origin gets the headers
    assert other.requests == [], f"another origin was contacted: {other.requests}"
    assert not outcome.passed and [p.outcome for p in outcome.probes] == [hp.OFF_ORIGIN]
    report = outcome.report()
    assert f"redirect to http://{other.host}:{other.port} refused" in report, report
    assert f"only within http://127.0.0.1:{home.port}" in report
    _no_header_value(report)


def test_a_redirect_within_the_origin_keeps_the_headers() -> None:
    routes = {"/start": [Reply(302, location="/ok")], "/ok": [Reply(200)]}
    with ScriptedServer(routes) as home:
        outcome = check_endpoint(_settings(home.url("/start")), HEADERS)
        seen = {path: headers for _, path, headers in home.requests}
    assert outcome.passed, outcome.report()
    assert seen["/ok"][API_KEY] == KEY_VALUE and seen["/ok"]["Authorization"] == BEARER


@pytest.mark.parametrize("same_port", [True, False], ids=["same-port", "other-port"])
def test_a_redirect_from_https_to_http_is_refused(tmp_path: Path, same_port: bool) -> None:
    with ScriptedServer({"/x": [Reply(200)]}) as plain:
        with ScriptedServer({"/start": [Reply(302)]}, tls=server_tls_context(tmp_path)) as tls:
            port = tls.port if same_port else plain.port
            tls.routes["/start"] = [Reply(302, location=f"http://127.0.0.1:{port}/x")]
            outcome = check_endpoint(_settings(tls.url("/start"), verify_tls=False), HEADERS)
            assert len(tls.requests) == 1, tls.requests  # no plain-HTTP request reached the TLS port
        assert plain.requests == []
    assert [p.outcome for p in outcome.probes] == [hp.OFF_ORIGIN], outcome.report()
    assert f"redirect to http://127.0.0.1:{port} refused" in outcome.report()


def test_a_redirect_to_an_impossible_port_is_a_probe_result_not_a_crash() -> None:
    """Port 99999 in a Location is one line naming the port, not a 6,000-character exception group."""
    with ScriptedServer({"/start": [Reply(302, location="http://127.0.0.1:99999/x")]}) as home:
        props = {
            **{k: v for k, v in vars(_settings(home.url("/start"))).items()},
            "headers": HEADERS,
            "trigger": "t",
            "provider_version": PROVIDER_VERSION,
            "app": "web",
        }
        with pytest.raises(HealthCheckFailed) as info:
            HealthCheckProvider().create(props)
    message = str(info.value)
    assert "off-origin" in message and "redirect to http://127.0.0.1:99999 refused" in message, message
    assert "ExceptionGroup" not in message and "Traceback" not in message
    _no_header_value(message)


# -- 2. registry and token-service texts are scrubbed --------------------------------------------


def _secret_forms(registry: EchoingRegistry) -> list[str]:
    forms = [PASSWORD, registry.basic, registry.basic.removeprefix("Basic ")]
    for token in registry.tokens:
        forms += [token, *token.split(".")]
    return forms


@pytest.mark.parametrize("auth", ["basic", "bearer"])
def test_an_echoed_authorization_never_reaches_the_preflight_message(auth: Any) -> None:
    with (
        EchoingRegistry("alice", PASSWORD, auth=auth) as registry,
        RegistryClient(registry.server, "alice", PASSWORD, insecure=True) as client,
    ):
        with pytest.raises(RegistryError) as info:
            client.preflight(["team/web"])
        message = str(info.value)
        assert "DENIED" in message and "[secret]" in message, message
        if auth == "bearer":
            assert registry.tokens, "the bearer path never got a token"
        for form in _secret_forms(registry):
            assert form not in message, f"{form!r} leaked into {message!r}"


def test_an_echoed_authorization_never_reaches_the_image_size_error() -> None:
    with EchoingRegistry("alice", PASSWORD, auth="bearer") as registry:
        props = {
            "image": f"{registry.server}/team/web@{DIGEST}",
            "platform": "linux/amd64",
            "server": registry.server,
            "username": "alice",
            "password": PASSWORD,
            "insecure": True,
        }
        with pytest.raises(RuntimeError) as info:
            measure(props)
        message = str(info.value)
        assert "MANIFEST_UNKNOWN" in message and "manifest not found" in message, message
        assert "\n" not in message
        for form in _secret_forms(registry):
            assert form not in message, f"{form!r} leaked into {message!r}"


# -- 3. the upload cancel sends credentials only to the registry's own origin ---------------------


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.registry
@pytest.mark.parametrize("target", ["other_host", "other_port"])
def test_an_upload_location_on_another_origin_gets_nothing(
    target: str, request: pytest.FixtureRequest
) -> None:
    other: ScriptedServer = request.getfixturevalue(target)
    options = {"host": f"http://{other.host}:{other.port}"}
    with (
        LocalRegistry(users={"alice": PASSWORD}, http_options=options) as registry,
        RegistryClient(registry.server, "alice", PASSWORD, insecure=True) as client,
    ):
        result = client.preflight(["team/web"])
    assert result.auth == "basic"
    assert other.requests == [], f"the upload cancel went to another origin: {other.requests}"


@pytest.mark.registry
def test_an_upload_location_that_downgrades_to_http_gets_nothing(other_port: ScriptedServer) -> None:
    """Behind a TLS-terminating proxy the registry often answers with an http:// Location."""
    options = {"host": f"http://127.0.0.1:{other_port.port}"}
    with (
        LocalRegistry(users={"alice": PASSWORD}, tls=True, http_options=options) as registry,
        RegistryClient(registry.server, "alice", PASSWORD, insecure=True) as client,
    ):
        result = client.preflight(["team/web"])
    assert result.base_url.startswith("https://")
    assert other_port.requests == []


@pytest.mark.registry
def test_a_relative_upload_location_is_cancelled_at_the_registry() -> None:
    with LocalRegistry(users={"alice": PASSWORD}, http_options={"relativeurls": True}) as registry:
        with RegistryClient(registry.server, "alice", PASSWORD, insecure=True) as client:
            client.preflight(["team/web"])
        log = registry.log_text()
    deletes = [line for line in log.splitlines() if "http.request.method=DELETE" in line]
    completed = [line for line in deletes if 'msg="response completed"' in line]
    assert any("http.response.status=204" in line for line in completed), log[-2000:]
    assert PASSWORD not in log and _basic("alice", PASSWORD) not in log


# -- the provider over gRPC: a failure is one line ------------------------------------------------


@pytest.mark.grpc
def test_grpc_redirect_off_origin_fails_create_with_the_report_only(other_host: ScriptedServer) -> None:
    with (
        DynamicProviderServer(HealthCheckProvider()) as server,
        ScriptedServer({"/": [Reply(302, location=other_host.url("/x"))]}) as home,
    ):
        inputs = server.check(
            {"url": home.url(), "attempts": 1, "success_threshold": 1, "headers": HEADERS, "app": "web"}
        ).inputs
        with pytest.raises(grpc.RpcError) as info:
            server.create(inputs)
    details = str(info.value.details())
    assert details.startswith("components.health.HealthCheckFailed: health check GET"), details
    assert "Traceback" not in details and "off-origin" in details
    assert other_host.requests == []
    _no_header_value(details)
