"""Recorded engine event streams (tests/fixtures/deploy_streams/<case>/up-N.jsonl) and the engine's rules
they must follow, written once here from pulumi/pulumi v3.259's source:

- sdk/go/common/apitype/events.go: one JSON object per event with `sequence`, `timestamp` and exactly
  one payload; the payload's fields without `omitempty` are always present.
- pkg/backend/display/display.go (stampEvents): `sequence` counts every event from 0, and `timestamp`
  is `time.Now().Unix()` when the event was stamped, in order, so it never goes down.
- pkg/engine/update.go: local policy packs emit a policy-load event each before the deployment emits
  its prelude (pkg/engine/deployment.go); `defer ... NewCancelEvent()` makes the cancel event the last
  event of every update, after the summary.
- pkg/resource/deploy/step_executor.go + pkg/engine/update.go (OnResourceStepPre/Post): a step's pre
  event comes before its outputs or failure; a failed step is an error diagnostic naming the resource,
  then the failed-operation event.
- pkg/resource/deploy/deployment_executor.go: the unattributed "update failed" error is only reported
  when a step failed; a failed `check`, a mandatory policy violation or a program error bails out
  without it (`result.IsBail`).
- pkg/resource/deploy/deployment.go (generateURN): a URN's type is the parent's whole qualified type,
  `$`, then the resource's own type; children of the stack get no prefix. The SDK's mocks
  (pulumi/runtime/mocks.py, make_urn) only prepend the parent's last type, so `engine_urn` rebuilds
  what the engine would name a resource the program registered under mocks.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pulumi.automation.events import EngineEvent, OpType

from offline.simulate import Simulation

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "deploy_streams"
CASES = (
    "good",
    "registry_401",
    "lint",
    "build_failure",
    "policy_violation",
    "health_rollback",
    "rollback_fails",
)
T0 = 1767261600
"""2026-01-01T10:00:00Z: every fixture's timestamps are this plus the second shown in the tests."""

# apitype.EngineEvent's payloads, and the fields of each that are never omitted.
PAYLOAD_FIELDS: dict[str, tuple[str, ...]] = {
    "cancelEvent": (),
    "stdoutEvent": ("message", "color"),
    "diagnosticEvent": ("message", "color", "severity"),
    "preludeEvent": ("config",),
    "summaryEvent": (
        "maybeCorrupt",
        "durationSeconds",
        "resourceChanges",
        "PolicyPacks",
        "isPreview",
        "result",
    ),
    "resourcePreEvent": ("metadata",),
    "resOutputsEvent": ("metadata",),
    "resOpFailedEvent": ("metadata", "status", "steps"),
    "policyEvent": (
        "message",
        "color",
        "policyName",
        "policyPackName",
        "policyPackVersion",
        "policyPackVersionTag",
        "enforcementLevel",
    ),
    "policyRemediationEvent": (
        "color",
        "policyName",
        "policyPackName",
        "policyPackVersion",
        "policyPackVersionTag",
    ),
    "policyLoadEvent": (),
    "policyAnalyzeSummaryEvent": (
        "resourceUrn",
        "policyPackName",
        "policyPackVersion",
        "policyPackVersionTag",
    ),
    "policyRemediateSummaryEvent": (
        "resourceUrn",
        "policyPackName",
        "policyPackVersion",
        "policyPackVersionTag",
    ),
    "policyAnalyzeStackSummaryEvent": ("policyPackName", "policyPackVersion", "policyPackVersionTag"),
    "startDebuggingEvent": (),
    "progressEvent": ("type", "id", "message", "received", "total", "done"),
    "errorEvent": ("error",),
}
STEP_FIELDS = ("op", "urn", "type", "old", "new", "detailedDiff", "provider")
STATE_FIELDS = ("type", "urn", "id", "parent", "inputs", "outputs", "provider")
SEVERITIES = ("info", "info#err", "warning", "error", "debug")
RESULTS = ("succeeded", "failed", "canceled")


def payload_key(event: dict[str, Any]) -> str:
    """The one payload key of a raw event."""
    keys = [k for k in event if k not in ("sequence", "timestamp")]
    assert len(keys) == 1, f"event {event.get('sequence')}: expected exactly one payload, got {keys}"
    return keys[0]


def _check_event(event: dict[str, Any]) -> None:
    where = f"event {event.get('sequence')}"
    assert isinstance(event.get("sequence"), int) and isinstance(event.get("timestamp"), int), where
    key = payload_key(event)
    assert key in PAYLOAD_FIELDS, f"{where}: {key} is not an apitype.EngineEvent payload"
    payload = event[key]
    assert isinstance(payload, dict), f"{where}: {key} is not an object"
    missing = [f for f in PAYLOAD_FIELDS[key] if f not in payload]
    assert not missing, f"{where}: {key} lacks {missing}"
    if "metadata" in PAYLOAD_FIELDS[key]:
        meta = payload["metadata"]
        missing = [f for f in STEP_FIELDS if f not in meta]
        assert not missing, f"{where}: {key}.metadata lacks {missing}"
        OpType(meta["op"])  # raises on an op the engine does not have
        for side in ("old", "new"):
            state = meta[side]
            if state is not None:
                lacking = [f for f in STATE_FIELDS if f not in state]
                assert not lacking, f"{where}: {key}.metadata.{side} lacks {lacking}"
                assert state["urn"] == meta["urn"] and state["type"] == meta["type"], where
    if key == "diagnosticEvent":
        assert payload["severity"] in SEVERITIES, where
    if key == "summaryEvent":
        assert payload["result"] in RESULTS, where


