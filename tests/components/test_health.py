"""HealthCheck: the probe loop against real servers on 127.0.0.1, and the provider over gRPC."""

from __future__ import annotations

import base64
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pulumi
import pytest
from pulumi.dynamic.dynamic import serialize_provider
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc, settings
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from clients import health_probe as hp
from clients import http_bounds
from clients.health_probe import CheckOutcome, check_endpoint
from components.health import (
    PROVIDER_VERSION,
    HealthCheck,
    HealthCheckArgs,
    HealthCheckFailed,
    HealthCheckProvider,
)
from model.health_settings import DEFAULTS, HealthSettings, waits
from policy_check.simulate import ProgramMocks, _RecordingMonitor
from tests.support import dynamic_provider
from tests.support.certificates import server_tls_context
from tests.support.dynamic_provider import UNKNOWN, DynamicProviderServer
from tests.support.health_servers import (
    Reply,
    ScriptedServer,
    silent_server,
    trickling_headers_server,
)
from tests.support.processes import free_port

FAST = 0.05
"""Interval used throughout, so the whole file runs in seconds."""
SECRET = "Bearer hc-secret-7Qz9xK2p"
SHORT_SECRET = "Zq9"
"""Shorter than what the report scrubber replaces: it must stay out by construction."""
LAX_MS = 1500.0
"""Latency limit where latency is not under test: a loaded 2-core machine can stall a probe past 200 ms."""


def run(settings: HealthSettings, headers: dict[str, str] | None = None) -> tuple[CheckOutcome, float]:
    """Run a check and assert it stayed within its computed worst case."""
    start = time.monotonic()
    outcome = check_endpoint(settings, headers)
    wall = time.monotonic() - start
    assert outcome.elapsed_seconds <= settings.budget_seconds, outcome.report()
    assert wall <= settings.budget_seconds, f"wall {wall:.2f} s > budget\n{outcome.report()}"
    return outcome, wall


def outcomes(outcome: CheckOutcome) -> list[str]:
    return [p.outcome for p in outcome.probes]


# --- the ten real-server cases -------------------------------------------------------------


def test_healthy_passes_after_threshold_probes() -> None:
    with ScriptedServer({"/healthz": [Reply(200)]}) as srv:
        settings = HealthSettings(url=srv.url("/healthz"), interval_seconds=FAST, max_latency_ms=LAX_MS)
        outcome, wall = run(settings)
    assert outcome.passed and outcome.attempts_used == 3, outcome.report()
    assert outcome.status_code == 200
    assert 0 < outcome.latency_ms(50) <= outcome.latency_ms(95) <= outcome.latency_ms(100) <= LAX_MS
    assert wall >= 2 * FAST  # two waits between three probes


def test_healthy_but_over_the_latency_limit_fails_as_too_slow() -> None:
    with ScriptedServer({"/": [Reply(200, delay=0.12)]}) as srv:
        settings = HealthSettings(url=srv.url(), max_latency_ms=40, attempts=5, interval_seconds=FAST)
        outcome, _ = run(settings)
    assert not outcome.passed
    # After 3 failures only 2 attempts are left, too few for 3 in a row: the check stops early.
    assert outcome.attempts_used == 3, outcome.report()
    assert outcomes(outcome) == [hp.TOO_SLOW] * 3
    assert all(p.latency_ms >= 120 and p.status == 200 for p in outcome.probes)
    assert "too slow" in outcome.report()


def test_503_then_200_passes() -> None:
    with ScriptedServer({"/": [Reply(503), Reply(503), Reply(200)]}) as srv:
        settings = HealthSettings(
            url=srv.url(), success_threshold=2, interval_seconds=FAST, max_latency_ms=LAX_MS
        )
        outcome, _ = run(settings)
    assert outcome.passed and outcome.attempts_used == 4, outcome.report()
    assert outcomes(outcome) == [hp.HTTP_5XX, hp.HTTP_5XX, hp.OK, hp.OK]
    assert outcome.probes[0].status == 503
    assert "HTTP 5xx" in outcome.report()


