"""One Argo CD, many clusters: destinations, which provider each object uses, and the AppProject fence."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from policy_check.simulate import ProgramFailed, SimResource, Simulation

APPLICATION = "kubernetes:argoproj.io/v1alpha1:Application"
SECRET = "kubernetes:core/v1:Secret"
PROVIDER = "pulumi:providers:kubernetes"
APPPROJECT = "kubernetes:argoproj.io/v1alpha1:AppProject"


def _shape(base: dict[str, Any], *, cluster: dict[str, Any] | None, argocd: dict[str, Any]) -> dict[str, Any]:
    cfg = dict(base)
    cfg.pop("gitops-deploy:cluster", None)
    cfg.pop(
        "gitops-deploy:promote", None
    )  # a stack that builds: promotion has tests/components/test_promote.py
    if cluster is not None:
        cfg["gitops-deploy:cluster"] = cluster
    cfg["gitops-deploy:argocd"] = {"namespace": "argocd", "project": "default", **argocd}
    return cfg


def _provider_of(sim: Simulation, res: SimResource) -> SimResource | None:
    """The explicit provider a resource was registered with, or None for the default provider."""
    if not res.provider:
        return None
    urn = res.provider.rsplit("::", 1)[0]
    return sim.get(urn)


SHAPES: dict[str, tuple[Any, ...]] = {
    # cluster config, argocd config, expected destination, (Secret, Application) provider (name, context)
    "in-cluster": (None, {}, {"server": "https://kubernetes.default.svc"}, None, None),
    "hub-by-name": ({"name": "prod-eu-1"}, {}, {"name": "prod-eu-1"}, None, None),
    "hub-by-server": (
        {"server": "https://10.0.0.1:6443"},
        {},
        {"server": "https://10.0.0.1:6443"},
        None,
        None,
    ),
    "with-contexts": (
        {"name": "prod-eu-1", "context": "prod-eu-1"},
        {"context": "mgmt"},
        {"name": "prod-eu-1"},
        ("destination", "prod-eu-1"),
        ("argocd", "mgmt"),
    ),
    "destination-context-only": (
        {"server": "https://10.0.0.1:6443", "context": "prod-eu-1"},
        {},
        {"server": "https://10.0.0.1:6443"},
        ("destination", "prod-eu-1"),
        None,
    ),
    "shared-context": (
        {"server": "https://10.0.0.1:6443", "context": "one"},
        {"context": "one"},
        {"server": "https://10.0.0.1:6443"},
        ("argocd", "one"),
        ("argocd", "one"),
    ),
}


def _assert_provider(sim: Simulation, res: SimResource, expected: tuple[str, str] | None) -> None:
    """`res` was registered with the default provider (None) or the explicit provider (name, context)."""
    provider = _provider_of(sim, res)
    got = (provider.name, provider.inputs.get("context")) if provider else None
    assert got == expected, f"{res.urn}: registered with {res.provider or 'the default provider'}"
    if provider is not None:
        assert provider.urn.endswith(f"${PROVIDER}::{provider.name}"), provider.urn
        assert res.provider.startswith(provider.urn + "::"), res.provider


@pytest.mark.parametrize("shape", list(SHAPES))
def test_destination_and_providers_per_shape(
    run_program: Callable[..., Simulation], stack_config: Callable[[str], dict[str, Any]], shape: str
) -> None:
    cluster, argocd, destination, secret_provider, app_provider = SHAPES[shape]
    sim = run_program("staging", config=_shape(stack_config("staging"), cluster=cluster, argocd=argocd))
    providers = sim.by_type(PROVIDER)
    expected = {p for p in (secret_provider, app_provider) if p}
    assert {(p.name, p.inputs.get("context")) for p in providers} == expected, f"{shape}: one per context"
    assert len(providers) == len(expected), f"{shape}: one provider per distinct context"
    secrets, applications = sim.by_type(SECRET), sim.by_type(APPLICATION)
    assert secrets and applications, f"{shape}: the stack registers pull Secrets and Applications"
    for res in secrets:
        _assert_provider(sim, res, secret_provider)
    for res in applications:
        _assert_provider(sim, res, app_provider)
        dest = res.inputs["spec"]["destination"]
        assert {k: v for k, v in dest.items() if k != "namespace"} == destination, res.urn
        assert not ("name" in dest and "server" in dest), f"{res.urn}: Argo CD rejects name and server"


def test_provider_names_say_their_role(
    run_program: Callable[..., Simulation], stack_config: Callable[[str], dict[str, Any]]
) -> None:
    cfg = stack_config("prod")
    cfg.pop("gitops-deploy:promote", None)
    sim = run_program("prod", config=cfg)
    by_name = {p.name: p.inputs["context"] for p in sim.by_type(PROVIDER)}
    assert by_name == {"argocd": "mgmt", "destination": "prod-eu-1"}
    # A context change updates one provider's input; the component URNs do not move.
    cfg["gitops-deploy:cluster"]["context"] = "prod-eu-2"
    moved = run_program("prod", config=cfg)
    components = lambda s: sorted(r.urn for r in s.resources if not r.custom)  # noqa: E731
    assert components(moved) == components(sim)
    assert {p.name: p.inputs["context"] for p in moved.by_type(PROVIDER)} == {
        "argocd": "mgmt",
        "destination": "prod-eu-2",
    }


def test_appproject_fences_the_stack(
    run_program: Callable[..., Simulation], stack_config: Callable[[str], dict[str, Any]]
) -> None:
    cfg = _shape(
        stack_config("staging"),
        cluster={"name": "stage-1", "context": "stage-1"},
        argocd={"context": "mgmt", "project": "team-staging", "manageProject": True},
    )
    apps = cfg["gitops-deploy:apps"]
    apps[1]["source"]["repoURL"] = "git@github.com:example-org/api-deploy.git"
    apps[1]["namespace"] = "api-staging"
    sim = run_program("staging", config=cfg)
    (project,) = sim.by_type(APPPROJECT)
    assert project.inputs["metadata"]["name"] == "team-staging"
    assert project.inputs["metadata"]["namespace"] == "argocd"
    assert project.inputs["metadata"]["finalizers"] == ["resources-finalizer.argocd.argoproj.io"]
    spec = project.inputs["spec"]
    assert spec["sourceRepos"] == sorted({a["source"]["repoURL"] for a in apps})
    assert "*" not in spec["sourceRepos"]
    assert spec["destinations"] == [
        {"name": "stage-1", "namespace": "api-staging"},
        {"name": "stage-1", "namespace": "web-staging"},
    ]
    assert spec["clusterResourceWhitelist"] == [{"group": "", "kind": "Namespace"}]
    provider = _provider_of(sim, project)
    assert provider is not None and provider.inputs["context"] == "mgmt"
    for app in sim.by_type(APPLICATION):
        assert project.urn in app.dependencies, f"{app.urn} must depend on the AppProject"
        assert app.inputs["spec"]["project"] == "team-staging"


def test_no_appproject_unless_managed(
    run_program: Callable[..., Simulation], stack_config: Callable[[str], dict[str, Any]]
) -> None:
    sim = run_program("dev", config=stack_config("dev"))
    assert sim.by_type(APPPROJECT) == []
    assert sim.by_type(PROVIDER) == []


@pytest.mark.parametrize(
    ("cluster", "argocd", "key"),
    [
        ({"name": "a", "server": "https://b"}, {}, "gitops-deploy:cluster:"),
        ({"context": "only-a-context"}, {}, "gitops-deploy:cluster:"),
        ({"server": "http://insecure:6443"}, {}, "gitops-deploy:cluster.server:"),
        ("prod-eu-1", {}, "gitops-deploy:cluster:"),
        (None, {"project": "default", "manageProject": True}, "gitops-deploy:argocd.manageProject:"),
        (None, {"manageProject": "yes"}, "gitops-deploy:argocd.manageProject:"),
    ],
)
def test_bad_cluster_config_registers_nothing(
    run_program: Callable[..., Simulation],
    stack_config: Callable[[str], dict[str, Any]],
    cluster: Any,
    argocd: dict[str, Any],
    key: str,
) -> None:
    with pytest.raises(ProgramFailed) as failed:
        run_program("dev", config=_shape(stack_config("dev"), cluster=cluster, argocd=argocd))
    assert key in str(failed.value.cause)
    assert str(failed.value.cause).count("\n  - ") == 1, "one error for one bad value"
    assert failed.value.resources == []
