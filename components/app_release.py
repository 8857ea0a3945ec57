"""AppRelease: one app's pull secret, image, Argo CD Application and release gate, tied together."""

from __future__ import annotations

import base64
import functools
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_docker as docker
import pulumi_kubernetes as k8s
from pulumi.output import UNKNOWN

from components.argo_application import ArgoApplication
from components.health import HealthCheck, HealthCheckArgs
from components.image_size import ImageSize
from model.config import AppConfig, StackConfig, StackSecrets
from model.image_ref import is_repo_digest
from model.names import (
    APP_IMAGE_TYPE,
    APP_RELEASE_TYPE,
    ARGOCD_SUFFIX,
    DOCKERCONFIGJSON,
    HEALTH_SUFFIX,
    IMAGE_SIZE_SUFFIX,
    IMAGE_SUFFIX,
    PULL_SECRET_ROLE,
    PULL_SECRET_SUFFIX,
    REGISTRY_SECRET_TYPE,
    REGISTRY_SUFFIX,
    app_labels,
    pull_secret_name,
)


@dataclass(frozen=True)
class StackWiring:
    """What each app's release takes from the stack besides its config: secrets, providers, dependencies."""

    cfg: StackConfig
    secrets: StackSecrets
    preflight: pulumi.Resource
    """The registry preflight, which every build waits for."""
    namespaces: Mapping[str, pulumi.Resource]
    """Each app namespace's patch, which the app's pull secret waits for."""
    tags: Mapping[str, str]
    """Each built app's content tag, computed once per run."""
    project: Sequence[pulumi.Resource] = ()
    """The AppProject when the stack manages it: every Application waits for it."""
    promoted: Mapping[str, pulumi.Output[str]] = field(default_factory=dict)
    """Each promoted app's verified digest from the upstream stack (the app's pin still wins)."""
    argocd_provider: k8s.Provider | None = None
    """Provider of the cluster where Argo CD runs; None means the default provider."""
    destination_provider: k8s.Provider | None = None
    """Provider of the cluster where the pods run; None means the default provider."""
    soaked_before: Mapping[str, str] = field(default_factory=dict)
    """Each app's `soakedDigest` in the stack's last outputs, carried over while its release is the same."""


def soaked_digest(verified: str, *, soak_seconds: int, given: str | None, before: str | None) -> str:
    """The digest that passed its gate and its soak, or "" (not promotable): any verified digest when the
    app has no soak; else the one `python -m deploy` hands over after its soak passed, or the last update's
    while the release is still the same."""
    if soak_seconds == 0 or verified in (given, before):
        return verified
    return ""


def _providers(provider: k8s.Provider | None) -> dict[str, pulumi.ProviderResource] | None:
    return {"kubernetes": provider} if provider is not None else None


def dockerconfigjson(server: str, username: str, password: str) -> str:
    """The base64 `.dockerconfigjson` for one registry, as `kubectl create secret docker-registry` does."""
    auth = base64.b64encode(f"{username}:{password}".encode()).decode()
    config = {"auths": {server: {"username": username, "password": password, "auth": auth}}}
    return base64.b64encode(json.dumps(config, sort_keys=True).encode()).decode()


class RegistrySecret(pulumi.ComponentResource):
    """A `kubernetes.io/dockerconfigjson` Secret whose data is secret from end to end."""

    secret_name: pulumi.Output[str]
    """Name of the Secret, for `imagePullSecrets`."""

    def __init__(
        self, name: str, app: AppConfig, stack: StackWiring, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(REGISTRY_SECRET_TYPE, name, None, opts)
        registry = stack.cfg.registry
        # The password Output is secret, so everything derived from it stays secret.
        data = stack.secrets.registry_password.apply(
            lambda pw: dockerconfigjson(registry.server, registry.username, pw)
        )
        secret = k8s.core.v1.Secret(
            f"{name}{PULL_SECRET_SUFFIX}",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=pull_secret_name(app.name),
                namespace=app.namespace,
                labels={**app_labels(app.name), **PULL_SECRET_ROLE},
            ),
            type=DOCKERCONFIGJSON,
            data={".dockerconfigjson": pulumi.Output.secret(data)},  # type: ignore[arg-type]
            opts=pulumi.ResourceOptions(parent=self, additional_secret_outputs=["data", "stringData"]),
        )
        self.secret_name = secret.metadata.apply(lambda m: m.name or pull_secret_name(app.name))
        self.register_outputs({"secret_name": self.secret_name})


def pushed_digest(repo_digest: str) -> Any:
    """pulumi-docker's `repoDigest` when it names a pushed image; unknown in a preview that only built it
    (docs/engine-rules.md#pulumi-docker-in-preview); outside a preview it passes, so `split_digest` still
    judges it."""
    if pulumi.runtime.is_dry_run() and not is_repo_digest(repo_digest):
        return UNKNOWN
    return repo_digest


def local_image_id(repo_digest: str) -> str:
    """The local build's ID when pulumi-docker answered one in a preview; "" otherwise."""
    return repo_digest if pulumi.runtime.is_dry_run() and not is_repo_digest(repo_digest) else ""


