"""App namespaces that may already exist: one NamespacePatch each, kept on delete, with its old URN."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from google.protobuf import json_format

import policy_check.simulate as simulate_module
from model.names import (
    MANAGED_BY,
    NAMESPACE_PATCH_TYPE,
    NAMESPACE_TYPE,
    PROJECT,
    STACK_TYPE,
    namespace_resource_name,
)
from policy_check.promotion import PROMOTE_KEY
from policy_check.simulate import Simulation

PROVIDER = "pulumi:providers:kubernetes"


def collapse_alias(
    spec: dict[str, Any], *, name: str, type_: str, parent: str, project: str, stack: str
) -> str:
    """The URN an alias spec stands for, as the engine computes it.

    pulumi/pulumi `pkg/resource/deploy/step_generator.go` `collapseAliasToUrn`: an empty name or type
    is the resource's own; an empty parent is the resource's parent; a parent that is the root stack
    means no parent; then `resource.CreateURN` (`sdk/go/common/resource/alias.go`).
    """
    alias_parent = spec.get("parentUrn") or parent
    if spec.get("noParent") or alias_parent.split("::")[2] == STACK_TYPE:
        alias_parent = ""
    alias_type, alias_name = spec.get("type") or type_, spec.get("name") or name
    if not alias_parent:
        prefix = f"urn:pulumi:{spec.get('stack') or stack}::{spec.get('project') or project}::"
    else:
        prefix = alias_parent[: alias_parent.rindex("::")] + "$"
    return f"{prefix}{alias_type}::{alias_name}"


@pytest.fixture
def requests(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, dict[str, Any]]]:
    """The raw RegisterResource requests of NamespacePatch resources (options the recording leaves out)."""
    seen: dict[str, dict[str, Any]] = {}

    class Monitor(simulate_module._RecordingMonitor):
        def RegisterResource(self, request: Any) -> Any:
            if request.type == NAMESPACE_PATCH_TYPE:
                seen[request.name] = json_format.MessageToDict(request)
            return super().RegisterResource(request)

    monkeypatch.setattr(simulate_module, "_RecordingMonitor", Monitor)
    yield seen


def _config(stack_config: Callable[[str], dict[str, Any]], **cluster: str) -> dict[str, Any]:
    cfg = stack_config("staging")
    cfg.pop(PROMOTE_KEY, None)
    cfg.pop("gitops-deploy:cluster", None)
    apps = cfg["gitops-deploy:apps"]
    apps[0]["namespace"], apps[1]["namespace"] = "team-a", "team-b"
    if cluster:
        cfg["gitops-deploy:cluster"] = cluster
    return cfg


@pytest.mark.parametrize(
    ("cluster", "provider"),
    [({}, None), ({"name": "remote", "context": "remote-ctx"}, ("destination", "remote-ctx"))],
    ids=["in-cluster", "destination-context"],
)
def test_each_namespace_is_patched_on_the_destination_cluster(
    run_program: Callable[..., Simulation],
    stack_config: Callable[[str], dict[str, Any]],
    requests: dict[str, dict[str, Any]],
    cluster: dict[str, str],
    provider: tuple[str, str] | None,
) -> None:
    sim = run_program("staging", config=_config(stack_config, **cluster))
    assert sim.by_type(NAMESPACE_TYPE) == [], "no plain Namespace: its create fails when one exists"
    patches = {r.name: r for r in sim.by_type(NAMESPACE_PATCH_TYPE)}
    assert sorted(patches) == [namespace_resource_name("team-a"), namespace_resource_name("team-b")]
    for ns in ("team-a", "team-b"):
        res = patches[namespace_resource_name(ns)]
        assert res.inputs["apiVersion"] == "v1" and res.inputs["kind"] == "Namespace", res.urn
        assert res.inputs["metadata"] == {"name": ns, "labels": dict(MANAGED_BY)}, res.urn
        assert "spec" not in res.inputs, f"{res.urn}: the stack owns the labels, nothing else"
        assert res.parent.split("::")[2] == STACK_TYPE, f"{res.urn}: parent is {res.parent}"
        if provider is None:
            assert res.provider == "", f"{res.urn}: default provider expected"
        else:
            explicit = sim.get(res.provider.rsplit("::", 1)[0])
            assert (explicit.type, explicit.name, explicit.inputs["context"]) == (PROVIDER, *provider)
    # Each app's pull secret waits for its namespace (through its RegistrySecret component).
    for secret in sim.by_type("kubernetes:core/v1:Secret"):
        ns = secret.inputs["metadata"]["namespace"]
        parent = sim.get(secret.parent)
        assert patches[namespace_resource_name(ns)].urn in parent.dependencies, secret.urn


def test_namespaces_are_kept_on_delete_and_keep_their_old_urn(
    run_program: Callable[..., Simulation],
    stack_config: Callable[[str], dict[str, Any]],
    requests: dict[str, dict[str, Any]],
) -> None:
    sim = run_program("staging", config=_config(stack_config))
    for res in sim.by_type(NAMESPACE_PATCH_TYPE):
        request = requests[res.name]
        # Deleting it from the stack never touches the cluster (DeleteStep.Apply skips retained ones).
        assert request.get("retainOnDelete") is True, res.urn
        # Earlier versions declared `kubernetes:core/v1:Namespace` with the same name and parent: the
        # alias makes the engine take that state as this resource's (an OpSame, no create or delete).
        old_urn = f"urn:pulumi:staging::{PROJECT}::{NAMESPACE_TYPE}::{res.name}"
        aliases = [
            collapse_alias(
                a["spec"], name=res.name, type_=res.type, parent=res.parent, project=PROJECT, stack="staging"
            )
            for a in request.get("aliases", [])
        ]
        assert aliases == [old_urn], aliases


def test_collapse_alias_follows_the_engine_rules() -> None:
    parent = f"urn:pulumi:s::p::{STACK_TYPE}::p-s"
    assert collapse_alias(
        {"type": "a:b:C"}, name="n", type_="a:b:D", parent=parent, project="p", stack="s"
    ) == ("urn:pulumi:s::p::a:b:C::n")
    component = "urn:pulumi:s::p::x:y:Z::comp"
    assert collapse_alias(
        {"name": "old"}, name="n", type_="a:b:D", parent=component, project="p", stack="s"
    ) == ("urn:pulumi:s::p::x:y:Z$a:b:D::old")
    assert collapse_alias(
        {"noParent": True}, name="n", type_="a:b:D", parent=component, project="p", stack="s"
    ) == ("urn:pulumi:s::p::a:b:D::n")
