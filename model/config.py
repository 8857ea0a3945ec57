"""Read the stack's configuration once, validate all of it, and return frozen typed objects."""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import pulumi
from pulumi.runtime import config as runtime_config

from model.config_reader import ConfigError, Reader
from model.content_tag import ContextError, check_context
from model.failed_releases import RELEASE_REF, FailedReleaseRecord
from model.health_settings import (
    DEFAULTS,
    SETTINGS,
    HealthSettings,
    cross_problems,
)
from model.http_origin import (
    HEADER_NAME,
    HEADER_VALUE,
    USERINFO_PROBLEM,
    redact_url,
    server_problem,
    url_problem,
)
from model.image_ref import REPO_DIGEST
from model.k8s_names import DNS1035_LABEL, LABEL_MAX
from model.names import DERIVED_NAME_SUFFIXES

NAMESPACE = "gitops-deploy"
IN_CLUSTER_SERVER = "https://kubernetes.default.svc"
LINT_THRESHOLDS = ("error", "warning", "info", "style", "none")
SOURCE_TYPES = ("helm", "kustomize")
DEFAULT_SYNC_TIMEOUT_SECONDS = 75
"""`argocd.syncTimeoutSeconds` default: a deploy that fails and rolls back waits and probes twice; with
the default health gate (69.5 s worst case) that is 2 x (75 + 69.5) = 289 s, inside the 5-minute budget
(model/budget.py); docs/release.md has the trade-off."""
DEFAULT_BUDGET_SECONDS = 300
"""`deploy.budgetSeconds` default: the pipeline this project replaces aimed at deploys under 5 minutes."""
DEFAULT_DEGRADED_GRACE_SECONDS = 30
"""`deploy.degradedGraceSeconds` default: how long Argo CD must report a release Degraded, and nothing
else, before `python -m deploy` stops the wait and rolls back (docs/release.md)."""
BUDGET_RANGE = (60, 7200)
GRACE_RANGE = (0, 7200)
OPERATION_WAIT_RANGE = (0, 3600)

# Every pattern validates a whole value with `fullmatch`: `re.match` with `$` lets "web\n" through.
REPO_PATH = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*")
_REPO_URL = re.compile(r"https?://[^\s/]+/\S*|ssh://[^\s/]+/\S+|[\w.-]+@[\w.-]+:\S+")
_PLATFORM = re.compile(r"[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?")
_RULE_CODE = re.compile(r"(DL|SC)[0-9]{4}")
_STACK_SEGMENT = r"[A-Za-z0-9_.-]{1,100}"
_STACK_REF = re.compile(rf"(?:{_STACK_SEGMENT}/{_STACK_SEGMENT}/)?{_STACK_SEGMENT}")
"""A stack name, or `<org>/<project>/<stack>`, in the characters Pulumi allows (tokens.ParseStackName)."""


@dataclass(frozen=True)
class RegistryConfig:
    """The container registry every app pushes to."""

    server: str
    """Registry host, with an optional port (`registry.example.com:5000`)."""
    username: str
    """User that pushes images and that the pull secret carries."""
    insecure: bool = False
    """Talk plain HTTP (or skip TLS verification) to the registry."""


@dataclass(frozen=True)
class ArgoCDConfig:
    """Where Argo CD runs and how Applications are declared in it."""

    namespace: str = "argocd"
    """Namespace of the Argo CD installation; Applications are created there."""
    project: str = "default"
    """Argo CD project every Application belongs to."""
    context: str | None = None
    """Kube context of the cluster where Argo CD runs; None means the default provider."""
    manage_project: bool = False
    """Declare the AppProject named by `project` and fence it to this stack."""
    sync_timeout_seconds: int = DEFAULT_SYNC_TIMEOUT_SECONDS
    """How long `pulumi up` waits for Argo CD to run each Application's release, Synced and Healthy."""
    retry_refresh: bool = True
    """Set `syncPolicy.retry.refresh`: a retried sync uses the newest revision (Argo CD v3.2.0+)."""


@dataclass(frozen=True)
class DeployConfig:
    """How a deploy is judged and when `python -m deploy` gives up on a release early."""

    budget_seconds: int = DEFAULT_BUDGET_SECONDS
    """The time budget of one deploy; every app's bounded phases must fit it (model/budget.py)."""
    degraded_grace_seconds: int = DEFAULT_DEGRADED_GRACE_SECONDS
    """How long an app may stay Degraded during the Application's wait before the deploy rolls it back."""
    operation_wait_seconds: int | None = None
    """How long the deploy waits for an Argo CD operation it did not start before it changes anything;
    None: what the budget leaves (model/budget.py `operation_wait_seconds`)."""


