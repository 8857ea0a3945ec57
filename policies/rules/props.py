"""Defensive readers for resource props, which arrive as read-only Mapping proxies with float numbers."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

from pulumi_policy.proxy import UnknownValueError

__all__ = [
    "APPLICATION",
    "DEPLOYMENT",
    "HPA",
    "MANAGED_BY",
    "MAX_DIGITS",
    "STATEFULSET",
    "UnknownValueError",
    "as_whole_number",
    "brief",
    "fmt_num",
    "get_path",
    "is_hpa",
    "is_managed",
    "label",
    "mapping",
    "rendered_from_application",
    "sequence",
    "stack_files",
]

# The pack runs from its own folder, so it keeps its own copy of model/names.py's spellings;
# tests/model/test_names.py asserts that each equals the program's.
APPLICATION = "kubernetes:argoproj.io/v1alpha1:Application"
APP_PROJECT = "kubernetes:argoproj.io/v1alpha1:AppProject"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
STATEFULSET = "kubernetes:apps/v1:StatefulSet"
HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
HPA_VERSIONS = ("autoscaling/v1", "autoscaling/v2")
"""The HorizontalPodAutoscaler versions Kubernetes serves (v2beta1 went in 1.25, v2beta2 in 1.26);
`is_hpa` also accepts any later `autoscaling/*` version, whose `spec.minReplicas` means the same."""
SECRET = "kubernetes:core/v1:Secret"
IMAGE_SIZE = "pulumi-python:dynamic/image:ImageSize"
HEALTH_CHECK = "pulumi-python:dynamic/health:HealthCheck"
IMAGE_SIZE_ANNOTATION = "gitops-deploy/image-size-bytes"
MANAGED_BY = ("app.kubernetes.io/managed-by", "gitops-deploy")
PULL_SECRET_ROLE = ("gitops-deploy/role", "image-pull-secret")

_MISSING = object()


def stack_files() -> tuple[str, str]:
    """(stack file, policy config) of the stack being judged, for a message's fix.

    The CLI starts the analyzer with PULUMI_STACK set (pulumi/pulumi sdk/go/common/resource/plugin/
    analyzer_plugin.go), and so does the CLI-free check; the names are the Makefile's and the workflows'.
    """
    stack = os.environ.get("PULUMI_STACK", "").rsplit("/", 1)[-1]
    if not stack:
        return "Pulumi.<stack>.yaml", "policies/config.<stack>.json"
    return f"Pulumi.{stack}.yaml", f"policies/config.{stack}.json"


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


MAX_DIGITS = 19
"""Longest digit string read as a number: int64 has 19 digits, and no count or size needs more."""
_DIGITS = re.compile(rf"0|[1-9][0-9]{{0,{MAX_DIGITS - 1}}}")
"""ASCII digits without leading zeros or sign (`str.isdigit` also accepts "²" and full-width digits)."""


def as_whole_number(value: Any) -> int | None:
    """The one strict number reader of the pack: an int, a finite whole float (gRPC numbers are floats)
    or a canonical ASCII digit string of at most MAX_DIGITS digits; None (malformed) for anything else.

    Anything another reader could take for a different number ("1e9", "0x10", "+3", " 3", "03",
    full-width digits) is malformed, and a rule reports malformed as a violation: a pass is never a guess.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) and value.is_integer() else None
    if isinstance(value, str) and _DIGITS.fullmatch(value):
        return int(value)
    return None


def is_hpa(resource_type: str) -> bool:
    """Whether a type token is a HorizontalPodAutoscaler of any version (`HPA_VERSIONS` and later)."""
    group_version, _, kind = resource_type.removeprefix("kubernetes:").rpartition(":")
    return kind == "HorizontalPodAutoscaler" and group_version.startswith("autoscaling/")


def rendered_from_application(urn: str) -> bool:
    """Whether a URN names an object an Argo CD Application renders (its parent chain holds one).

    Argo CD, not Pulumi, applies those objects, as a set; a rule that needs the other objects of the
    set (an HPA owning a workload) judges them in a stack policy.
    """
    parts = urn.split("::")
    if len(parts) < 4:
        return False
    return APPLICATION in parts[2].split("$")[:-1]


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
    return brief(value)


def brief(value: Any, limit: int = 60) -> str:
    """`repr(value)`, cut to `limit` characters: a message must stay readable whatever a prop holds."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


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
