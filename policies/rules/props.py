"""Defensive readers for resource props, which arrive as read-only Mapping proxies with float numbers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pulumi_policy.proxy import UnknownValueError

__all__ = [
    "APPLICATION",
    "DEPLOYMENT",
    "HPA",
    "MANAGED_BY",
    "STATEFULSET",
    "UnknownValueError",
    "as_whole_number",
    "fmt_num",
    "get_path",
    "is_managed",
    "label",
    "mapping",
    "sequence",
]

# The pack runs from its own folder, so it keeps its own copy of components/names.py's spellings;
# tests/test_names.py asserts that each equals the program's.
APPLICATION = "kubernetes:argoproj.io/v1alpha1:Application"
APP_PROJECT = "kubernetes:argoproj.io/v1alpha1:AppProject"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
STATEFULSET = "kubernetes:apps/v1:StatefulSet"
HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
SECRET = "kubernetes:core/v1:Secret"
IMAGE_SIZE = "pulumi-python:dynamic/image:ImageSize"
HEALTH_CHECK = "pulumi-python:dynamic/health:HealthCheck"
IMAGE_SIZE_ANNOTATION = "gitops-deploy/image-size-bytes"
MANAGED_BY = ("app.kubernetes.io/managed-by", "gitops-deploy")
PULL_SECRET_ROLE = ("gitops-deploy/role", "image-pull-secret")

_MISSING = object()


def mapping(value: Any) -> Mapping[str, Any] | None:
    """The value if it is a mapping (dict or the SDK's read-only proxy), else None."""
    return value if isinstance(value, Mapping) else None


def sequence(value: Any) -> Sequence[Any]:
    """The value if it is a list-like (list or the SDK's list proxy), else an empty tuple."""
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return value
    return ()


def get_path(props: Any, *path: str, default: Any = None) -> Any:
    """`props[a][b]...`, or `default` where a key is missing or a level is not a mapping.

    Unknown values still raise UnknownValueError, so a preview reports "can't judge yet".
    """
    current = props
    for key in path:
        m = mapping(current)
        if m is None or key not in m:
            return default
        current = m[key]
    return current


def as_whole_number(value: Any) -> int | None:
    """An int from an int, a whole float (gRPC numbers are floats) or a digit string; None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit() or (text.startswith("-") and text[1:].isdigit()):
            return int(text)
    return None


def fmt_num(value: Any) -> str:
    """A number as people write it: 3.0 -> '3', 1e9 -> '1,000,000,000'; anything else as repr."""
    if isinstance(value, bool):
        return repr(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.3f}".rstrip("0").rstrip(".")
    return repr(value)


def label(resource_type: str, props: Any, fallback_name: str) -> str:
    """`Kind 'namespace/name'` for messages, from metadata when it is readable."""
    kind = resource_type.rsplit(":", 1)[-1] or resource_type
    try:
        name = get_path(props, "metadata", "name")
        namespace = get_path(props, "metadata", "namespace")
    except UnknownValueError:
        name, namespace = None, None
    shown = name if isinstance(name, str) and name else fallback_name
    if isinstance(namespace, str) and namespace:
        shown = f"{namespace}/{shown}"
    return f"{kind} '{shown}'"


def is_managed(props: Any) -> bool:
    """Whether the object carries this program's managed-by label."""
    try:
        return get_path(props, "metadata", "labels", MANAGED_BY[0]) == MANAGED_BY[1]
    except UnknownValueError:
        return False


def config_int(config: Mapping[str, Any] | None, key: str, default: int) -> int:
    """A whole-number threshold from policy config (floats over gRPC), or the default."""
    value = as_whole_number((config or {}).get(key, default))
    return default if value is None else value
