"""A project of the tests' own holding the example stacks: the real program and examples, with stack
files and policy configs from tests/fixtures/stacks.

The project's own `Pulumi.<stack>.yaml` and `policies/config.<stack>.json` belong to the user: `make up`
writes an encrypted password into them, and users add, rename and remove stacks. So no test reads
them (except the checks that must hold for whatever stacks a user has: tests/components/test_user_stacks.py).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from model.stack_files import PROJECT_DIR

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "stacks"
STACKS = ("dev", "staging", "prod")
"""The example stacks in tests/fixtures/stacks, in promotion order."""
OVERLAY = "examples/app/kustomize"
"""The example's kustomize overlay, which serves any app name."""


def make_example_project(root: Path) -> Path:
    """`root` as a project: the real `__main__.py`, `Pulumi.yaml` and `examples/`, the fixture stacks."""
    root.mkdir(parents=True, exist_ok=True)
    for name in ("__main__.py", "Pulumi.yaml"):
        shutil.copy(PROJECT_DIR / name, root / name)
    shutil.copytree(PROJECT_DIR / "examples", root / "examples", dirs_exist_ok=True)
    (root / "policies").mkdir(exist_ok=True)
    for stack in STACKS:
        shutil.copy(FIXTURES / f"Pulumi.{stack}.yaml", root / f"Pulumi.{stack}.yaml")
        shutil.copy(
            FIXTURES / "policies" / f"config.{stack}.json", root / "policies" / f"config.{stack}.json"
        )
    return root


def overlay_app(name: str, namespace: str) -> dict[str, Any]:
    """An app of the staging example deployed from the shared overlay, as the README says to set it."""
    return {
        "name": name,
        "namespace": namespace,
        "replicas": 3,
        "image": {"repository": f"registry.example.com/platform/{name}", "context": "examples/app"},
        "source": {
            "repoURL": "https://github.com/example-org/gitops-deploy.git",
            "targetRevision": "main",
            "path": OVERLAY,
            "type": "kustomize",
            "imageName": "app",
            "workload": "app",
        },
        "health": {"url": f"https://{name}.staging.example.com/healthz"},
    }


def policy_config(project: Path, stack: str) -> Path:
    """The project's `policies/config.<stack>.json`."""
    return project / "policies" / f"config.{stack}.json"


COPY_IGNORED = shutil.ignore_patterns(
    ".git",
    ".venv",
    "__pycache__",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    ".pulumi-state",
    "node_modules",
)


def copy_project(root: Path) -> Path:
    """The whole project (code, tests, workflows, the user's own stack files) copied to `root`, with the
    shared virtualenv and Argo CD's schema package linked, as a user's checkout would be."""
    shutil.copytree(PROJECT_DIR, root, ignore=COPY_IGNORED)
    (root / ".venv").symlink_to((PROJECT_DIR / ".venv").resolve())
    modules = PROJECT_DIR / "tests/schemas/node_modules"
    if modules.is_dir():
        (root / "tests/schemas/node_modules").symlink_to(modules.resolve())
    return root
