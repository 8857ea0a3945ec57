"""What a kustomize overlay reads, found before kustomize runs: its local folders and its remote URLs
(docs/engine-rules.md#kustomize-remote-references)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from model.files import FileRefused, read_text
from policy_check.render_common import RenderError, relative
from policy_check.render_confine import check_symlinks, confined_path

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
"""The names kustomize reads a folder's kustomization from, in its order."""

MAX_KUSTOMIZATIONS = 200
"""Most kustomizations (the overlay and every base and component under it) one render reads."""
MAX_KUSTOMIZATION_BYTES = 1024 * 1024
"""Most bytes of one kustomization file."""

_LOADED = ("resources", "bases", "components", "crds")
"""Fields whose entries are files or kustomization folders, local or remote."""
_FILE_LISTS = ("patchesStrategicMerge", "generators", "transformers", "validators", "configurations")
"""Fields whose string entries are files (or, for the last three, folders); other entries are inline."""
_REMOTE_PREFIXES = ("git::", "git@", "gh:", "github.com/", "gitlab.com/", "bitbucket.org/")
_HOST_PATH = re.compile(r"[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+(:[0-9]+)?/")
"""`host.tld/…`: a missing folder of that shape is a repository kustomize would clone."""


def is_remote(entry: str) -> bool:
    """True when kustomize would fetch `entry` instead of reading the repository."""
    return "://" in entry or entry.startswith(_REMOTE_PREFIXES)


_USERINFO = re.compile(r"(://)[^/@\s]*@")


def shown_url(entry: str) -> str:
    """A remote entry as a report may print it: without a user, password or token."""
    return _USERINFO.sub(r"\1", entry)


def kustomization_file(folder: Path) -> Path | None:
    """The folder's kustomization file, or None."""
    return next((folder / n for n in KUSTOMIZATION_FILES if (folder / n).is_file()), None)


def _read(path: Path, project_dir: Path) -> dict[str, Any]:
    shown = relative(path, project_dir)
    try:
        doc = yaml.safe_load(read_text(path, MAX_KUSTOMIZATION_BYTES))
    except FileRefused as exc:
        raise RenderError(f"{shown}: {exc}") from None
    except yaml.YAMLError as exc:
        raise RenderError(f"{shown}: not a YAML mapping ({str(exc).splitlines()[0]})") from None
    except RecursionError:
        raise RenderError(f"{shown}: nests too deeply to be a kustomization") from None
    if not isinstance(doc, dict):
        raise RenderError(f"{shown}: expected a kustomization mapping")
    return doc


def _strings(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _mappings(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def entries(doc: dict[str, Any]) -> Iterator[tuple[str, str, bool]]:
    """(field, entry, may be a folder) of every path or URL a kustomization names."""
    for field in _LOADED:
        yield from ((field, entry, True) for entry in _strings(doc.get(field)))
    for field in _FILE_LISTS:
        for entry in _strings(doc.get(field)):
            if "\n" not in entry:  # a multi-line entry is an inline patch or config
                yield field, entry, field != "patchesStrategicMerge"
    for field in ("patches", "patchesJson6902", "replacements"):
        yield from (
            (field, i["path"], False) for i in _mappings(doc.get(field)) if isinstance(i.get("path"), str)
        )
    for field in ("configMapGenerator", "secretGenerator"):
        for item in _mappings(doc.get(field)):
            for entry in [*_strings(item.get("files")), *_strings(item.get("envs"))]:
                yield field, entry.split("=", 1)[-1], False
            if isinstance(item.get("env"), str):
                yield field, item["env"], False
    openapi = doc.get("openapi")
    if isinstance(openapi, dict) and isinstance(openapi.get("path"), str):
        yield "openapi", openapi["path"], False
    charts = _mappings(doc.get("helmCharts"))
    yield from (("helmCharts", c["repo"], False) for c in charts if isinstance(c.get("repo"), str))


def remote_references(overlay: Path, project_dir: Path, extra: dict[str, Any] | None = None) -> list[str]:
    """The remote URLs the overlay (and every local base and component under it, and `extra`, the
    Application's own options) refers to, in order; a RenderError for a local entry out of bounds."""
    remote: list[str] = []
    pending: list[tuple[Path, dict[str, Any] | None]] = [(overlay, None)]
    if extra:
        pending.append((overlay, extra))
    seen: set[Path] = set()
    while pending:
        folder, doc = pending.pop(0)
        if doc is None:
            real = folder.resolve()
            if real in seen:
                continue
            seen.add(real)
            if len(seen) > MAX_KUSTOMIZATIONS:
                raise RenderError(
                    f"{relative(overlay, project_dir)} reads more than {MAX_KUSTOMIZATIONS} kustomizations"
                )
            check_symlinks(folder, project_dir)
            found = kustomization_file(folder)
            if found is None:
                continue  # a plain folder: kustomize says what is missing
            doc = _read(found, project_dir)
        for field, entry, may_be_folder in entries(doc):
            if is_remote(entry):
                remote.append(shown_url(entry))
                continue
            where = f"{relative(folder, project_dir)}: {field} entry {entry!r}"
            target = folder / entry
            if not target.exists() and not target.is_symlink():
                if may_be_folder and _HOST_PATH.match(entry):
                    remote.append(entry)  # `host.tld/org/repo`: kustomize would clone it
                    continue
                # Never handed to kustomize, which would try a missing folder as a repository URL.
                raise RenderError(f"{where} is not a file or folder of this repository")
            path = confined_path(target, project_dir, where)
            if path.is_dir():
                pending.append((path, None))
    return list(dict.fromkeys(remote))
