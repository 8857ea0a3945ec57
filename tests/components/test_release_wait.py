"""`pulumi up` is done only when Argo CD runs the release it was just given.

The await expressions are read from the Application the program registers under mocks, with a stack
config of the test's own, and evaluated under pulumi-kubernetes' rules (tests/support/k8s_await.py)
over recorded Argo CD status flows (tests/fixtures/argocd/*.yaml) that are valid against Argo CD's
Application schema (tests/support/argocd_schema.py).
"""

from __future__ import annotations

import copy
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml

from components.argo_wait import HEALTH_PATH, SYNCED, workload_healthy
from deploy.argo_status import health as argo_health
from model.names import APPLICATION_TYPE, DOCKER_IMAGE_TYPE, TIMEOUT_ANNOTATION, WAIT_FOR_ANNOTATION
from model.release_workload import ReleaseWorkload, declared_workload, resource_health_inline
from policy_check.check import run_check
from policy_check.simulate import UNKNOWN, ProgramFailed, ProgramMocks, SimResource, Simulation
from rules.argocd import sync_retry_findings
from tests.support import argocd, argocd_schema, k8s_await
from tests.support.projects import write_policy_config

SEQUENCES = argocd.sequences()
HELM_SEQUENCE = next(s for s in SEQUENCES if s.name == "helm-crash-loop")
"""A Helm flow whose status carries every field, for the tests that need one."""
ARGOCD_MIRROR = Path("/work/.mirror/argoproj+argo-cd/repo")
ARGOCD_CRD_TAG = "v3.4.7"
"""An Argo CD release whose Application CRD the pinned package was generated from (see the report)."""


