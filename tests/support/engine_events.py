"""The Pulumi engine's event stream, as `pulumi up --event-log` writes it: its rules, stated once, and the
recorded streams the deploy is tested on (tests/fixtures/engine_events).

Recorded streams. `<name>.jsonl` is one `up`; a `<case>/` folder holds the `up`s of one deploy in order
(`up-1.jsonl` the release, `up-2.jsonl` its rollback), timed to the second from T0 so that phase timings
can be read off them. The stand-in CLI (tests/support/fake_pulumi) plays either, by its path here.

Sources (pulumi/pulumi v3.259, /work/.mirror/pulumi+pulumi/repo):

- Line shape: one `apitype.EngineEvent` per line, JSON, with `sequence`, `timestamp` and exactly one
  payload (sdk/go/common/apitype/events.go; field names are its JSON tags, and the fields without
  `omitempty` are always present). Written by pkg/backend/display/display.go `startEventLogger` through
  `logJSONEvent`, to the file, or to the Automation API's `Events.StreamEvents` gRPC service when the
  target is `tcp://` (from CLI 3.206; the Automation API picks the transport from `pulumi version`:
  pulumi/automation/_stack.py `_setup_event_log`, `use_grpc = ver > 3.205.0`).
- Numbering: `stampEvents` (display.go) numbers events from 0 upwards, with `time.Now().Unix()` when the
  event was stamped, in order: whole seconds that never go down.
- Order (pkg/engine/update.go `Update`, pkg/engine/deployment.go `run`, pkg/engine/update.go
  `OnResourceStepPre`/`OnResourceStepPost`, pkg/resource/deploy/deployment_executor.go `Execute`):
  1. `policyLoadEvent`s when local policy packs load, then the `preludeEvent`;
  2. per step: `resourcePreEvent`; then `resOutputsEvent` on success, or the provider's diagnostics,
     the error diagnostic on the resource's URN (diag.GetResourceOperationFailedError, "%v" of the
     error) and `resOpFailedEvent` (other steps' events may come in between: steps run in parallel);
  3. after a failed step, the urn-less error diagnostic "update failed" (`reportExecResult`; "step
     generation and execution errors trump cancellation", so a step that fails during a cancel still
     gives "update failed"), or "update canceled" when the deployment was cancelled and no step failed;
     a failed `check`, a mandatory policy violation or a program error bails out without either
     (`result.IsBail`);
  4. the `summaryEvent` (with `result` since v3.237: succeeded, failed or canceled);
  5. the `cancelEvent`, always last and only once: `Update` defers it, and the event logger stops there.
- A user's signal (pkg/backend/cancellation_scope.go) adds a `stdoutEvent` "^C received; cancelling.
  ..." (or "SIGTERM received; ..."), and "... received; terminating" for the second one; those may come
  at any point, also between the summary and the cancel event.
- Diagnostic messages carry colour directives: `<{%reset%}>text<{%reset%}>\\n`, prefix
  `<{%fg 1%}>error: <{%reset%}>` (pkg/engine/eventsink.go `StringifyDiag`). A provider's status
  messages (pulumi-kubernetes' `Waiting for ...`) are `info` diagnostics with `ephemeral: true`
  (pkg/host/host_server.go `Log` -> `LogStatus`, pkg/engine/events.go `diagEvent`).
- pkg/resource/deploy/deployment.go (generateURN): a URN's type is the parent's whole qualified type,
  `$`, then the resource's own type; children of the stack get no prefix. The SDK's mocks
  (pulumi/runtime/mocks.py, make_urn) only prepend the parent's last type, so `engine_urns` rebuilds
  what the engine would name a resource the program registered under mocks.

The recorded streams in pkg/engine/lifecycletest/testdata/output/*/eventstream.json (for example
TestLanguageRuntimeCancellation, TestErrorHooks_NoRetryIfAllHooksReturnFalse_Create,
TestSimpleAnalyzeResourceFailure) follow exactly these rules; `check_stream` enforces them on ours.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pulumi.automation.events import EngineEvent, OpType

from policy_check.simulate import Simulation

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "engine_events"
PROJECT = "gitops-deploy"
STACK = "prod"
STACK_TYPE = "pulumi:pulumi:Stack"
CASES = (
    "good",
    "registry_401",
    "lint",
    "build_failure",
    "policy_violation",
    "health_rollback",
    "rollback_fails",
    "degraded_rollback",
)
"""The timed deploys (folders of `up-N.jsonl`)."""
T0 = 1767261600
"""2026-01-01T10:00:00Z: every timed deploy's timestamps are this plus the second shown in the tests."""

