"""Soak benchmark: the detection lag from a release's degradation to the rollback's start (the soak's failed
verdict), at the defaults and at aggressive settings, as ratios to the probe interval; the real probe loop
against a server on 127.0.0.1, in dilated time (docs/benchmarks.md)."""

from __future__ import annotations

import statistics
import threading
import time

import _harness

from deploy.soak import Target, http_probes, monotonic, run_soak
from model.config_types import SoakConfig
from model.health_settings import HealthSettings
from model.soak import lag_bound
from tests.support.health_servers import ClockedServer, Reply

SPEED_UP = 10.0
"""Virtual seconds per real second, per second of the probe interval: every profile's probes are as far
apart in real time (a probe's own real cost, ~10 ms here, stays a tenth of an interval or less)."""
PROFILES = {
    "defaults": SoakConfig(),
    "aggressive": SoakConfig(interval_seconds=1, failures_in_a_row=1),
}
"""The aggressive profile: a probe every second, the first failure fails the soak."""
DEGRADES_AT = (1.25, 4.7, 9.53, 15.17, 20.32)
"""Intervals into the soak after which the release starts answering 503."""


class Dilated:
    """A clock that runs DILATION times as fast as real time, and a wait on it (that a stop would end)."""

    def __init__(self, dilation: float) -> None:
        self.t0, self.dilation = time.monotonic(), dilation
        self.stop = threading.Event()

    def __call__(self) -> float:
        return (time.monotonic() - self.t0) * self.dilation

    def wait(self, seconds: float) -> bool:
        return self.stop.wait(seconds / self.dilation)


def lag(config: SoakConfig, degrades_at: float) -> tuple[float, int]:
    """Virtual seconds from the degradation to the failed verdict, and the probes made."""
    clock = Dilated(SPEED_UP * config.interval_seconds)
    with ClockedServer(lambda now: Reply(503) if now >= degrades_at else Reply(200), clock) as server:
        settings = HealthSettings(url=server.url("/healthz"), timeout_seconds=2.0)
        target = Target("web", None, config, settings, {})
        outcome = run_soak(
            [target], http_probes(monotonic, lambda: False), None, clock=clock, wait=clock.wait,
            stopped=lambda: False,
        )  # fmt: skip
    [soaked] = outcome.apps
    if soaked.verdict != "failed":
        raise RuntimeError(f"the soak did not fail a release degraded at {degrades_at} s: {soaked.verdict}")
    return soaked.ended - soaked.started - degrades_at, len(soaked.judge.samples)


def blips_pass(config: SoakConfig) -> bool:
    """A release that fails one probe only (a blip) passes its soak: never a rollback for it."""
    clock = Dilated(SPEED_UP * config.interval_seconds)
    blip = (4.0 * config.interval_seconds, 5.0 * config.interval_seconds)
    with ClockedServer(lambda now: Reply(503) if blip[0] <= now < blip[1] else Reply(200), clock) as server:
        target = Target("web", None, config, HealthSettings(url=server.url("/healthz")), {})
        outcome = run_soak(
            [target], http_probes(monotonic, lambda: False), None, clock=clock, wait=clock.wait,
            stopped=lambda: False,
        )  # fmt: skip
    return outcome.apps[0].verdict == "passed"


if __name__ == "__main__":
    _harness.parse(__doc__)
    start = time.monotonic()
    print(
        f"Detection lag, degradation to rollback start (virtual seconds; time x{SPEED_UP:g} per interval s):"
    )
    rows: list[list[object]] = []
    means: dict[str, float] = {}
    for name, config in PROFILES.items():
        lags = []
        for at in (n * config.interval_seconds for n in DEGRADES_AT):
            seconds, probes = lag(config, at)
            lags.append(seconds)
            print(f"  {name:<10} degraded at {at:6.1f} s: lag {seconds:5.1f} s after {probes} probes")
        interval, bound = config.interval_seconds, lag_bound(config)
        means[name] = statistics.mean(lags)
        rows.append([
            name, interval, config.failures_in_a_row, means[name], max(lags), means[name] / interval,
            max(lags) / interval, bound / interval, "passes" if blips_pass(config) else "rolls back",
        ])  # fmt: skip
    _harness.table(
        ["profile", "interval s", "in a row", "mean lag s", "max lag s", "mean/interval", "max/interval",
         "bound/interval", "one blip"],
        rows, "- d d .1f .1f .2f .2f .2f -",
    )  # fmt: skip
    print(f"  mean lag: defaults/aggressive = {means['defaults'] / means['aggressive']:.1f}x")
    print(f"benchmark took {time.monotonic() - start:.1f} s")
