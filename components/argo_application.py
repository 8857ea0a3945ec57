"""ArgoApplication: the Argo CD Application that rolls one app out, pinned to its image digest."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.argo_wait import wait_for
from model.config import DEFAULT_SYNC_TIMEOUT_SECONDS, SourceConfig
from model.names import (
    APP_NAME_LABEL,
    APPLICATION_SUFFIX,
    ARGO_APPLICATION_TYPE,
    ARGOCD_FINALIZER,
    IMAGE_SIZE_ANNOTATION,
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


def sync_policy(retry_refresh: bool) -> dict[str, Any]:
    """`spec.syncPolicy`; `retry.refresh` only when asked, as CRDs before Argo CD v3.2.0 lack the field.

    With `refresh: true` a retried sync re-resolves the target revision (argoproj/argo-cd PR 23038,
    controller/appcontroller.go processRequestedAppOperation), so a fix pushed to the chart's or
    overlay's branch is picked up while the failing sync still retries.
    """
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
    """`spec.source` for a Helm chart: the values contract the chart must honour.

    Only the image's digest, tag and pull secret may be Outputs: in a preview before the push the
    digest is unknown, and everything else (the replica count the policies judge, the chart that is
    rendered) stays known.
    """
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


DELETE_TIMEOUT_SECONDS = 600
"""How long removing an Application (an app taken out of the config, `pulumi destroy`) may wait.

pulumi-kubernetes bounds a delete's wait by the resource's `customTimeouts.delete`, else by the
`pulumi.com/timeoutSeconds` annotation, else by 10 minutes (the provider's rule and its sources:
tests/support/k8s_await.py `wait_bound_seconds`). The annotation is the sync wait's, too short for
Argo CD's finalizer to prune the app's resources first: so the delete gets its own bound, the
provider's default. The engine sends the delete timeout kept in the state, so a state written before
this bound existed keeps the old one until the next `up` rewrites it; a removal that times out anyway
leaves the Application deleting in the cluster, and running the same `up` (or `destroy`) again waits
for it afresh.
"""


PULL_SECRET_KINDS = "Deployment|StatefulSet"
"""The kinds the pull-secret patch targets (a kustomize selector is an anchored regular expression)."""


def pull_secret_patch(pull_secret: str) -> str:
    """A strategic-merge patch adding the app's pull secret to a workload's pod template.

    kustomize merges `imagePullSecrets` by name, so secrets the overlay lists itself are kept; with a
    `target` the patch applies to every selected object whatever name the patch carries.
    """
    return (
        "apiVersion: apps/v1\n"
        "kind: Deployment\n"
        "metadata:\n"
        "  name: pull-secret\n"
        "spec:\n"
        "  template:\n"
        "    spec:\n"
        "      imagePullSecrets:\n"
        f"        - name: {pull_secret}\n"
    )


def kustomize_source(
    source: SourceConfig,
    app: str,
    repository: str,
    digest: pulumi.Input[str],
    replicas: int,
    pull_secret: pulumi.Input[str],
) -> dict[str, Any]:
    """`spec.source` for a kustomize overlay, which any number of apps can share unedited.

    What Argo CD applies to the overlay (argoproj/argo-cd util/kustomize/kustomize.go, `Build`):
    `namePrefix` `<app>-` keeps two apps' objects apart in one namespace, and the app's name label
    (with selectors) keeps their pods apart; `images` pins the overlay's image by digest; `replicas`
    names the workload as the overlay writes it (kustomize also matches the name before the prefix);
    a patch hands every Deployment and StatefulSet the app's pull secret. Only the digest and the pull
    secret may be Outputs, as for Helm.
    """
    prefix = f"{source.image_name}={repository}@"
    image = prefix + digest if isinstance(digest, str) else pulumi.Output.concat(prefix, digest)
    patch = (
        pull_secret_patch(pull_secret)
        if isinstance(pull_secret, str)
        else pulumi.Output.concat(pull_secret).apply(pull_secret_patch)
    )
    return {
        "repoURL": source.repo_url,
        "targetRevision": source.target_revision,
        "path": source.path,
        "kustomize": {
            "namePrefix": f"{app}-",
            "commonLabels": {APP_NAME_LABEL: app},
            "images": [image],
            "replicas": [{"name": source.workload, "count": replicas}],
            "patches": [{"target": {"kind": PULL_SECRET_KINDS}, "patch": patch}],
        },
    }


@dataclass(frozen=True)
class ArgoApplicationArgs:
    """Inputs of an ArgoApplication."""

    app: str
    """App name, which names the Application."""
    argocd_namespace: str
    """Namespace of Argo CD, where the Application lives."""
    project: str
    """Argo CD project."""
    destination: dict[str, str]
    """`spec.destination`: `{server|name, namespace}`."""
    source: SourceConfig
    """Where the manifests come from."""
    repository: str
    """The image's repository (config's `image.repository`), which every digest it runs is in."""
    replicas: int
    """Replica count handed to the chart or overlay."""
    repo_digest: pulumi.Input[str]
    """`repository@sha256:...` of the image to run."""
    tag: pulumi.Input[str]
    """Content tag of the image (Helm `image.tag`; the digest wins)."""
    pull_secret: pulumi.Input[str]
    """Name of the image pull Secret in the destination namespace."""
    image_size_bytes: pulumi.Input[str]
    """Whole-number string from the registry, for the image-size policy."""
    sync_timeout_seconds: int = DEFAULT_SYNC_TIMEOUT_SECONDS
    """How long `pulumi up` waits for Argo CD to run this release, Synced and Healthy."""
    retry_refresh: bool = True
    """Set `syncPolicy.retry.refresh` (Argo CD v3.2.0 and later)."""
    depends_on: Sequence[pulumi.Resource] = ()
    """What the Application itself waits for (its AppProject, its pull secret)."""


def _digest_of(repo_digest: str, repository: str) -> str:
    """The digest of `repository@sha256:...`, which must be in the app's own repository."""
    found, digest = split_digest(repo_digest)
    if found != repository:
        raise ValueError(f"image {repo_digest!r} is not in the app's repository {repository!r}")
    return digest