# apitype.EngineEvent's payloads: every JSON key each may carry, and the keys that are never omitted.
# The policy events name their pack alike, and the summary event has no optional field.
_POLICY_PACK = ("policyPackName", "policyPackVersion", "policyPackVersionTag")
_SUMMARY_KEYS = ("maybeCorrupt", "durationSeconds", "resourceChanges", "PolicyPacks", "isPreview", "result")
_POLICY_SUMMARY_KEYS = ("resourceUrn", *_POLICY_PACK, "passed", "failed")
PAYLOAD_KEYS: dict[str, set[str]] = {
    "cancelEvent": set(),
    "stdoutEvent": {"message", "color"},
    "diagnosticEvent": {"urn", "prefix", "message", "color", "severity", "streamID", "ephemeral"},
    "preludeEvent": {"config"},
    "summaryEvent": set(_SUMMARY_KEYS),
    "resourcePreEvent": {"metadata", "planning"},
    "resOutputsEvent": {"metadata", "planning"},
    "resOpFailedEvent": {"metadata", "status", "steps"},
    "policyEvent": {
        "resourceUrn",
        "message",
        "color",
        "policyName",
        *_POLICY_PACK,
        "enforcementLevel",
        "severity",
    },
    "policyRemediationEvent": {"resourceUrn", "color", "policyName", *_POLICY_PACK, "before", "after"},
    "policyLoadEvent": set(),
    "policyAnalyzeSummaryEvent": set(_POLICY_SUMMARY_KEYS),
    "policyRemediateSummaryEvent": set(_POLICY_SUMMARY_KEYS),
    "policyAnalyzeStackSummaryEvent": {*_POLICY_PACK, "passed", "failed"},
    "startDebuggingEvent": {"config"},
    "progressEvent": {"type", "id", "message", "received", "total", "done"},
    "errorEvent": {"error"},
}
REQUIRED_KEYS: dict[str, tuple[str, ...]] = {
    "stdoutEvent": ("message", "color"),
    "diagnosticEvent": ("message", "color", "severity"),
    "startDebuggingEvent": ("config",),
    "summaryEvent": _SUMMARY_KEYS,
    "resourcePreEvent": ("metadata",),
    "resOutputsEvent": ("metadata",),
    "resOpFailedEvent": ("metadata", "status", "steps"),
    "policyEvent": ("message", "color", "policyName", *_POLICY_PACK, "enforcementLevel"),
    "policyAnalyzeSummaryEvent": ("resourceUrn", *_POLICY_PACK),
    "progressEvent": ("type", "id", "message", "received", "total", "done"),
    "errorEvent": ("error",),
}
METADATA_KEYS = {"op", "urn", "type", "old", "new", "keys", "diffs", "detailedDiff", "logical", "provider"}
METADATA_REQUIRED = ("op", "urn", "type", "old", "new", "detailedDiff", "provider")
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
STATE_REQUIRED = ("type", "urn", "id", "parent", "inputs", "outputs", "provider")
SEVERITIES = {"debug", "info", "info#err", "warning", "error"}
RESULTS = {"succeeded", "failed", "canceled"}
OPS = {op.value for op in OpType}
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
    previous_stamp: int | None = None
    for i, line in enumerate(lines):
        where = f"line {i + 1}"
        if line.get("sequence") != i:
            problems.append(
                f"{where}: sequence {line.get('sequence')!r}, expected {i} (stampEvents counts from 0)"
            )
        stamp = line.get("timestamp")
        if not isinstance(stamp, int) or isinstance(stamp, bool):
            problems.append(f"{where}: timestamp must be Unix seconds (an integer)")
        elif previous_stamp is not None and stamp < previous_stamp:
            problems.append(f"{where}: timestamps never go down (stampEvents stamps in order)")
        else:
            previous_stamp = stamp
        kinds_here = [k for k in line if k not in ("sequence", "timestamp")]
        if len(kinds_here) != 1 or kinds_here[0] not in PAYLOAD_KEYS:
            problems.append(f"{where}: expected exactly one apitype.EngineEvent payload, got {kinds_here}")
            kinds.append("?")
            continue
        kind, value = kinds_here[0], line[kinds_here[0]]
        kinds.append(kind)
        if not isinstance(value, Mapping):
            problems.append(f"{where}: {kind} is not an object")
            continue
        extra = set(value) - PAYLOAD_KEYS[kind]
        if extra:
            problems.append(f"{where}: {kind} has keys apitype does not define: {sorted(extra)}")
        missing = [k for k in REQUIRED_KEYS.get(kind, ()) if k not in value]
        if missing:
            problems.append(f"{where}: {kind} lacks {missing}, which apitype never omits")
        problems += [f"{where}: {p}" for p in _check_payload(kind, value)]
    if not kinds:
        return ["empty stream"]
    first = next((i for i, k in enumerate(kinds) if k not in _BEFORE_PRELUDE), None)
    if first is None or kinds[first] != "preludeEvent":
        problems.append("the preludeEvent must come first (only policy loads and stdout before it)")
    if kinds[-1] != "cancelEvent" or kinds.count("cancelEvent") != 1:
        problems.append("exactly one cancelEvent, and last (update.go defers it)")
    summaries = [i for i, k in enumerate(kinds) if k == "summaryEvent"]
    after = kinds[summaries[0] + 1 :] if len(summaries) == 1 else []
    if not after or after[-1] != "cancelEvent" or any(k != "stdoutEvent" for k in after[:-1]):
        problems.append("exactly one summaryEvent, then the cancelEvent (deployment.go run)")
    problems += _check_steps(lines, kinds)
    return problems


