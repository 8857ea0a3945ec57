"""Image references: pinned by digest in Application values, and the built digest in rendered workloads."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from .props import APPLICATION, UnknownValueError, brief, get_path, label, mapping, sequence

POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "kubernetes:apps/v1:Deployment": ("spec", "template", "spec"),
    "kubernetes:apps/v1:StatefulSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:DaemonSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:ReplicaSet": ("spec", "template", "spec"),
    "kubernetes:batch/v1:Job": ("spec", "template", "spec"),
    "kubernetes:batch/v1:CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
    "kubernetes:core/v1:Pod": ("spec",),
}
"""Where each workload type keeps its pod spec."""


@dataclass(frozen=True)
class ImageRef:
    """A parsed image reference: `repository[:tag][@digest]`."""

    repository: str
    tag: str | None
    digest: str | None

    def __str__(self) -> str:
        return (
            self.repository
            + (f":{self.tag}" if self.tag else "")
            + (f"@{self.digest}" if self.digest else "")
        )


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
    what = label(APPLICATION, props, name)
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
    what = label(APPLICATION, application.props, application.name)
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


def _validate_pinning(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != APPLICATION:
        return
    for message in pinning_findings(args.props, args.name):
        report(message, None)


def _validate_built_image(args: StackValidationArgs, report: ReportViolation) -> None:
    children: dict[str, list[PolicyResource]] = {}
    for r in args.resources:
        parent = r.parent
        if parent is not None and parent.resource_type == APPLICATION:
            children.setdefault(parent.urn, []).append(r)
    if not children:
        args.not_applicable(
            "no rendered objects: run `make policy-check STACK=<stack>` to render charts and overlays"
        )
    unknown: UnknownValueError | None = None
    for r in args.resources:
        if r.urn not in children:
            continue
        try:
            findings = built_image_findings(r, children[r.urn])
        except UnknownValueError as exc:
            unknown = unknown or exc
            continue
        for urn, message in findings:
            report(message, urn)
    if unknown is not None:
        raise unknown


IMAGE_PINNED_BY_DIGEST = ResourceValidationPolicy(
    name="image-pinned-by-digest",
    description="Application image values are pinned by digest: no 'latest' tag and no tag-only reference.",
    validate=_validate_pinning,
    enforcement_level=EnforcementLevel.ADVISORY,
)

WORKLOAD_USES_BUILT_IMAGE = StackValidationPolicy(
    name="workload-uses-built-image",
    description="Workloads rendered from an Application run the image pinned to the digest this stack built.",
    validate=_validate_built_image,
    enforcement_level=EnforcementLevel.MANDATORY,
)
