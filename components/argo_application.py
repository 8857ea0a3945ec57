"""ArgoApplication: the Argo CD Application that rolls one app out, pinned to its image digest."""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.argo_wait import wait_for
from model.config import AppConfig, SourceConfig, StackConfig
from model.names import (
    APP_NAME_LABEL,
    APPLICATION_SUFFIX,
    ARGO_APPLICATION_TYPE,
    ARGOCD_FINALIZER,
    IMAGE_SIZE_ANNOTATION,
    PULL_SECRET_WORKLOADS,
    PULL_SECRETS_ANNOTATION,
    PULL_SECRETS_APPEND,
    PULL_SECRETS_PATH,
    TIMEOUT_ANNOTATION,
    WAIT_FOR_ANNOTATION,
    app_labels,
)
from model.release_workload import ReleaseWorkload, workload_name

SYNC_POLICY: dict[str, Any] = {
    "automated": {"prune": True, "selfHeal": True},
    "syncOptions": ["CreateNamespace=true"],
    "retry": {"limit": 3, "backoff": {"duration": "10s", "factor": 2, "maxDuration": "3m"}},
}
"""`spec.syncPolicy` without `retry.refresh`, the shape every Argo CD release accepts."""
DELETE_TIMEOUT_SECONDS = 600
"""How long removing an Application may wait: Argo CD's finalizer prunes the app's resources first
(docs/engine-rules.md#application-delete)."""
PULL_SECRET_KINDS = "|".join(PULL_SECRET_WORKLOADS)
"""The pull-secret patches' `target.kind` (a kustomize selector is an anchored regular expression)."""


def sync_policy(retry_refresh: bool) -> dict[str, Any]:
    """`spec.syncPolicy`; `retry.refresh` only when asked, as CRDs before Argo CD v3.2.0 lack the field
    (docs/engine-rules.md#argo-cd-sync-retry-refresh)."""
    policy = copy.deepcopy(SYNC_POLICY)
    if retry_refresh:
        policy["retry"]["refresh"] = True
    return policy


def split_digest(repo_digest: str) -> tuple[str, str]:
    """`repo@sha256:x` -> (`repo`, `sha256:x`)."""
    repository, sep, digest = repo_digest.partition("@")
    if not sep or not digest.startswith("sha256:"):
        raise ValueError(f"expected an image digest reference 'repository@sha256:...', got {repo_digest!r}")
    return repository, digest


def helm_source(
    source: SourceConfig,
    repository: str,
    digest: pulumi.Input[str],
    tag: pulumi.Input[str],
    replicas: int,
    pull_secret: pulumi.Input[str],
) -> dict[str, Any]:
    """`spec.source` for a Helm chart: the values contract the chart must honour; only the image's
    digest, tag and pull secret may be Outputs (unknown in a preview before the push)."""
    values = {
        "image": {"repository": repository, "tag": tag, "digest": digest},
        "replicaCount": replicas,
        "imagePullSecrets": [{"name": pull_secret}],
    }
    return {
        "repoURL": source.repo_url,
        "targetRevision": source.target_revision,
        "path": source.path,
        "helm": {"valuesObject": values},
    }


def _set_patch(pull_secret: str) -> str:
    secret = [{"name": pull_secret}]
    test = {"op": "test", "path": PULL_SECRETS_PATH, "value": None}  # fails where the workload lists its own
    return json.dumps([test, {"op": "add", "path": PULL_SECRETS_PATH, "value": secret}])


def _append_patch(pull_secret: str) -> str:
    return json.dumps([{"op": "add", "path": f"{PULL_SECRETS_PATH}/-", "value": {"name": pull_secret}}])


def pull_secret_patches(pull_secret: str | pulumi.Output[str]) -> list[dict[str, Any]]:
    """JSON 6902 patches handing every Deployment and StatefulSet the app's pull secret: set where the
    workload lists none (the render fails where it lists its own), appended where it is annotated to keep
    its own (docs/engine-rules.md#kustomize-source); only the patches' text waits on the secret's name."""
    patches = []
    for selector, build in (("!=", _set_patch), ("=", _append_patch)):
        target = {
            "kind": PULL_SECRET_KINDS,
            "annotationSelector": PULL_SECRETS_ANNOTATION + selector + PULL_SECRETS_APPEND,
        }
        text = build(pull_secret) if isinstance(pull_secret, str) else pull_secret.apply(build)
        patches.append({"target": target, "patch": text})
    return patches


def kustomize_source(
    source: SourceConfig,
    app: str,
    repository: str,
    digest: str | pulumi.Output[str],
    replicas: int,
    pull_secret: str | pulumi.Output[str],
) -> dict[str, Any]:
    """`spec.source` for a kustomize overlay, which any number of apps can share unedited
    (docs/engine-rules.md#kustomize-source); only the digest and the pull secret may be Outputs."""
    prefix = f"{source.image_name}={repository}@"
    image = prefix + digest if isinstance(digest, str) else digest.apply(prefix.__add__)
    return {
        "repoURL": source.repo_url,
        "targetRevision": source.target_revision,
        "path": source.path,
        "kustomize": {
            "namePrefix": f"{app}-",
            "commonLabels": {APP_NAME_LABEL: app},
            "images": [image],
            "replicas": [{"name": source.workload, "count": replicas}],
            "patches": pull_secret_patches(pull_secret),
        },
    }


