"""Health-check benchmark: detection lag, time-to-fail against the budget, and CPU time per probe.

Default settings take minutes in real time, so the lag and time-to-fail figures run the real probe
loop in dilated time: the loop is given a clock that runs DILATION times faster than the wall clock
and a sleep that sleeps 1/DILATION of what it is asked, so intervals, backoff, its 30 s cap and the
budget are all the real ones, in virtual seconds. Probe latency is dilated too (a 2 ms probe counts
as 100 ms), so the latency limit is scaled by the same factor. Timeouts are not dilated (asyncio
enforces them in real time); the dead-endpoint-by-timeout figure therefore runs in real time with
short settings. Figures are ratios within this run; servers are real, on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import _cli  # benchmarks/_cli.py: the script's own folder is first on sys.path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from clients.health_probe import Sleep, check_endpoint  # noqa: E402
from model.health_settings import DEFAULTS, HealthSettings  # noqa: E402
from tests.support.health_servers import Reply, ScriptedServer, silent_server  # noqa: E402
from tests.support.processes import free_port  # noqa: E402

DILATION = 50.0
"""Virtual seconds per real second in the dilated runs."""
PROFILE_KEYS = ("interval_seconds", "timeout_seconds", "success_threshold", "attempts")
DEFAULT = {key: float(DEFAULTS[key]) for key in PROFILE_KEYS}
"""The health gate's defaults, from their one definition (model/health_settings.py)."""
AGGRESSIVE = {"interval_seconds": 1.0, "timeout_seconds": 2.0, "success_threshold": 2, "attempts": 40}
HEALTHY_AT = (5.0, 10.0, 15.0, 30.0)
"""Virtual seconds after the check starts at which the endpoint turns healthy."""


def _dilated() -> tuple[Callable[[], float], Sleep]:
    """A virtual clock and sleep, DILATION times faster than real time."""
    t0 = time.monotonic()

    def clock() -> float:
        return (time.monotonic() - t0) * DILATION

    async def sleep(seconds: float) -> None:
        await asyncio.sleep(seconds / DILATION)

    return clock, sleep


def _settings(url: str, profile: dict[str, float]) -> HealthSettings:
    return HealthSettings(
        url=url,
        max_latency_ms=200 * DILATION,
        attempts=int(profile["attempts"]),
        interval_seconds=profile["interval_seconds"],
        timeout_seconds=profile["timeout_seconds"],
        success_threshold=int(profile["success_threshold"]),
    )


def detection_lag(name: str, profile: dict[str, float]) -> list[float]:
    """Virtual seconds from the endpoint turning healthy to the check passing."""
    lags = []
    with ScriptedServer({"/healthz": [Reply(200)]}) as srv:
        # Warm up imports and the first connection: real overheads are magnified DILATION times.
        check_endpoint(HealthSettings(url=srv.url("/healthz"), attempts=1, success_threshold=1))
        for healthy_at in HEALTHY_AT:
            settings = _settings(srv.url("/healthz"), profile)
            clock, sleep = _dilated()
            srv.unhealthy_until = time.monotonic() + healthy_at / DILATION
            outcome = check_endpoint(settings, clock=clock, sleep=sleep)
            lag = outcome.elapsed_seconds - healthy_at
            verdict = f"lag {lag:6.1f} s" if outcome.passed else "FAILED (attempts ran out)"
            print(
                f"  {name:<10} healthy at {healthy_at:5.0f} s: {verdict}, "
                f"{outcome.attempts_used} probes, budget {settings.budget_seconds:.0f} s"
            )
            if outcome.passed:
                lags.append(lag)
    return lags


def time_to_fail() -> None:
    """How long a dead endpoint takes to fail, against the computed worst case."""
    url = f"http://127.0.0.1:{free_port()}/"
    for label, threshold in (("default (3 in a row)", 3), ("default, threshold 1", 1)):
        settings = _settings(url, {**DEFAULT, "success_threshold": threshold})
        clock, sleep = _dilated()
        outcome = check_endpoint(settings, clock=clock, sleep=sleep)
        print(
            f"  refused, {label:<22} {outcome.elapsed_seconds:6.1f} s of {settings.budget_seconds:.1f} s "
            f"budget ({outcome.elapsed_seconds / settings.budget_seconds:.2f}), "
            f"{outcome.attempts_used} probes [dilated]"
        )
    with silent_server() as silent:
        settings = HealthSettings(
            url=silent, attempts=3, interval_seconds=0.1, timeout_seconds=0.5, success_threshold=1
        )
        start = time.monotonic()
        outcome = check_endpoint(settings)
        wall = time.monotonic() - start
    print(
        f"  silent (every probe times out) {wall:6.2f} s of {settings.budget_seconds:.2f} s budget "
        f"({wall / settings.budget_seconds:.2f}), {outcome.attempts_used} probes [real time, short settings]"
    )


def cpu_per_probe(probes: int = 300) -> None:
    """Client CPU per probe, the server in another process so it does not count."""
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "healthz").write_text("ok\n")
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", tmp],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            url = f"http://127.0.0.1:{port}/healthz"
            _wait_listening(url)
            many = HealthSettings(
                url=url, attempts=probes, success_threshold=probes, interval_seconds=1e-3, max_latency_ms=2e3
            )
            one = HealthSettings(url=url, attempts=1, success_threshold=1, max_latency_ms=2000)
            cpu0, wall0 = time.process_time(), time.monotonic()
            outcome = check_endpoint(many)
            cpu_many, wall_many = time.process_time() - cpu0, time.monotonic() - wall0
            assert outcome.passed, outcome.report()
            singles = []
            for _ in range(5):
                cpu0 = time.process_time()
                check_endpoint(one)
                singles.append(time.process_time() - cpu0)
        finally:
            server.terminate()
            server.wait(10)
    per_probe = cpu_many / probes
    print(f"  {probes} probes in one check: {1000 * per_probe:.2f} ms CPU per probe (fresh connection each)")
    print(f"    {1000 * wall_many / probes:.2f} ms wall per probe including the 1 ms wait")
    fixed = statistics.median(singles) - per_probe
    print(f"  fixed cost per check (client, TLS trust store): {1000 * fixed:.1f} ms CPU")


def _wait_listening(url: str) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        outcome = check_endpoint(
            HealthSettings(url=url, attempts=1, success_threshold=1, max_latency_ms=5000)
        )
        if outcome.passed:
            return
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not come up within 10 s")


def main() -> None:
    start = time.monotonic()
    print(f"Detection lag (virtual seconds; dilation x{DILATION:g}):")
    default = detection_lag("default", DEFAULT)
    aggressive = detection_lag("aggressive", AGGRESSIVE)
    if default and aggressive:
        d, a = statistics.mean(default), statistics.mean(aggressive)
        print(f"  mean lag: default {d:.1f} s, aggressive {a:.1f} s; default/aggressive = {d / a:.1f}x")
    print("Time to fail for a dead endpoint:")
    time_to_fail()
    print("CPU time per probe (HTTP on 127.0.0.1):")
    cpu_per_probe()
    print(f"benchmark took {time.monotonic() - start:.1f} s")


if __name__ == "__main__":
    _cli.parse(__doc__)
    main()
