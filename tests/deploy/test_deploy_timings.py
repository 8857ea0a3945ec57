"""Phase timings from recorded engine event streams (the timed deploys in tests/fixtures/engine_events),
checked against the engine's rules in tests/support/engine_events.py. Expected durations are read off
each fixture's timestamps by hand (seconds after T0) and written here."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from pulumi.automation.events import EngineEvent

from deploy.events import app_of, recognise
from deploy.timings import DeployTimings, measure
from model.names import (
    APPLICATION_TYPE,
    DOCKER_IMAGE_TYPE,
    HEALTH_CHECK_TYPE,
    IMAGE_SIZE_TYPE,
    NAMESPACE_PATCH_TYPE,
    REGISTRY_PREFLIGHT_TYPE,
)
from model.record import PHASES, PhaseTiming
from policy_check.simulate import Simulation
from tests.support.engine_events import CASES, T0, check_stream, engine_urns, load_case, read, up_paths

PROJECT_DIR = Path(__file__).resolve().parents[2]
BOTH = ("web", "api")

# (seconds, outcome, op) per phase; from the fixtures' timestamps:
GOOD_WEB = {
    "preflight": (3, "succeeded", "same"),  # check from the provider's pre event at 2 to its own at 5
    "build": (42, "succeeded", "update"),  # 6 -> 48
    "image-size": (1, "succeeded", "update"),  # 48 -> 49
    "sync": (72, "succeeded", "update"),  # 49 -> 121
    "health": (25, "succeeded", "update"),  # 121 -> 146
}
GOOD_API = {
    "preflight": (3, "succeeded", "same"),
    "build": (30, "succeeded", "update"),  # 6 -> 36, in parallel with web's
    "image-size": (2, "succeeded", "update"),  # 36 -> 38
    "sync": (40, "succeeded", "update"),  # 38 -> 78
    "health": (12, "succeeded", "update"),  # 78 -> 90
}
FAILED_HEALTH_WEB = {**GOOD_WEB, "health": (100, "failed", "update")}  # 121 -> 221
EXPECTED: dict[str, tuple[dict[str, dict[str, tuple[int, str, str]]], int]] = {
    "good": ({"web": GOOD_WEB, "api": GOOD_API}, 147),
    # The preflight's check fails at 4; the generator was free from the dynamic provider's pre at 2.
    "registry_401": (
        {"web": {"preflight": (2, "failed", "check")}, "api": {"preflight": (2, "failed", "check")}},
        4,
    ),
    "lint": ({"web": {}, "api": {}}, 3),
    "build_failure": (
        {"web": {"preflight": (3, "succeeded", "same"), "build": (34, "failed", "update")}},  # 6 -> 40
        41,
    ),
    "policy_violation": (
        {"web": {k: GOOD_WEB[k] for k in ("preflight", "build", "image-size")}},  # the Application never ran
        50,
    ),
    # Rollback: from the failed `up`'s end (222) to web's health check passing in the rollback (280).
    "health_rollback": (
        {"web": {**FAILED_HEALTH_WEB, "rollback": (58, "succeeded", "rollback")}, "api": GOOD_API},
        281,
    ),
    # ...or to its Application timing out there (355).
    "rollback_fails": (
        {"web": {**FAILED_HEALTH_WEB, "rollback": (133, "failed", "rollback")}, "api": GOOD_API},
        356,
    ),
    # Argo CD reports web Degraded at 95; the deploy stops the wait 30 s later: the Application's step
    # fails at 126 (49 -> 126), the health check never runs, and the rollback ends at 185.
    "degraded_rollback": (
        {
            "web": {
                **{k: GOOD_WEB[k] for k in ("preflight", "build", "image-size")},
                "sync": (77, "failed", "update"),
                "rollback": (59, "succeeded", "rollback"),
            },
            "api": GOOD_API,
        },
        186,
    ),
}
APPS = {case: tuple(expected) for case, (expected, _) in EXPECTED.items()}


def _as_tuples(timings: DeployTimings) -> dict[str, dict[str, tuple[int, str, str]]]:
    return {
        a.app: {phase: (p.seconds, p.outcome, p.op) for phase, p in a.phases.items()} for a in timings.apps
    }


@pytest.mark.parametrize("case", CASES)
def test_fixture_follows_the_engines_rules(case: str) -> None:
    paths = up_paths(case)
    assert paths, case
    for path in paths:
        assert check_stream(read(path)) == [], path


def test_the_stream_rules_catch_a_stream_that_does_not_end_as_the_engine_ends_it() -> None:
    events = read(up_paths("good")[0])
    assert any("cancelEvent" in p for p in check_stream(events[:-1]))
    swapped = [*events[:-2], events[-1], events[-2]]
    moved = [{**e, "sequence": i} for i, e in enumerate(swapped)]
    assert any("summaryEvent, then the cancelEvent" in p for p in check_stream(moved))
    backwards = copy.deepcopy(events)
    backwards[5]["timestamp"] = backwards[4]["timestamp"] - 1
    assert any("never go down" in p for p in check_stream(backwards))
    failing = read(up_paths("build_failure")[0])
    without_closing = [e for e in failing if "update failed" not in str(e.get("diagnosticEvent", {}))]
    renumbered = [{**e, "sequence": i} for i, e in enumerate(without_closing)]
    assert any("update failed" in p for p in check_stream(renumbered))


@pytest.mark.parametrize("case", CASES)
def test_phase_timings_of_each_recorded_stream(case: str) -> None:
    expected, wall = EXPECTED[case]
    timings = measure(load_case(case), apps=APPS[case])
    assert _as_tuples(timings) == expected
    assert timings.start == T0
    assert timings.seconds == wall
    for app in timings.apps:
        assert list(app.phases) == [p for p in PHASES if p in app.phases], "phases in PHASES order"
        assert app.total == sum(seconds for seconds, _, _ in expected[app.app].values())


def test_apps_come_from_the_events_in_registration_order() -> None:
    timings = measure(load_case("good"))
    assert [a.app for a in timings.apps] == ["web", "api"]
    # A failed preflight stops before any app registers: only the caller knows them.
    assert measure(load_case("registry_401")).apps == ()


def test_an_app_is_rolled_back_only_where_it_did_more_than_same() -> None:
    ups = load_case("health_rollback")
    timings = measure(ups)
    api = next(a for a in timings.apps if a.app == "api")
    assert "rollback" not in api.phases
    # The deploy can name an app it rolled back whose steps never ran (the rollback stopped earlier).
    release, rollback = ups
    cut = [e for e in rollback if e.timestamp <= T0 + 233 or e.summary_event or e.cancel_event]
    forced = measure([release, cut], rolled_back=["api", "gone"])
    api = next(a for a in forced.apps if a.app == "api")
    assert api.phases["rollback"] == PhaseTiming(281 - 222, "succeeded", "rollback")
    gone = next(a for a in forced.apps if a.app == "gone")
    assert dict(gone.phases) == {
        "preflight": PhaseTiming(3, "succeeded", "same"),
        "rollback": PhaseTiming(281 - 222, "succeeded", "rollback"),
    }


def test_a_step_without_an_end_is_unfinished_until_the_stream_ends() -> None:
    (up,) = load_case("good")
    # Drop web's health outputs and everything after: the stream stops at 121 + ...
    cut = [e for e in up if e.timestamp < T0 + 146]
    timings = measure([cut])
    web = next(a for a in timings.apps if a.app == "web")
    assert web.phases["health"] == PhaseTiming(cut[-1].timestamp - (T0 + 121), "unfinished", "update")


def test_deletions_and_unknown_resources_are_not_timed() -> None:
    ups = load_case("health_rollback")
    deleted = [
        e
        for e in ups[1]
        if e.resource_pre_event is not None and e.resource_pre_event.metadata.op.value == "delete"
    ]
    assert deleted and recognise(deleted[0].resource_pre_event.metadata.urn) is not None  # type: ignore[union-attr]
    # web's image is deleted at 281, after its rollback ended at 280: the deletion is not in it.
    web = next(a for a in measure(ups).apps if a.app == "web")
    assert web.phases["rollback"].seconds == 280 - 222


def test_no_events_no_timings() -> None:
    assert measure([]) == DeployTimings((), None, None)
    assert [a.app for a in measure([], apps=["web"]).apps] == ["web"]
    empty = measure([[]], apps=["web"])
    assert [(a.app, dict(a.phases)) for a in empty.apps] == [("web", {})]
    assert empty.seconds is None


def test_timestamps_are_whole_seconds_from_the_event_log() -> None:
    event = EngineEvent.from_json({"sequence": 0, "timestamp": T0, "cancelEvent": {}})
    assert event.timestamp == T0 and isinstance(event.timestamp, int)


# --- the names the timings recognise are the names the program registers --------------------------------


def _config() -> dict[str, Any]:
    """A stack of its own with the two apps the fixtures use (no shipped stack file is read)."""

    def app(name: str) -> dict[str, Any]:
        return {
            "name": name,
            "namespace": name,
            "replicas": 2,
            "image": {"repository": f"registry.example.com/platform/{name}", "context": "examples/app"},
            "source": {
                "repoURL": "https://github.com/example-org/gitops-deploy.git",
                "targetRevision": "main",
                "path": "examples/app/chart",
                "type": "helm",
            },
            "health": {"url": f"https://{name}.example.com/healthz"},
        }

    return {
        "gitops-deploy:registry": {"server": "registry.example.com", "username": "ci-pusher"},
        "gitops-deploy:argocd": {"namespace": "argocd", "project": "default"},
        "gitops-deploy:build": {"lintThreshold": "none"},
        "gitops-deploy:apps": [app("web"), app("api")],
    }


@pytest.fixture(scope="module")
def program_urns() -> set[str]:
    from policy_check.simulate import simulate

    sim: Simulation = simulate("prod", config=_config(), password="fixture-test-password")
    return set(engine_urns(sim).values())


def test_the_program_registers_every_timed_resource_the_fixtures_name(program_urns: set[str]) -> None:
    fixture_urns = {
        e.resource_pre_event.metadata.urn
        for up in load_case("good")
        for e in up
        if e.resource_pre_event is not None
    }
    timed = {urn for urn in fixture_urns if recognise(urn) is not None}
    assert len(timed) == 1 + 4 * len(BOTH)
    missing = sorted(timed - program_urns)
    assert not missing, f"the fixtures name resources the program does not register: {missing}"


@pytest.mark.parametrize(
    ("type_", "phase"),
    [
        (REGISTRY_PREFLIGHT_TYPE, "preflight"),
        (DOCKER_IMAGE_TYPE, "build"),
        (IMAGE_SIZE_TYPE, "image-size"),
        (APPLICATION_TYPE, "sync"),
        (HEALTH_CHECK_TYPE, "health"),
    ],
)
def test_each_phase_resource_of_the_program_is_recognised_with_its_app(
    program_urns: set[str], type_: str, phase: str
) -> None:
    found = sorted(u for u in program_urns if u.split("::")[2].split("$")[-1] == type_)
    assert found, type_
    for urn in found:
        seen = recognise(urn)
        assert seen is not None, urn
        assert seen.phase == phase, urn
        assert seen.app == (None if phase == "preflight" else app_of(urn)), urn
        if phase != "preflight":
            assert seen.app in BOTH, urn


def test_resources_that_time_nothing_are_not_recognised(program_urns: set[str]) -> None:
    others = [u for u in program_urns if recognise(u) is None]
    kinds = {u.split("::")[2].split("$")[-1] for u in others}
    assert {"kubernetes:core/v1:Secret", NAMESPACE_PATCH_TYPE} <= kinds
    assert not kinds & {DOCKER_IMAGE_TYPE, IMAGE_SIZE_TYPE, APPLICATION_TYPE, HEALTH_CHECK_TYPE}


def test_a_name_that_only_looks_like_a_suffix_is_not_an_app() -> None:
    urn = f"urn:pulumi:prod::gitops-deploy::{HEALTH_CHECK_TYPE}::-health"
    assert recognise(urn) is None
    assert recognise(f"urn:pulumi:prod::gitops-deploy::{HEALTH_CHECK_TYPE}::web-check") is None
    app_named_image = f"urn:pulumi:prod::gitops-deploy::{DOCKER_IMAGE_TYPE}::web-image-image-image"
    seen = recognise(app_named_image)
    assert seen is not None and seen.app == "web-image"
