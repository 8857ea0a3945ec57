"""A config key's definition (type, default, range, format, doc) and the JSON Schema it stands for."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

DNS_LABEL = (
    "a DNS-1123 label: at most 63 lowercase letters, digits and '-', "
    "starting and ending with a letter or digit"
)


@dataclass(frozen=True)
class Key:
    """One config key: JSON type (empty: any, checked by hand), doc, default and what a valid value is."""

    kind: str
    doc: str = ""
    default: Any = None
    required: bool = False
    expected: str = ""
    """What a valid value is, in messages; derived from the type when empty."""
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    format: str = ""
    """A name in FORMATS, or `positive` (a finite number above 0)."""
    bad: str = ""
    """What is expected when the format fails (default: `wanted`)."""
    shown: str = "repr"
    """How a value failing its format is shown: `repr`, `describe`, `redact` or a fixed text."""
    blank: bool = False
    keys: Mapping[str, Key] | None = None
    items: Key | None = None
    values: Key | None = None
    """The schema of a map's values (its names are free)."""
    empty: str = ""
    """A list that must not be empty: what is expected instead."""
    secret: bool = False

    @property
    def wanted(self) -> str:
        """What a valid value is, in a message."""
        if self.expected or self.choices:
            return self.expected or "one of " + ", ".join(self.choices)
        if self.kind == "integer":
            return f"a whole number from {self.low:g} to {self.high:g}"
        return {
            "string": "a non-empty string",
            "number": "a positive number",
            "boolean": "true or false",
            "object": "an object",
            "array": "a list",
        }.get(self.kind, "")


def text(doc: str, **kw: Any) -> Key:
    return Key("string", doc, **kw)


def label(doc: str, **kw: Any) -> Key:
    return Key("string", doc, format="dns-label", bad=DNS_LABEL, **kw)


def whole(doc: str, default: int | None, low: float, high: float) -> Key:
    return Key("integer", doc, default, low=low, high=high)


def obj(doc: str, keys: Mapping[str, Key], **kw: Any) -> Key:
    return Key("object", doc, keys=keys, **kw)


def strings(doc: str, what: str, fmt: str) -> Key:
    item = Key("string", format=fmt, expected=what, shown="describe")
    return Key("array", doc, expected=f"a list of {what}", items=item)


def string_map(doc: str) -> Key:
    value = Key("string", expected="a string (quote numbers and booleans)", blank=True)
    return Key("object", doc, expected="an object of names to string values", values=value)


def json_schema(key: Key) -> dict[str, Any]:
    """The JSON Schema of one key (and of everything under it)."""
    schema: dict[str, Any] = {"type": key.kind} if key.kind else {}
    if key.kind == "string" and not key.blank:
        schema["pattern"] = r"\S"
    schema |= {k: v for k, v in (("minimum", key.low), ("maximum", key.high)) if v is not None}
    schema |= {"enum": list(key.choices)} if key.choices else {}
    schema |= {"format": key.format} if key.format else {}
    if key.keys is not None:
        schema["properties"] = {name: json_schema(k) for name, k in key.keys.items()}
        schema["required"] = [name for name, k in key.keys.items() if k.required]
        schema["additionalProperties"] = False
    if key.values is not None:
        schema["additionalProperties"] = json_schema(key.values)
    if key.items is not None:
        schema["items"] = json_schema(key.items)
        schema |= {"minItems": 1} if key.empty else {}
    return schema
