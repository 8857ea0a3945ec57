"""The soak's probe loop (deploy/soak.py) against real servers on 127.0.0.1, on a clock the test drives: a
release that degrades at time t, one that blips once, one slow but correct; Argo CD's word; a signal."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from io import StringIO

import pytest

from deploy.argo_status import ReleaseState, release_state
from deploy.events import Event, recognise
from deploy.process import Interrupts
from deploy.soak import Outcome, Target, http_probes, monotonic, run_soak
from deploy.soak_phase import failure_report, released
from model.config_types import SoakConfig
from model.health_settings import HealthSettings
from model.names import HEALTH_CHECK_TYPE
from tests.support.health_servers import ClockedServer, Reply, ScriptedServer

HEADER = {"Authorization": "Bearer soak-secret-7f3a"}
DEFAULTS = SoakConfig()


class Clock:
    """The soak's clock: it moves only when the soak waits."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.waits: list[float] = []

    def __call__(self) -> float:
        return self.now

    def wait(self, seconds: float) -> bool:
        self.waits.append(seconds)
        self.now += seconds
        return False


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def server(request: pytest.FixtureRequest, clock: Clock) -> Iterator[ClockedServer]:
    reply: Callable[[float], Reply] = request.param
    with ClockedServer(lambda now: reply(now - 1000.0), clock) as running:
        yield running


def _target(server: ScriptedServer, soak: SoakConfig = DEFAULTS, app: str = "web") -> Target:
    settings = HealthSettings(url=server.url("/healthz"), timeout_seconds=2.0)
    return Target(app, f"registry.example.com/platform/{app}@sha256:" + "3" * 64, soak, settings, HEADER)


def _soak(
    clock: Clock,
    *targets: Target,
    stopped: Callable[[], bool] = lambda: False,
    read: Callable[[str], ReleaseState | None] | None = None,
) -> Outcome:
    return run_soak(
        targets, http_probes(monotonic, stopped), read, clock=clock, wait=clock.wait, stopped=stopped
    )


def degrades_at(t: float) -> Callable[[float], Reply]:
    return lambda at: Reply(503) if at >= t else Reply(200)


@pytest.mark.parametrize("server", [degrades_at(100)], indirect=True)
def test_a_release_that_degrades_at_t_fails_at_the_third_failing_probe(
    clock: Clock, server: ClockedServer
) -> None:
    start = clock.now
    outcome = _soak(clock, _target(server))
    [web] = outcome.apps
    assert (web.verdict, outcome.interrupted) == ("failed", False)
    assert clock.now - start == 120, "probes at 100, 110 and 120 s failed: three in a row"
    record = web.record()
    assert (record.probes, record.failures, record.seconds) == (13, 3, 120)
    first, last = record.first_failure or "", record.last_failure or ""
    assert first.startswith("#11 HTTP 503 ") and first.endswith(" ms at +100 s"), first
    assert last.startswith("#13 HTTP 503 ") and last.endswith(" ms at +120 s"), last
    report = failure_report(web)
    for words in ("after 120 s of 300 s", "3 failed probes in a row (failuresInARow 3)", "last 60 s: 3 of 6"):
        assert words in report
    assert all(h.get("Authorization") == HEADER["Authorization"] for h in server.headers_seen), (
        "the gate's headers"
    )
    assert HEADER["Authorization"] not in report + repr(record) + repr(web.target)


@pytest.mark.parametrize("server", [lambda at: Reply(503) if at == 50 else Reply(200)], indirect=True)
def test_a_release_that_blips_once_passes_its_soak(clock: Clock, server: ClockedServer) -> None:
    start = clock.now
    [web] = _soak(clock, _target(server)).apps
    record = web.record()
    assert (web.verdict, record.probes, record.failures, record.reason) == ("passed", 31, 1, None)
    assert clock.now - start == 300 and record.seconds == 300
    assert set(clock.waits) == {10.0}, "one probe every interval, nothing more"


@pytest.mark.parametrize("server", [lambda at: Reply(200, delay=0.06)], indirect=True)
def test_a_slow_but_correct_release_passes_and_its_latency_is_measured(
    clock: Clock, server: ClockedServer
) -> None:
    [web] = _soak(clock, _target(server, SoakConfig(seconds=30))).apps
    record = web.record()
    assert (web.verdict, record.probes, record.failures) == ("passed", 4, 0)
    p50, p95, most = record.latency_ms
    assert 60 <= p50 <= p95 <= most < 200, record.latency_ms