def release_wait_for(args: ArgoApplicationArgs) -> pulumi.Output[str]:
    """The `pulumi.com/waitFor` annotation for the release this update declares.

    Built from the same digest Output as the source, so it names the same digest; unknown when the
    digest is (a preview before the push).
    """
    workload = ReleaseWorkload(
        args.destination["namespace"], workload_name(args.app, args.source.type, args.source.workload)
    )
    return pulumi.Output.from_input(args.repo_digest).apply(
        lambda d: wait_for(args.source, *split_digest(d), args.replicas, workload)
    )


class ArgoApplication(pulumi.ComponentResource):
    """An `argoproj.io/v1alpha1` Application with automated, retried sync, awaited until Healthy."""

    application_name: pulumi.Output[str]
    """`metadata.name` of the Application."""

    def __init__(
        self, name: str, args: ArgoApplicationArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(ARGO_APPLICATION_TYPE, name, None, opts)
        digest = pulumi.Output.from_input(args.repo_digest).apply(
            lambda ref: _digest_of(ref, args.repository)
        )
        if args.source.type == "helm":
            source = helm_source(
                args.source, args.repository, digest, args.tag, args.replicas, args.pull_secret
            )
        else:
            source = kustomize_source(
                args.source, args.app, args.repository, digest, args.replicas, args.pull_secret
            )
        application = k8s.apiextensions.CustomResource(
            f"{name}{APPLICATION_SUFFIX}",
            api_version="argoproj.io/v1alpha1",
            kind="Application",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=args.app,
                namespace=args.argocd_namespace,
                labels=app_labels(args.app),
                finalizers=[ARGOCD_FINALIZER],
                annotations={
                    WAIT_FOR_ANNOTATION: release_wait_for(args),
                    TIMEOUT_ANNOTATION: str(args.sync_timeout_seconds),
                    IMAGE_SIZE_ANNOTATION: args.image_size_bytes,
                },
            ),
            spec={
                "project": args.project,
                "destination": args.destination,
                "source": source,
                "syncPolicy": sync_policy(args.retry_refresh),
            },
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=list(args.depends_on),
                custom_timeouts=pulumi.CustomTimeouts(delete=f"{DELETE_TIMEOUT_SECONDS}s"),
            ),
        )
        self.application = application
        # The name is known from config, but taking it from the resource carries the dependency.
        self.application_name = application.id.apply(lambda _: args.app)
        self.register_outputs({"application_name": self.application_name})
