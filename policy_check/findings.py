"""One finding per root cause: the pack's diagnostics grouped by app and by the setting to change
(docs/engine-rules.md#findings)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from model.names import PROJECT
from policy_check.analyzer_client import Diagnostic

LEVEL_RANK = {"mandatory": 0, "remediate": 0, "advisory": 1, "disabled": 2}
FAMILY = {"minimum-replicas-rendered": "minimum-replicas", "image-size-registry": "image-size-limit"}
"""Policies that judge the same setting from another place share a family (and a finding)."""
_LABEL = re.compile(r"^[A-Z][A-Za-z]* '[^']*'(?: \([^)]*\))?: ")
"""The `Kind 'ns/name': ` (or `ImageSize 'n' (ref): `) a pack message starts with."""

KeyPath = tuple[str | int, ...]


@dataclass(frozen=True)
class AppInfo:
    """One app of the stack config, as findings name it."""

    index: int
    name: str
    key: str
    """`gitops-deploy:apps[1] (checkout)`."""
    replicas: int | None = None
    source_type: str | None = None
    source_path: str | None = None
    dockerfile: str | None = None
    """Project-relative Dockerfile the app builds from (None when it builds nothing here)."""


@dataclass(frozen=True)
class ResourceInfo:
    """What a finding needs of one judged resource."""

    type: str
    label: str
    """`Deployment 'web-staging/web-app'`."""
    app: str | None
    """The app it belongs to; None for the stack's own resources."""
    file: str | None = None
    props: Mapping[str, Any] | None = None
    rendered: bool = False


@dataclass(frozen=True)
class Context:
    """Where the check's input came from, to name real keys, files and lines."""

    stack_file: str | None
    """`Pulumi.staging.yaml`; None when the config was handed over in code."""
    policy_file: str | None
    apps: Mapping[str, AppInfo]
    resources: Mapping[str, ResourceInfo]
    thresholds: Mapping[str, Mapping[str, Any]]
    """Each policy's configured properties (schema defaults included)."""
    line_of: Callable[[KeyPath], int | None] = lambda _: None
    """1-based line of a `config:` key path in the stack file (the nearest existing parent's)."""


@dataclass(frozen=True)
class Place:
    """One resource where a finding showed up."""

    resource: str
    urn: str
    file: str | None
    detail: str


@dataclass(frozen=True)
class Change:
    """What to change: a config key (with its file and line) or a chart/overlay file, and how."""

    text: str
    key: str | None = None
    file: str | None = None
    line: int | None = None
    alternative: str | None = None

    def where(self) -> str:
        """`gitops-deploy:apps[0] (web).replicas (Pulumi.dev.yaml:19)`, or the file alone."""
        at = f"{self.file}:{self.line}" if self.file and self.line else self.file
        if self.key:
            return f"{self.key} ({at})" if at else self.key
        return at or ""

    def describe(self) -> str:
        """Where and what, then the alternative."""
        where = self.where()
        text = f"{where}: {self.text}" if where else self.text
        return f"{text}; or {self.alternative}" if self.alternative else text


@dataclass(frozen=True)
class Finding:
    """One root cause: its app (None: the stack), the policies that saw it, what to change, where."""

    app: str | None
    level: str
    policies: tuple[str, ...]
    problem: str
    change: Change
    places: tuple[Place, ...]

    @property
    def blocking(self) -> bool:
        """Mandatory (or remediate): the change cannot ship."""
        return blocks(self.level)


def blocks(level: str) -> bool:
    """Whether a finding or diagnostic at this enforcement level stops the change from shipping."""
    return LEVEL_RANK.get(level, 1) == 0


def split_message(message: str) -> tuple[str, str]:
    """(problem, fix) of a pack message, without the `Kind 'name': ` it starts with."""
    text = _LABEL.sub("", message.strip(), count=1)
    problem, _, fix = text.partition(" Fix: ")
    return problem.strip(), fix.strip()


def group(diagnostics: Iterable[Diagnostic], ctx: Context) -> list[Finding]:
    """The violations (not "can't judge yet" notes) as findings, in a stable order."""
    grouped: dict[tuple[Any, ...], list[tuple[Diagnostic, Change]]] = {}
    for d in diagnostics:
        if d.cant_judge:
            continue
        change, scope = _cause(d, ctx.resources.get(d.urn), ctx)
        family = FAMILY.get(d.policy, d.policy)
        cause = (change.key or change.file or "", change.text if not change.key else "")
        grouped.setdefault((scope, family, cause), []).append((d, change))
    findings = [_finding(scope, items, ctx) for (scope, _, _), items in grouped.items()]
    return sorted(findings, key=lambda f: _order(f, ctx))


def ordered(findings: Iterable[Finding], ctx: Context) -> list[Finding]:
    """Findings in the report's order: by app in config order, then the stack; mandatory first."""
    return sorted(findings, key=lambda f: _order(f, ctx))


def _order(f: Finding, ctx: Context) -> tuple[Any, ...]:
    app = ctx.apps.get(f.app) if f.app else None
    where = (0, app.index, "") if app else (1, 0, f.app or "") if f.app else (2, 0, "")
    return (*where, LEVEL_RANK.get(f.level, 1), f.policies, f.change.where(), f.problem)


