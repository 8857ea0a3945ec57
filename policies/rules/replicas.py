"""minimum-replicas: workloads, autoscalers and Argo CD Applications run at least `minReplicas` pods.

`minimum-replicas-rendered` judges what an Application renders as one set, HPAs included
(docs/engine-rules.md#horizontalpodautoscaler-and-omitted-replicas).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from pulumi_policy import PolicyResource, ResourceValidationArgs

from .names import APPLICATION_TYPE, DEPLOYMENT_TYPE, STATEFULSET_TYPE
from .props import (
    MANDATORY,
    Finding,
    Threshold,
    as_whole_number,
    brief,
    fmt_num,
    get_path,
    is_hpa,
    label,
    mapping,
    rendered_from_application,
    resource_policy,
    sequence,
    sources,
    stack_files,
    stack_policy,
)

MIN_REPLICAS = Threshold(
    "minReplicas", 3, "Fewest replicas an app may run (a dev stack may lower it in its policy config)."
)
MAX_REPLICAS = 2**31 - 1
"""Kubernetes stores replica counts as int32; a larger count is rejected, not run."""
_WORKLOADS = (DEPLOYMENT_TYPE, STATEFULSET_TYPE)


def _application_counts(props: Any) -> Iterator[tuple[str, Any]]:
    """(where, value) of every replica count an Application hands its chart or overlay."""
    for prefix, src in sources(props):
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


def _omits_replicas(props: Any) -> bool:
    """Whether a workload leaves `spec.replicas` out (Kubernetes then runs 1, unless an HPA scales it)."""
    spec = get_path(props, "spec")
    return mapping(spec) is None or spec.get("replicas") is None


def _counts(resource_type: str, props: Any, *, rendered: bool) -> Iterator[tuple[str, Any]]:
    """(where, value) of the replica counts that apply to this resource type."""
    if resource_type in _WORKLOADS:
        if not _omits_replicas(props):
            yield "spec.replicas", get_path(props, "spec", "replicas")
        elif not rendered:  # a rendered one is judged by minimum-replicas-rendered, which sees the HPAs
            yield "spec.replicas (missing, Kubernetes runs 1)", 1
    elif is_hpa(resource_type):
        spec = get_path(props, "spec")
        if mapping(spec) is not None and spec.get("minReplicas") is not None:
            yield "spec.minReplicas", spec["minReplicas"]
        else:
            yield "spec.minReplicas (missing, Kubernetes uses 1)", 1
    elif resource_type == APPLICATION_TYPE:
        yield from _application_counts(props)


def _judge(what: str, where: str, raw: Any, minimum: int, policy: str = "minimum-replicas") -> str | None:
    """One message when a replica count is malformed, out of Kubernetes' range, or under `minimum`."""
    count, least = as_whole_number(raw), fmt_num(minimum)
    if count is None:
        return (
            f"{what}: {where} is {brief(raw)}, not a whole number written in ASCII digits, so it cannot "
            f"be checked against minReplicas {least}. Fix: give a whole number of at least {least}."
        )
    if count > MAX_REPLICAS:
        return (
            f"{what}: {where} is {fmt_num(count)}, over the largest replica count Kubernetes accepts "
            f"({fmt_num(MAX_REPLICAS)}). Fix: give a whole number from {least} to {fmt_num(MAX_REPLICAS)}."
        )
    if count < minimum:
        stack_file, policy_file = stack_files()
        return (
            f"{what}: {where} is {fmt_num(count)}, under minReplicas {least}. Fix: raise it to at least "
            f"{least} (the app's `replicas` in {stack_file}, which the chart or overlay must honour), or "
            f"lower {policy}.minReplicas in {policy_file} for a non-production stack."
        )
    return None


def replicas_findings(
    resource_type: str, props: Any, name: str, minimum: int, *, rendered: bool = False
) -> list[str]:
    """One message per replica count under `minimum` or not a whole number (`rendered`: by an Application)."""
    what, counts = label(resource_type, props, name), _counts(resource_type, props, rendered=rendered)
    return [m for where, raw in counts if (m := _judge(what, where, raw, minimum)) is not None]


def _key(props: Any, kind: str, name: str) -> tuple[str | None, str, str]:
    """(namespace, kind, name) of an object, its namespace read from `props`."""
    namespace = get_path(props, "metadata", "namespace")
    return namespace if isinstance(namespace, str) else None, kind, name


def _hpa_targets(resources: Sequence[PolicyResource]) -> set[tuple[str | None, str, str]]:
    """(namespace, kind, name) of each workload a rendered HPA (any version) targets."""
    owned = set()
    for hpa in resources:
        if is_hpa(hpa.resource_type) and rendered_from_application(hpa.urn):
            target = mapping(get_path(hpa.props, "spec", "scaleTargetRef")) or {}
            kind, name = target.get("kind"), target.get("name")
            if isinstance(kind, str) and isinstance(name, str):
                owned.add(_key(hpa.props, kind, name))
    return owned


def rendered_findings(resources: Sequence[PolicyResource], minimum: int) -> list[Finding]:
    """(urn, message) for each rendered Deployment/StatefulSet that omits `replicas` and no HPA owns."""
    owned, findings = _hpa_targets(resources), []
    for r in resources:
        if r.resource_type not in _WORKLOADS or not rendered_from_application(r.urn):
            continue
        if not _omits_replicas(r.props):
            continue  # minimum-replicas judges an explicit count
        name = get_path(r.props, "metadata", "name")
        kind = r.resource_type.rsplit(":", 1)[-1]
        if _key(r.props, kind, name if isinstance(name, str) else r.name) in owned:
            continue  # its count is the HPA's minReplicas, which minimum-replicas judges on the HPA
        where = "spec.replicas (missing and no HorizontalPodAutoscaler targets it, so Kubernetes runs 1)"
        what = label(r.resource_type, r.props, r.name)
        if (message := _judge(what, where, 1, minimum, "minimum-replicas-rendered")) is not None:
            findings.append((r.urn, message))
    return findings


def _judge_resource(args: ResourceValidationArgs) -> list[str]:
    minimum, rendered = MIN_REPLICAS.read(args.get_config()), rendered_from_application(args.urn)
    return replicas_findings(args.resource_type, args.props, args.name, minimum, rendered=rendered)


MINIMUM_REPLICAS = resource_policy(
    "minimum-replicas",
    "Deployments, StatefulSets, HPAs and Argo CD Applications run at least minReplicas replicas.",
    MANDATORY,
    _judge_resource,
    schema=MIN_REPLICAS.schema,
)
MINIMUM_REPLICAS_RENDERED = stack_policy(
    "minimum-replicas-rendered",
    "A Deployment or StatefulSet an Argo CD Application renders without spec.replicas runs the "
    "minReplicas of the HorizontalPodAutoscaler that targets it, or 1 without one.",
    MANDATORY,
    lambda args: rendered_findings(args.resources, MIN_REPLICAS.read(args.get_config())),
    schema=MIN_REPLICAS.schema,
)
