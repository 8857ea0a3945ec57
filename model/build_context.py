"""The build context pulumi-docker sends, as one tar: the files its context hash walks, and the Dockerfile.

The walk is model/content_tag.py's, shared with the tag; the Dockerfile from outside the context goes in
under a hidden name as docker/cli adds it (docs/engine-rules.md#pulumi-dockers-context-hash).
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile
import time
from pathlib import Path
from typing import IO

from model.content_tag import ContextError, open_entry, sent_entries, shown
from model.errors import GitopsError
from model.files import FileRefused, read_bounded

HIDDEN_DOCKERFILE_PREFIX = ".dockerfile."
"""docker/cli's name for a Dockerfile from outside the context, before 20 hex characters."""
IGNORE_FILE = ".dockerignore"
MAX_DOCKERFILE_BYTES = 1 << 20
"""Largest Dockerfile read into the context; more is refused, not truncated."""


class ContextTimeout(GitopsError):
    """Writing the context took longer than the build may take as a whole."""


def _root_owned(info: tarfile.TarInfo) -> tarfile.TarInfo:
    """As `archive.TarWithOptions` with ChownOpts 0:0 writes a header: no names, whole seconds."""
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = int(info.mtime)
    return info


def _dockerfile_bytes(dockerfile: Path, root: Path) -> bytes:
    try:
        return read_bounded(dockerfile, MAX_DOCKERFILE_BYTES)
    except FileRefused as exc:
        if str(exc).startswith("over"):
            raise ContextError(
                f"a Dockerfile of at most {MAX_DOCKERFILE_BYTES} bytes at {shown(dockerfile, root)}"
            ) from None
        raise ContextError(f"a readable Dockerfile at {shown(dockerfile, root)} ({exc})") from None


def _regular(name: str, data: bytes) -> tuple[tarfile.TarInfo, io.BytesIO]:
    info = tarfile.TarInfo(name)
    info.mode, info.size, info.mtime = 0o600, len(data), int(time.time())
    return info, io.BytesIO(data)


def write_context_tar(context: Path, dockerfile: Path, root: Path, out: IO[bytes], *, deadline: float) -> str:
    """Write the context pulumi-docker sends into `out`; return the Dockerfile's name in it.

    ContextError when it cannot be read as pulumi-docker would; ContextTimeout past `deadline`
    (a `time.monotonic()` value).
    """
    root = root.resolve()
    entries = sent_entries(context, dockerfile, root)
    # docker/cli's GetContextFromLocalDir: the Dockerfile is in the context by its resolved path.
    relative = Path(os.path.relpath(os.path.realpath(dockerfile), os.path.realpath(context))).as_posix()
    regular = {e.path for e in entries if stat.S_ISREG(e.stat.st_mode)}
    hidden, data = None, b""
    if relative not in regular:  # outside the context, or left out by the ignore rules
        data = _dockerfile_bytes(dockerfile, root)
        hidden = HIDDEN_DOCKERFILE_PREFIX + hashlib.sha256(data).hexdigest()[:20]
    ignore_listed = False
    try:
        with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for entry in entries:
                if time.monotonic() > deadline:
                    raise ContextTimeout("sending the build context took longer than the build may take")
                path = context / entry.path
                info = tar.gettarinfo(str(path), arcname=entry.path)
                if info is None:
                    continue  # a socket: archive.TarWithOptions skips it too
                _root_owned(info)
                if hidden and entry.path == IGNORE_FILE and info.isreg():
                    with open_entry(path, entry.stat, root) as f:
                        patterns = f.read(info.size)
                    info.size = len(patterns := patterns + f"\n{hidden}\n".encode())
                    tar.addfile(info, io.BytesIO(patterns))
                    ignore_listed = True
                elif info.isreg():
                    with open_entry(path, entry.stat, root) as f:
                        tar.addfile(info, f)
                else:
                    tar.addfile(info)
            if hidden:
                if not ignore_listed:
                    tar.addfile(*_regular(IGNORE_FILE, f"{IGNORE_FILE}\n{hidden}\n".encode()))
                tar.addfile(*_regular(hidden, data))
    except OSError as exc:
        where = shown(Path(exc.filename), root) if exc.filename else "a file of it"
        raise ContextError(f"a build context that stays as it is while sent; {where}: {exc}") from None
    return hidden or relative
