"""Why a deploy failed: the failed resource's type and message, classified by one table (RULES).

What counts as a failure, and the engine's wording: docs/engine-rules.md#failure-causes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from pulumi.automation.events import EngineEvent

from components.argo_wait import HEALTH_PATH
from deploy.degraded import DEGRADED_LINE
from deploy.events import INTERRUPTED, Event, app_of, clean, decode, exception_text, urn_name, urn_type
from model.names import (
    APPLICATION_TYPE,
    DOCKER_IMAGE_TYPE,
    HEALTH_CHECK_TYPE,
    IMAGE_SIZE_TYPE,
    REGISTRY_PREFLIGHT_TYPE,
    STACK_TYPE,
)
from model.record import Cause
from model.text import fit

PROGRAM = ""
"""The `type` of a failure that names no resource: the program's or the engine's own error."""
SUMMARY_CHARS = 240


@dataclass(frozen=True)
class Rule:
    """One row of the table: a failure of one of `types` whose message matches is `cause`."""

    cause: Cause
    types: tuple[str, ...]
    """Resource type tokens; `(PROGRAM,)` for errors that name no resource."""
    pattern: re.Pattern[str]
    source: str
    """Where the wording comes from."""
    status: re.Pattern[str] | None = None
    """When set, the resource's last await status line must match too (the Application's wait)."""
    names_registry: bool = False
    """When set, the message must also name the stack's registry host."""


def _re(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE | re.MULTILINE)


_REGISTRY_CLIENT = (REGISTRY_PREFLIGHT_TYPE, IMAGE_SIZE_TYPE)
_REGISTRY_AUTH = _re(
    r"wrong credentials|no (push|pull) permission|no permission:|unsupported auth scheme|names no token realm"
    r"|token service \S+ (did not answer JSON|answered without a token)"
)
_REGISTRY_DOWN = _re(r"unreachable:|TLS [^:;]*failed|not a registry:|answered 5\d\d")
_BASE_IMAGE = _re(r"pull access denied|manifest unknown|manifest for \S+ not found|not found: manifest")
_DOCKER_AUTH = _re(
    r"authentication is required|unauthorized|denied: requested access|mismatched registry credentials"
    r"|no basic auth credentials"
)
_NETWORK = _re(
    r"dial tcp|connection refused|no such host|i/o timeout|TLS handshake timeout|x509:"
    r"|server gave HTTP response to HTTPS client"
)
_AWAIT_CANCELLED = _re(r"operation was cancelled")
_AWAIT_FAILED = _re(r"failed to fully initialize or become live|timed out waiting|failed to initialize")
_APPLY_CONFLICT = _re(
    r"apply conflict|field conflict|the object has been modified|Operation cannot be fulfilled"
)
# An await status line, the last of which names the condition not met yet (jsonpath.go).
_AWAIT_WAITING = _re(r"^(Waiting for \{|\{[^}]*\} selected nothing)")
_HEALTH_STATUS = _re(HEALTH_PATH.pattern)
_CHECK_FAILED = _re(r"resource '[^']*'(: property \S+ value .*)? has a problem:")
_LINT = _re(r"^(Dockerfile lint failed|Dockerfile not found, so it cannot be linted|hadolint\b)")
_ANY = _re(r"")

_APP, _DOCKER, _HEALTH = (APPLICATION_TYPE,), (DOCKER_IMAGE_TYPE,), (HEALTH_CHECK_TYPE,)
_K8S = "pulumi-kubernetes provider.go"
# fmt: off
RULES: tuple[Rule, ...] = (
    Rule("registry-auth", _REGISTRY_CLIENT, _REGISTRY_AUTH, "clients/registry.py"),
    Rule("registry-unreachable", _REGISTRY_CLIENT, _REGISTRY_DOWN, "clients/registry.py"),
    Rule("build", _DOCKER, _BASE_IMAGE, "Docker daemon pull errors, via pulumi-docker"),
    Rule("registry-auth", _DOCKER, _DOCKER_AUTH, "pulumi-docker provider/image.go"),
    Rule("registry-unreachable", _DOCKER, _NETWORK, "Docker daemon push errors, via pulumi-docker",
         names_registry=True),
    Rule("other", _DOCKER, INTERRUPTED, "a cancel interrupted the build (Go's context.Canceled)"),
    Rule("build", _DOCKER, _ANY, "pulumi-docker provider/image.go (runImageBuild)"),
    Rule("health", _APP, INTERRUPTED, "deploy/degraded.py: the deploy stopped a Degraded wait",
         status=DEGRADED_LINE),
    Rule("other", _APP, _AWAIT_CANCELLED, "pulumi-kubernetes await/error.go"),
    Rule("health", _APP, _AWAIT_FAILED, f"{_K8S}, await/condition/jsonpath.go", status=_HEALTH_STATUS),
    Rule("sync", _APP, _AWAIT_FAILED, f"{_K8S}, await/internal/awaiter.go"),
    Rule("sync", _APP, _APPLY_CONFLICT, f"{_K8S} (handleSSAErr)"),
    Rule("other", _HEALTH, _CHECK_FAILED, "pulumi/pulumi sdk/go/common/diag/errors.go"),
    Rule("health", _HEALTH, _ANY, "components/health.py (HealthCheckFailed)"),
    Rule("lint", (PROGRAM,), _LINT, "clients/dockerlint.py, clients/hadolint.py"),
)
# fmt: on
"""First match wins; a failure no rule matches is `other` (policy violations are `policy`; a failed soak,
which no engine event reports, is `soak`: deploy/soak_phase.py)."""

