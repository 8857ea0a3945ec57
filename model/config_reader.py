"""Typed reads of raw config values that collect every problem under its key path."""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import pulumi

from model.k8s_names import DNS1123_LABEL
from model.text import terminal


class ConfigError(pulumi.RunError):
    """One error listing every bad key of the stack config; raised before any resource is registered."""

    def __init__(self, problems: Sequence[str]) -> None:
        # A key or value from the stack file may hold a line break or a control: one line each, always.
        self.problems = [terminal(p) for p in problems]
        count = len(self.problems)
        noun = "problem" if count == 1 else "problems"
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"invalid stack configuration ({count} {noun}):\n{lines}")


def _describe(value: Any) -> str:
    """Show a given value briefly, with its JSON type, for an error message."""
    kinds = {bool: "boolean", int: "number", float: "number", str: "string", list: "list", dict: "object"}
    kind = kinds.get(type(value), type(value).__name__)
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{kind} {text}"


class Reader:
    """Reads values under one config namespace and records problems instead of raising at once."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.problems: list[str] = []

    def problem(self, key: str, given: str, expected: str) -> None:
        """Record that `key` had `given` where `expected` was wanted."""
        self.problems.append(f"{self.namespace}:{key}: got {given}; expected {expected}")

    def raise_if_problems(self) -> None:
        """Raise one ConfigError for everything recorded."""
        if self.problems:
            raise ConfigError(self.problems)

    def _missing(self, key: str, expected: str) -> None:
        self.problems.append(f"{self.namespace}:{key}: missing; expected {expected}")

    def object(self, key: str, value: Any, *, required: bool) -> Mapping[str, Any] | None:
        """An object (mapping) value."""
        if value is None:
            if required:
                self._missing(key, "an object")
            return None
        if not isinstance(value, Mapping):
            self.problem(key, _describe(value), "an object")
            return None
        return value

    def array(self, key: str, value: Any) -> list[Any] | None:
        """A required list value."""
        if value is None:
            self._missing(key, "a list")
            return None
        if not isinstance(value, list):
            self.problem(key, _describe(value), "a list")
            return None
        return value

    def string(self, key: str, value: Any, *, required: bool = True) -> str | None:
        """A non-empty string."""
        if value is None:
            if required:
                self._missing(key, "a non-empty string")
            return None
        if not isinstance(value, str) or not value.strip():
            self.problem(key, _describe(value), "a non-empty string")
            return None
        return value

    def dns_label(self, key: str, value: Any) -> str | None:
        """A DNS-1123 label, as Kubernetes names and namespaces require."""
        text = self.string(key, value)
        if text is not None and DNS1123_LABEL.problem(text):
            self.problem(
                key,
                repr(text),
                "a DNS-1123 label: at most 63 lowercase letters, digits and '-', "
                "starting and ending with a letter or digit",
            )
            return None
        return text

    def boolean(self, key: str, value: Any, *, default: bool) -> bool | None:
        """A true/false value."""
        if value is None:
            return default
        if not isinstance(value, bool):
            self.problem(key, _describe(value), "true or false")
            return None
        return value

    def integer(self, key: str, value: Any, *, default: int | None, minimum: int, maximum: int) -> int | None:
        """A whole number within bounds (a float with no fraction counts, a string does not)."""
        if value is None:
            if default is None:
                self._missing(key, f"a whole number from {minimum} to {maximum}")
            return default
        whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
        if isinstance(value, bool) or not whole or not minimum <= value <= maximum:
            self.problem(key, _describe(value), f"a whole number from {minimum} to {maximum}")
            return None
        return int(value)

    def number(self, key: str, value: Any, *, default: float) -> float | None:
        """A positive finite number."""
        if value is None:
            return default
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or value <= 0
        ):
            self.problem(key, _describe(value), "a positive number")
            return None
        return float(value)

    def choice(self, key: str, value: Any, allowed: Iterable[str]) -> str | None:
        """One of a fixed set of strings."""
        options = tuple(allowed)
        if value is None:
            self._missing(key, "one of " + ", ".join(options))
            return None
        if value not in options:
            self.problem(key, _describe(value), "one of " + ", ".join(options))
            return None
        return str(value)

    def string_list(self, key: str, value: Any, *, valid: Callable[[str], bool], what: str) -> list[str]:
        """An optional list of strings, each accepted by `valid`."""
        if value is None:
            return []
        if not isinstance(value, list):
            self.problem(key, _describe(value), f"a list of {what}")
            return []
        good: list[str] = []
        for i, item in enumerate(value):
            if not isinstance(item, str) or not valid(item):
                self.problem(f"{key}[{i}]", _describe(item), what)
            else:
                good.append(item)
        return good

    def string_map(
        self, key: str, value: Any, *, key_pattern: re.Pattern[str] | None = None
    ) -> dict[str, str] | None:
        """An optional object of string keys to string values."""
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.problem(key, _describe(value), "an object of names to string values")
            return None
        result: dict[str, str] = {}
        for k, v in value.items():
            if key_pattern is not None and not key_pattern.fullmatch(str(k)):
                self.problem(f"{key}.{k}", "an invalid name", "a name of letters, digits and '-'")
                return None
            if not isinstance(v, str):
                self.problem(f"{key}.{k}", _describe(v), "a string (quote numbers and booleans)")
                return None
            result[str(k)] = v
        return result

    def unknown_keys(self, key: str, obj: Mapping[str, Any], known: Sequence[str]) -> None:
        """Report keys that are not part of the contract, which usually are typos."""
        for k in obj:
            if k not in known:
                close = difflib.get_close_matches(str(k), list(known), n=1, cutoff=0.6)
                hint = f"; did you mean {key}.{close[0]}?" if close else ""
                self.problem(f"{key}.{k}", "an unknown key", "one of " + ", ".join(known) + hint)
