"""The Pulumi engine's event stream, as `pulumi up --event-log` writes it: its rules, stated once.

Sources (pulumi/pulumi v3.259, /work/.mirror/pulumi+pulumi/repo):

- Line shape: one `apitype.EngineEvent` per line, JSON, with `sequence`, `timestamp` and exactly one
  payload (sdk/go/common/apitype/events.go; field names are its JSON tags). Written by
  pkg/backend/display/display.go `startEventLogger` through `logJSONEvent`, to the file, or to the
  Automation API's `Events.StreamEvents` gRPC service when the target is `tcp://` (from CLI 3.206; the
  Automation API picks the transport from `pulumi version`: pulumi/automation/_stack.py
  `_setup_event_log`, `use_grpc = ver > 3.205.0`).
- Numbering: `stampEvents` (display.go) numbers events from 0 upwards, timestamp in Unix seconds.
- Order (pkg/engine/update.go `Update`, pkg/engine/deployment.go `run`, pkg/engine/update.go
  `OnResourceStepPre`/`OnResourceStepPost`, pkg/resource/deploy/deployment_executor.go):
  1. `policyLoadEvent`s when policy packs load, then the `preludeEvent`;
  2. per step: `resourcePreEvent`; then `resOutputsEvent` on success, or the provider's diagnostics,
     the error diagnostic on the resource's URN (diag.GetResourceOperationFailedError, "%v" of the
     error) and `resOpFailedEvent`;
  3. after a failed step, the urn-less error diagnostic "update failed" (`reportExecResult`), or
     "update canceled" when the deployment was cancelled; the display shows it on the stack's row;
  4. the `summaryEvent` (with `result` since v3.237: succeeded, failed or canceled);
  5. the `cancelEvent`, always last and only once: `Update` defers it, and the event logger stops there.
- A user's signal (pkg/backend/cancellation_scope.go) adds a `stdoutEvent` "^C received; cancelling.
  ..." (or "SIGTERM received; ..."), and "... received; terminating" for the second one.
- Diagnostic messages carry colour directives: `<{%reset%}>text<{%reset%}>\n`, prefix
  `<{%fg 1%}>error: <{%reset%}>` (pkg/engine/eventsink.go `StringifyDiag`).

The recorded streams in pkg/engine/lifecycletest/testdata/output/*/eventstream.json (for example
TestLanguageRuntimeCancellation, TestErrorHooks_NoRetryIfAllHooksReturnFalse_Create,
TestSimpleAnalyzeResourceFailure) follow exactly these rules; `check_stream` enforces them on ours.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pulumi.automation.events import EngineEvent

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "engine_events"
PROJECT = "gitops-deploy"
STACK = "prod"

# apitype.EngineEvent's payload fields and each payload's JSON keys (sdk/go/common/apitype/events.go).
PAYLOAD_KEYS: dict[str, set[str]] = {
    "cancelEvent": set(),
    "stdoutEvent": {"message", "color"},
    "diagnosticEvent": {"urn", "prefix", "message", "color", "severity", "streamId", "ephemeral"},
    "preludeEvent": {"config"},
    "summaryEvent": {
        "maybeCorrupt",
        "durationSeconds",
        "resourceChanges",
        "PolicyPacks",
        "isPreview",
        "result",
    },
    "resourcePreEvent": {"metadata", "planning"},
    "resOutputsEvent": {"metadata", "planning"},
    "resOpFailedEvent": {"metadata", "status", "steps"},
    "policyEvent": {
        "resourceUrn",
        "message",
        "color",
        "policyName",
        "policyPackName",
        "policyPackVersion",
        "policyPackVersionTag",
        "enforcementLevel",
        "severity",
    },
    "policyLoadEvent": set(),
    "policyAnalyzeSummaryEvent": {
        "resourceUrn",
        "policyPackName",
        "policyPackVersion",
        "policyPackVersionTag",
        "passed",
        "failed",
    },
    "progressEvent": {"type", "id", "message", "received", "total", "done"},
    "errorEvent": {"error"},
}
METADATA_KEYS = {"op", "urn", "type", "old", "new", "keys", "diffs", "detailedDiff", "logical", "provider"}
STATE_KEYS = {
    "type",
    "urn",
    "custom",
    "delete",
    "id",
    "parent",
    "protect",
    "taint",
    "external",
    "retainOnDelete",
    "inputs",
    "outputs",
    "provider",
    "initErrors",
    "hideDiffs",
}
SEVERITIES = {"debug", "info", "info#err", "warning", "error"}
RESULTS = {"succeeded", "failed", "canceled"}
OPS = {
    "same",
    "create",
    "update",
    "delete",
    "replace",
    "create-replacement",
    "delete-replaced",
    "read",
    "refresh",
}
_BEFORE_PRELUDE = {"policyLoadEvent", "progressEvent", "stdoutEvent"}
CLOSING = {"failed": "update failed", "canceled": "update canceled"}


def urn(type_: str, name: str, parents: Sequence[str] = (), stack: str = STACK) -> str:
    """A URN as the engine forms it: parent types joined with `$` before the resource's own type."""
    qualified = "$".join([*parents, type_])
    return f"urn:pulumi:{stack}::{PROJECT}::{qualified}::{name}"


