"""Every `gitops-deploy:*` key, defined once: its type, default, range or format and one-line doc.

The JSON Schema that validates a stack, the typed config's defaults, Pulumi.yaml's config reference and
docs/config.md all derive from `KEYS` (`python -m model.config_docs` writes the last two).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Sequence
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker

from model.config_key import Key, json_schema, label, obj, string_map, strings, text, whole
from model.failed_releases import RELEASE_REF
from model.health_settings import DEFAULTS, SETTINGS
from model.http_origin import server_problem, url_problem
from model.image_ref import REPO_DIGEST
from model.k8s_names import DNS1123_LABEL
from model.names import PROJECT
from model.runtime import RULE_LEVELS

NAMESPACE = PROJECT
IN_CLUSTER_SERVER = "https://kubernetes.default.svc"
ARGOCD_NAMESPACE, ARGOCD_PROJECT = "argocd", "default"
DEFAULT_SYNC_TIMEOUT_SECONDS = 75
"""A failed release waits and probes twice: with the default gate it fits the default budget
(`python -m model.budget` prints the figures)."""
MIN_SYNC_SECONDS, MAX_SECONDS = 30, 7200
DEFAULT_BUDGET_SECONDS = 300
"""The pipeline this project replaces aimed at deploys under 5 minutes."""
MIN_BUDGET_SECONDS, MAX_OPERATION_WAIT_SECONDS = 60, 3600
DEFAULT_DEGRADED_GRACE_SECONDS = 30
DEFAULT_SOAK_SECONDS, MAX_SOAK_SECONDS = 300, 3600
"""The pipeline this project replaces watched every release for 5 minutes after its deploy."""
DEFAULT_SOAK_INTERVAL_SECONDS, DEFAULT_SOAK_FAILURES_IN_A_ROW = 10, 3
DEFAULT_SOAK_MAX_ERROR_PERCENT, DEFAULT_SOAK_WINDOW_SECONDS = 50, 60
DEFAULT_SMOKE_PORT, DEFAULT_SMOKE_TIMEOUT_SECONDS, MAX_SMOKE_TIMEOUT_SECONDS = 8080, 60, 600
NOTIFY_FORMATS = ("json", "slack")
DEFAULT_REPLICAS, MAX_REPLICAS = 3, 1000
DEFAULT_PLATFORM, DEFAULT_LINT_THRESHOLD = "linux/amd64", "warning"
LINT_THRESHOLDS = ("error", "warning", "info", "style", "none")
SOURCE_TYPES = ("helm", "kustomize")
UNTRUSTED_REGISTRY = "DL3026"
"""Hadolint's rule for a base image outside `trustedRegistries`; it fails whatever the threshold."""

# Every pattern validates a whole value with `fullmatch`: `re.match` with `$` lets "web\n" through.
REPO_PATH = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*")
REPO_URL = re.compile(r"https?://[^\s/]+/\S*|ssh://[^\s/]+/\S+|[\w.-]+@[\w.-]+:\S+")
_PLATFORM = re.compile(r"[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?")
_RULE_CODE = re.compile("|".join([r"(DL|SC)[0-9]{4}", *RULE_LEVELS]))
_SEGMENT = r"[A-Za-z0-9_.-]{1,100}"
_STACK_REF = re.compile(rf"(?:{_SEGMENT}/{_SEGMENT}/)?{_SEGMENT}")
"""A stack name, or `<org>/<project>/<stack>`, in the characters Pulumi allows (tokens.ParseStackName)."""

FORMATS: dict[str, Callable[[str], bool]] = {
    "dns-label": lambda v: DNS1123_LABEL.problem(v) is None,
    "platform": lambda v: _PLATFORM.fullmatch(v) is not None,
    "rule-code": lambda v: _RULE_CODE.fullmatch(v) is not None,
    "registry-host": lambda v: server_problem(v) is None,
    "git-url": lambda v: REPO_URL.fullmatch(v) is not None,
    "stack-ref": lambda v: _STACK_REF.fullmatch(v) is not None,
    "release-ref": lambda v: RELEASE_REF.fullmatch(v) is not None,
    "http-url": lambda v: url_problem(v, ("http", "https")) is None,
    "repo-digest": lambda v: REPO_DIGEST.fullmatch(v) is not None,
}
"""Whole-string formats: an ECMA-262 `pattern` has no anchor that refuses a trailing newline."""


