"""Reading a file the project is handed: a regular file only, bounded in size, decoded once."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from model.errors import GitopsError


class FileRefused(GitopsError):
    """The file cannot be used: the message says why, in a few words, without the path."""


def read_bounded(path: Path, limit: int, *, follow_symlinks: bool = True) -> bytes:
    """The bytes of `path`, at most `limit` of them.

    Only a regular file is read: a FIFO or a device would block or never end. The check is made on the
    open descriptor, so the file cannot be swapped between the check and the read.
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | (0 if follow_symlinks else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise FileRefused(f"cannot be read ({exc.strerror or exc})") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise FileRefused("cannot be read (not a regular file)")
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise FileRefused(f"cannot be read ({exc.strerror or exc})") from None
    finally:
        os.close(fd)
    if len(data) > limit:
        raise FileRefused(f"over {limit:,} bytes")
    return data


def read_text(path: Path, limit: int, *, follow_symlinks: bool = True) -> str:
    """`read_bounded`, decoded as UTF-8 (FileRefused if it is not)."""
    try:
        return read_bounded(path, limit, follow_symlinks=follow_symlinks).decode("utf-8")
    except UnicodeDecodeError:
        raise FileRefused("not UTF-8 text") from None
