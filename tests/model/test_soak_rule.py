"""The soak's failure rule (model/soak.py): failures in a row, or the failed share of a whole window."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from model.config_types import SoakConfig
from model.soak import Breach, Judge, Sample, lag_bound, percentile

DEFAULTS = SoakConfig()


def _feed(config: SoakConfig, passes: Sequence[bool]) -> tuple[int, Breach] | None:
    """Probe at each interval; the index of the probe that broke a rule, with the breach."""
    judge = Judge(config)
    for i, passed in enumerate(passes):
        breach = judge.add(Sample(i * config.interval_seconds, passed, 5.0, "ok" if passed else "HTTP 503"))
        if breach is not None:
            return i, breach
    return None


def test_the_defaults_are_what_the_schema_says() -> None:
    assert (DEFAULTS.seconds, DEFAULTS.interval_seconds, DEFAULTS.failures_in_a_row) == (300, 10, 3)
    assert (DEFAULTS.max_error_percent, DEFAULTS.window_seconds) == (50, 60)


@pytest.mark.parametrize("at", range(31))
def test_a_single_blip_never_fails_the_soak_with_the_defaults(at: int) -> None:
    passes = [i != at for i in range(31)]
    assert _feed(DEFAULTS, passes) is None


def test_two_blips_in_a_row_do_not_fail_it_either() -> None:
    assert _feed(DEFAULTS, [True] * 10 + [False, False] + [True] * 19) is None


def test_failures_in_a_row_fail_it_at_the_nth() -> None:
    found = _feed(DEFAULTS, [True] * 5 + [False] * 3 + [True] * 5)
    assert found is not None
    index, breach = found
    assert index == 7
    assert breach.rule == "3 failed probes in a row (failuresInARow 3)"
    assert [s.at for s in breach.failures] == [50, 60, 70]


def test_the_share_rule_waits_for_a_whole_window() -> None:
    """Alternating failures never make 3 in a row; the share (50 %) is not above 50 %, then it is."""
    config = SoakConfig(failures_in_a_row=0, max_error_percent=40)
    early = [False, True]  # 50 % of the first two probes, but no whole window yet
    assert _feed(config, early) is None
    found = _feed(config, [False, True] * 10)
    assert found is not None
    index, breach = found
    assert index * config.interval_seconds >= config.window_seconds, "judged only once a window was probed"
    assert breach.rule.startswith("3 of 6 probes failed in the last 60 s (50 % > maxErrorPercent 40)")


def test_a_rule_at_its_off_value_never_fails() -> None:
    assert _feed(SoakConfig(failures_in_a_row=0, max_error_percent=100), [False] * 40) is None
    assert _feed(SoakConfig(failures_in_a_row=0), [False] * 4) is None, "no whole window yet"
    assert _feed(SoakConfig(max_error_percent=100), [False, False, True] * 10) is None


def test_the_window_slides() -> None:
    """Failures that leave the window stop counting: 2 of every 6 is 33 %, never above 50 %."""
    config = SoakConfig(failures_in_a_row=0)
    assert _feed(config, ([False, True, True] * 20)) is None


@pytest.mark.parametrize(
    ("config", "probes"),
    [
        (DEFAULTS, 3),
        (SoakConfig(interval_seconds=1, failures_in_a_row=1), 1),
        (SoakConfig(failures_in_a_row=0), 4),
    ],
)
def test_a_lasting_degradation_is_caught_within_the_lag_bound(config: SoakConfig, probes: int) -> None:
    """Degraded from the 10th probe on: failed at its `probes`-th failing probe, within lag_bound."""
    found = _feed(config, [True] * 10 + [False] * 100)
    assert found is not None
    index, _ = found
    assert index - 9 == probes
    lag = (index - 10) * config.interval_seconds
    assert lag <= lag_bound(config)


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 50) == 0.0
    assert percentile([5.0, 1.0, 3.0], 50) == 3.0
    assert percentile(list(map(float, range(1, 101))), 95) == 95.0
