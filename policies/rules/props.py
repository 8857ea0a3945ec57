"""The one way to write a rule: prop readers, thresholds and policy constructors.

Props arrive as read-only proxies with float numbers (docs/engine-rules.md#resource-props-on-the-wire).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError

from .names import APPLICATION_TYPE, MANAGED_BY_KEY, MANAGED_BY_VALUE

MANDATORY, ADVISORY = EnforcementLevel.MANDATORY, EnforcementLevel.ADVISORY
MAX_DIGITS = 19
"""Longest digit string read as a number: int64 has 19 digits, and no count or size needs more."""
_DIGITS = re.compile(rf"0|[1-9][0-9]{{0,{MAX_DIGITS - 1}}}")
"""ASCII digits without leading zeros or sign (`str.isdigit` also accepts "²" and full-width digits)."""
_T = TypeVar("_T")
Finding = tuple[str, str]  # (urn, message) of a stack policy


def stack_files() -> tuple[str, str]:
    """(stack file, policy config) of the stack being judged (PULUMI_STACK), for a message's fix."""
    stack = os.environ.get("PULUMI_STACK", "").rsplit("/", 1)[-1] or "<stack>"
    return f"Pulumi.{stack}.yaml", f"policies/config.{stack}.json"


def mapping(value: Any) -> Mapping[str, Any] | None:
    """The value if it is a mapping (dict or the SDK's read-only proxy), else None."""
    return value if isinstance(value, Mapping) else None


def sequence(value: Any) -> Sequence[Any]:
    """The value if it is a list-like (list or the SDK's list proxy), else an empty tuple."""
    return value if isinstance(value, Sequence) and not isinstance(value, str | bytes) else ()


def get_path(props: Any, *path: str, default: Any = None) -> Any:
    """`props[a][b]...`, or `default` where a key is missing; an unknown value still raises."""
    for key in path:
        if (m := mapping(props)) is None or key not in m:
            return default
        props = m[key]
    return props


def sources(props: Any) -> list[tuple[str, Mapping[str, Any]]]:
    """(where, source) of an Application's `spec.source` and each of its `spec.sources`."""
    found = [("spec.source", get_path(props, "spec", "source"))]
    found += [(f"spec.sources[{i}]", s) for i, s in enumerate(sequence(get_path(props, "spec", "sources")))]
    return [(where, src) for where, src in found if mapping(src) is not None]


def as_whole_number(value: Any) -> int | None:
    """An int, a finite whole float or canonical ASCII digits, else None: malformed, never a guessed pass."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) and value.is_integer() else None
    return int(value) if isinstance(value, str) and _DIGITS.fullmatch(value) else None


def is_hpa(resource_type: str) -> bool:
    """Whether a type token is a HorizontalPodAutoscaler of any `autoscaling/*` version."""
    group_version, _, kind = resource_type.removeprefix("kubernetes:").rpartition(":")
    return kind == "HorizontalPodAutoscaler" and group_version.startswith("autoscaling/")


def rendered_from_application(urn: str) -> bool:
    """Whether a URN names an object an Argo CD Application renders (its parent chain holds one)."""
    parts = urn.split("::")
    return len(parts) >= 4 and APPLICATION_TYPE in parts[2].split("$")[:-1]


def fmt_num(value: Any) -> str:
    """A number as people write it: 3.0 -> '3', 1e9 -> '1,000,000,000'; anything else as `brief`."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
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
    try:
        name, namespace = get_path(props, "metadata", "name"), get_path(props, "metadata", "namespace")
    except UnknownValueError:
        name, namespace = None, None
    shown = name if isinstance(name, str) and name else fallback_name
    if isinstance(namespace, str) and namespace:
        shown = f"{namespace}/{shown}"
    return f"{resource_type.rsplit(':', 1)[-1] or resource_type} '{shown}'"


def is_managed(props: Any) -> bool:
    """Whether the object carries this program's managed-by label."""
    try:
        return get_path(props, "metadata", "labels", MANAGED_BY_KEY) == MANAGED_BY_VALUE
    except UnknownValueError:
        return False


@dataclass(frozen=True)
class Threshold:
    """A whole-number policy config key (at least 1) with its default."""

    key: str
    default: int
    description: str

    @property
    def schema(self) -> PolicyConfigSchema:
        spec = {"type": "integer", "minimum": 1, "default": self.default, "description": self.description}
        return PolicyConfigSchema(properties={self.key: spec})

    def read(self, config: Mapping[str, Any] | None) -> int:
        """The configured value (a float over gRPC), or the default."""
        value = as_whole_number((config or {}).get(self.key, self.default))
        return self.default if value is None else value


def resource_policy(
    name: str,
    description: str,
    level: EnforcementLevel,
    judge: Callable[[ResourceValidationArgs], Iterable[str]],
    *,
    types: Collection[str] = (),
    schema: PolicyConfigSchema | None = None,
) -> ResourceValidationPolicy:
    """A policy reporting each message `judge` finds on one resource (of `types`, when given)."""

    def validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
        if not types or args.resource_type in types:
            for message in judge(args):
                report(message, None)

    return ResourceValidationPolicy(
        name=name, description=description, validate=validate, enforcement_level=level, config_schema=schema
    )


def stack_policy(
    name: str,
    description: str,
    level: EnforcementLevel,
    judge: Callable[[StackValidationArgs], Iterable[Finding]],
    *,
    schema: PolicyConfigSchema | None = None,
) -> StackValidationPolicy:
    """A policy reporting each (urn, message) `judge` finds in the stack."""

    def validate(args: StackValidationArgs, report: ReportViolation) -> None:
        for urn, message in judge(args):
            report(message, urn)

    return StackValidationPolicy(
        name=name, description=description, validate=validate, enforcement_level=level, config_schema=schema
    )


def each_known(items: Iterable[_T], judge: Callable[[_T], Iterable[Finding]]) -> Iterator[Finding]:
    """`judge`'s findings on each item; the first unknown value is raised after the rest are judged."""
    unknown: UnknownValueError | None = None
    for item in items:
        try:
            found = list(judge(item))
        except UnknownValueError as exc:
            unknown = unknown or exc
            continue
        yield from found
    if unknown is not None:
        raise unknown
