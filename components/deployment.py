"""Declare a whole stack from its validated config: providers, namespaces, project and one release per app."""

from __future__ import annotations

import functools
import gc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.app_release import AppRelease, StackWiring
from components.registry_preflight import RegistryPreflight
from model.budget import app_budgets, info_line, soak_line
from model.config import NAMESPACE, PromoteConfig, StackConfig, StackSecrets
from model.content_tag import content_tag
from model.errors import GitopsError
from model.failed_releases import (
    RECORD_OUTPUT,
    FailedReleaseBlocked,
    FailedReleaseRecord,
    blocked,
    read_own_outputs,
    read_own_record,
)
from model.image_ref import REPO_DIGEST, is_repo_digest
from model.names import (
    APPPROJECT_SUFFIX,
    ARGO_PROJECT_TYPE,
    ARGOCD_FINALIZER,
    MANAGED_BY,
    NAMESPACE_TYPE,
    PROJECT,
    namespace_resource_name,
)

Gate = pulumi.Input[Sequence[pulumi.Input[pulumi.Resource]]] | None
"""`depends_on` for what precedes the releases: it fails when a promotion cannot be supplied."""
COLLECTOR_THRESHOLDS = (700, 10, 100)
"""gc thresholds for the run: a full collection after 100 of the middle one, not CPython's 10, as the run's
Outputs live until its end and every full collection walks them all."""
APPS_OUTPUT = "apps"
"""The export that maps each app to its verified `imageDigest` and its `soakedDigest`."""
IMAGE_DIGEST, SOAKED_DIGEST = "imageDigest", "soakedDigest"
"""An app's digest that passed its health gate; the same once it passed its soak too, else "": the one a
promoting stack takes (docs/promotion.md#promotion-waits-for-the-soak)."""


class PromotionError(GitopsError, pulumi.RunError):
    """The upstream stack cannot supply an app's digest; the message names the app and the stack."""


def _providers(cfg: StackConfig) -> tuple[k8s.Provider | None, k8s.Provider | None]:
    """One explicit provider per distinct kube context that is set; none when no context is set."""
    argocd_ctx, dest_ctx = cfg.argocd.context, cfg.cluster.context
    argocd = k8s.Provider("argocd", context=argocd_ctx) if argocd_ctx else None
    if dest_ctx is None:
        return argocd, None
    return argocd, argocd if dest_ctx == argocd_ctx else k8s.Provider("destination", context=dest_ctx)


def stack_reference_name(promote: PromoteConfig, organization: str | None, project: str) -> str:
    """`<org>/<project>/<stack>`, qualified with the running stack's org; a qualified name, or no org, as
    given (docs/engine-rules.md#stack-references)."""
    if "/" in promote.from_stack or not organization:
        return promote.from_stack
    return f"{organization}/{project}/{promote.from_stack}"


@dataclass(frozen=True)
class Wanted:
    """One app this stack promotes: its name, its repository and where its pin would go."""

    app: str
    repository: str
    index: int
    """Position in `gitops-deploy:apps`, for the pin key in the error."""


def upstream_digests(apps: Any, wanted: Sequence[Wanted], *, upstream: str) -> dict[str, str]:
    """Each wanted app's digest that passed its health gate and its soak upstream; one PromotionError for
    every miss."""
    where = f"{NAMESPACE}:promote: stack '{upstream}'"
    if not isinstance(apps, Mapping):
        raise PromotionError(
            f"{where} exports no '{APPS_OUTPUT}' (has it been deployed with this program?); "
            "expected each app's imageDigest there"
        )
    digests: dict[str, str] = {}
    problems: list[str] = []
    for want in wanted:
        entry = apps.get(want.app)
        digest = entry.get(IMAGE_DIGEST) if isinstance(entry, Mapping) else None
        match = REPO_DIGEST.fullmatch(digest) if isinstance(digest, str) else None
        pin = f"{NAMESPACE}:apps[{want.index}].image.pin"
        if entry is None:
            known = ", ".join(sorted(map(str, apps))) or "none"
            problems.append(
                f"app '{want.app}' is not in stack '{upstream}' (its apps: {known}); "
                f"deploy it there first, or set {pin}"
            )
        elif match is None:
            problems.append(
                f"app '{want.app}' has no verified digest in stack '{upstream}' (got {digest!r}); "
                f"let its health gate pass there first, or set {pin}"
            )
        elif match.group("repo") != want.repository:
            problems.append(
                f"app '{want.app}' runs {digest!r} in stack '{upstream}'; this stack expects an image "
                f"of '{want.repository}' (image.repository must be the same in both stacks)"
            )
        elif (problem := _unsoaked(entry, match.group(0), upstream)) is not None:
            problems.append(f"app '{want.app}' {problem}, or set {pin}")
        else:
            digests[want.app] = match.group(0)
    if problems:
        noun = "app" if len(problems) == 1 else "apps"
        lines = "\n".join(f"  - {p}" for p in problems)
        raise PromotionError(f"{where} cannot supply {len(problems)} {noun}:\n{lines}")
    return digests


