"""image-size-limit: no app may deploy an image of `maxBytes` or more (Application and registry)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from .props import (
    APPLICATION,
    IMAGE_SIZE,
    IMAGE_SIZE_ANNOTATION,
    UnknownValueError,
    as_whole_number,
    brief,
    config_int,
    fmt_num,
    get_path,
    is_managed,
    label,
    mapping,
    stack_files,
)

DEFAULT_MAX_BYTES = 1_000_000_000
LOCAL_SIZE_SOURCE = "local"
"""ImageSize `size_source` prefix of a local measurement (a copy of components/image_size.py LOCAL_SOURCE)."""
SCHEMA = PolicyConfigSchema(
    properties={
        "maxBytes": {
            "type": "integer",
            "minimum": 1,
            "default": DEFAULT_MAX_BYTES,
            "description": "Smallest compressed image size, in bytes, that is refused.",
        }
    }
)
_FIX = (
    "Fix: make the image smaller (multi-stage build, slimmer base image, fewer layers), or raise "
    "image-size-limit.maxBytes in {policy_file} if the size is intended."
)


def max_bytes(config: Mapping[str, Any] | None) -> int:
    """The configured limit, or the default."""
    return config_int(config, "maxBytes", DEFAULT_MAX_BYTES)


def _judge(what: str, raw: Any, source: str, limit: int) -> str | None:
    """One message if `raw` is not a whole number of bytes under `limit`."""
    size = as_whole_number(raw)
    if size is None or size < 0:
        return (
            f"{what}: {source} is {brief(raw)}, not a whole number of bytes, so the image size "
            f"cannot be checked against the limit of {fmt_num(limit)} bytes. Fix: pass the registry's "
            "size (the ImageSize resource's size_bytes) into the annotation as a whole-number string."
        )
    if size >= limit:
        return (
            f"{what}: image size {fmt_num(size)} bytes ({source}) is at or over the limit of "
            f"{fmt_num(limit)} bytes (maxBytes). {_FIX.format(policy_file=stack_files()[1])}"
        )
    return None


def application_findings(props: Any, name: str, limit: int) -> list[str]:
    """Messages for an Application whose size annotation is missing, malformed or too large."""
    what = label(APPLICATION, props, name)
    annotations = mapping(get_path(props, "metadata", "annotations"))
    if annotations is None or IMAGE_SIZE_ANNOTATION not in annotations:
        if not is_managed(props):
            return []
        return [
            f"{what}: annotation {IMAGE_SIZE_ANNOTATION} is missing, so the image size cannot be "
            f"checked against the limit of {fmt_num(limit)} bytes. Fix: set it from the ImageSize "
            "resource's size_bytes (components/app_release.py does this for every app)."
        ]
    found = _judge(what, annotations[IMAGE_SIZE_ANNOTATION], f"annotation {IMAGE_SIZE_ANNOTATION}", limit)
    return [found] if found else []


def image_size_findings(props: Any, name: str, limit: int) -> list[str]:
    """Messages for one ImageSize resource's `size_bytes` output."""
    image = get_path(props, "image")
    what = f"ImageSize '{name}'" + (f" ({image})" if isinstance(image, str) and image else "")
    m = mapping(props)
    if m is None or "size_bytes" not in m:
        return [
            f"{what}: output size_bytes is missing, so the size cannot be checked against the limit "
            f"of {fmt_num(limit)} bytes. Fix: the ImageSize provider must return size_bytes."
        ]
    found = _judge(what, m["size_bytes"], _provenance(m), limit)
    return [found] if found else []


def _provenance(props: Mapping[str, Any]) -> str:
    """Where the figure comes from: the registry, or (in a preview) the local build."""
    try:
        source = props.get("size_source")
    except UnknownValueError:
        source = None
    if isinstance(source, str) and source.startswith(LOCAL_SIZE_SOURCE):
        return (
            "size_bytes measured locally, before the push; the registry's figure replaces it after the push"
        )
    return "registry size_bytes"


def _validate_application(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != APPLICATION:
        return
    for message in application_findings(args.props, args.name, max_bytes(args.get_config())):
        report(message, None)


def _validate_stack(args: StackValidationArgs, report: ReportViolation) -> None:
    limit = max_bytes(args.get_config())
    unknown: UnknownValueError | None = None
    for resource in args.resources:
        if resource.resource_type != IMAGE_SIZE:
            continue
        try:
            messages = image_size_findings(resource.props, resource.name, limit)
        except UnknownValueError as exc:
            unknown = unknown or exc  # judged once the registry holds the image
            continue
        for message in messages:
            report(message, resource.urn)
    if unknown is not None:
        raise unknown


IMAGE_SIZE_LIMIT = ResourceValidationPolicy(
    name="image-size-limit",
    description="An Argo CD Application may not roll out an image of maxBytes or more (compressed).",
    validate=_validate_application,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=SCHEMA,
)

IMAGE_SIZE_REGISTRY = StackValidationPolicy(
    name="image-size-registry",
    description="Every image the registry reports (ImageSize size_bytes) is under maxBytes.",
    validate=_validate_stack,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=SCHEMA,
)
