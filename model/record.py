"""The deploy record: one JSON document per deploy and its versioned shape (its table: model/record_table.py).

Reading validates: anything that is not a deploy record raises RecordError with the reason
(docs/release.md describes every field).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, cast, get_args

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from model.errors import GitopsError
from model.files import FileRefused, read_bounded
from model.text import fit

KIND = "gitops-deploy/deploy-record"
"""Every record says what it is, so any other JSON file is told apart at once."""
VERSION = 3
"""Raised when a field changes meaning, goes away or is added; every older version stays readable."""
MAX_RECORD_BYTES = 1024 * 1024
"""A record is a few kilobytes; anything this large is not one, and is not read whole."""

Outcome = Literal["succeeded", "failed", "rolled-back", "rollback-failed"]
OUTCOMES: tuple[Outcome, ...] = ("succeeded", "failed", "rolled-back", "rollback-failed")
During = Literal["release", "rollback"]
Cause = Literal[
    "registry-auth", "registry-unreachable", "lint", "build", "policy", "sync", "health", "soak", "other"
]  # fmt: skip
CAUSES: tuple[Cause, ...] = get_args(Cause)
Phase = Literal["preflight", "build", "image-size", "sync", "health", "rollback"]
PHASES: tuple[Phase, ...] = get_args(Phase)
"""Every phase, in the order an app goes through them."""
PhaseOutcome = Literal["succeeded", "failed", "unfinished"]
PHASE_OUTCOMES: tuple[PhaseOutcome, ...] = ("succeeded", "failed", "unfinished")
SoakVerdict = Literal["passed", "failed", "not-soaked"]
SOAK_VERDICTS: tuple[SoakVerdict, ...] = get_args(SoakVerdict)


@dataclass(frozen=True)
class PhaseTiming:
    """How long one phase took, and how it ended."""

    seconds: int
    outcome: PhaseOutcome
    op: str
    """The engine's step (`create`, `update`, `same`, ...), `check` for a failed check, or `rollback`."""


class RecordError(GitopsError):
    """A file or value that is not a readable deploy record; the message is the reason."""


@dataclass(frozen=True)
class SoakRecord:
    """One soak of one app's release after `up` (version 3): apart from the budget."""

    digest: str | None
    restored: bool
    """The release a rollback restored, soaked in its turn."""
    seconds: int
    """Seconds it was soaked (less than planned when it failed or was cut short)."""
    planned_seconds: int
    interval_seconds: int
    window_seconds: int
    probes: int
    failures: int
    latency_ms: tuple[float, float, float]
    """p50, p95 and max of every probe's latency (a failed probe's too: what a user waited)."""
    verdict: SoakVerdict
    reason: str | None
    """The broken rule of a failed soak, or why it was not soaked; None when it passed."""
    first_failure: str | None
    last_failure: str | None


@dataclass(frozen=True)
class AppRecord:
    """One app: its digest before and after the deploy, and its phases in PHASES order."""

    name: str
    digest_before: str | None
    digest_after: str | None
    phases: Mapping[Phase, PhaseTiming]
    soaks: tuple[SoakRecord, ...] = ()
    """Its soaks in this deploy, in order: the release's, then a restored one's (none before version 3)."""

    @property
    def total_seconds(self) -> int:
        """Seconds spent in the app's phases."""
        return sum(p.seconds for p in self.phases.values())


@dataclass(frozen=True)
class FailureRecord:
    """One failure of the deploy, classified."""

    cause: Cause
    during: During
    app: str | None
    resource: str | None
    """The failed resource's URN (None for the program's own error)."""
    message: str


@dataclass(frozen=True)
class DeployRecord:
    """Everything recorded about one deploy."""

    stack: str
    started_at: datetime
    ended_at: datetime
    budget_seconds: int
    outcome: Outcome
    cause: Cause | None
    """The first failure's cause; None when the deploy succeeded."""
    failures: tuple[FailureRecord, ...]
    apps: tuple[AppRecord, ...]
    commit_at: datetime | None = None
    """When the deployed commit was made (its committer time); None when unknown or in a version 1 record."""
    warnings: tuple[str, ...] = ()
    """What the deploy could not report (GitHub, the webhook); empty in records before version 3."""
    soak_seconds: int = 0
    """Wall-clock seconds spent soaking (and marking the soaked digests), apart from the budget."""

    @property
    def duration_seconds(self) -> int:
        """Wall-clock seconds from start to end."""
        return int((self.ended_at - self.started_at).total_seconds())

    @property
    def deploy_seconds(self) -> int:
        """The seconds the budget bounds: the duration without the soak."""
        return max(self.duration_seconds - self.soak_seconds, 0)

    @property
    def over_budget(self) -> bool:
        """Whether the deploy (its soak left out) took longer than its budget."""
        return self.deploy_seconds > self.budget_seconds


# --- the JSON shape ----------------------------------------------------------------------------------

_SECONDS = {"type": "integer", "minimum": 0}
_TEXT = {"type": "string", "minLength": 1}
_OPTIONAL_TEXT = {"type": ["string", "null"], "minLength": 1}


