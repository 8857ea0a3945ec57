"""Removing an app's Application waits for Argo CD's finalizer under a bound of its own, not the sync wait's.

The rule (which bound each wait of pulumi-kubernetes takes) is stated once, in tests/support/k8s_await.py
`wait_bound_seconds`; here the program's registration is run through it.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from components.argo_application import DELETE_TIMEOUT_SECONDS
from model.config import DEFAULT_SYNC_TIMEOUT_SECONDS
from model.names import APPLICATION_TYPE, ARGOCD_FINALIZER, TIMEOUT_ANNOTATION
from policy_check.simulate import Simulation
from tests.support import k8s_await


def test_the_annotation_alone_bounds_the_delete_too() -> None:
    """What the provider does with the sync wait's annotation and no custom timeout: 75 s for each op."""
    annotations = {TIMEOUT_ANNOTATION: "75"}
    for op in ("create", "update", "delete"):
        assert k8s_await.wait_bound_seconds(op, {}, annotations) == 75
    assert k8s_await.wait_bound_seconds("delete", {}, {}) == k8s_await.DEFAULT_TIMEOUT_S
    assert (
        k8s_await.wait_bound_seconds("delete", {}, {TIMEOUT_ANNOTATION: "1m"}) == k8s_await.DEFAULT_TIMEOUT_S
    )
    assert k8s_await.wait_bound_seconds("delete", {"delete": "15m"}, annotations) == 900
    assert k8s_await.wait_bound_seconds("create", {"delete": "15m"}, annotations) == 75


def test_go_durations_parse_as_the_engine_parses_them() -> None:
    assert k8s_await.go_duration_seconds("600s") == 600
    assert k8s_await.go_duration_seconds("1h2m3s") == 3723
    assert k8s_await.go_duration_seconds("") == 0
    with pytest.raises(ValueError, match="unable to parse customTimeout"):
        k8s_await.go_duration_seconds("600")


def test_the_application_waits_75_s_to_sync_and_its_own_bound_to_be_deleted(
    run_program: Callable[..., Simulation],
) -> None:
    sim = run_program("dev")
    applications = sim.by_type(APPLICATION_TYPE)
    assert applications, "the dev stack declares Applications"
    for app in applications:
        meta = app.inputs["metadata"]
        assert ARGOCD_FINALIZER in meta["finalizers"], "deleting waits for Argo CD's prune"
        annotations = meta["annotations"]
        sync = float(annotations[TIMEOUT_ANNOTATION])
        for op in ("create", "update"):
            bound = k8s_await.wait_bound_seconds(op, app.custom_timeouts, annotations)
            assert bound == sync, f"{app.urn}: the release's {op} wait is the sync wait"
        deleting = k8s_await.wait_bound_seconds("delete", app.custom_timeouts, annotations)
        assert deleting == DELETE_TIMEOUT_SECONDS > DEFAULT_SYNC_TIMEOUT_SECONDS, app.urn
