"""Declare a whole stack from its validated config: providers, namespaces, project and one release per app."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from components.app_release import AppRelease, AppReleaseArgs
from components.argo_project import ArgoProject, ArgoProjectArgs
from components.config import StackConfig, StackSecrets
from components.content_tag import content_tag
from components.failed_releases import (
    RECORD_OUTPUT,
    FailedReleaseBlocked,
    FailedReleaseRecord,
    blocked,
    read_own_record,
)
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


def _failed_release_guard(cfg: StackConfig) -> FailedReleaseRecord:
    """Stop before registering anything when an app would ship content that failed its health gate.

    Returns the record to export: what this update was given, less the releases allowed to ship again
    and shipped now (they pass their gate in this update, or the update fails and exports nothing).
    """
    record = cfg.failed_releases if cfg.failed_releases is not None else read_own_record()
    built = {
        app.name: content_tag(
            app.image.context, app.image.dockerfile, app.image.platform, app.image.build_args
        )
        for app in cfg.apps
        if app.image.pin is None
    }
    found = blocked(record, built, cfg.allow_failed_releases)
    if found:
        raise FailedReleaseBlocked(found, pulumi.get_stack())
    shipped_again = {f"{app}:{tag}" for app, tag in built.items()} & set(cfg.allow_failed_releases)
    for ref in sorted(set(cfg.allow_failed_releases) - {r.ref for r in record.releases}):
        pulumi.log.warn(
            f"gitops-deploy:allowFailedReleases: {ref} names no recorded failed release (shipped since, or "
            "never failed); remove it"
        )
    return record.without(shipped_again)


def deploy(cfg: StackConfig, secrets: StackSecrets) -> dict[str, AppRelease]:
    """Register every resource of the stack and export each app's verified digest and the failed releases."""
    failed_releases = _failed_release_guard(cfg)
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
    # Each digest resolves only once its app's HealthCheck passed. When a gate fails, the stack's
    # outputs are never registered in that update, so the engine keeps the previous ones: the last
    # digests that passed (docs/rollback.md, "What a failed update leaves in the outputs").
    pulumi.export(
        "apps",
        {
            name: {
                "imageDigest": release.verified_digest,
                "application": release.application_name,
                "pullSecret": release.pull_secret_name,
            }
            for name, release in releases.items()
        },
    )
    pulumi.export(RECORD_OUTPUT, failed_releases.to_json())
    return releases
