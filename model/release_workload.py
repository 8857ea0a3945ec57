"""The release's workload: the entry of an Application's `status.resources[]` whose health is the release's.

Rules, from argoproj/argo-cd v3.5.1 (its gitops-engine is vendored there under gitops-engine/):

- The app's health is the worst health of its managed resources (controller/health.go
  `setApplicationHealth`), and a HorizontalPodAutoscaler whose metrics are unavailable is Degraded
  (gitops-engine/pkg/health/health_hpa.go). So with a chart's autoscaling on in a cluster without
  metrics the app is Degraded whatever its pods do; the release is judged on its workload instead,
  both by the wait (components/argo_wait.py) and by the deploy's early stop (deploy/argo_status.py).
- Each entry of `status.resources[]` is a ResourceStatus: `group` (omitted for the core group),
  `version`, `kind`, `namespace`, `name`, `status`, `health.status` (pkg/apis/application/v1alpha1/
  types.go).
- `health` is on those entries only when the controller persists it. From Argo CD v3.0 it does not by
  default (`--persist-resource-health`, ConfigMap argocd-cmd-params-cm `controller.resource.health.persist`,
  default false: cmd/argocd-application-controller/commands/argocd_application_controller.go,
  docs/operator-manual/upgrading/2.14-3.0.md): it then writes `status.resourceHealthSource: appTree`
  (controller/health.go) and keeps each resource's health in the resource tree, which only Argo CD's
  API server serves. On such an Application only the app's health can be read.

Which object is the workload follows from what the program declares: a chart names its objects after
the release, the app's name (README "The chart's values contract"); an overlay's workload is
`<app>-<source.workload>`, the Application's namePrefix on the overlay's name (README "The overlay's
naming rule"); it runs in the app's destination namespace. Of the objects a chart may name after the
release (Service, HPA, ServiceAccount, Ingress, PodDisruptionBudget, a Job, ...), only the kinds in
WORKLOAD_KINDS run its pods with the replica count.
"""

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
