"""Read the stack's configuration once, validate all of it, and return frozen typed objects."""

from __future__ import annotations

import dataclasses
import difflib
import functools
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar, cast

import pulumi
from pulumi.runtime import config as runtime_config

from model.budget import budget_problems
from model.config_reader import ConfigError, Reader, app_key, schema_problems
from model.config_rules import (
    HEADERS_KEY,
    PASSWORD_KEY,
    Values,
    app_rules,
    registry_server,
    secret_header_problems,
    soaked_rules,
    stack_rules,
)
from model.config_schema import (  # noqa: F401  (the config's public names, imported from here)
    DEFAULT_BUDGET_SECONDS,
    DEFAULT_DEGRADED_GRACE_SECONDS,
    DEFAULT_SYNC_TIMEOUT_SECONDS,
    IN_CLUSTER_SERVER,
    NAMESPACE,
    NOTIFY_KEY,
    REPO_PATH,
    SECRET_KEYS,
    SOAKED_KEY,
    TOP_LEVEL_KEYS,
    key_at,
)
from model.config_types import (
    AppConfig,
    ArgoCDConfig,
    BuildConfig,
    ClusterConfig,
    DeployConfig,
    HealthConfig,
    ImageConfig,
    NotifyConfig,
    PromoteConfig,
    RegistryConfig,
    SmokeConfig,
    SoakConfig,
    SourceConfig,
    StackConfig,
    StackSecrets,
)
from model.failed_releases import FailedReleaseRecord

T = TypeVar("T")
_PLAIN_STRING_KEYS = ("rollbackId",)
"""Keys whose value is a bare string (as `pulumi config set` stores it), not JSON/YAML."""
_TYPED_WHEN_NOT_JSON = ("promote",)
"""Keys whose bare-string value (`promote: dev`) goes to the schema, which says what is expected."""


def parse_config(raw: Mapping[str, Any], project_dir: Path, *, stack: str | None = None) -> StackConfig:
    """Validate raw config values (key -> decoded JSON) and build the typed config, or raise ConfigError.

    `stack` is the stack being deployed, so that a stack promoting from itself is caught.
    """
    values = _smoke_off(_unset(raw))
    r = Reader(NAMESPACE)
    problems, failed = schema_problems(values)
    for problem in problems:
        r.add(problem)
    v = Values(values, failed)
    server = registry_server(r, v)
    stack_rules(r, v, stack)
    app_rules(r, v, server, project_dir)
    soaked_rules(r, v)
    record, record_problems = FailedReleaseRecord.from_json(v.get("failedReleases"))
    for p in record_problems:
        r.problem(f"failedReleases{p.path}", p.given, p.expected)
    r.raise_if_problems()
    config = _stack(v, project_dir, record if "failedReleases" in values else None)
    for problem in budget_problems(config):
        r.add(problem)
    _soak_rules(r, v, config)
    r.raise_if_problems()
    return config


def read_deploy(value: Any) -> DeployConfig:
    """`gitops-deploy:deploy` alone: `python -m deploy` knows its budget even when another key is broken."""
    v = _alone("deploy", value)
    deploy = _deploy(v)
    if deploy.soak.rules_off:
        raise ConfigError([_SOAK_RULES_OFF.replace("<key>", f"{NAMESPACE}:deploy.soak")])
    return deploy


def read_notify(value: Any) -> NotifyConfig | None:
    """`gitops-deploy:notify` (decrypted), which only `python -m deploy` reads; None when unset."""
    if value is None:
        return None
    return _typed(NotifyConfig, _alone(NOTIFY_KEY, value), NOTIFY_KEY)


def _alone(key: str, value: Any) -> Values:
    """One top-level key's values, validated on their own; ConfigError naming what is wrong."""
    values = _unset({key: value})
    problems, failed = schema_problems(values, only=(key,))
    if problems:
        raise ConfigError([dataclasses.replace(p, key=f"{NAMESPACE}:{p.key}") for p in problems])
    return Values(values, failed)


_SOAK_RULES_OFF = (
    "<key>: got failuresInARow 0 and maxErrorPercent 100 (both failure rules off); expected at least one "
    "failure rule, or seconds 0 to turn the soak off"
)


def _soak_rules(r: Reader, v: Values, config: StackConfig) -> None:
    """A soak that runs needs at least one of its two failure rules, in the stack's and each app's."""
    found = [("deploy.soak", config.deploy.soak)] + [
        (f"{app_key(app.index, v.raw['apps'][app.index])}.soak", app.soak)
        for app in config.apps
        if "soak" in v.raw["apps"][app.index]
    ]
    for key, soak in found:
        if soak.rules_off:
            r.problems.append(_SOAK_RULES_OFF.replace("<key>", f"{NAMESPACE}:{key}"))
    r.raise_if_problems()