_HEALTH_DOCS = {
    "url": "http(s) endpoint probed once the app is Healthy; no user:password@ (use healthHeaders).",
    "expectedStatus": "HTTP status a passing probe returns (after same-origin redirects).",
    "maxLatencyMs": "Latency budget of one probe, to the response headers.",
    "attempts": "Most probes made before the check fails.",
    "intervalSeconds": "First wait between probes; waits after failures back off from it.",
    "timeoutSeconds": "Bound on one whole probe (connect, redirects, headers, capped body read).",
    "successThreshold": "Consecutive passing probes needed.",
    "verifyTls": "Verify the endpoint's TLS certificate.",
}


def _health(setting: Any) -> Key:
    limit, default = setting.metadata["limit"], DEFAULTS.get(setting.name)
    doc = _HEALTH_DOCS[limit.key]
    if limit.kind == "whole":
        return whole(doc, default, limit.minimum, limit.maximum)
    if limit.kind == "positive":
        return Key("number", doc, default, format="positive", shown="describe")
    return text(doc, required=True) if limit.kind == "url" else Key("boolean", doc, default)


_IMAGE = {
    "repository": text("<registry.server>/<path>, without tag or digest.", required=True),
    "context": text("Build context, relative to the repository root.", required=True),
    "dockerfile": text("Dockerfile, relative to the repository root (default <context>/Dockerfile)."),
    "platform": text(
        "Target platform of the build.",
        default=DEFAULT_PLATFORM,
        format="platform",
        bad="an os/arch[/variant] platform such as 'linux/amd64'",
    ),
    "buildArgs": string_map("`--build-arg` values."),
    "pin": text("<repository>@sha256:<digest> to deploy instead of building (set by a rollback)."),
}
_SOURCE = {
    "repoURL": text(
        "Git URL: http(s)://, ssh:// or git@host:org/repo.",
        required=True,
        format="git-url",
        bad="an http(s):// or ssh:// Git URL, or git@host:org/repo.git",
        shown="redact",
    ),
    "targetRevision": text("Branch, tag or commit.", required=True),
    "path": text("Folder of the chart or overlay in that repository.", required=True),
    "type": Key("string", "How the folder is rendered.", required=True, choices=SOURCE_TYPES),
    "imageName": text("Kustomize only: the image name the overlay uses (default the repository)."),
    "workload": label("Kustomize only: the overlay's workload that gets `replicas` (default the app)."),
}
_SOAK = {
    "seconds": whole(
        "How long every released app is watched after `up` (0: no soak).",
        DEFAULT_SOAK_SECONDS,
        0,
        MAX_SOAK_SECONDS,
    ),
    "intervalSeconds": whole("Wait between two soak probes.", DEFAULT_SOAK_INTERVAL_SECONDS, 1, 300),
    "failuresInARow": whole(
        "Failed probes in a row that fail the soak (0: this rule is off).",
        DEFAULT_SOAK_FAILURES_IN_A_ROW,
        0,
        100,
    ),
    "maxErrorPercent": whole(
        "Failed probes in the window, in percent, above which the soak fails (100: this rule is off).",
        DEFAULT_SOAK_MAX_ERROR_PERCENT,
        1,
        100,
    ),
    "windowSeconds": whole(
        "The sliding window of maxErrorPercent; judged once a whole window was probed.",
        DEFAULT_SOAK_WINDOW_SECONDS,
        10,
        MAX_SOAK_SECONDS,
    ),
}
_SMOKE = {
    "enabled": Key("boolean", "Run the app's built image alone before anything ships.", True),
    "port": whole(
        "Port the container listens on (the health URL's path is probed there).", DEFAULT_SMOKE_PORT, 1, 65535
    ),
    "env": string_map("Extra environment of the smoke run, e.g. a stub database URL (scrubbed from logs)."),
    "timeoutSeconds": whole(
        "Bound on the whole smoke run: start, probes and clean-up.",
        DEFAULT_SMOKE_TIMEOUT_SECONDS,
        1,
        MAX_SMOKE_TIMEOUT_SECONDS,
    ),
}
_APP = {
    "name": label("DNS-1123 label, unique in the stack; names every resource of the app.", required=True),
    "namespace": label("Namespace the app runs in, on the destination cluster.", required=True),
    "replicas": whole("Replica count handed to the chart or overlay.", DEFAULT_REPLICAS, 1, MAX_REPLICAS),
    "image": obj("How the app's image is built and named.", _IMAGE, required=True),
    "source": obj("Where Argo CD reads the app's manifests.", _SOURCE, required=True),
    "health": obj(
        "The live check that gates a release.",
        {
            **{s.metadata["limit"].key: _health(s) for s in SETTINGS},
            "headers": string_map("Extra request headers (sent as secrets, merged with healthHeaders)."),
        },
        required=True,
    ),
    "soak": obj("This app's soak settings over gitops-deploy:deploy.soak.", _SOAK),
    "smoke": obj(
        "The check's smoke run of the built image (false: off).",
        _SMOKE,
        expected="false, or an object of enabled, port, env and timeoutSeconds",
    ),
}
_ARGOCD = {
    "namespace": label("Namespace of Argo CD; Applications are created there.", default=ARGOCD_NAMESPACE),
    "project": label("Argo CD project of every Application.", default=ARGOCD_PROJECT),
    "context": text("Kube context of the cluster where Argo CD runs (default provider when unset)."),
    "manageProject": Key("boolean", "Declare the AppProject `project`, fenced to this stack.", False),
    "syncTimeoutSeconds": whole(
        "How long `pulumi up` waits for Argo CD to run the release, Synced and Healthy.",
        DEFAULT_SYNC_TIMEOUT_SECONDS,
        MIN_SYNC_SECONDS,
        MAX_SECONDS,
    ),
    "retryRefresh": Key(
        "boolean", "syncPolicy.retry.refresh: retries use the newest revision (Argo CD v3.2+).", True
    ),
    "repoURL": text(
        "This repository's Git URL as Argo CD reads it (the CLI-free check renders its apps).",
        format="git-url",
        bad="this repository's http(s)://, ssh:// or git@host:org/repo URL",
        shown="a value that is not a Git URL",
    ),
}
_BUILD = {
    "lintThreshold": Key(
        "string", "Lowest hadolint level that fails.", DEFAULT_LINT_THRESHOLD, choices=LINT_THRESHOLDS
    ),
    "ignore": strings(
        "Lint rule codes to skip.",
        f"hadolint rule codes such as 'DL3008' or 'SC2086', or {', '.join(RULE_LEVELS)}",
        "rule-code",
    ),
    "trustedRegistries": strings(
        "When set, base images from any other registry fail.",
        "registry hosts such as 'docker.io' or 'registry.example.com:5000' (ports 1-65535)",
        "registry-host",
    ),
    "onPreview": Key("boolean", "Build every image during `pulumi preview` (without pushing).", True),
}
_DEPLOY = {
    "budgetSeconds": whole(
        "Every app's worst case (a release rolled back) must fit this.",
        DEFAULT_BUDGET_SECONDS,
        MIN_BUDGET_SECONDS,
        MAX_SECONDS,
    ),
    "degradedGraceSeconds": whole(
        "How long a release may stay Degraded before `python -m deploy` rolls it back.",
        DEFAULT_DEGRADED_GRACE_SECONDS,
        0,
        MAX_SECONDS,
    ),
    "operationWaitSeconds": whole(
        "Wait for an Argo CD operation the deploy did not start (unset: what the budget leaves).",
        None,
        0,
        MAX_OPERATION_WAIT_SECONDS,
    ),
    "soak": obj("The watch of every released app after `up`, apart from the budget.", _SOAK),
    "environmentUrl": text(
        "The URL of GitHub deployments (default: the first app's health URL).",
        format="http-url",
        bad="an http(s):// URL without user:password@",
        shown="redact",
    ),
}
SOAKED_KEY = "soaked"
"""Runtime config key (`gitops-deploy:soaked`): the JSON `{app: digest}` of the apps whose soak passed,
which `python -m deploy` hands to the one update it runs after a passing soak."""
_STACK_REF_TEXT = (
    "the upstream stack's name ('dev') or '<org>/<project>/<stack>', in letters, digits, '_', '.' and '-'"
)
KEYS: dict[str, Key] = {
    "registry": obj(
        "The container registry every app pushes to.",
        {
            "server": text("Registry host with an optional port, no scheme.", required=True),
            "username": text("User that pushes images; the pull secrets carry it too.", required=True),
            "insecure": Key("boolean", "Plain HTTP or unverified TLS (local registries only).", False),
        },
        required=True,
    ),
    "argocd": obj("Where Argo CD runs and how Applications are declared in it.", _ARGOCD),
    "cluster": obj(
        f"Where the apps run (absent: in-cluster {IN_CLUSTER_SERVER}); exactly one of name and server.",
        {
            "name": text("Cluster secret name registered in Argo CD."),
            "server": text("https:// API server URL of the cluster."),
            "context": text("Kube context the program uses for objects in that cluster (pull secrets)."),
        },
    ),
    "build": obj("How images are linted and built.", _BUILD),
    "apps": Key(
        "array", "The apps of the stack.", required=True, items=obj("", _APP), empty="at least one app"
    ),
    "promote": obj(
        "Build nothing: deploy the digests that passed their health gates in another stack.",
        {
            "from": text(
                "The upstream stack: dev, or <org>/<project>/<stack>.",
                required=True,
                format="stack-ref",
                bad=_STACK_REF_TEXT,
            )
        },
    ),
    "rollbackId": text(
        "Set by python -m deploy during a rollback; not for stack files (every pinned app's gate reruns)."
    ),
    "failedReleases": Key("", "The failed-release record `python -m deploy` hands to one update."),
    SOAKED_KEY: Key(
        "object",
        "Set by python -m deploy once a soak passed: each app's digest that passed it; not for stack files.",
        expected="an object of app names to '<repository>@sha256:<64 hex digits>'",
        values=Key(
            "string",
            format="repo-digest",
            expected="'<repository>@sha256:<64 hex digits>', the digest that passed the app's soak",
            shown="describe",
        ),
    ),
    "allowFailedReleases": strings(
        "'<app>:<content tag>' failed releases that may ship again.",
        "'<app>:<content tag>' naming a recorded failed release, such as 'web:ctx-0123456789ab'",
        "release-ref",
    ),
    "deploy": obj("The deploy's time budget and its early rollback of a Degraded release.", _DEPLOY),
    "registryPassword": text("Registry password or token.", required=True, secret=True),
    "healthHeaders": Key("", "Secret health-check headers per app: {app: {header: value}}.", secret=True),
    "notify": obj(
        "A webhook every deploy event that matters is posted to (`python -m deploy`).",
        {
            "url": text(
                "http(s) URL of the webhook; kept encrypted.",
                required=True,
                format="http-url",
                bad="an http(s):// URL without user:password@",
                shown="a value that is not one (not shown: a webhook's URL holds its token)",
            ),
            "format": Key(
                "string",
                "The body: a versioned JSON document, or Slack's text.",
                "json",
                choices=NOTIFY_FORMATS,
            ),
        },
        secret=True,
    ),
}
PASSWORD_KEY, HEADERS_KEY, NOTIFY_KEY = "registryPassword", "healthHeaders", "notify"

