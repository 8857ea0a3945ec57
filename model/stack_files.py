"""Read a stack's Pulumi.<stack>.yaml into the values the engine hands a program, as the CLI reads it
(docs/engine-rules.md#stack-files); a file it cannot carry is one error naming file, line and key."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from model.errors import GitopsError
from model.files import FileRefused, read_text
from model.names import PROJECT
from model.text import terminal

PROJECT_DIR = Path(__file__).resolve().parents[1]
SECRET_PLACEHOLDER = "offline-secret-placeholder"
"""What a `secure:` value reads as offline; printable ASCII, so it is also a valid header value."""
MAX_BYTES = 1024 * 1024
"""Largest stack file read: a real one is a few kilobytes, encrypted secrets included."""
MAX_NODES = 100_000
"""Most keys and values a stack file may hold, as written and once aliases expand (a "billion laughs")."""

_TAG = "tag:yaml.org,2002:"
_NOT_JSON = {
    f"{_TAG}timestamp": "a date or time",
    f"{_TAG}binary": "binary data (!!binary)",
    f"{_TAG}set": "a set (!!set)",
    f"{_TAG}omap": "an ordered map (!!omap)",
    f"{_TAG}pairs": "a list of pairs (!!pairs)",
}
_KEY_ON_LINE = re.compile(r"\s*(?:-\s+)?([^\s:#'\"](?:[^#:]|:(?!\s|$))*?)\s*:(?:\s|$)")
"""A block mapping key at the start of a line; it may hold a colon not followed by a space."""


class StackFileError(GitopsError):
    """A stack file that is missing, not YAML, or not shaped like a Pulumi stack file; one line."""

    def __init__(self, message: str) -> None:
        # Keys and values of the file are quoted in it: a line break or a control in one stays visible.
        super().__init__(terminal(message))


class SecretPlaceholder(str):
    """A `secure:` value read offline: it stands for a secret that only the Pulumi CLI can decrypt."""


def stack_names(project_dir: Path = PROJECT_DIR) -> list[str]:
    """Every stack that has a `Pulumi.<stack>.yaml` in the project."""
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in project_dir.glob("Pulumi.*.yaml"))


def stack_file(stack: str, project_dir: Path = PROJECT_DIR) -> Path:
    """The stack file of `stack` (`org/project/dev` uses `dev`'s, as `python -m deploy` does)."""
    return project_dir / f"Pulumi.{stack.rsplit('/', 1)[-1]}.yaml"


def read_stack_config(stack: str, project_dir: Path = PROJECT_DIR) -> dict[str, Any]:
    """The `config:` block of a stack file, as decoded YAML values keyed `namespace:key`."""
    path = stack_file(stack, project_dir)
    if not path.is_file():
        known = ", ".join(stack_names(project_dir)) or "none"
        raise StackFileError(f"no stack file {path.name} in {project_dir} (stacks: {known})")
    try:
        text = read_text(path, MAX_BYTES)
    except FileRefused as exc:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise StackFileError(_too_large(path.name, size)) from None
        reason = exc if str(exc).startswith("cannot be read") else f"cannot be read as UTF-8 text ({exc})"
        raise StackFileError(f"{path.name}: {reason}") from None
    data = load_yaml(text, path.name)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        line = _document_line(text)
        raise StackFileError(
            f"{path.name}:{line}: expected a mapping with a 'config:' block, got {_kind(data)}"
        )
    config = data.get("config", {})
    if config is None:
        config = {}
    if not isinstance(config, dict):
        line = key_line(text, ("config",)) or _document_line(text)
        raise StackFileError(f"{path.name}:{line}: config: expected a mapping of <namespace>:<key> entries")
    return {str(k): _placeholders(v) for k, v in config.items()}


def _document_line(text: str) -> int:
    """1-based line where the document's content starts (after comments and a `---`)."""
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    return node.start_mark.line + 1 if node is not None else 1


def compose(text: str) -> Node | None:
    """The YAML text's node tree, for `key_line` to walk more than once; None when it is not YAML."""
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None


def key_line(text: str | Node | None, path: Sequence[str | int]) -> int | None:
    """1-based line of a key path (`("config", "gitops-deploy:apps", 1, "replicas")`), or of its deepest part
    that is there (a key left at its default), in the text or its `compose`d tree; None when not YAML."""
    node = compose(text) if isinstance(text, str) else text
    line: int | None = None
    for part in path:
        if isinstance(node, MappingNode) and isinstance(part, str):
            match = next((pair for pair in node.value if str(pair[0].value) == part), None)
            if match is None:
                break
            line, node = match[0].start_mark.line + 1, match[1]
        elif isinstance(node, SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def secret_keys(values: Mapping[str, Any]) -> list[str]:
    """Config keys whose value holds a `secure:` placeholder: the CLI marks those keys secret."""
    return sorted(k for k, v in values.items() if _has_placeholder(v))


def engine_config(values: dict[str, Any]) -> dict[str, str]:
    """Encode values as the CLI does for the language host: strings as is, the rest as JSON."""
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in values.items()}


def _too_large(name: str, size: int) -> str:
    """`<name>: is 2.0 MiB (2,097,152 bytes); the limit ... is 1.0 MiB`: the size that was over."""
    return (
        f"{name}: is {size / 2**20:.1f} MiB ({size:,} bytes); the limit for a stack file is "
        f"{MAX_BYTES / 2**20:.1f} MiB ({MAX_BYTES:,} bytes)"
    )


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader that stops composing at the first node past MAX_NODES (aliases not counted)."""

    def __init__(self, text: str, name: str) -> None:
        super().__init__(text)
        self.name = name
        self.nodes = 0

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        if not self.check_event(yaml.AliasEvent):
            self.nodes += 1
            if self.nodes > MAX_NODES:
                line = self.peek_event().start_mark.line + 1
                raise StackFileError(
                    f"{self.name}:{line}: holds more than {MAX_NODES:,} keys and values as written (number "
                    f"{MAX_NODES + 1:,} is on this line); the limit for a stack file is {MAX_NODES:,}"
                )
        return super().compose_node(parent, index)


def load_yaml(text: str, name: str) -> Any:
    """One YAML document whose values JSON can carry, within MAX_BYTES and MAX_NODES; else StackFileError."""
    size = len(text.encode("utf-8"))
    if size > MAX_BYTES:
        raise StackFileError(_too_large(name, size))
    loader = _BoundedLoader(text, name)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_size(node, name, loader.nodes)
        _check(node, name, loader)
        return loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        raise StackFileError(_syntax_message(exc, name, text)) from None
    except yaml.YAMLError as exc:
        raise StackFileError(f"{name}: not valid YAML ({' '.join(str(exc).split())})") from None
    except RecursionError:
        raise StackFileError(f"{name}: nests too deeply to be a stack file") from None
    finally:
        loader.dispose()


def _syntax_message(exc: yaml.MarkedYAMLError, name: str, text: str) -> str:
    """`file:line:column: problem (near key 'k'); context at line N (key 'j')`, without `<unicode string>`."""
    mark, context_mark = exc.problem_mark or exc.context_mark, exc.context_mark
    problem = exc.problem or exc.context or "not valid YAML"
    if mark is None:
        return f"{name}: {problem}"
    near = _key_on_line(text, mark.line)
    message = f"{name}:{mark.line + 1}:{mark.column + 1}: {problem}" + (
        f" (near key {near!r})" if near else ""
    )
    if exc.context and exc.problem:
        message += f"; {exc.context}"
        if context_mark is not None and context_mark.line != mark.line:
            started = _key_on_line(text, context_mark.line)
            message += f" at line {context_mark.line + 1}" + (f" (key {started!r})" if started else "")
    return message


def _key_on_line(text: str, line: int) -> str | None:
    """The mapping key written on a 0-based line (or the line above), for error messages."""
    lines = text.splitlines()
    for index in (line, line - 1):
        if 0 <= index < len(lines):
            match = _KEY_ON_LINE.match(lines[index].replace("\t", " "))
            if match:
                return match.group(1)
    return None


def _path_text(path: tuple[str, ...]) -> str:
    """`gitops-deploy:apps[0].image` from ('config', 'gitops-deploy:apps', '[0]', 'image')."""
    parts = path[1:] if path[:1] == ("config",) and len(path) > 1 else path
    text = ""
    for part in parts:
        text += part if part.startswith("[") or not text else f".{part}"
    return text or "(document)"


def _check_size(root: Node, name: str, written: int) -> None:
    """No alias cycle, and at most MAX_NODES values once aliases are expanded (as JSON expands them)."""
    size: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in size:
            continue
        children = _children(node)
        if children_done:
            open_nodes.discard(id(node))
            size[id(node)] = 1 + sum(size[id(c)] for c in children)
            if size[id(node)] > MAX_NODES:
                # As written the file is within MAX_NODES (composing stopped otherwise): aliases did it.
                line = node.start_mark.line + 1
                raise StackFileError(
                    f"{name}:{line}: holds {written:,} keys and values as written, but its aliases "
                    f"expand it to more than {MAX_NODES:,} (this value alone expands to "
                    f"{size[id(node)]:,}); the limit for a stack file is {MAX_NODES:,}"
                )
            continue
        if id(node) in open_nodes:
            line = node.start_mark.line + 1
            raise StackFileError(f"{name}:{line}: a recursive alias, which JSON cannot carry")
        open_nodes.add(id(node))
        stack.append((node, True))
        for child in children:
            if id(child) in open_nodes:
                line = child.start_mark.line + 1
                raise StackFileError(f"{name}:{line}: a recursive alias, which JSON cannot carry")
            stack.append((child, False))


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _check(root: Node, name: str, loader: yaml.SafeLoader) -> None:
    """Walk the (acyclic) document once per node: every value JSON can carry, every key unique."""
    seen: set[int] = set()
    stack: list[tuple[Node, tuple[str, ...]]] = [(root, ())]
    while stack:
        node, path = stack.pop()
        if id(node) in seen:
            continue  # an alias of a node already checked
        seen.add(id(node))
        where = f"{name}:{node.start_mark.line + 1}: {_path_text(path)}"
        if node.tag in _NOT_JSON:
            dated = isinstance(node, ScalarNode) and node.tag.endswith("timestamp")
            shown = f" ({node.value})" if dated else ""
            raise StackFileError(
                f"{where}: {_NOT_JSON[node.tag]}{shown}, which JSON cannot carry; quote it or write it as "
                "a string, number, true/false, list or mapping"
            )
        if (
            isinstance(node, ScalarNode)
            and node.tag == f"{_TAG}float"
            and not math.isfinite(loader.construct_yaml_float(node))
        ):
            raise StackFileError(f"{where}: {node.value!r} is not a finite number, which JSON cannot carry")
        if isinstance(node, SequenceNode):
            stack += [(child, (*path, f"[{i}]")) for i, child in enumerate(node.value)]
        elif isinstance(node, MappingNode):
            stack += _mapping_children(node, path, name)


def _mapping_children(
    node: MappingNode, path: tuple[str, ...], name: str
) -> list[tuple[Node, tuple[str, ...]]]:
    """The values of a mapping with their paths; complex and duplicate keys are errors."""
    children: list[tuple[Node, tuple[str, ...]]] = []
    lines: dict[str, int] = {}
    for key_node, value_node in node.value:
        line = key_node.start_mark.line + 1
        if not isinstance(key_node, ScalarNode):
            raise StackFileError(f"{name}:{line}: {_path_text(path)}: a key that is not text")
        key = str(key_node.value)
        if key == "<<":  # a merge key: its mapping's keys join this one
            children.append((value_node, path))
            continue
        if key in lines:
            raise StackFileError(
                f"{name}:{line}: {_path_text((*path, key))}: the key appears twice (lines {lines[key]} "
                f"and {line}); YAML keeps only one, so one of them would be ignored"
            )
        lines[key] = line
        if path == ("config",) and ":" not in key:
            raise StackFileError(
                f"{name}:{line}: config key {key!r}: expected <namespace>:<key>, "
                f"for example '{PROJECT}:{key}'"
            )
        children.append((value_node, (*path, key)))
    return children


def _placeholders(value: Any) -> Any:
    """Replace every `{secure: <string>}` envelope with a SecretPlaceholder, as the CLI reads them."""
    if isinstance(value, dict):
        if len(value) == 1 and isinstance(value.get("secure"), str):
            return SecretPlaceholder(SECRET_PLACEHOLDER)
        return {k: _placeholders(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_placeholders(v) for v in value]
    return value


def _has_placeholder(value: Any) -> bool:
    if isinstance(value, SecretPlaceholder):
        return True
    if isinstance(value, dict):
        return any(_has_placeholder(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_placeholder(v) for v in value)
    return False


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    return "text" if isinstance(value, str) else type(value).__name__
