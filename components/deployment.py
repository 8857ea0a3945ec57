"""Declare a whole stack from its validated config: providers, namespaces, project and one release per app."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from components.app_release import AppRelease, AppReleaseArgs
from components.argo_project import ArgoProject, ArgoProjectArgs
from components.config import StackConfig, StackSecrets
from components.names import MANAGED_BY
from components.registry_preflight import RegistryPreflight, RegistryPreflightArgs


def _providers(cfg: StackConfig) -> tuple[k8s.Provider | None, k8s.Provider | None]:
    """One explicit provider per distinct kube context that is set; none when no context is set."""
    argocd_ctx, dest_ctx = cfg.argocd.context, cfg.cluster.context
    argocd = k8s.Provider("argocd", context=argocd_ctx) if argocd_ctx else None
    if dest_ctx is None:
        destination = None
    elif dest_ctx == argocd_ctx:
        destination = argocd
    else:
        destination = k8s.Provider("destination", context=dest_ctx)
    return argocd, destination


def deploy(cfg: StackConfig, secrets: StackSecrets) -> dict[str, AppRelease]:
    """Register every resource of the stack and export each app's digest, Application and pull secret."""
    argocd_provider, destination_provider = _providers(cfg)
    if cfg.cluster_declared and cfg.cluster.context is None:
        pulumi.log.warn(
            "gitops-deploy:cluster has no 'context': pull secrets go to the default kube context's "
            "cluster, which must be the cluster the apps run in"
        )
    dest_opts = pulumi.ResourceOptions(provider=destination_provider)
    namespaces = {
        ns: k8s.core.v1.Namespace(
            f"namespace-{ns}",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=ns, labels=dict(MANAGED_BY)),
            # Argo CD's finalizer removes the apps; the namespace may hold more than this stack.
            opts=pulumi.ResourceOptions.merge(dest_opts, pulumi.ResourceOptions(retain_on_delete=True)),
        )
        for ns in sorted({app.namespace for app in cfg.apps})
    }
    project_deps: list[pulumi.Resource] = []
    if cfg.argocd.manage_project:
        project_deps.append(
            ArgoProject(
                "project",
                ArgoProjectArgs(
                    project=cfg.argocd.project,
                    argocd_namespace=cfg.argocd.namespace,
                    apps=cfg.apps,
                    cluster=cfg.cluster,
                    stack=pulumi.get_stack(),
                ),
                opts=pulumi.ResourceOptions(
                    providers={"kubernetes": argocd_provider} if argocd_provider else None
                ),
            )
        )
    # One credential check per stack (one registry per stack), for every repository it builds.
    built = [app for app in cfg.apps if app.image.pin is None]
    preflight = RegistryPreflight(
        "registry-preflight",
        RegistryPreflightArgs(
            server=cfg.registry.server,
            username=cfg.registry.username,
            password=secrets.registry_password,
            repositories=[app.image.path for app in built],
            insecure=cfg.registry.insecure,
        ),
    )
    releases: dict[str, AppRelease] = {}
    for app in cfg.apps:
        releases[app.name] = AppRelease(
            app.name,
            AppReleaseArgs(
                app=app,
                registry=cfg.registry,
                argocd=cfg.argocd,
                cluster=cfg.cluster,
                project_dir=cfg.project_dir,
                registry_password=secrets.registry_password,
                health_headers=secrets.health_headers[app.name],
                build_on_preview=cfg.build.on_preview,
                build_depends_on=(preflight,),
                application_depends_on=project_deps,
                destination_provider=destination_provider,
                argocd_provider=argocd_provider,
                secret_depends_on=(namespaces[app.namespace],),
            ),
        )
    pulumi.export(
        "apps",
        {
            name: {
                "imageDigest": release.image_digest,
                "application": release.application_name,
                "pullSecret": release.pull_secret_name,
            }
            for name, release in releases.items()
        },
    )
    return releases
