"""Report benchmark: `python -m deploy report` over 100, 1,000 and 10,000 deploy records.

Writes that many generated records (several stacks, every outcome and cause) as files in nested
folders, as `gh run download` leaves them, then times the report end to end: finding the files,
reading and validating each record, summarizing and rendering every format. Prints the time per
record at each size and its ratio to the smallest size's, measured in this run: linear growth keeps
the ratio near 1.
"""

from __future__ import annotations

import io
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from deploy.figures import Report, build_report, load  # noqa: E402
from deploy.report import RENDERERS, main  # noqa: E402
from model.record import (  # noqa: E402
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
STACKS = ("dev", "staging", "prod", "org/gitops-deploy/prod-eu")
OUTCOMES: tuple[Outcome, ...] = ("succeeded",) * 7 + ("failed", "rolled-back", "rollback-failed")
DIGEST = "registry.example.com/platform/{app}@sha256:" + "0" * 64


def _record(i: int) -> DeployRecord:
    """A realistic record: two apps, five or six phases each, a failure when it failed."""
    outcome = OUTCOMES[i % len(OUTCOMES)]
    start = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=17 * i)
    cause = None if outcome == "succeeded" else CAUSES[i % len(CAUSES)]
    apps = []
    for app in ("web", "api"):
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
        digest = DIGEST.format(app=app)
        apps.append(AppRecord(app, digest, digest, phases))
    failures = () if cause is None else (FailureRecord(cause, "release", "web", None, f"{cause}: it failed"),)
    seconds = 120 + (i * 37) % 300
    return DeployRecord(
        STACKS[i % len(STACKS)],
        start,
        start + timedelta(seconds=seconds),
        300,
        outcome,
        cause,
        failures,
        tuple(apps),
    )


def _write(folder: Path, count: int) -> None:
    for i in range(count):
        write_record(_record(i), folder / f"run-{i // 100:04d}" / f"{i:05d}" / "deploy-record.json")


ROUNDS = 3
"""Each size is timed once per round, rounds interleaved, best kept: drift hits every size alike."""


def _summarize(folder: Path) -> Report:
    return build_report(load([folder]))


def _render(report: Report) -> list[str]:
    return [render(report) for render in RENDERERS.values()]


def _timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main_bench() -> None:
    """Time the report at each size; print the cost per record and its ratio to the smallest size's."""
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        folders = {count: Path(tmp, str(count)) for count in SIZES}
        for count, folder in folders.items():
            _write(folder, count)
            loaded = load([folder])
            assert len(loaded.records) == count and not loaded.skipped
        best = {count: float("inf") for count in SIZES}
        render = {count: float("inf") for count in SIZES}
        for _ in range(ROUNDS):
            for count, folder in folders.items():
                best[count] = min(best[count], _timed(partial(_summarize, folder)))
                render[count] = min(render[count], _timed(partial(_render, _summarize(folder))))
            # One end-to-end run of the command line at the smallest size proves the whole path works.
            code = main([str(folders[SIZES[0]]), "--format", "json"], out=io.StringIO(), err=io.StringIO())
            assert code == 0, code
    base = best[SIZES[0]] / SIZES[0]
    print(
        f"{'records':>8}  {'read+summarize':>14}  {'per record':>10}  {'ratio':>5}  {'render 3 formats':>16}"
    )
    for count in SIZES:
        per = best[count] / count
        print(
            f"{count:>8}  {best[count]:>12.3f} s  {per * 1e6:>7.0f} µs  {per / base:>4.2f}x  "
            f"{render[count] * 1e3:>13.2f} ms"
        )
    print(f"best of {ROUNDS} interleaved rounds; ratio: time per record against the {SIZES[0]}-record run")
    print("(1.00x = linear). Rendering depends on the number of stacks, not of records.")


if __name__ == "__main__":
    main_bench()