def _object(**properties: Any) -> dict[str, Any]:
    """An object with every one of `properties` required."""
    return {"type": "object", "required": list(properties), "properties": properties}


_FAILURE = _object(
    cause={"enum": list(CAUSES)}, during={"enum": ["release", "rollback"]}, app=_OPTIONAL_TEXT,
    resource=_OPTIONAL_TEXT, message={"type": "string"},
)  # fmt: skip
_PHASE = _object(seconds=_SECONDS, outcome={"enum": list(PHASE_OUTCOMES)}, op=_TEXT)
_APP = _object(
    name=_TEXT, digestBefore=_OPTIONAL_TEXT, digestAfter=_OPTIONAL_TEXT, totalSeconds=_SECONDS,
    phases={"type": "object", "propertyNames": {"enum": list(PHASES)}, "additionalProperties": _PHASE},
)  # fmt: skip
_MS = {"type": "number", "minimum": 0}
_SOAK = _object(
    digest=_OPTIONAL_TEXT, restored={"type": "boolean"}, seconds=_SECONDS, plannedSeconds=_SECONDS,
    intervalSeconds=_SECONDS, windowSeconds=_SECONDS, probes=_SECONDS, failures=_SECONDS,
    latencyMs=_object(p50=_MS, p95=_MS, max=_MS), verdict={"enum": list(SOAK_VERDICTS)},
    reason=_OPTIONAL_TEXT, firstFailure=_OPTIONAL_TEXT, lastFailure=_OPTIONAL_TEXT,
)  # fmt: skip
_APP["properties"]["soak"] = {"type": "array", "items": _SOAK}  # version 3; absent before
_RECORD = _object(
    kind={"const": KIND}, version={"enum": list(range(1, VERSION + 1))}, stack=_TEXT,
    startedAt=_TEXT, endedAt=_TEXT,
    durationSeconds=_SECONDS, budgetSeconds={"type": "integer", "minimum": 1},
    outcome={"enum": list(OUTCOMES)}, cause={"enum": [*CAUSES, None]},
    failures={"type": "array", "items": _FAILURE}, apps={"type": "array", "items": _APP},
)  # fmt: skip
_RECORD["properties"]["commitAt"] = _OPTIONAL_TEXT  # version 2; absent from version 1
_RECORD["properties"]["warnings"] = {"type": "array", "items": _TEXT}  # version 3; absent before
_RECORD["properties"]["soakSeconds"] = _SECONDS  # version 3; absent before
SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": f"gitops-deploy deploy record, versions 1 to {VERSION}",
    **_RECORD,
    "if": {"properties": {"outcome": {"const": "succeeded"}}},
    "then": {"properties": {"cause": {"const": None}}},
    "else": {"properties": {"cause": {"enum": list(CAUSES)}}},
}
_VALIDATOR = Draft202012Validator(SCHEMA)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def to_json(record: DeployRecord) -> dict[str, Any]:
    """The record as the JSON document it is stored as."""
    return {
        "kind": KIND,
        "version": VERSION,
        "stack": record.stack,
        "startedAt": _iso(record.started_at),
        "endedAt": _iso(record.ended_at),
        "durationSeconds": record.duration_seconds,
        "budgetSeconds": record.budget_seconds,
        "outcome": record.outcome,
        "cause": record.cause,
        "commitAt": None if record.commit_at is None else _iso(record.commit_at),
        "warnings": list(record.warnings),
        "soakSeconds": record.soak_seconds,
        "failures": [asdict(f) for f in record.failures],
        "apps": [
            {
                "name": app.name,
                "digestBefore": app.digest_before,
                "digestAfter": app.digest_after,
                "totalSeconds": app.total_seconds,
                "phases": {
                    phase: {"seconds": p.seconds, "outcome": p.outcome, "op": p.op}
                    for phase, p in app.phases.items()
                },
                "soak": [_soak_json(soak) for soak in app.soaks],
            }
            for app in record.apps
        ],
    }


def _soak_json(soak: SoakRecord) -> dict[str, Any]:
    p50, p95, most = soak.latency_ms
    return {
        "digest": soak.digest, "restored": soak.restored, "seconds": soak.seconds,
        "plannedSeconds": soak.planned_seconds, "intervalSeconds": soak.interval_seconds,
        "windowSeconds": soak.window_seconds, "probes": soak.probes, "failures": soak.failures,
        "latencyMs": {"p50": p50, "p95": p95, "max": most}, "verdict": soak.verdict, "reason": soak.reason,
        "firstFailure": soak.first_failure, "lastFailure": soak.last_failure,
    }  # fmt: skip


def _soak(raw: Mapping[str, Any]) -> SoakRecord:
    ms = raw["latencyMs"]
    return SoakRecord(
        raw["digest"], raw["restored"], raw["seconds"], raw["plannedSeconds"], raw["intervalSeconds"],
        raw["windowSeconds"], raw["probes"], raw["failures"], (ms["p50"], ms["p95"], ms["max"]),
        raw["verdict"], raw["reason"], raw["firstFailure"], raw["lastFailure"],
    )  # fmt: skip


