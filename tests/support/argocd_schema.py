"""Argo CD's Application schema, from the npm package `@kubernetes-models/argo-cd`, for the tests.

Argo CD's files are not committed here. `tests/schemas/package.json` and its lock pin the package,
which `make schemas` (or the first use below) installs with `npm ci` into the ignored
`tests/schemas/node_modules/`; `tests/schemas/validate.mjs` runs its validator under node and also
rejects fields the schema does not declare, as the API server would prune them.

`compare_with_crd` checks the package against Argo CD's own CRD
(argoproj/argo-cd `manifests/crds/application-crd.yaml`): every field of the CRD is known to the
package with a compatible type, the package knows no field the CRD lacks, both require the same
fields, and both leave the same objects free form (`x-kubernetes-preserve-unknown-fields`).
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

SCHEMA_DIR = Path(__file__).resolve().parents[1] / "schemas"
PACKAGE = "@kubernetes-models/argo-cd"
_TIMEOUT_SECONDS = 300


class SchemaUnavailable(RuntimeError):
    """node or npm is missing, or the package could not be installed."""


def pinned_version(package: str = PACKAGE) -> str:
    """The version of `package` `tests/schemas/package.json` pins."""
    return str(json.loads((SCHEMA_DIR / "package.json").read_text())["dependencies"][package])


def ensure_installed(package: str = PACKAGE) -> None:
    """Install the pinned packages with `npm ci` (as `make schemas` does) when `package` is not there yet
    in its pinned version."""
    installed = SCHEMA_DIR / "node_modules" / package / "package.json"
    if installed.is_file() and json.loads(installed.read_text())["version"] == pinned_version(package):
        return
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        raise SchemaUnavailable(
            "node and npm are needed to validate Argo CD objects; install them "
            "(`apt-get install nodejs npm`, as .ci/run does) and run `make schemas`"
        )
    done = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"],
        cwd=SCHEMA_DIR,
        capture_output=True,
        text=True,
        timeout=_TIMEOUT_SECONDS,
        check=False,
    )
    if done.returncode != 0:
        raise SchemaUnavailable(f"`npm ci` in {SCHEMA_DIR} failed: {done.stderr.strip()[-2000:]}")


def _run(request: Mapping[str, Any]) -> list[dict[str, Any]]:
    ensure_installed()
    node = shutil.which("node")
    if node is None:
        raise SchemaUnavailable("node is not on PATH")
    done = subprocess.run(
        [node, str(SCHEMA_DIR / "validate.mjs")],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=_TIMEOUT_SECONDS,
        check=False,
    )
    if done.returncode != 0:
        raise SchemaUnavailable(f"validate.mjs failed: {done.stderr.strip()[-2000:]}")
    results: list[dict[str, Any]] = json.loads(done.stdout)
    return results


def validate(objects: Sequence[Mapping[str, Any]]) -> list[list[str]]:
    """Schema errors of each Application (`<JSON pointer>: <message>`); empty when it is valid."""
    return [r["errors"] for r in _run({"objects": list(objects)})]


def trace(objects: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Errors, and for each object node the keys the package's validator read (what it declares)."""
    return _run({"objects": list(objects), "trace": True})


# --- Comparison with Argo CD's CRD ------------------------------------------------------------------

SERVER_SET = frozenset({"/apiVersion", "/kind"})
"""Optional in the CRD (the API server always sets them), required by the package: not a difference."""
PUF = "x-kubernetes-preserve-unknown-fields"
INT_OR_STRING = "x-kubernetes-int-or-string"


def crd_schema(crd: Mapping[str, Any], version: str = "v1alpha1") -> dict[str, Any]:
    """The `openAPIV3Schema` of one version of a CRD."""
    for v in crd["spec"]["versions"]:
        if v["name"] == version:
            schema: dict[str, Any] = v["schema"]["openAPIV3Schema"]
            return schema
    raise KeyError(version)


def _pointer(parent: str, key: str | int) -> str:
    return f"{parent}/{str(key).replace('~', '~0').replace('/', '~1')}"


