"""The failure-cause table (deploy/causes.py), as a table: the messages our components really print
(produced here by running them: the registry client against a real registry, the lint gate, the
HealthCheck over gRPC), pulumi-docker's and pulumi-kubernetes' wording from their source, and the
recorded engine streams."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from pulumi.automation.events import DiagnosticEvent, EngineEvent

from clients.dockerlint import DockerfileLint, LintReport, failure_message
from clients.hadolint import Finding, LintError, find_hadolint, run_hadolint
from clients.registry import RegistryClient
from clients.registry_session import RegistryError
from components.health import HealthCheckProvider
from components.image_size import ImageSizeProvider
from components.registry_preflight import RegistryPreflightProvider
from deploy.causes import (
    PROGRAM,
    RULES,
    cause_of,
    classify,
    failures,
    matching_rule,
    registry_host,
    summary,
)
from model.config import BuildConfig
from model.names import (
    APPLICATION_TYPE,
    DOCKER_IMAGE_TYPE,
    HEALTH_CHECK_TYPE,
    IMAGE_SIZE_TYPE,
    REGISTRY_PREFLIGHT_TYPE,
    SECRET_TYPE,
)
from model.record import CAUSES, Cause
from tests.deploy.test_deploy_degraded import WEB_HEALTH
from tests.support.dynamic_provider import DynamicProviderServer
from tests.support.engine_events import check_failure_text, init_error_text, load_case
from tests.support.health_servers import Reply, ScriptedServer
from tests.support.processes import free_port
from tests.support.registry import LocalRegistry, NotARegistry

HOST = "registry.example.com"
PASSWORD = "cause-test-password-7f3a"
WRONG = "not-the-password"
DIGEST = "sha256:" + "c" * 64
APP_URN = (
    "urn:pulumi:prod::gitops-deploy::gitops-deploy:index:AppRelease$gitops-deploy:index:ArgoApplication$"
    f"{APPLICATION_TYPE}::web-argocd-application"
)
WAIT_SYNC = 'Waiting for {.status.sync.status}=Synced (found "OutOfSync")'
NOTHING_SYNC = "{.status.sync.status} selected nothing"
WAIT_HEALTH = f'Waiting for {WEB_HEALTH} (found "Degraded")'
FOUND_HEALTH = f"Found {WEB_HEALTH}"
API_IMAGE_URN = (
    "urn:pulumi:prod::gitops-deploy::gitops-deploy:index:AppRelease$gitops-deploy:index:AppImage$"
    f"{DOCKER_IMAGE_TYPE}::api-image-image"
)
WAIT_PROGRESSING = f'Waiting for {WEB_HEALTH} (found "Progressing")'
STOPPED_WAIT = (
    f'update of resource "{APP_URN}" failed: context canceled\nunable to get cluster state: Get "https://'
    'mgmt.k8s.example.com/apis/argoproj.io/v1alpha1/namespaces/argocd/applications/web": context canceled'
)
AWAIT_TIMEOUT_UPDATE = (
    'the Kubernetes API server reported that "argocd/web" failed to fully initialize or become live: '
    "timed out waiting for the condition"
)
AWAIT_TIMEOUT_CREATE = (
    f'resource "{APP_URN}" was successfully created, but the Kubernetes API server reported that it '
    "failed to fully initialize or become live: timed out waiting for the condition"
)

# (type, message, await status line or None, registry host or None, cause): the wording is quoted from
# the file named in each comment.
TABLE: list[tuple[str, str, str | None, str | None, Cause]] = [
    # pulumi-docker v4.11.2 provider/image.go, processLogLine: a 401 in the push stream, and "EOF".
    (DOCKER_IMAGE_TYPE, "authentication is required", None, HOST, "registry-auth"),
    (
        DOCKER_IMAGE_TYPE,
        "EOF\n: This error is most likely due to incorrect or mismatched registry credentials. Please double "
        "check you are using the correct credentials and registry name",
        None,
        HOST,
        "registry-auth",
    ),
    # The Docker daemon's push errors, passed through as jm.Error.Message.
    (DOCKER_IMAGE_TYPE, "unauthorized: authentication required", None, HOST, "registry-auth"),
    (DOCKER_IMAGE_TYPE, "denied: requested access to the resource is denied", None, HOST, "registry-auth"),
    (
        DOCKER_IMAGE_TYPE,
        f'Get "https://{HOST}/v2/": dial tcp 10.0.0.5:443: connect: connection refused',
        None,
        HOST,
        "registry-unreachable",
    ),
    (
        DOCKER_IMAGE_TYPE,
        f'Get "https://{HOST}/v2/": net/http: TLS handshake timeout',
        None,
        HOST,
        "registry-unreachable",
    ),
    # A base image the build cannot pull is a build failure (base-image version, missing image) ...
    (
        DOCKER_IMAGE_TYPE,
        "pull access denied for python, repository does not exist or may require 'docker login': denied: "
        "requested access to the resource is denied",
        None,
        HOST,
        "build",
    ),
    (DOCKER_IMAGE_TYPE, "manifest for python:3.99-slim not found: manifest unknown", None, HOST, "build"),
    # ... and so is a network error that does not name the stack's registry (the base image's registry).
    (
        DOCKER_IMAGE_TYPE,
        'Get "https://registry-1.docker.io/v2/": dial tcp: lookup registry-1.docker.io: no such host',
        None,
        HOST,
        "build",
    ),
    (DOCKER_IMAGE_TYPE, f'Get "https://{HOST}/v2/": dial tcp: connection refused', None, None, "build"),
    # BuildKit's and the classic builder's failed RUN; pulumi-docker's own build errors.
    (
        DOCKER_IMAGE_TYPE,
        'process "/bin/sh -c pip install -r requirements.txt" did not complete successfully: exit code: 1',
        None,
        HOST,
        "build",
    ),
    (DOCKER_IMAGE_TYPE, "The command '/bin/sh -c exit 1' returned a non-zero code: 1", None, HOST, "build"),
    (DOCKER_IMAGE_TYPE, "failed to connect to any docker daemon", None, HOST, "build"),
    (DOCKER_IMAGE_TYPE, "error reading build output: unexpected EOF", None, HOST, "build"),
    # pulumi-kubernetes provider.go: every await error, with the waiting condition from jsonpath.go.
    (APPLICATION_TYPE, init_error_text(AWAIT_TIMEOUT_UPDATE), WAIT_SYNC, None, "sync"),
    (APPLICATION_TYPE, init_error_text(AWAIT_TIMEOUT_UPDATE), NOTHING_SYNC, None, "sync"),
    (APPLICATION_TYPE, init_error_text(AWAIT_TIMEOUT_UPDATE), WAIT_HEALTH, None, "health"),
    (APPLICATION_TYPE, init_error_text(AWAIT_TIMEOUT_CREATE), WAIT_HEALTH, None, "health"),
    # Argo CD never reported a status at all: the sync wait ran out.
    (APPLICATION_TYPE, init_error_text(AWAIT_TIMEOUT_UPDATE), None, None, "sync"),
    (
        APPLICATION_TYPE,
        "server-side apply field conflict detected, see https://www.pulumi.com/registry/packages/kubernetes/"
        "how-to-guides/managing-resources-with-server-side-apply/ for troubleshooting help\n"
        'The resource managed by field manager "pulumi-kubernetes-1a2b" had an apply conflict: '
        'Apply failed with 1 conflict: conflict with "argocd-server": .spec.source.helm.parameters',
        None,
        None,
        "sync",
    ),
    (
        APPLICATION_TYPE,
        init_error_text('Resource operation was cancelled for "web"'),
        WAIT_SYNC,
        None,
        "other",
    ),
    # The deploy stopped the wait once Argo CD had reported the release Degraded for the grace period
    # (deploy/degraded.py); provider.go `Update` cannot read the object back with the cancelled context.
    (APPLICATION_TYPE, STOPPED_WAIT, WAIT_HEALTH, None, "health"),
    # The same interruption while the release was only Progressing, or not Synced, is not the release's.
    (APPLICATION_TYPE, STOPPED_WAIT, WAIT_PROGRESSING, None, "other"),
    (APPLICATION_TYPE, STOPPED_WAIT, WAIT_SYNC, None, "other"),
    (DOCKER_IMAGE_TYPE, "error reading build output: context canceled", None, HOST, "other"),
    (
        APPLICATION_TYPE,
        f'creation of resource "{APP_URN}" with kind argoproj.io/v1alpha1, Kind=Application failed because '
        "the Kubernetes API server reported that the apiVersion for this resource does not exist. Verify "
        "that any required CRDs have been created: no matches for kind",
        None,
        None,
        "other",
    ),
    # A HealthCheck that refused its inputs in `check` is a config problem, not an unhealthy release.
    (
        HEALTH_CHECK_TYPE,
        check_failure_text(
            HEALTH_CHECK_TYPE,
            "web-health",
            "got 'ftp://x'; expected an http:// or https:// URL with a host",
            prop="url",
            value="{ftp://x}",
        ),
        None,
        None,
        "other",
    ),
    # components/health.py: the dynamic provider's traceback ending in HealthCheckFailed and its report.
    (
        HEALTH_CHECK_TYPE,
        'Traceback (most recent call last):\n  File "components/health.py", line 232, in _probe\n'
        "components.health.HealthCheckFailed: health check GET https://web.example.com/healthz FAILED after "
        "3 of 3 attempts in 0.33 s (worst case 4.8 s)\nverdict: failed",
        None,
        None,
        "health",
    ),
    # The engine's repetitions, a config error, a cancellation, and types the table does not know.
    (PROGRAM, "update failed", None, None, "other"),
    (PROGRAM, "an unhandled error occurred: program exited with non-zero exit code: 1", None, None, "other"),
    (PROGRAM, "update canceled", None, None, "other"),
    (PROGRAM, "gitops-deploy:apps[0].name: got 'Web'; expected a DNS label", None, None, "other"),
    (SECRET_TYPE, 'secrets "web-registry" is forbidden: User cannot create', None, None, "other"),
    ("", "Program failed with an unhandled exception:\nTraceback ...", None, None, "other"),
]


@pytest.mark.parametrize(("type_", "message", "status", "host", "cause"), TABLE)
def test_the_table(type_: str, message: str, status: str | None, host: str | None, cause: Cause) -> None:
    assert classify(type_, message, registry_host=host, status=status) == cause


def test_every_rule_is_exercised_and_every_cause_is_reachable() -> None:
    """Each row of RULES decides at least one case above (or below, from real components)."""
    used = {matching_rule(t, m, registry_host=h, status=s) for t, m, s, h, _ in TABLE} - {None}
    # The registry client's and the lint gate's rows are exercised with real messages further down.
    real = {rule for rule in RULES if set(rule.types) & {REGISTRY_PREFLIGHT_TYPE, PROGRAM}}
    assert used | real == set(RULES)
    # `soak` is the soak phase's own (deploy/soak_phase.py): no engine message carries it.
    assert {r.cause for r in RULES} | {"policy", "soak", "other"} == set(CAUSES)
    for rule in RULES:
        assert rule.source, rule


# --- real messages from our components ------------------------------------------------------------------


@pytest.fixture(scope="module")
def registry() -> Iterator[LocalRegistry]:
    with LocalRegistry(users={"alice": PASSWORD}) as local:
        yield local


def _preflight_error(server: str, user: str, password: str, **kwargs: Any) -> str:
    with (
        RegistryClient(server, user, password, insecure=True, **kwargs) as client,
        pytest.raises(RegistryError) as info,
    ):
        client.preflight(["team/web"])
    return str(info.value)


def _as_check_failure(reason: str) -> str:
    return check_failure_text(REGISTRY_PREFLIGHT_TYPE, "registry-preflight", reason)


def test_registry_preflight_failures_from_a_real_registry(registry: LocalRegistry) -> None:
    wrong = _preflight_error(registry.server, "alice", WRONG)
    stranger = _preflight_error(registry.server, "mallory", PASSWORD)
    down = _preflight_error(f"127.0.0.1:{free_port()}", "alice", PASSWORD)
    web = NotARegistry()
    try:
        not_registry = _preflight_error(web.server, "alice", PASSWORD)
    finally:
        web.stop()
    for reason in (wrong, stranger):
        assert classify(REGISTRY_PREFLIGHT_TYPE, _as_check_failure(reason)) == "registry-auth", reason
    for reason in (down, not_registry):
        assert classify(REGISTRY_PREFLIGHT_TYPE, _as_check_failure(reason)) == "registry-unreachable", reason
    assert summary(_as_check_failure(wrong)) == wrong


def test_the_preflight_over_grpc_says_401_the_way_the_table_reads_it(registry: LocalRegistry) -> None:
    inputs = {
        "server": registry.server,
        "username": "alice",
        "password": WRONG,
        "repositories": ["team/web"],
        "insecure": True,
        "timeout_seconds": 5,
        "provider_version": "1",
    }
    with DynamicProviderServer(RegistryPreflightProvider()) as server:
        ((prop, reason),) = server.check(inputs).failures
    assert prop == ""
    assert classify(REGISTRY_PREFLIGHT_TYPE, _as_check_failure(reason)) == "registry-auth"


def test_image_size_failures_over_grpc_carry_the_registry_cause(registry: LocalRegistry) -> None:
    inputs = {
        "image": f"{registry.server}/team/web@{DIGEST}",
        "server": registry.server,
        "username": "alice",
        "password": WRONG,
        "platform": "linux/amd64",
        "insecure": True,
        "timeout_seconds": 5,
        "provider_version": "1",
    }
    with DynamicProviderServer(ImageSizeProvider()) as server:
        with pytest.raises(grpc.RpcError) as denied:
            server.create(inputs)
        with pytest.raises(grpc.RpcError) as missing:
            server.create({**inputs, "password": PASSWORD})
        down = {**inputs, "server": f"127.0.0.1:{free_port()}"}
        down["image"] = f"{down['server']}/team/web@{DIGEST}"
        with pytest.raises(grpc.RpcError) as unreachable:
            server.create(down)
    # The engine reports a provider error as its text (GetResourceOperationFailedError, "%v").
    assert classify(IMAGE_SIZE_TYPE, str(denied.value.details())) == "registry-auth"
    assert classify(IMAGE_SIZE_TYPE, str(unreachable.value.details())) == "registry-unreachable"
    assert classify(IMAGE_SIZE_TYPE, str(missing.value.details())) == "other"
    assert summary(str(missing.value.details())).startswith(f"image size of {inputs['image']}: ")


def test_a_failed_health_check_over_grpc_is_health_with_its_report_as_the_message() -> None:
    with (
        DynamicProviderServer(HealthCheckProvider()) as server,
        ScriptedServer({"/healthz": [Reply(503)]}) as web,
    ):
        checked = server.check(
            {
                "url": web.url("/healthz"),
                "attempts": 2,
                "interval_seconds": 0.05,
                "timeout_seconds": 1,
                "success_threshold": 1,
            }
        )
        with pytest.raises(grpc.RpcError) as info:
            server.create(checked.inputs)
    details = str(info.value.details())
    assert details.startswith("components.health.HealthCheckFailed: "), "one line, no traceback"
    assert classify(HEALTH_CHECK_TYPE, details) == "health"
    line = summary(details)
    assert line.startswith(f"health check GET {web.url('/healthz')} FAILED after 2 of 2 attempts"), line


def _lint_report(tmp: Path) -> LintReport:
    finding = Finding(tmp / "Dockerfile", 1, "DL3007", "warning", "Using latest is prone to errors")
    result = DockerfileLint(tmp / "Dockerfile", "examples/app/Dockerfile", ("web",), (finding,), ())
    return LintReport(threshold=BuildConfig().lint_threshold, results=(result,))


def test_every_lint_gate_error_is_lint(tmp_path: Path) -> None:
    messages = [failure_message(_lint_report(tmp_path))]
    with pytest.raises(LintError) as not_found:
        find_hadolint(scripts_dir=str(tmp_path), path=str(tmp_path))
    with pytest.raises(LintError) as not_started:
        run_hadolint([tmp_path / "Dockerfile"], binary=str(tmp_path / "no-hadolint"), timeout=5)
    messages += [str(not_found.value), str(not_started.value)]
    for message in messages:
        # The Python host logs a RunError's text as an error naming no resource.
        assert classify(PROGRAM, message) == "lint", message
    assert classify(PROGRAM, "gitops-deploy:build.ignore: got 'x'; see Dockerfile lint failed") == "other"


# --- whole recorded streams -------------------------------------------------------------------------------

STREAM_CAUSES: dict[str, list[tuple[Cause, str | None] | None]] = {
    "good": [None],
    "registry_401": [("registry-auth", None)],
    "lint": [("lint", None)],
    "build_failure": [("build", "web")],
    "policy_violation": [("policy", "web")],
    "health_rollback": [("health", "web"), None],
    # The rollback's Application timed out while Argo CD reported it Degraded: health again.
    "rollback_fails": [("health", "web"), ("health", "web")],
    # The deploy stopped web's wait, Degraded for the grace period: its interrupted Application is health.
    "degraded_rollback": [("health", "web"), None],
}


@pytest.mark.parametrize("case", sorted(STREAM_CAUSES))
def test_the_cause_of_each_recorded_stream(case: str) -> None:
    got = []
    for up in load_case(case):
        first = cause_of(up)
        got.append(None if first is None else (first.cause, first.app))
    assert got == STREAM_CAUSES[case]


def test_an_interruption_is_never_the_cause_when_something_else_failed() -> None:
    [release, _] = load_case("degraded_rollback")
    first_error = next(
        i for i, e in enumerate(release) if e.diagnostic_event and e.diagnostic_event.severity == "error"
    )
    # An app's build, interrupted by the same cancel and reported first in the stream.
    build = EngineEvent.from_json(
        {
            "sequence": 0,
            "timestamp": release[first_error].timestamp,
            "diagnosticEvent": {
                "urn": API_IMAGE_URN,
                "message": "<{%reset%}>error reading build output: context canceled<{%reset%}>\n",
                "color": "raw",
                "severity": "error",
            },
        }
    )
    stream = [*release[:first_error], build, *release[first_error:]]
    interrupted, degraded = (f for f in failures(stream) if not f.repeat)
    assert (interrupted.cause, interrupted.interrupted) == ("other", True)
    assert (degraded.cause, degraded.app, degraded.interrupted) == ("health", "web", False)
    assert degraded.message == f'the deploy stopped the wait: Waiting for {WEB_HEALTH} (found "Degraded")'
    assert cause_of(stream) == degraded


def test_recorded_messages_are_shown_without_their_wrapping() -> None:
    [up] = load_case("registry_401")
    (failure,) = failures(up)
    assert failure.message == (
        f"registry {HOST} (user 'ci-pusher'): wrong credentials: GET https://{HOST}/v2/ answered 401 "
        "Unauthorized (unknown user or wrong password)"
    )
    [up] = load_case("lint")
    lint, repeat = failures(up)
    assert (lint.cause, lint.repeat, repeat.repeat) == ("lint", False, True)
    assert lint.message.startswith("Dockerfile lint failed: 1 finding(s)")
    [up] = load_case("policy_violation")
    (policy,) = failures(up)
    assert policy.message.startswith("gitops-deploy/image-size-limit: Application 'argocd/web': image size")
    assert policy.urn is not None and policy.urn.endswith("::web-argocd-application")
    release, rollback = load_case("rollback_fails")
    health, closing = failures(release)
    assert (health.cause, closing.repeat) == ("health", True)
    assert re.match(
        r"health check GET https://web\.example\.com/healthz FAILED after 10 of 10", health.message
    )
    timed_out, _ = failures(rollback)
    assert timed_out.message == AWAIT_TIMEOUT_UPDATE


def test_the_registry_host_comes_from_the_prelude_config() -> None:
    [up] = load_case("build_failure")
    assert registry_host(up) == HOST
    assert registry_host([]) is None


def _diag(
    seq: int, urn: str | None, message: str, severity: str, ephemeral: bool | None = None
) -> EngineEvent:
    return EngineEvent(
        sequence=seq,
        timestamp=0,
        diagnostic_event=DiagnosticEvent(message, "raw", severity, urn=urn, ephemeral=ephemeral),
    )


def test_only_the_last_waiting_line_decides_between_sync_and_health() -> None:
    failure = init_error_text(AWAIT_TIMEOUT_UPDATE)
    stuck_on_sync = [
        _diag(0, APP_URN, WAIT_HEALTH, "info", ephemeral=True),
        _diag(1, APP_URN, WAIT_SYNC, "info", ephemeral=True),
        _diag(2, APP_URN, FOUND_HEALTH, "info", ephemeral=True),  # not a waiting line: ignored
        _diag(3, APP_URN, failure, "error"),
    ]
    assert [f.cause for f in failures(stuck_on_sync)] == ["sync"]
    stuck_on_health = [*stuck_on_sync[:3], _diag(3, APP_URN, WAIT_HEALTH, "info", ephemeral=True)]
    assert [f.cause for f in failures([*stuck_on_health, _diag(4, APP_URN, failure, "error")])] == ["health"]
    # Another resource's waiting line does not count.
    other = APP_URN.replace("web-argocd", "api-argocd")
    mixed = [_diag(0, other, WAIT_HEALTH, "info", ephemeral=True), _diag(1, APP_URN, failure, "error")]
    assert [f.cause for f in failures(mixed)] == ["sync"]


def test_warnings_and_advisory_policies_are_not_failures() -> None:
    [up] = load_case("good")
    assert failures(up) == []
    assert failures([_diag(0, APP_URN, "something odd", "warning")]) == []
    assert cause_of([]) is None


def test_summary_keeps_one_line_and_bounds_its_length() -> None:
    assert summary("<{%reset%}>first\nsecond<{%reset%}>\n") == "first"
    long = summary("x" * 1000)
    assert len(long) == 240 and long.endswith("…")
    assert summary(init_error_text("first reason", "second reason")) == "first reason"
    assert summary(init_error_text("only reason")) == "only reason"


def test_errors_an_sdk_files_under_the_stack_read_as_the_programs_own() -> None:
    stack = "urn:pulumi:prod::gitops-deploy::pulumi:pulumi:Stack::gitops-deploy-prod"
    lint, closing = failures(
        [
            _diag(0, stack, "<{%reset%}>Dockerfile lint failed: 1 finding(s)<{%reset%}>\n", "error"),
            _diag(1, None, "<{%reset%}>update failed<{%reset%}>\n", "error"),
        ]
    )
    assert (lint.cause, lint.repeat, lint.app) == ("lint", False, None)
    assert closing.repeat
    (only,) = failures([_diag(0, stack, "update failed", "error")])
    assert (only.cause, only.repeat) == ("other", True)
