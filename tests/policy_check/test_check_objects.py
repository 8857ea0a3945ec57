"""The check judges the objects as a whole: one identity per object across apps and stacks, names
Kubernetes accepts for their kind, and each release's workload; the app-name limit in config follows
from the names derived from it."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from model import k8s_names
from model.config import ArgoCDConfig, ClusterConfig
from model.config_reader import Reader
from model.config_rules import APP_NAME_MAX, app_name
from model.names import APPLICATION_TYPE, DERIVED_NAME_SUFFIXES, EXAMPLE_OVERLAY_NAME
from model.stack_files import read_stack_config
from policy_check import objects
from policy_check.check import run_check
from policy_check.findings import AppInfo, Context, ResourceInfo
from policy_check.render_common import RenderedObject, RenderResult
from policy_check.report import CheckReport
from policy_check.report_format import formatted
from tests.support.example_project import OVERLAY
from tests.support.projects import (
    app,
    deployment_template,
    make_project,
    stack_config,
    write_chart,
    write_policy_config,
    write_stack,
)

# -- Kubernetes' name rules -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("group", "kind", "name", "valid"),
    [
        ("", "Service", "a" * 63, True),
        ("", "Service", "a" * 64, False),
        ("", "Service", "1web", False),  # DNS-1035: a letter first
        ("", "Service", "web.app", False),
        ("", "ConfigMap", "1web.app", True),  # subdomain
        ("", "ConfigMap", ".".join(["a" * 63] * 4), False),  # 255 characters
        ("", "ConfigMap", ".".join(["a" * 63] * 3 + ["a" * 61]), True),  # 253
        ("", "Secret", "web-", False),
        ("", "Secret", "Web", False),
        ("", "Namespace", "a.b", False),  # a label
        ("apps", "Deployment", "a" * 64, True),
        ("apps", "StatefulSet", "a" * 64, False),
        ("batch", "CronJob", "a" * 52, True),
        ("batch", "CronJob", "a" * 53, False),
        ("example.com", "Widget", "a.b-c", True),  # any other kind: a subdomain
        ("example.com", "Widget", "a_b", False),
        ("", "Service", "", False),
    ],
)
def test_names_follow_the_rule_of_their_kind(group: str, kind: str, name: str, valid: bool) -> None:
    assert (k8s_names.name_problem(group, kind, name) is None) is valid


# -- the app-name limit -----------------------------------------------------------------------------


def test_the_app_name_limit_leaves_room_for_every_derived_name() -> None:
    longest = max(len(s) for s in DERIVED_NAME_SUFFIXES)
    assert longest + APP_NAME_MAX == k8s_names.LABEL_MAX
    for suffix in DERIVED_NAME_SUFFIXES:
        assert k8s_names.name_problem("", "Service", "a" * APP_NAME_MAX + suffix) is None


def test_the_example_overlays_longest_name_is_the_one_config_allows_for() -> None:
    root = Path(__file__).resolve().parents[2] / OVERLAY
    names = [
        doc["metadata"]["name"]
        for path in sorted(root.glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if isinstance(doc, dict) and "metadata" in doc
    ]
    assert max(names, key=len) == EXAMPLE_OVERLAY_NAME


# -- the judgement on synthetic objects -------------------------------------------------------------


def _stack(*objs: tuple[str, str, str, str | None, str]) -> tuple[Context, list[RenderResult]]:
    """A stack of apps web and web-admin (kustomize) rendering `objs`: (type, app, name, namespace, file)."""
    apps = ("web", "web-admin")
    infos = {
        a: AppInfo(i, a, f"gitops-deploy:apps[{i}] ({a})", source_type="kustomize")
        for i, a in enumerate(apps)
    }
    renders = [
        RenderResult(
            a,
            f"urn:{a}",
            "kustomize",
            "overlay",
            "rendered",
            "",
            tuple(
                RenderedObject(t, name, f"urn:x:{t}::{name}", None, ns, f)
                for t, o, name, ns, f in objs
                if o == a
            ),
        )
        for a in apps
    ]
    return Context("Pulumi.s.yaml", None, infos, {}, {}), renders


SERVICE = "kubernetes:core/v1:Service"


def test_two_apps_rendering_one_identity_is_a_finding_naming_both() -> None:
    ctx, renders = _stack(
        (SERVICE, "web", "web-admin-app", "ns", "overlay/admin.yaml"),
        (SERVICE, "web-admin", "web-admin-app", "ns", "overlay/service.yaml"),
        (SERVICE, "web", "web-app", "ns", "overlay/service.yaml"),
        ("kubernetes:apps/v1:Deployment", "web-admin", "web-admin-app", "ns", "overlay/deployment.yaml"),
        (SERVICE, "web-admin", "web-app", "other", "overlay/service.yaml"),
    )
    [finding] = objects.collisions(objects.owned("s", ctx, renders), [], "s", ctx)
    assert finding.blocking and finding.policies == (objects.UNIQUE,)
    assert "app web (overlay/admin.yaml) and app web-admin (overlay/service.yaml)" in finding.problem
    assert finding.problem.startswith("Service 'ns/web-admin-app' is created by")
    assert finding.change.key == "gitops-deploy:apps[1] (web-admin).name"
    assert [p.file for p in finding.places] == ["overlay/admin.yaml", "overlay/service.yaml"]


def test_objects_of_another_stack_collide_only_in_the_same_cluster() -> None:
    ctx, renders = _stack((SERVICE, "web", "web-app", "ns", "f.yaml"))
    same = {"argocd": "argocd context mgmt", "destination": "argocd context mgmt, cluster eu"}
    other = {**same, "destination": "argocd context mgmt, cluster us"}
    mine = objects.owned("s", ctx, renders, same)
    [finding] = objects.collisions(mine, objects.owned("t", ctx, renders, same), "s", ctx)
    assert "app web of stack t (f.yaml)" in finding.problem
    assert objects.collisions(mine, objects.owned("t", ctx, renders, other), "s", ctx) == []


def test_a_name_its_kind_rejects_is_a_finding_on_its_file() -> None:
    long = "web-" + "a" * 60
    ctx, renders = _stack(
        (SERVICE, "web", long, "ns", "overlay/service.yaml"),
        ("kubernetes:apps/v1:Deployment", "web", long, "ns", "d.yaml"),
    )
    [finding] = objects.invalid_names(objects.owned("s", ctx, renders), ctx)
    assert finding.blocking and finding.policies == (objects.VALID_NAME,)
    assert "64 characters, over the 63 a DNS-1035 label allows" in finding.problem
    assert finding.change.file == "overlay/service.yaml" and "'web-'" in finding.change.text


# -- properties ------------------------------------------------------------------------------------

_names = st.from_regex(r"[a-z0-9][a-z0-9.-]{0,70}", fullmatch=True)
"""Names near every rule's edges: digits first, dots, dashes at either end, past 63 characters."""