def example(schema: Mapping[str, Any]) -> Any:
    """An instance with every property the schema declares, each of its declared type."""
    if schema.get(INT_OR_STRING):
        return 1
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        if "properties" in schema:
            return {k: example(v) for k, v in schema["properties"].items()}
        if isinstance(schema.get("additionalProperties"), Mapping):
            return {"key": example(schema["additionalProperties"])}
        return {"free": {"form": 1}} if schema.get(PUF) else {}
    if kind == "array":
        return [example(schema.get("items", {}))]
    if kind == "string":
        if "enum" in schema:
            return schema["enum"][0]
        return "2025-01-01T00:00:00Z" if schema.get("format") == "date-time" else "some/value"
    return {"integer": 1, "number": 1.5, "boolean": True}.get(str(kind), "x")


def _nodes(schema: Mapping[str, Any], pointer: str = "") -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Every (pointer, schema) of `example(schema)`, arrays at their single item."""
    yield pointer, schema
    for key, child in (schema.get("properties") or {}).items():
        yield from _nodes(child, _pointer(pointer, key))
    if schema.get("type") == "array" and "items" in schema:
        yield from _nodes(schema["items"], _pointer(pointer, 0))
    extra = schema.get("additionalProperties")
    if "properties" not in schema and isinstance(extra, Mapping):
        yield from _nodes(extra, _pointer(pointer, "key"))


def _wrong(schema: Mapping[str, Any]) -> Any:
    """A value of a JSON type the schema does not allow."""
    if schema.get(INT_OR_STRING):
        return True
    return {"string": 12, "integer": "x", "number": "x", "boolean": "x", "array": "x"}.get(
        str(schema.get("type")), "x"
    )


def compare_with_crd(crd: Mapping[str, Any]) -> list[str]:
    """Differences between the package's Application schema and the CRD's; empty when they agree.

    `metadata` is left out: the CRD declares it as a bare object and the API server validates it.
    """
    schema = copy.deepcopy(crd_schema(crd))
    schema["properties"].pop("metadata", None)
    base = example(schema)
    base.update(apiVersion="argoproj.io/v1alpha1", kind="Application", metadata={"name": "x"})
    problems: list[str] = []
    (result,) = trace([base])
    problems += [f"the CRD's example fails the package: {e}" for e in result["errors"]]
    seen: dict[str, Any] = result["nodes"]
    nodes = [(p, s) for p, s in _nodes(schema) if p]
    for pointer, node in [("", schema), *nodes]:
        read = seen.get(pointer)
        if read is None:
            continue
        declared = set(node.get("properties") or {})
        if declared:
            extra = sorted(set(read["read"]) - declared - ({"metadata"} if pointer == "" else set()))
            problems += [f"{pointer}/{k}: the package knows it, the CRD does not" for k in extra]
        elif node.get(PUF) and (read["read"] or read["listed"]):
            problems.append(f"{pointer}: free form in the CRD, declared fields in the package")
    checks: list[tuple[str, str]] = []
    mutations: list[dict[str, Any]] = []
    for pointer, node in nodes:
        if node.get("type") in ("string", "integer", "number", "boolean", "array") or node.get(INT_OR_STRING):
            checks.append(("type", pointer))
            mutations.append({"pointer": pointer, "value": _wrong(node)})
    for pointer, node in [("", schema), *nodes]:
        required = set(node.get("required") or ())
        for key in node.get("properties") or {}:
            checks.append(("required" if key in required else "optional", _pointer(pointer, key)))
            mutations.append({"pointer": _pointer(pointer, key), "delete": True})
    results = _run({"base": base, "mutations": mutations})
    for (what, pointer), result in zip(checks, results, strict=True):
        errors: list[str] = result["errors"]
        at = [e for e in errors if e.startswith(pointer + ":")]
        parent, _, key = pointer.rpartition("/")
        named = re.compile(rf"required property '?{re.escape(key)}'?$")
        missing = [e for e in errors if e.startswith((parent or "/") + ":") and named.search(e)]
        if what == "type" and not at:
            problems.append(f"{pointer}: a wrong type passes the package")
        elif what == "required" and not missing:
            problems.append(f"{pointer}: required by the CRD, optional in the package")
        elif what == "optional" and missing and pointer not in SERVER_SET:
            problems.append(f"{pointer}: optional in the CRD, required in the package")
    return problems