def test_refused_then_listening_mid_check_passes() -> None:
    srv = ScriptedServer({"/": [Reply(200)]}, port=free_port(), start=False)
    timer = srv.start_after(0.3)
    try:
        settings = HealthSettings(
            url=srv.url(), success_threshold=2, interval_seconds=0.1, max_latency_ms=LAX_MS
        )
        outcome, wall = run(settings)
    finally:
        timer.cancel()  # a failed run must not leave a server starting later
        timer.join(5)
        srv.close()
    assert outcome.passed, outcome.report()
    assert outcome.probes[0].outcome == http_bounds.REFUSED
    refused = outcomes(outcome).index(hp.OK)
    assert outcomes(outcome) == [http_bounds.REFUSED] * refused + [hp.OK, hp.OK]
    assert 2 <= refused <= 7 and outcome.attempts_used == refused + 2
    assert wall >= 0.3


def test_flapping_resets_the_success_threshold() -> None:
    script = [Reply(200), Reply(500), Reply(200), Reply(200), Reply(200)]
    with ScriptedServer({"/": script}) as srv:
        outcome, _ = run(HealthSettings(url=srv.url(), interval_seconds=FAST, max_latency_ms=LAX_MS))
    assert outcome.passed and outcome.attempts_used == 5, outcome.report()
    assert outcomes(outcome) == [hp.OK, hp.HTTP_5XX, hp.OK, hp.OK, hp.OK]


def test_flapping_forever_fails() -> None:
    script = [Reply(200), Reply(500)] * 4
    with ScriptedServer({"/": script}) as srv:
        settings = HealthSettings(
            url=srv.url(), attempts=6, success_threshold=2, interval_seconds=FAST, max_latency_ms=LAX_MS
        )
        outcome, _ = run(settings)
    assert not outcome.passed and outcome.attempts_used == 6, outcome.report()
    assert outcomes(outcome) == [hp.OK, hp.HTTP_5XX] * 3
    assert "verdict: failed" in outcome.report()


def test_server_that_never_answers_times_out_each_probe() -> None:
    with silent_server() as url:
        settings = HealthSettings(
            url=url, attempts=2, success_threshold=1, timeout_seconds=0.3, interval_seconds=FAST
        )
        outcome, wall = run(settings)
    assert not outcome.passed and outcome.attempts_used == 2, outcome.report()
    assert outcomes(outcome) == [http_bounds.TIMEOUT, http_bounds.TIMEOUT]
    assert all(290 <= p.latency_ms <= 300 + 1000 * hp.PROBE_OVERHEAD_SECONDS for p in outcome.probes)
    assert wall >= 0.6


def test_headers_trickled_byte_by_byte_are_cut_at_the_probe_timeout() -> None:
    # Each byte arrives well within httpx's per-read timeout; only a whole-probe deadline stops this.
    with trickling_headers_server(byte_every=0.02) as url:
        settings = HealthSettings(url=url, attempts=1, success_threshold=1, timeout_seconds=0.4)
        outcome, wall = run(settings)
    assert outcomes(outcome) == [http_bounds.TIMEOUT], outcome.report()
    assert wall < 0.4 + hp.PROBE_OVERHEAD_SECONDS


def test_body_trickled_after_the_headers_is_cut_at_the_probe_timeout() -> None:
    with ScriptedServer({"/": [Reply(200, body_bytes=10_000, trickle_seconds=0.02)]}) as srv:
        settings = HealthSettings(url=srv.url(), attempts=1, success_threshold=1, timeout_seconds=0.4)
        outcome, wall = run(settings)
    assert outcomes(outcome) == [http_bounds.TIMEOUT] and outcome.probes[0].status == 200, outcome.report()
    assert wall < 0.4 + hp.PROBE_OVERHEAD_SECONDS


def test_redirect_to_a_healthy_page_passes() -> None:
    routes = {"/start": [Reply(302, location="/ok")], "/ok": [Reply(200)]}
    with ScriptedServer(routes) as srv:
        outcome, _ = run(HealthSettings(url=srv.url("/start"), interval_seconds=FAST, max_latency_ms=LAX_MS))
        assert srv.hits == {"/start": 3, "/ok": 3}
    assert outcome.passed and outcome.attempts_used == 3 and outcome.status_code == 200, outcome.report()


