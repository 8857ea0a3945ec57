"""The soak in the record and the report: a soak per app (version 3, older versions still read), its time
apart from the budget, and late failures (caught in the soak) apart from the gate's in the DORA figures."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from deploy.figures import Loaded, build_report
from deploy.report import render_json, render_markdown, render_table
from model.record import (
    AppRecord,
    DeployRecord,
    FailureRecord,
    Phase,
    PhaseTiming,
    SoakRecord,
    from_json,
    to_json,
)
from model.record_table import render_text

DAY = datetime(2026, 1, 5, tzinfo=UTC)
WEB = "registry.example.com/platform/web@sha256:" + "3" * 64
FAILED_SOAK = SoakRecord(
    WEB, False, 40, 300, 10, 60, 5, 3, (3.1, 4.9, 5.0), "failed",
    "3 failed probes in a row (failuresInARow 3)", "#3 HTTP 503 3 ms at +20 s", "#5 HTTP 503 4 ms at +40 s",
)  # fmt: skip
RESTORED_SOAK = SoakRecord(
    WEB, True, 300, 300, 10, 60, 31, 0, (2.0, 3.0, 9.5), "passed", None, None, None
)  # fmt: skip


def _record(minutes: int, seconds: int, soak: int, outcome: str, cause: str | None) -> DeployRecord:
    start = DAY + timedelta(minutes=minutes)
    failures = () if cause is None else (FailureRecord(cause, "release", "web", None, f"{cause} failed"),)  # type: ignore[arg-type]
    phases: dict[Phase, PhaseTiming] = {"sync": PhaseTiming(20, "succeeded", "update")}
    app = AppRecord("web", None, WEB, phases, (FAILED_SOAK, RESTORED_SOAK) if cause == "soak" else ())
    end = start + timedelta(seconds=seconds)
    return DeployRecord("prod", start, end, 300, outcome, cause, failures, (app,), None, soak_seconds=soak)  # type: ignore[arg-type]


# (start minute, seconds, of which soaking, outcome, cause); by hand:
# - every deploy shipped; 2 of 5 failed: CFR 0.4, the gate's 0.2, the soak's (late) 0.2;
# - the soak's incident: 00:18:20 to 00:36:40 (1100 s); the gate's: 01:03:20 to 01:16:40 (800 s);
# - against the 300 s budget they take 100, 170, 100, 200, 100 s: median 100, none over (raw: 4 over).
RECORDS = [
    _record(0, 400, 300, "succeeded", None),
    _record(10, 500, 330, "rolled-back", "soak"),
    _record(30, 400, 300, "succeeded", None),
    _record(60, 200, 0, "rolled-back", "health"),
    _record(70, 400, 300, "succeeded", None),
]


def test_the_soak_is_recorded_per_app_and_read_back() -> None:
    record = RECORDS[1]
    doc = to_json(record)
    assert doc["version"] == 3 and doc["soakSeconds"] == 330
    assert doc["apps"][0]["soak"][0] == {
        "digest": WEB, "restored": False, "seconds": 40, "plannedSeconds": 300, "intervalSeconds": 10,
        "windowSeconds": 60, "probes": 5, "failures": 3, "latencyMs": {"p50": 3.1, "p95": 4.9, "max": 5.0},
        "verdict": "failed", "reason": "3 failed probes in a row (failuresInARow 3)",
        "firstFailure": "#3 HTTP 503 3 ms at +20 s", "lastFailure": "#5 HTTP 503 4 ms at +40 s",
    }  # fmt: skip
    assert from_json(json.loads(json.dumps(doc))) == record


def test_a_version_2_record_reads_as_one_without_a_soak() -> None:
    doc = {**to_json(RECORDS[0]), "version": 2}
    del doc["soakSeconds"]
    del doc["apps"][0]["soak"]
    read = from_json(doc)
    assert read.soak_seconds == 0 and read.apps[0].soaks == ()
    assert read == dataclasses.replace(RECORDS[0], soak_seconds=0)


def test_the_table_keeps_the_soak_apart_from_the_budget() -> None:
    text = " ".join(render_text(RECORDS[1]).split())
    assert text.startswith(
        "gitops-deploy prod: rolled-back in 2m50s, budget 5m00s: within budget (and a soak of 5m30s, apart)"
    )
    assert "soak web (release): failed after 40s of 5m00s, 5 probes every 10s, 3 failed" in text
    assert "first failure #3 HTTP 503 3 ms at +20 s, last #5 HTTP 503 4 ms at +40 s" in text
    assert "soak web (restored release): passed after 5m00s of 5m00s, 31 probes" in text
    assert not RECORDS[1].over_budget and RECORDS[1].duration_seconds > RECORDS[1].budget_seconds


def test_the_report_separates_late_failures_from_the_gates(tmp_path: Path) -> None:
    report = build_report(Loaded(tuple((tmp_path / f"{i}.json", r) for i, r in enumerate(RECORDS)), ()))
    [prod] = json.loads(render_json(report))["stacks"].values()
    assert prod["dora"]["changeFailureRate"] == 0.4
    assert prod["dora"]["caughtByGate"] == {"changeFailureRate": 0.2, "timeToRestoreSeconds": 800.0}
    assert prod["dora"]["caughtInSoak"] == {"changeFailureRate": 0.2, "timeToRestoreSeconds": 1100.0}
    assert prod["dora"]["timeToRestoreSeconds"] == 950.0
    assert prod["durationSeconds"] == {"median": 100, "p95": 200} and prod["overBudget"] == 0
    table = render_table(report)
    assert "Late failures (caught in the soak after the gate passed) apart from the gate's:" in table
    row = next(line for line in table.splitlines() if line.startswith("prod") and "20.0%" in line)
    assert row.split() == ["prod", "20.0%", "20.0%", "13m20s", "18m20s"]
    assert "| prod | 20.0% | 20.0% | 13m20s | 18m20s |" in render_markdown(report)
