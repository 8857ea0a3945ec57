"""Read a stack's Pulumi.<stack>.yaml into the flat string config the engine hands a program."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

PROJECT_DIR = Path(__file__).resolve().parents[1]


class StackFileError(Exception):
    """A stack file that is missing or not shaped like a Pulumi stack file."""


def stack_names(project_dir: Path = PROJECT_DIR) -> list[str]:
    """Every stack that has a `Pulumi.<stack>.yaml` in the project."""
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in project_dir.glob("Pulumi.*.yaml"))


def read_stack_config(stack: str, project_dir: Path = PROJECT_DIR) -> dict[str, Any]:
    """The `config:` block of a stack file, as decoded YAML values keyed `namespace:key`."""
    path = project_dir / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        known = ", ".join(stack_names(project_dir)) or "none"
        raise StackFileError(f"no stack file {path.name} in {project_dir} (stacks: {known})")
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    config = data.get("config", {}) if isinstance(data, dict) else None
    if not isinstance(config, dict):
        raise StackFileError(f"{path.name}: expected a 'config:' mapping")
    return dict(config)


def engine_config(values: dict[str, Any]) -> dict[str, str]:
    """Encode values as the CLI does for the language host: strings as is, the rest as JSON."""
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in values.items()}
