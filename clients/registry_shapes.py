"""The shapes of what a registry and its token service answer, as JSON Schemas, and the one bounded reader
for them: a misfit is one clause, never a TypeError (docs/engine-rules.md#registry-api-v2)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import jsonschema
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from clients.http_bounds import one_line
from model.errors import GitopsError

MAX_DEPTH = 32
"""Real manifests nest 4 levels deep (annotations inside a descriptor); anything far deeper is refused."""
MAX_LAYERS = 128
"""Docker and containerd stop at 127 layers (overlayfs' lower-dir limit); more is not a real image."""
MAX_INDEX_ENTRIES = 256
"""Entries of an image index: one per platform, plus attestations."""
MAX_BLOB_SIZE = 2**63 - 1
"""Distribution and containerd carry sizes as int64."""
_VALUE_CHARS = 40
"""A value quoted in an error is cut to this."""

_DIGEST = {"type": "string", "pattern": r"^sha256:[0-9a-f]{64}$", "expected": "a digest 'sha256:<64 hex>'"}
_SIZE = {"type": "integer", "minimum": 0, "maximum": MAX_BLOB_SIZE, "expected": "a non-negative integer"}
_TEXT = {"type": "string", "expected": "a string"}
_DESCRIPTOR_FIELDS = {"mediaType": _TEXT, "digest": _DIGEST, "size": _SIZE}
_DESCRIPTOR = {
    "type": "object", "required": ["digest", "size"], "properties": _DESCRIPTOR_FIELDS,
    "expected": "a descriptor object with digest and size",
}  # fmt: skip
_PLATFORM = {
    "type": "object", "properties": {"os": _TEXT, "architecture": _TEXT, "variant": _TEXT},
    "expected": "an object with os and architecture",
}  # fmt: skip


def _object(required: list[str], **properties: Any) -> Mapping[str, Any]:
    """An object schema whose misfit reads `expected an object`."""
    return {"type": "object", "required": required, "properties": properties, "expected": "an object"}


def _list(items: Any, most: int, what: str) -> dict[str, Any]:
    return {"type": "array", "maxItems": most, "items": items, "expected": f"a list of at most {most} {what}"}


ANY_MANIFEST = _object([], mediaType=_TEXT)
"""What every manifest is before its media type is known."""
IMAGE_MANIFEST = _object(
    ["config", "layers"],
    mediaType=_TEXT,
    config=_DESCRIPTOR,
    layers=_list(_DESCRIPTOR, MAX_LAYERS, "layer descriptors"),
)
"""An OCI image manifest or a Docker v2 schema 2 manifest."""
_INDEX_ENTRY = {**_DESCRIPTOR, "properties": {**_DESCRIPTOR_FIELDS, "platform": _PLATFORM}}
INDEX = _object(
    ["manifests"], mediaType=_TEXT, manifests=_list(_INDEX_ENTRY, MAX_INDEX_ENTRIES, "manifest descriptors")
)
"""An OCI image index or a Docker manifest list."""
TOKEN = _object([], token=_TEXT, access_token=_TEXT)
"""A token service's answer: `token` or `access_token`."""
_ERROR = {"type": "object", "properties": {"code": _TEXT, "message": _TEXT}}
ERRORS = {
    "type": "object", "required": ["errors"],
    "properties": {"errors": {"type": "array", "items": _ERROR, "expected": "a list of error objects"}},
}  # fmt: skip
"""A registry's error body: `{"errors": [{"code": ..., "message": ...}]}`."""
_ACCESS = {
    "type": "object",
    "properties": {"type": _TEXT, "name": _TEXT, "actions": {"type": "array", "items": _TEXT}},
}
TOKEN_CLAIMS = {
    "type": "object",
    "required": ["access"],
    "properties": {"access": {"type": "array", "items": _ACCESS}},
}
"""A Distribution token's `access` claim: the granted actions per resource."""


def _strict_integer(_checker: Any, value: Any) -> bool:
    # JSON Schema counts 3e9 (a float in Python) as an integer; a size written as a float is not one.
    return isinstance(value, int) and not isinstance(value, bool)


_Validator = jsonschema.validators.extend(
    Draft202012Validator,
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine("integer", _strict_integer),
)


class ShapeError(GitopsError, ValueError):
    """A body that is not JSON of the expected shape; the message is one clause (`that is not JSON ...`,
    `whose x is y; expected z`), without the body."""


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _depth(value: Any) -> int:
    """How deeply `value` nests (a scalar is 0), iteratively: a deep value must not exhaust the stack."""
    deepest, todo = 0, [(value, 0)]
    while todo and deepest <= MAX_DEPTH:
        current, level = todo.pop()
        if isinstance(current, dict | list):
            deepest = max(deepest, level + 1)
            children = current.values() if isinstance(current, dict) else current
            todo += [(child, level + 1) for child in children]
    return deepest


def load(body: bytes) -> Any:
    """The JSON value of `body`; ShapeError naming why it is not acceptable JSON."""
    try:
        value = json.loads(body, parse_constant=_refuse_constant)
    except RecursionError:
        raise ShapeError(f"that nests deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:  # also UnicodeDecodeError, and a number of more than 4300 digits
        text = one_line(str(exc) or type(exc).__name__, _VALUE_CHARS)
        raise ShapeError(f"that is not JSON ({text})") from None
    if _depth(value) > MAX_DEPTH:
        raise ShapeError(f"that nests deeper than {MAX_DEPTH} levels")
    return value


def problem(value: Any, schema: Mapping[str, Any]) -> str | None:
    """What is wrong with `value` against `schema`, in one line, or None when it fits."""
    # The first error in document and schema order: lazily, so a 100,000-entry list stops at maxItems.
    error = next(_Validator(schema).iter_errors(value), None)
    return None if error is None else _describe(error)


def parse(body: bytes, schema: Mapping[str, Any]) -> Any:
    """`body` as JSON of `schema`'s shape; ShapeError saying what was wrong."""
    value = load(body)
    found = problem(value, schema)
    if found is not None:
        raise ShapeError(found)
    return value


def _where(path: Iterable[Any]) -> str:
    """`layers[2].size` for the path ("layers", 2, "size")."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _kind(value: Any) -> str:
    """How a value reads in an error: `-2500000000`, `"12"`, `true`, `a list`, `an object`, `null`."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return one_line(json.dumps(value), _VALUE_CHARS)


def _describe(error: ValidationError) -> str:
    place = _where(error.absolute_path)
    instance: Any = error.instance
    if error.validator == "required":
        required: Any = error.validator_value
        missing = [k for k in required if k not in instance]
        return f"without {_where([*error.absolute_path, missing[0]]) if missing else place}"
    expected = error.schema.get("expected") if isinstance(error.schema, Mapping) else None
    subject = f"whose {place}" if place else "that"
    if error.validator == "maxItems":
        return f"{subject} has {len(instance)} entries; expected {expected}"
    found = f"{subject} is {_kind(instance)}"
    if expected:
        return f"{found}; expected {expected}"
    return f"{found} ({one_line(error.message, _VALUE_CHARS)})"
