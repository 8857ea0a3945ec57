"""Read a failed `up` from its engine events: which apps failed their release gate, and what to pin."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pulumi.automation.events import EngineEvent

from components.names import (
    APPLICATION_TYPE,
    HEALTH_CHECK_TYPE,
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
# What pulumi-kubernetes says when an awaited object never reached its condition (here: Healthy).
_AWAIT_TIMEOUT = re.compile(r"timed out waiting|failed to fully initialize or become live", re.IGNORECASE)
# The engine's closing line on the stack resource, which only repeats that something failed.
_SUMMARY_LINE = re.compile(r"^(update|preview) failed$", re.IGNORECASE)
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]|<\{%[a-z-]*%\}>")
_DIGEST_REF = re.compile(r"^(?P<repo>[^@\s]+)@sha256:[0-9a-f]{64}$")


def pin_key(index: int) -> str:
    """The config key that pins the app at `index` of `gitops-deploy:apps` (a `--path` key)."""
    return f"{APPS_KEY}[{index}].image.pin"


def urn_type(urn: str) -> str:
    """The resource type of a URN (the last segment of its qualified type)."""
    parts = urn.split("::")
    return parts[2].split("$")[-1] if len(parts) >= 4 else ""


def urn_name(urn: str) -> str:
    """The resource name of a URN."""
    parts = urn.split("::")
    return "::".join(parts[3:]) if len(parts) >= 4 else urn


def _clean(message: str) -> str:
    """A diagnostic's text without colour codes or surrounding blank space."""
    return _ANSI.sub("", message).strip()


@dataclass(frozen=True)
class ResourceFailure:
    """A resource whose operation failed, with the error diagnostics the engine reported for it."""

    urn: str
    type: str
    messages: tuple[str, ...]


@dataclass(frozen=True)
class HealthFailure:
    """An app whose release gate failed: the HealthCheck, or an Application that never became Healthy."""

    app: str
    urn: str
    kind: Literal["health-check", "application"]
    report: str
    """The health report (the failed resource's error text)."""


@dataclass(frozen=True)
class Verdict:
    """What a failed `up` means."""

    health: tuple[HealthFailure, ...]
    other: tuple[str, ...]
    """Failures that are not health failures, one line each: reported as they are, never rolled back."""

    @property
    def rollback(self) -> bool:
        """Roll back only a pure health failure: rerunning would hit any other failure again."""
        return bool(self.health) and not self.other


def failed_resources(events: Iterable[EngineEvent]) -> list[ResourceFailure]:
    """Every resource the engine reported as failed, in the order first seen, with its error text."""
    messages: dict[str, list[str]] = {}
    failed: dict[str, str] = {}
    for event in events:
        diag = event.diagnostic_event
        if diag is not None and diag.severity == "error" and diag.urn:
            text = _clean(diag.message)
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


def _health_failure(failure: ResourceFailure, apps: Iterable[str]) -> HealthFailure | None:
    report = "\n".join(failure.messages) or "no error text was reported"
    if failure.type == HEALTH_CHECK_TYPE:
        kind: Literal["health-check", "application"] = "health-check"
    elif failure.type == APPLICATION_TYPE and _AWAIT_TIMEOUT.search(report):
        kind = "application"
    else:
        return None
    app = app_of(failure.urn, apps)
    return HealthFailure(app, failure.urn, kind, report) if app is not None else None


def classify(events: Sequence[EngineEvent], apps: Iterable[str]) -> Verdict:
    """Sort a failed `up`'s failures into health failures (per app) and everything else."""
    apps = tuple(apps)
    health: list[HealthFailure] = []
    other: list[str] = []
    for failure in failed_resources(events):
        found = _health_failure(failure, apps)
        if found is not None:
            health.append(found)
            continue
        text = "; ".join(failure.messages) or "the operation failed"
        if failure.type == STACK_TYPE:
            lines = [m for m in failure.messages if not _SUMMARY_LINE.match(m)]
            if not lines:
                continue
            text = "; ".join(lines)
        other.append(f"{failure.type} {urn_name(failure.urn)}: {text}")
    for event in events:
        policy = event.policy_event
        if policy is not None and policy.enforcement_level == "mandatory":
            where = urn_name(policy.resource_urn) if policy.resource_urn else "the stack"
            other.append(
                f"policy violation {policy.policy_pack_name}/{policy.policy_name} on {where}: "
                f"{_clean(policy.message)}"
            )
        if event.cancel_event is not None:
            other.append("the update was cancelled")
    return Verdict(tuple(health), tuple(other))


def last_known_good(outputs: Mapping[str, Any]) -> dict[str, str]:
    """Each app's image digest from the stack's `apps` output (before the update), by app name."""
    apps = outputs.get("apps")
    apps = getattr(apps, "value", apps)  # an automation OutputValue, or the plain value
    if not isinstance(apps, Mapping):
        return {}
    good: dict[str, str] = {}
    for name, app in apps.items():
        digest = app.get("imageDigest") if isinstance(app, Mapping) else None
        if isinstance(digest, str) and _DIGEST_REF.match(digest):
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
    value = json.loads(apps_config) if isinstance(apps_config, str) else apps_config
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


def plan_rollback(verdict: Verdict, good: Mapping[str, str], entries: Mapping[str, AppEntry]) -> RollbackPlan:
    """Pin each app that failed its health gate to its last known good digest, where there is one."""
    pins: list[Pin] = []
    stuck: list[str] = []
    for app in dict.fromkeys(f.app for f in verdict.health):
        entry, digest = entries.get(app), good.get(app)
        if entry is None:
            stuck.append(f"{app}: not in {APPS_KEY} any more")
        elif digest is None:
            stuck.append(f"{app}: no last known good digest in the stack's outputs (first deploy?)")
        elif entry.repository is not None and digest.split("@", 1)[0] != entry.repository:
            stuck.append(
                f"{app}: the last known good digest {digest} is not in the configured repository "
                f"{entry.repository}"
            )
        else:
            pins.append(Pin(app, pin_key(entry.index), digest, entry.pin))
    return RollbackPlan(tuple(pins), tuple(stuck))
