"""The end-of-deploy table of a deploy record: plain text for the log, Markdown for the job summary."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping

from model.record import PHASES, DeployRecord, Phase, PhaseOutcome, SoakRecord
from model.text import columns, md_code, md_table, md_text, terminal

TABLE_WIDTH = 100

_HEADERS: Mapping[Phase, str] = {p: "size" if p == "image-size" else p for p in PHASES}
_MARKS: Mapping[PhaseOutcome, str] = {"succeeded": "", "failed": "!", "unfinished": "~"}


def format_duration(seconds: float) -> str:
    """`45s`, `4m05s`, `1h02m`: short and unambiguous."""
    whole = max(round(seconds), 0)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def _verdict(seconds: int, budget: int) -> str:
    return "within budget" if seconds <= budget else "over budget"


def _headline(record: DeployRecord) -> str:
    verdict = _verdict(record.deploy_seconds, record.budget_seconds)
    soak = f" (and a soak of {format_duration(record.soak_seconds)}, apart)" if record.soak_seconds else ""
    return (
        f"{record.outcome} in {format_duration(record.deploy_seconds)}, budget "
        f"{format_duration(record.budget_seconds)}: {verdict}{soak}"
    )


def soak_result(app: str, soak: SoakRecord) -> str:
    """One soak of one app, in a line: its verdict, probes, failures and latency."""
    p50, p95, most = soak.latency_ms
    what = "restored release" if soak.restored else "release"
    line = (
        f"soak {app} ({what}): {soak.verdict} after {format_duration(soak.seconds)} of "
        f"{format_duration(soak.planned_seconds)}, {soak.probes} probes every {soak.interval_seconds}s, "
        f"{soak.failures} failed; latency p50 {p50:g} ms, p95 {p95:g} ms, max {most:g} ms"
    )
    if soak.reason:
        line += f"; {soak.reason}"
    if soak.first_failure:
        line += f"; first failure {soak.first_failure}, last {soak.last_failure}"
    return line


def _soak_lines(record: DeployRecord) -> list[str]:
    return [soak_result(app.name, soak) for app in record.apps for soak in app.soaks]


def _cause_line(record: DeployRecord) -> str | None:
    if record.cause is None:
        return None
    first = next((f for f in record.failures if f.cause == record.cause), None)
    where = f" ({first.app})" if first is not None and first.app else ""
    return f"cause: {record.cause}{where}" + (
        f": {first.message}" if first is not None and first.message else ""
    )


def _rows(record: DeployRecord, mark: Mapping[PhaseOutcome, str]) -> list[list[str]]:
    rows = []
    for app in record.apps:
        cells = [app.name]
        for phase in PHASES:
            p = app.phases.get(phase)
            cells.append("-" if p is None else format_duration(p.seconds) + mark[p.outcome])
        cells += [format_duration(app.total_seconds), _verdict(app.total_seconds, record.budget_seconds)]
        rows.append(cells)
    return rows


def render_text(record: DeployRecord, width: int = TABLE_WIDTH) -> str:
    """The end-of-deploy table as plain text, no line longer than `width`."""
    headers = ["app", *(_HEADERS[p] for p in PHASES), "total", "verdict"]
    rows = [[terminal(r[0]), *r[1:]] for r in _rows(record, _MARKS)]
    deploy = ["deploy", *([""] * len(PHASES)), format_duration(record.deploy_seconds)]
    deploy.append(_verdict(record.deploy_seconds, record.budget_seconds))
    out = textwrap.wrap(
        terminal(f"gitops-deploy {record.stack}: {_headline(record)}"), width, break_on_hyphens=False
    )
    out += columns(headers, [*rows, deploy], width, align="<" + ">" * (len(PHASES) + 1) + "<")
    legend = [f"{_MARKS[o]} {o}" for o in ("failed", "unfinished") if o in _used(record)]
    if legend:
        out.append("(" + ", ".join(legend) + ")")
    cause = _cause_line(record)
    if cause:
        out += textwrap.wrap(terminal(cause), width, subsequent_indent="  ", break_on_hyphens=False)
    for line in _soak_lines(record):
        out += textwrap.wrap(terminal(line), width, subsequent_indent="  ", break_on_hyphens=False)
    return "\n".join(out) + "\n"


def _used(record: DeployRecord) -> set[PhaseOutcome]:
    return {p.outcome for a in record.apps for p in a.phases.values()}


def render_markdown(record: DeployRecord) -> str:
    """The same table as Markdown, for `$GITHUB_STEP_SUMMARY`."""
    marks: Mapping[PhaseOutcome, str] = {"succeeded": "", "failed": " ✗", "unfinished": " …"}
    headers = ["app", *(_HEADERS[p] for p in PHASES), "total", "verdict"]
    rows = [[md_text(row[0]), *row[1:]] for row in _rows(record, marks)]
    total = format_duration(record.deploy_seconds)
    verdict = _verdict(record.deploy_seconds, record.budget_seconds)
    rows.append(["**deploy**", *([""] * len(PHASES)), f"**{total}**", f"**{verdict}**"])
    out = [f"### gitops-deploy {md_code(record.stack)}: {_headline(record)}", ""]
    out += md_table(headers, rows, align="<" + ">" * (len(PHASES) + 1) + "<")
    used = _used(record) - {"succeeded"}
    if used:
        out += ["", ", ".join(f"{marks[o].strip()} {o}" for o in ("failed", "unfinished") if o in used)]
    cause = _cause_line(record)
    if cause:
        out += ["", f"**{md_text(cause)}**"]
    soaks = _soak_lines(record)
    if soaks:
        out += ["", *(f"- {md_text(line)}" for line in soaks)]
    return "\n".join(out) + "\n"
