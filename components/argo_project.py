"""ArgoProject: the Argo CD AppProject that fences one stack's Applications."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from model.config import AppConfig, ClusterConfig
from model.names import APPPROJECT_SUFFIX, ARGO_PROJECT_TYPE, ARGOCD_FINALIZER, MANAGED_BY


def project_spec(apps: Sequence[AppConfig], cluster: ClusterConfig, description: str) -> dict[str, Any]:
    """Only this stack's repositories, namespaces and cluster; only Namespace at cluster scope."""
    namespaces = sorted({app.namespace for app in apps})
    return {
        "description": description,
        "sourceRepos": sorted({app.source.repo_url for app in apps}),
        "destinations": [cluster.destination(ns) for ns in namespaces],
        # CreateNamespace=true is the only cluster-scoped object an app may need.
        "clusterResourceWhitelist": [{"group": "", "kind": "Namespace"}],
    }


@dataclass(frozen=True)
class ArgoProjectArgs:
    """Inputs of an ArgoProject."""

    project: str
    """Name of the AppProject (never `default`)."""
    argocd_namespace: str
    """Namespace of Argo CD."""
    apps: Sequence[AppConfig]
    """The stack's apps, whose sources and namespaces the project allows."""
    cluster: ClusterConfig
    """The stack's destination cluster."""
    stack: str
    """Stack name, for the description."""


class ArgoProject(pulumi.ComponentResource):
    """An `argoproj.io/v1alpha1` AppProject scoped to exactly what the stack deploys."""

    project_name: pulumi.Output[str]
    """`metadata.name` of the AppProject."""

    def __init__(self, name: str, args: ArgoProjectArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(ARGO_PROJECT_TYPE, name, None, opts)
        project = k8s.apiextensions.CustomResource(
            f"{name}{APPPROJECT_SUFFIX}",
            api_version="argoproj.io/v1alpha1",
            kind="AppProject",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=args.project,
                namespace=args.argocd_namespace,
                labels=dict(MANAGED_BY),
                finalizers=[ARGOCD_FINALIZER],
            ),
            spec=project_spec(args.apps, args.cluster, f"gitops-deploy stack {args.stack}"),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.project_name = project.id.apply(lambda _: args.project)
        self.register_outputs({"project_name": self.project_name})
