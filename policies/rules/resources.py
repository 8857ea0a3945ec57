"""container-resources: containers in Deployments and StatefulSets declare requests and limits."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from .props import DEPLOYMENT, STATEFULSET, get_path, label, mapping, sequence

DEFAULT_REQUESTS = ("cpu", "memory")
DEFAULT_LIMITS = ("memory",)
_LIST = {"type": "array", "items": {"type": "string", "enum": ["cpu", "memory", "ephemeral-storage"]}}
SCHEMA = PolicyConfigSchema(
    properties={
        "requests": {
            **_LIST,
            "default": list(DEFAULT_REQUESTS),
            "description": "Resources every container requests.",
        },
        "limits": {
            **_LIST,
            "default": list(DEFAULT_LIMITS),
            "description": "Resources every container limits.",
        },
    }
)


def _names(config: Mapping[str, Any] | None, key: str, default: Sequence[str]) -> tuple[str, ...]:
    value = (config or {}).get(key)
    items = sequence(value)
    if value is None or not all(isinstance(i, str) for i in items):
        return tuple(default)
    return tuple(items)


def required(config: Mapping[str, Any] | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(requests, limits) every container must declare."""
    return _names(config, "requests", DEFAULT_REQUESTS), _names(config, "limits", DEFAULT_LIMITS)


def container_resources_findings(
    resource_type: str, props: Any, name: str, requests: Sequence[str], limits: Sequence[str]
) -> list[str]:
    """One message per container missing a required request or limit."""
    if resource_type not in (DEPLOYMENT, STATEFULSET):
        return []
    what = label(resource_type, props, name)
    messages = []
    for i, container in enumerate(sequence(get_path(props, "spec", "template", "spec", "containers"))):
        cname = get_path(container, "name")
        shown = f"container {cname!r}" if isinstance(cname, str) else f"containers[{i}]"
        missing = []
        for field, wanted in (("requests", requests), ("limits", limits)):
            declared = mapping(get_path(container, "resources", field)) or {}
            missing += [f"{field}.{r}" for r in wanted if declared.get(r) in (None, "")]
        if missing:
            messages.append(
                f"{what}: {shown} declares no resources.{', resources.'.join(missing)} "
                f"(required requests: {list(requests)}, limits: {list(limits)}). Fix: set them in the "
                "chart's or overlay's container `resources`."
            )
    return messages


def _validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
    requests, limits = required(args.get_config())
    for message in container_resources_findings(args.resource_type, args.props, args.name, requests, limits):
        report(message, None)


CONTAINER_RESOURCES = ResourceValidationPolicy(
    name="container-resources",
    description="Containers in Deployments and StatefulSets declare resource requests and limits.",
    validate=_validate,
    enforcement_level=EnforcementLevel.ADVISORY,
    config_schema=SCHEMA,
)
