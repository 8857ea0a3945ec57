"""Refuse a chart or overlay that reaches outside the repository through a symlink, as Argo CD does
(docs/engine-rules.md#out-of-bounds-symlinks)."""

from __future__ import annotations

import os
from pathlib import Path

from policy_check.render_common import RenderError, relative

MAX_WALK_ENTRIES = 100_000
"""Upper bound on the files and folders one render's symlink walk visits."""
GIT_DIR = ".git"
"""The checkout's Git folder: not repository content, and on a CI runner it holds credentials."""


def _inside(path: Path, root: Path) -> bool:
    return path == root or path.is_relative_to(root)


def confined_path(path: Path, project_dir: Path, what: str) -> Path:
    """`path` with symlinks resolved, when it lies in the repository; else a RenderError naming `what`."""
    root = project_dir.resolve()
    resolved = path.resolve()
    if not _inside(resolved, root):
        raise RenderError(f"{what} is outside the repository")
    if _inside(resolved, root / GIT_DIR):
        raise RenderError(f"{what} is in the repository's {GIT_DIR} folder, which Git does not track")
    if path.is_symlink() and os.path.isabs(os.readlink(path)):
        raise RenderError(f"{what} is an absolute symlink; Argo CD refuses out-of-bounds symlinks")
    return resolved


def check_symlinks(folder: Path, project_dir: Path) -> None:
    """Raise when any symlink under `folder` (or under the in-repository folders its links lead to) is
    absolute or resolves outside `project_dir`; the error names the link, never what it points at."""
    root = project_dir.resolve()
    where = relative(folder, project_dir)
    pending, seen, visited = [folder], set(), 0
    while pending:
        real = pending.pop().resolve()
        if real in seen:
            continue
        seen.add(real)
        for current, dirs, files in os.walk(real, followlinks=False):
            for name in (*dirs, *files):
                visited += 1
                if visited > MAX_WALK_ENTRIES:
                    raise RenderError(
                        f"{where} holds more than {MAX_WALK_ENTRIES} files and folders; the offline render "
                        "does not read that much"
                    )
                entry = Path(current) / name
                if entry == root / GIT_DIR:
                    raise RenderError(
                        f"{where} holds the repository's {GIT_DIR} folder, which the offline render does not "
                        "read (Git does not track it)"
                    )
                if not entry.is_symlink():
                    continue
                target = Path(os.path.realpath(entry))
                shown = Path(os.path.relpath(entry, root)).as_posix()  # never resolved: that names the target
                if target == root or _inside(target, root / GIT_DIR):
                    raise RenderError(
                        f"{where} contains a symlink that reaches the repository's {GIT_DIR} folder: {shown} "
                        "(Git does not track it; on a CI runner it holds the checkout's credentials)"
                    )
                if os.path.isabs(os.readlink(entry)) or not _inside(target, root):
                    raise RenderError(
                        f"{where} contains an out-of-bounds symlink: {shown} points outside the repository "
                        "(Argo CD refuses it: repository contains out-of-bounds symlinks)"
                    )
                if target.is_dir():
                    pending.append(target)
