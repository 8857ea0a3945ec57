"""Write the config reference from the schema: Pulumi.yaml's config docs and docs/config.md.

`python -m model.config_docs` rewrites both; tests/model/test_config_docs.py fails when either drifts.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import yaml

from model.config_key import Key
from model.config_schema import KEYS, NAMESPACE
from model.text import md_code, md_table, md_text

ROOT = Path(__file__).resolve().parents[1]
PULUMI_YAML, CONFIG_MD = ROOT / "Pulumi.yaml", ROOT / "docs" / "config.md"
MARKER = "# Every configuration key of the project"
TEMPLATE_DESCRIPTION = "Deploy containerized apps through Argo CD with preflight checks and policy gates."
_HEADER = f"""{MARKER}, generated from model/config_schema.py by
# `python -m model.config_docs`. Pulumi's typed `config:` block knows only string, integer, boolean
# and array, and a key it declares without a default is required by the CLI; these keys are objects,
# mostly optional, so they are listed here and under `template.config` (which `pulumi new` shows).
"""


def _type(key: Key) -> str:
    """`integer 30-7200`, `helm|kustomize`, `list of strings`: the key's type as a reader writes it."""
    if key.choices:
        return "|".join(key.choices)
    if key.kind == "integer":
        return f"integer {key.low:g}-{key.high:g}"
    if key.kind == "array":
        return "list of objects" if key.items is not None and key.items.keys else "list of strings"
    if key.values is not None:
        return "object of strings"
    return key.kind or "object"


def _status(key: Key) -> str:
    if key.required:
        return "required"
    if key.default is None:
        return "optional"
    return f"default {json.dumps(key.default)}"


def _walk(keys: dict[str, Key] | None, prefix: str, depth: int) -> Iterator[tuple[str, int, Key]]:
    for name, key in (keys or {}).items():
        yield f"{prefix}{name}", depth, key
        children = key.items.keys if key.items is not None else key.keys
        yield from _walk(dict(children or {}), f"{prefix}{name}{'[]' if key.items else ''}.", depth + 1)


def _entries() -> Iterator[tuple[str, int, Key]]:
    return _walk(KEYS, f"{NAMESPACE}:", 0)


def pulumi_yaml(current: str) -> str:
    """Pulumi.yaml with its config reference and `template.config` generated from the schema."""
    head = current.split(MARKER, 1)[0]
    lines = []
    for path, depth, key in _entries():
        name = path if depth == 0 else path.rsplit(".", 1)[1]
        secret = ", secret" if key.secret else ""
        lines.append(f"#{'  ' * depth} {name} ({_type(key)}, {_status(key)}{secret}): {key.doc}")
    template = {
        "description": TEMPLATE_DESCRIPTION,
        "config": {
            f"{NAMESPACE}:{name}": {"description": key.doc, **({"secret": True} if key.secret else {})}
            for name, key in KEYS.items()
        },
    }
    body = yaml.safe_dump({"template": template}, sort_keys=False, width=110, allow_unicode=True)
    return head + _HEADER + "\n".join(lines) + "\n" + body


def config_md() -> str:
    """docs/config.md: every key, its type, default and doc, in one table."""
    rows = [
        [md_code(path), md_text(_type(key)), md_text(_status(key)), md_text(key.doc)]
        for path, _, key in _entries()
    ]
    table = md_table(["Key", "Type", "Default", "Description"], rows, align="<<<<")
    intro = [
        "# Configuration reference",
        "",
        "Every stack key, generated from `model/config_schema.py` by `python -m model.config_docs`. A bad",
        "value stops `pulumi preview`, `pulumi up`, `python -m deploy` and `python -m policy_check` with one",
        "error that names the key, what was given and what is expected.",
        "",
    ]
    return "\n".join([*intro, *table]) + "\n"


def main() -> int:
    """Rewrite both files; exit 1 when `--check` finds either out of date."""
    wanted = {PULUMI_YAML: pulumi_yaml(PULUMI_YAML.read_text(encoding="utf-8")), CONFIG_MD: config_md()}
    stale = [p for p, text in wanted.items() if not p.is_file() or p.read_text(encoding="utf-8") != text]
    if "--check" in sys.argv[1:]:
        for path in stale:
            print(
                f"{path.relative_to(ROOT)} is out of date: run python -m model.config_docs", file=sys.stderr
            )
        return 1 if stale else 0
    for path in stale:
        path.write_text(wanted[path], encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
