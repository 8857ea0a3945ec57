"""Read a failed `up` from its engine events: which apps failed their release gate, and what to pin.

How the engine ends a stream, and what a real cancellation looks like (pulumi/pulumi v3.259):

- Every `Update` (and refresh, destroy, import) defers `ctx.Events <- NewCancelEvent()`
  (pkg/engine/update.go), so every stream ends with a `cancelEvent`, whatever happened. It is the
  end-of-stream marker: pkg/backend/display/display.go (`startEventLogger`) stops logging after it,
  and the Automation API's `_watch_logs` stops reading there (pulumi/automation/_stack.py). It never
  means the update was cancelled, so it is never read as a failure here.
- A user's cancellation goes through pkg/backend/cancellation_scope.go: the first SIGINT or SIGTERM
  puts a stdout event "^C received; cancelling." (or "SIGTERM received; cancelling.") into the
  stream and cancels; a second one says "... received; terminating" and terminates.
- A cancelled deployment reports the urn-less error diagnostic "update canceled"
  (`reportExecResult("canceled")`, pkg/resource/deploy/deployment_executor.go), where a failed one
  reports "update failed"; both come just before the summary event. A terminated one ends with
  `context.Canceled`, which the CLI prints as "update cancelled" (`backenderr.CancelledError`,
  pkg/cmd/pulumi/operations/up.go) and, from the CLI that has pkg/cmd/pulumi/cmd/exit_codes.go, exits 8.
- So: an update was cancelled when its stream has the cancelling stdout event or the "update
  canceled" diagnostic, or the CLI's stderr says "update cancelled". The summary event's `result`
  field (added in v3.237) is not used: the Automation API's SummaryEvent drops it, and a graceful
  cancel reports `failed` there anyway (apitype.OperationResultFromError only maps context.Canceled).

Recorded streams in pkg/engine/lifecycletest/testdata/output/*/eventstream.json show these orders;
tests/support/engine_events.py states them once for the tests.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pulumi.automation.events import EngineEvent

from deploy.stream import clean, exception_text, urn_name, urn_type
from model.image_ref import is_repo_digest
from model.names import (
    APPLICATION_TYPE,
    DOCKER_IMAGE_TYPE,
    HEALTH_CHECK_TYPE,
    IMAGE_SUFFIX,
    PROJECT,
    STACK_TYPE,
    application_resource_name,
    health_check_name,
)

APPS_KEY = f"{PROJECT}:apps"
# The release gate of one app (`<app>-health`) and its Application (`<app>-argocd-application`).
_NAME_SUFFIX = {
    HEALTH_CHECK_TYPE: health_check_name(""),
    APPLICATION_TYPE: application_resource_name(""),
}
# pulumi-kubernetes wraps every await error of a created or updated object in "... failed to fully
# initialize or become live: <cause>" (provider/pkg/provider/provider.go, Create and Update), so those
# words alone say nothing about a timeout. The cause is a timeout when the generic awaiter's context
# ran out, which keeps Kubernetes' "timed out waiting for the condition" (provider/pkg/await/internal/
# awaiter.go, `wait.ErrorInterrupted(nil)`), or when a built-in awaiter gave up ("'<name>' timed out
# waiting to be Ready", provider/pkg/await/error.go `timeoutError`). A cancelled wait ("context
# canceled"), a rejected object or a broken await expression is not a timeout, and not a health failure.
_BECOME_LIVE = "failed to fully initialize or become live: "
_AWAIT_TIMEOUT = re.compile(r"^(timed out waiting for the condition|'[^']*' timed out waiting to be Ready)")
# The deployment's closing diagnostic (deployment_executor.go `reportExecResult`): only repeats the outcome.
_CLOSING_LINE = re.compile(r"^(update|preview|refresh|destroy) (failed|canceled)$", re.IGNORECASE)
_CANCELED_LINE = re.compile(r"^update canceled$", re.IGNORECASE)
# A provider whose operation the cancel interrupted: Kubernetes' client-go and pulumi-docker end with Go's
# "context canceled"; pulumi-kubernetes' own cancellationError says "Resource operation was cancelled for"
# (provider/pkg/await/error.go).
_INTERRUPTED = re.compile(r"\bcontext canceled\b|\boperation was cancell?ed\b", re.IGNORECASE)
# cancellation_scope.go's stdout messages.
_CANCELLING = re.compile(r"(\^C|SIGTERM) received; (cancelling|terminating)")
# backenderr.CancelledError{Operation: "update"} as the CLI prints it.
_CLI_CANCELLED = re.compile(r"\berror: update cancelled\b")
# deployment_executor.go `printPendingOperationsWarning`.
_PENDING_HEAD = re.compile(r"with (\d+) pending operations from previous deployment")
_PENDING_ITEM = re.compile(r"^\s*\* (\S+), interrupted while (\w+)")


def pin_key(index: int) -> str:
    """The config key that pins the app at `index` of `gitops-deploy:apps` (a `--path` key)."""
    return f"{APPS_KEY}[{index}].image.pin"


@dataclass(frozen=True)
class ResourceFailure:
    """A resource whose operation failed, with the error diagnostics the engine reported for it."""

    urn: str
    type: str
    messages: tuple[str, ...]


@dataclass(frozen=True)
class HealthFailure:
    """An app whose release gate failed: the HealthCheck, an Application whose wait timed out, or one
    Argo CD reported Degraded for the grace period (the deploy stopped its wait)."""

    app: str
    urn: str
    kind: Literal["health-check", "application", "degraded"]
    report: str
    """The health report (the failed resource's error text, or the Degraded status line)."""


@dataclass(frozen=True)
class Verdict:
    """What a failed `up` means."""

    health: tuple[HealthFailure, ...]
    other: tuple[str, ...]
    """Failures that are not health failures, one line each: reported as they are, never rolled back."""
    cancelled: bool = False
    """The update was cancelled (a signal to the CLI): never rolled back."""
    interrupted: tuple[str, ...] = ()
    """Operations the deploy's own early stop interrupted (`type name`): the rollback `up` runs them again."""

    @property
    def rollback(self) -> bool:
        """Roll back only a pure health failure: rerunning would hit any other failure again."""
        return bool(self.health) and not self.other and not self.cancelled


def failed_resources(events: Iterable[EngineEvent]) -> list[ResourceFailure]:
    """Every resource the engine reported as failed, in the order first seen, with its error text."""
    messages: dict[str, list[str]] = {}
    failed: dict[str, str] = {}
    for event in events:
        diag = event.diagnostic_event
        if diag is not None and diag.severity == "error" and diag.urn:
            text = clean(diag.message)
            if text:
                messages.setdefault(diag.urn, []).append(text)
                failed.setdefault(diag.urn, urn_type(diag.urn))
        op_failed = event.res_op_failed_event
        if op_failed is not None:
            failed.setdefault(op_failed.metadata.urn, op_failed.metadata.type)
    return [ResourceFailure(urn, type_, tuple(messages.get(urn, ()))) for urn, type_ in failed.items()]


def app_of(urn: str, apps: Iterable[str]) -> str | None:
    """The app a HealthCheck or Application URN belongs to, from the resource's name."""
    known = set(apps)
    name = urn_name(urn)
    suffix = _NAME_SUFFIX.get(urn_type(urn))
    if suffix and name.endswith(suffix) and name[: -len(suffix)] in known:
        return name[: -len(suffix)]
    # Otherwise, the longest app name the resource's name is derived from (`<app>-...`).
    prefixed = [a for a in known if name == a or name.startswith(f"{a}-")]
    return max(prefixed, key=len) if prefixed else None


def is_await_timeout(message: str) -> bool:
    """True when a pulumi-kubernetes error is its await running out of time (see `_AWAIT_TIMEOUT`)."""
    for line in clean(message).splitlines():
        _, found, cause = line.partition(_BECOME_LIVE)
        if found and _AWAIT_TIMEOUT.match(cause.strip()):
            return True
    return False


def _health_failure(failure: ResourceFailure, apps: Iterable[str]) -> HealthFailure | None:
    report = "\n".join(exception_text(m) for m in failure.messages) or "no error text was reported"
    if failure.type == HEALTH_CHECK_TYPE:
        kind: Literal["health-check", "application"] = "health-check"
    elif failure.type == APPLICATION_TYPE and any(is_await_timeout(m) for m in failure.messages):
        kind = "application"
    else:
        return None
    app = app_of(failure.urn, apps)
    return HealthFailure(app, failure.urn, kind, report) if app is not None else None


def was_cancelled(events: Sequence[EngineEvent], stderr: str = "") -> bool:
    """True when the update was cancelled or terminated by a signal to the CLI (module docstring)."""
    for event in events:
        stdout = event.stdout_event
        if stdout is not None and _CANCELLING.search(clean(stdout.message)):
            return True
        diag = event.diagnostic_event
        if (
            diag is not None
            and diag.severity == "error"
            and not diag.urn
            and _CANCELED_LINE.match(clean(diag.message))
        ):
            return True
    return bool(_CLI_CANCELLED.search(stderr))


def classify(
    events: Sequence[EngineEvent],
    apps: Iterable[str],
    stderr: str = "",
    *,
    degraded: Mapping[str, tuple[str, str]] | None = None,
) -> Verdict:
    """Sort a failed `up`'s failures into health failures (per app) and everything else.

    `degraded` (app -> (Application URN, report)) names the apps the deploy stopped the update for,
    Argo CD having reported them Degraded for the grace period. That cancel is the deploy's own: it is
    not a cancellation, and what it interrupted is listed in `interrupted`, not as failures.
    """
    apps = tuple(apps)
    stopped = dict(degraded or {})
    health: list[HealthFailure] = [
        HealthFailure(app, urn, "degraded", report) for app, (urn, report) in stopped.items()
    ]
    other: list[str] = []
    interrupted: list[str] = []
    for failure in failed_resources(events):
        found = _health_failure(failure, apps)
        if found is not None and found.app not in stopped:
            health.append(found)
            continue
        if stopped and failure.type != STACK_TYPE and any(_INTERRUPTED.search(m) for m in failure.messages):
            if app_of(failure.urn, apps) not in stopped:
                interrupted.append(f"{failure.type} {urn_name(failure.urn)}")
            continue
        if found is not None:
            continue
        # A check failure already names the resource ("<type> resource '<name>' has a problem: ...").
        own = f"{failure.type} resource '{urn_name(failure.urn)}' "
        messages = [exception_text(m).removeprefix(own) for m in failure.messages]
        if failure.type == STACK_TYPE:
            messages = [m for m in messages if not _CLOSING_LINE.match(m)]
            if not messages:
                continue
        text = "; ".join(messages) or "the operation failed"
        other.append(f"{failure.type} {urn_name(failure.urn)}: {text}")
    for event in events:
        diag = event.diagnostic_event
        if diag is not None and diag.severity == "error" and not diag.urn:
            text = clean(diag.message)
            if text and not _CLOSING_LINE.match(text):
                other.append(text)
        policy = event.policy_event
        if policy is not None and policy.enforcement_level == "mandatory":
            where = urn_name(policy.resource_urn) if policy.resource_urn else "the stack"
            other.append(
                f"policy violation {policy.policy_pack_name}/{policy.policy_name} on {where}: "
                f"{clean(policy.message)}"
            )
    cancelled = was_cancelled(events, stderr) and not stopped
    return Verdict(tuple(health), tuple(other), cancelled, tuple(interrupted))


def pending_operations(events: Iterable[EngineEvent]) -> list[str]:
    """The operations an interrupted update left pending, as the engine warns about them (`urn (op)`)."""
    found: list[str] = []
    for event in events:
        diag = event.diagnostic_event
        if diag is None or diag.severity != "warning" or not _PENDING_HEAD.search(diag.message):
            continue
        for line in clean(diag.message).splitlines():
            item = _PENDING_ITEM.match(line)
            if item:
                found.append(f"{item.group(1)} (interrupted while {item.group(2)})")
    return found


def built_digests(events: Iterable[EngineEvent], apps: Iterable[str]) -> dict[str, str]:
    """Each app's digest that the update pushed, from its docker Image's outputs event."""
    known = set(apps)
    digests: dict[str, str] = {}
    for event in events:
        outputs_event = event.res_outputs_event
        if outputs_event is None or outputs_event.metadata.type != DOCKER_IMAGE_TYPE:
            continue
        # The docker Image is `<app>-image-image`: the AppImage component `<app>-image`, plus its suffix.
        name, suffix = urn_name(outputs_event.metadata.urn), IMAGE_SUFFIX + IMAGE_SUFFIX
        app = name[: -len(suffix)] if name.endswith(suffix) else None
        new = outputs_event.metadata.new
        digest = (new.outputs or {}).get("repoDigest") if new is not None else None
        if app in known and is_repo_digest(digest):
            digests[app] = digest
    return digests


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


@dataclass(frozen=True)
class AppEntry:
    """One app of the stack's `gitops-deploy:apps` config."""

    index: int
    repository: str | None
    pin: str | None


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


@dataclass(frozen=True)
class Pin:
    """Pin one app to its last known good digest for the rollback `up`."""

    app: str
    key: str
    digest: str
    previous: str | None
    """The pin the stack file had before (restored afterwards), usually none."""


@dataclass(frozen=True)
class RollbackPlan:
    """The pins to set, and the failed apps that cannot be rolled back (with why)."""

    pins: tuple[Pin, ...]
    stuck: tuple[str, ...]


def plan_rollback(
    verdict: Verdict,
    good: Mapping[str, str],
    entries: Mapping[str, AppEntry],
    missing: Mapping[str, str] | None = None,
) -> RollbackPlan:
    """Pin each app that failed its health gate to its last known good digest, where there is one.

    `missing` (app -> reason) names apps whose last known good digest the registry no longer has
    (deploy/targets.py): pinning it would deploy an image no node can pull.
    """
    pins: list[Pin] = []
    stuck: list[str] = []
    gone = dict(missing or {})
    for app in dict.fromkeys(f.app for f in verdict.health):
        entry, digest = entries.get(app), good.get(app)
        problem = rollback_problem(app, entry, digest, gone)
        if problem is not None:
            stuck.append(f"{app}: {problem}")
        else:
            assert entry is not None and digest is not None
            pins.append(Pin(app, pin_key(entry.index), digest, entry.pin))
    return RollbackPlan(tuple(pins), tuple(stuck))


def rollback_problem(
    app: str, entry: AppEntry | None, digest: str | None, missing: Mapping[str, str]
) -> str | None:
    """Why this app could not be rolled back, or None when it can."""
    if entry is None:
        return f"not in {APPS_KEY} any more"
    if digest is None:
        return "no last known good digest in the stack's outputs (first deploy?)"
    if entry.repository is not None and digest.split("@", 1)[0] != entry.repository:
        return f"the last known good digest {digest} is not in the configured repository {entry.repository}"
    if app in missing:
        return f"its last known good digest {digest} is gone from the registry ({missing[app]})"
    return None