@given(_names)
@settings(max_examples=300, deadline=None)
def test_every_app_name_config_accepts_derives_names_kubernetes_accepts(name: str) -> None:
    """The limit in config follows from the derived names: none of an accepted name's is ever rejected."""
    reader = Reader("gitops-deploy")
    if app_name(reader, "apps[0].name", name) is None:
        return
    for suffix in ("", *DERIVED_NAME_SUFFIXES):
        for group, kind in [("", "Service"), ("", "Secret"), ("apps", "Deployment"), ("apps", "StatefulSet")]:
            assert k8s_names.name_problem(group, kind, name + suffix) is None, (name + suffix, kind)


@given(_names, _names)
@settings(max_examples=300, deadline=None)
def test_the_name_rules_are_apimachinerys(name: str, other: str) -> None:
    """IsDNS1035Label, IsDNS1123Label and IsDNS1123Subdomain, written from validation.go independently."""
    for text in (name, f"{name}.{other}", name.upper()):
        label = re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", text) is not None and len(text) <= 63
        dns1035 = re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", text) is not None and len(text) <= 63
        sub = len(text) <= 253 and all(
            re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", part) for part in text.split(".")
        )
        assert (k8s_names.name_problem("", "Service", text) is None) is dns1035, text
        assert (k8s_names.name_problem("", "Namespace", text) is None) is label, text
        assert (k8s_names.name_problem("", "ConfigMap", text) is None) is sub, text


