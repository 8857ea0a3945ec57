"""The registry client: the push preflight, and an image's manifests, its size and the digest a tag serves,
each size checked against what the registry serves (docs/engine-rules.md#registry-api-v2)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx

from clients import registry_shapes
from clients.registry_push import PushPreflight
from clients.registry_session import DEFAULT_TIMEOUT_S
from clients.registry_shapes import ShapeError
from model.image_ref import DIGEST

BLOB_CHECK_WORKERS = 4
"""Blob HEADs in flight at once while an image's declared sizes are checked."""
_REDIRECTS = (301, 302, 303, 307, 308)
_MAX_LENGTH_DIGITS = 19
"""An int64, as Distribution carries a blob's size."""

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
IMAGE_MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEX_TYPES = (OCI_INDEX, DOCKER_MANIFEST_LIST)
ACCEPT = ", ".join((*IMAGE_MANIFEST_TYPES, *INDEX_TYPES))


@dataclass(frozen=True)
class ImageInfo:
    """The size of one platform's image, as the registry's manifests describe it."""

    reference: str
    media_type: str
    """Media type of the manifest the reference points to (image manifest, index or manifest list)."""
    manifest_digest: str
    """Digest of the platform's image manifest (the reference's digest for a single-platform image)."""
    platform: str
    layers: int
    size_bytes: int
    """Sum of the layer sizes plus the config blob size (compressed, as pushed)."""


def split_reference(server: str, reference: str) -> tuple[str, str]:
    """`server/team/app@sha256:x` -> (`team/app`, `sha256:x`); ValueError naming what is wrong."""
    repo, sep, digest = reference.partition("@")
    if not sep or not DIGEST.fullmatch(digest):
        raise ValueError(
            f"expected a digest reference '{server}/<repository>@sha256:<64 hex>', got {reference!r}"
        )
    prefix = f"{server}/"
    if not repo.startswith(prefix) or len(repo) == len(prefix):
        raise ValueError(f"image {reference!r} is not on registry {server!r}")
    return repo[len(prefix) :], digest


def parse_platform(platform: str) -> tuple[str, str, str | None]:
    """`linux/arm64/v8` -> (`linux`, `arm64`, `v8`); ValueError when malformed."""
    parts = platform.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise ValueError(f"expected a platform 'os/arch' or 'os/arch/variant', got {platform!r}")
    return parts[0], parts[1], parts[2] if len(parts) == 3 else None


