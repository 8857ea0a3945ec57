"""`python -m deploy report`: the figures of many deploy records as a table, Markdown or JSON."""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from deploy.figures import Report, Summary, build_report, load
from deploy.outcome import exit_codes_help, wrapped
from model.record_table import format_duration
from model.text import columns, fit, md_code, md_table, md_text, terminal

EXIT_OK, EXIT_NO_RECORDS, EXIT_USAGE = 0, 1, 2
REPORT_KIND = "gitops-deploy/deploy-report"
REPORT_VERSION = 1
TABLE_WIDTH = 100
ALL = "all stacks"
_INDENT = "    "


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
        "dora": _dora_json(summary),
    }


def _dora_json(summary: Summary) -> dict[str, Any] | None:
    d = summary.dora
    if d is None:
        return None
    rate = d.change_failure_rate
    return {
        "deploymentFrequency": {"perDay": round(d.per_day, 4), "perWeek": round(7 * d.per_day, 4)},
        "leadTimeSeconds": {
            "median": d.lead_time.median, "p95": d.lead_time.p95,
            "known": len(d.lead_time.seconds), "unknown": d.lead_time.unknown,
        },
        "changeFailureRate": None if rate is None else round(rate, 4),
        "timeToRestoreSeconds": summary.recovery.mean_seconds,
        "caughtByGate": {
            "changeFailureRate": _rounded(d.caught[0]),
            "timeToRestoreSeconds": summary.recovery.mean_caught(False),
        },
        "caughtInSoak": {
            "changeFailureRate": _rounded(d.caught[1]),
            "timeToRestoreSeconds": summary.recovery.mean_caught(True),
        },
        "stoppedBeforeUsers": {
            "total": d.stopped.total, "beforeUpdate": d.stopped.before_update,
            "byRollback": d.stopped.by_rollback,
        },
    }  # fmt: skip


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


_CAUGHT_COLUMNS = ("CFR gate", "CFR soak", "restore gate", "restore soak")
_CAUGHT_TITLE = "Late failures (caught in the soak after the gate passed) apart from the gate's:"


def _caught_row(summary: Summary) -> list[str]:
    d = summary.dora
    gate, soak = d.caught if d is not None else (None, None)
    return [
        "-" if gate is None else _percent(gate),
        "-" if soak is None else _percent(soak),
        _duration(summary.recovery.mean_caught(False)),
        _duration(summary.recovery.mean_caught(True)),
    ]


