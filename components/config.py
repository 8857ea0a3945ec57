"""Read the stack's configuration once, validate all of it, and return frozen typed objects."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pulumi

from components.config_reader import ConfigError, Reader
from components.failed_releases import RELEASE_REF, FailedReleaseRecord
from components.health_budget import worst_case_seconds

NAMESPACE = "gitops-deploy"
IN_CLUSTER_SERVER = "https://kubernetes.default.svc"
LINT_THRESHOLDS = ("error", "warning", "info", "style", "none")
SOURCE_TYPES = ("helm", "kustomize")
MAX_HEALTH_BUDGET_SECONDS = 15 * 60

_SERVER = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?$")
REPO_PATH = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")
_REPO_URL = re.compile(r"^(https?://[^\s/]+/\S*|ssh://[^\s/]+/\S+|[\w.-]+@[\w.-]+:\S+)$")
_PLATFORM = re.compile(r"^[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?$")
_DIGEST_REF = re.compile(r"^(?P<repo>[^@\s]+)@sha256:[0-9a-f]{64}$")
_RULE_CODE = re.compile(r"^(DL|SC)[0-9]{4}$")
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


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
    sync_timeout_seconds: int = 600
    """How long `pulumi up` waits for each Application to be Synced and Healthy."""


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


@dataclass(frozen=True)
class HealthConfig:
    """The live check that gates a release."""

    url: str
    """Endpoint probed after the Application is Healthy."""
    expected_status: int = 200
    """HTTP status a passing probe returns."""
    max_latency_ms: float = 200
    """Latency budget of one probe, to the response headers."""
    attempts: int = 10
    """Most probes made before the check fails."""
    interval_seconds: float = 5.0
    """First wait between probes; later waits back off from it."""
    timeout_seconds: float = 5.0
    """Timeout of one probe."""
    success_threshold: int = 3
    """Consecutive passing probes needed."""
    headers: Mapping[str, str] = field(default_factory=dict)
    """Extra request headers (values are sent as secrets)."""
    verify_tls: bool = True
    """Verify the endpoint's TLS certificate."""


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
    failed_releases: FailedReleaseRecord | None = None
    """The failed-release record `python -m deploy` hands to one update; None: read the stack's output."""
    allow_failed_releases: tuple[str, ...] = ()
    """`<app>:<content tag>` releases that failed before and may ship again (after a fix)."""


@dataclass(frozen=True)
class StackSecrets:
    """Secret values, kept as secret Outputs so they never reach state in plaintext."""

    registry_password: pulumi.Output[str]
    health_headers: Mapping[str, pulumi.Output[Mapping[str, str]]]


TOP_LEVEL_KEYS = ("registry", "argocd", "cluster", "build", "apps", "failedReleases", "allowFailedReleases")


def parse_config(raw: Mapping[str, Any], project_dir: Path) -> StackConfig:
    """Validate raw config values (key -> decoded JSON) and build the typed config, or raise ConfigError."""
    r = Reader(NAMESPACE)
    registry = _registry(r, raw.get("registry"))
    argocd = _argocd(r, raw.get("argocd"))
    cluster = _cluster(r, raw.get("cluster"))
    build = _build(r, raw.get("build"))
    apps = _apps(r, raw.get("apps"), registry, project_dir)
    failed_releases = _failed_releases(r, raw.get("failedReleases"))
    allow_failed_releases = _allow_failed_releases(r, raw.get("allowFailedReleases"))
    if argocd.manage_project and argocd.project == "default":
        r.problem(
            "argocd.manageProject",
            "true with project 'default'",
            "a dedicated project name in gitops-deploy:argocd.project: the default project is "
            "shared and unfenced, so it cannot be managed per stack",
        )
    r.raise_if_problems()
    assert registry and apps is not None
    return StackConfig(
        project_dir=project_dir,
        registry=registry,
        argocd=argocd,
        cluster=cluster,
        build=build,
        apps=apps,
        cluster_declared=raw.get("cluster") is not None,
        failed_releases=failed_releases,
        allow_failed_releases=allow_failed_releases,
    )


