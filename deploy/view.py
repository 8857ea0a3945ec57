"""The deploy's one view of the stack: its outputs and config, read once before the update."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from pulumi.automation import ConfigValue, Stack
from pulumi.automation.errors import CommandError

from clients.argo_cluster import Target, target_from_config
from deploy.process import Interrupted, Interrupts
from deploy.targets import Registry, registry_from_config
from model.budget import app_budgets
from model.config import (
    NAMESPACE,
    TOP_LEVEL_KEYS,
    AppConfig,
    DeployConfig,
    StackConfig,
    parse_config,
    read_deploy,
)
from model.config_reader import ConfigError
from model.content_tag import content_tag
from model.errors import GitopsError
from model.failed_releases import RECORD_KEY, RECORD_OUTPUT, FailedReleaseRecord
from model.http_origin import redact_urls
from model.image_ref import is_repo_digest

APPS_KEY = f"{NAMESPACE}:apps"
DEPLOY_KEY = f"{NAMESPACE}:deploy"
RECORD_CONFIG_KEY = f"{NAMESPACE}:{RECORD_KEY}"


class StackUnreadable(GitopsError):
    """The CLI could not read the stack's outputs or config: the deploy cannot start."""


@dataclass(frozen=True)
class AppEntry:
    """One app of the stack's `gitops-deploy:apps` config."""

    index: int
    repository: str | None
    pin: str | None


@dataclass(frozen=True)
class StackView:
    """What the deploy knows of the stack before the update; every step reads it from here."""

    values: Mapping[str, str | None]
    """The stack's config values (secrets decrypted), by full key."""
    good: dict[str, str]
    """Each app's last digest that passed its health gate."""
    record: FailedReleaseRecord
    entries: dict[str, AppEntry]
    tags: dict[str, str] = field(default_factory=dict)
    """Each built app's content tag."""
    allowed: tuple[str, ...] = ()
    """Failed releases allowed to ship again: the option's and the stack config's."""
    deploy: DeployConfig = field(default_factory=DeployConfig)
    """`gitops-deploy:deploy`: the budget and the Degraded grace period."""
    operation_wait_s: int = 0
    """How long to wait for an Argo CD operation this deploy did not start (model/budget.py)."""
    worst_cases: Mapping[str, float] = field(default_factory=dict)
    """Each app's health-check worst case, seconds."""
    registry: Registry | None = None
    """Where the rollback targets are; None when the config lacks a usable registry."""
    cluster: Target | None = None
    """Where Argo CD's Applications are."""
    config: StackConfig | None = None
    """The stack config as the program parses it; None when the program rejects it."""
    secret_keys: frozenset[str] = frozenset()
    """The config keys the stack stores encrypted."""

    @property
    def apps(self) -> tuple[AppConfig, ...]:
        """The apps as the program parses them (none when it rejects the config): their health and soak."""
        return self.config.apps if self.config is not None else ()


def stderr_of(err: CommandError) -> str:
    """The CLI's stderr from a CommandError (its stdout was already streamed)."""
    text = redact_urls(str(err))
    _, sep, stderr = text.rpartition("\n stderr: ")
    return (stderr if sep else text).strip() or "no error output"


def indent(text: str, width: int = 4) -> str:
    """Each line of `text`, indented."""
    return "\n".join(" " * width + line for line in text.splitlines())


def last_known_good(outputs: Mapping[str, Any]) -> dict[str, str]:
    """Each app's digest that passed its health gate, from the stack's `apps` output, by app name."""
    apps = outputs.get("apps")
    apps = getattr(apps, "value", apps)  # an automation OutputValue, or the plain value
    if not isinstance(apps, Mapping):
        return {}
    good: dict[str, str] = {}
    for name, app in apps.items():
        digest = app.get("imageDigest") if isinstance(app, Mapping) else None
        if is_repo_digest(digest):
            good[str(name)] = digest
    return good


