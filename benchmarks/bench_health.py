"""Health-check benchmark: detection lag, time-to-fail against the budget (the real probe loop in dilated
time, docs/benchmarks.md), and CPU time per probe."""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

import _harness

from clients.health_probe import CheckOutcome, check_endpoint
from model.health_settings import DEFAULTS, HealthSettings
from tests.support.health_servers import Reply, ScriptedServer, silent_server
from tests.support.processes import free_port, wait_until

DILATION = 50.0
"""Virtual seconds per real second in the dilated runs."""
DEFAULT = {k: DEFAULTS[k] for k in ("interval_seconds", "timeout_seconds", "success_threshold", "attempts")}
AGGRESSIVE = {"interval_seconds": 1.0, "timeout_seconds": 2.0, "success_threshold": 2, "attempts": 40}
HEALTHY_AT = (5.0, 10.0, 15.0, 30.0)
"""Virtual seconds after the check starts at which the endpoint turns healthy."""


def _dilated(url: str, **profile: Any) -> tuple[HealthSettings, CheckOutcome]:
    """The check of `url` with `profile` in dilated time (the latency limit dilated too)."""
    t0 = time.monotonic()

    async def sleep(seconds: float) -> None:
        await asyncio.sleep(seconds / DILATION)

    settings = HealthSettings(url=url, max_latency_ms=200 * DILATION, **profile)
    return settings, check_endpoint(settings, clock=lambda: (time.monotonic() - t0) * DILATION, sleep=sleep)


def _once(url: str) -> CheckOutcome:
    return check_endpoint(HealthSettings(url, attempts=1, success_threshold=1, max_latency_ms=2000))


def detection_lag(name: str, profile: dict[str, Any]) -> list[float]:
    """Virtual seconds from the endpoint turning healthy to the check passing."""
    lags = []
    with ScriptedServer({"/healthz": [Reply(200)]}) as srv:
        _once(srv.url("/healthz"))  # real overheads are magnified DILATION times: warm up
        for healthy_at in HEALTHY_AT:
            srv.unhealthy_until = time.monotonic() + healthy_at / DILATION
            settings, outcome = _dilated(srv.url("/healthz"), **profile)
            lag = outcome.elapsed_seconds - healthy_at
            verdict = f"lag {lag:6.1f} s" if outcome.passed else "FAILED (attempts ran out)"
            budget = f"{outcome.attempts_used} probes, budget {settings.budget_seconds:.0f} s"
            print(f"  {name:<10} healthy at {healthy_at:5.0f} s: {verdict}, {budget}")
            lags += [lag] if outcome.passed else []
    return lags


def _failed(label: str, took: float, settings: HealthSettings, outcome: CheckOutcome, how: str) -> None:
    budget, probes = settings.budget_seconds, outcome.attempts_used
    print(f"  {label} {took:6.2f} s of {budget:.2f} s budget ({took / budget:.2f}), {probes} probes [{how}]")


def time_to_fail() -> None:
    """How long a dead endpoint takes to fail, against its computed budget."""
    url = f"http://127.0.0.1:{free_port()}/"
    for label, threshold in (("default (3 in a row)", 3), ("default, threshold 1", 1)):
        settings, outcome = _dilated(url, **{**DEFAULT, "success_threshold": threshold})
        _failed(f"refused, {label:<22}", outcome.elapsed_seconds, settings, outcome, "dilated")
    with silent_server() as url:
        short = HealthSettings(
            url, attempts=3, interval_seconds=0.1, timeout_seconds=0.5, success_threshold=1
        )
        wall, outcome = _harness.timed(lambda: check_endpoint(short))
    _failed("silent (every probe times out)", wall, short, outcome, "real time, short settings")


def cpu_per_probe(n: int = 300) -> None:
    """Client CPU per probe over `n` probes, the server in another process so it does not count."""
    port, cpu = free_port(), time.process_time
    url = f"http://127.0.0.1:{port}/"
    with tempfile.TemporaryDirectory() as tmp:  # an empty folder: its listing answers 200
        command = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", tmp]
        server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        try:
            if not wait_until(lambda: _once(url).passed, timeout=10, interval=0.05):
                raise RuntimeError(f"{url} did not come up within 10 s")
            many = HealthSettings(
                url, attempts=n, success_threshold=n, interval_seconds=1e-3, max_latency_ms=2e3
            )
            spent, (wall, outcome) = _harness.timed(lambda: _harness.timed(lambda: check_endpoint(many)), cpu)
            assert outcome.passed, outcome.report()
            singles = [_harness.timed(lambda: _once(url), cpu)[0] for _ in range(5)]
        finally:
            server.terminate()
            server.wait(10)
    per_probe = spent / n
    print(f"  {n} probes in one check: {1000 * per_probe:.2f} ms CPU per probe (fresh connection each)")
    print(f"    {1000 * wall / n:.2f} ms wall per probe including the 1 ms wait")
    fixed = statistics.median(singles) - per_probe
    print(f"  fixed cost per check (client, TLS trust store): {1000 * fixed:.1f} ms CPU")


if __name__ == "__main__":
    _harness.parse(__doc__)
    start = time.monotonic()
    print(f"Detection lag (virtual seconds; dilation x{DILATION:g}):")
    default, aggressive = detection_lag("default", DEFAULT), detection_lag("aggressive", AGGRESSIVE)
    if default and aggressive:
        d, a = statistics.mean(default), statistics.mean(aggressive)
        print(f"  mean lag: default {d:.1f} s, aggressive {a:.1f} s; default/aggressive = {d / a:.1f}x")
    print("Time to fail for a dead endpoint:")
    time_to_fail()
    print("CPU time per probe (HTTP on 127.0.0.1):")
    cpu_per_probe()
    print(f"benchmark took {time.monotonic() - start:.1f} s")