@dataclass(frozen=True)
class ClusterConfig:
    """The cluster where the apps' pods run, as Argo CD knows it."""

    name: str | None = None
    """Name of the cluster secret registered in Argo CD."""
    server: str | None = IN_CLUSTER_SERVER
    """API server URL of the cluster."""
    context: str | None = None
    """Kube context the program uses for objects in that cluster (the pull secrets)."""

    def destination(self, namespace: str) -> dict[str, str]:
        """The Application's `spec.destination`: `name` or `server`, never both."""
        if self.name is not None:
            return {"name": self.name, "namespace": namespace}
        return {"server": self.server or IN_CLUSTER_SERVER, "namespace": namespace}


@dataclass(frozen=True)
class BuildConfig:
    """How images are linted and built."""

    lint_threshold: str = "warning"
    """Lowest hadolint level that fails the run."""
    ignore: tuple[str, ...] = ()
    """Hadolint rule codes to skip."""
    trusted_registries: tuple[str, ...] = ()
    """When non-empty, base images from any other registry fail."""
    on_preview: bool = True
    """Build every image during `pulumi preview` (without pushing)."""


@dataclass(frozen=True)
class ImageConfig:
    """How one app's image is built and named."""

    repository: str
    """Full repository name on the registry, without tag or digest."""
    context: Path
    """Build context, resolved against the project directory."""
    dockerfile: Path
    """Dockerfile, resolved against the project directory."""
    platform: str = "linux/amd64"
    """Target platform of the build."""
    build_args: Mapping[str, str] = field(default_factory=dict)
    """`--build-arg` values."""
    pin: str | None = None
    """A digest reference to deploy instead of building (the rollback path)."""

    @property
    def path(self) -> str:
        """The repository without the registry host (`team/web`)."""
        return self.repository.split("/", 1)[1]


@dataclass(frozen=True)
class SourceConfig:
    """Where Argo CD reads the app's manifests."""

    repo_url: str
    """Git repository URL (http(s) or ssh)."""
    target_revision: str
    """Branch, tag or commit."""
    path: str
    """Folder of the chart or overlay inside the repository."""
    type: Literal["helm", "kustomize"]
    """How the folder is rendered."""
    image_name: str
    """Kustomize only: the image name the overlay uses (defaults to the repository)."""
    workload: str = ""
    """Kustomize only: the overlay's name for the workload that gets the replica count (defaults to
    the app's name); the Application prefixes every object's name with `<app>-`."""


@dataclass(frozen=True)
class HealthConfig(HealthSettings):
    """The live check that gates a release: the HealthSettings (fields, defaults and limits defined
    there, read from the camelCase keys they name) plus plain headers."""

    headers: Mapping[str, str] = field(default_factory=dict)
    """Extra request headers from the stack config (sent as secrets, merged with healthHeaders)."""


@dataclass(frozen=True)
class AppConfig:
    """One app of the stack."""

    index: int
    """Position in `gitops-deploy:apps`, for error messages."""
    name: str
    """DNS-1123 label; names the Application and every resource of the app."""
    namespace: str
    """Namespace the app runs in, on the destination cluster."""
    replicas: int
    """Replica count handed to the chart or overlay."""
    image: ImageConfig
    source: SourceConfig
    health: HealthConfig


@dataclass(frozen=True)
class PromoteConfig:
    """Build nothing: deploy the digests that passed their health gates in another stack."""

    from_stack: str
    """The upstream stack: a stack of this project (`dev`), or `<org>/<project>/<stack>`."""


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
    """Set when this stack deploys another stack's verified digests instead of building."""
    rollback_id: str | None = None
    """Set by `python -m deploy` during a rollback `up`; makes every pinned app's health gate run."""
    failed_releases: FailedReleaseRecord | None = None
    """The failed-release record `python -m deploy` hands to one update; None: read the stack's output."""
    allow_failed_releases: tuple[str, ...] = ()
    """`<app>:<content tag>` releases that failed before and may ship again (after a fix)."""
    deploy: DeployConfig = field(default_factory=DeployConfig)
    """The deploy's budget and its early rollback on Degraded."""

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


