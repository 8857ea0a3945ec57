"""Seeing a Degraded release in pulumi-kubernetes' progress reports (deploy/degraded.py), on the recorded
stream of a Degraded release, with the watch's timers fired by the test (no waiting on the clock)."""

from __future__ import annotations

import copy
import json
import re
import shutil
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

import pytest
from pulumi.automation.events import EngineEvent

from components.argo_wait import workload_healthy
from deploy.degraded import DEGRADED_LINE, Degraded, DegradedWatch
from model.names import APPLICATION_TYPE, HEALTH_CHECK_TYPE
from model.release_workload import ReleaseWorkload
from policy_check.simulate import simulate
from tests.support.engine_events import colored, events, read, urn

REPO = Path(__file__).resolve().parents[2]
RECORDED = "degraded_rollback/up-1.jsonl"
WEB_APP = urn(
    APPLICATION_TYPE,
    "web-argocd-application",
    ["gitops-deploy:index:AppRelease", "gitops-deploy:index:ArgoApplication"],
)
GRACE = 30.0
WEB_HEALTH = workload_healthy(ReleaseWorkload("apps", "web")).removeprefix("jsonpath=")
"""The health condition of the recorded app web (a chart in namespace apps), as the wait prints it."""


def go_status(expression: str, found: str) -> str:
    """jsonpath.go's message for a condition not met yet: `Waiting for %s (found %q)`."""
    return f"Waiting for {expression} (found {json.dumps(found)})"


class Timers:
    """Timers the test fires itself; and a clock it moves."""

    def __init__(self) -> None:
        self.started: list[tuple[float, Callable[[], None], list[bool]]] = []
        self.now = 0.0

    def __call__(self, seconds: float, fn: Callable[[], None]) -> Any:
        cancelled = [False]
        timers = self

        class _Timer:
            def start(self) -> None:
                timers.started.append((seconds, fn, cancelled))

            def cancel(self) -> None:
                cancelled[0] = True

        return _Timer()

    def fire_all(self) -> None:
        """Let every started timer run out (the grace period passes)."""
        self.now += GRACE
        for _, fn, cancelled in list(self.started):
            if not cancelled[0]:
                fn()


@pytest.fixture
def timers() -> Timers:
    return Timers()


def watch(timers: Timers, apps: Collection[str] = ("web", "api")) -> tuple[DegradedWatch, list[Degraded]]:
    expired: list[Degraded] = []
    found = DegradedWatch(apps, GRACE, expired.append, clock=lambda: timers.now, timer=timers)
    return found, expired


def status(line: str, *, target: str = WEB_APP, severity: str = "info") -> EngineEvent:
    return EngineEvent.from_json(
        {
            "sequence": 0,
            "timestamp": 0,
            "diagnosticEvent": {
                "urn": target,
                "message": colored(line),
                "color": "raw",
                "severity": severity,
                "ephemeral": True,
            },
        }
    )


def until_degraded() -> list[EngineEvent]:
    """The recording up to and with the line that reports web Degraded."""
    stream = events(RECORDED)
    last = next(
        i for i, e in enumerate(stream) if e.diagnostic_event and "Degraded" in e.diagnostic_event.message
    )
    return stream[: last + 1]


def test_the_recorded_release_expires_once_degraded_for_the_grace_period(timers: Timers) -> None:
    found, expired = watch(timers)
    for event in until_degraded():
        found.on_event(event)
    assert [seconds for seconds, _, _ in timers.started] == [GRACE], "one spell: web's, for the grace period"
    assert expired == [], "not before the grace period passes"
    timers.fire_all()
    [web] = expired
    assert (web.app, web.urn, web.seconds) == ("web", WEB_APP, GRACE)
    assert web.line == f'Waiting for {WEB_HEALTH} (found "Degraded")'
    assert found.expired == {"web": web}


@pytest.mark.parametrize(
    "after",
    [
        status(go_status(WEB_HEALTH, "Progressing")),
        status(f"Found {WEB_HEALTH}"),
        EngineEvent.from_json(next(line for line in read(RECORDED) if "resOpFailedEvent" in line)),
    ],
    ids=["progressing-again", "healthy", "step-ended"],
)
def test_anything_else_the_wait_reports_ends_the_spell(timers: Timers, after: EngineEvent) -> None:
    found, expired = watch(timers)
    for event in [*until_degraded(), after]:
        found.on_event(event)
    timers.fire_all()
    assert expired == [] and found.seen == {"web": f'Waiting for {WEB_HEALTH} (found "Degraded")'}


