"""health-check-required: every Argo CD Application is gated by a HealthCheck that depends on it."""

from __future__ import annotations

from pulumi_policy import PolicyResource

from .names import APPLICATION_TYPE, HEALTH_CHECK_TYPE
from .props import ADVISORY, Finding, label, stack_policy


def _depends_on(check: PolicyResource, urn: str) -> bool:
    deps = [*check.dependencies, *(d for ds in check.property_dependencies.values() for d in ds)]
    return any(d.urn == urn for d in deps)


def health_check_findings(resources: list[PolicyResource]) -> list[Finding]:
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


HEALTH_CHECK_REQUIRED = stack_policy(
    "health-check-required",
    "Every Argo CD Application has a HealthCheck that depends on it.",
    ADVISORY,
    lambda args: health_check_findings(args.resources),
)