def check_stream(events: list[dict[str, Any]]) -> None:
    """Assert that one `up`'s raw events follow the engine's rules (module docstring)."""
    assert events, "an update always has events"
    for event in events:
        _check_event(event)
    assert [e["sequence"] for e in events] == list(range(len(events))), "sequence counts every event from 0"
    stamps = [e["timestamp"] for e in events]
    assert stamps == sorted(stamps), "timestamps never go down"
    kinds = [payload_key(e) for e in events]
    loads = 0
    while kinds[loads] == "policyLoadEvent":
        loads += 1
    assert kinds[loads] == "preludeEvent", "the prelude comes first, after the policy packs load"
    assert kinds[-1] == "cancelEvent" and kinds[-2] == "summaryEvent", "summary, then the cancel event, last"
    assert kinds.count("cancelEvent") == 1 and kinds.count("summaryEvent") == 1
    started: set[str] = set()
    step_failed = False
    for i, (kind, event) in enumerate(zip(kinds, events, strict=True)):
        if kind == "resourcePreEvent":
            started.add(event[kind]["metadata"]["urn"])
        elif kind == "resOutputsEvent":
            urn = event[kind]["metadata"]["urn"]
            assert urn in started, f"event {i}: outputs of {urn} before its pre event"
        elif kind == "resOpFailedEvent":
            step_failed = True
            urn = event[kind]["metadata"]["urn"]
            assert urn in started, f"event {i}: failure of {urn} before its pre event"
            before = events[i - 1].get("diagnosticEvent")
            assert before is not None and before["severity"] == "error" and before.get("urn") == urn, (
                f"event {i}: a failed operation follows its own error diagnostic"
            )
    closing = [
        e["diagnosticEvent"]
        for e in events
        if "diagnosticEvent" in e
        and not e["diagnosticEvent"].get("urn")
        and "update failed" in e["diagnosticEvent"]["message"]
    ]
    assert bool(closing) == step_failed, "'update failed' is reported exactly when a step failed"
    failed = step_failed or any(
        ("diagnosticEvent" in e and e["diagnosticEvent"]["severity"] == "error")
        or ("policyEvent" in e and e["policyEvent"]["enforcementLevel"] == "mandatory")
        for e in events
    )
    assert events[-2]["summaryEvent"]["result"] == ("failed" if failed else "succeeded")


def raw_up(path: Path) -> list[dict[str, Any]]:
    """The raw JSON objects of one recorded `up`."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def up_paths(case: str) -> list[Path]:
    """The `up`s of one case, in order: the release, then the rollback."""
    return sorted((FIXTURES / case).glob("up-*.jsonl"), key=lambda p: int(p.stem.split("-")[1]))


def load_case(case: str) -> list[list[EngineEvent]]:
    """Each `up` of a case as the Automation API reads its event log (`EngineEvent.from_json`)."""
    return [[EngineEvent.from_json(e) for e in raw_up(path)] for path in up_paths(case)]


STACK_TYPE = "pulumi:pulumi:Stack"


def engine_urns(sim: Simulation) -> dict[str, str]:
    """The URN the engine gives each resource the program registered under mocks, by its mock URN."""
    by_urn = {r.urn: r for r in sim.resources}
    cache: dict[str, str] = {}

    def qualified(urn: str) -> str:
        if urn not in cache:
            resource = by_urn[urn]
            parent = by_urn.get(resource.parent)
            own = resource.type
            cache[urn] = (
                own if parent is None or parent.type == STACK_TYPE else f"{qualified(parent.urn)}${own}"
            )
        return cache[urn]

    return {
        urn: f"urn:pulumi:{sim.stack}::gitops-deploy::{qualified(urn)}::{r.name}" for urn, r in by_urn.items()
    }


def check_failure_text(type_: str, name: str, reason: str, prop: str = "", value: str = "") -> str:
    """How the engine words a provider's CheckFailure (sdk/go/common/diag/errors.go, issueCheckFailures)."""
    if prop:
        return f"{type_} resource '{name}': property {prop} value {value} has a problem: {reason}"
    return f"{type_} resource '{name}' has a problem: {reason}"


def init_error_text(*reasons: str) -> str:
    """How the engine words a provider's partial failure (plugin.InitError: a hashicorp multierror)."""
    if len(reasons) == 1:
        return f"1 error occurred:\n\t* {reasons[0]}\n\n"
    points = "\n\t".join(f"* {r}" for r in reasons)
    return f"{len(reasons)} errors occurred:\n\t{points}\n\n"
