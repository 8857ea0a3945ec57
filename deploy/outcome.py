"""How a deploy ends: its exit code (one enum, stated in `--help`) and its deploy record."""

from __future__ import annotations

import os
import subprocess
import textwrap
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import IntEnum
from pathlib import Path
from typing import TextIO

from pulumi.automation.events import EngineEvent

from deploy.causes import PROGRAM, cause_of, classify, failures, summary
from deploy.events import Event
from deploy.process import SIGNALS
from deploy.runtime_config import RuntimeKey
from deploy.timings import measure
from model.config import DEFAULT_BUDGET_SECONDS
from model.failed_releases import FailedReleaseRecord
from model.record import (
    OUTCOMES,
    AppRecord,
    Cause,
    DeployRecord,
    During,
    FailureRecord,
    Outcome,
    SoakRecord,
    write_record,
)
from model.record_table import render_markdown, render_text


class Exit(IntEnum):
    """The exit codes of `deploy up`; a signal exits with 128 + its number (130, 143)."""

    OK = 0
    FAILED = 1
    SETUP = 2
    ROLLED_BACK = 3
    ROLLBACK_FAILED = 4
    BLOCKED = 5
    LOCKED = 6


MEANINGS: Mapping[Exit, str] = {
    Exit.OK: "deployed",
    Exit.FAILED: "the update failed; nothing was rolled back",
    Exit.SETUP: "could not start: no Pulumi CLI on PATH, no such stack or one it cannot read (its passphrase "
    "unset), no policy config, a bad option",
    Exit.ROLLED_BACK: "a release gate or a soak failed; the failed apps were rolled back and the release "
    "recorded",
    Exit.ROLLBACK_FAILED: "a release gate or a soak failed and the rollback failed too (or the restored "
    "release failed its soak)",
    Exit.BLOCKED: "an app would ship content that failed its health gate before: nothing was changed",
    Exit.LOCKED: "the stack is locked, another update is in progress, or an Argo CD operation this deploy "
    "did not start did not end in time: nothing was changed",
}
EXIT_CODES: tuple[tuple[str, str], ...] = (
    *((str(int(code)), MEANINGS[code]) for code in Exit),
    (
        ", ".join(str(128 + s) for s in SIGNALS),
        f"interrupted by {' or '.join(s.name for s in SIGNALS)}; the stack's config was restored",
    ),
)
"""`--help`'s list of exit codes, generated from Exit."""
HELP_WIDTH = 78
RECORD_OUTCOMES: Mapping[int, Outcome] = {
    Exit.OK: "succeeded",
    Exit.ROLLED_BACK: "rolled-back",
    Exit.ROLLBACK_FAILED: "rollback-failed",
}
"""The deploy record's outcome of each exit code; any other code is `failed`."""


def wrapped(text: str) -> str:
    """A paragraph of `--help`."""
    return textwrap.fill(text, HELP_WIDTH)


def exit_codes_help(codes: Sequence[tuple[str, str]] = EXIT_CODES, what: str = "exit codes") -> str:
    """`--help`'s list of exit codes and their meanings."""
    width = max(len(code) for code, _ in codes)
    indent = " " * (width + 4)
    lines = [
        textwrap.fill(
            meaning, HELP_WIDTH, initial_indent=f"  {code.ljust(width)}  ", subsequent_indent=indent
        )
        for code, meaning in codes
    ]
    return f"{what}:\n" + "\n".join(lines)


@dataclass
class Run:
    """What one deploy did, for its record."""

    started: datetime
    ups: list[list[Event]] = field(default_factory=list)
    """The engine events of each `up`: the release, then the rollback."""
    good: dict[str, str] = field(default_factory=dict)
    """Each app's last known good digest before the deploy."""
    budget_seconds: int = DEFAULT_BUDGET_SECONDS
    rolled_back: list[str] = field(default_factory=list)
    error: str | None = None
    """The CLI's error, or why the deploy stopped before the update: the cause when events show none."""
    idle: list[int] = field(default_factory=list)
    """Per `up` (as `ups`), the seconds before it that the deploy spent soaking: not the rollback's time."""
    soaks: dict[str, list[SoakRecord]] = field(default_factory=dict)
    """Each app's soaks, in order."""
    soak_failures: list[FailureRecord] = field(default_factory=list)
    soak_seconds: int = 0
    """Wall-clock seconds spent soaking and marking the soaked digests: apart from the budget."""
    held: list[RuntimeKey] = field(default_factory=list)
    """The rollbacks' pins, which every later `up` of the deploy keeps."""
    record: FailedReleaseRecord | None = None
    """The failed-release record the last `up` was given, when the deploy gave one."""


def _stamp(timestamp: int | None) -> datetime | None:
    return None if timestamp is None else datetime.fromtimestamp(timestamp, UTC)


GIT_SECONDS = 5
"""The bound on reading the deployed commit's time: a slow or missing git never holds up the record."""


