"""What pulumi-docker's `repoDigest` holds: a pushed digest reference, or the local build's image ID.

pulumi/pulumi-docker v4.11.2 `provider/image.go`, `dockerBuild`: the build is tagged with the image
name in the local engine (`Tags: []string{img.Name}`); then `if img.SkipPush || isPreview` it returns
`repoDigest` = `docker.ImageInspect(img.Name).ID`, a bare `sha256:<64 hex>`; only after the push is it
`repository@sha256:<64 hex>` (`getRepoDigest`). pulumi-docker supports provider previews
(`provider/hybrid.go`, `resp.SupportsPreview = true`), so the engine hands the preview's value to the
program as known.

`getRepoDigest` reads the local image store, not the push: the first of the image's `RepoDigests` for
the repository, else `<none>@<none>` (`nodigest`), which Podman and containerd image stores answer; a
digest the push reported and the store's differ only in a warning. So v4's digest can name an image
the registry does not serve under the pushed tag (v5.1.0 prefers the push's digest). ImageSize checks
it against the registry before the Application pins it (components/image_size.py).
"""

from __future__ import annotations

import re
from typing import TypeGuard

# Whole-value patterns: always used with `fullmatch` (`re.match` with `$` lets "...\n" through).
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
"""A sha256 digest, or a local engine's image ID (`sha256:<64 hex>`)."""
REPO_DIGEST = re.compile(r"(?P<repo>[^@\s]+)@(?P<digest>sha256:[0-9a-f]{64})")
"""`repository@sha256:<64 hex>`."""
TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
"""An image tag, as the distribution reference grammar writes it."""
NO_DIGEST = "<none>@<none>"
"""pulumi-docker's `repoDigest` when the local store holds no repo digest for the repository."""


def is_repo_digest(value: object) -> TypeGuard[str]:
    """True for `repository@sha256:<64 hex>`: an image a registry holds."""
    return isinstance(value, str) and REPO_DIGEST.fullmatch(value) is not None


def is_local_image_id(value: object) -> TypeGuard[str]:
    """True for a bare `sha256:<64 hex>`: the ID of an image in a local engine, never pushed."""
    return isinstance(value, str) and DIGEST.fullmatch(value) is not None
