"""minimum-replicas: workloads, autoscalers and Argo CD Applications run at least `minReplicas` pods.

Two policies share the threshold. `minimum-replicas` judges each resource alone: Applications (the
replica counts they hand a chart or overlay), HorizontalPodAutoscalers of every version, and
Deployments and StatefulSets. `minimum-replicas-rendered` judges the objects an Application renders as
the set Argo CD applies: a rendered workload that omits `replicas` runs its HPA's `minReplicas` when an
HPA targets it (that HPA is judged by `minimum-replicas`), and 1 when none does.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from .props import (
    APPLICATION,
    DEPLOYMENT,
    STATEFULSET,
    as_whole_number,
    brief,
    config_int,
    fmt_num,
    get_path,
    is_hpa,
    label,
    mapping,
    rendered_from_application,
    sequence,
    stack_files,
)

DEFAULT_MIN_REPLICAS = 3
MAX_REPLICAS = 2**31 - 1
"""Kubernetes stores replica counts as int32; a larger count is rejected, not run."""
WORKLOADS = (DEPLOYMENT, STATEFULSET)
SCHEMA = PolicyConfigSchema(
    properties={
        "minReplicas": {
            "type": "integer",
            "minimum": 1,
            "default": DEFAULT_MIN_REPLICAS,
            "description": "Fewest replicas an app may run (a dev stack may lower it in its policy config).",
        }
    }
)
_FIX = (
    "Fix: raise it to at least {min} (the app's `replicas` in {stack_file}, which the chart or "
    "overlay must honour), or lower {policy}.minReplicas in {policy_file} for a non-production stack."
)


def min_replicas(config: Mapping[str, Any] | None) -> int:
    """The configured minimum, or the default."""
    return config_int(config, "minReplicas", DEFAULT_MIN_REPLICAS)


def _application_counts(props: Any) -> Iterator[tuple[str, Any]]:
    """(where, value) of every replica count an Application hands its chart or overlay."""
    source = get_path(props, "spec", "source")
    sources = [("spec.source", source)] if mapping(source) is not None else []
    sources += [
        (f"spec.sources[{i}]", s)
        for i, s in enumerate(sequence(get_path(props, "spec", "sources")))
        if mapping(s) is not None
    ]
    for prefix, src in sources:
        values = mapping(get_path(src, "helm", "valuesObject"))
        if values is not None and "replicaCount" in values:
            yield f"{prefix}.helm.valuesObject.replicaCount", values["replicaCount"]
        for j, param in enumerate(sequence(get_path(src, "helm", "parameters"))):
            if get_path(param, "name") == "replicaCount":
                yield f"{prefix}.helm.parameters[{j}] replicaCount", get_path(param, "value")
        for j, entry in enumerate(sequence(get_path(src, "kustomize", "replicas"))):
            target = get_path(entry, "name")
            shown = f" ({target[:40]})" if isinstance(target, str) else ""
            yield f"{prefix}.kustomize.replicas[{j}].count{shown}", get_path(entry, "count")


def omits_replicas(props: Any) -> bool:
    """Whether a workload leaves `spec.replicas` out (Kubernetes then runs 1, unless an HPA scales it)."""
    spec = get_path(props, "spec")
    return mapping(spec) is None or spec.get("replicas") is None


def _counts(resource_type: str, props: Any, *, rendered: bool) -> Iterator[tuple[str, Any]]:
    """(where, value) of the replica counts that apply to this resource type."""
    if resource_type in WORKLOADS:
        if not omits_replicas(props):
            yield "spec.replicas", get_path(props, "spec", "replicas")
        elif not rendered:
            yield "spec.replicas (missing, Kubernetes runs 1)", 1
        # A rendered workload that omits replicas: minimum-replicas-rendered sees whether an HPA owns it.
    elif is_hpa(resource_type):
        spec = get_path(props, "spec")
        if mapping(spec) is not None and spec.get("minReplicas") is not None:
            yield "spec.minReplicas", spec["minReplicas"]
        else:
            yield "spec.minReplicas (missing, Kubernetes uses 1)", 1
    elif resource_type == APPLICATION:
        yield from _application_counts(props)


def judge(what: str, where: str, raw: Any, minimum: int, policy: str = "minimum-replicas") -> str | None:
    """One message when a replica count is malformed, out of Kubernetes' range, or under `minimum`."""
    count = as_whole_number(raw)
    if count is None:
        return (
            f"{what}: {where} is {brief(raw)}, not a whole number written in ASCII digits, so it cannot "
            f"be checked against minReplicas {fmt_num(minimum)}. Fix: give a whole number of at least "
            f"{fmt_num(minimum)}."
        )
    if count > MAX_REPLICAS:
        return (
            f"{what}: {where} is {fmt_num(count)}, over the largest replica count Kubernetes accepts "
            f"({fmt_num(MAX_REPLICAS)}). Fix: give a whole number from {fmt_num(minimum)} to "
            f"{fmt_num(MAX_REPLICAS)}."
        )
    if count < minimum:
        stack_file, policy_file = stack_files()
        return f"{what}: {where} is {fmt_num(count)}, under minReplicas {fmt_num(minimum)}. " + _FIX.format(
            min=fmt_num(minimum), policy=policy, stack_file=stack_file, policy_file=policy_file
        )
    return None


