"""Report benchmark: `python -m deploy report` over 100, 1,000 and 10,000 deploy records, as `gh run download`
leaves them; the time per record at each size against the smallest size's (1.00x: linear)."""

from __future__ import annotations

import io
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import _harness

from deploy.figures import build_report, load
from deploy.report import RENDERERS, main
from model.record import (
    CAUSES,
    AppRecord,
    DeployRecord,
    FailureRecord,
    Outcome,
    Phase,
    PhaseTiming,
    write_record,
)

SIZES = (100, 1_000, 10_000)
ROUNDS = 3
"""Each size is timed once per round, rounds interleaved, best kept: drift hits every size alike."""
STACKS = ("dev", "staging", "prod", "org/gitops-deploy/prod-eu")
OUTCOMES: tuple[Outcome, ...] = ("succeeded",) * 7 + ("failed", "rolled-back", "rollback-failed")
DIGEST = "registry.example.com/platform/{app}@sha256:" + "0" * 64


def _record(i: int) -> DeployRecord:
    """A realistic record: two apps, five or six phases each, a failure when it failed."""
    outcome, start = OUTCOMES[i % len(OUTCOMES)], datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=17 * i)
    cause = None if outcome == "succeeded" else CAUSES[i % len(CAUSES)]
    phases: dict[Phase, PhaseTiming] = {
        "preflight": PhaseTiming(2 + i % 3, "succeeded", "same"),
        "build": PhaseTiming(30 + i % 40, "succeeded", "update"),
        "image-size": PhaseTiming(1, "succeeded", "update"),
        "sync": PhaseTiming(40 + i % 90, "succeeded", "update"),
        "health": PhaseTiming(10 + i % 20, "failed" if cause else "succeeded", "update"),
    }
    if outcome in ("rolled-back", "rollback-failed"):
        phases["rollback"] = PhaseTiming(
            60, "failed" if outcome == "rollback-failed" else "succeeded", "rollback"
        )
    apps = tuple(AppRecord(a, DIGEST.format(app=a), DIGEST.format(app=a), phases) for a in ("web", "api"))
    failures = () if cause is None else (FailureRecord(cause, "release", "web", None, f"{cause}: it failed"),)
    end = start + timedelta(seconds=120 + (i * 37) % 300)
    return DeployRecord(STACKS[i % len(STACKS)], start, end, 300, outcome, cause, failures, apps)


if __name__ == "__main__":
    _harness.parse(__doc__)
    summarize, render = dict.fromkeys(SIZES, float("inf")), dict.fromkeys(SIZES, float("inf"))
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        for count in SIZES:
            for i in range(count):
                write_record(_record(i), Path(tmp, f"{count}/run-{i // 100:04d}/{i:05d}/deploy-record.json"))
            loaded = load([Path(tmp, str(count))])
            assert len(loaded.records) == count and not loaded.skipped
        for _ in range(ROUNDS):
            for count in SIZES:
                seconds, report = _harness.timed(lambda: build_report(load([Path(tmp, str(count))])))  # noqa: B023
                summarize[count] = min(summarize[count], seconds)
                seconds = _harness.timed(lambda: [fmt(report) for fmt in RENDERERS.values()])[0]  # noqa: B023
                render[count] = min(render[count], seconds)
            # One end-to-end run of the command line at the smallest size proves the whole path works.
            assert main([f"{tmp}/{SIZES[0]}", "--format", "json"], out=io.StringIO(), err=io.StringIO()) == 0
    per = {count: seconds / count for count, seconds in summarize.items()}
    rows = [(c, summarize[c], per[c] * 1e6, per[c] / per[SIZES[0]], render[c] * 1e3) for c in SIZES]
    headers = ["records", "read+summarize s", "per record µs", "ratio", "render 3 formats ms"]
    _harness.table(headers, rows, "d .3f .0f .2f .2f")
    print(f"best of {ROUNDS} interleaved rounds; ratio: time per record against the {SIZES[0]}-record run")
    print("(1.00x = linear). Rendering depends on the number of stacks, not of records.")
