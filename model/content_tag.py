"""A content-derived image tag that moves exactly when pulumi-docker's context hash does; never `latest`
(docs/images.md, "The content tag")."""

from __future__ import annotations

import hashlib
import io
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from model.dockerignore import Entry, IgnoreFileError, PatternMatcher, go_clean, read_patterns, walk
from model.errors import GitopsError
from model.files import FileRefused, read_bounded

CHUNK_BYTES = 1 << 20
"""Files are hashed this many bytes at a time, so memory stays flat whatever their size."""
MAX_IGNORE_FILE_BYTES = 1 << 20
"""Largest `.dockerignore` read; more is refused, not truncated."""
DOCKERFILE_NAME = "Dockerfile"
"""The name pulumi-docker hashes the Dockerfile under first, wherever it is (`defaultDockerfile`)."""
_GO_MODE_LETTERS = "dalTLDpSugct?"
"""Go's `FileMode.String` type letters, highest bit first."""


class ContextError(GitopsError, ValueError):
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


def shown(path: Path | str, root: Path) -> str:
    """A path as the user wrote it relative to the repository, for messages."""
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return str(path)


def open_entry(path: Path, expected: os.stat_result | None, root: Path) -> io.FileIO:
    """The regular file the walk saw at `path` (`expected`), never through a symlink nor a file swapped in."""
    flags = os.O_RDONLY | os.O_NONBLOCK | (os.O_NOFOLLOW if expected is not None else 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise ContextError(f"a readable file at {shown(path, root)} ({exc.strerror})") from None
    f = os.fdopen(fd, "rb", buffering=0)
    st = os.fstat(fd)
    same = expected is None or (st.st_ino, st.st_dev) == (expected.st_ino, expected.st_dev)
    if not stat.S_ISREG(st.st_mode) or not same:
        f.close()
        raise ContextError(f"a regular file at {shown(path, root)}; it changed while being read")
    return f


def _file_digest(path: Path, expected: os.stat_result | None, root: Path) -> bytes:
    """SHA-256 of a regular file, read in chunks so memory stays flat whatever its size."""
    digest = hashlib.sha256()
    with open_entry(path, expected, root) as f:
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
                f"an ignore file inside the repository; {shown(candidate, root)} -> "
                f"{os.readlink(candidate)!r} points outside it"
            )
        if not resolved.exists():
            continue  # a dangling link is "no such file" to afero, as to Docker
        try:
            data = read_bounded(resolved, MAX_IGNORE_FILE_BYTES)
        except FileRefused as exc:
            over = str(exc).startswith("over")
            what = f"an ignore file of at most {MAX_IGNORE_FILE_BYTES} bytes" if over else "a regular file"
            raise ContextError(f"{what} at {shown(candidate, root)}") from None
        try:
            return PatternMatcher.new(read_patterns(data))
        except IgnoreFileError as exc:
            raise ContextError(f"an ignore file Docker accepts at {shown(candidate, root)}: {exc}") from None
    return PatternMatcher()


def _link_target(path: Path, root: Path) -> bytes:
    """A symlink counts by where it resolves to, relative to the repository, which it must not leave."""
    target = os.readlink(path)
    resolved = Path(os.path.realpath(path))
    if not _inside(resolved, root):
        raise ContextError(
            "symlinks that stay inside the repository, as Argo CD requires (it refuses out-of-bounds "
            f"symlinks); {shown(path, root)} -> {target!r} points outside it"
        )
    if not resolved.exists():
        raise ContextError(f"symlinks that resolve; {shown(path, root)} -> {target!r} points at nothing")
    if os.path.isabs(target):
        # pulumi-docker hashes the resolved path, which for an absolute target moves with the checkout.
        raise ContextError(
            f"symlinks with relative targets, so the tag moves exactly when pulumi-docker rebuilds; "
            f"{shown(path, root)} -> {target!r} is absolute"
        )
    return resolved.relative_to(root).as_posix().encode("utf-8", "surrogateescape")


