"""health-check-required: every Argo CD Application is gated by a HealthCheck that depends on it."""

from __future__ import annotations

from pulumi_policy import (
    EnforcementLevel,
    PolicyResource,
    ReportViolation,
    StackValidationArgs,
    StackValidationPolicy,
)

from .props import APPLICATION, HEALTH_CHECK, label


def _depends_on(check: PolicyResource, urn: str) -> bool:
    if any(d.urn == urn for d in check.dependencies):
        return True
    return any(d.urn == urn for deps in check.property_dependencies.values() for d in deps)


def health_check_findings(resources: list[PolicyResource]) -> list[tuple[str, str]]:
    """(urn, message) for each Application (not rendered from another) no HealthCheck depends on."""
    checks = [r for r in resources if r.resource_type == HEALTH_CHECK]
    findings = []
    for app in resources:
        if app.resource_type != APPLICATION:
            continue
        if app.parent is not None and app.parent.resource_type == APPLICATION:
            continue
        if not any(_depends_on(c, app.urn) for c in checks):
            message = (
                f"{label(APPLICATION, app.props, app.name)}: no HealthCheck ({HEALTH_CHECK}) depends on "
                f"it (found {len(checks)} HealthCheck(s) in the stack, none depending on this Application), "
                "so `pulumi up` would succeed without probing the release. Fix: declare the app's health "
                "check with depends_on=[the Application] (AppRelease does this from the app's `health`)."
            )
            findings.append((app.urn, message))
    return findings


def _validate(args: StackValidationArgs, report: ReportViolation) -> None:
    for urn, message in health_check_findings(args.resources):
        report(message, urn)


HEALTH_CHECK_REQUIRED = StackValidationPolicy(
    name="health-check-required",
    description="Every Argo CD Application has a HealthCheck that depends on it.",
    validate=_validate,
    enforcement_level=EnforcementLevel.ADVISORY,
)
