"""container-resources: containers in Deployments and StatefulSets declare requests and limits."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pulumi_policy import PolicyConfigSchema

from .names import DEPLOYMENT_TYPE, STATEFULSET_TYPE
from .props import ADVISORY, get_path, label, mapping, resource_policy, sequence

DEFAULTS = {"requests": ("cpu", "memory"), "limits": ("memory",)}
_NAMES = {"type": "array", "items": {"type": "string", "enum": ["cpu", "memory", "ephemeral-storage"]}}
SCHEMA = PolicyConfigSchema(
    properties={
        field: {**_NAMES, "default": list(default), "description": f"Resources every container {field}."}
        for field, default in DEFAULTS.items()
    }
)


def required(config: Mapping[str, Any] | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(requests, limits) every container must declare: the configured names, or the defaults."""
    found = []
    for field, default in DEFAULTS.items():
        value = (config or {}).get(field)
        items = sequence(value)
        found.append(
            tuple(items) if value is not None and all(isinstance(i, str) for i in items) else default
        )
    return found[0], found[1]


def container_resources_findings(
    resource_type: str, props: Any, name: str, requests: Sequence[str], limits: Sequence[str]
) -> list[str]:
    """One message per container missing a required request or limit."""
    if resource_type not in (DEPLOYMENT_TYPE, STATEFULSET_TYPE):
        return []
    what = label(resource_type, props, name)
    messages = []
    for i, container in enumerate(sequence(get_path(props, "spec", "template", "spec", "containers"))):
        cname = get_path(container, "name")
        shown = f"container {cname!r}" if isinstance(cname, str) else f"containers[{i}]"
        missing = [
            f"{field}.{r}"
            for field, wanted in (("requests", requests), ("limits", limits))
            for r in wanted
            if (mapping(get_path(container, "resources", field)) or {}).get(r) in (None, "")
        ]
        if missing:
            messages.append(
                f"{what}: {shown} declares no resources.{', resources.'.join(missing)} "
                f"(required requests: {list(requests)}, limits: {list(limits)}). Fix: set them in the "
                "chart's or overlay's container `resources`."
            )
    return messages


CONTAINER_RESOURCES = resource_policy(
    "container-resources",
    "Containers in Deployments and StatefulSets declare resource requests and limits.",
    ADVISORY,
    lambda args: container_resources_findings(
        args.resource_type, args.props, args.name, *required(args.get_config())
    ),
    schema=SCHEMA,
)
