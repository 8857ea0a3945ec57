"""One pass over an `up`'s engine events: a small typed record per event, its URN decoded once.

What the stream holds, and when: docs/engine-rules.md#the-engines-event-stream.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pulumi.automation.events import EngineEvent

from model.config import NAMESPACE
from model.http_origin import redact_urls
from model.image_ref import is_repo_digest
from model.names import (
    APP_RELEASE_TYPE,
    APPLICATION_TYPE,
    DOCKER_IMAGE_TYPE,
    HEALTH_CHECK_TYPE,
    IMAGE_SIZE_SUFFIX,
    IMAGE_SIZE_TYPE,
    IMAGE_SUFFIX,
    REGISTRY_PREFLIGHT_TYPE,
    application_resource_name,
    health_check_name,
)
from model.record import Phase

Kind = Literal[
    "pre", "outputs", "failed", "diag", "policy", "stdout", "prelude", "summary", "cancel", "other"
]
REGISTRY_KEY = f"{NAMESPACE}:registry"
"""The prelude carries the stack's config; the registry host comes from this key."""

# The one suffix table: the phase each resource type times, and the suffix its name adds to the app's.
# The docker Image is the AppImage component's child, both named with the image suffix (`web-image-image`).
_APP_PHASES: Mapping[str, tuple[Phase, str]] = {
    DOCKER_IMAGE_TYPE: ("build", IMAGE_SUFFIX + IMAGE_SUFFIX),
    IMAGE_SIZE_TYPE: ("image-size", IMAGE_SIZE_SUFFIX),
    APPLICATION_TYPE: ("sync", application_resource_name("")),
    HEALTH_CHECK_TYPE: ("health", health_check_name("")),
}
INTERRUPTED = re.compile(r"\bcontext canceled\b|\boperation was cancell?ed\b", re.IGNORECASE)
"""An operation a cancel interrupted: Go's `context canceled`, pulumi-kubernetes' cancellationError."""
_COLOUR = re.compile(r"\x1b\[[0-9;]*[A-Za-z]|<\{%[a-z0-9 -]*%\}>")
_TRACEBACK_HEAD = "Traceback (most recent call last):"
_EXCEPTION_LINE = re.compile(r"(?:[A-Za-z_]\w*\.)*(?P<name>[A-Za-z_]\w*): (?P<message>.*)")
# An exception's name as Python prints it: dotted (`components.health.HealthCheckFailed`) or a builtin.
_EXCEPTION_NAME = re.compile(r"[A-Za-z_]\w*\.[\w.]+|[A-Za-z_]\w*(?:Error|Exception|Failed|Failure)")
# go-multierror's list format, in which the engine joins a provider's init-failure reasons.
_MULTIERROR_HEAD = re.compile(r"\d+ errors? occurred:")


def urn_type(urn: str) -> str:
    """The resource type of a URN (the last segment of its parent-qualified type), or ""."""
    parts = urn.split("::")
    return parts[2].split("$")[-1] if len(parts) >= 4 else ""


def urn_name(urn: str) -> str:
    """The resource name of a URN (the URN itself when it is not one)."""
    parts = urn.split("::")
    return "::".join(parts[3:]) if len(parts) >= 4 else urn


def clean(message: str) -> str:
    """A diagnostic's text without colour directives, surrounding blank space or any URL's userinfo."""
    return redact_urls(_COLOUR.sub("", message)).strip()


def exception_text(message: str) -> str:
    """A provider error without its wrapping: a traceback, an exception's name, or a multierror list."""
    text = clean(message)
    lines = text.splitlines()
    if lines and _MULTIERROR_HEAD.fullmatch(lines[0]):
        return "\n".join(line.strip().removeprefix("* ") for line in lines[1:] if line.strip())
    start = 0
    if text.startswith(_TRACEBACK_HEAD):
        found = None
        for i, line in enumerate(lines):
            if line.lstrip().startswith('File "'):
                found = None
            elif found is None and not line.startswith(" ") and _EXCEPTION_LINE.fullmatch(line):
                found = i
        if found is None:
            return text
        start = found
    match = _EXCEPTION_LINE.fullmatch(lines[start]) if lines else None
    name = match.group(0)[: match.start("message") - 2] if match else ""
    if match is None or not (start or _EXCEPTION_NAME.fullmatch(name)):
        return text
    return "\n".join([match.group("message"), *lines[start + 1 :]]).strip()


@dataclass(frozen=True)
class Recognised:
    """What a resource is to the deploy: the phase it times, and its app (None: the whole stack's)."""

    phase: Phase
    app: str | None


def recognise(urn: str) -> Recognised | None:
    """The phase and app of a resource URN, or None when it times no phase."""
    type_, name = urn_type(urn), urn_name(urn)
    if type_ == REGISTRY_PREFLIGHT_TYPE:
        return Recognised("preflight", None)
    phase, suffix = _APP_PHASES.get(type_, (None, ""))
    if phase is None or not name.endswith(suffix) or len(name) == len(suffix):
        return None
    return Recognised(phase, name[: -len(suffix)])