def test_redirect_loop_fails() -> None:
    with ScriptedServer({"/loop": [Reply(302, location="/loop")]}) as srv:
        settings = HealthSettings(
            url=srv.url("/loop"), attempts=2, success_threshold=1, interval_seconds=FAST
        )
        outcome, _ = run(settings)
        assert srv.hits["/loop"] == 2 * (hp.MAX_REDIRECTS + 1)
    assert not outcome.passed and outcomes(outcome) == [http_bounds.REDIRECT_LOOP] * 2, outcome.report()


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[ScriptedServer]:
    with ScriptedServer({"/": [Reply(200)]}, tls=server_tls_context(tmp_path)) as srv:
        yield srv


def test_self_signed_tls_fails_when_verified(tls_server: ScriptedServer) -> None:
    settings = HealthSettings(url=tls_server.url(), attempts=2, success_threshold=1, interval_seconds=FAST)
    outcome, _ = run(settings)
    assert not outcome.passed and outcomes(outcome) == [http_bounds.TLS, http_bounds.TLS], outcome.report()


def test_self_signed_tls_passes_without_verification(tls_server: ScriptedServer) -> None:
    settings = HealthSettings(
        url=tls_server.url(), verify_tls=False, interval_seconds=FAST, max_latency_ms=LAX_MS
    )
    outcome, _ = run(settings)
    assert outcome.passed and outcome.attempts_used == 3, outcome.report()


def test_an_injected_transport_is_used(tls_server: ScriptedServer) -> None:
    # verify_tls=True is the transport's business once one is injected: this one does not verify.
    transport = httpx.AsyncHTTPTransport(verify=False)
    settings = HealthSettings(url=tls_server.url(), success_threshold=1, max_latency_ms=LAX_MS)
    outcome = check_endpoint(settings, transport=transport)
    assert outcome.passed and outcome.attempts_used == 1, outcome.report()


def test_multi_megabyte_body_is_read_only_up_to_the_cap() -> None:
    size = 64 * 1024 * 1024
    with ScriptedServer({"/": [Reply(200, body_bytes=size)]}) as srv:
        outcome, _ = run(HealthSettings(url=srv.url(), interval_seconds=FAST, max_latency_ms=LAX_MS))
        time.sleep(0.2)  # let the server notice the closed connections
        sent = srv.bytes_sent
    assert outcome.passed and outcome.attempts_used == 3, outcome.report()
    assert all(p.body_bytes == hp.BODY_LIMIT_BYTES for p in outcome.probes)
    # Draining would send all 3 x 64 MiB; a capped read stops after socket buffers' worth.
    assert sent < 3 * size / 4, f"the client drained the body: {sent} bytes sent"


def test_wrong_status_404_fails() -> None:
    with ScriptedServer({"/health": [Reply(404)]}) as srv:
        settings = HealthSettings(
            url=srv.url("/health"), attempts=5, success_threshold=2, interval_seconds=FAST
        )
        outcome, _ = run(settings)
    # After 4 failures one attempt is left, too few for 2 in a row.
    assert not outcome.passed and outcome.attempts_used == 4, outcome.report()
    assert outcomes(outcome) == [hp.WRONG_STATUS] * 4 and outcome.status_code == 404
    assert "404" in outcome.report()


# --- error classes, budget, injected clock and sleep --------------------------------------


def test_unresolvable_host_is_a_dns_failure() -> None:
    settings = HealthSettings(
        url="http://health-check.invalid/", attempts=1, success_threshold=1, timeout_seconds=2
    )
    outcome, _ = run(settings)
    assert outcomes(outcome) == [http_bounds.DNS], outcome.report()


