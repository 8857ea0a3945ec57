"""The runtime an app declares against the one its base images run (docs/engine-rules.md#runtime-images)."""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import Version as PyVersion
from semantic_version import NpmSpec
from semantic_version import Version as NodeVersion

from model.files import FileRefused, read_text

CONTRADICTS, NOT_CHECKABLE, MALFORMED = "GD001", "GD002", "GD003"
"""The runtime rules' codes: levels error, info and warning, lowered or skipped like hadolint's."""
RULE_LEVELS = {CONTRADICTS: "error", NOT_CHECKABLE: "info", MALFORMED: "warning"}
MAX_DECLARATION_BYTES = 1 << 20
"""Declarations are read without following a symlink: the build context sends it as a link, not its target."""
_TAG_VERSION = re.compile(r"v?([0-9]+(?:\.[0-9]+){0,2})(?![0-9.])")
"""The release line a tag starts with: `18`, `3.12`, `20.11.1` (then `-alpine`, `-slim`, ...)."""
_FLAG = re.compile(r"--\S+")


@dataclass(frozen=True)
class Declaration:
    """One runtime declaration of an app: where it is and what it accepts."""

    runtime: str
    """`node` or `python`."""
    file: Path
    line: int
    value: str
    accepts: Callable[[str], bool] | None
    """Whether a full version is accepted; None when the value names no version (`lts/*`, `system`)."""

    def where(self, root: Path) -> str:
        return f"{_shown(self.file, root)} line {self.line}"


@dataclass(frozen=True)
class RuntimeFinding:
    """A finding on one FROM line of a Dockerfile."""

    line: int
    code: str
    message: str


