"""A content-derived image tag that moves exactly when pulumi-docker's context hash does; never `latest`.

pulumi-docker v4.5.2-v5.1.0 `provider/provider.go` `hashContext`/`hashPath`; the rule in full, and where
why a symlink in a build context must have a relative target: docs/images.md, "The content tag".
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

from model.dockerignore import Entry, IgnoreFileError, PatternMatcher, go_clean, read_patterns, walk

CHUNK_BYTES = 1 << 20
"""Files are hashed this many bytes at a time, so memory stays flat whatever their size."""
MAX_IGNORE_FILE_BYTES = 1 << 20
"""Largest `.dockerignore` read; more is refused, not truncated."""
DOCKERFILE_NAME = "Dockerfile"
"""The name pulumi-docker hashes the Dockerfile under first, wherever it is (`defaultDockerfile`)."""
_GO_MODE_LETTERS = "dalTLDpSugct?"
"""Go's `FileMode.String` type letters, highest bit first."""


class ContextError(ValueError):
    """The build context cannot be hashed as pulumi-docker would: the message says what is expected."""


def go_mode_string(st_mode: int) -> str:
    """Go's `FileMode.String()` of fsutil's `lstat`: `-rw-r--r--`, `Lrwxrwxrwx`, `urwxr-xr-x`."""
    kind = stat.S_IFMT(st_mode)
    bits = {
        "d": kind == stat.S_IFDIR,
        "L": kind == stat.S_IFLNK,
        "D": kind in (stat.S_IFBLK, stat.S_IFCHR),
        "p": kind == stat.S_IFIFO,
        # fsutil's mkstat clears the socket bit (archive/tar cannot carry it), so "S" never shows.
        "u": bool(st_mode & stat.S_ISUID),
        "g": bool(st_mode & stat.S_ISGID),
        "c": kind == stat.S_IFCHR,
        "t": bool(st_mode & stat.S_ISVTX),
    }
    letters = "".join(c for c in _GO_MODE_LETTERS if bits.get(c)) or "-"
    perms = "".join(c if st_mode & (1 << (8 - i)) else "-" for i, c in enumerate("rwxrwxrwx"))
    return letters + perms


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _shown(path: Path | str, root: Path) -> str:
    """A path as the user wrote it relative to the repository, for messages."""
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _file_digest(path: Path, expected: os.stat_result | None, root: Path) -> bytes:
    """SHA-256 of a regular file, read in chunks, never through a symlink nor from anything but that file."""
    flags = os.O_RDONLY | os.O_NONBLOCK | (os.O_NOFOLLOW if expected is not None else 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise ContextError(f"a readable file at {_shown(path, root)} ({exc.strerror})") from None
    digest = hashlib.sha256()
    with os.fdopen(fd, "rb", buffering=0) as f:
        st = os.fstat(fd)
        same = expected is None or (st.st_ino, st.st_dev) == (expected.st_ino, expected.st_dev)
        if not stat.S_ISREG(st.st_mode) or not same:
            raise ContextError(f"a regular file at {_shown(path, root)}; it changed while being read")
        buffer = bytearray(CHUNK_BYTES)
        view = memoryview(buffer)
        while n := f.readinto(buffer):
            digest.update(view[:n])
    return digest.digest()


def _ignore_matcher(context: Path, dockerfile: Path, root: Path) -> PatternMatcher:
    """`getIgnorePatterns`: `<Dockerfile>.dockerignore` if present, else `<context>/.dockerignore`."""
    for candidate in (Path(f"{dockerfile}.dockerignore"), context / ".dockerignore"):
        if not os.path.lexists(candidate):
            continue
        resolved = Path(os.path.realpath(candidate))
        if not _inside(resolved, root):
            raise ContextError(
                f"an ignore file inside the repository; {_shown(candidate, root)} -> "
                f"{os.readlink(candidate)!r} points outside it"
            )
        if not resolved.exists():
            continue  # a dangling link is "no such file" to afero, as to Docker
        if not resolved.is_file():
            raise ContextError(f"a regular file at {_shown(candidate, root)}")
        with resolved.open("rb") as f:
            data = f.read(MAX_IGNORE_FILE_BYTES + 1)
        if len(data) > MAX_IGNORE_FILE_BYTES:
            limit = MAX_IGNORE_FILE_BYTES
            raise ContextError(f"an ignore file of at most {limit} bytes at {_shown(candidate, root)}")
        try:
            return PatternMatcher.new(read_patterns(data))
        except IgnoreFileError as exc:
            raise ContextError(f"an ignore file Docker accepts at {_shown(candidate, root)}: {exc}") from None
    return PatternMatcher()


def _link_target(path: Path, root: Path) -> bytes:
    """A symlink counts by where it resolves to, relative to the repository, which it must not leave."""
    target = os.readlink(path)
    resolved = Path(os.path.realpath(path))
    if not _inside(resolved, root):
        raise ContextError(
            "symlinks that stay inside the repository, as Argo CD requires (it refuses out-of-bounds "
            f"symlinks); {_shown(path, root)} -> {target!r} points outside it"
        )
    if not resolved.exists():
        raise ContextError(f"symlinks that resolve; {_shown(path, root)} -> {target!r} points at nothing")
    if os.path.isabs(target):
        # pulumi-docker hashes the resolved path, which for an absolute target moves with the checkout.
        raise ContextError(
            f"symlinks with relative targets, so the tag moves exactly when pulumi-docker rebuilds; "
            f"{_shown(path, root)} -> {target!r} is absolute"
        )
    return resolved.relative_to(root).as_posix().encode("utf-8", "surrogateescape")


def _hash_inputs(context: Path, dockerfile: Path, root: Path, *, read: bool) -> str:
    """pulumi-docker's context hash: the Dockerfile, then each file the ignore rules keep, by path and mode.

    With `read` False nothing is read (every content counts as empty): the walk and its checks only.
    """
    root = root.resolve()
    if not _inside(Path(os.path.realpath(dockerfile)), root):
        shown = _shown(dockerfile, root)
        raise ContextError(f"a Dockerfile inside the repository; {shown} resolves outside it")
    matcher = _ignore_matcher(context, dockerfile, root)
    empty = hashlib.sha256().digest()
    digest = hashlib.sha256()
    # hashPath(dockerfile, "Dockerfile", 0): mode 0 prints as `----------` and counts as a regular file.
    dockerfile_digest = _file_digest(dockerfile, None, root) if read else empty
    digest.update(DOCKERFILE_NAME.encode() + b"----------" + dockerfile_digest + b"\0")
    try:
        for entry in walk(context, matcher):
            path = context / entry.path
            kind = stat.S_IFMT(entry.stat.st_mode)
            content = empty  # fifos and devices: hashPath hashes nothing for them, and never opens them
            if kind == stat.S_IFLNK:
                content = hashlib.sha256(_link_target(path, root)).digest()
            elif kind == stat.S_IFSOCK:  # fsutil clears the socket bit, so Go opens it, and fails
                raise ContextError(f"no sockets in the build context; {_shown(path, root)} is one")
            elif kind == stat.S_IFREG and read:
                content = _file_digest(path, entry.stat, root)
            elif kind == stat.S_IFREG and not os.access(path, os.R_OK):
                raise ContextError(f"a readable build context; permission denied: {_shown(path, root)}")
            name = go_clean(entry.path).encode("utf-8", "surrogateescape")
            digest.update(name + go_mode_string(entry.stat.st_mode).encode() + content + b"\0")
    except OSError as exc:
        where = _shown(exc.filename or context, root)
        raise ContextError(f"a readable build context; {exc.strerror}: {where}") from None
    return digest.hexdigest()


def sent_entries(context: Path, dockerfile: Path, root: Path) -> list[Entry]:
    """What pulumi-docker sends of the context: the walk its hash takes, directories included.

    pulumi-docker tars the context with the same `<Dockerfile>.dockerignore`-first patterns
    (provider/image.go `getIgnorePatterns`, then `archive.TarWithOptions`), each kept directory too.
    moby's archive walk enters an excluded directory only for an exception naming it literally, not
    for one with pattern characters (`!**/keep`) as fsutil's does: such a file is sent here, and
    counts in the tag either way. ContextError as `check_context`.
    """
    matcher = _ignore_matcher(context, dockerfile, root.resolve())
    try:
        return list(walk(context, matcher, directories=True))
    except OSError as exc:
        where = _shown(exc.filename or context, root.resolve())
        raise ContextError(f"a readable build context; {exc.strerror}: {where}") from None


def check_context(context: Path, dockerfile: Path, root: Path) -> None:
    """ContextError for what pulumi-docker would fail on, and for symlinks out of `root`; reads no file."""
    _hash_inputs(context, dockerfile, root, read=False)


@lru_cache(maxsize=64)
def context_digest(context: Path, dockerfile: Path, root: Path) -> str:
    """pulumi-docker's context hash, once per process for each context (ContextError as `check_context`)."""
    return _hash_inputs(context, dockerfile, root, read=True)


def content_tag(
    context: Path, dockerfile: Path, platform: str, build_args: Mapping[str, str], *, root: Path
) -> str:
    """`ctx-<12 hex>` from the context hash, platform and build args (`root`: the repository)."""
    digest = hashlib.sha256(context_digest(context, dockerfile, root).encode())
    digest.update(platform.encode())
    for key in sorted(build_args):
        digest.update(f"\0{key}={build_args[key]}".encode())
    return "ctx-" + digest.hexdigest()[:12]