def _unsoaked(entry: Mapping[str, Any], digest: str, upstream: str) -> str | None:
    """Why a verified upstream digest may not be promoted yet, or None when it passed its soak."""
    if SOAKED_DIGEST not in entry:
        return (
            f"has no soak result in stack '{upstream}' for {digest}: an older version of this program "
            f"deployed it; deploy stack '{upstream}' again with this version and let the soak finish"
        )
    if entry[SOAKED_DIGEST] != digest:
        return (
            f"has not passed its soak in stack '{upstream}' with {digest} (still soaking, or its soak was "
            f"stopped or failed); deploy stack '{upstream}' again and let the soak finish"
        )
    return None


def _promotion(cfg: StackConfig) -> tuple[dict[str, pulumi.Output[str]], Gate]:
    """Each promoted app's upstream digest, and the `depends_on` gate of everything before the releases.

    The upstream `apps` export is read once, in preview too; the gate fails, so nothing of the stack is
    registered, when the upstream stack cannot supply every app.
    """
    # A pinned app deploys its pin (the rollback, a hotfix), so it need not exist upstream.
    wanted = [Wanted(a.name, a.image.repository, a.index) for a in cfg.apps if a.image.pin is None]
    if cfg.promote is None or not wanted:
        return {}, None
    name = stack_reference_name(cfg.promote, pulumi.get_organization(), pulumi.get_project())
    reference = pulumi.StackReference(name)
    checked = reference.get_output(APPS_OUTPUT).apply(
        lambda apps: upstream_digests(apps, wanted, upstream=name)
    )
    digests = {w.app: checked.apply(functools.partial(_pick, app=w.app)) for w in wanted}
    return digests, checked.apply(lambda _: [reference])


def _pick(digests: Mapping[str, str], app: str) -> str:
    return digests[app]


def _namespaces(cfg: StackConfig, provider: k8s.Provider | None, gate: Gate) -> dict[str, pulumi.Resource]:
    """Each app namespace, patched with the stack's labels whether or not it exists already.

    A server-side-apply patch, kept on delete; the alias keeps the URN of the `Namespace` declared
    before (docs/engine-rules.md#pulumi-kubernetes-patch-resources).
    """
    opts = pulumi.ResourceOptions(
        provider=provider,
        retain_on_delete=True,
        aliases=[pulumi.Alias(type_=NAMESPACE_TYPE)],
        depends_on=gate,
    )
    return {
        ns: k8s.core.v1.NamespacePatch(
            namespace_resource_name(ns),
            metadata=k8s.meta.v1.ObjectMetaPatchArgs(name=ns, labels=dict(MANAGED_BY)),
            opts=opts,
        )
        for ns in sorted({app.namespace for app in cfg.apps})
    }


def project_spec(cfg: StackConfig, description: str) -> dict[str, Any]:
    """Only this stack's repositories, namespaces and cluster; only Namespace at cluster scope."""
    return {
        "description": description,
        "sourceRepos": sorted({app.source.repo_url for app in cfg.apps}),
        "destinations": [cfg.cluster.destination(ns) for ns in sorted({app.namespace for app in cfg.apps})],
        # CreateNamespace=true is the only cluster-scoped object an app may need.
        "clusterResourceWhitelist": [{"group": "", "kind": "Namespace"}],
    }