def _finding(scope: str | None, items: Sequence[tuple[Diagnostic, Change]], ctx: Context) -> Finding:
    places = sorted({_place(d, ctx) for d, _ in items}, key=_place_order)
    level = min((d.level for d, _ in items), key=lambda lvl: LEVEL_RANK.get(lvl, 1))
    policies = tuple(sorted({d.policy for d, _ in items}))
    change = min((c for _, c in items), key=lambda c: c.describe())
    return Finding(scope, level, policies, places[0].detail, change, tuple(places))


def _place(d: Diagnostic, ctx: Context) -> Place:
    resource = ctx.resources.get(d.urn)
    problem, _ = split_message(d.detail)
    label = resource.label if resource else ("the stack" if not d.urn else d.urn.rsplit("::", 1)[-1])
    return Place(label, d.urn, resource.file if resource else None, problem)


def _place_order(p: Place) -> tuple[Any, ...]:
    """The resource the program declares first (an Application, an ImageSize), rendered objects after."""
    return (p.file is not None, p.resource, p.detail, p.urn)


def _cause(d: Diagnostic, resource: ResourceInfo | None, ctx: Context) -> tuple[Change, str | None]:
    """What decides this diagnostic, and the app the finding is grouped under (None: the stack)."""
    app = ctx.apps.get(resource.app) if resource and resource.app else None
    scope = resource.app if resource else None
    family = FAMILY.get(d.policy, d.policy)
    _, fix = split_message(d.detail)
    fix = fix.rstrip(".")
    policy_file = ctx.policy_file or "the policy config"
    if family == "minimum-replicas":
        return _replicas(d, resource, app, ctx, policy_file), scope
    if family == "image-size-limit" and app is not None:
        built = f"built from {app.dockerfile} " if app.dockerfile else ""
        return app_change(
            ctx,
            app,
            ("image",),
            f"make the image {built}smaller (multi-stage build, slimmer base, fewer layers)",
            f"raise image-size-limit.maxBytes and image-size-registry.maxBytes in {policy_file}",
        ), scope
    if family == "workload-uses-built-image" and app is not None:
        if app.source_type == "kustomize":
            return app_change(
                ctx, app, ("source", "imageName"), "set it to the image name the overlay's containers use"
            ), scope
        chart = app.source_path or "the chart"
        return Change("make it render image.repository@image.digest (the values contract)", file=chart), scope
    if family == "image-pinned-by-digest" and app is not None:
        return app_change(ctx, app, ("image",), fix or "deploy the image by digest"), scope
    if family == "health-check-required" and app is not None:
        return app_change(ctx, app, ("health",), fix or "give the app a health block"), scope
    if family == "argocd-project-scoped" and resource is not None and resource.type.endswith(":Application"):
        line = ctx.line_of(("config", f"{PROJECT}:argocd", "project")) if ctx.stack_file else None
        text = f"set a project of the stack's own, with {PROJECT}:argocd.manageProject: true"
        return Change(text, key=f"{PROJECT}:argocd.project", file=ctx.stack_file, line=line), None
    if resource is not None and resource.file is not None:
        return Change(fix or f"fix {resource.label} there", file=resource.file), scope
    # Settled in the program itself (the sync policy): one finding for the whole stack.
    code_level = family == "argocd-sync-retry"
    return Change(fix or "see the policy's message"), None if code_level else scope


def _replicas(
    d: Diagnostic, resource: ResourceInfo | None, app: AppInfo | None, ctx: Context, policy_file: str
) -> Change:
    """The app's `replicas` when the count came from it; else the chart or overlay file that set it."""
    minimum = _threshold(ctx, d.policy, "minReplicas")
    at_least = f"at least {minimum}" if minimum is not None else "at least minReplicas"
    alternative = f"lower {d.policy}.minReplicas in {policy_file} for a non-production stack"
    if app is None or resource is None:
        return Change(f"run {at_least} replicas", alternative=alternative)
    if resource.rendered:
        spec = (resource.props or {}).get("spec")
        count = spec.get("replicas") if isinstance(spec, Mapping) else None
        hpa = resource.type.endswith(":HorizontalPodAutoscaler")
        if hpa or count is None or count != app.replicas:
            what = (
                f"raise the HorizontalPodAutoscaler's minReplicas to {at_least}"
                if hpa
                else f"set replicas ({at_least}) or an HorizontalPodAutoscaler"
                if count is None
                else "take the replica count the Application hands it (Helm replicaCount, kustomize replicas)"
            )
            return Change(what, file=resource.file or app.source_path, alternative=alternative)
    return app_change(ctx, app, ("replicas",), f"raise it to {at_least}", alternative)


def _threshold(ctx: Context, policy: str, name: str) -> Any:
    value = (ctx.thresholds.get(policy) or {}).get(name)
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


def app_change(
    ctx: Context, app: AppInfo, path: tuple[str, ...], text: str, alternative: str | None = None
) -> Change:
    """A change of one of the app's keys, with its line in the stack file."""
    line = ctx.line_of(("config", f"{PROJECT}:apps", app.index, *path)) if ctx.stack_file else None
    key = app.key + "".join(f".{p}" for p in path)
    return Change(text, key=key, file=ctx.stack_file, line=line, alternative=alternative)