def _check_payload(kind: str, value: Mapping[str, Any]) -> list[str]:
    if kind in ("resourcePreEvent", "resOutputsEvent", "resOpFailedEvent"):
        meta = value.get("metadata")
        if not isinstance(meta, Mapping):
            return [f"{kind}.metadata is not an object"]
        out = []
        bad = set(meta) - METADATA_KEYS
        if bad:
            out.append(f"{kind}.metadata has unknown keys {sorted(bad)}")
        lacking = [k for k in METADATA_REQUIRED if k not in meta]
        if lacking:
            out.append(f"{kind}.metadata lacks {lacking}")
        if meta.get("op") not in OPS:
            out.append(f"{kind}.metadata.op {meta.get('op')!r} is not a step op")
        for side in ("old", "new"):
            state = meta.get(side)
            if state is None:
                continue
            if set(state) - STATE_KEYS:
                out.append(f"{kind}.metadata.{side} has unknown keys {sorted(set(state) - STATE_KEYS)}")
            if [k for k in STATE_REQUIRED if k not in state]:
                out.append(f"{kind}.metadata.{side} lacks {[k for k in STATE_REQUIRED if k not in state]}")
            if state.get("urn") != meta.get("urn") or state.get("type") != meta.get("type"):
                out.append(f"{kind}.metadata.{side} names another resource than its step")
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
    step_failed = False
    failed_or_bailed = False
    closing: list[tuple[int, str]] = []
    last_failed = -1
    for i, (line, kind) in enumerate(zip(lines, kinds, strict=True)):
        value = line.get(kind, {})
        if not isinstance(value, Mapping):
            continue
        if kind == "resourcePreEvent":
            pre[value["metadata"]["urn"]] = i
        elif kind == "diagnosticEvent" and value.get("severity") == "error":
            failed_or_bailed = True
            if value.get("urn"):
                errors.setdefault(value["urn"], []).append(i)
            else:
                closing.append((i, _plain(value.get("message", ""))))
        elif kind == "policyEvent" and value.get("enforcementLevel") == "mandatory":
            failed_or_bailed = True
        elif kind in ("resOutputsEvent", "resOpFailedEvent"):
            target = value["metadata"]["urn"]
            if target not in pre:
                problems.append(f"line {i + 1}: {kind} for {target} without its resourcePreEvent")
            if kind == "resOpFailedEvent":
                step_failed, last_failed = True, i
                if not any(pre.get(target, i) < e < i for e in errors.get(target, [])):
                    problems.append(
                        f"line {i + 1}: resOpFailedEvent for {target} without its error diagnostic"
                    )
    summary: Mapping[str, Any] = next((line["summaryEvent"] for line in lines if "summaryEvent" in line), {})
    result = summary.get("result")
    texts = [t for _, t in closing]
    if step_failed and not any(i > last_failed and t == CLOSING["failed"] for i, t in closing):
        problems.append("a failed step must be followed by the urn-less 'update failed' (it trumps a cancel)")
    if not step_failed and CLOSING["failed"] in texts:
        problems.append("'update failed' is only reported after a failed step (a bail reports nothing)")
    if step_failed and CLOSING["canceled"] in texts:
        problems.append("'update canceled' only when no step failed (step errors trump cancellation)")
    if result == "succeeded" and failed_or_bailed:
        problems.append("summary result 'succeeded' after a failure")
    if result == "failed" and not failed_or_bailed:
        problems.append("summary result 'failed' without any error")
    if CLOSING["canceled"] in texts and result != "failed":
        problems.append("a graceful cancel reports result 'failed' (OperationResultFromError)")
    return problems


def read(name: str) -> list[dict[str, Any]]:
    """A recorded `up`'s lines, by its path under FIXTURES (`good_deploy.jsonl`, `good/up-1.jsonl`)."""
    text = (FIXTURES / name).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def events(name: str) -> list[EngineEvent]:
    """A recorded `up` as the Automation API hands it to `on_event`."""
    return [EngineEvent.from_json(line) for line in read(name)]


def restamp(lines: Iterable[Mapping[str, Any]], start: int = 0, now: int = 0) -> list[dict[str, Any]]:
    """Lines numbered and timed as `stampEvents` does for a new run."""
    return [{**line, "sequence": start + i, "timestamp": now} for i, line in enumerate(lines)]


def recorded() -> list[str]:
    """Every recorded `up`, by its path under FIXTURES."""
    return sorted(p.relative_to(FIXTURES).as_posix() for p in FIXTURES.rglob("*.jsonl"))


def up_paths(case: str) -> list[str]:
    """The `up`s of one timed deploy, in order: the release, then the rollback."""
    paths = (FIXTURES / case).glob("up-*.jsonl")
    return [f"{case}/{p.name}" for p in sorted(paths, key=lambda p: int(p.stem.split("-")[1]))]


def load_case(case: str) -> list[list[EngineEvent]]:
    """Each `up` of a timed deploy as the Automation API reads its event log."""
    return [events(name) for name in up_paths(case)]


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
        urn: f"urn:pulumi:{sim.stack}::{PROJECT}::{qualified(urn)}::{r.name}" for urn, r in by_urn.items()
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