class ArgoProject(pulumi.ComponentResource):
    """An `argoproj.io/v1alpha1` AppProject scoped to exactly what the stack deploys."""

    project_name: pulumi.Output[str]
    """`metadata.name` of the AppProject."""

    def __init__(self, name: str, cfg: StackConfig, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(ARGO_PROJECT_TYPE, name, None, opts)
        project = k8s.apiextensions.CustomResource(
            f"{name}{APPPROJECT_SUFFIX}",
            api_version="argoproj.io/v1alpha1",
            kind="AppProject",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=cfg.argocd.project,
                namespace=cfg.argocd.namespace,
                labels=dict(MANAGED_BY),
                finalizers=[ARGOCD_FINALIZER],
            ),
            spec=project_spec(cfg, f"{PROJECT} stack {pulumi.get_stack()}"),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.project_name = project.id.apply(lambda _: cfg.argocd.project)
        self.register_outputs({"project_name": self.project_name})


def _failed_release_guard(
    cfg: StackConfig, own: Mapping[str, Any] | None
) -> tuple[FailedReleaseRecord, dict[str, str]]:
    """Stop before registering anything when an app would ship content that failed its health gate.

    Returns the record to export: what this update was given, less the releases allowed to ship again
    and shipped now (they pass their gate in this update, or the update fails and exports nothing); and
    each built app's content tag.
    """
    record = cfg.failed_releases if cfg.failed_releases is not None else read_own_record(own)
    # A promoting stack builds nothing, but its checkout's content tag is the one its upstream built
    # from the same source: a release that failed here is kept out by it all the same.
    built = {
        app.name: content_tag(
            app.image.context,
            app.image.dockerfile,
            app.image.platform,
            app.image.build_args,
            root=cfg.project_dir,
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
            f"{NAMESPACE}:allowFailedReleases: {ref} names no recorded failed release (shipped since, or "
            "never failed); remove it"
        )
    return record.without(shipped_again), built


def soaked_before(own: Mapping[str, Any] | None) -> dict[str, str]:
    """Each app's `soakedDigest` in the stack's last outputs (none on a first update, or from a version
    that exported none)."""
    apps = (own or {}).get(APPS_OUTPUT)
    entries = apps.items() if isinstance(apps, Mapping) else ()
    found = {app: e.get(SOAKED_DIGEST) for app, e in entries if isinstance(e, Mapping)}
    return {str(app): d for app, d in found.items() if is_repo_digest(d)}


def settle_collector() -> None:
    """Keep what is loaded so far (the SDKs' modules) out of full collections and make those rarer; once per
    process, so that a process running the program again freezes no garbage of its last run."""
    if gc.get_freeze_count() == 0:
        gc.freeze()
        gc.set_threshold(*COLLECTOR_THRESHOLDS)


def deploy(cfg: StackConfig, secrets: StackSecrets) -> dict[str, AppRelease]:
    """Register every resource of the stack and export each app's verified and soaked digests and the failed
    releases."""
    # The stack's last outputs, read once (docs/engine-rules.md#reading-a-stacks-own-outputs).
    own = read_own_outputs()
    failed_releases, tags = _failed_release_guard(cfg, own)
    argocd_provider, destination_provider = _providers(cfg)
    if cfg.cluster_declared and cfg.cluster.context is None:
        pulumi.log.warn(
            f"{NAMESPACE}:cluster has no 'context': pull secrets go to the default kube context's "
            "cluster, which must be the cluster the apps run in"
        )
    promoted, gate = _promotion(cfg)
    project: list[pulumi.Resource] = []
    if cfg.argocd.manage_project:
        providers = {"kubernetes": argocd_provider} if argocd_provider else None
        project.append(
            ArgoProject("project", cfg, opts=pulumi.ResourceOptions(providers=providers, depends_on=gate))
        )
    # One credential check per stack (one registry per stack), for every repository it builds; a
    # promoting stack builds nothing, so only its credentials (pull secrets, image size) are checked.
    preflight = RegistryPreflight(
        "registry-preflight",
        cfg.registry,
        secrets.registry_password,
        [app.image.path for app in cfg.built_apps],
        opts=pulumi.ResourceOptions(depends_on=gate),
    )
    stack = StackWiring(
        cfg,
        secrets,
        preflight,
        # Argo CD's finalizer removes the apps; the namespace may hold more than this stack.
        _namespaces(cfg, destination_provider, gate),
        tags,
        project,
        promoted,
        argocd_provider,
        destination_provider,
        soaked_before(own),
    )
    releases = {app.name: AppRelease(app.name, app, stack) for app in cfg.apps}
    # The budget itself is checked with the config; here each app says what its bounded phases can cost.
    # The soak runs after the update, apart from the budget: its own line.
    for budget, app in zip(app_budgets(cfg), cfg.apps, strict=True):
        pulumi.log.info(info_line(budget), resource=releases[budget.app])
        pulumi.log.info(soak_line(app), resource=releases[app.name])
    # Each digest resolves only once its app's HealthCheck passed; when a gate fails the outputs are not
    # registered, so the engine keeps the last digests that passed (docs/release.md). The soaked digest
    # follows it only once the soak passed (docs/promotion.md#promotion-waits-for-the-soak).
    pulumi.export(
        APPS_OUTPUT,
        {
            name: {
                IMAGE_DIGEST: release.verified_digest,
                SOAKED_DIGEST: release.soaked_digest,
                "application": release.application_name,
                "pullSecret": release.pull_secret_name,
            }
            for name, release in releases.items()
        },
    )
    pulumi.export(RECORD_OUTPUT, failed_releases.to_json())
    return releases
