"""Argo CD guardrails: retried automated sync, a scoped AppProject, and a HealthCheck gating each release."""

from __future__ import annotations

from typing import Any

from pulumi_policy import PolicyResource

from .names import APP_PROJECT_TYPE, APPLICATION_TYPE, HEALTH_CHECK_TYPE
from .props import (
    ADVISORY,
    Finding,
    Threshold,
    as_whole_number,
    fmt_num,
    get_path,
    label,
    mapping,
    resource_policy,
    sequence,
    stack_policy,
)

MIN_LIMIT = Threshold("minLimit", 1, "Fewest sync retries an automated Application must allow.")


def sync_retry_findings(props: Any, name: str, minimum: int) -> list[str]:
    """Messages for an automated sync without a bounded retry and a backoff."""
    sync = mapping(get_path(props, "spec", "syncPolicy"))
    if sync is None or "automated" not in sync or sync["automated"] is None:
        return []
    what = label(APPLICATION_TYPE, props, name)
    fix = (
        "Fix: set spec.syncPolicy.retry to {limit: 3, backoff: {duration: 10s, factor: 2, maxDuration: 3m}, "
        "refresh: true} (components/argo_application.py sync_policy; refresh needs Argo CD v3.2.0 or later)."
    )
    retry = mapping(sync["retry"]) if "retry" in sync else None
    if retry is None:
        return [
            f"{what}: automated sync has no spec.syncPolicy.retry (found {sync.get('retry')!r}); it needs a "
            f"retry.limit of at least {fmt_num(minimum)} and a retry.backoff. {fix}"
        ]
    problems = []
    raw = retry.get("limit")
    if (limit := as_whole_number(raw)) is None or limit < minimum:
        shown = fmt_num(limit) if limit is not None else repr(raw)
        problems.append(f"spec.syncPolicy.retry.limit is {shown}; it must be at least {fmt_num(minimum)}")
    # `refresh` is optional (Argo CD v3.2.0+, gitops-deploy:argocd.retryRefresh); when set, the CRD types it.
    if "refresh" in retry and not isinstance(retry["refresh"], bool):
        problems.append(f"spec.syncPolicy.retry.refresh is {retry['refresh']!r}; it must be true or false")
    duration = get_path(retry, "backoff", "duration")
    if not isinstance(duration, str) or not duration:
        problems.append(f"spec.syncPolicy.retry.backoff.duration is {duration!r}; a backoff is required")
    return [f"{what}: {problem}. {fix}" for problem in problems]


def _wildcards(values: Any, *keys: str) -> list[str]:
    """Entries of a list (strings, or mappings' `keys`) that are `*`."""
    found = []
    for i, entry in enumerate(sequence(values)):
        if entry == "*":
            found.append(f"[{i}]")
        for key in keys:
            if get_path(entry, key) == "*":
                found.append(f"[{i}].{key}")
    return found


def project_scope_findings(resource_type: str, props: Any, name: str) -> list[str]:
    """Messages for an Application in `default`, or an AppProject allowing `*`."""
    what = label(resource_type, props, name)
    if resource_type == APPLICATION_TYPE:
        project = get_path(props, "spec", "project")
        if project in (None, "", "default"):
            return [
                f"{what}: spec.project is {project!r}; the default project is shared and unfenced. Fix: set "
                "gitops-deploy:argocd.project to a stack project and argocd.manageProject: true."
            ]
        return []
    if resource_type != APP_PROJECT_TYPE:
        return []
    messages = []
    if repos := _wildcards(get_path(props, "spec", "sourceRepos")):
        messages.append(
            f"{what}: spec.sourceRepos{', '.join(repos)} is '*': any repository may deploy. "
            "Fix: list exactly the stack's repoURLs."
        )
    if dests := _wildcards(get_path(props, "spec", "destinations"), "server", "name", "namespace"):
        messages.append(
            f"{what}: spec.destinations{', '.join(dests)} is '*': any cluster or namespace may be targeted. "
            "Fix: one destination per app namespace on the stack's cluster."
        )
    return messages


def _depends_on(check: PolicyResource, urn: str) -> bool:
    deps = [*check.dependencies, *(d for ds in check.property_dependencies.values() for d in ds)]
    return any(d.urn == urn for d in deps)


def _health_check_findings(resources: list[PolicyResource]) -> list[Finding]:
    """(urn, message) for each Application (not rendered from another) no HealthCheck depends on."""
    checks = [r for r in resources if r.resource_type == HEALTH_CHECK_TYPE]
    return [
        (
            app.urn,
            f"{label(APPLICATION_TYPE, app.props, app.name)}: no HealthCheck ({HEALTH_CHECK_TYPE}) depends "
            f"on it (found {len(checks)} HealthCheck(s) in the stack, none depending on this Application), "
            "so `pulumi up` would succeed without probing the release. Fix: declare the app's health "
            "check with depends_on=[the Application] (AppRelease does this from the app's `health`).",
        )
        for app in resources
        if app.resource_type == APPLICATION_TYPE
        and (app.parent is None or app.parent.resource_type != APPLICATION_TYPE)
        and not any(_depends_on(c, app.urn) for c in checks)
    ]


ARGOCD_SYNC_RETRY = resource_policy(
    "argocd-sync-retry",
    "Automated sync retries failed syncs at least minLimit times, with a backoff.",
    ADVISORY,
    lambda args: sync_retry_findings(args.props, args.name, MIN_LIMIT.read(args.get_config())),
    types=(APPLICATION_TYPE,),
    schema=MIN_LIMIT.schema,
)
ARGOCD_PROJECT_SCOPED = resource_policy(
    "argocd-project-scoped",
    "Applications are not in 'default'; AppProjects allow no '*' repo or destination.",
    ADVISORY,
    lambda args: project_scope_findings(args.resource_type, args.props, args.name),
    types=(APPLICATION_TYPE, APP_PROJECT_TYPE),
)
HEALTH_CHECK_REQUIRED = stack_policy(
    "health-check-required",
    "Every Argo CD Application has a HealthCheck that depends on it.",
    ADVISORY,
    lambda args: _health_check_findings(args.resources),
)