def load_config(project_dir: Path) -> tuple[StackConfig, StackSecrets]:
    """Read every key of the stack once from `pulumi.Config` and validate it."""
    cfg = pulumi.Config(NAMESPACE)
    raw: dict[str, Any] = {}
    problems: list[str] = []
    for key in TOP_LEVEL_KEYS:
        try:
            raw[key] = cfg.get_object(key)
        except pulumi.ConfigTypeError as err:
            problems.append(f"{NAMESPACE}:{key}: got a value that is not valid JSON/YAML ({err})")
    password = cfg.get_secret("registryPassword")
    try:
        headers_raw = cfg.get_secret_object("healthHeaders")
    except pulumi.ConfigTypeError:
        headers_raw = None
        problems.append(f"{NAMESPACE}:healthHeaders: got a value that is not an object")
    if password is None:
        problems.append(
            f"{NAMESPACE}:registryPassword: missing; expected a secret, set with "
            f"`pulumi config set --secret {NAMESPACE}:registryPassword`"
        )
    if problems:
        raise ConfigError(problems)
    stack = parse_config(raw, project_dir)
    assert password is not None
    headers = _secret_headers(stack, headers_raw)
    return stack, StackSecrets(registry_password=password, health_headers=headers)


def _secret_headers(
    stack: StackConfig, raw: pulumi.Output[Any] | None
) -> dict[str, pulumi.Output[Mapping[str, str]]]:
    """Per-app secret health headers from `gitops-deploy:healthHeaders`, merged over the plain ones."""
    result: dict[str, pulumi.Output[Mapping[str, str]]] = {}
    for app in stack.apps:
        plain = dict(app.health.headers)
        if raw is None:
            merged: pulumi.Output[Mapping[str, str]] = pulumi.Output.secret(plain)
        else:
            merge = functools.partial(_merge_headers, plain=plain, app=app.name)
            merged = pulumi.Output.secret(raw.apply(merge))
        result[app.name] = merged
    return result


def _merge_headers(value: Any, plain: dict[str, str], app: str) -> dict[str, str]:
    """Merge secret headers for one app; shape errors never echo the secret values."""
    if not isinstance(value, Mapping):
        raise ConfigError([f"{NAMESPACE}:healthHeaders: expected an object of app name -> headers"])
    extra = value.get(app, {})
    if not isinstance(extra, Mapping) or not all(
        isinstance(k, str) and _HEADER_NAME.match(k) and isinstance(v, str) for k, v in extra.items()
    ):
        raise ConfigError(
            [f"{NAMESPACE}:healthHeaders.{app}: expected an object of header name -> string value"]
        )
    return {**plain, **extra}


def _failed_releases(r: Reader, value: Any) -> FailedReleaseRecord | None:
    """The record `python -m deploy` sets for one update (components/failed_releases.py); None when unset."""
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
        pattern=RELEASE_REF,
        what="'<app>:<content tag>' naming a recorded failed release, such as 'web:ctx-0123456789ab'",
    )
    return tuple(dict.fromkeys(allowed))


