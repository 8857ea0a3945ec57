"""Kubernetes hygiene: image pull secrets are typed `dockerconfigjson`; containers declare resources."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pulumi_policy import PolicyConfigSchema
from pulumi_policy.proxy import UnknownValueError

from .names import (
    DEPLOYMENT_TYPE,
    DOCKERCONFIGJSON,
    PULL_SECRET_ROLE_KEY,
    PULL_SECRET_ROLE_VALUE,
    SECRET_TYPE,
    STATEFULSET_TYPE,
)
from .props import ADVISORY, brief, get_path, label, mapping, resource_policy, sequence

_DOCKER_KEYS = {".dockerconfigjson", ".dockercfg"}


def _data_keys(props: Any) -> set[str]:
    """Keys of `data` and `stringData`; only keys, values may be secret and are never read."""
    keys: set[str] = set()
    for field in ("data", "stringData"):
        try:
            keys.update(str(k) for k in mapping(get_path(props, field)) or ())
        except UnknownValueError:
            continue
    return keys


def _is_pull_secret(props: Any) -> bool:
    """Labelled as the app's pull secret, carrying docker config keys, or typed as one."""
    if get_path(props, "metadata", "labels", PULL_SECRET_ROLE_KEY) == PULL_SECRET_ROLE_VALUE:
        return True
    type_ = get_path(props, "type")
    return (isinstance(type_, str) and type_.startswith("kubernetes.io/dockerc")) or bool(
        _data_keys(props) & _DOCKER_KEYS
    )


def pull_secret_findings(props: Any, name: str) -> list[str]:
    """A message if a pull secret is not of type dockerconfigjson or lacks its `.dockerconfigjson` key."""
    if not _is_pull_secret(props):
        return []
    what, type_, keys = label(SECRET_TYPE, props, name), get_path(props, "type"), _data_keys(props)
    fix = (
        f"Fix: type: {DOCKERCONFIGJSON} with a `.dockerconfigjson` key "
        "(`kubectl create secret docker-registry` makes one; components/registry_secret.py does)."
    )
    if type_ != DOCKERCONFIGJSON:
        return [f"{what}: type is {brief(type_)}, expected {DOCKERCONFIGJSON!r}. {fix}"]
    if keys and ".dockerconfigjson" not in keys:
        return [f"{what}: has keys {sorted(keys)} but no '.dockerconfigjson'. {fix}"]
    return []


PULL_SECRET_TYPE = resource_policy(
    "pull-secret-type",
    "Image pull secrets are of type kubernetes.io/dockerconfigjson.",
    ADVISORY,
    lambda args: pull_secret_findings(args.props, args.name),
    types=(SECRET_TYPE,),
)


_DEFAULTS = {"requests": ("cpu", "memory"), "limits": ("memory",)}
_NAMES = {"type": "array", "items": {"type": "string", "enum": ["cpu", "memory", "ephemeral-storage"]}}
_SCHEMA = PolicyConfigSchema(
    properties={
        field: {**_NAMES, "default": list(default), "description": f"Resources every container {field}."}
        for field, default in _DEFAULTS.items()
    }
)


def required(config: Mapping[str, Any] | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(requests, limits) every container must declare: the configured names, or the defaults."""
    found = []
    for field, default in _DEFAULTS.items():
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
    schema=_SCHEMA,
)
