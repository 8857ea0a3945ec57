"""Images: under `maxBytes`, pinned by digest in Application values, and the built digest in workloads."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

from pulumi_policy import PolicyResource, StackValidationArgs
from pulumi_policy.proxy import UnknownValueError

from .names import (
    APPLICATION_TYPE,
    DEPLOYMENT_TYPE,
    IMAGE_SIZE_ANNOTATION,
    IMAGE_SIZE_TYPE,
    LOCAL_SIZE_SOURCE,
    STATEFULSET_TYPE,
)
from .props import (
    ADVISORY,
    MANDATORY,
    Finding,
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
    sequence,
    sources,
    stack_files,
    stack_policy,
)

MAX_BYTES = Threshold("maxBytes", 1_000_000_000, "Smallest compressed image size, in bytes, that is refused.")
_TEMPLATE = ("spec", "template", "spec")
_POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    DEPLOYMENT_TYPE: _TEMPLATE,
    STATEFULSET_TYPE: _TEMPLATE,
    "kubernetes:apps/v1:DaemonSet": _TEMPLATE,
    "kubernetes:apps/v1:ReplicaSet": _TEMPLATE,
    "kubernetes:batch/v1:Job": _TEMPLATE,
    "kubernetes:batch/v1:CronJob": ("spec", "jobTemplate", *_TEMPLATE),
    "kubernetes:core/v1:Pod": ("spec",),
}
"""Where each workload type keeps its pod spec."""
_LOCAL_FIGURE = (
    "size_bytes measured locally, before the push; the registry's figure replaces it after the push"
)
_PIN_FIX = "Fix: deploy by digest (`repository@sha256:...`), as the program does from the built image."


def _unmeasured(what: str, problem: str, limit: int, fix: str) -> str:
    return f"{what}: {problem} cannot be checked against the limit of {fmt_num(limit)} bytes. Fix: {fix}"


def _judge_size(what: str, raw: Any, source: str, limit: int) -> list[str]:
    """A message if `raw` is not a whole number of bytes under `limit`."""
    size = as_whole_number(raw)
    if size is None or size < 0:
        problem = f"{source} is {brief(raw)}, not a whole number of bytes, so the image size"
        fix = "pass the registry's size (the ImageSize resource's size_bytes) into the annotation as a "
        return [_unmeasured(what, problem, limit, fix + "whole-number string.")]
    if size < limit:
        return []
    return [
        f"{what}: image size {fmt_num(size)} bytes ({source}) is at or over the limit of {fmt_num(limit)} "
        "bytes (maxBytes). Fix: make the image smaller (multi-stage build, slimmer base image, fewer "
        f"layers), or raise image-size-limit.maxBytes in {stack_files()[1]} if the size is intended."
    ]


def application_findings(props: Any, name: str, limit: int) -> list[str]:
    """Messages for an Application whose size annotation is missing, malformed or too large."""
    what = label(APPLICATION_TYPE, props, name)
    annotations = mapping(get_path(props, "metadata", "annotations"))
    if annotations is not None and IMAGE_SIZE_ANNOTATION in annotations:
        source = f"annotation {IMAGE_SIZE_ANNOTATION}"
        return _judge_size(what, annotations[IMAGE_SIZE_ANNOTATION], source, limit)
    fix = (
        "set it from the ImageSize resource's size_bytes (components/app_release.py does this for every app)."
    )
    problem = f"annotation {IMAGE_SIZE_ANNOTATION} is missing, so the image size"
    return [_unmeasured(what, problem, limit, fix)] if is_managed(props) else []


def image_size_findings(props: Any, name: str, limit: int) -> list[str]:
    """Messages for one ImageSize resource's `size_bytes` output, naming where the figure comes from."""
    image = get_path(props, "image")
    what = f"ImageSize '{name}'" + (f" ({image})" if isinstance(image, str) and image else "")
    if (m := mapping(props)) is None or "size_bytes" not in m:
        fix = "the ImageSize provider must return size_bytes."
        return [_unmeasured(what, "output size_bytes is missing, so the size", limit, fix)]
    try:
        size_source = m.get("size_source")
    except UnknownValueError:
        size_source = None
    local = isinstance(size_source, str) and size_source.startswith(LOCAL_SIZE_SOURCE)
    source = _LOCAL_FIGURE if local else "registry size_bytes"
    return _judge_size(what, m["size_bytes"], source, limit)


class ImageRef(NamedTuple):
    """A parsed image reference: `repository[:tag][@digest]`."""

    repository: str
    tag: str | None
    digest: str | None


def parse_ref(ref: str) -> ImageRef:
    """Split an image reference; a `:` after the last `/` starts the tag."""
    name, _, digest = ref.strip().partition("@")
    repository, colon, tag = name.rpartition(":")
    if not colon or "/" in tag:
        repository, tag = name, ""
    return ImageRef(repository, tag or None, digest or None)


def _helm_image(src: Any) -> dict[str, Any]:
    """`image.repository/tag/digest` after Argo CD applies Helm parameters over valuesObject."""
    image = dict(mapping(get_path(src, "helm", "valuesObject", "image")) or {})
    for param in sequence(get_path(src, "helm", "parameters")):
        name = get_path(param, "name")
        if isinstance(name, str) and name.startswith("image.") and name.count(".") == 1:
            image[name.split(".", 1)[1]] = get_path(param, "value")
    return image


