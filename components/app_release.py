"""AppRelease: one app's pull secret, image, Argo CD Application and release gate, tied together."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s

from components.app_image import AppImage, AppImageArgs
from components.argo_application import ArgoApplication, ArgoApplicationArgs
from components.health import HealthCheck, HealthCheckArgs
from components.image_size import ImageSize, ImageSizeArgs
from components.registry_secret import RegistrySecret, RegistrySecretArgs
from model.config import AppConfig, ArgoCDConfig, ClusterConfig, RegistryConfig
from model.names import (
    APP_RELEASE_TYPE,
    ARGOCD_SUFFIX,
    HEALTH_SUFFIX,
    IMAGE_SIZE_SUFFIX,
    IMAGE_SUFFIX,
    REGISTRY_SUFFIX,
    pull_secret_name,
)
from model.release_trigger import ReleaseSpec, release_trigger


@dataclass(frozen=True)
class AppReleaseArgs:
    """Inputs of an AppRelease; secrets arrive as secret Outputs and never become props."""

    app: AppConfig
    """The app's validated config."""
    registry: RegistryConfig
    """The stack's registry."""
    argocd: ArgoCDConfig
    """Where Argo CD runs."""
    cluster: ClusterConfig
    """Where the pods run."""
    project_dir: Path
    """The Pulumi project directory."""
    registry_password: pulumi.Output[str]
    """Registry password, a secret Output."""
    health_headers: pulumi.Output[Mapping[str, str]]
    """Health-check request headers, a secret Output."""
    build_on_preview: bool = True
    """Build the image during preview."""
    build_depends_on: Sequence[pulumi.Resource] = ()
    """What the image build waits for (the registry preflight)."""
    application_depends_on: Sequence[pulumi.Resource] = ()
    """What the Application waits for (the AppProject, the namespace)."""
    destination_provider: k8s.Provider | None = None
    """Provider of the cluster where the pods run; None means the default provider."""
    argocd_provider: k8s.Provider | None = None
    """Provider of the cluster where Argo CD runs; None means the default provider."""
    secret_depends_on: Sequence[pulumi.Resource] = field(default_factory=tuple)
    """What the pull secret waits for (its namespace)."""
    promoted_digest: pulumi.Output[str] | None = None
    """The upstream stack's verified digest, when the stack promotes (the app's pin still wins)."""
    rollback_id: str | None = None
    """The rollback's id (`gitops-deploy:rollbackId`), folded into a pinned app's health trigger."""


def _providers(provider: k8s.Provider | None) -> dict[str, pulumi.ProviderResource] | None:
    return {"kubernetes": provider} if provider is not None else None