def stack_config(*apps: dict[str, Any], argocd_settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """A stack config of this test's own: one registry, Argo CD in-cluster, the given apps."""
    return {
        "gitops-deploy:registry": {"server": "registry.example.com", "username": "ci-pusher"},
        "gitops-deploy:argocd": {"namespace": "argocd", "project": "default", **(argocd_settings or {})},
        "gitops-deploy:apps": list(apps),
    }


def application(sim: Simulation) -> SimResource:
    """The one Application the program registered."""
    (found,) = sim.by_type(APPLICATION_TYPE)
    return found


def whole_numbers(value: Any) -> Any:
    """The engine's wire form (protobuf Struct) carries every number as a float; Kubernetes gets ints."""
    if isinstance(value, dict):
        return {k: whole_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [whole_numbers(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


@pytest.fixture(scope="module")
def schema_errors() -> dict[tuple[str, int], list[str]]:
    """Argo CD schema errors of every recorded step, in one validator run."""
    steps = [(seq.name, step) for seq in SEQUENCES for step in seq.steps]
    results = argocd_schema.validate([step.application for _, step in steps])
    return {(name, step.index): errors for (name, step), errors in zip(steps, results, strict=True)}


@pytest.fixture
def registered(run_program: Callable[..., Simulation]) -> Callable[[argocd.Sequence], SimResource]:
    """The Application the program registers for a sequence's app."""
    return lambda seq: application(run_program("truth", config=stack_config(seq.app)))


NEVER_DONE = frozenset({"crash-loop", "hpa-crash-loop", "app-tree-hpa-degraded"})
"""Cases whose release never becomes Healthy (as far as the Application can tell)."""
APP_TREE = frozenset({"app-tree", "app-tree-hpa-degraded"})
"""Cases recorded on an Argo CD that keeps no resource health on the Application (v3's default)."""


def test_every_case_is_recorded_for_helm_and_kustomize() -> None:
    cases = {(seq.case, seq.app["source"]["type"]) for seq in SEQUENCES}
    wanted = {"good-release", "crash-loop", "replica-change", "rollback", "rollback-after-health-gate"}
    wanted |= {"hpa-degraded", "hpa-crash-loop"} | APP_TREE
    assert cases == {(case, kind) for case in wanted for kind in ("helm", "kustomize")}


@pytest.mark.parametrize("seq", SEQUENCES, ids=lambda s: s.name)
def test_recorded_objects_are_valid_argo_cd_applications(
    seq: argocd.Sequence, schema_errors: dict[tuple[str, int], list[str]]
) -> None:
    for step in seq.steps:
        where = f"{seq.path.name} step {step.index}"
        assert schema_errors[(seq.name, step.index)] == [], where
        assert argocd.vocabulary_errors(step.application) == [], where
        assert step.application["spec"] == seq.spec, f"{where}: the spec is what the update wrote"


@pytest.mark.parametrize("seq", SEQUENCES, ids=lambda s: s.name)
def test_recorded_spec_is_what_the_program_registers(
    seq: argocd.Sequence, registered: Callable[[argocd.Sequence], SimResource]
) -> None:
    app = registered(seq)
    assert whole_numbers(app.inputs["spec"]) == seq.spec, app.urn


@pytest.mark.parametrize("seq", SEQUENCES, ids=lambda s: s.name)
def test_wait_ends_only_when_argo_cd_runs_the_declared_release(
    seq: argocd.Sequence, registered: Callable[[argocd.Sequence], SimResource]
) -> None:
    app = registered(seq)
    exprs = k8s_await.conditions(app.inputs["metadata"]["annotations"][WAIT_FOR_ANNOTATION])
    for step in seq.steps:
        where = f"{app.urn}, {seq.path.name} step {step.index}"
        for expr in exprs:  # never an error, whichever condition All would reach
            expr.matches(step.application)
        verdict = k8s_await.evaluate(exprs, step.application)
        assert verdict.error == "", where
        assert verdict.satisfied is (step.expect == "done"), f"{where}: {verdict.message}"
        if step.found is not None:
            assert f'(found "{step.found}")' in verdict.message, f"{where}: {verdict.message}"


@pytest.mark.parametrize("seq", SEQUENCES, ids=lambda s: s.name)
def test_cases_say_what_issue_13_asks(
    seq: argocd.Sequence, registered: Callable[[argocd.Sequence], SimResource]
) -> None:
    expects = [step.expect for step in seq.steps]
    health = [step.application["status"]["health"]["status"] for step in seq.steps]
    if seq.case in NEVER_DONE:
        assert set(expects) == {"waiting"} and health[-1] == "Degraded", seq.path.name
    else:
        assert expects == ["waiting"] * (len(expects) - 1) + ["done"], seq.path.name
    if seq.case == "rollback":
        assert {"Progressing", "Degraded"} <= set(health[:2]), "the failed release is still rolling out"
    # The stale status is Synced and Healthy: the old conditions alone would have ended the wait there.
    exprs = k8s_await.conditions(registered(seq).inputs["metadata"]["annotations"][WAIT_FOR_ANNOTATION])
    synced_healthy = exprs[-2:]
    assert str(synced_healthy[0]) == "{.status.sync.status}=Synced"
    assert HEALTH_PATH.fullmatch(synced_healthy[1].path) and synced_healthy[1].value == "Healthy"
    if seq.case in ("good-release", "replica-change", "rollback-after-health-gate"):
        assert k8s_await.evaluate(synced_healthy, seq.steps[0].application).satisfied, seq.path.name
    # With an HPA without metrics the app is Degraded in every step: a wait on the app's health would
    # never end, though the release's workload is Healthy.
    if seq.case in ("hpa-degraded", "app-tree-hpa-degraded"):
        app_healthy = k8s_await.conditions(f'["{SYNCED}", "jsonpath={{.status.health.status}}=Healthy"]')
        assert set(health) == {"Degraded"}, seq.path.name
        assert not k8s_await.evaluate(app_healthy, seq.steps[-1].application).satisfied
        assert _health_of(seq.steps[-1].application, "HorizontalPodAutoscaler") in ("Degraded", None)
        assert _health_of(seq.steps[-1].application, "Deployment") in ("Healthy", None)
    inline = [resource_health_inline(step.application) for step in seq.steps]
    assert set(inline) == {seq.case not in APP_TREE}, seq.path.name


def _health_of(application: dict[str, Any], kind: str) -> str | None:
    """The health Argo CD lists for the one resource of this kind; None where it keeps none."""
    (found,) = [r for r in application["status"]["resources"] if r["kind"] == kind]
    return found.get("health", {}).get("status")


@pytest.mark.parametrize("seq", SEQUENCES, ids=lambda s: s.name)
def test_the_wait_and_the_deploy_judge_the_same_workload(
    seq: argocd.Sequence, registered: Callable[[argocd.Sequence], SimResource]
) -> None:
    """The expression and the Python rule (deploy/argo_status.py) pick the same entry, whatever it says."""
    app = registered(seq)
    health_expr = k8s_await.conditions(app.inputs["metadata"]["annotations"][WAIT_FOR_ANNOTATION])[-1]
    declared = (
        seq.app["name"] if seq.app["source"]["type"] == "helm" else f"web-{seq.app['source']['workload']}"
    )
    for step in seq.steps:
        workload = declared_workload(step.application)
        assert workload == ReleaseWorkload(seq.app["namespace"], declared), seq.path.name
        status = step.application["status"]
        carried = [
            r["health"]["status"] for r in status["resources"] if workload.carries(r) and "health" in r
        ]
        expected = carried[0] if resource_health_inline(step.application) else status["health"]["status"]
        assert health_expr.matches(step.application).found == expected, f"{seq.path.name} step {step.index}"


def _done(case: str, kind: str) -> dict[str, Any]:
    seq = next(s for s in SEQUENCES if s.case == case and s.app["source"]["type"] == kind)
    return copy.deepcopy(seq.steps[-1].application)


def _entry(
    kind: str, name: str, health: str, *, group: str = "apps", namespace: str = "web"
) -> dict[str, Any]:
    return {
        "group": group,
        "version": "v1",
        "kind": kind,
        "namespace": namespace,
        "name": name,
        "status": "Synced",
        "health": {"status": health},
    }


DECOYS: list[tuple[str, Callable[[list[dict[str, Any]], str], object], bool, str]] = [
    # (what, change to status.resources given the workload's name, the wait ends, progress line)
    (
        "the workload itself Degraded",
        lambda rs, w: rs[0]["health"].update(status="Degraded"),
        False,
        "Degraded",
    ),
    (
        "the workload Progressing",
        lambda rs, w: rs[0]["health"].update(status="Progressing"),
        False,
        "Progressing",
    ),
    ("the workload gone from the list", lambda rs, w: rs.pop(0), False, "selected nothing"),
    (
        "a second Deployment Degraded",
        lambda rs, w: rs.append(_entry("Deployment", f"{w}-worker", "Degraded")),
        True,
        "",
    ),
    (
        "a same-named Deployment in another namespace, listed first",
        lambda rs, w: rs.insert(0, _entry("Deployment", w, "Degraded", namespace="other")),
        True,
        "",
    ),
    (
        "a same-named Job listed first",
        lambda rs, w: rs.insert(0, _entry("Job", w, "Degraded", group="batch")),
        True,
        "",
    ),
    (
        "the workload a StatefulSet",
        lambda rs, w: rs.__setitem__(0, _entry("StatefulSet", w, "Progressing")),
        False,
        "Progressing",
    ),
    (
        "the workload an Argo Rollout",
        lambda rs, w: rs.__setitem__(0, _entry("Rollout", w, "Healthy", group="argoproj.io")),
        True,
        "",
    ),
]


@pytest.mark.parametrize("kind", ["helm", "kustomize"])
@pytest.mark.parametrize(("what", "change", "done", "line"), DECOYS, ids=[d[0] for d in DECOYS])
def test_only_the_release_workload_decides(
    kind: str,
    what: str,
    change: Callable[[list[dict[str, Any]], str], object],
    done: bool,
    line: str,
    registered: Callable[[argocd.Sequence], SimResource],
) -> None:
    """On the HPA flow's last step (app Degraded, workload Healthy): only the workload's entry counts."""
    seq = next(s for s in SEQUENCES if s.case == "hpa-degraded" and s.app["source"]["type"] == kind)
    exprs = k8s_await.conditions(registered(seq).inputs["metadata"]["annotations"][WAIT_FOR_ANNOTATION])
    application = _done("hpa-degraded", kind)
    resources = application["status"]["resources"]
    assert resources[0]["kind"] == "Deployment"
    change(resources, resources[0]["name"])
    assert argocd_schema.validate([application]) == [[]], what
    verdict = k8s_await.evaluate(exprs, application)
    assert verdict.satisfied is done, f"{what}: {verdict.message}"
    assert line in verdict.message, what
    judged = argo_health(application)
    assert judged is not None and judged.release_degraded is (line == "Degraded"), what


def test_replica_change_stale_status_already_names_the_digest() -> None:
    for seq in SEQUENCES:
        if seq.case == "replica-change":
            stale = seq.steps[0].application["status"]["sync"]["comparedTo"]["source"]
            declared = seq.spec["source"]
            assert stale != declared and _digest(stale) == _digest(declared), seq.path.name


def _digest(source: dict[str, Any]) -> str:
    if "helm" in source:
        return str(source["helm"]["valuesObject"]["image"]["digest"])
    return str(source["kustomize"]["images"][0]).rsplit("@", 1)[1]


class _UnknownDigest(ProgramMocks):
    """A preview before the push: pulumi-docker has no pushed digest yet."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        name, state = super().new_resource(args)
        if args.typ == DOCKER_IMAGE_TYPE:
            state["repoDigest"] = UNKNOWN
        return name, state


def test_waitfor_is_unknown_while_the_digest_is(run_program: Callable[..., Simulation]) -> None:
    """The annotation follows the digest Output: unknown with it, never a stale or half-built value."""
    app = copy.deepcopy(HELM_SEQUENCE.app)
    del app["image"]["pin"]
    sim = run_program("truth", config=stack_config(app), preview=True, mocks=_UnknownDigest())
    registered = application(sim)
    values = registered.inputs["spec"]["source"]["helm"]["valuesObject"]
    assert values["image"]["digest"] == UNKNOWN, registered.urn
    assert registered.inputs["metadata"]["annotations"][WAIT_FOR_ANNOTATION] == UNKNOWN, registered.urn


def test_kustomize_image_names_cannot_break_the_expression(run_program: Callable[..., Simulation]) -> None:
    """`=`, quotes, braces and backslashes in the overlay's image name stay inside the string literal."""
    seq = next(s for s in SEQUENCES if s.name == "kustomize-good-release")
    app = copy.deepcopy(seq.app)
    name = "we{b}='x\\y'"
    app["source"]["imageName"] = name
    exprs = k8s_await.conditions(
        application(run_program("truth", config=stack_config(app))).inputs["metadata"]["annotations"][
            WAIT_FOR_ANNOTATION
        ]
    )
    done = copy.deepcopy(seq.steps[-1].application)
    entry = f"{name}={app['image']['pin']}"
    done["status"]["sync"]["comparedTo"]["source"]["kustomize"]["images"] = [entry]
    assert k8s_await.evaluate(exprs, done).satisfied
    done["status"]["sync"]["comparedTo"]["source"]["kustomize"]["images"] = [entry + "0"]
    assert not k8s_await.evaluate(exprs, done).satisfied


# --- The schema check really rejects malformed objects ----------------------------------------------

MALFORMED = [
    ("/status/sync/status", lambda s: s["sync"].update(status=3)),
    (
        "/status/sync/comparedTo/sourc",
        lambda s: s["sync"]["comparedTo"].update(sourc=s["sync"]["comparedTo"]["source"]),
    ),
    ("/status/health", lambda s: s.update(health="Healthy")),
    ("/status/operationState/startedAt", lambda s: s["operationState"].update(startedAt="yesterday")),
    ("/status/operationState", lambda s: s["operationState"].pop("phase")),
    ("/status/summary/images", lambda s: s["summary"].update(images="registry.example.com/platform/web")),
    ("/status/healthStatus", lambda s: s.update(healthStatus={"status": "Healthy"})),
    ("/status/resources/0/health/statuss", lambda s: s["resources"][0]["health"].update(statuss="Healthy")),
]


def test_schema_rejects_a_malformed_status() -> None:
    done = HELM_SEQUENCE.steps[-1].application
    objects = []
    for _, mutate in MALFORMED:
        obj = copy.deepcopy(done)
        mutate(obj["status"])
        objects.append(obj)
    valuesobject = copy.deepcopy(done)
    valuesobject["spec"]["source"]["helm"]["valuesObject"]["anything"] = {"goes": ["here", 1]}
    *bad, free = argocd_schema.validate([*objects, valuesobject])
    for (pointer, _), errors in zip(MALFORMED, bad, strict=True):
        assert any(e.startswith(pointer + ":") for e in errors), (pointer, errors)
    assert free == [], "Helm's valuesObject is free form (x-kubernetes-preserve-unknown-fields)"


def test_registered_application_is_valid_for_argo_cd(
    registered: Callable[[argocd.Sequence], SimResource],
) -> None:
    """What the program registers, syncPolicy.retry.refresh included, is an Application Argo CD accepts."""
    objects = []
    for seq in SEQUENCES:
        inputs = whole_numbers(registered(seq).inputs)
        objects.append({k: inputs[k] for k in ("apiVersion", "kind", "metadata", "spec")})
    assert argocd_schema.validate(objects) == [[] for _ in objects]


@pytest.mark.skipif(not ARGOCD_MIRROR.is_dir(), reason="no argoproj/argo-cd mirror on this machine")
def test_the_package_schema_is_argo_cds_crd() -> None:
    """The pinned package equals Argo CD's own CRD, field by field (see compare_with_crd)."""
    text = subprocess.run(
        ["git", "-C", str(ARGOCD_MIRROR), "show", f"{ARGOCD_CRD_TAG}:manifests/crds/application-crd.yaml"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert argocd_schema.compare_with_crd(yaml.safe_load(text)) == []


# --- pulumi-kubernetes' rules, checked against its own test cases -----------------------------------


@pytest.mark.parametrize(
    ("expr", "path", "value", "error"),
    [
        # provider/pkg/jsonpath/jsonpath_test.go TestParse
        ("", None, None, "non-empty"),
        ("{.foo}", None, None, "jsonpath="),
        ("jsonpath='{.status.phase}'=Running", None, None, "omit shell quotes"),
        ("jsonpath={.metadata.name}=", None, None, "{.metadata.name}= requires a value"),
        ("jsonpath={.metadata.name}='test=wrong'", None, None, "format should be {.path}=value or {.path}"),
        ("jsonpath={.foo}", "{.foo}", "", None),
        ("jsonpath={.foo}=bar", "{.foo}", "bar", None),
        ("jsonpath={$.foo}=bar", "{$.foo}", "bar", None),
        (
            'jsonpath={.status.containerStatuses[?(@.name=="foobar")].ready}=True',
            '{.status.containerStatuses[?(@.name=="foobar")].ready}',
            "True",
            None,
        ),
        (
            "jsonpath={ .webhooks[*].clientConfig.caBundle }",
            "{ .webhooks[*].clientConfig.caBundle }",
            "",
            None,
        ),
        ("jsonpath={ .webhooks[].clientConfig.caBundle }", None, None, "parsing"),
        # The kustomize image entry: an `=` inside a quoted filter still splits; `\u003d` does not.
        ("jsonpath={.images[?@ == 'web=repo@sha256:1']}", None, None, "brackets"),
        (
            "jsonpath={.images[?@ == 'web\\u003drepo@sha256:1']}",
            "{.images[?@ == 'web\\u003drepo@sha256:1']}",
            "",
            None,
        ),
        ("jsonpath={.a[?@ != 'x']}", None, None, "brackets"),
    ],
)
def test_parse_follows_jsonpath_go(expr: str, path: str | None, value: str | None, error: str | None) -> None:
    if error is not None:
        with pytest.raises(k8s_await.ParseError) as raised:
            k8s_await.parse(expr)
        assert error in str(raised.value)
        return
    parsed = k8s_await.parse(expr)
    assert (parsed.path, parsed.value) == (path, value)


@pytest.mark.parametrize(
    ("expr", "obj", "matched", "found", "message"),
    [
        # provider/pkg/jsonpath/jsonpath_test.go TestMatches
        ("jsonpath={.foo}", {}, False, "", "{.foo} selected nothing"),
        ("jsonpath={ .foo }", {"foo": None}, True, "<nil>", ""),
        ("jsonpath={ .foo }", {"foo": {"bar": "baz"}}, True, "", ""),
        ("jsonpath={.foo}=bar", {"foo": "bar"}, True, "bar", ""),
        ("jsonpath={.foo}=bar", {"foo": "baz"}, False, "baz", ""),
        # Only the first node counts, printed as fmt.Sprint prints it.
        ("jsonpath={.items[*].n}=1", {"items": [{"n": 2}, {"n": 1}]}, False, "2", ""),
        ("jsonpath={.n}=3", {"n": 3.0}, True, "3", ""),
        ("jsonpath={.n}=true", {"n": True}, True, "true", ""),
        ("jsonpath={.n}=1e+06", {"n": 1e6}, True, "1e+06", ""),
        ("jsonpath={.a[?@ == 'x=y']}".replace("=y", "\\u003dy"), {"a": ["x=y"]}, True, "x=y", ""),
    ],
)
def test_matches_follows_jsonpath_go(
    expr: str, obj: dict[str, Any], matched: bool, found: str, message: str
) -> None:
    result = k8s_await.parse(expr).matches(obj)
    assert (result.matched, result.found, result.message) == (matched, found, message)


def test_a_value_against_a_list_is_an_error_and_holds_the_wait() -> None:
    exprs = k8s_await.conditions('["jsonpath={.foo}=bar"]')
    with pytest.raises(k8s_await.MatchError, match="non-primitive"):
        exprs[0].matches({"foo": ["bar"]})
    verdict = k8s_await.evaluate(exprs, {"foo": ["bar"]})
    assert not verdict.satisfied and "non-primitive" in verdict.error


def test_all_conditions_hold_on_one_object_and_report_the_first_that_does_not() -> None:
    exprs = k8s_await.conditions('["jsonpath={.a}=1", "jsonpath={.b}=2"]')
    assert k8s_await.evaluate(exprs, {"a": 1, "b": 2}).satisfied
    assert k8s_await.evaluate(exprs, {"a": 0, "b": 0}).message == 'Waiting for {.a}=1 (found "0")'
    assert k8s_await.evaluate(exprs, {"a": 1}).message == "{.b} selected nothing"
    stale = {"metadata": {"generation": 2}, "status": {"observedGeneration": 1}, "a": 1, "b": 2}
    assert not k8s_await.evaluate(exprs, stale).satisfied


# --- Section 3's default and section 4's retry.refresh ------------------------------------------------


def test_sync_wait_default_fits_the_deploy_budget(run_program: Callable[..., Simulation]) -> None:
    from model.config import DEFAULT_SYNC_TIMEOUT_SECONDS, HealthConfig
    from model.health_settings import worst_case_seconds

    seq = HELM_SEQUENCE
    app = application(run_program("truth", config=stack_config(seq.app)))
    assert app.inputs["metadata"]["annotations"][TIMEOUT_ANNOTATION] == str(DEFAULT_SYNC_TIMEOUT_SECONDS)
    health = HealthConfig(url="https://x")
    gate = worst_case_seconds(health.attempts, health.interval_seconds, health.timeout_seconds)
    assert DEFAULT_SYNC_TIMEOUT_SECONDS + gate <= 300, "a deploy with the defaults fits 5 minutes"


def test_retry_refresh_is_on_by_default_and_off_for_older_argo_cd(
    run_program: Callable[..., Simulation],
) -> None:
    seq = HELM_SEQUENCE
    default = application(run_program("truth", config=stack_config(seq.app)))
    older = application(
        run_program("truth", config=stack_config(seq.app, argocd_settings={"retryRefresh": False}))
    )
    assert default.inputs["spec"]["syncPolicy"]["retry"]["refresh"] is True, default.urn
    retry = older.inputs["spec"]["syncPolicy"]["retry"]
    assert "refresh" not in retry, f"{older.urn}: an Argo CD before v3.2.0 has no retry.refresh"
    assert whole_numbers(retry) == {
        "limit": 3,
        "backoff": {"duration": "10s", "factor": 2, "maxDuration": "3m"},
    }
    for app in (default, older):
        assert sync_retry_findings(app.inputs, app.name, 1) == [], app.urn


def test_retry_refresh_must_be_a_boolean(run_program: Callable[..., Simulation]) -> None:
    with pytest.raises(ProgramFailed) as raised:
        run_program("truth", config=stack_config(HELM_SEQUENCE.app, argocd_settings={"retryRefresh": "yes"}))
    assert "gitops-deploy:argocd.retryRefresh: got string 'yes'; expected true or false" in str(raised.value)


@pytest.mark.grpc
@pytest.mark.render
@pytest.mark.parametrize("refresh", [True, False])
def test_offline_check_accepts_both_shapes(refresh: bool, tmp_path: Path) -> None:
    """`python -m policy_check`: the pack and the render take the Application with and without refresh."""
    apps = [copy.deepcopy(seq.app) for seq in SEQUENCES if seq.case == "good-release"]
    for app in apps:  # the overlay scales the workload named web; the chart takes any name
        app["name"] = "web" if app["source"]["type"] == "kustomize" else "api"
    # This checkout is the repository the apps read: the check renders only that one.
    settings = {"retryRefresh": refresh, "repoURL": apps[0]["source"]["repoURL"]}
    policy = write_policy_config(tmp_path / "policy.json")
    report = run_check("truth", config=stack_config(*apps, argocd_settings=settings), config_file=policy)
    assert [d for d in report.diagnostics if d.policy == "argocd-sync-retry"] == []
    assert [r.status for r in report.renders] == ["rendered", "rendered"], [r.reason for r in report.renders]


def test_sync_retry_rule_checks_refresh_only_when_set(run_program: Callable[..., Simulation]) -> None:
    app = application(run_program("truth", config=stack_config(HELM_SEQUENCE.app)))
    props = copy.deepcopy(app.inputs)
    props["spec"]["syncPolicy"]["retry"]["refresh"] = "true"
    (found,) = sync_retry_findings(props, app.name, 1)
    assert "retry.refresh is 'true'; it must be true or false" in found and "v3.2.0" in found


def test_release_md_shows_the_health_condition_the_program_writes() -> None:
    """docs/release.md spells the workload's health condition out, with placeholders for the names."""
    condition = workload_healthy(ReleaseWorkload("NAMESPACE", "APP"))
    shown = condition.replace("'APP'", "'<app>'").replace("'NAMESPACE'", "'<namespace>'")
    assert shown in (Path(__file__).resolve().parents[2] / "docs" / "release.md").read_text(encoding="utf-8")
