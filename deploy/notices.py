"""The notification document: one small versioned JSON per deploy event that matters, and its Slack text.

Every field: docs/visibility.md. Versioned as the deploy record is (model/record.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, get_args

from deploy.targets import short
from model.record import CAUSES, OUTCOMES, Cause, Outcome, SoakRecord
from model.text import slack_text

KIND = "gitops-deploy/notification"
VERSION = 1
"""Raised when a field changes meaning, goes away or is added."""
Event = Literal["gate", "rollback", "soak", "promotion", "stopped", "failed"]
EVENTS: tuple[Event, ...] = get_args(Event)
Stop = Literal["signal", "blocked", "locked"]
STOPS: tuple[Stop, ...] = get_args(Stop)
TEXT_CHARS = 500
"""The longest reason a notification carries: a chat line, not a log."""


def _cut(text: str, limit: int = TEXT_CHARS) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


@dataclass(frozen=True)
class AppVerdict:
    """One app's verdict at the gate or in the soak."""

    app: str
    passed: bool
    reason: str = ""


@dataclass(frozen=True)
class Notice:
    """One notification: what happened to which stack, when, in one line of text, and its details."""

    event: Event
    stack: str
    at: datetime
    text: str
    details: Mapping[str, Any] = field(default_factory=dict)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def to_json(notice: Notice) -> dict[str, Any]:
    """The notification as it is posted (format `json`)."""
    return {
        "kind": KIND,
        "version": VERSION,
        "event": notice.event,
        "stack": notice.stack,
        "at": _iso(notice.at),
        "text": notice.text,
        "details": dict(notice.details),
    }


def to_slack(notice: Notice) -> dict[str, Any]:
    """The notification as Slack's incoming webhooks take it (format `slack`): `{"text": ...}`."""
    return {"text": f"*gitops-deploy {slack_text(notice.stack)}* ({notice.event}): {slack_text(notice.text)}"}


def render(notice: Notice, fmt: Literal["json", "slack"]) -> dict[str, Any]:
    """The body to post in the stack's `gitops-deploy:notify` format."""
    return to_slack(notice) if fmt == "slack" else to_json(notice)


# --- one builder per event ---------------------------------------------------------------------------


def gate(stack: str, at: datetime, verdicts: Sequence[AppVerdict]) -> Notice:
    """The release gate's verdict: every app's health check."""
    failed = [v for v in verdicts if not v.passed]
    if failed:
        text = "; ".join(
            f"{v.app} failed its health gate" + (f": {v.reason}" if v.reason else "") for v in failed
        )
    else:
        text = f"the release passed its health gate ({', '.join(v.app for v in verdicts) or 'no app probed'})"
    apps = [{"app": v.app, "passed": v.passed, "reason": _cut(v.reason) or None} for v in verdicts]
    return Notice("gate", stack, at, _cut(text), {"passed": not failed, "apps": apps})


def rollback(
    stack: str, at: datetime, restored: Mapping[str, str | None], ok: bool, reason: str = ""
) -> Notice:
    """The rollback and its outcome: each rolled-back app and the digest it runs again (None: unknown)."""
    apps = [{"app": app, "digest": digest} for app, digest in restored.items()]
    names = ", ".join(f"{app} to {short(d) if d else 'its last good digest'}" for app, d in restored.items())
    text = (
        f"rolled back {names}; the failed release is not live" if ok
        else f"the rollback of {', '.join(restored)} failed too" + (f": {reason}" if reason else "")
    )  # fmt: skip
    return Notice(
        "rollback", stack, at, _cut(text),
        {"outcome": "restored" if ok else "failed", "apps": apps, "reason": _cut(reason) or None},
    )  # fmt: skip