def _moment(value: str, key: str) -> datetime:
    shown = fit(repr(value), 60)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise RecordError(f"broken deploy record: {key} {shown} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise RecordError(f"broken deploy record: {key} {shown} has no time zone (expected ...Z)")
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:59:59-23:59 is in the year 10000 in UTC
        raise RecordError(f"broken deploy record: {key} {shown} is out of range in UTC") from None


def _error_path(path: Sequence[Any]) -> str:
    text = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)
    return text.lstrip(".") or "the record"


def from_json(data: Any) -> DeployRecord:
    """A DeployRecord from a decoded JSON document; RecordError naming what is wrong otherwise."""
    if not isinstance(data, dict):
        what = {list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
            type(data), "a number"
        )
        raise RecordError(f"not a deploy record: the JSON is {what}, not an object")
    kind = data.get("kind")
    if kind != KIND:
        said = "has no kind" if kind is None else f"has kind {fit(repr(kind), 60)}"
        raise RecordError(f"not a deploy record: it {said} (a deploy record has kind {KIND!r})")
    version = data.get("version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise RecordError(f"broken deploy record: version is {fit(repr(version), 60)}, not a whole number")
    if version > VERSION:
        raise RecordError(
            f"deploy record version {version} is newer than this tool reads (up to {VERSION}); "
            "upgrade gitops-deploy to read it"
        )
    errors = list(_VALIDATOR.iter_errors(data))
    if errors:
        error = best_match(errors)
        raise RecordError(
            f"broken deploy record: {_error_path(error.absolute_path)}: {fit(error.message, 200)}"
        )
    started = _moment(data["startedAt"], "startedAt")
    ended = _moment(data["endedAt"], "endedAt")
    if ended < started:
        raise RecordError(f"broken deploy record: endedAt {_iso(ended)} is before startedAt {_iso(started)}")
    elapsed = int((ended - started).total_seconds())
    if abs(elapsed - data["durationSeconds"]) > 1:
        raise RecordError(
            f"broken deploy record: durationSeconds {data['durationSeconds']} does not match startedAt to "
            f"endedAt ({elapsed} s)"
        )
    apps = tuple(_app(raw, i) for i, raw in enumerate(data["apps"]))
    names = [a.name for a in apps]
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise RecordError(f"broken deploy record: apps lists {', '.join(twice)} more than once")
    keys = ("cause", "during", "app", "resource", "message")
    failures = tuple(FailureRecord(*(f[k] for k in keys)) for f in data["failures"])
    stack, budget, outcome, cause = data["stack"], int(data["budgetSeconds"]), data["outcome"], data["cause"]
    commit = data.get("commitAt")
    commit_at = None if commit is None else _moment(commit, "commitAt")
    warnings = tuple(data.get("warnings", ()))
    soaked = int(data.get("soakSeconds", 0))
    if soaked > elapsed:
        raise RecordError(
            f"broken deploy record: soakSeconds {soaked} is longer than the deploy ({elapsed} s)"
        )
    return DeployRecord(
        stack, started, ended, budget, outcome, cause, failures, apps, commit_at, warnings, soaked
    )


def _app(raw: Mapping[str, Any], index: int) -> AppRecord:
    phases = {
        cast(Phase, name): PhaseTiming(int(p["seconds"]), p["outcome"], p["op"])
        for name, p in sorted(raw["phases"].items(), key=lambda item: PHASES.index(item[0]))
    }
    soaks = tuple(_soak(soak) for soak in raw.get("soak", ()))
    app = AppRecord(raw["name"], raw["digestBefore"], raw["digestAfter"], phases, soaks)
    if app.total_seconds != raw["totalSeconds"]:
        raise RecordError(
            f"broken deploy record: apps[{index}].totalSeconds is {raw['totalSeconds']}, but its phases "
            f"add up to {app.total_seconds}"
        )
    return app


def read_record(path: Path) -> DeployRecord:
    """Load and validate one record file; RecordError with the reason for anything else."""
    try:
        raw = read_bounded(path, MAX_RECORD_BYTES)
    except FileRefused as err:
        if str(err).startswith("over "):
            raise RecordError(f"not a deploy record: larger than {MAX_RECORD_BYTES // 1024} KiB") from None
        raise RecordError(re.sub(r"^cannot be read \((.*)\)$", r"cannot be read: \1", str(err))) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise RecordError("not a deploy record: not UTF-8 text") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise RecordError(f"not valid JSON: {err.msg} at line {err.lineno} column {err.colno}") from None
    except (ValueError, RecursionError) as err:
        raise RecordError(f"not valid JSON: {fit(str(err) or type(err).__name__, 120)}") from None
    return from_json(data)


def write_record(record: DeployRecord, path: Path) -> None:
    """Write the record as JSON, atomically: a reader never sees half a record."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(to_json(record), indent=2, ensure_ascii=False) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
