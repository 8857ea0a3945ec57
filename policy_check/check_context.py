"""What the check knows about its input, for findings that name real keys, files and lines."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from model.config import app_key
from model.names import APP_RELEASE_TYPE, APPLICATION_TYPE, PROJECT
from model.stack_files import key_line
from policy_check.analyzer_client import PolicyInput
from policy_check.findings import AppInfo, Context, KeyPath, ResourceInfo
from policy_check.render_common import RenderResult

APPS_KEY = f"{PROJECT}:apps"


def app_infos(values: Mapping[str, Any]) -> dict[str, AppInfo]:
    """Each app of a stack config (the raw `gitops-deploy:*` values), by name, in config order."""
    apps = values.get(APPS_KEY)
    found: dict[str, AppInfo] = {}
    for index, app in enumerate(apps if isinstance(apps, list) else []):
        if not isinstance(app, Mapping) or not isinstance(app.get("name"), str):
            continue
        image: Mapping[str, Any] = app["image"] if isinstance(app.get("image"), Mapping) else {}
        source: Mapping[str, Any] = app["source"] if isinstance(app.get("source"), Mapping) else {}
        dockerfile = None
        if isinstance(image.get("context"), str) and not image.get("pin"):
            dockerfile = str(image.get("dockerfile") or f"{image['context'].rstrip('/')}/Dockerfile")
        found.setdefault(
            app["name"],
            AppInfo(
                index=index,
                name=app["name"],
                key=f"{PROJECT}:{app_key(index, app)}",
                replicas=app.get("replicas", 3),
                source_type=source.get("type") if isinstance(source.get("type"), str) else None,
                source_path=source.get("path") if isinstance(source.get("path"), str) else None,
                dockerfile=None if f"{PROJECT}:promote" in values else dockerfile,
            ),
        )
    return found


def source_keys(apps: Mapping[str, AppInfo]) -> dict[str, str]:
    """App name -> its `source` key, which render errors name."""
    return {name: f"{info.key}.source" for name, info in apps.items()}


def label(type_: str, props: Any, name: str) -> str:
    """`Kind 'namespace/name'`, as the pack's messages name a resource."""
    kind = type_.rsplit(":", 1)[-1] or type_
    metadata = props.get("metadata") if isinstance(props, Mapping) else None
    shown, namespace = name, None
    if isinstance(metadata, Mapping):
        if isinstance(metadata.get("name"), str) and metadata["name"]:
            shown = metadata["name"]
        if isinstance(metadata.get("namespace"), str) and metadata["namespace"]:
            namespace = metadata["namespace"]
    return f"{kind} '{namespace}/{shown}'" if namespace else f"{kind} '{shown}'"


def resource_infos(
    whole: Sequence[PolicyInput], renders: Sequence[RenderResult] = ()
) -> dict[str, ResourceInfo]:
    """Every judged resource by URN, with its app (its AppRelease ancestor) and, when rendered, its file."""
    by_urn = {r.urn: r for r in whole}
    templates = {o.urn: o.template for r in renders for o in r.objects}
    infos = {}
    for r in whole:
        infos[r.urn] = ResourceInfo(
            type=r.type,
            label=label(r.type, r.props, r.name),
            app=_app_of(r, by_urn),
            file=templates.get(r.urn),
            props=r.props,
            rendered=r.urn in templates or (r.parent in by_urn and by_urn[r.parent].type == APPLICATION_TYPE),
        )
    return infos


def _app_of(resource: PolicyInput, by_urn: Mapping[str, PolicyInput]) -> str | None:
    current: PolicyInput | None = resource
    seen = set()
    while current is not None and current.urn not in seen:
        if current.type == APP_RELEASE_TYPE:
            return current.name
        seen.add(current.urn)
        current = by_urn.get(current.parent)
    return None


def context(
    *,
    whole: Sequence[PolicyInput],
    renders: Sequence[RenderResult],
    thresholds: Mapping[str, Mapping[str, Any]],
    values: Mapping[str, Any] | None = None,
    stack_file: Path | None = None,
    policy_file: Path | None = None,
    project_dir: Path | None = None,
) -> Context:
    """The findings' context; `stack_file` and `policy_file` are shown relative to `project_dir`."""
    text = stack_file.read_text(encoding="utf-8") if stack_file and stack_file.is_file() else None

    def line_of(path: KeyPath) -> int | None:
        return key_line(text, path) if text is not None else None

    return Context(
        stack_file=shown(stack_file, project_dir) if stack_file else None,
        policy_file=shown(policy_file, project_dir) if policy_file else None,
        apps=app_infos(values or {}),
        resources=resource_infos(whole, renders),
        thresholds=thresholds,
        line_of=line_of,
    )


def shown(path: Path, project_dir: Path | None) -> str:
    """`path` relative to the project when it lies inside it (as a repository path), else as given."""
    if project_dir is not None:
        try:
            return path.resolve().relative_to(project_dir.resolve()).as_posix()
        except ValueError:
            pass
    return str(path)