def commit_time(work_dir: Path, sha: str | None = None) -> datetime | None:
    """The committer time of `sha` ($GITHUB_SHA, else HEAD) in `work_dir`'s repository; None if unknown."""
    revision = sha or os.environ.get("GITHUB_SHA") or "HEAD"
    try:
        done = subprocess.run(
            ["git", "-C", str(work_dir), "show", "-s", "--format=%cI", revision, "--"],
            capture_output=True, text=True, timeout=GIT_SECONDS, check=False,
        )  # fmt: skip
        moment = datetime.fromisoformat(done.stdout.strip()) if done.returncode == 0 else None
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    return None if moment is None or moment.tzinfo is None else moment.astimezone(UTC)


def build_record(
    stack: str,
    ups: Sequence[Iterable[EngineEvent | Event]],
    outcome: Outcome,
    *,
    digests_before: Mapping[str, str] | None = None,
    digests_after: Mapping[str, str] | None = None,
    started_at: datetime | None = None,
    ended_at: datetime | None = None,
    budget_seconds: int = DEFAULT_BUDGET_SECONDS,
    rolled_back: Collection[str] = (),
    error: str | None = None,
    commit_at: datetime | None = None,
    idle: Sequence[int] = (),
    soaks: Mapping[str, Sequence[SoakRecord]] | None = None,
    soak_failures: Sequence[FailureRecord] = (),
    soak_seconds: int = 0,
) -> DeployRecord:
    """The record of one deploy: `ups[0]` is the release, later ones its rollback.

    Start and end default to the first and last event; `error` is the CLI's error text, classified when
    a failed deploy's events show no failure (the update never started, for example).
    """
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome {outcome!r} is not one of {', '.join(OUTCOMES)}")
    if budget_seconds < 1:
        raise ValueError(f"budget_seconds must be at least 1, got {budget_seconds}")
    before, after = dict(digests_before or {}), dict(digests_after or {})
    timings = measure(ups, apps=[*before, *after], rolled_back=rolled_back, idle=idle)
    start = started_at or _stamp(timings.start) or datetime.now(UTC)
    end = ended_at or _stamp(timings.end) or start
    found: list[FailureRecord] = []
    cause: Cause | None = None
    if outcome != "succeeded":
        for index, events in enumerate(ups):
            during: During = "release" if index == 0 else "rollback"
            listed = failures(events)
            first = cause_of(events)
            if cause is None and first is not None:
                cause = first.cause
            found.extend(
                FailureRecord(f.cause, during, f.app, f.urn, f.message)
                for f in listed
                if not f.repeat or f is first
            )
            if index == 0 and soak_failures:
                # A soak follows a release `up` that succeeded: its failure comes before any rollback's.
                cause = cause or soak_failures[0].cause
                found.extend(soak_failures)
        if cause is None:
            text = error.strip() if error else ""
            cause = classify(PROGRAM, text) if text else "other"
            found.append(
                FailureRecord(
                    cause, "release", None, None, summary(text) or "the update failed before any engine event"
                )
            )
    soaked = soaks or {}
    apps = tuple(
        AppRecord(t.app, before.get(t.app), after.get(t.app), dict(t.phases), tuple(soaked.get(t.app, ())))
        for t in timings.apps
    )
    end = max(end, start)
    soak = min(soak_seconds, int((end - start).total_seconds()))
    return DeployRecord(
        stack, start, end, budget_seconds, outcome, cause, tuple(found), apps, commit_at, soak_seconds=soak
    )


def finish(
    stack: str, run: Run, code: int, after: Mapping[str, str], ended: datetime, out: TextIO,
    *, record: Path | None, step_summary: Path | None, work_dir: Path | None = None,
    on_record: Callable[[DeployRecord], DeployRecord] | None = None,
) -> None:  # fmt: skip
    """The deploy record: the table on `out`, Markdown for $GITHUB_STEP_SUMMARY, JSON for `--record`."""
    # Whole seconds, as the record stores them: the table then shows what the record says.
    stamps = [e.timestamp for events in run.ups for e in events]
    ended = ended.replace(microsecond=0)
    if stamps:
        ended = max(ended, datetime.fromtimestamp(max(stamps), UTC))
    built = build_record(
        stack, run.ups, RECORD_OUTCOMES.get(code, "failed"), digests_before=run.good, digests_after=after,
        started_at=min(run.started.replace(microsecond=0), ended), ended_at=ended,
        budget_seconds=run.budget_seconds, rolled_back=run.rolled_back, error=run.error,
        commit_at=commit_time(work_dir) if work_dir is not None else None, idle=run.idle, soaks=run.soaks,
        soak_failures=run.soak_failures, soak_seconds=run.soak_seconds,
    )  # fmt: skip
    built = on_record(built) if on_record is not None else built  # the reports, and what failed of them
    out.write(render_text(built))
    if step_summary is not None:
        try:
            with step_summary.open("a", encoding="utf-8") as summary_file:
                summary_file.write(render_markdown(built) + "\n")
        except OSError as err:
            out.write(f"deploy: warning: could not append to $GITHUB_STEP_SUMMARY: {err.strerror or err}\n")
    if record is not None:
        try:
            write_record(built, record)
            out.write(f"deploy: deploy record written to {record}\n")
        except OSError as err:
            out.write(f"deploy: warning: could not write the deploy record {record}: {err.strerror or err}\n")
