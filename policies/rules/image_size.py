"""image-size-limit: no app may deploy an image of `maxBytes` or more (Application and registry)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi_policy.proxy import UnknownValueError

from .names import APPLICATION_TYPE, IMAGE_SIZE_ANNOTATION, IMAGE_SIZE_TYPE, LOCAL_SIZE_SOURCE
from .props import (
    MANDATORY,
    Threshold,
    as_whole_number,
    brief,
    each_known,
    fmt_num,
    get_path,
    is_managed,
    label,
    mapping,
    resource_policy,
    stack_files,
    stack_policy,
)

MAX_BYTES = Threshold("maxBytes", 1_000_000_000, "Smallest compressed image size, in bytes, that is refused.")
_FIX = (
    "Fix: make the image smaller (multi-stage build, slimmer base image, fewer layers), or raise "
    "image-size-limit.maxBytes in {policy_file} if the size is intended."
)


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
    what = label(APPLICATION_TYPE, props, name)
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


IMAGE_SIZE_LIMIT = resource_policy(
    "image-size-limit",
    "An Argo CD Application may not roll out an image of maxBytes or more (compressed).",
    MANDATORY,
    lambda args: application_findings(args.props, args.name, MAX_BYTES.read(args.get_config())),
    types=(APPLICATION_TYPE,),
    schema=MAX_BYTES.schema,
)
IMAGE_SIZE_REGISTRY = stack_policy(
    "image-size-registry",
    "Every image the registry reports (ImageSize size_bytes) is under maxBytes.",
    MANDATORY,
    lambda args: each_known(  # an unknown size is judged once the registry holds the image
        (r for r in args.resources if r.resource_type == IMAGE_SIZE_TYPE),
        lambda r: (
            (r.urn, m) for m in image_size_findings(r.props, r.name, MAX_BYTES.read(args.get_config()))
        ),
    ),
    schema=MAX_BYTES.schema,
)
