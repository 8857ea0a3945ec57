"""Summarize deploy records: per stack and overall, success, causes, duration against the budget, MTTR.

The definitions: docs/deploy-records.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import textwrap
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from model.record import CAUSES, Cause, DeployRecord, RecordError, format_duration, read_record
from model.text import columns, fit, md_code, md_table, md_text, terminal

EXIT_OK = 0
"""The report was written (skipped files, if any, are listed in it)."""
EXIT_NO_RECORDS = 1
"""No deploy record was found among the paths: nothing to report."""
EXIT_USAGE = 2
"""Bad command line, or a path that does not exist."""
REPORT_KIND = "gitops-deploy/deploy-report"
REPORT_VERSION = 1
TABLE_WIDTH = 100
ALL = "all stacks"


@dataclass(frozen=True)
class Skipped:
    """A file that was not read as a deploy record, and why."""

    path: Path
    reason: str


@dataclass(frozen=True)
class Loaded:
    """Records found under the paths, in path order, and the files skipped."""

    records: tuple[tuple[Path, DeployRecord], ...]
    skipped: tuple[Skipped, ...]


def _files(path: Path) -> Iterable[Path]:
    """The path itself, or every *.json under a folder, in a stable order (symlinked folders not followed)."""
    if not path.is_dir():
        yield path
        return
    for root, dirs, names in os.walk(path):
        dirs.sort()
        for name in sorted(names):
            if name.endswith(".json"):
                yield Path(root, name)


def load(paths: Sequence[Path]) -> Loaded:
    """Read every record under `paths`; duplicates (the same deploy downloaded twice) are skipped."""
    records: list[tuple[Path, DeployRecord]] = []
    skipped: list[Skipped] = []
    seen_files: set[Path] = set()
    seen_deploys: dict[tuple[str, datetime, datetime, str], Path] = {}
    for root in paths:
        for path in _files(root):
            try:
                resolved = path.resolve()
            except (OSError, RuntimeError) as err:  # a symlink loop
                skipped.append(Skipped(path, f"cannot be read: {err}"))
                continue
            if resolved in seen_files:
                continue
            seen_files.add(resolved)
            try:
                record = read_record(path)
            except RecordError as err:
                skipped.append(Skipped(path, str(err)))
                continue
            key = (record.stack, record.started_at, record.ended_at, record.outcome)
            first = seen_deploys.setdefault(key, path)
            if first != path:
                skipped.append(Skipped(path, f"duplicate of {first} (same stack, start, end and outcome)"))
                continue
            records.append((path, record))
    return Loaded(tuple(records), tuple(skipped))


@dataclass(frozen=True)
class CauseCount:
    """How many failed deploys had one cause, and their share of all failed deploys."""

    cause: Cause
    count: int
    share: float


@dataclass(frozen=True)
class Recovery:
    """Incidents (runs of failed deploys) and how long they took to close."""

    recovered: tuple[float, ...] = ()
    """Seconds from each closed incident's first failure to the success that closed it."""
    open_since: tuple[datetime, ...] = ()
    """When each incident still open at the end of the records began (one per stack at most)."""

    @property
    def mean_seconds(self) -> float | None:
        """Mean time to recovery over closed incidents."""
        return statistics.fmean(self.recovered) if self.recovered else None


@dataclass(frozen=True)
class Summary:
    """The figures of one stack, or of all of them."""

    deploys: int
    succeeded: int
    rolled_back: int
    rollback_failed: int
    causes: tuple[CauseCount, ...]
    median_seconds: float
    p95_seconds: float
    budget_seconds: int | None
    """The budget when every deploy had the same one, else None."""
    over_budget: int
    recovery: Recovery = field(default_factory=Recovery)

    @property
    def failed(self) -> int:
        """Deploys that did not succeed."""
        return self.deploys - self.succeeded

    @property
    def success_rate(self) -> float:
        """Succeeded deploys over all deploys."""
        return self.succeeded / self.deploys

    @property
    def rollbacks(self) -> int:
        """Deploys that rolled back, whether the rollback worked or not."""
        return self.rolled_back + self.rollback_failed


def p95(values: Sequence[float]) -> float:
    """Nearest-rank 95th percentile: the smallest value with at least 95% of values at or under it."""
    ordered = sorted(values)
    return ordered[max(math.ceil(0.95 * len(ordered)) - 1, 0)]


def _recovery(records: Sequence[DeployRecord]) -> Recovery:
    """Incidents of one stack's records, in start order."""
    recovered: list[float] = []
    opened: datetime | None = None
    for record in sorted(records, key=lambda r: (r.started_at, r.ended_at)):
        if record.outcome != "succeeded":
            opened = opened or record.ended_at
        elif opened is not None:
            recovered.append((record.ended_at - opened).total_seconds())
            opened = None
    return Recovery(tuple(recovered), (opened,) if opened is not None else ())


