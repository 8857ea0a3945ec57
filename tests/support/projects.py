"""A Pulumi project of a test's own: the real program, with the test's stack config, Dockerfiles and chart."""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from model.stack_files import PROJECT_DIR

REGISTRY = "registry.example.com"
REPO_URL = "https://github.com/example-org/gitops-deploy.git"

REPLICAS_FROM_VALUES = "  replicas: {{ .Values.replicaCount }}\n"
"""The Deployment's `spec.replicas` as the values contract has it (the program sets `replicaCount`)."""


def deployment_template(replicas: str = REPLICAS_FROM_VALUES) -> str:
    """The tiny chart's Deployment; `replicas` is the template text that stands for `spec.replicas`."""
    return (
        """apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
spec:
"""
        + replicas
        + """  selector:
    matchLabels: {app: {{ .Release.Name }}}
  template:
    metadata:
      labels: {app: {{ .Release.Name }}}
    spec:
      imagePullSecrets: {{ toJson .Values.imagePullSecrets }}
      containers:
        - name: app
          image: "{{ .Values.image.repository }}@{{ .Values.image.digest }}"
          resources:
            requests: {cpu: 10m, memory: 16Mi}
            limits: {memory: 32Mi}
"""
    )


# A minimal chart that honours the values contract (image.repository + image.digest, replicaCount,
# imagePullSecrets), so the pack's workload policies have something to judge.
CHART_FILES = {
    "Chart.yaml": "apiVersion: v2\nname: tiny\nversion: 0.1.0\n",
    "values.yaml": "replicaCount: 1\nimage: {repository: x, tag: '', digest: ''}\nimagePullSecrets: []\n",
    "templates/deployment.yaml": deployment_template(),
}


def make_project(directory: Path) -> Path:
    """A project directory holding the real `__main__.py` and `Pulumi.yaml`, and nothing else yet."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("__main__.py", "Pulumi.yaml"):
        shutil.copy(PROJECT_DIR / name, directory / name)
    return directory


def write_chart(project: Path, path: str = "chart", *, files: Mapping[str, str] | None = None) -> str:
    """The tiny chart at `project/path`, with `files` (relative name -> text) added to or replacing its
    own; returns `path` for an app's `source.path`."""
    for name, text in {**CHART_FILES, **(files or {})}.items():
        target = project / path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return path


def app(
    name: str,
    context: str,
    *,
    replicas: int = 3,
    pin: str | None = None,
    chart: str = "chart",
    build_args: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """One app's config: built from `context` (relative to the project) and deployed by the chart."""
    image: dict[str, Any] = {"repository": f"{REGISTRY}/team/{name}", "context": context}
    if pin is not None:
        image["pin"] = pin
    if build_args:
        image["buildArgs"] = dict(build_args)
    return {
        "name": name,
        "namespace": f"{name}-test",
        "replicas": replicas,
        "image": image,
        "source": {"repoURL": REPO_URL, "targetRevision": "main", "path": chart, "type": "helm"},
        "health": {"url": f"https://{name}.example.com/healthz"},
    }


def stack_config(apps: Sequence[Mapping[str, Any]], *, on_preview: bool = True) -> dict[str, Any]:
    """A stack's config (`gitops-deploy:*` keys) holding `apps`."""
    return {
        "gitops-deploy:registry": {"server": REGISTRY, "username": "ci"},
        "gitops-deploy:argocd": {"namespace": "argocd", "project": "default", "repoURL": REPO_URL},
        "gitops-deploy:build": {"onPreview": on_preview},
        "gitops-deploy:apps": [dict(a) for a in apps],
    }


def write_stack(project: Path, stack: str, config: Mapping[str, Any]) -> Path:
    """`Pulumi.<stack>.yaml` with that config."""
    path = project / f"Pulumi.{stack}.yaml"
    path.write_text(yaml.safe_dump({"config": dict(config)}, sort_keys=False))
    return path


def write_policy_config(path: Path, *, max_bytes: int | None = None, min_replicas: int = 1) -> Path:
    """A `--policy-pack-config` file of the test's own."""
    config: dict[str, Any] = {"minimum-replicas": {"minReplicas": min_replicas}}
    if max_bytes is not None:
        config["image-size-limit"] = {"maxBytes": max_bytes}
        config["image-size-registry"] = {"maxBytes": max_bytes}
    path.write_text(json.dumps(config))
    return path