_objects = st.lists(
    st.tuples(st.sampled_from(["web", "web-admin"]), st.sampled_from(["ns", "other"]), _names), max_size=8
)


@given(_objects)
@settings(max_examples=200, deadline=None)
def test_a_collision_is_reported_exactly_when_two_objects_share_an_identity(
    rendered: list[tuple[str, str, str]],
) -> None:
    ctx, renders = _stack(
        *[(SERVICE, a, name, ns, f"{a}/{i}.yaml") for i, (a, ns, name) in enumerate(rendered)]
    )
    found = objects.collisions(objects.owned("s", ctx, renders), [], "s", ctx)
    shared = {
        (ns, name) for (ns, name), n in Counter((ns, name) for _, ns, name in rendered).items() if n > 1
    }
    assert {f.problem.split("'")[1] for f in found} == {f"{ns}/{name}" for ns, name in shared}


def test_the_clusters_of_a_stack() -> None:
    assert objects.clusters(ArgoCDConfig(), ClusterConfig()) == {
        "argocd": "argocd context (the job default)"
    } | {"destination": "argocd context (the job default)"}
    assert objects.known_clusters(objects.clusters(ArgoCDConfig(), ClusterConfig())) == set()
    hub = objects.clusters(ArgoCDConfig(context="mgmt"), ClusterConfig(name="prod-eu-1"))
    assert hub == {"argocd": "kube context mgmt", "destination": "kube context mgmt, cluster prod-eu-1"}
    assert objects.known_clusters(hub) == {"kube context mgmt"}
    reached = objects.clusters(ArgoCDConfig(context="hub"), ClusterConfig(name="eu", context="mgmt"))
    assert reached == {"argocd": "kube context hub", "destination": "kube context mgmt"}
    in_cluster = objects.clusters(ArgoCDConfig(context="mgmt"), ClusterConfig())
    assert objects.known_clusters(reached) & objects.known_clusters(in_cluster) == {"kube context mgmt"}


DEPLOYMENT = "kubernetes:apps/v1:Deployment"


def _release(
    source: Mapping[str, object], *objs: tuple[str, str, str | None]
) -> tuple[Context, list[RenderResult]]:
    """App web (in web-ns) whose Application has `source`, rendering `objs`: (type, name, namespace)."""
    kind = "kustomize" if "kustomize" in source else "helm"
    info = {"web": AppInfo(0, "web", "gitops-deploy:apps[0] (web)", source_type=kind, source_path="src")}
    props = {"metadata": {"name": "web"}, "spec": {"destination": {"namespace": "web-ns"}, "source": source}}
    application = ResourceInfo(APPLICATION_TYPE, "Application 'argocd/web'", "web", props=props)
    rows = tuple(RenderedObject(t, name, f"urn:{t}::{name}", None, ns, "src/f.yaml") for t, name, ns in objs)
    render = RenderResult("web", "urn:app", kind, "src", "rendered", "", rows)
    return Context("Pulumi.s.yaml", None, info, {"urn:app": application}, {}), [render]


HELM: dict[str, object] = {"helm": {"valuesObject": {}}}
OVERLAY_API: dict[str, object] = {"kustomize": {"replicas": [{"name": "api", "count": 3}]}}


