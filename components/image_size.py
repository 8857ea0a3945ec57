"""ImageSize: the compressed size of a pushed image from the registry's manifest; in a preview, of the
local build, measured in `check` (docs/engine-rules.md#dynamic-providers-in-preview)."""

from __future__ import annotations

import uuid
from typing import Any

import pulumi
from pulumi.dynamic import CheckFailure, CheckResult, CreateResult, DiffResult, Resource, UpdateResult

from clients.registry import client_from_inputs, parse_platform, split_reference
from clients.registry_session import DEFAULT_TIMEOUT_S, RegistryError
from components.provider_errors import OneLineErrors, failure_line, is_unknown, registry_failures
from model.config import RegistryConfig
from model.image_ref import NO_DIGEST, TAG, is_local_image_id
from model.names import IMAGE_SIZE_MODULE, IMAGE_SIZE_NAME
from model.names import LOCAL_SIZE_SOURCE as LOCAL_SOURCE

PROVIDER_VERSION = "2"
"""Bump to make every stack re-read its image sizes after a change to this module."""

_COMPARED = ("image", "tag", "platform", "server", "insecure", "provider_version")
"""Inputs whose change means a new measurement; credentials are deliberately not among them."""

REGISTRY_SOURCE = "registry"
"""`size_source` of a figure read from the registry's manifest (create and update)."""


def size_annotation(size_bytes: float | int) -> str:
    """The `gitops-deploy/image-size-bytes` value: a whole-number string, never `"123.0"`."""
    # Outputs cross the engine as protobuf numbers, so an int comes back as a float.
    if isinstance(size_bytes, bool) or not isinstance(size_bytes, int | float):
        raise ValueError(f"image size must be a number of bytes, got {size_bytes!r}")
    if size_bytes < 0 or size_bytes != int(size_bytes):
        raise ValueError(f"image size must be a whole, non-negative number of bytes, got {size_bytes!r}")
    return str(int(size_bytes))


def _input_failures(news: dict[str, Any]) -> list[CheckFailure]:
    """One CheckFailure per malformed input, naming the property; unknown values pass."""
    failures = registry_failures(news)
    server = news.get("server")
    image = news.get("image")
    if image == NO_DIGEST:
        failures.append(
            CheckFailure(
                "image",
                f"pulumi-docker answered {NO_DIGEST}: the local image store has no registry digest for the "
                "pushed image (as Podman and containerd image stores answer), so there is no digest to pin",
            )
        )
    elif not is_unknown(image) and not is_local_image_id(image) and isinstance(server, str) and server:
        try:
            split_reference(server, image if isinstance(image, str) else repr(image))
        except ValueError as exc:
            failures.append(CheckFailure("image", str(exc)))
    tag = news.get("tag", "")
    if not is_unknown(tag) and not (tag == "" or (isinstance(tag, str) and TAG.fullmatch(tag))):
        failures.append(
            CheckFailure("tag", f"got {tag!r}; expected an image tag, or '' for an image not pushed here")
        )
    platform = news.get("platform")
    if not is_unknown(platform):
        try:
            parse_platform(platform if isinstance(platform, str) else repr(platform))
        except ValueError as exc:
            failures.append(CheckFailure("platform", str(exc)))
    return failures


def measure_local(image_id: str) -> dict[str, Any]:
    """The preview's figure for a local build: its size as a push would upload it, or why there is none."""
    # Imported here: only a preview that built an image needs the Docker SDK.
    from clients.image_engine import EngineUnavailable, ImageError, connect, measure_image

    try:
        client = connect()
    except EngineUnavailable as exc:
        return {"size_source": f"not measured in this preview: {exc}"}
    try:
        found = measure_image(client, image_id)
    except ImageError as exc:
        return {"size_source": f"not measured in this preview: {exc}"}
    finally:
        client.close()
    return {
        "size_bytes": found.size_bytes,
        "layers": found.layers,
        "size_source": f"{LOCAL_SOURCE}: preview build {image_id[:19]}, {found.method}",
    }