def colored(text: str) -> str:
    """A diagnostic message as eventsink.go formats it."""
    return f"<{{%reset%}}>{text}<{{%reset%}}>\n"


def payload(line: Mapping[str, Any]) -> tuple[str, Any]:
    """The one payload of an event line: (field name, value)."""
    found = [(k, v) for k, v in line.items() if k not in ("sequence", "timestamp")]
    assert len(found) == 1, f"expected exactly one payload, got {sorted(k for k, _ in found)}"
    return found[0]


def check_stream(lines: Sequence[Mapping[str, Any]]) -> list[str]:
    """Every way `lines` differs from a stream the engine writes for one `up` (empty: it is valid)."""
    problems: list[str] = []
    kinds: list[str] = []
    for i, line in enumerate(lines):
        where = f"line {i + 1}"
        if line.get("sequence") != i:
            problems.append(
                f"{where}: sequence {line.get('sequence')!r}, expected {i} (stampEvents counts from 0)"
            )
        if not isinstance(line.get("timestamp"), int):
            problems.append(f"{where}: timestamp must be Unix seconds (an integer)")
        kinds_here = [k for k in line if k not in ("sequence", "timestamp")]
        if len(kinds_here) != 1 or kinds_here[0] not in PAYLOAD_KEYS:
            problems.append(f"{where}: expected exactly one apitype.EngineEvent payload, got {kinds_here}")
            kinds.append("?")
            continue
        kind, value = kinds_here[0], line[kinds_here[0]]
        kinds.append(kind)
        extra = set(value) - PAYLOAD_KEYS[kind] if isinstance(value, Mapping) else {"<not an object>"}
        if extra:
            problems.append(f"{where}: {kind} has keys apitype does not define: {sorted(extra)}")
        problems += [f"{where}: {p}" for p in _check_payload(kind, value)]
    if not kinds:
        return ["empty stream"]
    first = next((i for i, k in enumerate(kinds) if k not in _BEFORE_PRELUDE), None)
    if first is None or kinds[first] != "preludeEvent":
        problems.append("the preludeEvent must come first (only policy loads and stdout before it)")
    if kinds[-1] != "cancelEvent" or kinds.count("cancelEvent") != 1:
        problems.append("exactly one cancelEvent, and last (update.go defers it)")
    summaries = [i for i, k in enumerate(kinds) if k == "summaryEvent"]
    if len(summaries) != 1 or any(k != "stdoutEvent" for k in kinds[summaries[0] + 1 : -1]):
        problems.append("exactly one summaryEvent, right before the cancelEvent (deployment.go run)")
    problems += _check_steps(lines, kinds)
    return problems