def app_entries(apps_config: str | Sequence[Any] | None) -> dict[str, AppEntry]:
    """The stack's apps by name, from the config value (JSON text, as the CLI returns it, or a list)."""
    try:
        value = json.loads(apps_config) if isinstance(apps_config, str) else apps_config
    except ValueError:
        value = None
    entries: dict[str, AppEntry] = {}
    for i, app in enumerate(value if isinstance(value, list) else []):
        if not isinstance(app, Mapping) or not isinstance(app.get("name"), str):
            continue
        image = app.get("image")
        image = image if isinstance(image, Mapping) else {}
        repo, pin = image.get("repository"), image.get("pin")
        entries[app["name"]] = AppEntry(
            i, repo if isinstance(repo, str) else None, pin if isinstance(pin, str) else None
        )
    return entries


def _json(text: str | None) -> Any:
    try:
        return json.loads(text) if text else None
    except ValueError:
        return text


def _parsed(values: Mapping[str, str | None], work_dir: Path) -> StackConfig | None:
    """The stack config as the program parses it; None when the program rejects it (the `up` says why)."""
    raw = {key: _json(values.get(f"{NAMESPACE}:{key}")) for key in TOP_LEVEL_KEYS}
    try:
        return parse_config({k: v for k, v in raw.items() if v is not None}, work_dir)
    except ConfigError:
        return None


def _deploy_config(values: Mapping[str, str | None]) -> DeployConfig:
    """The stack's `gitops-deploy:deploy`; the defaults when it is broken (the update says why)."""
    try:
        return read_deploy(json.loads(values.get(DEPLOY_KEY) or "null"))
    except (ValueError, ConfigError):
        return DeployConfig()


def _read(stack: Stack, interrupts: Interrupts) -> tuple[Mapping[str, Any], Mapping[str, ConfigValue]]:
    """The stack's outputs and its config (secrets decrypted); StackUnreadable with the CLI's reason."""
    try:
        return stack.outputs(), stack.get_all_config()
    except CommandError as err:
        if interrupts.interrupted:
            raise Interrupted(str(err)) from err
        reason = stderr_of(err)
        hint = ""
        if "passphrase" in reason.lower():
            hint = (
                "\n  The stack's secrets are passphrase-encrypted: export PULUMI_CONFIG_PASSPHRASE (or "
                "PULUMI_CONFIG_PASSPHRASE_FILE) as for `pulumi up`."
            )
        raise StackUnreadable(
            f"could not read stack {stack.name!r} (its outputs and config), so nothing was deployed:\n"
            f"{indent(reason)}{hint}"
        ) from err


def read_view(
    stack: Stack, work_dir: Path, allowed: Sequence[str], out: TextIO, interrupts: Interrupts
) -> StackView:
    """Read the stack's outputs and config once, and say what the deploy will do with them."""
    outputs, config = _read(stack, interrupts)
    values = {key: value.value for key, value in config.items()}
    value = outputs.get(RECORD_OUTPUT)
    record, problems = FailedReleaseRecord.from_json(getattr(value, "value", value))
    for p in problems:
        out.write(f"deploy: warning: stack output {RECORD_OUTPUT}{p.path}: got {p.given}; ignored\n")
    entries = app_entries(values.get(APPS_KEY))
    for name, entry in entries.items():
        if entry.pin is not None:
            out.write(f"deploy: note: {name} is pinned to {entry.pin} in the stack config; not rebuilt\n")
    recorded = {r.ref for r in record.releases}
    for ref in allowed:
        if ref not in recorded:
            out.write(f"deploy: note: --allow-failed-release {ref}: no such failed release is recorded\n")
    cfg = _parsed(values, work_dir)
    apps, root = (cfg.apps, cfg.project_dir) if cfg is not None else ((), work_dir)
    tags = {
        app.name: content_tag(
            app.image.context, app.image.dockerfile, app.image.platform, app.image.build_args, root=root
        )
        for app in apps
        if app.image.pin is None
    }
    deploy = _deploy_config(values)
    budgets = app_budgets(cfg) if cfg is not None else ()
    wait = int(budgets[0].before[0].seconds) if budgets else (deploy.operation_wait_seconds or 0)
    return StackView(
        values, last_known_good(outputs), record, entries, tags,
        (*allowed, *(cfg.allow_failed_releases if cfg is not None else ())), deploy, wait,
        {app.name: app.health.budget_seconds for app in apps}, registry_from_config(values),
        target_from_config(values, os.environ), cfg,
        frozenset(k for k, v in config.items() if v.secret),
    )  # fmt: skip