def measure(props: dict[str, Any]) -> dict[str, Any]:
    """Read the manifest(s) and return the outputs; raise with the registry's explanation on failure."""
    if is_local_image_id(props.get("image")):
        raise RuntimeError(
            f"image size of {props['image']}: a local image ID, not a pushed digest: pulumi-docker answers "
            "one only in a preview or with skipPush; the program pushes every image it measures"
        )
    client = client_from_inputs(props)
    try:
        if props.get("tag"):
            client.check_tag(props["image"], props["tag"])
        info = client.image_size(props["image"], props["platform"])
    except RegistryError as err:
        # A fresh exception without the chain keeps the engine's report to the one clear message.
        raise RuntimeError(f"image size of {props['image']}: {err}") from None
    except Exception as exc:  # unforeseen: still one line, scrubbed of the credentials
        raise RuntimeError(client.scrub(failure_line(f"image size of {props['image']}", exc))) from None
    finally:
        client.close()
    return {
        "image": props["image"],
        "tag": props.get("tag", ""),
        "platform": props["platform"],
        "server": props["server"],
        "insecure": bool(props.get("insecure", False)),
        "provider_version": props.get("provider_version", PROVIDER_VERSION),
        "size_bytes": info.size_bytes,
        "layers": info.layers,
        "media_type": info.media_type,
        "manifest_digest": info.manifest_digest,
        "size_source": REGISTRY_SOURCE,
    }


class ImageSizeProvider(OneLineErrors):
    """Measures on create and update; the same digest is no change, so an unchanged image is never re-read."""

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        """Validate the inputs; measure a preview's local build (the registry is read in create/update)."""
        failures = _input_failures(news)
        if failures or not is_local_image_id(news.get("image")):
            return CheckResult(news, failures)
        return CheckResult({**news, **measure_local(news["image"])}, [])

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        """A new digest (or tag, platform, registry, version) is an update; changed credentials are not."""
        changed = [k for k in _COMPARED if is_unknown(news.get(k)) or olds.get(k) != news.get(k)]
        return DiffResult(changes=bool(changed), replaces=[], stables=[], delete_before_replace=False)

    def create(self, props: dict[str, Any]) -> CreateResult:
        """Measure the image."""
        return CreateResult(f"image-size-{uuid.uuid4().hex}", measure(props))

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        """Measure the new image."""
        return UpdateResult(measure(news))


class ImageSize(Resource, module=IMAGE_SIZE_MODULE, name=IMAGE_SIZE_NAME):
    """`pulumi-python:dynamic/image:ImageSize`: the compressed size of one pushed image, from its manifest."""

    size_bytes: pulumi.Output[float]
    """Sum of the layer sizes plus the config blob (a whole number, carried as a float by the engine)."""
    layers: pulumi.Output[float]
    """Number of layers."""
    media_type: pulumi.Output[str]
    """Media type of the manifest the digest names (OCI or Docker; image manifest, index or list)."""
    manifest_digest: pulumi.Output[str]
    """Digest of the platform's image manifest that was measured."""
    size_source: pulumi.Output[str]
    """`registry`, or in a preview `local: ...` (measured in the local engine) or why it was not measured."""
    annotation: pulumi.Output[str]
    """`size_bytes` as the whole-number string for the `gitops-deploy/image-size-bytes` annotation."""

    def __init__(
        self,
        name: str,
        registry: RegistryConfig,
        password: pulumi.Output[str],
        *,
        image: pulumi.Input[str],
        tag: pulumi.Input[str] = "",
        platform: str = "linux/amd64",
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """`image`: the pushed digest reference (in a preview, the local ID); `tag`: the tag it was pushed
        with, which the registry must serve it for ("": no check); `platform`: the index entry measured."""
        super().__init__(
            ImageSizeProvider(),
            name,
            {
                "image": image,
                "tag": tag,
                "server": registry.server,
                "username": registry.username,
                "password": pulumi.Output.secret(password),
                "platform": platform,
                "insecure": registry.insecure,
                "timeout_seconds": DEFAULT_TIMEOUT_S,
                "provider_version": PROVIDER_VERSION,
                **dict.fromkeys(("size_bytes", "layers", "media_type", "manifest_digest", "size_source")),
            },
            opts,
        )
        self.annotation = self.size_bytes.apply(size_annotation)
