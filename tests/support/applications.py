"""Build a stack's Argo CD Application resources from its config, exactly as ArgoApplication shapes them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from components.argo_application import helm_source, kustomize_source, split_digest
from model.config import IN_CLUSTER_SERVER, SourceConfig
from model.names import APPLICATION_TYPE
from model.stack_files import read_stack_config
from policy_check.simulate import SimResource, fake_digest

APPLICATION_CHAIN = "gitops-deploy:index:AppRelease$gitops-deploy:index:ArgoApplication$" + APPLICATION_TYPE
"""Type chain of an Application in the program: AppRelease > ArgoApplication > Application."""


def _raw_apps(values: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The stack's raw `argocd`/`cluster` settings and `apps` list."""
    settings = {
        "argocd": values.get("gitops-deploy:argocd") or {},
        "cluster": values.get("gitops-deploy:cluster") or {},
    }
    return settings, list(values.get("gitops-deploy:apps") or [])


def source_config(app: dict[str, Any]) -> SourceConfig:
    """The app's SourceConfig, with imageName and workload defaulting as config.py does."""
    src = app["source"]
    return SourceConfig(
        repo_url=src["repoURL"],
        target_revision=src.get("targetRevision", "HEAD"),
        path=src["path"],
        type=src["type"],
        image_name=src.get("imageName") or app["image"]["repository"],
        workload=src.get("workload") or app["name"],
    )


def built_digest(app: dict[str, Any]) -> str:
    """`repository@sha256:...` standing in for the image the stack built for the app."""
    repository = app["image"]["repository"]
    return f"{repository}@{fake_digest(repository + ':' + app['name'])}"


def application(
    stack: str, settings: dict[str, Any], app: dict[str, Any], source: dict[str, Any] | None = None
) -> SimResource:
    """One Application as ArgoApplication registers it (camelCase inputs); `source` overrides it."""
    digest = built_digest(app)
    name, replicas = app["name"], int(app.get("replicas", 2))
    if source is None:
        if app["source"]["type"] == "helm":
            repository, sha = split_digest(digest)
            source = helm_source(source_config(app), repository, sha, "c0ffee", replicas, f"{name}-registry")
        else:
            source = kustomize_source(
                source_config(app), name, *split_digest(digest), replicas, f"{name}-registry"
            )
    cluster = settings["cluster"]
    server = cluster.get("server") or IN_CLUSTER_SERVER
    destination = {"name": cluster["name"]} if cluster.get("name") else {"server": server}
    inputs = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": name, "namespace": settings["argocd"].get("namespace", "argocd")},
        "spec": {
            "project": settings["argocd"].get("project", "default"),
            "destination": {**destination, "namespace": app["namespace"]},
            "source": source,
        },
    }
    name = f"{name}-argocd-application"
    return SimResource(
        urn=f"urn:pulumi:{stack}::gitops-deploy::{APPLICATION_CHAIN}::{name}",
        type=APPLICATION_TYPE,
        name=name,
        custom=True,
        parent="",
        provider="",
        dependencies=(),
        inputs=inputs,
        secret_paths=frozenset(),
        outputs=inputs,
    )


def stack_applications(stack: str, project_dir: Path) -> list[SimResource]:
    """Every Application of a stack, from its stack file."""
    settings, apps = _raw_apps(read_stack_config(stack, project_dir))
    return [application(stack, settings, app) for app in apps]