def application_spec(
    app: AppConfig,
    cfg: StackConfig,
    digest: str | pulumi.Output[str],
    tag: str | pulumi.Output[str],
    pull_secret: str | pulumi.Output[str],
) -> dict[str, Any]:
    """The Application's `spec`; only the image's digest, tag and pull secret may be Outputs."""
    source, repository = app.source, app.image.repository
    if source.type == "helm":
        built = helm_source(source, repository, digest, tag, app.replicas, pull_secret)
    else:
        built = kustomize_source(source, app.name, repository, digest, app.replicas, pull_secret)
    return {
        "project": cfg.argocd.project,
        "destination": cfg.cluster.destination(app.namespace),
        "source": built,
        "syncPolicy": sync_policy(cfg.argocd.retry_refresh),
    }


def release_trigger(spec: Mapping[str, Any], rollback_id: str | None = None) -> str:
    """`sha256:<hex>` over the canonical JSON of the Application spec as built (and a rollback's id):
    equal releases give equal triggers (docs/engine-rules.md#health-trigger)."""
    document = json.dumps(
        _canonical({"spec": spec, "rollbackId": rollback_id}), sort_keys=True, separators=(",", ":")
    )
    return "sha256:" + hashlib.sha256(document.encode("ascii")).hexdigest()


def _canonical(value: Any) -> Any:
    """Whole floats as ints, as the engine carries every number as a float: `2` and `2.0` hash alike."""
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _digest_of(repo_digest: str, repository: str) -> str:
    """The digest of `repository@sha256:...`, which must be in the app's own repository."""
    found, digest = split_digest(repo_digest)
    if found != repository:
        raise ValueError(f"image {repo_digest!r} is not in the app's repository {repository!r}")
    return digest


class ArgoApplication(pulumi.ComponentResource):
    """An `argoproj.io/v1alpha1` Application with automated, retried sync, awaited until Healthy."""

    application_name: pulumi.Output[str]
    """`metadata.name` of the Application."""
    trigger: pulumi.Output[str]
    """`release_trigger` of the spec this update declares: the health gate re-runs when it changes."""

    def __init__(
        self,
        name: str,
        app: AppConfig,
        cfg: StackConfig,
        image: tuple[pulumi.Output[str], pulumi.Output[str]],
        pull_secret: pulumi.Output[str],
        image_size: pulumi.Output[str],
        depends_on: Sequence[pulumi.Resource],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """`image`: (`repository@sha256:...`, content tag) of the image to run; `image_size`: its bytes;
        `depends_on`: what the Application itself waits for (its pull secret, its AppProject)."""
        super().__init__(ARGO_APPLICATION_TYPE, name, None, opts)
        repo_digest, tag = image
        repository, source = app.image.repository, app.source
        digest = repo_digest.apply(lambda ref: _digest_of(ref, repository))

        spec = application_spec(app, cfg, digest, tag, pull_secret)
        # The wait names the same digest Output as the source; unknown when it is (a preview before the push).
        workload = ReleaseWorkload(app.namespace, workload_name(app.name, source.type, source.workload))
        waited = repo_digest.apply(lambda d: wait_for(source, *split_digest(d), app.replicas, workload))
        self.application = k8s.apiextensions.CustomResource(
            f"{name}{APPLICATION_SUFFIX}",
            api_version="argoproj.io/v1alpha1",
            kind="Application",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=app.name,
                namespace=cfg.argocd.namespace,
                labels=app_labels(app.name),
                finalizers=[ARGOCD_FINALIZER],
                annotations={
                    WAIT_FOR_ANNOTATION: waited,
                    TIMEOUT_ANNOTATION: str(cfg.argocd.sync_timeout_seconds),
                    IMAGE_SIZE_ANNOTATION: image_size,
                },
            ),
            spec=spec,
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=list(depends_on),
                custom_timeouts=pulumi.CustomTimeouts(delete=f"{DELETE_TIMEOUT_SECONDS}s"),
            ),
        )
        # Only a pinned app carries the rollback's id: a rollback pins the release its gate last passed.
        rollback_id = cfg.rollback_id if app.image.pin is not None else None
        # The same spec built again from the values of its Outputs, as walking the spec for them costs more.
        leaves = pulumi.Output.all(digest, tag, pull_secret)
        self.trigger = leaves.apply(lambda v: release_trigger(application_spec(app, cfg, *v), rollback_id))
        # The name is known from config, but taking it from the resource carries the dependency.
        self.application_name = self.application.id.apply(lambda _: app.name)
        self.register_outputs({"application_name": self.application_name})
