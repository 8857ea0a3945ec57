"""Argo CD operations and health as the deploy reads them (deploy/argo_status.py), over recorded flows
(tests/fixtures/argocd/operations/) served by a stand-in API server on 127.0.0.1 (tests/support/kube_api.py)
and reached with the official client from a kubeconfig (clients/argo_cluster.py)."""

from __future__ import annotations

import copy
import io
import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from clients import argo_cluster
from clients.argo_cluster import Applications, ClusterError, Conflict, Target, connect, target_from_config
from deploy.argo_ops import terminate_operations, wait_for_operations
from deploy.argo_status import health, operation, terminate_patch
from deploy.degraded import DegradedWatch
from tests.deploy.test_deploy_degraded import WEB_APP, WEB_HEALTH, status
from tests.support import argocd, argocd_schema
from tests.support.kube_api import Flow, StandInKubeAPI, all_objects, kubeconfig, load_flow
from tests.support.processes import free_port

FLOWS = Path(__file__).resolve().parents[1] / "fixtures" / "argocd" / "operations"
PATHS = sorted(FLOWS.glob("*.yaml"))
APP_PATH = "/apis/argoproj.io/v1alpha1/namespaces/argocd/applications/web"


def flow(name: str, *, reads: int = 1) -> Flow:
    _, objects, terminated = load_flow(FLOWS / f"{name}.yaml")
    return Flow(objects, reads=reads, terminated=terminated)


@pytest.fixture
def api() -> Iterator[StandInKubeAPI]:
    server = StandInKubeAPI()
    yield server
    server.stop()


@pytest.fixture
def applications(api: StandInKubeAPI, tmp_path: Path) -> Iterator[Applications]:
    path = kubeconfig(tmp_path / "kubeconfig", api.url)
    client = connect(target_from_config({"kubernetes:kubeconfig": str(path)}, {}))
    yield client
    client.close()


def test_the_recorded_flows_are_valid_argo_cd_applications() -> None:
    objects = all_objects(PATHS)
    assert len(PATHS) == 4 and len(objects) >= 8
    assert argocd_schema.validate(objects) == [[] for _ in objects]
    assert [argocd.vocabulary_errors(o) for o in objects] == [[] for _ in objects]


@pytest.mark.parametrize("path", [p for p in PATHS if p.stem != "hpa-degraded"], ids=lambda p: p.stem)
def test_the_rules_read_each_recorded_operation(path: Path) -> None:
    data, objects, terminated = load_flow(path)
    expect = data["expect"]
    first = operation("web", objects[0])
    assert (first.in_progress, first.terminable, first.in_backoff) == (
        expect["in_progress"],
        expect["terminable"],
        expect["backoff"],
    )
    assert first.initiator.startswith("Argo CD's automated" if expect["initiator"] == "automated" else "user")
    assert expect["initiator"] == "automated" or expect["initiator"] in first.initiator
    for ended in [*objects[1:], *terminated]:
        assert not operation("web", ended).in_progress, "a completed operation holds nothing"


def test_the_terminate_patch_is_what_terminate_op_writes() -> None:
    _, objects, _ = load_flow(FLOWS / "hooks-running.yaml")
    objects[0]["metadata"]["resourceVersion"] = "7"
    assert terminate_patch(objects[0]) == {
        "metadata": {"resourceVersion": "7"},
        "status": {"operationState": {"phase": "Terminating"}},
    }


@pytest.mark.parametrize("name", ["hooks-running", "retry-backoff"])
def test_a_running_operation_is_terminated_with_a_merge_patch(
    api: StandInKubeAPI, applications: Applications, name: str
) -> None:
    api.play("argocd", "web", flow(name))
    [done] = terminate_operations(applications, ["web"])
    assert done.action == "terminated", done
    [patch] = api.patches()
    assert patch.content_type == "application/merge-patch+json" and patch.status == 200
    assert patch.body["status"] == {"operationState": {"phase": "Terminating"}}
    assert patch.body["metadata"]["resourceVersion"], "guarded by the version read, as the server's update is"
    terminating, after = applications.get("web"), applications.get("web")
    assert terminating is not None and operation("web", terminating).phase == "Terminating"
    assert after is not None and not operation("web", after).in_progress, "the controller ended it"
    assert after["status"]["operationState"]["message"].startswith("Operation terminated")


def test_nothing_is_patched_without_a_running_operation(
    api: StandInKubeAPI, applications: Applications
) -> None:
    _, objects, _ = load_flow(FLOWS / "user-sync.yaml")
    api.play("argocd", "web", Flow([objects[-1]]))
    assert [d.action for d in terminate_operations(applications, ["web", "api"])] == ["none", "none"]
    assert api.patches() == []


