"""The validated stack config as frozen typed objects; each key's doc is in model/config_schema.py."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pulumi

from model.config_schema import (
    ARGOCD_NAMESPACE,
    ARGOCD_PROJECT,
    DEFAULT_BUDGET_SECONDS,
    DEFAULT_DEGRADED_GRACE_SECONDS,
    DEFAULT_LINT_THRESHOLD,
    DEFAULT_PLATFORM,
    DEFAULT_SYNC_TIMEOUT_SECONDS,
    IN_CLUSTER_SERVER,
)
from model.failed_releases import FailedReleaseRecord
from model.health_settings import HealthSettings


@dataclass(frozen=True)
class RegistryConfig:
    """`gitops-deploy:registry`."""

    server: str
    username: str
    insecure: bool = False


@dataclass(frozen=True)
class ArgoCDConfig:
    """`gitops-deploy:argocd`."""

    namespace: str = ARGOCD_NAMESPACE
    project: str = ARGOCD_PROJECT
    context: str | None = None
    manage_project: bool = False
    sync_timeout_seconds: int = DEFAULT_SYNC_TIMEOUT_SECONDS
    retry_refresh: bool = True


@dataclass(frozen=True)
class DeployConfig:
    """`gitops-deploy:deploy`."""

    budget_seconds: int = DEFAULT_BUDGET_SECONDS
    degraded_grace_seconds: int = DEFAULT_DEGRADED_GRACE_SECONDS
    operation_wait_seconds: int | None = None
    """None: what the budget leaves (model/budget.py `operation_wait_seconds`)."""


@dataclass(frozen=True)
class ClusterConfig:
    """`gitops-deploy:cluster`."""

    name: str | None = None
    server: str | None = IN_CLUSTER_SERVER
    context: str | None = None

    def destination(self, namespace: str) -> dict[str, str]:
        """The Application's `spec.destination`: `name` or `server`, never both."""
        if self.name is not None:
            return {"name": self.name, "namespace": namespace}
        return {"server": self.server or IN_CLUSTER_SERVER, "namespace": namespace}


@dataclass(frozen=True)
class BuildConfig:
    """`gitops-deploy:build`."""

    lint_threshold: str = DEFAULT_LINT_THRESHOLD
    ignore: tuple[str, ...] = ()
    trusted_registries: tuple[str, ...] = ()
    on_preview: bool = True


@dataclass(frozen=True)
class ImageConfig:
    """An app's `image`; paths resolved against the project directory."""

    repository: str
    context: Path
    dockerfile: Path
    platform: str = DEFAULT_PLATFORM
    build_args: Mapping[str, str] = field(default_factory=dict)
    pin: str | None = None

    @property
    def path(self) -> str:
        """The repository without the registry host (`team/web`)."""
        return self.repository.split("/", 1)[1]


@dataclass(frozen=True)
class SourceConfig:
    """An app's `source`; `image_name` and `workload` carry their defaults."""

    repo_url: str
    target_revision: str
    path: str
    type: Literal["helm", "kustomize"]
    image_name: str
    workload: str = ""


@dataclass(frozen=True)
class HealthConfig(HealthSettings):
    """An app's `health`: the HealthSettings plus plain headers."""

    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AppConfig:
    """One entry of `gitops-deploy:apps`."""

    index: int
    """Position in `gitops-deploy:apps`, for error messages."""
    name: str
    namespace: str
    replicas: int
    image: ImageConfig
    source: SourceConfig
    health: HealthConfig


@dataclass(frozen=True)
class PromoteConfig:
    """`gitops-deploy:promote`."""

    from_stack: str


@dataclass(frozen=True)
class StackConfig:
    """Everything the program needs, validated."""

    project_dir: Path
    registry: RegistryConfig
    argocd: ArgoCDConfig
    cluster: ClusterConfig
    build: BuildConfig
    apps: tuple[AppConfig, ...]
    cluster_declared: bool = False
    """True when `gitops-deploy:cluster` was set (the hub setup)."""
    promote: PromoteConfig | None = None
    rollback_id: str | None = None
    failed_releases: FailedReleaseRecord | None = None
    """None: the program reads the stack's own output."""
    allow_failed_releases: tuple[str, ...] = ()
    deploy: DeployConfig = field(default_factory=DeployConfig)

    @property
    def built_apps(self) -> tuple[AppConfig, ...]:
        """The apps this stack builds: none when it promotes, and never a pinned one."""
        if self.promote is not None:
            return ()
        return tuple(app for app in self.apps if app.image.pin is None)


@dataclass(frozen=True)
class StackSecrets:
    """Secret values, kept as secret Outputs so they never reach state in plaintext."""

    registry_password: pulumi.Output[str]
    health_headers: Mapping[str, pulumi.Output[Mapping[str, str]]]
