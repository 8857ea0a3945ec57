"""minimum-replicas: workloads, autoscalers and Argo CD Applications run at least `minReplicas` pods."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from .props import (
    APPLICATION,
    DEPLOYMENT,
    HPA,
    STATEFULSET,
    as_whole_number,
    config_int,
    fmt_num,
    get_path,
    label,
    mapping,
    sequence,
)

DEFAULT_MIN_REPLICAS = 3
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
    "Fix: raise it to at least {min} (the app's `replicas` in Pulumi.<stack>.yaml, which the chart or "
    "overlay must honour), or lower minimum-replicas.minReplicas in policies/config.<stack>.json "
    "for a non-production stack."
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
            shown = f" ({target})" if isinstance(target, str) else ""
            yield f"{prefix}.kustomize.replicas[{j}].count{shown}", get_path(entry, "count")


def _counts(resource_type: str, props: Any) -> Iterator[tuple[str, Any]]:
    """(where, value) of the replica counts that apply to this resource type."""
    if resource_type in (DEPLOYMENT, STATEFULSET):
        spec = get_path(props, "spec")
        if mapping(spec) is not None and "replicas" in spec and spec["replicas"] is not None:
            yield "spec.replicas", spec["replicas"]
        else:
            yield "spec.replicas (missing, Kubernetes runs 1)", 1
    elif resource_type == HPA:
        spec = get_path(props, "spec")
        if mapping(spec) is not None and "minReplicas" in spec and spec["minReplicas"] is not None:
            yield "spec.minReplicas", spec["minReplicas"]
        else:
            yield "spec.minReplicas (missing, Kubernetes uses 1)", 1
    elif resource_type == APPLICATION:
        yield from _application_counts(props)


def replicas_findings(resource_type: str, props: Any, name: str, minimum: int) -> list[str]:
    """One message per replica count under `minimum` or not a whole number."""
    what = label(resource_type, props, name)
    messages = []
    for where, raw in _counts(resource_type, props):
        count = as_whole_number(raw)
        if count is None:
            messages.append(
                f"{what}: {where} is {raw!r}, not a whole number, so it cannot be checked against "
                f"minReplicas {fmt_num(minimum)}. Fix: give a whole number of at least {fmt_num(minimum)}."
            )
        elif count < minimum:
            messages.append(
                f"{what}: {where} is {fmt_num(count)}, under minReplicas {fmt_num(minimum)}. "
                + _FIX.format(min=fmt_num(minimum))
            )
    return messages


def _validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
    minimum = min_replicas(args.get_config())
    for message in replicas_findings(args.resource_type, args.props, args.name, minimum):
        report(message, None)


MINIMUM_REPLICAS = ResourceValidationPolicy(
    name="minimum-replicas",
    description="Deployments, StatefulSets, HPAs and Argo CD Applications run at least minReplicas replicas.",
    validate=_validate,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=SCHEMA,
)