def summarize(records: Sequence[DeployRecord], recovery: Recovery) -> Summary:
    """The figures of a non-empty set of records."""
    outcomes = Counter(r.outcome for r in records)
    failed = [r for r in records if r.outcome != "succeeded"]
    counts = Counter(r.cause or "other" for r in failed)
    causes = tuple(
        CauseCount(cause, counts[cause], counts[cause] / len(failed))
        for cause in sorted(counts, key=lambda c: (-counts[c], CAUSES.index(c)))
    )
    durations = [r.duration_seconds for r in records]
    budgets = {r.budget_seconds for r in records}
    return Summary(
        deploys=len(records),
        succeeded=outcomes["succeeded"],
        rolled_back=outcomes["rolled-back"],
        rollback_failed=outcomes["rollback-failed"],
        causes=causes,
        median_seconds=statistics.median(durations),
        p95_seconds=p95(durations),
        budget_seconds=budgets.pop() if len(budgets) == 1 else None,
        over_budget=sum(1 for r in records if r.over_budget),
        recovery=recovery,
    )


@dataclass(frozen=True)
class Report:
    """Per-stack figures (by stack name), the overall ones, and the skipped files."""

    stacks: dict[str, Summary]
    overall: Summary | None
    skipped: tuple[Skipped, ...]


def build_report(loaded: Loaded) -> Report:
    """Group the records by stack and summarize each group and the whole."""
    by_stack: dict[str, list[DeployRecord]] = {}
    for _, record in loaded.records:
        by_stack.setdefault(record.stack, []).append(record)
    stacks: dict[str, Summary] = {}
    for stack in sorted(by_stack):
        stacks[stack] = summarize(by_stack[stack], _recovery(by_stack[stack]))
    if not stacks:
        return Report({}, None, loaded.skipped)
    overall = Recovery(
        tuple(s for summary in stacks.values() for s in summary.recovery.recovered),
        tuple(t for summary in stacks.values() for t in summary.recovery.open_since),
    )
    everything = [r for _, r in loaded.records]
    return Report(stacks, summarize(everything, overall), loaded.skipped)


# --- output ------------------------------------------------------------------------------------------


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _percent(value: float) -> str:
    return f"{100 * value:.1f}%"


def _duration(value: float | None) -> str:
    return "-" if value is None else format_duration(value)


def _summary_json(summary: Summary) -> dict[str, Any]:
    return {
        "deploys": summary.deploys,
        "succeeded": summary.succeeded,
        "failed": summary.failed,
        "successRate": round(summary.success_rate, 4),
        "rollbacks": summary.rollbacks,
        "rolledBack": summary.rolled_back,
        "rollbackFailed": summary.rollback_failed,
        "causes": [{"cause": c.cause, "count": c.count, "share": round(c.share, 4)} for c in summary.causes],
        "durationSeconds": {"median": summary.median_seconds, "p95": summary.p95_seconds},
        "budgetSeconds": summary.budget_seconds,
        "overBudget": summary.over_budget,
        "recovery": {
            "recovered": len(summary.recovery.recovered),
            "meanSeconds": summary.recovery.mean_seconds,
            "open": len(summary.recovery.open_since),
            "openSince": [_iso(t) for t in summary.recovery.open_since],
        },
    }


def render_json(report: Report) -> str:
    """The report as one JSON document."""
    document = {
        "kind": REPORT_KIND,
        "version": REPORT_VERSION,
        "overall": _summary_json(report.overall) if report.overall else None,
        "stacks": {name: _summary_json(s) for name, s in report.stacks.items()},
        "skipped": [{"path": str(s.path), "reason": s.reason} for s in report.skipped],
    }
    # ASCII: a lone surrogate or a C1 control from a record never reaches the terminal raw.
    return json.dumps(document, indent=2) + "\n"


_CAUSE_COLUMNS = ("cause", "count", "share")
_COLUMNS = ("deploys", "success", "rollbacks", "rb failed", "median", "p95", "budget", "over", "MTTR", "open")


def _row(summary: Summary) -> list[str]:
    return [
        str(summary.deploys),
        _percent(summary.success_rate),
        str(summary.rollbacks),
        str(summary.rollback_failed),
        _duration(summary.median_seconds),
        _duration(summary.p95_seconds),
        _duration(summary.budget_seconds) if summary.budget_seconds else "varies",
        str(summary.over_budget),
        _duration(summary.recovery.mean_seconds),
        str(len(summary.recovery.open_since)),
    ]


def _rows(report: Report) -> list[tuple[str, Summary]]:
    rows = list(report.stacks.items())
    if report.overall is not None and len(report.stacks) != 1:
        rows.append((ALL, report.overall))
    return rows


def _header(report: Report) -> str:
    count = sum(s.deploys for s in report.stacks.values())
    skipped = f"; {len(report.skipped)} file(s) skipped" if report.skipped else ""
    return f"Deploy report: {count} deploy record(s) of {len(report.stacks)} stack(s){skipped}"


