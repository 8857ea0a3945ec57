"""The one error a bad stack config raises, its problems, and the schema's findings worded as them."""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping, Sequence
from typing import Any, cast

import pulumi
from jsonschema import ValidationError

from model.config_schema import key_at, validator
from model.errors import GitopsError, Problem
from model.http_origin import redact_url
from model.text import terminal

KeyPath = tuple[str | int, ...]
"""A value's path in the stack config: ('apps', 0, 'image', 'pin')."""


class ConfigError(GitopsError, pulumi.RunError):
    """One error listing every bad key of the stack config; raised before any resource is registered."""

    def __init__(self, problems: Sequence[Problem | str]) -> None:
        # A key or value from the stack file may hold a line break or a control: one line each, always.
        self.problems = [terminal(str(p)) for p in problems]
        count = len(self.problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(
            f"invalid stack configuration ({count} problem{'' if count == 1 else 's'}):\n{lines}"
        )


class Missing(Problem):
    """A required key that is not set."""

    def __str__(self) -> str:
        return f"{self.key}: missing; expected {self.expected}"


class Reader:
    """Collects problems under one config namespace instead of raising at the first."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.problems: list[Problem | str] = []

    def problem(self, key: str, given: str, expected: str) -> None:
        """Record that `key` had `given` where `expected` was wanted."""
        self.problems.append(Problem(f"{self.namespace}:{key}", given, expected))

    def add(self, problem: Problem) -> None:
        """Record a problem whose key is not yet under the namespace."""
        self.problems.append(dataclasses.replace(problem, key=f"{self.namespace}:{problem.key}"))

    def raise_if_problems(self) -> None:
        """Raise one ConfigError for everything recorded."""
        if self.problems:
            raise ConfigError(self.problems)


def describe(value: Any) -> str:
    """A given value, briefly, with its JSON type, for an error message."""
    kinds = {bool: "boolean", int: "number", float: "number", str: "string", list: "list", dict: "object"}
    text = repr(value)
    return f"{kinds.get(type(value), type(value).__name__)} {text[:57] + '...' if len(text) > 60 else text}"


def app_key(index: int, value: Any) -> str:
    """`apps[1] (checkout)`: an app's key path, naming the app as well as its index when it has a name."""
    name = value.get("name") if isinstance(value, Mapping) else None
    readable = isinstance(name, str) and 0 < len(name) <= 63 and name.isprintable() and name.strip() == name
    return f"apps[{index}] ({name})" if readable else f"apps[{index}]"


def key_text(raw: Mapping[str, Any], path: Sequence[str | int]) -> str:
    """`apps[0] (web).image.pin` for ('apps', 0, 'image', 'pin'): the key path as messages name it."""
    text, node = "", cast(Any, raw)
    for part in path:
        if isinstance(part, int):
            text = app_key(part, node[part]) if text == "apps" else f"{text}[{part}]"
        else:
            text = f"{text}.{part}" if text else part
        node = node[part]
    return text


def schema_problems(raw: Mapping[str, Any], only: tuple[str, ...] = ()) -> tuple[list[Problem], set[KeyPath]]:
    """What the schema finds in a stack's values, one problem a key, and the paths that failed."""
    problems: list[Problem] = []
    failed: set[KeyPath] = set()
    for error in validator(only).iter_errors(raw):
        for path, problem in _problems(raw, error):
            if path not in failed:
                failed.add(path)
                problems.append(problem)
    return problems, failed


def _problems(raw: Mapping[str, Any], error: ValidationError) -> list[tuple[KeyPath, Problem]]:
    path, value = tuple(error.absolute_path), cast(Any, error.instance)
    key, where = key_at(path), key_text(raw, path)
    assert key is not None, path
    if error.validator == "required":
        required = cast(list[str], error.validator_value)
        name = next(p for p in required if p not in value and error.message.startswith(repr(p)))
        child = key_at((*path, name))
        assert child is not None
        return [((*path, name), Missing(f"{where}.{name}" if where else name, "", child.wanted))]
    if error.validator == "additionalProperties":
        known = list(key.keys or {})
        found = []
        for name in (n for n in value if n not in known):
            close = difflib.get_close_matches(str(name), known, n=1, cutoff=0.6)
            hint = f"; did you mean {where}.{close[0]}?" if close else ""
            found.append(
                (
                    (*path, name),
                    Problem(f"{where}.{name}", "an unknown key", f"one of {', '.join(known)}{hint}"),
                )
            )
        return found
    if error.validator == "type" and value is None:
        return [(path, Missing(where, "", key.wanted))]
    if error.validator == "minItems":
        return [(path, Problem(where, "an empty list", key.empty))]
    if error.validator == "format":
        shown = {"repr": repr(value), "describe": describe(value), "redact": repr(redact_url(value))}
        return [(path, Problem(where, shown.get(key.shown, key.shown), key.bad or key.wanted))]
    return [(path, Problem(where, describe(value), key.wanted))]