@pytest.mark.parametrize(
    ("source", "objs"),
    [
        (HELM, [(DEPLOYMENT, "web", "web-ns")]),
        (HELM, [(SERVICE, "web", "web-ns"), ("kubernetes:apps/v1:StatefulSet", "web", "web-ns")]),
        (HELM, [("kubernetes:argoproj.io/v1alpha1:Rollout", "web", "web-ns")]),
        (OVERLAY_API, [(DEPLOYMENT, "web-api", "web-ns")]),
    ],
)
def test_a_release_rendering_its_workload_passes(
    source: Mapping[str, object], objs: list[tuple[str, str, str | None]]
) -> None:
    ctx, renders = _release(source, *objs)
    assert objects.missing_workloads(renders, ctx) == []


@pytest.mark.parametrize(
    ("source", "objs", "rendered"),
    [
        (HELM, [(DEPLOYMENT, "web-server", "web-ns")], "Deployment 'web-ns/web-server' (src/f.yaml)"),
        (HELM, [(DEPLOYMENT, "web", "other")], "Deployment 'other/web' (src/f.yaml)"),
        (HELM, [(SERVICE, "web", "web-ns"), ("kubernetes:apps/v1:DaemonSet", "web", "web-ns")], "no "),
        (OVERLAY_API, [(DEPLOYMENT, "web-app", "web-ns")], "Deployment 'web-ns/web-app' (src/f.yaml)"),
    ],
)
def test_a_release_without_its_workload_is_a_finding_naming_what_it_rendered(
    source: Mapping[str, object], objs: list[tuple[str, str, str | None]], rendered: str
) -> None:
    ctx, renders = _release(source, *objs)
    [finding] = objects.missing_workloads(renders, ctx)
    assert finding.blocking and finding.policies == (objects.WORKLOAD_PRESENT,) and finding.app == "web"
    expected = "web-ns/web-api" if "kustomize" in source else "web-ns/web"
    assert f"app web renders no Deployment, StatefulSet or Rollout '{expected}'" in finding.problem
    assert f"it renders {rendered}" in finding.problem and "\n" not in finding.problem
    if "kustomize" in source:
        assert finding.change.key == "gitops-deploy:apps[0] (web).source.workload"
        assert (
            finding.change.text.endswith(": app")
            and finding.change.alternative == "rename the workload in src"
        )
    else:
        assert finding.change.file == "src" and "values contract" in finding.change.text


def test_an_app_not_rendered_is_not_judged_for_its_workload() -> None:
    ctx, [render] = _release(HELM)
    for status in ("not-rendered", "error"):
        skipped = RenderResult(render.application, render.application_urn, "helm", "src", status, "why")
        assert objects.missing_workloads([skipped], ctx) == []


# -- the check, end to end --------------------------------------------------------------------------

SERVICES = """\
apiVersion: v1
kind: Service
metadata:
  name: {{ .Release.Name }}-app
spec:
  ports: [{port: 80}]
---
apiVersion: v1
kind: Service
metadata:
  name: {{ .Release.Name }}-admin-app
spec:
  ports: [{port: 80}]
---
apiVersion: v1
kind: Service
metadata:
  name: {{ .Release.Name }}-%s
spec:
  ports: [{port: 80}]
""" % ("x" * 60)


@pytest.fixture(scope="module")
def checked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[CheckReport, CheckReport]]:
    """Apps web and web-admin share a chart and a namespace, in stack `one`; stack `two` on the same
    Argo CD deploys web there too; stack `three` on another Argo CD does as well; stack `four`, on
    another Argo CD, deploys web into stack one's cluster (its `cluster.context`)."""
    root = make_project(tmp_path_factory.mktemp("objects"))
    (root / "app").mkdir()
    (root / "app" / "Dockerfile").write_text("FROM scratch\n")
    chart = write_chart(root, files={"templates/services.yaml": SERVICES})
    policy = write_policy_config(root / "policy.json")

    def stack(name: str, apps: list[str], context: str, cluster: str | None = None) -> None:
        config = stack_config(
            [{**app(a, "app", chart=chart, replicas=1), "namespace": "shared"} for a in apps]
        )
        config["gitops-deploy:argocd"]["context"] = context
        if cluster:
            config["gitops-deploy:cluster"] = {"name": "mgmt-cluster", "context": cluster}
        write_stack(root, name, config)

    stack("one", ["web", "web-admin"], "mgmt")
    stack("two", ["web"], "mgmt")
    stack("three", ["web"], "elsewhere")
    stack("four", ["web"], "other-hub", cluster="mgmt")
    yield (
        run_check("one", project_dir=root, config_file=policy),
        run_check("three", project_dir=root, config_file=policy),
    )