def render_table(report: Report, width: int = TABLE_WIDTH) -> str:
    """The report as plain text, no line longer than `width`."""
    out = [_header(report)]
    rows = _rows(report)
    if rows:
        table = [[terminal(name), *_row(s)] for name, s in rows]
        out += [
            "",
            *columns(["stack", *_COLUMNS], table, width, align="<" + ">" * len(_COLUMNS), cut_left=True),
        ]
        cause_rows = [
            [terminal(name), c.cause, str(c.count), _percent(c.share)] for name, s in rows for c in s.causes
        ]
        if cause_rows:
            out += ["", "Failures by cause (share of failed deploys):"]
            out += columns(
                ["stack", "cause", "count", "share"], cause_rows, width, align="<<>>", cut_left=True
            )
        opened = [(name, t) for name, s in report.stacks.items() for t in s.recovery.open_since]
        if opened:
            out += ["", "Not recovered yet (the last deploy failed):"]
            out += [fit(f"  {terminal(name)}: failing since {_iso(t)}", width) for name, t in opened]
    if report.skipped:
        out += ["", "Skipped:"]
        for s in report.skipped:
            out.append("  " + fit(terminal(str(s.path)), width - 2, left=True))
            out += textwrap.wrap(
                terminal(s.reason),
                width,
                initial_indent="    ",
                subsequent_indent="    ",
                break_on_hyphens=False,
            )
    return "\n".join(line.rstrip() for line in out) + "\n"


def render_markdown(report: Report) -> str:
    """The report as Markdown (for `$GITHUB_STEP_SUMMARY` or a PR comment)."""
    out = [f"### {_header(report)}"]
    rows = _rows(report)
    if rows:
        headers = ["stack", "deploys", "success", "rollbacks", "rollback failed", "median", "p95", "budget"]
        headers += ["over budget", "mean time to recovery", "open"]
        table = [[md_text(name), *_row(s)] for name, s in rows]
        out += ["", *md_table(headers, table, align="<" + ">" * (len(headers) - 1))]
        causes = [[md_text(n), c.cause, str(c.count), _percent(c.share)] for n, s in rows for c in s.causes]
        if causes:
            out += ["", "**Failures by cause** (share of failed deploys)", ""]
            out += md_table(["stack", *_CAUSE_COLUMNS], causes, align="<<>>")
        opened = [(name, t) for name, s in report.stacks.items() for t in s.recovery.open_since]
        if opened:
            out += ["", "**Not recovered yet** (the last deploy failed):", ""]
            out += [f"- {md_text(name)}: failing since {_iso(t)}" for name, t in opened]
    if report.skipped:
        out += ["", "**Skipped**", ""]
        out += [f"- {md_code(str(s.path))}: {md_text(s.reason)}" for s in report.skipped]
    return "\n".join(out) + "\n"


RENDERERS = {"table": render_table, "markdown": render_markdown, "json": render_json}


DESCRIPTION = (
    "Summarize gitops-deploy deploy records (files, or folders searched recursively for *.json): "
    "per stack and overall, the number of deploys, success rate, rollbacks, failures by cause "
    "with each cause's share, median and 95th-percentile duration against the budget and how "
    "many went over, and mean time to recovery. Files that are not deploy records are listed "
    "as skipped with the reason."
)
EXIT_CODES: tuple[tuple[str, str], ...] = (
    (str(EXIT_OK), "the report was written (skipped files are listed in it)"),
    (str(EXIT_NO_RECORDS), "no deploy record was found"),
    (str(EXIT_USAGE), "bad command line or a path that does not exist"),
)
EPILOG = (
    "exit codes: "
    + "; ".join(f"{code} {meaning}" for code, meaning in EXIT_CODES)
    + ". See docs/deploy-records.md."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The report's arguments, on `python -m deploy report`'s parser (or this module's own)."""
    parser.add_argument(
        "paths", nargs="+", type=Path, metavar="PATH", help="a record file or a folder of them"
    )
    parser.add_argument(
        "--format",
        choices=sorted(RENDERERS),
        default="table",
        help="table (plain text, 100 columns; the default), markdown, or json",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m deploy report", description=DESCRIPTION, epilog=EPILOG)
    add_arguments(parser)
    return parser


def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Write the report for parsed arguments; the exit code says whether any record was found."""
    missing = [str(p) for p in args.paths if not p.exists()]
    if missing:
        err.write(f"report: error: no such file or folder: {terminal(', '.join(missing))}\n")
        return EXIT_USAGE
    report = build_report(load(args.paths))
    out.write(RENDERERS[args.format](report))
    if report.overall is None:
        err.write("report: no deploy record found in the given paths\n")
        return EXIT_NO_RECORDS
    return EXIT_OK


def main(argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """`python -m deploy report PATH...` without the `report`: parse, read the records, write the report."""
    return run(_parser().parse_args(argv), out or sys.stdout, err or sys.stderr)


if __name__ == "__main__":
    # `python -m deploy.report` keeps working: the same command as `python -m deploy report`.
    sys.exit(main())