def _deploy(v: Values) -> DeployConfig:
    return _typed(DeployConfig, v, "deploy", soak=_typed(SoakConfig, v, "deploy", "soak"))


def _unset(value: Any) -> Any:
    """The values without their nulls: a key set to null is a key left unset."""
    if isinstance(value, Mapping):
        return {k: _unset(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_unset(v) for v in value]
    return value


def _stack(v: Values, project_dir: Path, record: FailedReleaseRecord | None) -> StackConfig:
    declared = v.raw.get("cluster") is not None
    named = {"server": None} if v.get("cluster", "name") is not None else {}
    return StackConfig(
        project_dir=project_dir,
        registry=_typed(RegistryConfig, v, "registry"),
        argocd=_typed(ArgoCDConfig, v, "argocd"),
        cluster=_typed(ClusterConfig, v, "cluster", **named) if declared else ClusterConfig(),
        build=_typed(BuildConfig, v, "build"),
        apps=tuple(_app(v, i, project_dir) for i in range(len(v.get("apps")))),
        cluster_declared=declared,
        promote=PromoteConfig(v.get("promote", "from")) if "promote" in v.raw else None,
        rollback_id=v.get("rollbackId"),
        failed_releases=record,
        allow_failed_releases=tuple(dict.fromkeys(v.get("allowFailedReleases") or ())),
        deploy=_deploy(v),
        soaked=dict(v.get(SOAKED_KEY) or {}),
    )


def _smoke_off(values: Any) -> Any:
    """`smoke: false` (or true) is `smoke: {enabled: ...}`, the form the schema and the types read."""
    for app in values.get("apps") or [] if isinstance(values, Mapping) else []:
        if isinstance(app, dict) and isinstance(app.get("smoke"), bool):
            app["smoke"] = {"enabled": app["smoke"]}
    return values


def _app(v: Values, i: int, project_dir: Path) -> AppConfig:
    image, source = ("apps", i, "image"), ("apps", i, "source")
    context = (project_dir / v.get(*image, "context")).resolve()
    named = v.get(*image, "dockerfile")
    dockerfile = (project_dir / named).resolve() if named else context / "Dockerfile"
    built = _typed(ImageConfig, v, *image, context=context, dockerfile=dockerfile)
    image_name = v.get(*source, "imageName") or built.repository
    workload = v.get(*source, "workload") or v.get("apps", i, "name")
    read = _typed(SourceConfig, v, *source, image_name=image_name, workload=workload)
    health = _typed(HealthConfig, v, "apps", i, "health")
    stack_soak = _typed(SoakConfig, v, "deploy", "soak")
    own = {k: val for k, val in dataclasses.asdict(_typed(SoakConfig, v, "apps", i, "soak")).items()}
    given = v.get("apps", i, "soak", fill=False) or {}
    soak = dataclasses.replace(stack_soak, **{k: val for k, val in own.items() if _camel(k) in given})
    smoke = _typed(SmokeConfig, v, "apps", i, "smoke")
    return _typed(
        AppConfig, v, "apps", i, index=i, image=built, source=read, health=health, soak=soak, smoke=smoke
    )


_CAST: dict[str, Callable[[Any], Any]] = {"integer": int, "number": float, "array": tuple}


@functools.cache
def _camel(field_name: str) -> str:
    """The config key of a field: `sync_timeout_seconds` is `syncTimeoutSeconds`."""
    return "repoURL" if field_name == "repo_url" else re.sub(r"_(\w)", lambda m: m[1].upper(), field_name)


def _typed(cls: type[T], v: Values, *path: str | int, **given: Any) -> T:
    """`cls` filled from the keys under `path` (a field `sync_timeout_seconds` reads `syncTimeoutSeconds`);
    an unset key without a default leaves the field's own default."""
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(cast(Any, cls)):
        name = _camel(f.name)
        value, key = v.get(*path, name, fill=False), key_at((*path, name))
        if key is not None and value is not None:
            value = _CAST.get(key.kind, dict if key.values is not None else lambda x: x)(value)
        elif key is not None:
            value = key.default  # a default stays as the schema writes it
        if f.name not in given and value is not None:
            fields[f.name] = value
    return cls(**fields, **given)


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
