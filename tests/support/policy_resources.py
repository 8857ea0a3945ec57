"""Hand-built resources shaped like what the program registers, for the policy pack's tests."""

from __future__ import annotations

import copy
from typing import Any

from components.argo_application import SYNC_POLICY, helm_source, kustomize_source
from model.config import SourceConfig
from model.names import (
    APP_PROJECT_TYPE,
    APP_RELEASE_TYPE,
    APPLICATION_TYPE,
    ARGO_APPLICATION_TYPE,
    DOCKERCONFIGJSON,
    HEALTH_CHECK_TYPE,
    IMAGE_SIZE_ANNOTATION,
    IMAGE_SIZE_TYPE,
    MANAGED_BY,
    PROJECT,
    PULL_SECRET_ROLE,
    SECRET_TYPE,
)
from policy_check.analyzer_client import PolicyInput

STACK = "dev"
REPO = "registry.example.com/platform/web"
DIGEST = "sha256:" + "ab" * 32
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"


def urn(type_: str, name: str, parents: tuple[str, ...] = ()) -> str:
    """A URN in the program's stack, under the given parent types."""
    qualified = "$".join((*parents, type_))
    return f"urn:pulumi:{STACK}::{PROJECT}::{qualified}::{name}"


def app_urn(app: str = "web") -> str:
    """URN of an app's Application, under AppRelease and ArgoApplication as the program registers it."""
    return urn(APPLICATION_TYPE, f"{app}-argocd-application", (APP_RELEASE_TYPE, ARGO_APPLICATION_TYPE))


def application_props(
    app: str = "web",
    *,
    engine: str = "helm",
    replicas: Any = 3,
    size: Any = "123456789",
    project: str = "gitops-deploy-dev",
    repo: str = REPO,
    digest: str = DIGEST,
    image_name: str = "web",
    managed: bool = True,
) -> dict[str, Any]:
    """An Application's props as components/argo_application.py builds them."""
    source = SourceConfig(
        repo_url="https://github.com/example-org/gitops-deploy.git",
        target_revision="main",
        path="examples/app/chart" if engine == "helm" else "examples/app/kustomize",
        type="helm" if engine == "helm" else "kustomize",
        image_name=image_name,
        workload=app,
    )
    spec_source = (
        helm_source(source, repo, digest, "c0ffee", 3, f"{app}-registry")
        if engine == "helm"
        else kustomize_source(source, app, repo, digest, 3, f"{app}-registry")
    )
    if engine == "helm":
        spec_source["helm"]["valuesObject"]["replicaCount"] = replicas
    else:
        spec_source["kustomize"]["replicas"][0]["count"] = replicas
    annotations = {"pulumi.com/timeoutSeconds": "600"}
    if size is not None:
        annotations[IMAGE_SIZE_ANNOTATION] = size
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {
            "name": app,
            "namespace": "argocd",
            "labels": {**(MANAGED_BY if managed else {}), "app.kubernetes.io/name": app},
            "annotations": annotations,
        },
        "spec": {
            "project": project,
            "destination": {"server": "https://kubernetes.default.svc", "namespace": f"{app}-dev"},
            "source": spec_source,
            "syncPolicy": copy.deepcopy(SYNC_POLICY),
        },
    }


def application(app: str = "web", **kwargs: Any) -> PolicyInput:
    """An Application as a policy input."""
    return PolicyInput(
        app_urn(app), APPLICATION_TYPE, f"{app}-argocd-application", application_props(app, **kwargs)
    )


def workload(
    kind: str = "Deployment",
    name: str = "web",
    *,
    replicas: Any = 3,
    image: str = f"{REPO}@{DIGEST}",
    resources: dict[str, Any] | None = None,
    parent: str = "",
) -> PolicyInput:
    """A Deployment or StatefulSet (rendered from `parent` when given)."""
    container: dict[str, Any] = {"name": "app", "image": image}
    container["resources"] = (
        resources
        if resources is not None
        else {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}}
    )
    spec: dict[str, Any] = {"template": {"spec": {"containers": [container]}}}
    if replicas is not None:
        spec["replicas"] = replicas
    type_ = f"kubernetes:apps/v1:{kind}"
    props = {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": "web-dev"},
        "spec": spec,
    }
    parents = (APP_RELEASE_TYPE, ARGO_APPLICATION_TYPE, APPLICATION_TYPE) if parent else ()
    return PolicyInput(urn(type_, name, parents), type_, name, props, parent=parent)


def hpa(min_replicas: Any, name: str = "web", *, version: str = "v2", parent: str = "") -> PolicyInput:
    """A HorizontalPodAutoscaler (autoscaling/<version>) of the Deployment `name` (rendered from `parent`)."""
    type_ = f"kubernetes:autoscaling/{version}:HorizontalPodAutoscaler"
    target = {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
    spec: dict[str, Any] = {"maxReplicas": 10, "scaleTargetRef": target}
    if min_replicas is not None:
        spec["minReplicas"] = min_replicas
    props = {
        "apiVersion": f"autoscaling/{version}",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "namespace": "web-dev"},
        "spec": spec,
    }
    parents = (APP_RELEASE_TYPE, ARGO_APPLICATION_TYPE, APPLICATION_TYPE) if parent else ()
    return PolicyInput(urn(type_, name, parents), type_, name, props, parent=parent)


def image_size(size: Any, app: str = "web") -> PolicyInput:
    """The ImageSize dynamic resource with its `size_bytes` output."""
    type_ = IMAGE_SIZE_TYPE
    props = {"image": f"{REPO}@{DIGEST}", "size_bytes": size}
    return PolicyInput(
        urn(type_, f"{app}-image-size", (APP_RELEASE_TYPE,)), type_, f"{app}-image-size", props
    )


def health_check(depends_on: tuple[str, ...], app: str = "web") -> PolicyInput:
    """The HealthCheck dynamic resource, depending on the given URNs."""
    type_ = HEALTH_CHECK_TYPE
    props = {"url": f"https://{app}.example.com/healthz"}
    name = f"{app}-health"
    return PolicyInput(urn(type_, name, (APP_RELEASE_TYPE,)), type_, name, props, dependencies=depends_on)


def pull_secret(type_value: str = DOCKERCONFIGJSON) -> PolicyInput:
    """The app's pull Secret; its data is a secret envelope, as on the wire."""
    type_ = SECRET_TYPE
    secret = {
        "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270",
        "value": {".dockerconfigjson": "c2VjcmV0"},
    }
    props = {
        "metadata": {
            "name": "web-registry",
            "namespace": "web-dev",
            "labels": PULL_SECRET_ROLE,
        },
        "type": type_value,
        "data": secret,
    }
    return PolicyInput(urn(type_, "web-registry-pull-secret"), type_, "web-registry-pull-secret", props)


def app_project(source_repos: list[str], destinations: list[dict[str, str]]) -> PolicyInput:
    """An Argo CD AppProject."""
    type_ = APP_PROJECT_TYPE
    props = {
        "metadata": {"name": "gitops-deploy-dev", "namespace": "argocd"},
        "spec": {"sourceRepos": source_repos, "destinations": destinations},
    }
    return PolicyInput(urn(type_, "project-appproject"), type_, "project-appproject", props)
