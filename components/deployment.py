"""Declare a whole stack from its validated config: providers, namespaces, project and one release per app."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.app_release import AppRelease, AppReleaseArgs
from components.argo_project import ArgoProject, ArgoProjectArgs
from components.promotion import APPS_OUTPUT, Wanted, stack_reference_name, upstream_digests
from components.registry_preflight import RegistryPreflight, RegistryPreflightArgs
from model.budget import app_budgets, info_line
from model.config import StackConfig, StackSecrets
from model.content_tag import content_tag
from model.failed_releases import (
    RECORD_OUTPUT,
    FailedReleaseBlocked,
    FailedReleaseRecord,
    blocked,
    read_own_record,
)
from model.names import MANAGED_BY, NAMESPACE_TYPE, namespace_resource_name


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


@dataclass(frozen=True)
class Promotion:
    """The upstream digests of a promoting stack, and the gate the stack's own resources wait on."""

    digests: Mapping[str, pulumi.Output[str]]
    """Each unpinned app's digest from the upstream stack."""
    gate: pulumi.Input[Sequence[pulumi.Input[pulumi.Resource]]] | None
    """`depends_on` for what precedes the releases: it fails, so they are never registered, when
    the upstream stack cannot supply every app; nothing of a failed promotion is applied."""


def _promotion(cfg: StackConfig) -> Promotion:
    """Read the upstream stack's `apps` export once and check every promoted app against it."""
    # A pinned app deploys its pin (the rollback, a hotfix), so it need not exist upstream.
    wanted = [Wanted(a.name, a.image.repository, a.index) for a in cfg.apps if a.image.pin is None]
    if cfg.promote is None or not wanted:
        return Promotion(digests={}, gate=None)
    name = stack_reference_name(cfg.promote, pulumi.get_organization(), pulumi.get_project())
    reference = pulumi.StackReference(name)
    checked = reference.get_output(APPS_OUTPUT).apply(
        lambda apps: upstream_digests(apps, wanted, upstream=name)
    )
    return Promotion(
        digests={w.app: checked.apply(functools.partial(_pick, app=w.app)) for w in wanted},
        gate=checked.apply(lambda _: [reference]),
    )


def _pick(digests: Mapping[str, str], app: str) -> str:
    return digests[app]


def _namespaces(
    cfg: StackConfig, provider: k8s.Provider | None, promotion: Promotion
) -> dict[str, pulumi.Resource]:
    """Each app namespace, patched with the stack's labels whether or not it exists already.

    From pulumi-kubernetes v4.29, a `Namespace` is created with a plain create, which fails with
    AlreadyExists when Argo CD, another stack or an earlier `up` made it first (`provider/pkg/await/
    await.go`, `Creation`: only Patch resources, or `upsertExistingObjects`, take the server-side-apply
    path, and a preview swallows AlreadyExists, `provider/pkg/provider/provider.go` `Create`); up to
    v4.28 such a create was an apply that took the namespace over. A
    `NamespacePatch` is a server-side apply, which creates the namespace when it is missing and
    otherwise sets only the fields it names. It needs server-side apply on the provider, the default
    since pulumi-kubernetes v4 (`provider.go` `Check` refuses Patch resources without it).

    `retain_on_delete`: the engine then never calls the provider's Delete (`DeleteStep.Apply`,
    pulumi/pulumi `pkg/resource/deploy/step.go`). Without it, deleting a Patch relinquishes its
    fields with another server-side apply (`await.go` `Deletion` -> `ssa.Relinquish`), which would
    re-create a namespace deleted meanwhile. The alias keeps the URN of the `Namespace` that earlier
    versions declared, so existing stacks see no change (a type alias gives the same resource).
    """
    opts = pulumi.ResourceOptions(
        provider=provider,
        retain_on_delete=True,
        aliases=[pulumi.Alias(type_=NAMESPACE_TYPE)],
        depends_on=promotion.gate,
    )
    return {
        ns: k8s.core.v1.NamespacePatch(
            namespace_resource_name(ns),
            metadata=k8s.meta.v1.ObjectMetaPatchArgs(name=ns, labels=dict(MANAGED_BY)),
            opts=opts,
        )
        for ns in sorted({app.namespace for app in cfg.apps})
    }


def _failed_release_guard(cfg: StackConfig) -> FailedReleaseRecord:
    """Stop before registering anything when an app would ship content that failed its health gate.

    Returns the record to export: what this update was given, less the releases allowed to ship again
    and shipped now (they pass their gate in this update, or the update fails and exports nothing).
    """
    record = cfg.failed_releases if cfg.failed_releases is not None else read_own_record()
    built = {
        app.name: content_tag(
            app.image.context,
            app.image.dockerfile,
            app.image.platform,
            app.image.build_args,
            root=cfg.project_dir,
        )
        # A promoting stack builds nothing, but its checkout's content tag is the one its upstream
        # built from the same source: a release that failed here is kept out by it all the same.
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
    promotion = _promotion(cfg)
    # Argo CD's finalizer removes the apps; the namespace may hold more than this stack.
    namespaces = _namespaces(cfg, destination_provider, promotion)
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
                    providers={"kubernetes": argocd_provider} if argocd_provider else None,
                    depends_on=promotion.gate,
                ),
            )
        )
    # One credential check per stack (one registry per stack), for every repository it builds; a
    # promoting stack builds nothing, so only its credentials (pull secrets, image size) are checked.
    built = cfg.built_apps
    preflight = RegistryPreflight(
        "registry-preflight",
        RegistryPreflightArgs(
            server=cfg.registry.server,
            username=cfg.registry.username,
            password=secrets.registry_password,
            repositories=[app.image.path for app in built],
            insecure=cfg.registry.insecure,
        ),
        opts=pulumi.ResourceOptions(depends_on=promotion.gate),
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
                promoted_digest=promotion.digests.get(app.name),
                rollback_id=cfg.rollback_id,
            ),
        )
    # The budget check itself is part of the config's validation (model/config.py); here each app
    # says, in preview and up alike, what its bounded phases can cost.
    for budget in app_budgets(cfg):
        pulumi.log.info(info_line(budget), resource=releases[budget.app])
    # Each digest resolves only once its app's HealthCheck passed. When a gate fails, the stack's
    # outputs are never registered in that update, so the engine keeps the previous ones: the last
    # digests that passed (docs/release.md, "What a failed update leaves in the outputs").
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
