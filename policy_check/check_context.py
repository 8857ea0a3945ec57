"""What the check knows about its input, for findings that name real keys, files and lines."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from model.config import StackConfig, app_key, parse_config
from model.files import read_text
from model.names import APP_RELEASE_TYPE, APPLICATION_TYPE, PROJECT
from model.stack_files import MAX_BYTES, compose, key_line
from policy_check.analyzer_client import PolicyInput
from policy_check.findings import AppInfo, Context, KeyPath, ResourceInfo
from policy_check.render_common import RenderResult, object_label, relative


def stack_config(values: Mapping[str, Any], project_dir: Path, stack: str) -> StackConfig:
    """A stack file's `config:` values (`gitops-deploy:*` keys) read through the program's model."""
    prefix = f"{PROJECT}:"
    raw = {k.removeprefix(prefix): v for k, v in values.items() if k.startswith(prefix)}
    return parse_config(raw, project_dir, stack=stack)


def app_infos(config: StackConfig | None) -> dict[str, AppInfo]:
    """Each app of the stack, by name, in config order."""
    if config is None:
        return {}
    built = {app.name for app in config.built_apps}
    return {
        app.name: AppInfo(
            index=app.index,
            name=app.name,
            key=f"{PROJECT}:{app_key(app.index, {'name': app.name})}",
            replicas=app.replicas,
            source_type=app.source.type,
            source_path=app.source.path,
            dockerfile=relative(app.image.dockerfile, config.project_dir) if app.name in built else None,
        )
        for app in config.apps
    }


def source_keys(apps: Mapping[str, AppInfo]) -> dict[str, str]:
    """App name -> its `source` key, which render errors name."""
    return {name: f"{info.key}.source" for name, info in apps.items()}


def label(type_: str, props: Any, name: str) -> str:
    """`Kind 'namespace/name'`, as the pack's messages name a resource."""
    metadata = props.get("metadata") if isinstance(props, Mapping) else None
    metadata = metadata if isinstance(metadata, Mapping) else {}
    shown, namespace = metadata.get("name"), metadata.get("namespace")
    return object_label(
        type_.rsplit(":", 1)[-1] or type_,
        namespace if isinstance(namespace, str) and namespace else None,
        shown if isinstance(shown, str) and shown else name,
    )


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
            app=app_of(r, by_urn),
            file=templates.get(r.urn),
            props=r.props,
            rendered=r.urn in templates or (r.parent in by_urn and by_urn[r.parent].type == APPLICATION_TYPE),
        )
    return infos


class _Registered(Protocol):
    @property
    def urn(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def parent(self) -> str: ...


def app_of(resource: _Registered, by_urn: Mapping[str, _Registered]) -> str | None:
    """The app a registered resource belongs to: the name of its AppRelease ancestor."""
    current: _Registered | None = resource
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
    config: StackConfig | None = None,
    stack_file: Path | None = None,
    policy_file: Path | None = None,
    project_dir: Path | None = None,
) -> Context:
    """The findings' context; `stack_file` and `policy_file` are shown relative to `project_dir`."""
    tree = compose(read_text(stack_file, MAX_BYTES)) if stack_file and stack_file.is_file() else None

    def line_of(path: KeyPath) -> int | None:
        return key_line(tree, path)

    return Context(
        stack_file=relative(stack_file, project_dir) if stack_file else None,
        policy_file=relative(policy_file, project_dir) if policy_file else None,
        apps=app_infos(config),
        resources=resource_infos(whole, renders),
        thresholds=thresholds,
        line_of=line_of,
    )