class AppImage(pulumi.ComponentResource):
    """The app's image, built and pushed, pinned or promoted; referred to by digest everywhere downstream."""

    repo_digest: pulumi.Output[str]
    """`repository@sha256:...` of the pushed, pinned or promoted image; unknown (pending) in a preview."""
    local_image_id: pulumi.Output[str]
    """In a preview that built the image: its ID in the local engine (`sha256:...`); "" otherwise."""
    image_ref: pulumi.Output[str]
    """What ImageSize measures: the pushed, pinned or promoted digest, or in a preview the local image ID."""
    tag: pulumi.Output[str]
    """The content-derived tag the image was pushed with; empty for a pinned or promoted image."""

    def __init__(
        self, name: str, app: AppConfig, stack: StackWiring, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(APP_IMAGE_TYPE, name, None, opts)
        image, cfg = app.image, stack.cfg
        # A pin (the rollback path) wins over a promoted digest (build once, promote); neither is built here.
        given = image.pin if image.pin is not None else stack.promoted.get(app.name)
        tag = ""
        if given is not None:
            self.image_ref = self.repo_digest = pulumi.Output.from_input(given)
            self.local_image_id = pulumi.Output.from_input("")
        else:
            tag = stack.tags[app.name]
            built = docker.Image(
                f"{name}{IMAGE_SUFFIX}",
                image_name=f"{image.repository}:{tag}",
                build=docker.DockerBuildArgs(
                    # Relative paths keep the state independent of where the checkout is.
                    context=os.path.relpath(image.context, cfg.project_dir),
                    dockerfile=os.path.relpath(image.dockerfile, cfg.project_dir),
                    platform=image.platform,
                    args=dict(image.build_args) or None,
                ),
                registry=docker.RegistryArgs(
                    server=cfg.registry.server,
                    username=cfg.registry.username,
                    password=pulumi.Output.secret(stack.secrets.registry_password),
                ),
                build_on_preview=cfg.build.on_preview,
                skip_push=False,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[stack.preflight]),
            )
            self.image_ref = built.repo_digest
            self.repo_digest = built.repo_digest.apply(pushed_digest)
            self.local_image_id = built.repo_digest.apply(local_image_id)
        self.tag = pulumi.Output.from_input(tag)
        self.register_outputs(
            {"repo_digest": self.repo_digest, "local_image_id": self.local_image_id, "tag": self.tag}
        )


class AppRelease(pulumi.ComponentResource):
    """Everything one app needs to ship, as children of one component."""

    image_digest: pulumi.Output[str]
    """`repository@sha256:...` the Application runs."""
    verified_digest: pulumi.Output[str]
    """The same digest, resolving only once this update's HealthCheck passed (never, when it fails)."""
    soaked_digest: pulumi.Output[str]
    """The verified digest once it passed its soak too (`soaked_digest`); "" while it has not."""
    application_name: pulumi.Output[str]
    """Name of the Argo CD Application."""
    pull_secret_name: pulumi.Output[str]
    """Name of the image pull Secret."""

    def __init__(
        self, name: str, app: AppConfig, stack: StackWiring, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(APP_RELEASE_TYPE, name, None, opts)
        secret = RegistrySecret(
            f"{name}{REGISTRY_SUFFIX}",
            app,
            stack,
            opts=pulumi.ResourceOptions(
                parent=self,
                providers=_providers(stack.destination_provider),
                depends_on=[stack.namespaces[app.namespace]],
            ),
        )
        image = AppImage(f"{name}{IMAGE_SUFFIX}", app, stack, opts=pulumi.ResourceOptions(parent=self))
        size = ImageSize(
            f"{name}{IMAGE_SIZE_SUFFIX}",
            stack.cfg.registry,
            stack.secrets.registry_password,
            image=image.image_ref,
            tag=image.tag,
            platform=app.image.platform,
            opts=pulumi.ResourceOptions(parent=self),
        )
        application = ArgoApplication(
            f"{name}{ARGOCD_SUFFIX}",
            app,
            stack.cfg,
            image=(image.repo_digest, image.tag),
            pull_secret=secret.secret_name,
            image_size=size.annotation,
            depends_on=[secret, *stack.project],
            opts=pulumi.ResourceOptions(parent=self, providers=_providers(stack.argocd_provider)),
        )
        # The gate runs once Argo CD reports the release Synced and Healthy, and again when its spec changes.
        health = HealthCheck(
            f"{name}{HEALTH_SUFFIX}",
            HealthCheckArgs(app.health, stack.secrets.health_headers[app.name], application.trigger),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[application.application]),
        )
        self.image_digest = image.repo_digest
        # `health.id` resolves once the HealthCheck's create/update passed (at once for an unchanged one).
        self.verified_digest = pulumi.Output.all(health.id, image.repo_digest).apply(lambda v: str(v[1]))
        self.soaked_digest = self.verified_digest.apply(
            functools.partial(
                soaked_digest,
                soak_seconds=app.soak.seconds,
                given=stack.cfg.soaked.get(app.name),
                before=stack.soaked_before.get(app.name),
            )
        )
        self.application_name = application.application_name
        self.pull_secret_name = secret.secret_name
        self.register_outputs(
            {
                "image_digest": self.image_digest,
                "verified_digest": self.verified_digest,
                "soaked_digest": self.soaked_digest,
                "application_name": self.application_name,
                "pull_secret_name": self.pull_secret_name,
            }
        )
