"""The release's workload: the entry of an Application's `status.resources[]` whose health is the release's
(docs/engine-rules.md#argo-cd-application-health)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

WORKLOAD_KINDS = frozenset({("apps", "Deployment"), ("apps", "StatefulSet"), ("argoproj.io", "Rollout")})
"""(group, kind) of a release's workload: what runs its pods and takes the replica count the Application
hands it (a DaemonSet takes none; Argo Rollouts' Rollout stands in for a chart's Deployment)."""
APP_TREE = "appTree"
"""`status.resourceHealthSource` when the resources' health is not on the Application."""


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def workload_name(app: str, source_type: str, workload: str) -> str:
    """The workload's name as Argo CD lists it: the app's for a chart, `<app>-<workload>` for an overlay."""
    return f"{app}-{workload}" if source_type == "kustomize" else app


@dataclass(frozen=True)
class ReleaseWorkload:
    """The workload that runs one app's release."""

    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"

    def carries(self, resource: Mapping[str, Any]) -> bool:
        """This ResourceStatus is the release's workload."""
        kind = (resource.get("group") or "", resource.get("kind"))
        return (
            kind in WORKLOAD_KINDS
            and resource.get("name") == self.name
            and resource.get("namespace") == self.namespace
        )


def declared_workload(application: Mapping[str, Any]) -> ReleaseWorkload | None:
    """The release's workload as a read Application's spec declares it; None when it does not say.

    The program writes the app's name as `metadata.name`, the app's namespace as the destination and,
    for an overlay, `source.workload` as the one `kustomize.replicas` entry (components/argo_application.py).
    """
    app = _map(application.get("metadata")).get("name")
    spec = _map(application.get("spec"))
    namespace = _map(spec.get("destination")).get("namespace")
    source = _map(spec.get("source"))
    if not isinstance(app, str) or not app or not isinstance(namespace, str) or not namespace:
        return None
    if "kustomize" in source:
        replicas = _map(source["kustomize"]).get("replicas")
        first = _map(replicas[0]) if isinstance(replicas, list) and len(replicas) == 1 else {}
        workload = first.get("name")
        if not isinstance(workload, str) or not workload:
            return None
        return ReleaseWorkload(namespace, workload_name(app, "kustomize", workload))
    if "helm" in source:
        return ReleaseWorkload(namespace, workload_name(app, "helm", ""))
    return None


def resource_health_inline(application: Mapping[str, Any]) -> bool:
    """The Application carries each resource's health (`status.resources[].health`)."""
    return _map(application.get("status")).get("resourceHealthSource") != APP_TREE
