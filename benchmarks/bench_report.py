"""Report benchmark: `python -m deploy report` over 100, 1,000 and 10,000 deploy records.

Writes that many records (several stacks, every outcome and cause) in nested folders, as `gh run download`
leaves them, then times finding, reading, validating and summarizing them, and rendering every format.
Prints the time per record at each size and its ratio to the smallest size's: linear growth keeps it near 1.
"""

from __future__ import annotations

import io
import tempfile
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import _harness

from deploy.causes import CAUSES
from deploy.report import RENDERERS, Report, build_report, load, main
from deploy.timings import Phase, PhaseTiming
from model.record import AppRecord, DeployRecord, FailureRecord, Outcome, write_record

SIZES = (100, 1_000, 10_000)
ROUNDS = 3
"""Each size is timed once per round, rounds interleaved, best kept: drift hits every size alike."""
STACKS = ("dev", "staging", "prod", "org/gitops-deploy/prod-eu")
OUTCOMES: tuple[Outcome, ...] = ("succeeded",) * 7 + ("failed", "rolled-back", "rollback-failed")
DIGEST = "registry.example.com/platform/{app}@sha256:" + "0" * 64


def _record(i: int) -> DeployRecord:
    """A realistic record: two apps, five or six phases each, a failure when it failed."""
    outcome = OUTCOMES[i % len(OUTCOMES)]
    start = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=17 * i)
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
    apps = tuple(
        AppRecord(app, DIGEST.format(app=app), DIGEST.format(app=app), phases) for app in ("web", "api")
    )
    failures = () if cause is None else (FailureRecord(cause, "release", "web", None, f"{cause}: it failed"),)
    end = start + timedelta(seconds=120 + (i * 37) % 300)
    return DeployRecord(STACKS[i % len(STACKS)], start, end, 300, outcome, cause, failures, apps)


def _summarize(folder: Path) -> Report:
    return build_report(load([folder]))


def _render(report: Report) -> list[str]:
    return [render(report) for render in RENDERERS.values()]


def main_bench() -> None:
    """Time the report at each size; print the cost per record and its ratio to the smallest size's."""
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        folders = {count: Path(tmp, str(count)) for count in SIZES}
        for count, folder in folders.items():
            for i in range(count):
                write_record(_record(i), folder / f"run-{i // 100:04d}" / f"{i:05d}" / "deploy-record.json")
            loaded = load([folder])
            assert len(loaded.records) == count and not loaded.skipped
        best = dict.fromkeys(SIZES, float("inf"))
        render = dict.fromkeys(SIZES, float("inf"))
        for _ in range(ROUNDS):
            for count, folder in folders.items():
                seconds, report = _harness.timed(partial(_summarize, folder))
                best[count] = min(best[count], seconds)
                render[count] = min(render[count], _harness.timed(partial(_render, report))[0])
            # One end-to-end run of the command line at the smallest size proves the whole path works.
            code = main([str(folders[SIZES[0]]), "--format", "json"], out=io.StringIO(), err=io.StringIO())
            assert code == 0, code
    base = best[SIZES[0]] / SIZES[0]
    rows = [(c, best[c], best[c] / c * 1e6, best[c] / c / base, render[c] * 1e3) for c in SIZES]
    headers = ["records", "read+summarize s", "per record µs", "ratio", "render 3 formats ms"]
    _harness.table(headers, rows, "d .3f .0f .2f .2f")
    print(f"best of {ROUNDS} interleaved rounds; ratio: time per record against the {SIZES[0]}-record run")
    print("(1.00x = linear). Rendering depends on the number of stacks, not of records.")


if __name__ == "__main__":
    _harness.parse(__doc__)
    main_bench()
