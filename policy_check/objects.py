"""The Kubernetes objects a stack would create, judged as a whole: unique identities, valid names, and
each release's workload (docs/engine-rules.md#objects-judged-as-a-whole)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from model.config import IN_CLUSTER_SERVER, ArgoCDConfig, ClusterConfig
from model.k8s_names import name_problem
from model.names import APP_PROJECT_TYPE, APPLICATION_TYPE
from model.release_workload import WORKLOAD_KINDS, ReleaseWorkload, declared_workload
from policy_check.findings import Change, Context, Finding, Place, app_change
from policy_check.render_common import RenderedObject, RenderResult, object_label

UNIQUE = "object-identity-unique"
"""The check's name for two objects with one identity."""
VALID_NAME = "object-name-valid"
"""The check's name for a name Kubernetes rejects."""
WORKLOAD_PRESENT = "release-workload-present"
"""The check's name for a rendered app without the workload its release's wait judges."""
WORKLOAD_KINDS_SHOWN = "Deployment, StatefulSet or Rollout"
"""The kinds of WORKLOAD_KINDS, as a finding names them."""
ARGOCD_TYPES = frozenset({APPLICATION_TYPE, APP_PROJECT_TYPE})
"""Objects the program creates where Argo CD runs; every other object lands in the destination cluster."""

Identity = tuple[str, str, str | None, str]
"""(API group, kind, namespace or None for a cluster-scoped object, name)."""


@dataclass(frozen=True)
class Owned:
    """One object the stack would create, and who creates it."""

    identity: Identity
    cluster: str
    """Where it lands: objects with one identity collide only in the same cluster."""
    stack: str
    app: str | None
    urn: str
    label: str
    file: str | None


def group_kind(type_: str) -> tuple[str, str] | None:
    """(API group, kind) of a pulumi-kubernetes type token; None for anything else (or a patch)."""
    parts = type_.split(":")
    if len(parts) != 3 or parts[0] != "kubernetes" or parts[2].endswith("Patch"):
        return None
    group = parts[1].rsplit("/", 1)[0] if "/" in parts[1] else ""
    return ("" if group == "core" else group), parts[2]


def owned(
    stack: str, ctx: Context, renders: Sequence[RenderResult] = (), clusters: Mapping[str, str] | None = None
) -> list[Owned]:
    """Every Kubernetes object of a stack (declared, and rendered per Application), with its owner;
    `clusters` names the stack's two clusters, `argocd` and `destination` (without it, they are one)."""
    where = clusters or {}
    found = []
    for urn, info in ctx.resources.items():
        gk = group_kind(info.type)
        metadata = info.props.get("metadata") if isinstance(info.props, Mapping) else None
        if info.rendered or gk is None or not isinstance(metadata, Mapping):
            continue
        name, namespace = metadata.get("name"), metadata.get("namespace")
        if not isinstance(name, str):
            continue
        cluster = where.get("argocd" if info.type in ARGOCD_TYPES else "destination", "")
        ns = namespace if isinstance(namespace, str) and namespace else None
        found.append(Owned((*gk, ns, name), cluster, stack, info.app, urn, info.label, info.file))
    for r in renders:
        for o in r.objects:
            gk = group_kind(o.type)
            if gk is None:
                continue
            label = object_label(gk[1], o.namespace, o.name)
            identity = (*gk, o.namespace or None, o.name)
            found.append(
                Owned(identity, where.get("destination", ""), stack, r.application, o.urn, label, o.template)
            )
    return found


def _owner(o: Owned, stack: str) -> str:
    who = f"app {o.app}" if o.app else "the stack itself"
    if o.stack != stack:
        who += f" of stack {o.stack}"
    return who + (f" ({o.file})" if o.file else "")


def collisions(ours: Sequence[Owned], theirs: Iterable[Owned], stack: str, ctx: Context) -> list[Finding]:
    """A finding per identity that two of our objects, or one of ours and another stack's, share."""
    by_id: dict[tuple[str, Identity], list[Owned]] = defaultdict(list)
    for o in ours:
        by_id[(o.cluster, o.identity)].append(o)
    for o in theirs:
        if (o.cluster, o.identity) in by_id:
            by_id[(o.cluster, o.identity)].append(o)
    findings = []
    for (_, identity), objects in by_id.items():
        distinct = list({(o.stack, o.app, o.urn, o.file): o for o in objects}.values())
        if len(distinct) < 2:
            continue
        distinct.sort(key=lambda o: (o.stack != stack, _app_index(ctx, o.app), o.file or "", o.urn))
        owners = " and ".join(_owner(o, stack) for o in distinct)
        problem = (
            f"{distinct[0].label} is created by {owners}: Kubernetes keeps one object per kind, namespace "
            "and name, so each sync overwrites the other's"
        )
        mine = [o for o in distinct if o.stack == stack]
        app = mine[-1].app
        places = tuple(Place(o.label, o.urn, o.file, _owner(o, stack)) for o in distinct)
        findings.append(
            Finding(app, "mandatory", (UNIQUE,), problem, _rename(ctx, app, identity, mine[-1].file), places)
        )
    return findings


def _app_index(ctx: Context, app: str | None) -> int:
    info = ctx.apps.get(app) if app else None
    return info.index if info else len(ctx.apps)


