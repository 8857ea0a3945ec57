"""What pulumi-docker's `repoDigest` holds: a pushed digest reference, or the local build's image ID
(docs/engine-rules.md#pulumi-docker-in-preview)."""

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