def test_a_resolver_that_never_answers_cannot_stretch_the_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    real = socket.getaddrinfo

    def stuck_resolver(*args: Any, **kwargs: Any) -> Any:
        time.sleep(3)  # a DNS server that never answers, as seen by the stdlib resolver
        return real(*args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", stuck_resolver)
    settings = HealthSettings(url="http://localhost:9/", attempts=1, success_threshold=1, timeout_seconds=0.3)
    outcome, wall = run(settings)
    assert outcomes(outcome) == [http_bounds.TIMEOUT], outcome.report()
    assert wall < 1.5


def test_waits_back_off_after_failures_with_injected_clock_and_sleep() -> None:
    now = [0.0]
    slept: list[float] = []

    def clock() -> float:
        return now[0]

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    port = free_port()
    settings = HealthSettings(
        url=f"http://127.0.0.1:{port}/", attempts=6, success_threshold=1, interval_seconds=2
    )
    outcome = check_endpoint(settings, clock=clock, sleep=sleep)
    assert outcomes(outcome) == [http_bounds.REFUSED] * 6
    assert slept == waits(6, 2) == [2, 3, 4.5, 6.75, 8]  # capped at 4 intervals
    assert outcome.elapsed_seconds == pytest.approx(sum(slept))


def test_after_a_pass_the_next_probe_comes_at_the_interval() -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    with ScriptedServer({"/": [Reply(503), Reply(503), Reply(200)]}) as srv:
        settings = HealthSettings(url=srv.url(), success_threshold=3, interval_seconds=1)
        outcome = check_endpoint(settings, sleep=sleep)
    assert outcome.passed and outcomes(outcome) == [hp.HTTP_5XX, hp.HTTP_5XX, hp.OK, hp.OK, hp.OK]
    assert slept == [1, 1.5, 1, 1]


def test_the_loop_stops_when_the_budget_runs_out() -> None:
    now = [0.0]

    def clock() -> float:
        return now[0]

    async def sleep(seconds: float) -> None:
        now[0] += seconds + 100  # a sleep that overshoots wildly

    settings = HealthSettings(url=f"http://127.0.0.1:{free_port()}/", attempts=5, success_threshold=1)
    outcome = check_endpoint(settings, clock=clock, sleep=sleep)
    assert not outcome.passed and outcome.attempts_used < 5
    assert "budget" in outcome.verdict


def test_headers_are_sent() -> None:
    with ScriptedServer({"/": [Reply(200)]}) as srv:
        settings = HealthSettings(url=srv.url(), success_threshold=1, max_latency_ms=LAX_MS)
        outcome, _ = run(settings, {"Authorization": SECRET, "X-Key": SHORT_SECRET})
        assert srv.headers_seen[0]["Authorization"] == SECRET
        assert srv.headers_seen[0]["X-Key"] == SHORT_SECRET
    for text in (outcome.report(), outcome.summary()):
        assert SECRET not in text and SHORT_SECRET not in text


def test_provider_failure_message_is_the_report_without_header_values() -> None:
    with ScriptedServer({"/": [Reply(503)]}) as srv:
        headers = {"Authorization": SECRET, "X-Key": SHORT_SECRET}
        props = {**_inputs(srv.url(), attempts=2, success_threshold=1), "headers": headers}
        with pytest.raises(HealthCheckFailed) as info:
            HealthCheckProvider().create(props)
    message = str(info.value)
    assert "HTTP 5xx" in message and "503" in message and "verdict: failed" in message
    assert SECRET not in message and SHORT_SECRET not in message


def test_a_header_value_httpx_cannot_encode_fails_without_quoting_it() -> None:
    """httpx's encode error quotes part of the value; create must fail first, naming only the header."""
    value = "Bearer t\u00f6ken-" + SHORT_SECRET
    with pytest.raises(HealthCheckFailed) as info:
        HealthCheckProvider().create(_inputs("http://127.0.0.1:9/", headers={"Authorization": value}))
    message = str(info.value)
    assert "'Authorization'" in message and "not valid HTTP" in message
    assert "\u00f6" not in message and SHORT_SECRET not in message and "ken-" not in message


# --- the resource and the provider as the engine drives them ------------------------------


def _inputs(url: str, **overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "url": url,
        "expected_status": 200,
        "max_latency_ms": 500,
        "attempts": 4,
        "interval_seconds": FAST,
        "timeout_seconds": 1,
        "success_threshold": 2,
        "headers": {"Authorization": SECRET},
        "verify_tls": True,
        "trigger": "sha256:" + "a" * 64,
        "provider_version": PROVIDER_VERSION,
    }
    return {**base, **overrides}


def _leaves(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for v in value.values():
            yield from _leaves(v)
    elif isinstance(value, list):
        for v in value:
            yield from _leaves(v)
    else:
        yield str(value)


@pytest.fixture(scope="module")
def server() -> Iterator[DynamicProviderServer]:
    with DynamicProviderServer(HealthCheckProvider()) as srv:
        yield srv


def test_type_token_and_secret_headers_under_mocks() -> None:
    monitor = _RecordingMonitor(ProgramMocks())
    settings.ROOT.set(None)
    pulumi_mocks.set_mocks(
        monitor.mocks, project="gitops-deploy", stack="test", preview=True, monitor=monitor
    )

    def program() -> None:
        HealthCheck(
            "web-health",
            HealthCheckArgs(
                settings=HealthSettings(url="https://web.example.com/healthz"),
                headers={"Authorization": SECRET},
                trigger="d",
            ),
        )

    _sync_await(run_pulumi_func(program))
    (record,) = [r for r in monitor.records if r.name == "web-health"]
    assert record.type == "pulumi-python:dynamic/health:HealthCheck"
    assert "headers" in record.secret_paths
    assert record.inputs["provider_version"] == PROVIDER_VERSION
    assert record.inputs["attempts"] == DEFAULTS["attempts"]
    assert record.inputs["interval_seconds"] == DEFAULTS["interval_seconds"]
    # On the wire the value sits only inside the secret envelope, which the engine encrypts in state.
    assert record.raw_inputs["headers"]["value"] == {"Authorization": SECRET}


def test_serialized_provider_is_a_reference_to_the_project_module() -> None:
    raw = base64.b64decode(serialize_provider(HealthCheckProvider()))
    # dill pickles classes from importable modules by reference: the plugin must import `components`.
    assert b"components.health" in raw and b"HealthCheckProvider" in raw and len(raw) < 200


@pytest.mark.grpc
def test_grpc_check_names_each_bad_property(server: DynamicProviderServer) -> None:
    bad = _inputs(
        "ftp://example.com/",
        expected_status=99,
        max_latency_ms=0,
        attempts=0,
        interval_seconds=-1,
        timeout_seconds=0,
        success_threshold=-2,
        verify_tls="yes",
        headers={
            "Bad Name": "x",
            "X-Ok": "line\nbreak " + SECRET,
            "X-Trailing": SECRET + "\n",
            "X-Latin": "t\u00f6ken",
        },
    )
    result = server.check(bad)
    props = sorted(p for p, _ in result.failures)
    assert props == sorted(
        [
            "url",
            "expected_status",
            "max_latency_ms",
            "attempts",
            "interval_seconds",
            "timeout_seconds",
            "success_threshold",
            "verify_tls",
            "headers",
            "headers.X-Ok",
            "headers.X-Trailing",
            "headers.X-Latin",
        ]
    )
    assert all(SECRET not in reason and "\u00f6" not in reason for _, reason in result.failures)


@pytest.mark.grpc
def test_grpc_check_rejects_a_budget_over_15_minutes(server: DynamicProviderServer) -> None:
    result = server.check(_inputs("https://x.example/", attempts=100, interval_seconds=5, timeout_seconds=5))
    assert [p for p, _ in result.failures] == ["attempts"]
    assert "15 minutes" in result.failures[0][1]


@pytest.mark.grpc
def test_grpc_check_rejects_an_unreachable_threshold(server: DynamicProviderServer) -> None:
    result = server.check(_inputs("https://x.example/", attempts=2, success_threshold=3))
    assert [p for p, _ in result.failures] == ["success_threshold"]


@pytest.mark.grpc
def test_grpc_check_fills_defaults_and_accepts_unknowns(server: DynamicProviderServer) -> None:
    result = server.check({"url": UNKNOWN, "trigger": UNKNOWN})
    assert result.failures == []
    assert result.inputs["attempts"] == DEFAULTS["attempts"]
    assert result.inputs["success_threshold"] == DEFAULTS["success_threshold"]
    assert result.inputs["provider_version"] == PROVIDER_VERSION


@pytest.mark.grpc
def test_grpc_create_update_and_diff(server: DynamicProviderServer) -> None:
    with ScriptedServer({"/": [Reply(200)]}) as srv:
        inputs = server.check(_inputs(srv.url())).inputs
        id_, outs = server.create(inputs)
        assert outs["status_code"] == 200 and outs["attempts_used"] == 2
        assert 0 < outs["p50_ms"] <= outs["p95_ms"] <= outs["max_ms"] <= 500
        assert outs["checked_at"].endswith("+00:00") and "passed" in outs["report"]
        assert "headers" not in outs
        assert id_ == f"http://127.0.0.1:{srv.port}/"

        # The engine diffs the old outputs against the new checked inputs.
        assert not server.diff(outs, inputs).has_changes
        assert not server.diff(outs, {**inputs, "headers": {"Authorization": "Bearer rotated"}}).has_changes
        assert not server.diff(outs, {**inputs, "interval_seconds": 1}).has_changes
        for key, value in [
            ("trigger", "sha256:" + "b" * 64),
            ("url", srv.url("/other")),
            ("max_latency_ms", 100),
            ("success_threshold", 3),
            ("provider_version", "0"),
        ]:
            diff = server.diff(outs, {**inputs, key: value})
            assert diff.has_changes and diff.replaces == [], key
        assert server.diff(outs, {**inputs, "trigger": UNKNOWN}).has_changes

        news = {**inputs, "trigger": "sha256:" + "c" * 64}
        updated = server.update(outs, news)
        assert updated["trigger"] == news["trigger"] and updated["status_code"] == 200
        server.delete(updated)
    assert all(SECRET not in leaf for leaf in _leaves({"outs": outs, "updated": updated}))


@pytest.mark.grpc
def test_grpc_failing_create_carries_the_report(server: DynamicProviderServer) -> None:
    with ScriptedServer({"/": [Reply(503), Reply(200, delay=0.2)]}) as srv:
        inputs = server.check(_inputs(srv.url(), attempts=3, success_threshold=2, max_latency_ms=50)).inputs
        with pytest.raises(grpc.RpcError) as info:
            server.create(inputs)
    details = str(info.value.details())
    assert "HealthCheckFailed" in details and "verdict: failed" in details
    assert "HTTP 5xx" in details and "too slow" in details
    assert SECRET not in details


@pytest.mark.grpc
def test_grpc_create_accepts_headers_in_a_secret_envelope(server: DynamicProviderServer) -> None:
    envelope = {rpc._special_sig_key: rpc._special_secret_sig, "value": {"Authorization": SECRET}}
    with ScriptedServer({"/": [Reply(200)]}) as web:
        inputs = server.check(_inputs(web.url(), headers=envelope)).inputs
        _, outs = server.create(inputs)
        assert web.headers_seen[-1]["Authorization"] == SECRET
    assert all(SECRET not in leaf for leaf in _leaves(outs))


@pytest.mark.grpc
def test_grpc_secret_never_reaches_stderr() -> None:
    with DynamicProviderServer(HealthCheckProvider()) as srv, ScriptedServer({"/": [Reply(500)]}) as web:
        inputs = srv.check(_inputs(web.url(), attempts=1, success_threshold=1)).inputs
        with pytest.raises(grpc.RpcError):
            srv.create(inputs)
        srv.delete(inputs)
    stderr = srv.stderr_text()
    assert "nothing to do" in stderr
    assert SECRET not in stderr


@pytest.mark.grpc
def test_plugin_started_from_the_project_dir_needs_no_pythonpath(monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine runs `python -m pulumi.dynamic` with the project dir as cwd: `-m` puts it on sys.path."""
    real_popen = subprocess.Popen

    def popen_without_pythonpath(*args: Any, env: dict[str, str], **kwargs: Any) -> Any:
        kwargs["env"] = {k: v for k, v in env.items() if k != "PYTHONPATH"}
        return real_popen(*args, **kwargs)

    monkeypatch.setattr(dynamic_provider.subprocess, "Popen", popen_without_pythonpath)
    with DynamicProviderServer(HealthCheckProvider()) as srv:
        assert srv.check(_inputs("https://x.example/")).failures == []


@pytest.mark.grpc
def test_plugin_started_elsewhere_cannot_load_the_provider(tmp_path: Path) -> None:
    with (
        DynamicProviderServer(HealthCheckProvider(), cwd=tmp_path) as srv,
        pytest.raises(grpc.RpcError) as info,
    ):
        srv.check(_inputs("https://x.example/"))
    assert "No module named 'components'" in str(info.value.details())


def test_health_check_args_are_frozen() -> None:
    args = HealthCheckArgs(settings=HealthSettings(url="https://x.example/"))
    with pytest.raises(AttributeError):
        args.trigger = "sha256:x"  # type: ignore[misc]
    assert isinstance(pulumi.Output.secret(args.headers), pulumi.Output)