class AppRelease(pulumi.ComponentResource):
    """Everything one app needs to ship, as children of one component."""

    image_digest: pulumi.Output[str]
    """`repository@sha256:...` the Application runs."""
    verified_digest: pulumi.Output[str]
    """The same digest, resolving only once this update's HealthCheck passed (never, when it fails)."""
    application_name: pulumi.Output[str]
    """Name of the Argo CD Application."""
    pull_secret_name: pulumi.Output[str]
    """Name of the image pull Secret."""

    def __init__(self, name: str, args: AppReleaseArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(APP_RELEASE_TYPE, name, None, opts)
        app = args.app
        secret = RegistrySecret(
            f"{name}{REGISTRY_SUFFIX}",
            RegistrySecretArgs(
                app=app.name,
                namespace=app.namespace,
                server=args.registry.server,
                username=args.registry.username,
                password=args.registry_password,
            ),
            opts=pulumi.ResourceOptions(
                parent=self,
                providers=_providers(args.destination_provider),
                depends_on=list(args.secret_depends_on),
            ),
        )
        image = AppImage(
            f"{name}{IMAGE_SUFFIX}",
            AppImageArgs(
                repository=app.image.repository,
                context=app.image.context,
                dockerfile=app.image.dockerfile,
                project_dir=args.project_dir,
                platform=app.image.platform,
                build_args=app.image.build_args,
                server=args.registry.server,
                username=args.registry.username,
                password=args.registry_password,
                build_on_preview=args.build_on_preview,
                pin=app.image.pin,
                promoted_digest=args.promoted_digest,
                depends_on=args.build_depends_on,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        size_bytes = self._image_size(name, args, image)
        application = ArgoApplication(
            f"{name}{ARGOCD_SUFFIX}",
            ArgoApplicationArgs(
                app=app.name,
                argocd_namespace=args.argocd.namespace,
                project=args.argocd.project,
                destination=args.cluster.destination(app.namespace),
                source=app.source,
                repository=app.image.repository,
                replicas=app.replicas,
                repo_digest=image.repo_digest,
                tag=image.tag,
                pull_secret=secret.secret_name,
                image_size_bytes=size_bytes,
                sync_timeout_seconds=args.argocd.sync_timeout_seconds,
                retry_refresh=args.argocd.retry_refresh,
                depends_on=[secret, *args.application_depends_on],
            ),
            opts=pulumi.ResourceOptions(parent=self, providers=_providers(args.argocd_provider)),
        )
        health = self._health_check(name, args, image, application)
        self.image_digest = image.repo_digest
        # `health.id` resolves when the engine answers the HealthCheck's registration, that is after its
        # create/update passed (or at once for an unchanged one); a failed check rejects it.
        self.verified_digest = pulumi.Output.all(health.id, image.repo_digest).apply(lambda v: str(v[1]))
        self.application_name = application.application_name
        self.pull_secret_name = secret.secret_name
        self.register_outputs(
            {
                "image_digest": self.image_digest,
                "verified_digest": self.verified_digest,
                "application_name": self.application_name,
                "pull_secret_name": self.pull_secret_name,
            }
        )

    def _image_size(self, name: str, args: AppReleaseArgs, image: AppImage) -> pulumi.Output[str]:
        """The image's compressed size (in a preview, of the local build) as a whole-number string."""
        size = ImageSize(
            f"{name}{IMAGE_SIZE_SUFFIX}",
            ImageSizeArgs(
                image=image.image_ref,
                tag=image.tag,
                server=args.registry.server,
                username=args.registry.username,
                password=args.registry_password,
                platform=args.app.image.platform,
                insecure=args.registry.insecure,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        return size.annotation

    def _health_check(
        self, name: str, args: AppReleaseArgs, image: AppImage, application: ArgoApplication
    ) -> HealthCheck:
        """Gate the release on its live endpoint, after Argo CD reports it Synced and Healthy."""
        health = args.app.health
        return HealthCheck(
            f"{name}{HEALTH_SUFFIX}",
            HealthCheckArgs(
                settings=health,
                headers=args.health_headers,
                trigger=self._trigger(args, image),
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[application.application]),
        )

    @staticmethod
    def _trigger(args: AppReleaseArgs, image: AppImage) -> pulumi.Output[str]:
        """The health gate's trigger: changes whenever what the Application hands Argo CD changes."""
        app = args.app
        # Only a pinned app carries the rollback's id: it is what a rollback deploys, and its stored
        # trigger is still the release it restores (see model/release_trigger.py).
        rollback_id = args.rollback_id if app.image.pin is not None else None

        def spec(values: list[str]) -> str:
            digest, tag = values
            return release_trigger(
                ReleaseSpec(
                    repo_url=app.source.repo_url,
                    target_revision=app.source.target_revision,
                    path=app.source.path,
                    source_type=app.source.type,
                    image_name=app.source.image_name,
                    workload=app.source.workload,
                    replicas=app.replicas,
                    destination=dict(args.cluster.destination(app.namespace)),
                    project=args.argocd.project,
                    image_digest=digest,
                    image_tag=tag,
                    pull_secret=pull_secret_name(app.name),
                    rollback_id=rollback_id,
                )
            )

        return pulumi.Output.all(image.repo_digest, image.tag).apply(spec)
