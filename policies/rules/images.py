"""Image references: pinned by digest in Application values, and the built digest in rendered workloads."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

from pulumi_policy import PolicyResource, StackValidationArgs

from .names import APPLICATION_TYPE, DEPLOYMENT_TYPE, STATEFULSET_TYPE
from .props import (
    ADVISORY,
    MANDATORY,
    Finding,
    brief,
    each_known,
    get_path,
    label,
    mapping,
    resource_policy,
    sequence,
    stack_policy,
)

_TEMPLATE = ("spec", "template", "spec")
POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    DEPLOYMENT_TYPE: _TEMPLATE,
    STATEFULSET_TYPE: _TEMPLATE,
    "kubernetes:apps/v1:DaemonSet": _TEMPLATE,
    "kubernetes:apps/v1:ReplicaSet": _TEMPLATE,
    "kubernetes:batch/v1:Job": _TEMPLATE,
    "kubernetes:batch/v1:CronJob": ("spec", "jobTemplate", *_TEMPLATE),
    "kubernetes:core/v1:Pod": ("spec",),
}
"""Where each workload type keeps its pod spec."""


class ImageRef(NamedTuple):
    """A parsed image reference: `repository[:tag][@digest]`."""

    repository: str
    tag: str | None
    digest: str | None


def parse_ref(ref: str) -> ImageRef:
    """Split an image reference; a `:` after the last `/` starts the tag."""
    name, _, digest = ref.strip().partition("@")
    slash = name.rfind("/")
    colon = name.rfind(":")
    tag = None
    if colon > slash:
        name, tag = name[:colon], name[colon + 1 :]
    return ImageRef(name, tag or None, digest or None)


def _helm_image(src: Any) -> dict[str, Any]:
    """`image.repository/tag/digest` after Argo CD applies Helm parameters over valuesObject."""
    image = dict(mapping(get_path(src, "helm", "valuesObject", "image")) or {})
    for param in sequence(get_path(src, "helm", "parameters")):
        name = get_path(param, "name")
        if isinstance(name, str) and name.startswith("image.") and name.count(".") == 1:
            image[name.split(".", 1)[1]] = get_path(param, "value")
    return image


def _sources(props: Any) -> list[Any]:
    source = get_path(props, "spec", "source")
    found = [source] if mapping(source) is not None else []
    return found + [s for s in sequence(get_path(props, "spec", "sources")) if mapping(s) is not None]


def _kustomize_entries(src: Any) -> Iterator[tuple[int, str]]:
    for i, entry in enumerate(sequence(get_path(src, "kustomize", "images"))):
        if isinstance(entry, str):
            yield i, entry


def pinning_findings(props: Any, name: str) -> list[str]:
    """Messages for `latest` tags and tag-only references in an Application's image values."""
    what = label(APPLICATION_TYPE, props, name)
    fix = "Fix: deploy by digest (`repository@sha256:...`), as the program does from the built image."
    messages = []
    for src in _sources(props):
        image = _helm_image(src)
        if image:
            repo, tag, digest = image.get("repository"), image.get("tag"), image.get("digest")
            pinned_repo = isinstance(repo, str) and "@sha256:" in repo
            if tag == "latest" or (isinstance(repo, str) and parse_ref(repo).tag == "latest"):
                messages.append(f"{what}: helm image.tag is 'latest', found {brief(image)}. {fix}")
            elif not pinned_repo and not (isinstance(digest, str) and digest.startswith("sha256:")):
                messages.append(
                    f"{what}: helm image is not pinned by digest (image.digest is {brief(digest)}, "
                    f"image.tag is {brief(tag)}). {fix}"
                )
        for i, entry in _kustomize_entries(src):
            target = parse_ref(entry.split("=", 1)[-1])
            if target.tag == "latest":
                messages.append(f"{what}: kustomize images[{i}] {brief(entry)} uses the 'latest' tag. {fix}")
            elif target.digest is None:
                messages.append(
                    f"{what}: kustomize images[{i}] {brief(entry)} is not pinned by digest. {fix}"
                )
    return messages


def built_images(props: Any) -> set[tuple[str, str]]:
    """(repository, digest) pairs an Application pins: helm image values or kustomize images entries."""
    pins: set[tuple[str, str]] = set()
    for src in _sources(props):
        image = _helm_image(src)
        repo, digest = image.get("repository"), image.get("digest")
        if isinstance(repo, str) and repo:
            ref = parse_ref(repo)
            if ref.digest:
                pins.add((ref.repository, ref.digest))
            elif isinstance(digest, str) and digest.startswith("sha256:"):
                pins.add((ref.repository, digest))
        for _, entry in _kustomize_entries(src):
            ref = parse_ref(entry.split("=", 1)[-1])
            if ref.digest:
                pins.add((ref.repository, ref.digest))
    return pins


def container_images(resource_type: str, props: Any) -> list[str]:
    """Images of a workload's containers (not init containers)."""
    path = POD_SPEC_PATHS.get(resource_type)
    if path is None:
        return []
    containers = sequence(get_path(props, *path, "containers"))
    return [str(get_path(c, "image")) for c in containers if mapping(c) is not None]


def built_image_findings(
    application: PolicyResource, children: list[PolicyResource]
) -> list[tuple[str, str]]:
    """(urn, message) for workloads rendered from `application` that do not run its pinned image."""
    what = label(APPLICATION_TYPE, application.props, application.name)
    pins = built_images(application.props)
    shown = ", ".join(sorted(f"{r}@{d}" for r, d in pins)) or "none"
    workloads = [c for c in children if c.resource_type in POD_SPEC_PATHS]
    if not pins:
        return [
            (
                application.urn,
                f"{what}: hands its chart or overlay no image pinned by digest, so no "
                "rendered workload can be checked. Fix: pin the image (helm image.repository + image.digest, "
                "or a kustomize images entry `<name>=<repository>@<digest>`).",
            )
        ]
    findings = []
    good = 0
    for w in workloads:
        images = container_images(w.resource_type, w.props)
        if any((parse_ref(i).repository, parse_ref(i).digest) in pins for i in images):
            good += 1
            continue
        found = images or "no containers"
        message = (
            f"{label(w.resource_type, w.props, w.name)} rendered from {what} runs {found}, not the image "
            f"this stack built ({shown}). Fix: for kustomize, the images entry's name (the app's "
            "source.imageName) must match the image name in the overlay; for Helm, the chart must render "
            "image.repository@image.digest."
        )
        findings.append((w.urn, message))
    if good == 0:
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
    return each_known(apps, lambda app: built_image_findings(app, children[app.urn]))


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