# Lines that only repeat that something failed (deployment_executor.go, program_source.go).
_REPEAT = _re(
    r"\A((update|preview) failed"
    r"|an unhandled error occurred: program exited with non-zero exit code: -?\d+)\Z"
)


def matching_rule(
    type_: str, message: str, *, registry_host: str | None = None, status: str | None = None
) -> Rule | None:
    """The first rule of RULES that matches a failure, if any."""
    for rule in RULES:
        if type_ not in rule.types or not rule.pattern.search(message):
            continue
        if rule.status is not None and (status is None or not rule.status.search(status)):
            continue
        if rule.names_registry and (not registry_host or registry_host.lower() not in message.lower()):
            continue
        return rule
    return None


def classify(
    type_: str, message: str, *, registry_host: str | None = None, status: str | None = None
) -> Cause:
    """The cause of one failure, by the first rule of RULES that matches it (`other` when none does)."""
    rule = matching_rule(type_, message, registry_host=registry_host, status=status)
    return rule.cause if rule is not None else "other"


@dataclass(frozen=True)
class Failure:
    """One thing that failed, and why."""

    cause: Cause
    type: str
    """The failed resource's type token; PROGRAM when it names no resource, "policy" for a violation."""
    urn: str | None
    app: str | None
    message: str
    """One line: the error without the traceback, the colour codes or the engine's wrapping."""
    repeat: bool = False
    """Only repeats that something failed (the engine's closing line): never the deploy's cause."""
    interrupted: bool = False
    """An operation a cancel interrupted (`other`): the deploy's cause only when nothing else failed."""


_CHECK_PREFIX = re.compile(
    r"\A\S+ resource '[^']*'(?:: property (\S+) value .*?)? has a problem: ", re.DOTALL
)


def summary(message: str) -> str:
    """The line worth showing: past a traceback, a multi-error header or a failed check's wrapping."""
    text = clean(message)
    checked = _CHECK_PREFIX.match(text)
    if checked is not None:
        text = (f"{checked.group(1)}: " if checked.group(1) else "") + text[checked.end() :]
    text = exception_text(text)
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    return fit(line, SUMMARY_CHARS)


def _violation(message: str) -> str:
    """pulumi-policy sends the policy's description, then the violation's own text (policy.py)."""
    lines = [line for line in clean(message).splitlines() if line.strip()]
    detail = lines[1:] or lines
    return summary(detail[0]) if detail else ""


def registry_host(stream: Iterable[EngineEvent | Event]) -> str | None:
    """The stack's registry host, from the config the prelude event carries."""
    return next((e.registry for e in decode(stream) if e.kind == "prelude"), None)


def failures(stream: Iterable[EngineEvent | Event]) -> list[Failure]:
    """Every failure of one `up`, in stream order, one per resource (and one per program error)."""
    events = decode(stream)
    host = registry_host(events)
    status: dict[str, str] = {}
    messages: dict[str, list[str]] = {}
    order: list[Failure | tuple[str, str]] = []  # a violation, or ("resource", URN) or ("program", text)
    for e in events:
        if e.error and e.text:
            if e.urn:
                if e.urn not in messages:
                    order.append(("resource", e.urn))
                messages.setdefault(e.urn, []).append(e.text)
            else:
                order.append(("program", e.text))
        elif e.kind == "diag" and e.urn and e.ephemeral and _AWAIT_WAITING.match(e.text):
            status[e.urn] = e.text
        elif e.kind == "failed" and e.urn not in messages:
            order.append(("resource", e.urn))
            messages[e.urn] = []
        elif e.kind == "policy" and e.severity == "mandatory":
            urn = e.urn or None
            message = f"{e.policy}: {_violation(e.text)}"
            order.append(Failure("policy", "policy", urn, e.app, message))
    found: list[Failure] = []
    for item in order:
        if isinstance(item, Failure):
            found.append(item)
            continue
        kind, key = item
        if kind == "program":
            cause = classify(PROGRAM, key)
            found.append(Failure(cause, PROGRAM, None, None, summary(key), repeat=bool(_REPEAT.match(key))))
        elif urn_type(key) == STACK_TYPE:
            # The stack stands for the program: its errors read as the program's own.
            text = "\n".join(messages[key])
            repeat = all(_REPEAT.match(m) for m in messages[key]) if messages[key] else True
            found.append(
                Failure(classify(PROGRAM, text), STACK_TYPE, key, None, summary(text), repeat=repeat)
            )
        else:
            text = "\n".join(messages[key])
            type_ = urn_type(key)
            rule = matching_rule(type_, text, registry_host=host, status=status.get(key))
            cause = rule.cause if rule is not None else "other"
            line = summary(text) or f"{type_} {urn_name(key)}: the operation failed"
            if rule is not None and rule.status is DEGRADED_LINE:
                # The error only says the wait was cut short; what failed is what Argo CD reported.
                line = f"the deploy stopped the wait: {status[key]}"
            cut_short = cause == "other" and bool(INTERRUPTED.search(text))
            found.append(Failure(cause, type_, key, app_of(key), line, interrupted=cut_short))
    return found


def cause_of(events: Iterable[EngineEvent | Event]) -> Failure | None:
    """The deploy's cause: the first failure that is not a mere repetition or an interruption (then the
    first that is not a repetition, then the first at all)."""
    found = failures(events)
    first = next((f for f in found if not f.repeat and not f.interrupted), None)
    return first or next((f for f in found if not f.repeat), found[0] if found else None)