def _digest(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


class RegistryClient(PushPreflight):
    """Talk to one registry as one user, in one conversation that shares one deadline."""

    def _split(self, reference: str) -> tuple[str, str]:
        try:
            return split_reference(self.server, reference)
        except ValueError as exc:
            raise self._error(str(exc)) from None

    def _get_manifest(self, repo: str, reference: str) -> httpx.Response:
        """`GET` a manifest by digest or tag (OCI and Docker v2 types): a 200 answer or RegistryError."""
        response = self.request(
            "GET",
            f"/v2/{repo}/manifests/{reference}",
            [f"repository:{repo}:pull"],
            headers={"Accept": ACCEPT},
        )
        where = f"{self.server}/{repo}{'@' if DIGEST.fullmatch(reference) else ':'}{reference}"
        if response.status_code == 404:
            raise self._error(f"manifest not found: {where} does not exist{self._error_text(response)}")
        if response.status_code in (401, 403):
            raise self._error(f"no pull permission on repository {repo!r}: {self._reason(response)}")
        if response.status_code != 200:
            raise self._error(f"GET manifest {where} answered {self._reason(response)}")
        return response

    def _read_manifest(self, response: httpx.Response, where: str) -> tuple[str, dict[str, Any]]:
        """(media type, manifest) of a manifest answer, read against the shape its media type names."""
        try:
            body = registry_shapes.parse(response.content, registry_shapes.ANY_MANIFEST)
        except ShapeError as exc:
            raise self._error(f"{where} answered a manifest {exc}") from None
        media_type = body.get("mediaType") or response.headers.get("content-type", "").split(";")[0]
        if media_type not in (*IMAGE_MANIFEST_TYPES, *INDEX_TYPES):
            raise self._error(f"manifest {where} has unsupported media type {media_type!r}")
        shape = registry_shapes.INDEX if media_type in INDEX_TYPES else registry_shapes.IMAGE_MANIFEST
        if (problem := registry_shapes.problem(body, shape)) is not None:
            raise self._error(f"{where} answered a manifest {problem}")
        return media_type, body

    def manifest(self, repo: str, reference: str) -> tuple[str, dict[str, Any]]:
        """(media type, manifest) of `repo@reference`, checked against the digest and its shape."""
        response = self._get_manifest(repo, reference)
        where = f"{self.server}/{repo}@{reference}"
        if DIGEST.fullmatch(reference) and (actual := _digest(response.content)) != reference:
            raise self._error(f"manifest {where} has digest {actual}, not the one asked for")
        return self._read_manifest(response, where)

    def image_size(self, reference: str, platform: str) -> ImageInfo:
        """Size of the image `reference` names, for `platform` when it is an index, every declared size first
        checked against what the registry serves (a manifest can declare anything)."""
        repo, digest = self._split(reference)
        try:
            want = parse_platform(platform)
        except ValueError as exc:
            raise self._error(str(exc)) from None
        media_type, image = self.manifest(repo, digest)
        manifest_digest = digest
        if media_type in INDEX_TYPES:
            manifest_digest = self._select_platform(reference, image, want)
            image_type, image = self.manifest(repo, manifest_digest)
            if image_type not in IMAGE_MANIFEST_TYPES:
                raise self._error(
                    f"the {platform} entry of {reference} is not an image manifest ({image_type})"
                )
        self._check_blob_sizes(repo, f"{self.server}/{repo}@{manifest_digest}", image)
        layers = image["layers"]
        return ImageInfo(
            reference=reference,
            media_type=media_type,
            manifest_digest=manifest_digest,
            platform=platform,
            layers=len(layers),
            size_bytes=sum(layer["size"] for layer in layers) + image["config"]["size"],
        )

    def _check_blob_sizes(self, repo: str, where: str, image: Mapping[str, Any]) -> None:
        """Every declared size (config and layers) equals the registry's `Content-Length` for that blob: one
        HEAD per distinct blob, BLOB_CHECK_WORKERS at a time, under the conversation's deadline."""
        blobs = [("config", image["config"])] + [(f"layers[{i}]", d) for i, d in enumerate(image["layers"])]
        scopes = [f"repository:{repo}:pull"]
        self._auth_header(scopes)  # a token, when one is needed, is fetched once, before the HEADs
        with ThreadPoolExecutor(BLOB_CHECK_WORKERS, thread_name_prefix="blob-head") as pool:
            futures = {
                d: pool.submit(self._blob_size, repo, d, scopes)
                for d in dict.fromkeys(d["digest"] for _, d in blobs)
            }
        for name, desc in blobs:
            served = futures[desc["digest"]].result()  # the first failure in manifest order is raised
            if served != desc["size"]:
                raise self._error(
                    f"{where} declares {name} ({desc['digest']}) as {desc['size']} bytes, "
                    f"but the registry serves {served} bytes for that blob"
                )

    def _blob_size(self, repo: str, digest: str, scopes: Sequence[str]) -> int:
        """The registry's `Content-Length` for a blob; one redirect (to object storage) is followed, with
        the credentials only when it stays on the registry's origin."""
        path = f"/v2/{repo}/blobs/{digest}"
        response = self.request("HEAD", path, scopes)
        if response.status_code in _REDIRECTS:
            target = self._resolve(response.headers.get("location"))
            if (
                target is None
                or target.scheme not in ("http", "https")
                or not target.host
                or self._downgrades(target.scheme)
            ):
                raise self._error(
                    f"HEAD {path} redirected to a location the client does not follow "
                    f"({self._reason(response)}); the blob's size cannot be checked"
                )
            headers = self._auth_header(scopes) if self._on_registry(target) else {}
            response = self._send("HEAD", str(target), headers=headers)
        if response.status_code == 404:
            raise self._error(
                f"blob {digest} of repository {repo!r} is not in the registry (HEAD answered 404)"
            )
        if response.status_code in (401, 403):
            raise self._error(
                f"no pull permission on repository {repo!r}: HEAD {path} answered {self._reason(response)}"
            )
        if response.status_code != 200:
            raise self._error(f"HEAD {path} answered {self._reason(response)}")
        length = response.headers.get("content-length", "")
        if not (length.isascii() and length.isdigit() and len(length) <= _MAX_LENGTH_DIGITS):
            raise self._error(
                f"HEAD {path} answered without a usable Content-Length ({length[:20]!r}); "
                "the blob's declared size cannot be checked"
            )
        return int(length)

    def check_tag(self, reference: str, tag: str) -> str:
        """The digest the registry serves for `tag` of `reference`'s repository; RegistryError unless that
        is `reference`'s digest, or an index that lists it."""
        repo, digest = self._split(reference)
        response = self._get_manifest(repo, tag)
        served = _digest(response.content)
        if served == digest:
            return served
        where = f"{self.server}/{repo}:{tag}"
        media_type, body = self._read_manifest(response, where)
        if media_type in INDEX_TYPES and digest in {entry["digest"] for entry in body["manifests"]}:
            return served
        raise self._error(
            f"digest mismatch: the registry serves {served} for {where}, but pulumi-docker's repoDigest is "
            f"{digest}; the Application would pin an image the pushed tag does not name"
        )

    def _select_platform(
        self, reference: str, index: Mapping[str, Any], want: tuple[str, str, str | None]
    ) -> str:
        """Digest of the index entry for the wanted platform; a variant is matched only when asked for."""
        seen: list[str] = []
        for entry in index["manifests"]:
            plat = entry.get("platform") or {}
            have = (plat.get("os"), plat.get("architecture"), plat.get("variant"))
            seen.append("/".join(filter(None, have)) or "unknown")
            if have[:2] == want[:2] and (want[2] is None or have[2] == want[2]):
                return str(entry["digest"])
        raise self._error(
            f"{reference} has no image for platform {'/'.join(filter(None, want))} "
            f"(it has: {', '.join(seen) or 'none'})"
        )


def client_from_inputs(
    props: Mapping[str, Any], transport: httpx.BaseTransport | None = None
) -> RegistryClient:
    """The client a registry dynamic provider builds from its inputs (credentials arrive as secrets);
    `transport` replaces the network, for tests."""
    return RegistryClient(
        props["server"],
        props["username"],
        props["password"],
        insecure=bool(props.get("insecure", False)),
        timeout=float(props.get("timeout_seconds", DEFAULT_TIMEOUT_S)),
        transport=transport,
    )
