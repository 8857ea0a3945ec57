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
    DEFAULT_SMOKE_PORT,
    DEFAULT_SMOKE_TIMEOUT_SECONDS,
    DEFAULT_SOAK_FAILURES_IN_A_ROW,
    DEFAULT_SOAK_INTERVAL_SECONDS,
    DEFAULT_SOAK_MAX_ERROR_PERCENT,
    DEFAULT_SOAK_SECONDS,
    DEFAULT_SOAK_WINDOW_SECONDS,
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
class SoakConfig:
    """`gitops-deploy:deploy.soak`, or an app's `soak` over it."""

    seconds: int = DEFAULT_SOAK_SECONDS
    """0: no soak."""
    interval_seconds: int = DEFAULT_SOAK_INTERVAL_SECONDS
    failures_in_a_row: int = DEFAULT_SOAK_FAILURES_IN_A_ROW
    """0: the rule is off."""
    max_error_percent: int = DEFAULT_SOAK_MAX_ERROR_PERCENT
    """100: the rule is off (a rate never exceeds 100 %)."""
    window_seconds: int = DEFAULT_SOAK_WINDOW_SECONDS

    @property
    def rules_off(self) -> bool:
        """A soak that runs with neither failure rule could never fail."""
        return bool(self.seconds) and self.failures_in_a_row == 0 and self.max_error_percent == 100


@dataclass(frozen=True)
class DeployConfig:
    """`gitops-deploy:deploy`."""

    budget_seconds: int = DEFAULT_BUDGET_SECONDS
    degraded_grace_seconds: int = DEFAULT_DEGRADED_GRACE_SECONDS
    operation_wait_seconds: int | None = None
    """None: what the budget leaves (model/budget.py `operation_wait_seconds`)."""
    soak: SoakConfig = field(default_factory=SoakConfig)
    environment_url: str | None = None
    """The URL of GitHub deployments; None: the first app's health URL."""


@dataclass(frozen=True)
class SmokeConfig:
    """An app's `smoke`: its built image run alone by the check (`smoke: false` is `enabled` false)."""

    enabled: bool = True
    port: int = DEFAULT_SMOKE_PORT
    env: Mapping[str, str] = field(default_factory=dict)
    timeout_seconds: int = DEFAULT_SMOKE_TIMEOUT_SECONDS


@dataclass(frozen=True)
class NotifyConfig:
    """`gitops-deploy:notify`, read by `python -m deploy` only (a secret)."""

    url: str
    format: Literal["json", "slack"] = "json"


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
    soak: SoakConfig = field(default_factory=SoakConfig)
    """The app's effective soak: its own `soak` keys over `gitops-deploy:deploy.soak`."""
    smoke: SmokeConfig = field(default_factory=SmokeConfig)


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
    soaked: Mapping[str, str] = field(default_factory=dict)
    """`gitops-deploy:soaked`: each app's digest whose soak passed, as `python -m deploy` hands it over."""

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