def app_of(urn: str, apps: Iterable[str] | None = None) -> str | None:
    """The app a resource belongs to; among `apps`, also the longest one its name is derived from."""
    found = recognise(urn)
    app = urn_name(urn) if urn_type(urn) == APP_RELEASE_TYPE else found.app if found is not None else None
    if apps is None:
        return app
    known = set(apps)
    if app in known:
        return app
    name = urn_name(urn)
    prefixed = [a for a in known if name == a or name.startswith(f"{a}-")]
    return max(prefixed, key=len) if prefixed else None


@dataclass(frozen=True)
class Event:
    """One engine event as the deploy reads it."""

    kind: Kind
    sequence: int
    timestamp: int
    urn: str = ""
    type: str = ""
    op: str = ""
    """A step's op (`create`, `same`, ...)."""
    severity: str = ""
    """A diagnostic's severity, or a policy violation's enforcement level."""
    ephemeral: bool = False
    text: str = ""
    """The message, through `clean`; a policy violation's raw message."""
    policy: str = ""
    """`pack/policy` of a policy violation."""
    digest: str | None = None
    """The repo digest a docker Image's outputs carry."""
    registry: str | None = None
    """The prelude's registry host."""
    app: str | None = None
    """The app the resource belongs to (`app_of`)."""
    phase: Phase | None = None
    """The phase the resource times (`recognise`)."""

    @property
    def error(self) -> bool:
        """An error diagnostic."""
        return self.kind == "diag" and self.severity == "error"

    @property
    def step(self) -> bool:
        """A step's start or end."""
        return self.kind in ("pre", "outputs", "failed")


def _registry(config: object) -> str | None:
    raw = config.get(REGISTRY_KEY) if isinstance(config, Mapping) else None
    try:
        value = json.loads(raw) if isinstance(raw, str) else None
    except ValueError:
        return None
    server = value.get("server") if isinstance(value, dict) else None
    return server if isinstance(server, str) and server else None


def _decoded(urn: str) -> dict[str, Any]:
    """The app and phase of a resource's URN: the one place URNs are decoded."""
    found = recognise(urn) if urn else None
    return {"app": app_of(urn) if urn else None, "phase": found.phase if found is not None else None}


def event(raw: EngineEvent | Event) -> Event:
    """The deploy's record of one engine event."""
    if isinstance(raw, Event):
        return raw
    at = (raw.sequence, raw.timestamp)
    kinds: tuple[tuple[Kind, object], ...] = (
        ("pre", raw.resource_pre_event),
        ("outputs", raw.res_outputs_event),
        ("failed", raw.res_op_failed_event),
    )
    for kind, payload in kinds:
        meta = getattr(payload, "metadata", None)
        if meta is not None:
            digest = None
            if kind == "outputs" and meta.type == DOCKER_IMAGE_TYPE and meta.new is not None:
                found = (meta.new.outputs or {}).get("repoDigest")
                digest = found if is_repo_digest(found) else None
            return Event(kind, *at, meta.urn, meta.type, meta.op.value, digest=digest, **_decoded(meta.urn))
    if (diag := raw.diagnostic_event) is not None:
        urn = diag.urn or ""
        return Event(
            "diag", *at, urn=urn, type=urn_type(urn), severity=diag.severity,
            ephemeral=bool(diag.ephemeral), text=clean(diag.message), **_decoded(urn),
        )  # fmt: skip
    if (policy := raw.policy_event) is not None:
        urn = policy.resource_urn or ""
        return Event(
            "policy", *at, urn=urn, severity=policy.enforcement_level, text=policy.message,
            policy=f"{policy.policy_pack_name}/{policy.policy_name}", app=app_of(urn) if urn else None,
        )  # fmt: skip
    if raw.stdout_event is not None:
        return Event("stdout", *at, text=clean(raw.stdout_event.message))
    if raw.prelude_event is not None:
        return Event("prelude", *at, registry=_registry(raw.prelude_event.config))
    if raw.summary_event is not None:
        return Event("summary", *at)
    return Event("cancel" if raw.cancel_event is not None else "other", *at)


def decode(stream: Iterable[EngineEvent | Event]) -> list[Event]:
    """The stream's events in sequence order (already decoded ones are kept as they are)."""
    return sorted(map(event, stream), key=lambda e: e.sequence)


@dataclass(frozen=True)
class UpBounds:
    """When one `up` began and ended, by its own events' timestamps (Unix seconds)."""

    start: int
    end: int


def bounds(events: Sequence[Event]) -> UpBounds | None:
    """The first and last timestamp of a stream, or None when it has no events."""
    if not events:
        return None
    stamps = [e.timestamp for e in events]
    return UpBounds(min(stamps), max(stamps))
