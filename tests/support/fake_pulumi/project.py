"""A project of a test's own for `python -m deploy`: Pulumi.yaml, a stack, its policy config, contexts."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

from model.content_tag import content_tag

REPO = Path(__file__).resolve().parents[3]
STACK = "prod"
OLD = {
    "web": "registry.example.com/platform/web@sha256:" + "1" * 64,
    "api": "registry.example.com/platform/api@sha256:" + "2" * 64,
}
"""The digests that passed their gate last time (the stack's `apps` output)."""
NEW_WEB = "registry.example.com/platform/web@sha256:" + "3" * 64
"""What the recorded streams push for web."""
OUTPUTS: dict[str, Any] = {
    "apps": {app: {"imageDigest": digest, "application": app} for app, digest in OLD.items()}
}


def _app(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": "apps",
        "image": {"repository": f"registry.example.com/platform/{name}", "context": f"apps/{name}"},
        "source": {
            "repoURL": "https://git.example.com/platform/deploy.git",
            "targetRevision": "main",
            "path": f"charts/{name}",
            "type": "helm",
        },
        "health": {"url": f"https://{name}.example.com/healthz"},
    }


CONFIG: dict[str, Any] = {
    "gitops-deploy:registry": {"server": "registry.example.com", "username": "ci"},
    "gitops-deploy:registryPassword": {"secure": "v1:c2VjcmV0"},
    "gitops-deploy:apps": [_app("web"), _app("api")],
    # No soak after `up` (it would probe these hosts for 5 minutes): tests/deploy/test_deploy_soak.py soaks.
    "gitops-deploy:deploy": {"soak": {"seconds": 0}},
}
"""The prod stack's config, as the test writes it."""


def deploy_key(**settings: object) -> dict[str, object]:
    """`gitops-deploy:deploy` with these settings, over CONFIG's (its soak stays off unless given)."""
    return {**CONFIG["gitops-deploy:deploy"], **settings}


def apps_output(web: str, api: str) -> dict[str, Any]:
    """The stack's outputs once an `up` left web and api at these image digests."""
    return {"apps": {"web": {"imageDigest": web}, "api": {"imageDigest": api}}}


def make_project(root: Path) -> Path:
    """Write the project under `root` and return it."""
    root.mkdir(parents=True)
    shutil.copy(REPO / "Pulumi.yaml", root)
    (root / "policies").mkdir()
    (root / "policies" / "config.prod.json").write_text("{}\n")
    for app in ("web", "api"):
        context = root / "apps" / app
        context.mkdir(parents=True)
        (context / "Dockerfile").write_text(f"FROM scratch\nCOPY {app}.txt /\n")
        (context / f"{app}.txt").write_text(f"{app} v1\n")
    write_config(root, CONFIG)
    return root


def write_config(project: Path, config: dict[str, Any]) -> None:
    """Replace the prod stack file's config."""
    (project / f"Pulumi.{STACK}.yaml").write_text(yaml.safe_dump({"config": config}, sort_keys=False))


def tag(project: Path, app: str) -> str:
    """The content tag the program gives the app's image (model/content_tag.py)."""
    context = project / "apps" / app
    return content_tag(context, context / "Dockerfile", "linux/amd64", {}, root=project)