def test_the_stand_in_answers_as_the_api_server_does(api: StandInKubeAPI, applications: Applications) -> None:
    api.play("argocd", "web", flow("hooks-running"))
    assert applications.get("api") is None, "404 is no Application"
    request = urllib.request.Request(
        api.url + APP_PATH,
        data=b'{"status": {}}',
        method="PATCH",
        headers={"Content-Type": "application/strategic-merge-patch+json"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)
    assert refused.value.code == 415
    assert json.loads(refused.value.read())["reason"] == "UnsupportedMediaType"
    stale = {"metadata": {"resourceVersion": "1"}, "status": {"operationState": {"phase": "Terminating"}}}
    with pytest.raises(Conflict):
        applications.merge_patch("web", stale)


def test_a_foreign_operation_is_waited_for(api: StandInKubeAPI, applications: Applications) -> None:
    api.play("argocd", "web", flow("user-sync", reads=2))
    out = io.StringIO()
    assert wait_for_operations(applications, ["web", "api"], 30, out, lambda: None) is None
    assert "waiting for it to end, at most 30 s" in out.getvalue()
    assert "user alice" in out.getvalue()


def test_a_foreign_operation_that_outlasts_the_wait_is_named(
    api: StandInKubeAPI, applications: Applications
) -> None:
    api.play("argocd", "web", flow("user-sync", reads=10_000))
    started = time.monotonic()
    found = wait_for_operations(applications, ["web"], 1, io.StringIO(), lambda: None)
    assert found is not None and 1 <= time.monotonic() - started < 10
    message = found.message("gitops-deploy:deploy.operationWaitSeconds", 1)
    for words in ("Application web", "phase Running", "started 2025-06-02T09:58:30Z", "by user alice"):
        assert words in message, message
    assert api.patches() == [], "someone else's operation is never terminated"


def test_an_unreachable_cluster_is_a_one_line_error(tmp_path: Path) -> None:
    path = kubeconfig(tmp_path / "kubeconfig", f"http://127.0.0.1:{free_port()}")
    client = connect(Target("argocd", None, None, str(path), "$KUBECONFIG"))
    started = time.monotonic()
    with pytest.raises(ClusterError) as failed:
        client.get("web")
    assert time.monotonic() - started < 10
    assert "\n" not in str(failed.value) and "stand-in-token" not in str(failed.value)
    assert str(failed.value) == (
        "reading Application argocd/web: "
        "could not connect to the API server (connection refused or unreachable)"
    )


def test_a_server_that_never_answers_is_a_one_line_error_within_the_request_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(argo_cluster, "REQUEST_TIMEOUT_S", (0.5, 1.0))
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # accepts connections (the kernel's backlog) and never answers
        path = kubeconfig(tmp_path / "kubeconfig", f"http://127.0.0.1:{silent.getsockname()[1]}")
        client = connect(target_from_config({"kubernetes:kubeconfig": str(path)}, {}))
        started = time.monotonic()
        with pytest.raises(ClusterError) as failed:
            wait_for_operations(client, ["web"], 30, io.StringIO(), lambda: None)
        client.close()
    assert 1.0 <= time.monotonic() - started < 5, "one request, bounded by its read timeout, not retried"
    assert str(failed.value) == (
        "reading Application argocd/web: "
        "the API server did not answer in time (0.5 s to connect, 1 s to answer)"
    )


BAD_KUBECONFIGS = {
    "not-yaml": ("file", "users: [ {{{ stand-in-token\n", None, "no readable kubeconfig there"),
    "a-list": ("file", "- stand-in-token\n", None, "it is not a valid kubeconfig (TypeError)"),
    "no-such-context": ("file", None, "nope", "it has no context 'nope'"),
    "no-current-context": (
        "text",
        "users:\n- name: u\n  user: {token: stand-in-token}\n",
        None,
        "it names no current context (set kubernetes:context)",
    ),
    "missing-path": ("text", "/nonexistent/kubeconfig", None, "nor a kubeconfig's YAML text"),
    "missing-env-file": ("env", None, None, "no kubeconfig there"),
}


@pytest.mark.parametrize("case", sorted(BAD_KUBECONFIGS))
def test_a_kubeconfig_that_cannot_be_used_is_a_one_line_error(tmp_path: Path, case: str) -> None:
    how, text, context, reason = BAD_KUBECONFIGS[case]
    path = kubeconfig(tmp_path / "kubeconfig", f"http://127.0.0.1:{free_port()}")
    if text is not None and how == "file":
        path.write_text(text, encoding="utf-8")
    values = {"kubernetes:kubeconfig": text if how == "text" else str(path)}
    if context:
        values["kubernetes:context"] = context
    env = {}
    if how == "env":
        values, env = {}, {"KUBECONFIG": str(tmp_path / "missing")}
    started = time.monotonic()
    with pytest.raises(ClusterError) as failed:
        connect(target_from_config(values, env))
    message = str(failed.value)
    assert time.monotonic() - started < 5
    assert message.startswith("loading the kubeconfig from ") and message.endswith(reason), message
    assert "\n" not in message and "stand-in-token" not in message and str(tmp_path) not in message


@pytest.mark.parametrize(
    ("values", "env", "expected"),
    [
        ({}, {}, ("argocd", None, None, None, "~/.kube/config")),
        ({}, {"KUBECONFIG": "/k/a:/k/b"}, ("argocd", None, None, "/k/a:/k/b", "$KUBECONFIG")),
        (
            {"kubernetes:kubeconfig": "apiVersion: v1\nkind: Config\n", "kubernetes:context": "prod"},
            {"KUBECONFIG": "/k/a"},
            ("argocd", "prod", "apiVersion: v1\nkind: Config\n", None, "kubernetes:kubeconfig"),
        ),
        (
            {"gitops-deploy:argocd": '{"namespace": "cd", "context": "hub"}', "kubernetes:context": "prod"},
            {"KUBECONFIG": "/k/a"},
            ("cd", "hub", None, "/k/a", "$KUBECONFIG"),
        ),
    ],
    ids=["default", "env-list", "stack-kubeconfig-text", "argocd-context-explicit-provider"],
)
def test_the_provider_settings_are_the_programs(
    values: dict[str, str], env: dict[str, str], expected: tuple[Any, ...]
) -> None:
    target = target_from_config(values, env)
    assert (
        target.namespace,
        target.context,
        target.kubeconfig_text,
        target.kubeconfig_path,
        target.source,
    ) == expected
    assert "Config" not in target.where, "never the kubeconfig's text"


def test_a_degraded_hpa_is_not_the_release_a_degraded_deployment_is(
    api: StandInKubeAPI, applications: Applications
) -> None:
    _, objects, _ = load_flow(FLOWS / "hpa-degraded.yaml")
    judged = [health(o) for o in objects]
    assert [j.release_degraded if j else None for j in judged] == [False, True]
    assert judged[0] is not None and judged[0].workload == "web/web"
    assert judged[0].others[0].startswith("HorizontalPodAutoscaler/web/web")
    api.play("argocd", "web", flow("hpa-degraded", reads=1))
    expired: list[Any] = []
    timers: list[Any] = []

    class Timer:
        def __init__(self, _: float, fn: Any) -> None:
            self.fn = fn

        def start(self) -> None:
            timers.append(self.fn)

        def cancel(self) -> None:
            pass

    def judge(app: str) -> Any:
        found = applications.get(app)
        return health(found) if found is not None else None

    watch = DegradedWatch(["web"], 30, expired.append, timer=Timer, judge=judge)
    line = f'Waiting for {WEB_HEALTH} (found "Degraded")'
    urn = WEB_APP
    watch.on_event(status(line, target=urn))
    timers.pop()()
    assert expired == [] and list(watch.excused) == ["web"], "the HPA alone: reported, not stopped for"
    assert watch.excused["web"].others
    watch.on_event(status(f"Found {WEB_HEALTH}", target=urn))
    watch.on_event(status(line, target=urn))
    timers.pop()()
    [stopped] = expired
    assert stopped.workloads and stopped.workloads[0].startswith("Deployment/web/web")


def test_a_degraded_workload_not_the_release_s_is_reported_not_acted_on() -> None:
    """The judgement is the wait's rule (model/release_workload.py): the declared workload only."""
    _, objects, _ = load_flow(FLOWS / "hpa-degraded.yaml")
    degraded = copy.deepcopy(objects[1])
    for res in degraded["status"]["resources"]:
        if res["kind"] == "Deployment":
            res["name"] = "web-worker"
    judged = health(degraded)
    assert judged is not None and not judged.release_degraded
    assert any(o.startswith("Deployment/web/web-worker") for o in judged.others)


def test_without_resource_health_on_the_application_the_line_decides() -> None:
    """Argo CD v3's default keeps each resource's health off the Application: the line decides."""
    _, objects, _ = load_flow(FLOWS / "hpa-degraded.yaml")
    app_tree = copy.deepcopy(objects[0])
    app_tree["status"]["resourceHealthSource"] = "appTree"
    for res in app_tree["status"]["resources"]:
        res.pop("health")
    assert argocd_schema.validate([app_tree]) == [[]]
    assert health(app_tree) is None
    unnamed = copy.deepcopy(objects[1])
    unnamed["spec"]["source"].pop("helm")
    assert health(unnamed) is None, "an Application that does not say which workload is the release's"
    expired: list[Any] = []
    fire: list[Any] = []

    class Timer:
        def __init__(self, _: float, fn: Any) -> None:
            fire.append(fn)

        def start(self) -> None:
            pass

        def cancel(self) -> None:
            pass

    watch = DegradedWatch(["web"], 30, expired.append, timer=Timer, judge=lambda _: health(app_tree))
    watch.on_event(status(f'Waiting for {WEB_HEALTH} (found "Degraded")', target=WEB_APP))
    fire.pop()()
    assert [e.app for e in expired] == ["web"] and watch.excused == {}