def test_the_check_fails_on_two_apps_rendering_one_object(checked: tuple[CheckReport, CheckReport]) -> None:
    report, _ = checked
    assert report.exit_code == 1
    unique = [f for f in report.findings if f.policies == (objects.UNIQUE,)]
    problems = "\n".join(f.problem for f in unique)
    assert re.search(
        r"Service 'shared/web-admin-app' is created by app web \(chart/templates/services.yaml\) "
        r"and app web-admin \(chart/templates/services.yaml\)",
        problems,
    ), problems
    assert "Application 'argocd/web' is created by app web and app web of stack two" in problems
    service = "Service 'shared/web-app' is created by app web (chart/templates/services.yaml)"
    # Stack four's Argo CD is another one, but it deploys into this stack's cluster: its objects
    # collide there, and its Application (in its own Argo CD's cluster) does not.
    templates = "(chart/templates/services.yaml)"
    assert f"{service} and app web of stack four {templates} and app web of stack two" in problems
    assert "of stack four" not in problems.split("Application 'argocd/web'")[1].split("\n")[0]
    table = formatted(report, "table")
    assert "object-identity-unique" in table and "web-admin-app" in table


def test_the_check_fails_on_names_kubernetes_rejects(checked: tuple[CheckReport, CheckReport]) -> None:
    report, _ = checked
    names = [f for f in report.findings if f.policies == (objects.VALID_NAME,)]
    assert {f.app for f in names} == {"web", "web-admin"}
    assert all(f.change.file == "chart/templates/services.yaml" for f in names)


def test_stacks_on_another_argocd_are_not_compared(checked: tuple[CheckReport, CheckReport]) -> None:
    _, alone = checked
    assert not [f for f in alone.findings if f.policies == (objects.UNIQUE,)]


def test_the_check_fails_a_chart_whose_workload_is_not_named_after_the_release(tmp_path: Path) -> None:
    root = make_project(tmp_path / "project")
    (root / "app").mkdir()
    (root / "app" / "Dockerfile").write_text("FROM scratch\n")
    server = deployment_template().replace(
        "name: {{ .Release.Name }}\n", "name: {{ .Release.Name }}-server\n", 1
    )
    odd = write_chart(root, "odd-chart", files={"templates/deployment.yaml": server})
    write_chart(root)
    write_stack(
        root, "s", stack_config([app("web", "app", replicas=1), app("api", "app", replicas=1, chart=odd)])
    )
    report = run_check("s", project_dir=root, config_file=write_policy_config(root / "policy.json"))
    assert {r.application: r.status for r in report.renders} == {"web": "rendered", "api": "rendered"}
    [finding] = [f for f in report.findings if f.policies == (objects.WORKLOAD_PRESENT,)]
    assert finding.app == "api" and report.exit_code == 1
    assert "'api-test/api'" in finding.problem and "Deployment 'api-test/api-server'" in finding.problem
    assert finding.change.file == "odd-chart"
    table = formatted(report, "table")
    assert "release-workload-present" in table and "api-server" in table


def test_the_example_chart_and_overlay_render_their_workloads(example_project: Path) -> None:
    values = read_stack_config("staging", example_project)
    values.pop("gitops-deploy:promote")
    report = run_check("staging", project_dir=example_project, config=values)
    rendered = {r.application: r.engine for r in report.renders if r.status == "rendered"}
    assert rendered == {"web": "kustomize", "api": "helm"}, formatted(report, "table")
    assert not [f for f in report.findings if f.policies == (objects.WORKLOAD_PRESENT,)], formatted(
        report, "table"
    )