def _registry(r: Reader, value: Any) -> RegistryConfig | None:
    obj = r.object("registry", value, required=True)
    if obj is None:
        return None
    server = r.string("registry.server", obj.get("server"))
    if server is not None and not _SERVER.match(server):
        r.problem(
            "registry.server",
            repr(server),
            "a registry host with an optional port and no scheme, "
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
        "argocd.syncTimeoutSeconds", obj.get("syncTimeoutSeconds"), default=600, minimum=30, maximum=7200
    )
    r.unknown_keys("argocd", obj, ("namespace", "project", "context", "manageProject", "syncTimeoutSeconds"))
    return ArgoCDConfig(
        namespace=namespace or "argocd",
        project=project or "default",
        context=context,
        manage_project=bool(manage),
        sync_timeout_seconds=timeout or 600,
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
    if server is not None and not re.match(r"^https://\S+$", server):
        r.problem("cluster.server", repr(server), "an https:// API server URL")
    return ClusterConfig(name=name, server=server if name is None else None, context=context)


def _build(r: Reader, value: Any) -> BuildConfig:
    obj = r.object("build", value, required=False) or {}
    threshold = r.choice("build.lintThreshold", obj.get("lintThreshold", "warning"), LINT_THRESHOLDS)
    ignore = r.string_list(
        "build.ignore",
        obj.get("ignore"),
        pattern=_RULE_CODE,
        what="hadolint rule codes such as 'DL3008' or 'SC2086'",
    )
    trusted = r.string_list(
        "build.trustedRegistries",
        obj.get("trustedRegistries"),
        pattern=_SERVER,
        what="registry hosts such as 'docker.io' or 'registry.example.com:5000'",
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
        app = _app(r, f"apps[{i}]", i, item, registry, project_dir)
        if app is None:
            continue
        if app.name in seen:
            r.problem(
                f"apps[{i}].name",
                repr(app.name),
                f"a name no other app uses (apps[{seen[app.name]}] already has it)",
            )
            continue
        seen[app.name] = i
        apps.append(app)
    return tuple(apps)


def _app(
    r: Reader, key: str, index: int, value: Any, registry: RegistryConfig | None, project_dir: Path
) -> AppConfig | None:
    obj = r.object(key, value, required=True)
    if obj is None:
        return None
    name = r.dns_label(f"{key}.name", obj.get("name"))
    namespace = r.dns_label(f"{key}.namespace", obj.get("namespace"))
    replicas = r.integer(f"{key}.replicas", obj.get("replicas"), default=3, minimum=1, maximum=1000)
    image = _image(r, f"{key}.image", obj.get("image"), registry, project_dir)
    source = _source(r, f"{key}.source", obj.get("source"), image)
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
        elif not REPO_PATH.match(path):
            r.problem(
                f"{key}.repository",
                repr(repository),
                "a repository path of lowercase letters, digits and separators, without a "
                "tag or digest (the program tags and pins images itself)",
            )
            repository = None
    pin = r.string(f"{key}.pin", obj.get("pin"), required=False)
    if pin is not None:
        match = _DIGEST_REF.match(pin)
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
    if platform is not None and not _PLATFORM.match(platform):
        r.problem(f"{key}.platform", repr(platform), "an os/arch[/variant] platform such as 'linux/amd64'")
        platform = None
    build_args = r.string_map(f"{key}.buildArgs", obj.get("buildArgs"))
    r.unknown_keys(key, obj, ("repository", "context", "dockerfile", "platform", "buildArgs", "pin"))
    if context_s is None:
        return None
    context = (project_dir / context_s).resolve()
    dockerfile = (project_dir / dockerfile_s).resolve() if dockerfile_s else context / "Dockerfile"
    if pin is None:
        # A pinned app is not built, so its build inputs may be gone (rollback to an old digest).
        if not context.is_dir():
            r.problem(f"{key}.context", repr(context_s), f"an existing build directory; looked for {context}")
        elif not dockerfile.is_file():
            dkey = f"{key}.dockerfile" if dockerfile_s else f"{key}.dockerfile (default <context>/Dockerfile)"
            r.problem(
                dkey, repr(dockerfile_s or "Dockerfile"), f"an existing Dockerfile; looked for {dockerfile}"
            )
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


def _source(r: Reader, key: str, value: Any, image: ImageConfig | None) -> SourceConfig | None:
    obj = r.object(key, value, required=True)
    if obj is None:
        return None
    repo_url = r.string(f"{key}.repoURL", obj.get("repoURL"))
    if repo_url is not None and not _REPO_URL.match(repo_url):
        r.problem(
            f"{key}.repoURL", repr(repo_url), "an http(s):// or ssh:// Git URL, or git@host:org/repo.git"
        )
        repo_url = None
    revision = r.string(f"{key}.targetRevision", obj.get("targetRevision"))
    path = r.string(f"{key}.path", obj.get("path"))
    if path is not None and (path.startswith("/") or ".." in Path(path).parts):
        r.problem(f"{key}.path", repr(path), "a folder relative to the repository root, without '..'")
        path = None
    kind = r.choice(f"{key}.type", obj.get("type"), SOURCE_TYPES)
    image_name = r.string(f"{key}.imageName", obj.get("imageName"), required=False)
    if image_name is not None and kind == "helm":
        r.problem(f"{key}.imageName", repr(image_name), "no imageName for a helm source (kustomize only)")
    r.unknown_keys(key, obj, ("repoURL", "targetRevision", "path", "type", "imageName"))
    if None in (repo_url, revision, path, kind) or image is None:
        return None
    assert repo_url and revision and path and kind
    return SourceConfig(
        repo_url=repo_url,
        target_revision=revision,
        path=path,
        type="helm" if kind == "helm" else "kustomize",
        image_name=image_name or image.repository,
    )


def _health(r: Reader, key: str, value: Any) -> HealthConfig | None:
    obj = r.object(key, value, required=True)
    if obj is None:
        return None
    url = r.string(f"{key}.url", obj.get("url"))
    if url is not None and not re.match(r"^https?://[^\s/]+", url):
        r.problem(f"{key}.url", repr(url), "an http:// or https:// URL")
        url = None
    d = HealthConfig(url="")
    status = r.integer(
        f"{key}.expectedStatus",
        obj.get("expectedStatus"),
        default=d.expected_status,
        minimum=100,
        maximum=599,
    )
    latency = r.number(f"{key}.maxLatencyMs", obj.get("maxLatencyMs"), default=d.max_latency_ms)
    attempts = r.integer(f"{key}.attempts", obj.get("attempts"), default=d.attempts, minimum=1, maximum=1000)
    interval = r.number(f"{key}.intervalSeconds", obj.get("intervalSeconds"), default=d.interval_seconds)
    timeout = r.number(f"{key}.timeoutSeconds", obj.get("timeoutSeconds"), default=d.timeout_seconds)
    threshold = r.integer(
        f"{key}.successThreshold",
        obj.get("successThreshold"),
        default=d.success_threshold,
        minimum=1,
        maximum=1000,
    )
    headers = r.string_map(f"{key}.headers", obj.get("headers"), key_pattern=_HEADER_NAME)
    verify = r.boolean(f"{key}.verifyTls", obj.get("verifyTls"), default=True)
    r.unknown_keys(
        key,
        obj,
        (
            "url",
            "expectedStatus",
            "maxLatencyMs",
            "attempts",
            "intervalSeconds",
            "timeoutSeconds",
            "successThreshold",
            "headers",
            "verifyTls",
        ),
    )
    if attempts is not None and threshold is not None and threshold > attempts:
        r.problem(
            f"{key}.successThreshold",
            str(threshold),
            f"at most attempts ({attempts}): the check could never pass",
        )
    if None in (url, status, latency, attempts, interval, timeout, threshold, headers, verify):
        return None
    assert url and status and latency and attempts and interval and timeout and threshold
    budget = worst_case_seconds(attempts, interval, timeout)
    if budget > MAX_HEALTH_BUDGET_SECONDS:
        r.problem(
            key,
            f"attempts={attempts}, intervalSeconds={interval:g}, timeoutSeconds={timeout:g} "
            f"(worst case {budget:.0f} s)",
            f"a worst-case check time of at most {MAX_HEALTH_BUDGET_SECONDS} s (15 minutes)",
        )
        return None
    return HealthConfig(
        url=url,
        expected_status=status,
        max_latency_ms=latency,
        attempts=attempts,
        interval_seconds=interval,
        timeout_seconds=timeout,
        success_threshold=threshold,
        headers=headers or {},
        verify_tls=bool(verify),
    )