TOP_LEVEL_KEYS = (
    "registry",
    "argocd",
    "cluster",
    "build",
    "apps",
    "promote",
    "rollbackId",
    "failedReleases",
    "allowFailedReleases",
    "deploy",
)
SECRET_KEYS = ("registryPassword", "healthHeaders")
"""Keys read as secrets; with TOP_LEVEL_KEYS, every `gitops-deploy:*` key the program knows."""
_PLAIN_STRING_KEYS = ("rollbackId",)
"""Keys whose value is a bare string (as `pulumi config set` stores it), not JSON/YAML."""
_TYPED_WHEN_NOT_JSON = ("promote",)
"""Keys whose bare-string value (`promote: dev`) goes to the typed reader, which says what is expected."""


def parse_config(raw: Mapping[str, Any], project_dir: Path, *, stack: str | None = None) -> StackConfig:
    """Validate raw config values (key -> decoded JSON) and build the typed config, or raise ConfigError.

    `stack` is the stack being deployed, so that a stack promoting from itself is caught.
    """
    r = Reader(NAMESPACE)
    registry = _registry(r, raw.get("registry"))
    argocd = _argocd(r, raw.get("argocd"))
    cluster = _cluster(r, raw.get("cluster"))
    build = _build(r, raw.get("build"))
    apps = _apps(r, raw.get("apps"), registry, project_dir)
    promote = _promote(r, raw.get("promote"), stack)
    rollback_id = _rollback_id(r, raw.get("rollbackId"))
    failed_releases = _failed_releases(r, raw.get("failedReleases"))
    allow_failed_releases = _allow_failed_releases(r, raw.get("allowFailedReleases"))
    deploy = _deploy(r, raw.get("deploy"))
    if argocd.manage_project and argocd.project == "default":
        r.problem(
            "argocd.manageProject",
            "true with project 'default'",
            "a dedicated project name in gitops-deploy:argocd.project: the default project is "
            "shared and unfenced, so it cannot be managed per stack",
        )
    r.raise_if_problems()
    assert registry and apps is not None
    stack_config = StackConfig(
        project_dir=project_dir,
        registry=registry,
        argocd=argocd,
        cluster=cluster,
        build=build,
        apps=apps,
        cluster_declared=raw.get("cluster") is not None,
        promote=promote,
        rollback_id=rollback_id,
        failed_releases=failed_releases,
        allow_failed_releases=allow_failed_releases,
        deploy=deploy,
    )
    # Imported here: the budget reads the lint deadline from clients/dockerlint.py, which imports
    # this module.
    from model.budget import budget_problems

    for key, given, expected in budget_problems(stack_config):
        r.problem(key, given, expected)
    r.raise_if_problems()
    return stack_config


def read_deploy(value: Any) -> DeployConfig:
    """`gitops-deploy:deploy` alone (decoded JSON, or None when unset); ConfigError naming what is wrong.

    `python -m deploy` reads it this way, so that its budget and grace period are known even when
    another key is broken (the update then reports that key).
    """
    r = Reader(NAMESPACE)
    deploy = _deploy(r, value)
    r.raise_if_problems()
    return deploy


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
    problems = []
    for key in sorted(set(keys) - set(known)):
        close = difflib.get_close_matches(key.lower(), list(by_lower), n=1, cutoff=0.6)
        hint = f"; did you mean {NAMESPACE}:{by_lower[close[0]]}?" if close else ""
        expected = ", ".join(f"{NAMESPACE}:{k}" for k in known)
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
    password_key, headers_key = SECRET_KEYS
    password = cfg.get_secret(password_key)
    try:
        # Read as a plain value only to validate it before anything is registered; it is wrapped as a
        # secret Output below, and no message ever shows a value of it.
        headers_raw = cfg.get_object(headers_key)
    except pulumi.ConfigTypeError:
        headers_raw = None
        problems.append(f"{NAMESPACE}:{headers_key}: got a value that is not an object")
    if password is None:
        problems.append(
            f"{NAMESPACE}:{password_key}: missing; expected a secret, set with "
            f"`pulumi config set --secret {NAMESPACE}:{password_key}`"
        )
    if problems:
        raise ConfigError(problems)
    stack = parse_config(raw, project_dir, stack=pulumi.get_stack())
    assert password is not None
    header_problems = _secret_header_problems(stack, headers_raw)
    if header_problems:
        raise ConfigError(header_problems)
    headers = {
        app.name: pulumi.Output.secret({**app.health.headers, **((headers_raw or {}).get(app.name) or {})})
        for app in stack.apps
    }
    return stack, StackSecrets(registry_password=password, health_headers=headers)