@pytest.mark.parametrize("server", [lambda at: Reply(200, delay=0.25)], indirect=True)
def test_slower_than_the_gates_latency_budget_is_a_failure(clock: Clock, server: ClockedServer) -> None:
    [web] = _soak(clock, _target(server, SoakConfig(seconds=60, failures_in_a_row=2))).apps
    assert web.verdict == "failed" and "too slow" in (web.record().first_failure or "")


@pytest.mark.parametrize("server", [degrades_at(30)], indirect=True)
def test_the_first_failed_app_ends_every_soak(clock: Clock, server: ClockedServer) -> None:
    with ClockedServer(lambda at: Reply(200), clock) as good:
        outcome = _soak(clock, _target(server), _target(good, app="api"))
    web, api = outcome.apps
    assert (web.verdict, api.verdict) == ("failed", "not-soaked")
    assert api.record().reason == "another app's release failed its soak and is rolled back"


def _state(sync: str, health: str, revision: str = "9c3e5b7") -> ReleaseState:
    return release_state(
        {"status": {"sync": {"status": sync, "revision": revision}, "health": {"status": health}}}
    )


@pytest.mark.parametrize("server", [lambda at: Reply(200)], indirect=True)
@pytest.mark.parametrize(
    ("later", "label"),
    [
        (_state("OutOfSync", "Healthy"), "Argo CD: OutOfSync/Healthy"),
        (_state("Synced", "Degraded"), "Argo CD: Synced/Degraded"),
        (_state("Synced", "Healthy", "0badc0de"), "Argo CD: another release than at the soak's start"),
    ],
)
def test_argo_cd_must_keep_the_application_synced_and_healthy_on_the_same_release(
    clock: Clock, server: ClockedServer, later: ReleaseState, label: str
) -> None:
    start = clock.now
    reads: list[str] = []

    def read(app: str) -> ReleaseState | None:
        reads.append(app)
        if clock.now - start >= 40:
            return later
        return None if clock.now - start == 20 else _state("Synced", "Healthy")  # one unreadable moment

    [web] = _soak(clock, _target(server), read=read).apps
    assert web.verdict == "failed" and clock.now - start == 60
    assert (web.record().first_failure or "").endswith(f"{label} at +40 s")
    assert len(reads) == 7, "read once per probe"


@pytest.mark.parametrize("server", [lambda at: Reply(200)], indirect=True)
def test_a_stop_ends_the_soak_as_not_soaked(clock: Clock, server: ClockedServer) -> None:
    start = clock.now
    outcome = _soak(clock, _target(server), stopped=lambda: clock.now - start >= 50)
    [web] = outcome.apps
    assert outcome.interrupted and web.verdict == "not-soaked"
    assert web.record().probes == 5 and web.record().reason == "interrupted by a signal"


def test_a_signal_wakes_the_real_wait_at_once() -> None:
    """The soak waits on the deploy's Interrupts: a SIGTERM ends a 300 s wait within moments."""
    out = StringIO()
    interrupts = Interrupts(out)
    with ClockedServer(lambda at: Reply(200), time.monotonic) as good, interrupts.installed():
        timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGTERM))
        timer.start()
        start = time.monotonic()
        outcome = run_soak(
            [_target(good, SoakConfig(seconds=600, interval_seconds=300))],
            http_probes(monotonic, lambda: interrupts.interrupted), None,
            clock=monotonic, wait=interrupts.wake.wait, stopped=lambda: interrupts.interrupted,
        )  # fmt: skip
        took = time.monotonic() - start
    assert outcome.interrupted and outcome.apps[0].verdict == "not-soaked"
    assert took < 3.0, f"the wait slept through the signal ({took:.1f} s)"
    assert interrupts.exit_code == 143


def _pre(app: str, op: str) -> Event:
    urn = (
        "urn:pulumi:prod::gitops-deploy::gitops-deploy:index:AppRelease$pulumi-python:dynamic/health:"
        f"HealthCheck::{app}-health"
    )
    found = recognise(urn)  # the URN decoded as the deploy decodes every event's
    assert found is not None and found.app == app
    return Event("pre", 1, 0, urn, HEALTH_CHECK_TYPE, op, app=found.app, phase=found.phase)


def test_released_apps_are_those_whose_digest_changed_or_whose_gate_ran_again() -> None:
    before = {"web": "r/web@sha256:1", "api": "r/api@sha256:2", "db": "r/db@sha256:3"}
    after = {"web": "r/web@sha256:1", "api": "r/api@sha256:9", "db": "r/db@sha256:3", "new": "r/new@sha256:4"}
    events = [_pre("web", "update"), _pre("db", "same"), _pre("api", "same")]
    assert released(events, before, after) == ["web", "api", "new"]
    assert released([], after, after) == []