def _shown(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def _line_of(text: str, *keys: str) -> int:
    """The line of the last of `keys`, each searched after the one before (1 when absent)."""
    pos = 0
    for key in keys:
        found = text.find(key, pos)
        if found < 0:
            return 1
        pos = found
    return text.count("\n", 0, pos) + 1


def _npm(value: str) -> Callable[[str], bool] | None:
    # npm allows `>= 20`; NpmSpec wants the operator next to its version.
    spec = NpmSpec(re.sub(r"([<>=~^]+)\s+", r"\1", value.strip().lstrip("v")))
    return lambda version: NodeVersion(version) in spec


def _pep440(value: str) -> Callable[[str], bool] | None:
    spec = SpecifierSet(value)
    return lambda version: spec.contains(PyVersion(version), prereleases=True)


def _pinned_python(value: str) -> Callable[[str], bool] | None:
    """A `.python-version` line: `3.12` is any 3.12.x, `3.12.1` exactly that; `system`, `pypy3.10` none."""
    if not re.fullmatch(r"[0-9]+(\.[0-9]+){0,2}", value):
        return None
    return _pep440(f"=={value}" if value.count(".") == 2 else f"=={value}.*")


def _node_alias(value: str) -> bool:
    return value.startswith("lts/") or value in ("node", "stable", "latest", "current", "system", "iojs")


def _version_file(
    runtime: str, path: Path, parse: Callable[[str], Callable[[str], bool] | None]
) -> Declaration:
    text = read_text(path, MAX_DECLARATION_BYTES, follow_symlinks=False)
    lines = [
        (n, s.strip()) for n, s in enumerate(text.splitlines(), 1) if s.strip() and not s.startswith("#")
    ]
    if not lines:
        raise ValueError("no version in it")
    line, value = lines[0]
    accepts = None if runtime == "node" and _node_alias(value) else parse(value)
    return Declaration(runtime, path, line, value, accepts)


def _package_json(path: Path) -> Declaration | None:
    text = read_text(path, MAX_DECLARATION_BYTES, follow_symlinks=False)
    data = json.loads(text)
    engines = data.get("engines") if isinstance(data, dict) else None
    if engines is None:
        return None
    node = engines.get("node") if isinstance(engines, dict) else None
    if node is None:
        return None
    if not isinstance(node, str):
        raise ValueError("engines.node is not a string")
    line = _line_of(text, '"engines"', '"node"')
    return Declaration("node", path, line, node, None if _node_alias(node.strip()) else _npm(node))


def _pyproject(path: Path) -> Declaration | None:
    text = read_text(path, MAX_DECLARATION_BYTES, follow_symlinks=False)
    project = tomllib.loads(text).get("project", {})
    value = project.get("requires-python") if isinstance(project, dict) else None
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("requires-python is not a string")
    return Declaration("python", path, _line_of(text, "requires-python"), value, _pep440(value))


_SOURCES: tuple[tuple[str, Callable[[Path], Declaration | None]], ...] = (
    ("package.json", _package_json),
    (".nvmrc", lambda p: _version_file("node", p, _npm)),
    (".node-version", lambda p: _version_file("node", p, _npm)),
    ("pyproject.toml", _pyproject),
    (".python-version", lambda p: _version_file("python", p, _pinned_python)),
)


def declarations(context: Path) -> tuple[list[Declaration], list[tuple[str, str]]]:
    """The runtime declarations in a build context, and one line per declaration file that is malformed."""
    found: list[Declaration] = []
    problems: list[tuple[str, str]] = []
    for name, parse in _SOURCES:
        path = context / name
        if not path.exists() and not path.is_symlink():
            continue
        try:
            declaration = parse(path)
        except (FileRefused, ValueError, TypeError, AttributeError, InvalidSpecifier) as exc:
            problems.append((name, str(exc).splitlines()[0] if str(exc) else type(exc).__name__))
            continue
        if declaration is not None:
            found.append(declaration)
    return found, problems


def base_images(dockerfile_text: str) -> Iterator[tuple[int, str]]:
    """(line, image) of each FROM that names an image, not an earlier stage."""
    stages: set[str] = set()
    for number, raw in enumerate(dockerfile_text.splitlines(), 1):
        words = [w for w in raw.split() if not _FLAG.fullmatch(w)]
        if len(words) < 2 or words[0].upper() != "FROM":
            continue
        image = words[1]
        if len(words) >= 4 and words[2].upper() == "AS":
            stages.add(words[3].lower())
        if image.lower() not in stages and image.lower() != "scratch":
            yield number, image


def image_runtime(image: str) -> tuple[str, str] | None:
    """(runtime, tag) of a node or python image (`registry/x/node:18-alpine`), None for any other image."""
    name, _, _digest = image.partition("@")
    last = name.rsplit("/", 1)[-1]
    repo, _, tag = last.partition(":")
    return (repo, tag) if repo in ("node", "python") else None


def _line_versions(version: str, declared: str) -> Iterator[str]:
    """Releases of the line a tag names, as full versions: the first and a last of each minor it may run,
    and each version the declaration names that lies on the line (and the one after, for `>`)."""
    parts = version.split(".")
    if len(parts) == 3:
        yield version
        return
    minors = [parts[1]] if len(parts) == 2 else [str(m) for m in range(100)]
    for minor in minors:
        yield from (f"{parts[0]}.{minor}.0", f"{parts[0]}.{minor}.99999")
    for named in _TAG_VERSION.finditer(declared):
        full = [*named.group(1).split("."), "0", "0"][:3]
        if full[: len(parts)] == parts:
            yield from (".".join(full), ".".join([*full[:2], str(int(full[2]) + 1)]))


def check_dockerfile(
    dockerfile_text: str, dockerfile_shown: str, context: Path, root: Path
) -> list[RuntimeFinding]:
    """The runtime findings of one Dockerfile against the declarations in its build context."""
    found, problems = declarations(context)
    findings = [
        RuntimeFinding(1, MALFORMED, f"runtime declaration {_shown(context / p, root)} cannot be read: {why}")
        for p, why in problems
    ]
    for line, image in base_images(dockerfile_text):
        runtime_tag = image_runtime(image)
        if runtime_tag is None:
            continue
        runtime, tag = runtime_tag
        version = _TAG_VERSION.match(tag)
        for d in (d for d in found if d.runtime == runtime):
            declares = f"{d.where(root)} declares {runtime} {d.value!r}"
            if d.accepts is None:
                findings.append(
                    RuntimeFinding(line, NOT_CHECKABLE, f"runtime not checkable: {declares}, no version")
                )
            elif version is None or "$" in image:
                findings.append(
                    RuntimeFinding(
                        line,
                        NOT_CHECKABLE,
                        f"runtime not checkable: base image {image} names no version; {declares}",
                    )
                )
            elif not any(d.accepts(v) for v in _line_versions(version.group(1), d.value)):
                findings.append(
                    RuntimeFinding(
                        line,
                        CONTRADICTS,
                        f"base image {image} ({dockerfile_shown} line {line}) runs {runtime} "
                        f"{version.group(1)}, but {declares}",
                    )
                )
    return findings