TOP_LEVEL_KEYS = tuple(k for k, key in KEYS.items() if not key.secret)
SECRET_KEYS = tuple(k for k, key in KEYS.items() if key.secret)
"""Keys read as secrets; with TOP_LEVEL_KEYS, every `gitops-deploy:*` key the program knows."""


_CHECKER = FormatChecker(formats=())
for _name, _valid in FORMATS.items():
    _CHECKER.checks(_name)(lambda v, valid=_valid: not isinstance(v, str) or valid(v))
_CHECKER.checks("positive")(
    lambda v: isinstance(v, bool) or not isinstance(v, int | float) or (math.isfinite(v) and v > 0)
)


@functools.cache
def validator(only: tuple[str, ...] = ()) -> Draft202012Validator:
    """The validator of a stack's plain values (keys without the namespace), or of the keys in `only`
    (secret ones too); unknown
    top-level keys are left to `model.config.unknown_key_problems`, which names them with the namespace."""
    keys = {k: v for k, v in KEYS.items() if (k in only if only else not v.secret)}
    schema = {"$schema": Draft202012Validator.META_SCHEMA["$id"], **json_schema(obj("", keys))}
    return Draft202012Validator({**schema, "additionalProperties": True}, format_checker=_CHECKER)


_ROOT = obj("", KEYS)
"""The whole stack's values as one object key."""


def key_at(path: Sequence[str | int]) -> Key | None:
    """The Key a value path is under (list indexes and map names included), or None."""
    key: Key | None = _ROOT
    for part in path:
        if key is None:
            return None
        if isinstance(part, int):
            key = key.items
        else:
            key = key.keys.get(part) if key.keys is not None else key.values
    return key


def default(path: Sequence[str | int]) -> Any:
    """The default of the key at `path` (None when it has none)."""
    key = key_at(path)
    return None if key is None else key.default
