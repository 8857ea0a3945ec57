"""A project of the test's own: the real program, a tiny app, a stack file written by the test.

Tests that need a stack never read the shipped stack files (users edit, add and remove those).
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

from model.stack_files import PROJECT_DIR
from policy_check.check import main as check_main

REGISTRY = "registry.example.com"
APP: dict[str, Any] = {
    "name": "web",
    "namespace": "web-test",
    "replicas": 3,
    "image": {"repository": f"{REGISTRY}/team/web", "context": "app"},
    "source": {
        "repoURL": "https://github.com/example-org/gitops-deploy.git",
        "targetRevision": "main",
        "path": "app/chart",
        "type": "helm",
    },
    "health": {"url": "https://web.test.example.com/healthz"},
}


BASE_STACK_YAML = f"""\
config:
  gitops-deploy:registry:
    server: {REGISTRY}
    username: ci
  gitops-deploy:apps:
    - name: web
      namespace: web-test
      replicas: 3
      image:
        repository: {REGISTRY}/team/web
        context: app
      source:
        repoURL: https://github.com/example-org/gitops-deploy.git
        targetRevision: main
        path: app/chart
        type: helm
      health:
        url: https://web.test.example.com/healthz
"""
"""`base_config()` as a user writes it in a stack file (YAML text; the apps list comes last)."""


def base_config() -> dict[str, Any]:
    """A valid stack config (namespaced keys, decoded values) with one app."""
    return {
        "gitops-deploy:registry": {"server": REGISTRY, "username": "ci"},
        "gitops-deploy:apps": [copy.deepcopy(APP)],
    }


def make_project(root: Path) -> Path:
    """`root` as a project: the real `__main__.py` and an app folder with a Dockerfile."""
    shutil.copy(PROJECT_DIR / "__main__.py", root / "__main__.py")
    (root / "app").mkdir(exist_ok=True)
    (root / "app" / "Dockerfile").write_text('FROM scratch\nCOPY app.txt /app.txt\nCMD ["/app"]\n')
    (root / "app" / "app.txt").write_text("app\n")
    return root


def write_stack(root: Path, stack: str, config: dict[str, Any] | str) -> Path:
    """Write `Pulumi.<stack>.yaml`: YAML text as given, or a config dict under `config:` (as JSON)."""
    path = root / f"Pulumi.{stack}.yaml"
    text = config if isinstance(config, str) else json.dumps({"config": config}, indent=2)
    path.write_text(text, encoding="utf-8")
    return path


def empty_policy_config(root: Path) -> Path:
    """A policy config that keeps every default, for checks that must not depend on policies/config.*."""
    path = root / "policy-config.json"
    path.write_text("{}\n")
    return path


def check_stack(root: Path, stack: str) -> int:
    """Run the offline check (`python -m policy_check`) on a stack of `root`, unrendered, with a policy
    config that keeps every default; return its exit code (its output is left to capsys)."""
    policy = empty_policy_config(root)
    return check_main(
        ["--stack", stack, "--no-render", "--project-dir", str(root), "--policy-config", str(policy)]
    )