def _rename(ctx: Context, app: str | None, identity: Identity, file: str | None) -> Change:
    text = f"give one of them another name (the {identity[1]}'s in its chart or overlay, or the app's)"
    info = ctx.apps.get(app) if app else None
    if info is None:
        return Change(text, file=file)
    return app_change(ctx, info, ("name",), text, f"rename the object in {file}" if file else None)


def invalid_names(ours: Sequence[Owned], ctx: Context) -> list[Finding]:
    """A finding per object whose name its kind does not accept."""
    findings = []
    for o in ours:
        group, kind, _, name = o.identity
        why = name_problem(group, kind, name)
        if why is None:
            continue
        problem = f"{o.label}: Kubernetes rejects this name for a {kind}: {why}"
        info = ctx.apps.get(o.app) if o.app else None
        text = "shorten or rename the object"
        if info is not None and info.source_type == "kustomize":
            text += f" (the Application prefixes its name with '{info.name}-')"
        change = Change(text, file=o.file) if o.file else Change(text)
        if o.file is None and info is not None:
            change = app_change(ctx, info, ("name",), "use a shorter app name")
        findings.append(
            Finding(
                o.app, "mandatory", (VALID_NAME,), problem, change, (Place(o.label, o.urn, o.file, problem),)
            )
        )
    return findings


def missing_workloads(renders: Sequence[RenderResult], ctx: Context) -> list[Finding]:
    """A finding per rendered app whose objects hold no workload its release's wait would find."""
    findings = []
    for r in renders:
        application = ctx.resources.get(r.application_urn)
        props = application.props if application is not None else None
        workload = declared_workload(props) if isinstance(props, Mapping) and r.status == "rendered" else None
        if workload is None or any(workload.carries(_listed(o)) for o in r.objects):
            continue
        info = ctx.apps.get(r.application)
        overlay = info.source_type == "kustomize" if info and info.source_type else r.engine == "kustomize"
        rendered = [_shown(o) for o in r.objects if _workload_kind(o)]
        problem = (
            f"app {r.application} renders no {WORKLOAD_KINDS_SHOWN} '{workload}', the workload whose health "
            "its release waits for, so every release would wait until its timeout and roll back; it "
            f"renders {', '.join(rendered) if rendered else f'no {WORKLOAD_KINDS_SHOWN}'}"
        )
        change = _workload_change(ctx, r, workload, overlay)
        label = application.label if application is not None else f"Application '{r.application}'"
        places = (Place(label, r.application_urn, None, problem),)
        findings.append(Finding(r.application, "mandatory", (WORKLOAD_PRESENT,), problem, change, places))
    return findings


def _listed(o: RenderedObject) -> dict[str, Any]:
    """A rendered object as Argo CD lists it in an Application's `status.resources[]`."""
    group, kind = group_kind(o.type) or ("", "")
    return {"group": group, "kind": kind, "namespace": o.namespace, "name": o.name}


def _workload_kind(o: RenderedObject) -> bool:
    return group_kind(o.type) in WORKLOAD_KINDS


def _shown(o: RenderedObject) -> str:
    label = object_label((group_kind(o.type) or ("", o.type))[1], o.namespace, o.name)
    return label + (f" ({o.template})" if o.template else "")


def _workload_change(ctx: Context, r: RenderResult, workload: ReleaseWorkload, overlay: bool) -> Change:
    """The overlay's `source.workload` key (or the overlay); the chart's values contract."""
    info = ctx.apps.get(r.application)
    if not overlay:
        text = (
            f"name the chart's {WORKLOAD_KINDS_SHOWN} after the release, "
            f"{{{{ .Release.Name }}}} ('{workload.name}'), in {{{{ .Release.Namespace }}}} "
            "(the chart's values contract)"
        )
        return Change(text, file=r.path)
    prefix = f"{r.application}-"
    names = sorted(
        o.name.removeprefix(prefix)
        for o in r.objects
        if _workload_kind(o) and o.name.startswith(prefix) and o.namespace == workload.namespace
    )
    text = f"set it to the name of the overlay's {WORKLOAD_KINDS_SHOWN} (without the app's prefix)"
    if names:
        text += f": {' or '.join(names)}"
    alternative = f"rename the workload in {r.path}"
    if info is None:
        return Change(f"source.workload: {text}", alternative=alternative)
    return app_change(ctx, info, ("source", "workload"), text, alternative)


KUBE_CONTEXT = "kube context"


def clusters(argocd: ArgoCDConfig, cluster: ClusterConfig) -> dict[str, str]:
    """A stack's Argo CD cluster and destination cluster, as keys another stack's can match: each known
    by the kube context the stack names for it (docs/engine-rules.md#clusters-two-stacks-share)."""
    argocd_key = f"{KUBE_CONTEXT} {argocd.context}" if argocd.context else "argocd context (the job default)"
    target = cluster.name or cluster.server or IN_CLUSTER_SERVER
    if cluster.context:
        destination = f"{KUBE_CONTEXT} {cluster.context}"
    elif cluster.name is None and target == IN_CLUSTER_SERVER:
        destination = argocd_key
    else:
        destination = f"{argocd_key}, cluster {target}"
    return {"argocd": argocd_key, "destination": destination}


def known_clusters(keys: Mapping[str, str]) -> set[str]:
    """The keys of `clusters` that name a kube context: the ones two stacks can be known to share."""
    return {key for key in keys.values() if key.startswith(f"{KUBE_CONTEXT} ") and ", cluster" not in key}