def replicas_findings(
    resource_type: str, props: Any, name: str, minimum: int, *, rendered: bool = False
) -> list[str]:
    """One message per replica count under `minimum` or not a whole number.

    `rendered`: the resource is an object an Application renders, whose omitted `replicas` the stack
    policy judges instead.
    """
    what = label(resource_type, props, name)
    found = (
        judge(what, where, raw, minimum) for where, raw in _counts(resource_type, props, rendered=rendered)
    )
    return [message for message in found if message is not None]


def _validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
    minimum = min_replicas(args.get_config())
    rendered = rendered_from_application(args.urn)
    for message in replicas_findings(args.resource_type, args.props, args.name, minimum, rendered=rendered):
        report(message, None)


MINIMUM_REPLICAS = ResourceValidationPolicy(
    name="minimum-replicas",
    description="Deployments, StatefulSets, HPAs and Argo CD Applications run at least minReplicas replicas.",
    validate=_validate,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=SCHEMA,
)


def _hpa_targets(resources: Sequence[PolicyResource]) -> dict[tuple[str | None, str, str], str]:
    """(namespace, kind, name) of each workload a rendered HPA (any version) targets -> the HPA's label."""
    owners: dict[tuple[str | None, str, str], str] = {}
    for hpa in resources:
        if not is_hpa(hpa.resource_type) or not rendered_from_application(hpa.urn):
            continue
        target = mapping(get_path(hpa.props, "spec", "scaleTargetRef"))
        kind, name = (target or {}).get("kind"), (target or {}).get("name")
        if isinstance(kind, str) and isinstance(name, str):
            namespace = get_path(hpa.props, "metadata", "namespace")
            key = (namespace if isinstance(namespace, str) else None, kind, name)
            owners[key] = label(hpa.resource_type, hpa.props, hpa.name)
    return owners


def rendered_findings(resources: Sequence[PolicyResource], minimum: int) -> list[tuple[str, str]]:
    """(urn, message) for each rendered Deployment/StatefulSet that omits `replicas` and no HPA owns."""
    owners = _hpa_targets(resources)
    findings = []
    for r in resources:
        if r.resource_type not in WORKLOADS or not rendered_from_application(r.urn):
            continue
        if not omits_replicas(r.props):
            continue  # minimum-replicas judges an explicit count
        kind = r.resource_type.rsplit(":", 1)[-1]
        name = get_path(r.props, "metadata", "name")
        namespace = get_path(r.props, "metadata", "namespace")
        key = (
            namespace if isinstance(namespace, str) else None,
            kind,
            name if isinstance(name, str) else r.name,
        )
        if key in owners:
            continue  # its count is the HPA's minReplicas, which minimum-replicas judges on the HPA
        where = "spec.replicas (missing and no HorizontalPodAutoscaler targets it, so Kubernetes runs 1)"
        message = judge(
            label(r.resource_type, r.props, r.name), where, 1, minimum, "minimum-replicas-rendered"
        )
        if message is not None:
            findings.append((r.urn, message))
    return findings


def _validate_rendered(args: StackValidationArgs, report: ReportViolation) -> None:
    # An unknown value raises UnknownValueError here, which the SDK reports as "can't judge yet".
    for urn, message in rendered_findings(args.resources, min_replicas(args.get_config())):
        report(message, urn)


MINIMUM_REPLICAS_RENDERED = StackValidationPolicy(
    name="minimum-replicas-rendered",
    description=(
        "A Deployment or StatefulSet an Argo CD Application renders without spec.replicas runs the "
        "minReplicas of the HorizontalPodAutoscaler that targets it, or 1 without one."
    ),
    validate=_validate_rendered,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=SCHEMA,
)
