"""A content-derived image tag: the same build inputs always give the same tag, never `latest`."""

from __future__ import annotations

import fnmatch
import hashlib
import os
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

_ALWAYS_SKIPPED = (".git", "__pycache__", ".venv", "node_modules")


def _ignore_patterns(context: Path) -> tuple[str, ...]:
    """Patterns from the context's .dockerignore (plain globs; `!` exceptions are not honoured)."""
    path = context / ".dockerignore"
    if not path.is_file():
        return ()
    lines = (line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines())
    return tuple(line.rstrip("/") for line in lines if line and not line.startswith(("#", "!")))


def _ignored(rel: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatch(rel, p) or fnmatch.fnmatch(rel.split("/")[0], p) for p in patterns)


@lru_cache(maxsize=64)
def _tree_digest(context: Path, dockerfile: Path) -> str:
    """Hash every file the build can see, plus the Dockerfile, by relative path and content."""
    patterns = _ignore_patterns(context)
    digest = hashlib.sha256()
    for root, dirs, files in os.walk(context):
        dirs[:] = sorted(d for d in dirs if d not in _ALWAYS_SKIPPED)
        for filename in sorted(files):
            path = Path(root, filename)
            rel = path.relative_to(context).as_posix()
            if _ignored(rel, patterns) or not path.is_file():
                continue
            digest.update(rel.encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    digest.update(b"dockerfile\0" + dockerfile.read_bytes())
    return digest.hexdigest()


def content_tag(context: Path, dockerfile: Path, platform: str, build_args: Mapping[str, str]) -> str:
    """`ctx-<12 hex>` from the build context, Dockerfile, platform and build args."""
    digest = hashlib.sha256(_tree_digest(context, dockerfile).encode())
    digest.update(platform.encode())
    for key in sorted(build_args):
        digest.update(f"\0{key}={build_args[key]}".encode())
    return "ctx-" + digest.hexdigest()[:12]