def soak(stack: str, at: datetime, soaked: Sequence[tuple[str, SoakRecord]]) -> Notice:
    """The soak's verdict: every app watched after the release, and how each one fared."""
    judged = [(app, r) for app, r in soaked if r.verdict != "not-soaked"]
    failed = [(app, r) for app, r in judged if r.verdict == "failed"]
    if failed:
        text = "; ".join(
            f"{app} failed its soak" + (f": {r.reason}" if r.reason else "") for app, r in failed
        )
    else:
        text = "; ".join(
            f"{app} passed its {r.seconds} s soak ({r.failures} of {r.probes} probes failed)"
            for app, r in judged
        )
    apps = [
        {
            "app": app, "passed": r.verdict == "passed", "seconds": r.seconds, "probes": r.probes,
            "failures": r.failures, "errorPercent": round(100 * r.failures / r.probes, 1) if r.probes else 0,
            "reason": _cut(r.reason or "") or None,
        }
        for app, r in judged
    ]  # fmt: skip
    return Notice("soak", stack, at, _cut(text or "no app soaked"), {"passed": not failed, "apps": apps})


def promotion(
    stack: str, at: datetime, upstream: str, outcome: Outcome, digests: Mapping[str, str]
) -> Notice:
    """A promoting stack's deploy of its upstream's digests, and how it ended."""
    shipped = ", ".join(f"{app} {short(d)}" for app, d in digests.items()) or "no app"
    verb = "promoted" if outcome == "succeeded" else f"promotion {outcome}:"
    text = f"{verb} {upstream}'s digests ({shipped})"
    details = {"from": upstream, "outcome": outcome, "digests": dict(digests)}
    return Notice("promotion", stack, at, _cut(text), details)


def stopped(stack: str, at: datetime, by: Stop, reason: str, exit_code: int) -> Notice:
    """A deploy that stopped before its verdict: a signal, a blocked release, a locked stack."""
    return Notice(
        "stopped", stack, at, _cut(f"the deploy stopped ({by}): {reason}"),
        {"by": by, "reason": _cut(reason), "exit": exit_code},
    )  # fmt: skip


def failed(stack: str, at: datetime, cause: Cause | None, reason: str, exit_code: int) -> Notice:
    """A deploy whose update failed outside the gate: nothing was rolled back."""
    text = f"the deploy failed ({cause or 'other'}); nothing was rolled back: {reason}"
    return Notice(
        "failed",
        stack,
        at,
        _cut(text),
        {"cause": cause or "other", "reason": _cut(reason), "exit": exit_code},
    )


# --- the JSON shape ----------------------------------------------------------------------------------

_TEXT = {"type": "string", "minLength": 1}
_OPTIONAL = {"type": ["string", "null"]}
_EXIT = {"type": "integer", "minimum": 0}


def _object(**properties: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "required": list(properties),
        "properties": properties,
        "additionalProperties": False,
    }


_VERDICTS = {"type": "array", "items": _object(app=_TEXT, passed={"type": "boolean"}, reason=_OPTIONAL)}
_SOAKED = {
    "type": "array",
    "items": _object(
        app=_TEXT, passed={"type": "boolean"}, seconds=_EXIT, probes=_EXIT, failures=_EXIT,
        errorPercent={"type": "number", "minimum": 0, "maximum": 100}, reason=_OPTIONAL,
    ),
}  # fmt: skip
DETAILS: Mapping[Event, dict[str, Any]] = {
    "gate": _object(passed={"type": "boolean"}, apps=_VERDICTS),
    "rollback": _object(
        outcome={"enum": ["restored", "failed"]},
        apps={"type": "array", "items": _object(app=_TEXT, digest=_OPTIONAL)},
        reason=_OPTIONAL,
    ),
    "soak": _object(passed={"type": "boolean"}, apps=_SOAKED),
    "promotion": _object(
        **{"from": _TEXT},
        outcome={"enum": list(OUTCOMES)},
        digests={"type": "object", "additionalProperties": _TEXT},
    ),
    "stopped": _object(by={"enum": list(STOPS)}, reason={"type": "string"}, exit=_EXIT),
    "failed": _object(cause={"enum": list(CAUSES)}, reason={"type": "string"}, exit=_EXIT),
}
"""Each event's `details`."""
SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": f"gitops-deploy notification, version {VERSION}",
    **_object(
        kind={"const": KIND}, version={"const": VERSION}, event={"enum": list(EVENTS)}, stack=_TEXT,
        at=_TEXT, text=_TEXT, details={"type": "object"},
    ),
    "allOf": [
        {"if": {"properties": {"event": {"const": e}}}, "then": {"properties": {"details": DETAILS[e]}}}
        for e in EVENTS
    ],
}  # fmt: skip