@pytest.mark.parametrize(
    "event",
    [
        status("Health: Degraded (still waiting)"),  # another wording: the timeout decides
        status(go_status("{.status.sync.status}=Synced", "Degraded")),  # not the health condition
        status(go_status(WEB_HEALTH, "Degraded"), severity="error"),  # a failure
        status(
            go_status(WEB_HEALTH, "Degraded"),
            target=urn(HEALTH_CHECK_TYPE, "web-health", ["gitops-deploy:index:AppRelease"]),
        ),
        status(
            go_status(WEB_HEALTH, "Degraded"),
            target=WEB_APP.replace("web-argocd-application", "other-argocd-application"),
        ),
    ],
    ids=["reworded", "sync-condition", "error", "not-an-application", "not-a-watched-app"],
)
def test_what_is_not_a_degraded_report_of_a_watched_app_is_ignored(
    timers: Timers, event: EngineEvent
) -> None:
    found, expired = watch(timers)
    found.on_event(event)
    timers.fire_all()
    assert timers.started == [] and expired == []


def test_an_app_the_deploy_cannot_roll_back_is_not_watched(timers: Timers) -> None:
    found, expired = watch(timers, apps=["api"])
    for event in until_degraded():
        found.on_event(event)
    timers.fire_all()
    assert expired == []


def test_a_closed_watch_never_expires(timers: Timers) -> None:
    found, expired = watch(timers)
    for event in until_degraded():
        found.on_event(event)
    found.close()
    timers.fire_all()
    assert expired == [] and all(cancelled == [True] for _, _, cancelled in timers.started)


def test_the_match_is_built_from_pulumi_kubernetes_format_and_our_condition() -> None:
    expression = WEB_HEALTH
    assert DEGRADED_LINE.search(go_status(expression, "Degraded"))
    assert not DEGRADED_LINE.search(go_status(expression, "Progressing"))
    assert not DEGRADED_LINE.search(f"Found {expression}")


def test_the_recorded_status_lines_name_the_conditions_the_program_registers(tmp_path: Path) -> None:
    """The recording's `Waiting for`/`Found` lines are about the Application's own `pulumi.com/waitFor`."""
    shutil.copy(REPO / "__main__.py", tmp_path)
    # The digest the recorded update wrote, as its wait reports finding it.
    digest = re.search(r"Found \{[^}]*image\.digest\}=(sha256:[0-9a-f]{64})", json.dumps(read(RECORDED)))[1]  # type: ignore[index]
    app = {
        "name": "web",
        "namespace": "apps",
        "replicas": 3,
        "image": {
            "repository": "registry.example.com/platform/web",
            "context": "gone",
            "pin": f"registry.example.com/platform/web@{digest}",
        },
        "source": {
            "repoURL": "https://git.example.com/platform/deploy.git",
            "targetRevision": "main",
            "path": "charts/web",
            "type": "helm",
        },
        "health": {"url": "https://web.example.com/healthz"},
    }
    config = {
        "gitops-deploy:registry": {"server": "registry.example.com", "username": "ci"},
        "gitops-deploy:apps": [copy.deepcopy(app)],
    }
    sim = simulate("prod", project_dir=tmp_path, config=config, password="degraded-test")
    [application] = sim.by_type(APPLICATION_TYPE)
    conditions = json.loads(application.inputs["metadata"]["annotations"]["pulumi.com/waitFor"])
    expressions = {c.removeprefix("jsonpath=") for c in conditions}
    lines = [
        e.diagnostic_event.message
        for e in events(RECORDED)
        if e.diagnostic_event and e.diagnostic_event.urn == WEB_APP and e.diagnostic_event.severity == "info"
    ]
    named = {
        re.sub(
            r'^(Waiting for|Found) (.+?)( \(found ".*"\))?$', r"\2", line.replace("<{%reset%}>", "").strip()
        )
        for line in lines
    }
    assert named == expressions
