"""What pulumi-docker's `repoDigest` holds: a pushed digest reference, or the local build's image ID.

pulumi/pulumi-docker v4.11.2 `provider/image.go`, `dockerBuild`: the build is tagged with the image
name in the local engine (`Tags: []string{img.Name}`); then `if img.SkipPush || isPreview` it returns
`repoDigest` = `docker.ImageInspect(img.Name).ID`, a bare `sha256:<64 hex>`; only after the push is it
`repository@sha256:<64 hex>` (`getRepoDigest`). pulumi-docker supports provider previews
(`provider/hybrid.go`, `resp.SupportsPreview = true`), so the engine hands the preview's value to the
program as known.
"""

from __future__ import annotations

import re

_REPO_DIGEST = re.compile(r"^[^@\s]+@sha256:[0-9a-f]{64}$")
_LOCAL_ID = re.compile(r"^sha256:[0-9a-f]{64}$")


def is_repo_digest(value: object) -> bool:
    """True for `repository@sha256:<64 hex>`: an image a registry holds."""
    return isinstance(value, str) and bool(_REPO_DIGEST.match(value))


def is_local_image_id(value: object) -> bool:
    """True for a bare `sha256:<64 hex>`: the ID of an image in a local engine, never pushed."""
    return isinstance(value, str) and bool(_LOCAL_ID.match(value))