def _kustomize_images(src: Any) -> Iterator[tuple[int, str, ImageRef]]:
    """(index, entry, target) of each `<name>=<reference>` entry of a kustomize source."""
    for i, entry in enumerate(sequence(get_path(src, "kustomize", "images"))):
        if isinstance(entry, str):
            yield i, entry, parse_ref(entry.split("=", 1)[-1])


def _is_digest(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("sha256:")


def pinning_findings(props: Any, name: str) -> list[str]:
    """Messages for `latest` tags and tag-only references in an Application's image values."""
    what, messages = label(APPLICATION_TYPE, props, name), []
    for _, src in sources(props):
        image = _helm_image(src)
        repo, tag, digest = image.get("repository"), image.get("tag"), image.get("digest")
        if tag == "latest" or (isinstance(repo, str) and parse_ref(repo).tag == "latest"):
            messages.append(f"{what}: helm image.tag is 'latest', found {brief(image)}. {_PIN_FIX}")
        elif image and not (isinstance(repo, str) and "@sha256:" in repo) and not _is_digest(digest):
            messages.append(
                f"{what}: helm image is not pinned by digest (image.digest is {brief(digest)}, "
                f"image.tag is {brief(tag)}). {_PIN_FIX}"
            )
        for i, entry, target in _kustomize_images(src):
            problem = "uses the 'latest' tag" if target.tag == "latest" else "is not pinned by digest"
            if target.tag == "latest" or target.digest is None:
                messages.append(f"{what}: kustomize images[{i}] {brief(entry)} {problem}. {_PIN_FIX}")
    return messages


def built_images(props: Any) -> set[tuple[str, str]]:
    """(repository, digest) pairs an Application pins: helm image values or kustomize images entries."""
    refs = []
    for _, src in sources(props):
        image = _helm_image(src)
        if isinstance(repo := image.get("repository"), str) and repo:
            ref, digest = parse_ref(repo), image.get("digest")
            refs.append(ref if ref.digest or not _is_digest(digest) else ref._replace(digest=digest))
        refs += [target for _, _, target in _kustomize_images(src)]
    return {(ref.repository, ref.digest) for ref in refs if ref.digest}


def _container_images(resource_type: str, props: Any) -> list[str]:
    """Images of a workload's containers (not init containers)."""
    path = _POD_SPEC_PATHS.get(resource_type)
    containers = sequence(get_path(props, *path, "containers")) if path else ()
    return [str(get_path(c, "image")) for c in containers if mapping(c) is not None]


def _built_image_findings(application: PolicyResource, children: list[PolicyResource]) -> list[Finding]:
    """(urn, message) for workloads rendered from `application` that do not run its pinned image."""
    what = label(APPLICATION_TYPE, application.props, application.name)
    pins = built_images(application.props)
    if not pins:
        return [
            (
                application.urn,
                f"{what}: hands its chart or overlay no image pinned by digest, so no "
                "rendered workload can be checked. Fix: pin the image (helm image.repository + image.digest, "
                "or a kustomize images entry `<name>=<repository>@<digest>`).",
            )
        ]
    shown = ", ".join(sorted(f"{r}@{d}" for r, d in pins))
    workloads = [c for c in children if c.resource_type in _POD_SPEC_PATHS]
    findings = []
    for w in workloads:
        images = _container_images(w.resource_type, w.props)
        if not any((r.repository, r.digest) in pins for r in map(parse_ref, images)):
            runs = images or "no containers"
            message = (
                f"{label(w.resource_type, w.props, w.name)} rendered from {what} runs {runs}, not the image "
                f"this stack built ({shown}). Fix: for kustomize, the images entry's name (the app's "
                "source.imageName) must match the image name in the overlay; for Helm, the chart must render "
                "image.repository@image.digest."
            )
            findings.append((w.urn, message))
    if len(findings) == len(workloads):
        message = (
            f"{what}: none of its {len(workloads)} rendered workload(s) runs the image this stack built "
            f"({shown}); at least one must. Fix: make the chart or overlay use the image the Application "
            "hands it."
        )
        findings.append((application.urn, message))
    return findings


def _rendered(args: StackValidationArgs) -> Iterator[Finding]:
    """Findings for each Application with rendered children; not applicable without any."""
    children: dict[str, list[PolicyResource]] = {}
    for r in args.resources:
        if r.parent is not None and r.parent.resource_type == APPLICATION_TYPE:
            children.setdefault(r.parent.urn, []).append(r)
    if not children:
        args.not_applicable(
            "no rendered objects: run `make policy-check STACK=<stack>` to render charts and overlays"
        )
    apps = (r for r in args.resources if r.urn in children)
    return each_known(apps, lambda app: _built_image_findings(app, children[app.urn]))


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
        lambda r: [
            (r.urn, m) for m in image_size_findings(r.props, r.name, MAX_BYTES.read(args.get_config()))
        ],
    ),
    schema=MAX_BYTES.schema,
)
IMAGE_PINNED_BY_DIGEST = resource_policy(
    "image-pinned-by-digest",
    "Application image values are pinned by digest: no 'latest' tag and no tag-only reference.",
    ADVISORY,
    lambda args: pinning_findings(args.props, args.name),
    types=(APPLICATION_TYPE,),
)
WORKLOAD_USES_BUILT_IMAGE = stack_policy(
    "workload-uses-built-image",
    "Workloads rendered from an Application run the image pinned to the digest this stack built.",
    MANDATORY,
    _rendered,
)