def _secret_header_problems(stack: StackConfig, raw: Any) -> list[str]:
    """Shape problems of `gitops-deploy:healthHeaders` ({app: {header: value}}); values are never shown."""
    key = f"{NAMESPACE}:{SECRET_KEYS[1]}"
    if raw is None:
        return []
    if not isinstance(raw, Mapping):
        return [f"{key}: expected an object of app name -> headers"]
    apps = [app.name for app in stack.apps]
    problems = []
    for app, headers in raw.items():
        if app not in apps:
            close = difflib.get_close_matches(str(app), apps, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            problems.append(f"{key}.{app}: no app of that name in {NAMESPACE}:apps ({', '.join(apps)}){hint}")
            continue
        if not isinstance(headers, Mapping):
            problems.append(f"{key}.{app}: expected an object of header name -> string value")
            continue
        for name, value in headers.items():
            if not isinstance(name, str) or not HEADER_NAME.fullmatch(name):
                problems.append(f"{key}.{app}: header name {str(name)!r} is not an HTTP token")
            elif not isinstance(value, str) or not HEADER_VALUE.fullmatch(value):
                problems.append(
                    f"{key}.{app}.{name}: expected a string of printable ASCII characters (value not shown)"
                )
    return problems


def _failed_releases(r: Reader, value: Any) -> FailedReleaseRecord | None:
    """The record `python -m deploy` sets for one update (model/failed_releases.py); None when unset."""
    if value is None:
        return None
    record, problems = FailedReleaseRecord.from_json(value)
    for p in problems:
        r.problem(f"failedReleases{p.path}", p.given, p.expected)
    return record


def _allow_failed_releases(r: Reader, value: Any) -> tuple[str, ...]:
    allowed = r.string_list(
        "allowFailedReleases",
        value,
        valid=lambda ref: RELEASE_REF.fullmatch(ref) is not None,
        what="'<app>:<content tag>' naming a recorded failed release, such as 'web:ctx-0123456789ab'",
    )
    return tuple(dict.fromkeys(allowed))


def _after_at(server: str) -> str:
    """The host part of a `registry.server` written with userinfo (and maybe a scheme or a path)."""
    return server.rpartition("@")[2].split("/", 1)[0]


def _registry(r: Reader, value: Any) -> RegistryConfig | None:
    obj = r.object("registry", value, required=True)
    if obj is None:
        return None
    server = r.string("registry.server", obj.get("server"))
    if server is not None and "@" in server:
        # What precedes an '@' may be a credential: none of the value is shown.
        r.problem(
            "registry.server",
            f"userinfo (not shown: it may be a credential) before the host '{_after_at(server)}'",
            f"a registry host with an optional port; the password goes in {NAMESPACE}:{SECRET_KEYS[0]}, "
            "kept encrypted",
        )
        server = None
    elif server is not None and (problem := server_problem(server)) is not None:
        r.problem(
            "registry.server",
            f"{server!r} ({problem})",
            "a registry host with an optional port from 1 to 65535 and no scheme, "
            "for example 'registry.example.com' or 'localhost:5000'",
        )
        server = None
    username = r.string("registry.username", obj.get("username"))
    insecure = r.boolean("registry.insecure", obj.get("insecure"), default=False)
    r.unknown_keys("registry", obj, ("server", "username", "insecure"))
    if server is None or username is None:
        return None
    return RegistryConfig(server=server, username=username, insecure=bool(insecure))


def _argocd(r: Reader, value: Any) -> ArgoCDConfig:
    obj = r.object("argocd", value, required=False) or {}
    namespace = r.dns_label("argocd.namespace", obj.get("namespace", "argocd"))
    project = r.dns_label("argocd.project", obj.get("project", "default"))
    context = r.string("argocd.context", obj.get("context"), required=False)
    manage = r.boolean("argocd.manageProject", obj.get("manageProject"), default=False)
    timeout = r.integer(
        "argocd.syncTimeoutSeconds",
        obj.get("syncTimeoutSeconds"),
        default=DEFAULT_SYNC_TIMEOUT_SECONDS,
        minimum=30,
        maximum=7200,
    )
    retry_refresh = r.boolean("argocd.retryRefresh", obj.get("retryRefresh"), default=True)
    # Read by the CLI-free check only (policy_check/render_source.py): which repository this checkout is.
    repo_url = r.string("argocd.repoURL", obj.get("repoURL"), required=False)
    if repo_url is not None and not _REPO_URL.fullmatch(repo_url):
        r.problem(
            "argocd.repoURL",
            "a value that is not a Git URL",
            "this repository's http(s)://, ssh:// or git@host:org/repo URL",
        )
    r.unknown_keys(
        "argocd",
        obj,
        ("namespace", "project", "context", "manageProject", "syncTimeoutSeconds", "retryRefresh", "repoURL"),
    )
    return ArgoCDConfig(
        namespace=namespace or "argocd",
        project=project or "default",
        context=context,
        manage_project=bool(manage),
        sync_timeout_seconds=timeout or DEFAULT_SYNC_TIMEOUT_SECONDS,
        retry_refresh=bool(retry_refresh),
    )


def _deploy(r: Reader, value: Any) -> DeployConfig:
    obj = r.object("deploy", value, required=False) or {}
    low, high = BUDGET_RANGE
    budget = r.integer(
        "deploy.budgetSeconds",
        obj.get("budgetSeconds"),
        default=DEFAULT_BUDGET_SECONDS,
        minimum=low,
        maximum=high,
    )
    low, high = GRACE_RANGE
    grace = r.integer(
        "deploy.degradedGraceSeconds",
        obj.get("degradedGraceSeconds"),
        default=DEFAULT_DEGRADED_GRACE_SECONDS,
        minimum=low,
        maximum=high,
    )
    low, high = OPERATION_WAIT_RANGE
    given = obj.get("operationWaitSeconds")
    # Unset is the budget's room, computed with the budget (model/budget.py).
    wait = (
        None
        if given is None
        else r.integer("deploy.operationWaitSeconds", given, default=0, minimum=low, maximum=high)
    )
    r.unknown_keys("deploy", obj, ("budgetSeconds", "degradedGraceSeconds", "operationWaitSeconds"))
    return DeployConfig(
        budget_seconds=DEFAULT_BUDGET_SECONDS if budget is None else budget,
        degraded_grace_seconds=DEFAULT_DEGRADED_GRACE_SECONDS if grace is None else grace,
        operation_wait_seconds=wait,
    )


def _cluster(r: Reader, value: Any) -> ClusterConfig:
    if value is None:
        return ClusterConfig()
    obj = r.object("cluster", value, required=True)
    if obj is None:
        return ClusterConfig()
    name = r.string("cluster.name", obj.get("name"), required=False)
    server = r.string("cluster.server", obj.get("server"), required=False)
    context = r.string("cluster.context", obj.get("context"), required=False)
    r.unknown_keys("cluster", obj, ("name", "server", "context"))
    if "name" in obj and "server" in obj:
        r.problem(
            "cluster",
            "both 'name' and 'server'",
            "exactly one of them: Argo CD rejects a destination with both",
        )
    elif "name" not in obj and "server" not in obj:
        r.problem(
            "cluster",
            "neither 'name' nor 'server'",
            "exactly one of 'name' (a cluster registered in Argo CD) or 'server' (its API URL)",
        )
    if server is not None and (problem := url_problem(server, ("https",))) is not None:
        r.problem("cluster.server", f"{redact_url(server)!r} ({problem})", "an https:// API server URL")
    return ClusterConfig(name=name, server=server if name is None else None, context=context)


def _build(r: Reader, value: Any) -> BuildConfig:
    obj = r.object("build", value, required=False) or {}
    threshold = r.choice("build.lintThreshold", obj.get("lintThreshold", "warning"), LINT_THRESHOLDS)
    ignore = r.string_list(
        "build.ignore",
        obj.get("ignore"),
        valid=lambda code: _RULE_CODE.fullmatch(code) is not None,
        what="hadolint rule codes such as 'DL3008' or 'SC2086'",
    )
    trusted = r.string_list(
        "build.trustedRegistries",
        obj.get("trustedRegistries"),
        valid=lambda server: server_problem(server) is None,
        what="registry hosts such as 'docker.io' or 'registry.example.com:5000' (ports 1-65535)",
    )
    on_preview = r.boolean("build.onPreview", obj.get("onPreview"), default=True)
    if trusted and "DL3026" in ignore:
        r.problem(
            f"build.ignore[{ignore.index('DL3026')}]",
            "'DL3026' with trustedRegistries set",
            "no DL3026 in ignore: it is the rule that enforces trustedRegistries "
            "(remove trustedRegistries to allow any registry)",
        )
    r.unknown_keys("build", obj, ("lintThreshold", "ignore", "trustedRegistries", "onPreview"))
    return BuildConfig(
        lint_threshold=threshold or "warning",
        ignore=tuple(ignore),
        trusted_registries=tuple(trusted),
        on_preview=bool(on_preview),
    )


def _promote(r: Reader, value: Any, stack: str | None) -> PromoteConfig | None:
    obj = r.object("promote", value, required=False)
    if obj is None:
        return None
    source = r.string("promote.from", obj.get("from"))
    r.unknown_keys("promote", obj, ("from",))
    if source is None:
        return None
    if not _STACK_REF.fullmatch(source):
        r.problem(
            "promote.from",
            repr(source),
            "the upstream stack's name ('dev') or '<org>/<project>/<stack>', "
            "in letters, digits, '_', '.' and '-'",
        )
        return None
    if stack is not None and source.rsplit("/", 1)[-1] == stack and ("/" not in source or _own(source)):
        r.problem("promote.from", repr(source), "another stack: a stack cannot promote from itself")
        return None
    return PromoteConfig(from_stack=source)


def _own(qualified: str) -> bool:
    """A qualified name is this stack's own when its org and project are the running ones."""
    org, project, _ = qualified.split("/")
    return project == pulumi.get_project() and org == (pulumi.get_organization() or org)


def _rollback_id(r: Reader, value: Any) -> str | None:
    return r.string("rollbackId", value, required=False)


def _apps(
    r: Reader, value: Any, registry: RegistryConfig | None, project_dir: Path
) -> tuple[AppConfig, ...] | None:
    items = r.array("apps", value)
    if items is None:
        return None
    if not items:
        r.problem("apps", "an empty list", "at least one app")
        return None
    apps: list[AppConfig] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        app = _app(r, app_key(i, item), i, item, registry, project_dir)
        if app is None:
            continue
        if app.name in seen:
            r.problem(
                f"{app_key(i, item)}.name",
                repr(app.name),
                f"a name no other app uses ({app_key(seen[app.name], items[seen[app.name]])} already has it)",
            )
            continue
        seen[app.name] = i
        apps.append(app)
    return tuple(apps)


def app_key(index: int, value: Any) -> str:
    """`apps[1] (checkout)`: an app's key path, naming the app as well as its index when it has a name."""
    name = value.get("name") if isinstance(value, Mapping) else None
    readable = isinstance(name, str) and 0 < len(name) <= 63 and name.isprintable() and name.strip() == name
    return f"apps[{index}] ({name})" if readable else f"apps[{index}]"


def _app(
    r: Reader, key: str, index: int, value: Any, registry: RegistryConfig | None, project_dir: Path
) -> AppConfig | None:
    obj = r.object(key, value, required=True)
    if obj is None:
        return None
    name = _app_name(r, f"{key}.name", obj.get("name"))
    namespace = r.dns_label(f"{key}.namespace", obj.get("namespace"))
    replicas = r.integer(f"{key}.replicas", obj.get("replicas"), default=3, minimum=1, maximum=1000)
    image = _image(r, f"{key}.image", obj.get("image"), registry, project_dir)
    source = _source(r, f"{key}.source", obj.get("source"), image, name)
    health = _health(r, f"{key}.health", obj.get("health"))
    r.unknown_keys(key, obj, ("name", "namespace", "replicas", "image", "source", "health"))
    if None in (name, namespace, replicas, image, source, health):
        return None
    assert name and namespace and replicas and image and source and health
    return AppConfig(
        index=index,
        name=name,
        namespace=namespace,
        replicas=replicas,
        image=image,
        source=source,
        health=health,
    )


APP_NAME_MAX = LABEL_MAX - max(len(suffix) for suffix in DERIVED_NAME_SUFFIXES)
"""The longest app name whose derived names (`<app>-registry`, the overlay's `<app>-app`) all stay
63-character labels; a Service's must also start with a letter (model/k8s_names.py)."""


def _app_name(r: Reader, key: str, value: Any) -> str | None:
    """A DNS-1123 label short enough, and starting with a letter, so every name derived from it is valid."""
    name = r.dns_label(key, value)
    if name is not None and (len(name) > APP_NAME_MAX or DNS1035_LABEL.problem(name)):
        longest = max(DERIVED_NAME_SUFFIXES, key=len)
        r.problem(
            key,
            f"{name!r} ({len(name)} characters)",
            f"at most {APP_NAME_MAX} characters starting with a letter: Kubernetes names such as "
            f"'<app>{longest}' are derived from it and must stay {LABEL_MAX}-character DNS-1035 labels",
        )
        return None
    return name


def _image(
    r: Reader, key: str, value: Any, registry: RegistryConfig | None, project_dir: Path
) -> ImageConfig | None:
    obj = r.object(key, value, required=True)
    if obj is None:
        return None
    repository = r.string(f"{key}.repository", obj.get("repository"))
    if repository is not None and registry is not None:
        host, _, path = repository.partition("/")
        if host != registry.server or not path:
            r.problem(
                f"{key}.repository",
                repr(repository),
                f"a repository on the stack's registry '{registry.server}', for example "
                f"'{registry.server}/team/app'",
            )
            repository = None
        elif not REPO_PATH.fullmatch(path):
            r.problem(
                f"{key}.repository",
                repr(repository),
                "a repository path of lowercase letters, digits and separators, without a "
                "tag or digest (the program tags and pins images itself)",
            )
            repository = None
    pin = r.string(f"{key}.pin", obj.get("pin"), required=False)
    if pin is not None:
        match = REPO_DIGEST.fullmatch(pin)
        if match is None or (repository is not None and match.group("repo") != repository):
            r.problem(
                f"{key}.pin",
                repr(pin),
                f"a digest reference of this app's repository, '{repository or '<repository>'}"
                "@sha256:<64 hex digits>'",
            )
            pin = None
    context_s = r.string(f"{key}.context", obj.get("context"))
    dockerfile_s = r.string(f"{key}.dockerfile", obj.get("dockerfile"), required=False)
    platform = r.string(f"{key}.platform", obj.get("platform", "linux/amd64"))
    if platform is not None and not _PLATFORM.fullmatch(platform):
        r.problem(f"{key}.platform", repr(platform), "an os/arch[/variant] platform such as 'linux/amd64'")
        platform = None
    build_args = r.string_map(f"{key}.buildArgs", obj.get("buildArgs"))
    r.unknown_keys(key, obj, ("repository", "context", "dockerfile", "platform", "buildArgs", "pin"))
    dkey = f"{key}.dockerfile" if dockerfile_s else f"{key}.dockerfile (default <context>/Dockerfile)"
    if context_s is None or not _in_repository(r, f"{key}.context", context_s, "folder", project_dir):
        return None
    context = (project_dir / context_s).resolve()
    dockerfile = (project_dir / dockerfile_s).resolve() if dockerfile_s else context / "Dockerfile"
    if not _in_repository(r, dkey, dockerfile_s or "Dockerfile", "file", project_dir, dockerfile):
        return None
    if pin is None:
        # A pinned app is not built, so its build inputs may be gone (rollback to an old digest).
        if not context.is_dir():
            r.problem(f"{key}.context", repr(context_s), f"an existing build directory; looked for {context}")
        elif not dockerfile.is_file():
            r.problem(
                dkey, repr(dockerfile_s or "Dockerfile"), f"an existing Dockerfile; looked for {dockerfile}"
            )
        else:
            try:  # what pulumi-docker would fail on, and symlinks out of the repository, fail here first
                check_context(context, dockerfile, project_dir)
            except ContextError as exc:
                r.problem(f"{key}.context", repr(context_s), str(exc))
    if repository is None or platform is None or build_args is None:
        return None
    return ImageConfig(
        repository=repository,
        context=context,
        dockerfile=dockerfile,
        platform=platform,
        build_args=build_args,
        pin=pin,
    )


def _relative(r: Reader, key: str, path: str, what: str) -> bool:
    """The rule for a path in the repository as written: relative, and without '..'."""
    if path.startswith("/") or ".." in Path(path).parts:
        r.problem(key, repr(path), f"a {what} relative to the repository root, without '..'")
        return False
    return True


def _in_repository(
    r: Reader, key: str, path: str, what: str, project_dir: Path, resolved: Path | None = None
) -> bool:
    """`_relative`, and still inside the repository once symlinks are resolved."""
    if not _relative(r, key, path, what):
        return False
    resolved = (resolved or project_dir / path).resolve()
    root = project_dir.resolve()
    if resolved != root and root not in resolved.parents:
        r.problem(key, repr(path), f"a {what} inside the repository; a symlink takes it to {resolved}")
        return False
    return True


def _repo_url_credential(url: str) -> bool:
    """True when a Git URL carries a credential: any userinfo over http(s), a password over ssh (an
    ssh user such as `git@` is an account name, not a secret)."""
    try:
        split = urlsplit(url)
    except ValueError:
        return "@" in url
    if split.scheme in ("http", "https"):
        return "@" in split.netloc
    return split.scheme == "ssh" and ":" in split.netloc.rpartition("@")[0]


def _source(
    r: Reader, key: str, value: Any, image: ImageConfig | None, app: str | None
) -> SourceConfig | None:
    obj = r.object(key, value, required=True)
    if obj is None:
        return None
    repo_url = r.string(f"{key}.repoURL", obj.get("repoURL"))
    if repo_url is not None and not _REPO_URL.fullmatch(repo_url):
        r.problem(
            f"{key}.repoURL",
            repr(redact_url(repo_url)),
            "an http(s):// or ssh:// Git URL, or git@host:org/repo.git",
        )
        repo_url = None
    elif repo_url is not None and _repo_url_credential(repo_url):
        # The Application carries it: a preview's diff, the cluster and the state would show it.
        r.problem(
            f"{key}.repoURL",
            f"{redact_url(repo_url)!r} ({USERINFO_PROBLEM})",
            "a Git URL without a token or password; Argo CD reads repository credentials from its own "
            "repository Secrets",
        )
        repo_url = None
    revision = r.string(f"{key}.targetRevision", obj.get("targetRevision"))
    path = r.string(f"{key}.path", obj.get("path"))
    if path is not None and not _relative(r, f"{key}.path", path, "folder"):
        path = None
    kind = r.choice(f"{key}.type", obj.get("type"), SOURCE_TYPES)
    image_name = r.string(f"{key}.imageName", obj.get("imageName"), required=False)
    if image_name is not None and kind == "helm":
        r.problem(f"{key}.imageName", repr(image_name), "no imageName for a helm source (kustomize only)")
    workload = r.dns_label(f"{key}.workload", obj["workload"]) if "workload" in obj else None
    if workload is not None and kind == "helm":
        r.problem(f"{key}.workload", repr(workload), "no workload for a helm source (kustomize only)")
    r.unknown_keys(key, obj, ("repoURL", "targetRevision", "path", "type", "imageName", "workload"))
    if None in (repo_url, revision, path, kind, app) or image is None or ("workload" in obj and not workload):
        return None
    assert repo_url and revision and path and kind and app
    return SourceConfig(
        repo_url=repo_url,
        target_revision=revision,
        path=path,
        type="helm" if kind == "helm" else "kustomize",
        image_name=image_name or image.repository,
        workload=workload or app,
    )


def _health(r: Reader, key: str, value: Any) -> HealthConfig | None:
    """The app's HealthConfig: each HealthSettings field read from the config key and limits it names."""
    obj = r.object(key, value, required=True)
    if obj is None:
        return None
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        rule = setting.metadata["limit"]
        default: Any = DEFAULTS.get(setting.name)
        where, given = f"{key}.{rule.key}", obj.get(rule.key)
        if rule.kind == "url":
            url = r.string(where, given)
            if url is not None and (problem := rule.problem(url)) is not None:
                expected = rule.expected
                if problem == USERINFO_PROBLEM:
                    # The URL is shown in reports, errors and records; a header stays a secret.
                    expected += (
                        f"; send credentials as a header in {NAMESPACE}:{SECRET_KEYS[1]}, kept encrypted"
                    )
                r.problem(where, f"{redact_url(url)!r} ({problem})", expected)
                url = None
            values[setting.name] = url
        elif rule.kind == "whole":
            values[setting.name] = r.integer(
                where, given, default=default, minimum=rule.minimum, maximum=rule.maximum
            )
        elif rule.kind == "positive":
            values[setting.name] = r.number(where, given, default=default)
        else:
            values[setting.name] = r.boolean(where, given, default=default)
    headers = r.string_map(f"{key}.headers", obj.get("headers"), key_pattern=HEADER_NAME)
    for name, text in (headers or {}).items():
        if not HEADER_VALUE.fullmatch(text):
            # Never quoted: the value is sent as a secret, and httpx could not encode it anyway.
            r.problem(f"{key}.headers.{name}", "a value that is not printable ASCII", "printable ASCII text")
            headers = None
            break
    known = (*(s.metadata["limit"].key for s in SETTINGS), "headers")
    r.unknown_keys(key, obj, known)
    cross = cross_problems(
        values["attempts"], values["interval_seconds"], values["timeout_seconds"], values["success_threshold"]
    )
    for name, given, expected in cross:
        # The threshold is that setting's problem; the worst case belongs to the health block as a whole.
        where = f"{key}.successThreshold" if name == "success_threshold" else key
        r.problem(where, given, expected)
    if cross or headers is None or any(v is None for v in values.values()):
        return None
    return HealthConfig(**values, headers=headers)
