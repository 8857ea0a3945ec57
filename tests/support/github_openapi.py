"""GitHub's published OpenAPI description of the deployment endpoints, from the npm package `@octokit/openapi`
(pinned in tests/schemas/package.json, installed by `make schemas`): only the operations the deploy calls,
their `$ref`s resolved and OpenAPI 3.0's `nullable` turned into JSON Schema, for jsonschema to validate."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator

from model.files import read_bounded
from tests.support.argocd_schema import SCHEMA_DIR, SchemaUnavailable, ensure_installed

PACKAGE = "@octokit/openapi"
DESCRIPTIONS = {
    "api.github.com": "api.github.com.json",
    "ghes-3.17": "ghes-3.17.json",
}
"""github.com's description, and the oldest GitHub Enterprise Server's the package ships."""
MAX_DESCRIPTION_BYTES = 64 * 1024 * 1024
"""The description is ~13 MB; a larger file is not it."""
MAX_REF_DEPTH = 32
OPERATIONS = ("repos/create-deployment", "repos/create-deployment-status")
"""The operations the deploy calls (clients/github_deployments.py)."""


@dataclass(frozen=True)
class Operation:
    """One operation: its method, its path as a pattern, and the schemas of its body and 201 answer."""

    id: str
    method: str
    template: str
    path: re.Pattern[str]
    request: Draft202012Validator
    response: Draft202012Validator
    properties: frozenset[str]
    """The request body's declared properties: the stand-in refuses any other (a misspelt field)."""


def _description(name: str) -> dict[str, Any]:
    ensure_installed(PACKAGE)
    path = SCHEMA_DIR / "node_modules" / PACKAGE / "generated" / DESCRIPTIONS[name]
    if not path.is_file():
        raise SchemaUnavailable(f"{path} is missing: run `make schemas`")
    data: dict[str, Any] = json.loads(read_bounded(path, MAX_DESCRIPTION_BYTES))
    return data


def _resolve(node: Any, root: Mapping[str, Any], depth: int = 0) -> Any:
    """`node` with every local `$ref` replaced by its target and `nullable: true` as a JSON Schema type."""
    if depth > MAX_REF_DEPTH:
        return {}  # a deeper schema is a recursive one (a nested user); accept anything there
    if isinstance(node, list):
        return [_resolve(item, root, depth) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target: Any = root
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        return _resolve(target, root, depth + 1)
    out = {k: _resolve(v, root, depth) for k, v in node.items() if k not in ("example", "examples")}
    if out.pop("nullable", False) is True:
        kind = out.get("type")
        if isinstance(kind, str):
            out["type"] = [kind, "null"]
        elif "enum" in out:
            out["enum"] = [*out["enum"], None]
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


@functools.cache
def operations(description: str = "api.github.com") -> dict[str, Operation]:
    """The deploy's operations in `description`, by operationId (read once per test session)."""
    spec = _description(description)
    found: dict[str, Operation] = {}
    for template, item in spec["paths"].items():
        for method, op in item.items():
            if not isinstance(op, dict) or op.get("operationId") not in OPERATIONS:
                continue
            body = _resolve(op["requestBody"]["content"]["application/json"]["schema"], spec)
            answer = _resolve(op["responses"]["201"]["content"]["application/json"]["schema"], spec)
            pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
            found[op["operationId"]] = Operation(
                op["operationId"], method.upper(), template, re.compile(pattern + "$"),
                Draft202012Validator(body), Draft202012Validator(answer),
                frozenset(body.get("properties", {})),
            )  # fmt: skip
    missing = set(OPERATIONS) - set(found)
    if missing:
        raise SchemaUnavailable(f"{PACKAGE} ({description}) lacks {', '.join(sorted(missing))}")
    return found


def request_problems(op: Operation, body: Any) -> list[str]:
    """Why `body` is not a request GitHub's description allows for `op` (empty: it is one)."""
    problems = [
        f"{'/'.join(map(str, e.absolute_path)) or 'body'}: {e.message}" for e in op.request.iter_errors(body)
    ]
    if isinstance(body, dict):
        problems += [f"{key}: not a field of {op.id}" for key in sorted(set(body) - op.properties)]
    return problems
