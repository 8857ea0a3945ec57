"""Read the stack's configuration once, validate all of it, and return frozen typed objects."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import config as runtime_config

from model.budget import budget_problems
from model.config_reader import ConfigError, Reader
from model.config_rules import (
    HEADERS_KEY,
    PASSWORD_KEY,
    Values,
    app_rules,
    registry_server,
    secret_header_problems,
    stack_rules,
)
from model.config_schema import (
    DEFAULT_BUDGET_SECONDS,
    DEFAULT_DEGRADED_GRACE_SECONDS,
    DEFAULT_SYNC_TIMEOUT_SECONDS,
    IN_CLUSTER_SERVER,
    KEYS,
    NAMESPACE,
    REPO_PATH,
    app_key,
    schema_problems,
)
from model.config_types import (
    AppConfig,
    ArgoCDConfig,
    BuildConfig,
    ClusterConfig,
    DeployConfig,
    HealthConfig,
    ImageConfig,
    PromoteConfig,
    RegistryConfig,
    SourceConfig,
    StackConfig,
    StackSecrets,
)
from model.failed_releases import FailedReleaseRecord
from model.health_settings import SETTINGS

__all__ = [
    "DEFAULT_BUDGET_SECONDS",
    "DEFAULT_DEGRADED_GRACE_SECONDS",
    "DEFAULT_SYNC_TIMEOUT_SECONDS",
    "IN_CLUSTER_SERVER",
    "NAMESPACE",
    "REPO_PATH",
    "SECRET_KEYS",
    "TOP_LEVEL_KEYS",
    "AppConfig",
    "ArgoCDConfig",
    "BuildConfig",
    "ClusterConfig",
    "ConfigError",
    "DeployConfig",
    "HealthConfig",
    "ImageConfig",
    "PromoteConfig",
    "RegistryConfig",
    "SourceConfig",
    "StackConfig",
    "StackSecrets",
    "app_key",
    "configured_keys",
    "load_config",
    "parse_config",
    "read_deploy",
    "unknown_key_problems",
]

TOP_LEVEL_KEYS = tuple(k for k, key in KEYS.items() if not key.secret)
SECRET_KEYS = (PASSWORD_KEY, HEADERS_KEY)
"""Keys read as secrets; with TOP_LEVEL_KEYS, every `gitops-deploy:*` key the program knows."""
_PLAIN_STRING_KEYS = ("rollbackId",)
"""Keys whose value is a bare string (as `pulumi config set` stores it), not JSON/YAML."""
_TYPED_WHEN_NOT_JSON = ("promote",)
"""Keys whose bare-string value (`promote: dev`) goes to the schema, which says what is expected."""


def parse_config(raw: Mapping[str, Any], project_dir: Path, *, stack: str | None = None) -> StackConfig:
    """Validate raw config values (key -> decoded JSON) and build the typed config, or raise ConfigError.

    `stack` is the stack being deployed, so that a stack promoting from itself is caught.
    """
    values = _unset(raw)
    r = Reader(NAMESPACE)
    problems, failed = schema_problems(values)
    for problem in problems:
        r.add(problem)
    v = Values(values, failed)
    server = registry_server(r, v)
    stack_rules(r, v, stack)
    app_rules(r, v, server, project_dir)
    record, record_problems = FailedReleaseRecord.from_json(v.get("failedReleases"))
    for p in record_problems:
        r.problem(f"failedReleases{p.path}", p.given, p.expected)
    r.raise_if_problems()
    config = _stack(v, project_dir, record if "failedReleases" in values else None)
    for key, given, expected in budget_problems(config):
        r.problem(key, given, expected)
    r.raise_if_problems()
    return config


def read_deploy(value: Any) -> DeployConfig:
    """`gitops-deploy:deploy` alone: `python -m deploy` knows its budget even when another key is broken."""
    values = _unset({"deploy": value})
    problems, failed = schema_problems(values, only=("deploy",))
    r = Reader(NAMESPACE)
    for problem in problems:
        r.add(problem)
    r.raise_if_problems()
    return _deploy(Values(values, failed))


def _unset(value: Any) -> Any:
    """The values without their nulls: a key set to null is a key left unset."""
    if isinstance(value, Mapping):
        return {k: _unset(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_unset(v) for v in value]
    return value


def _stack(v: Values, project_dir: Path, record: FailedReleaseRecord | None) -> StackConfig:
    declared = v.raw.get("cluster") is not None
    cluster_name = v.get("cluster", "name")
    return StackConfig(
        project_dir=project_dir,
        registry=RegistryConfig(
            server=v.get("registry", "server"),
            username=v.get("registry", "username"),
            insecure=v.get("registry", "insecure"),
        ),
        argocd=ArgoCDConfig(
            namespace=v.get("argocd", "namespace"),
            project=v.get("argocd", "project"),
            context=v.get("argocd", "context"),
            manage_project=v.get("argocd", "manageProject"),
            sync_timeout_seconds=int(v.get("argocd", "syncTimeoutSeconds")),
            retry_refresh=v.get("argocd", "retryRefresh"),
        ),
        cluster=ClusterConfig(
            name=cluster_name,
            server=v.get("cluster", "server") if cluster_name is None else None,
            context=v.get("cluster", "context"),
        )
        if declared
        else ClusterConfig(),
        build=BuildConfig(
            lint_threshold=v.get("build", "lintThreshold"),
            ignore=tuple(v.get("build", "ignore") or ()),
            trusted_registries=tuple(v.get("build", "trustedRegistries") or ()),
            on_preview=v.get("build", "onPreview"),
        ),
        apps=tuple(_app(v, i, project_dir) for i in range(len(v.get("apps")))),
        cluster_declared=declared,
        promote=PromoteConfig(v.get("promote", "from")) if "promote" in v.raw else None,
        rollback_id=v.get("rollbackId"),
        failed_releases=record,
        allow_failed_releases=tuple(dict.fromkeys(v.get("allowFailedReleases") or ())),
        deploy=_deploy(v),
    )


def _deploy(v: Values) -> DeployConfig:
    wait = v.get("deploy", "operationWaitSeconds")
    return DeployConfig(
        budget_seconds=int(v.get("deploy", "budgetSeconds")),
        degraded_grace_seconds=int(v.get("deploy", "degradedGraceSeconds")),
        operation_wait_seconds=None if wait is None else int(wait),
    )


def _app(v: Values, i: int, project_dir: Path) -> AppConfig:
    def get(*path: str) -> Any:
        return v.get("apps", i, *path)

    context = (project_dir / get("image", "context")).resolve()
    dockerfile = get("image", "dockerfile")
    image = ImageConfig(
        repository=get("image", "repository"),
        context=context,
        dockerfile=(project_dir / dockerfile).resolve() if dockerfile else context / "Dockerfile",
        platform=get("image", "platform"),
        build_args=dict(get("image", "buildArgs") or {}),
        pin=get("image", "pin"),
    )
    cast = {"whole": int, "positive": float}
    health = {
        s.name: cast.get(s.metadata["limit"].kind, lambda x: x)(get("health", s.metadata["limit"].key))
        for s in SETTINGS
    }
    return AppConfig(
        index=i,
        name=get("name"),
        namespace=get("namespace"),
        replicas=int(get("replicas")),
        image=image,
        source=SourceConfig(
            repo_url=get("source", "repoURL"),
            target_revision=get("source", "targetRevision"),
            path=get("source", "path"),
            type=get("source", "type"),
            image_name=get("source", "imageName") or image.repository,
            workload=get("source", "workload") or get("name"),
        ),
        health=HealthConfig(**health, headers=dict(get("health", "headers") or {})),
    )


def configured_keys() -> set[str]:
    """Every `gitops-deploy:*` key the stack sets, without the namespace.

    The language host hands config over in PULUMI_CONFIG; an inline program or the SDK's mocks set it
    with `set_all_config`. `pulumi.Config` reads from both, so both are listed.
    """
    keys = set(runtime_config.CONFIG.get()) | set(runtime_config.get_config_env())
    prefix = f"{NAMESPACE}:"
    return {k[len(prefix) :] for k in keys if k.startswith(prefix)}


def unknown_key_problems(keys: set[str]) -> list[str]:
    """One problem per key the program does not read (a typo would otherwise be ignored silently)."""
    known = (*TOP_LEVEL_KEYS, *SECRET_KEYS)
    by_lower = {k.lower(): k for k in known}
    expected = ", ".join(f"{NAMESPACE}:{k}" for k in known)
    problems = []
    for key in sorted(set(keys) - set(known)):
        close = difflib.get_close_matches(key.lower(), list(by_lower), n=1, cutoff=0.6)
        hint = f"; did you mean {NAMESPACE}:{by_lower[close[0]]}?" if close else ""
        problems.append(f"{NAMESPACE}:{key}: an unknown key; expected one of {expected}{hint}")
    return problems


def load_config(project_dir: Path) -> tuple[StackConfig, StackSecrets]:
    """Read every key of the stack once from `pulumi.Config` and validate it."""
    cfg = pulumi.Config(NAMESPACE)
    raw: dict[str, Any] = {}
    problems: list[str] = unknown_key_problems(configured_keys())
    for key in TOP_LEVEL_KEYS:
        try:
            raw[key] = cfg.get(key) if key in _PLAIN_STRING_KEYS else cfg.get_object(key)
        except pulumi.ConfigTypeError as err:
            if key in _TYPED_WHEN_NOT_JSON:
                raw[key] = cfg.get(key)
            else:
                problems.append(f"{NAMESPACE}:{key}: got a value that is not valid JSON/YAML ({err})")
    password = cfg.get_secret(PASSWORD_KEY)
    try:
        # Read as a plain value only to validate it before anything is registered; it is wrapped as a
        # secret Output below, and no message ever shows a value of it.
        headers_raw = cfg.get_object(HEADERS_KEY)
    except pulumi.ConfigTypeError:
        headers_raw = None
        problems.append(f"{NAMESPACE}:{HEADERS_KEY}: got a value that is not an object")
    if password is None:
        problems.append(
            f"{NAMESPACE}:{PASSWORD_KEY}: missing; expected a secret, set with "
            f"`pulumi config set --secret {NAMESPACE}:{PASSWORD_KEY}`"
        )
    if problems:
        raise ConfigError(problems)
    stack = parse_config(raw, project_dir, stack=pulumi.get_stack())
    header_problems = secret_header_problems([app.name for app in stack.apps], headers_raw)
    if header_problems:
        raise ConfigError(header_problems)
    headers = {
        app.name: pulumi.Output.secret({**app.health.headers, **((headers_raw or {}).get(app.name) or {})})
        for app in stack.apps
    }
    assert password is not None
    return stack, StackSecrets(registry_password=password, health_headers=headers)