def _check_payload(kind: str, value: Any) -> list[str]:
    if kind in ("resourcePreEvent", "resOutputsEvent", "resOpFailedEvent"):
        meta = value.get("metadata", {})
        bad = set(meta) - METADATA_KEYS
        out = [f"{kind}.metadata has unknown keys {sorted(bad)}"] if bad else []
        if meta.get("op") not in OPS:
            out.append(f"{kind}.metadata.op {meta.get('op')!r} is not a step op")
        for side in ("old", "new"):
            state = meta.get(side)
            if state is not None and set(state) - STATE_KEYS:
                out.append(f"{kind}.metadata.{side} has unknown keys {sorted(set(state) - STATE_KEYS)}")
        return out
    if kind == "diagnosticEvent" and value.get("severity") not in SEVERITIES:
        return [f"diagnosticEvent.severity {value.get('severity')!r} is not one of {sorted(SEVERITIES)}"]
    if kind == "summaryEvent" and value.get("result") not in RESULTS:
        return [f"summaryEvent.result {value.get('result')!r} is not one of {sorted(RESULTS)}"]
    return []


def _plain(message: str) -> str:
    return message.replace("<{%reset%}>", "").strip()


def _check_steps(lines: Sequence[Mapping[str, Any]], kinds: Sequence[str]) -> list[str]:
    problems: list[str] = []
    pre: dict[str, int] = {}
    errors: dict[str, list[int]] = {}
    last_failed = -1
    closing: list[tuple[int, str]] = []
    for i, (line, kind) in enumerate(zip(lines, kinds, strict=True)):
        value = line.get(kind, {})
        if kind == "resourcePreEvent":
            pre[value["metadata"]["urn"]] = i
        elif kind == "diagnosticEvent" and value.get("severity") == "error":
            if value.get("urn"):
                errors.setdefault(value["urn"], []).append(i)
            else:
                closing.append((i, _plain(value.get("message", ""))))
        elif kind in ("resOutputsEvent", "resOpFailedEvent"):
            target = value["metadata"]["urn"]
            if target not in pre:
                problems.append(f"line {i + 1}: {kind} for {target} without its resourcePreEvent")
            if kind == "resOpFailedEvent":
                last_failed = i
                if not any(pre.get(target, i) < e < i for e in errors.get(target, [])):
                    problems.append(
                        f"line {i + 1}: resOpFailedEvent for {target} without its error diagnostic"
                    )
    summary: Mapping[str, Any] = next((line["summaryEvent"] for line in lines if "summaryEvent" in line), {})
    result = summary.get("result")
    closing_texts = [t for _, t in closing if t in CLOSING.values()]
    if last_failed >= 0 and not any(i > last_failed and t in CLOSING.values() for i, t in closing):
        problems.append(
            "a failed step must be followed by the urn-less 'update failed' (or 'update canceled')"
        )
    if result == "succeeded" and (last_failed >= 0 or closing_texts):
        problems.append("summary result 'succeeded' after a failure")
    if "update canceled" in closing_texts and result != "failed":
        problems.append("a graceful cancel reports result 'failed' (OperationResultFromError)")
    return problems


def read(name: str) -> list[dict[str, Any]]:
    """A recorded stream's lines."""
    text = (FIXTURES / name).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def events(name: str) -> list[EngineEvent]:
    """A recorded stream as the Automation API hands it to `on_event`."""
    return [EngineEvent.from_json(line) for line in read(name)]


def restamp(lines: Iterable[Mapping[str, Any]], start: int = 0, now: int = 0) -> list[dict[str, Any]]:
    """Lines numbered and timed as `stampEvents` does for a new run."""
    return [{**line, "sequence": start + i, "timestamp": now} for i, line in enumerate(lines)]