@dataclass(frozen=True)
class Scan:
    """One walk of a build context: what pulumi-docker hashes and, with the directories, what it sends."""

    context: Path
    dockerfile: Path
    root: Path
    entries: tuple[Entry, ...]
    """Every entry the ignore rules keep, directories included, in `filepath.WalkDir` order."""

    @cached_property
    def digest(self) -> str:
        """pulumi-docker's context hash: the Dockerfile, then each kept file by path, mode and content."""
        empty = hashlib.sha256().digest()
        digest = hashlib.sha256()
        # hashPath(dockerfile, "Dockerfile", 0): mode 0 prints as `----------` and counts as a regular file.
        digest.update(
            DOCKERFILE_NAME.encode() + b"----------" + _file_digest(self.dockerfile, None, self.root) + b"\0"
        )
        for entry in self.entries:
            kind = stat.S_IFMT(entry.stat.st_mode)
            if kind == stat.S_IFDIR:
                continue
            path = self.context / entry.path
            content = empty  # fifos and devices: hashPath hashes nothing for them, and never opens them
            if kind == stat.S_IFLNK:
                content = hashlib.sha256(_link_target(path, self.root)).digest()
            elif kind == stat.S_IFREG:
                content = _file_digest(path, entry.stat, self.root)
            name = go_clean(entry.path).encode("utf-8", "surrogateescape")
            digest.update(name + go_mode_string(entry.stat.st_mode).encode() + content + b"\0")
        return digest.hexdigest()


_SCANS: dict[tuple[Path, Path, Path], Scan] = {}
_MAX_SCANS = 64


def clear_scans() -> None:
    """Forget every walk (a test that edits a context it walked already)."""
    _SCANS.clear()


def scan(context: Path, dockerfile: Path, root: Path, *, fresh: bool = False) -> Scan:
    """The walk of a build context, once per process unless `fresh`; ContextError for what pulumi-docker
    would fail on and for symlinks out of `root` (no file is read but the ignore file)."""
    key = (context, dockerfile, root)
    if fresh or key not in _SCANS:
        if len(_SCANS) >= _MAX_SCANS:
            _SCANS.clear()
        _SCANS[key] = _walk(*key)
    return _SCANS[key]


def _walk(context: Path, dockerfile: Path, root: Path) -> Scan:
    root = root.resolve()
    if not _inside(Path(os.path.realpath(dockerfile)), root):
        raise ContextError(
            f"a Dockerfile inside the repository; {shown(dockerfile, root)} resolves outside it"
        )
    matcher = _ignore_matcher(context, dockerfile, root)
    try:
        entries = tuple(walk(context, matcher, directories=True))
    except OSError as exc:
        raise ContextError(
            f"a readable build context; {exc.strerror}: {shown(exc.filename or context, root)}"
        ) from None
    for entry in entries:
        path, kind = context / entry.path, stat.S_IFMT(entry.stat.st_mode)
        if kind == stat.S_IFLNK:
            _link_target(path, root)
        elif kind == stat.S_IFSOCK:  # fsutil clears the socket bit, so Go opens it, and fails
            raise ContextError(f"no sockets in the build context; {shown(path, root)} is one")
        elif kind == stat.S_IFREG and not os.access(path, os.R_OK):
            raise ContextError(f"a readable build context; permission denied: {shown(path, root)}")
    return Scan(context, dockerfile, root, entries)


def sent_entries(context: Path, dockerfile: Path, root: Path) -> list[Entry]:
    """What pulumi-docker sends of the context: the walk its hash takes, directories included
    (docs/engine-rules.md#pulumi-dockers-context-hash); ContextError as `scan`."""
    return list(scan(context, dockerfile, root).entries)


def check_context(context: Path, dockerfile: Path, root: Path) -> None:
    """ContextError for what pulumi-docker would fail on, and for symlinks out of `root`; reads no file.

    The config calls it first, so it walks afresh: the tag and the build context then reuse that walk.
    """
    scan(context, dockerfile, root, fresh=True)


def context_digest(context: Path, dockerfile: Path, root: Path) -> str:
    """pulumi-docker's context hash, once per process for each context (ContextError as `scan`)."""
    return scan(context, dockerfile, root).digest


def content_tag(
    context: Path, dockerfile: Path, platform: str, build_args: Mapping[str, str], *, root: Path
) -> str:
    """`ctx-<12 hex>` from the context hash, platform and build args (`root`: the repository)."""
    digest = hashlib.sha256(context_digest(context, dockerfile, root).encode())
    digest.update(platform.encode())
    for key in sorted(build_args):
        digest.update(f"\0{key}={build_args[key]}".encode())
    return "ctx-" + digest.hexdigest()[:12]