def render_json(report: Report) -> str:
    """The report as one JSON document."""
    document = {
        "kind": REPORT_KIND,
        "version": REPORT_VERSION,
        "period": [_iso(t) for t in report.period] if report.period else None,
        "outside": report.outside,
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


_DORA_COLUMNS = ("deploys/week", "lead median", "lead p95", "lead unknown", "CFR", "restore", "stopped")
_DORA_TITLE = "DORA keys (stopped: failures stopped before users, before the update + by a rollback):"


def _dora_row(summary: Summary) -> list[str]:
    d = summary.dora
    if d is None:
        return ["-"] * len(_DORA_COLUMNS)
    rate = d.change_failure_rate
    return [
        f"{7 * d.per_day:.1f}",
        _duration(d.lead_time.median),
        _duration(d.lead_time.p95),
        str(d.lead_time.unknown),
        "-" if rate is None else _percent(rate),
        _duration(summary.recovery.mean_seconds),
        f"{d.stopped.total} ({d.stopped.before_update}+{d.stopped.by_rollback})",
    ]


def _period(report: Report) -> str:
    if report.period is None:
        return "Period: none"
    outside = f"; {report.outside} record(s) outside it left out" if report.outside else ""
    return f"Period: {_iso(report.period[0])} to {_iso(report.period[1])}{outside}"


def _rows(report: Report) -> list[tuple[str, Summary]]:
    rows = list(report.stacks.items())
    if report.overall is not None and len(report.stacks) != 1:
        rows.append((ALL, report.overall))
    return rows


def _cause_rows(rows: Sequence[tuple[str, Summary]], escape: Callable[[str], str]) -> list[list[str]]:
    return [[escape(name), c.cause, str(c.count), _percent(c.share)] for name, s in rows for c in s.causes]


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
        align = "<" + ">" * len(_COLUMNS)
        out += ["", *columns(["stack", *_COLUMNS], table, width, align=align, cut_left=True)]
        causes = _cause_rows(rows, terminal)
        if causes:
            out += ["", "Failures by cause (share of failed deploys):"]
            out += columns(["stack", *_CAUSE_COLUMNS], causes, width, align="<<>>", cut_left=True)
        opened = [(name, t) for name, s in report.stacks.items() for t in s.recovery.open_since]
        if opened:
            out += ["", "Not recovered yet (the last deploy failed):"]
            out += [fit(f"  {terminal(name)}: failing since {_iso(t)}", width) for name, t in opened]
        dora_rows = [[terminal(name), *_dora_row(s)] for name, s in rows]
        out += ["", fit(_DORA_TITLE, width), fit(_period(report), width)]
        out += columns(["stack", *_DORA_COLUMNS], dora_rows, width, align="<" + ">" * 7, cut_left=True)
        caught = [[terminal(name), *_caught_row(s)] for name, s in rows]
        out += ["", fit(_CAUGHT_TITLE, width)]
        out += columns(["stack", *_CAUGHT_COLUMNS], caught, width, align="<>>>>", cut_left=True)
    if report.skipped:
        out += ["", "Skipped:"]
        for s in report.skipped:
            out.append("  " + fit(terminal(str(s.path)), width - 2, left=True))
            out += textwrap.wrap(
                terminal(s.reason),
                width,
                initial_indent=_INDENT,
                subsequent_indent=_INDENT,
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
        causes = _cause_rows(rows, md_text)
        if causes:
            out += ["", "**Failures by cause** (share of failed deploys)", ""]
            out += md_table(["stack", *_CAUSE_COLUMNS], causes, align="<<>>")
        opened = [(name, t) for name, s in report.stacks.items() for t in s.recovery.open_since]
        if opened:
            out += ["", "**Not recovered yet** (the last deploy failed):", ""]
            out += [f"- {md_text(name)}: failing since {_iso(t)}" for name, t in opened]
        out += ["", f"**{_DORA_TITLE.rstrip(':')}**; {_period(report)}", ""]
        dora_headers = ["stack", "deploys per week", "lead time median", "lead time p95", "lead time unknown"]
        dora_headers += ["change failure rate", "time to restore", "stopped before users"]
        dora_rows = [[md_text(name), *_dora_row(s)] for name, s in rows]
        out += md_table(dora_headers, dora_rows, align="<" + ">" * 7)
        out += ["", f"**{_CAUGHT_TITLE.rstrip(':')}**", ""]
        caught = [[md_text(name), *_caught_row(s)] for name, s in rows]
        out += md_table(["stack", *_CAUGHT_COLUMNS], caught, align="<>>>>")
    if report.skipped:
        out += ["", "**Skipped**", ""]
        out += [f"- {md_code(str(s.path))}: {md_text(s.reason)}" for s in report.skipped]
    return "\n".join(out) + "\n"


RENDERERS = {"table": render_table, "markdown": render_markdown, "json": render_json}


DESCRIPTION = (
    "Summarize gitops-deploy deploy records (files, or folders searched recursively for *.json): "
    "per stack and overall, the number of deploys, success rate, rollbacks, failures by cause "
    "with each cause's share, median and 95th-percentile duration against the budget and how "
    "many went over, mean time to recovery, and the DORA keys (deployment frequency, lead time "
    "for changes, change failure rate, time to restore) with the failures stopped before users. "
    "Files that are not deploy records are listed as skipped with the reason."
)
EXIT_CODES: tuple[tuple[str, str], ...] = (
    (str(EXIT_OK), "the report was written (skipped files are listed in it)"),
    (str(EXIT_NO_RECORDS), "no deploy record was found (in the period, with --since/--until)"),
    (str(EXIT_USAGE), "bad command line (a bad --since/--until date too) or a path that does not exist"),
)


EPILOG = exit_codes_help(EXIT_CODES) + "\n\nSee docs/release.md."


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
    parser.add_argument(
        "--since", metavar="DATE", help="only deploys that started on or after DATE (ISO: 2026-01-05, UTC)"
    )
    parser.add_argument(
        "--until", metavar="DATE", help="only deploys that started on or before DATE (the whole day, UTC)"
    )


def _bound(option: str, value: str | None, end: bool) -> datetime | None:
    """An ISO date or time; a date's end bound is the next midnight, a time without a zone is UTC."""
    if value is None:
        return None
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1 if end else 0)
        moment = datetime.fromisoformat(value)
    except (ValueError, OverflowError):
        raise ValueError(f"{option} {value!r} is not an ISO date (2026-01-05) or time") from None
    return moment.replace(tzinfo=moment.tzinfo or UTC).astimezone(UTC)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m deploy report",
        description=wrapped(DESCRIPTION),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    return parser


def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Write the report for parsed arguments; the exit code says whether any record was found."""
    missing = [str(p) for p in args.paths if not p.exists()]
    if missing:
        err.write(f"report: error: no such file or folder: {terminal(', '.join(missing))}\n")
        return EXIT_USAGE
    try:
        since = _bound("--since", args.since, end=False)
        until = _bound("--until", args.until, end=True)
    except ValueError as problem:
        err.write(f"report: error: {terminal(str(problem))}\n")
        return EXIT_USAGE
    if since is not None and until is not None and until <= since:
        err.write(terminal(f"report: error: --until {args.until} is not after --since {args.since}") + "\n")
        return EXIT_USAGE
    report = build_report(load(args.paths), since, until)
    out.write(RENDERERS[args.format](report))
    if report.overall is None:
        where = "in the period" if report.outside else "in the given paths"
        err.write(f"report: no deploy record found {where}\n")
        return EXIT_NO_RECORDS
    return EXIT_OK


def main(argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """`python -m deploy report PATH...` without the `report`: parse, read the records, write the report."""
    return run(_parser().parse_args(argv), out or sys.stdout, err or sys.stderr)


if __name__ == "__main__":
    # `python -m deploy.report` keeps working: the same command as `python -m deploy report`.
    sys.exit(main())
