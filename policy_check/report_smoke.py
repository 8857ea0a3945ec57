"""The smoke runs in the check's report: the failures with each app, the runs that could not run with the
"can't judge yet" notes, and a section of every run (docs/policy-check.md#the-smoke-run)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from clients.smoke_run import LOG_LINE_CHARS, LOG_LINES
from model.text import bounded, clip, md_block, md_text
from policy_check.report import CheckReport, SmokeRow

POLICY = "smoke-run"
"""The check's name for the smoke run where the report lists it with the policies."""
TITLE = "Smoke runs (--build: each image started alone, its health endpoint probed as the gate does):"
_SHOWN = {"failed": "FAILED", "cant-judge": "can't judge yet", "skipped": "skipped", "passed": "passed"}


def scrubbed(rows: list[SmokeRow]) -> list[SmokeRow]:
    """Each row's detail bounded, its log lines (scrubbed where they were read) cut again to the bounds."""

    def cut(s: SmokeRow) -> tuple[str, ...]:
        return tuple(clip(line, LOG_LINE_CHARS) for line in s.logs[-LOG_LINES:])

    return [replace(s, detail=bounded(s.detail), logs=cut(s)) for s in rows]


def failure(s: SmokeRow) -> str:
    """`SMOKE RUN FAILED (web/Dockerfile): exited: ... exit code 3`, one text for every format."""
    return f"SMOKE RUN FAILED ({s.dockerfile}): {s.cause}: {s.detail}"


def annotation(s: SmokeRow) -> str:
    """The failure with its log lines, for an annotation (which keeps lines)."""
    logs = "\n".join(s.logs)
    return failure(s) + (f"\nlast log lines:\n{logs}" if logs else "")


def errors(report: CheckReport, app: str | None) -> list[SmokeRow]:
    """An app's failed smoke runs."""
    return [s for s in report.smoke_failures if s.app == app]


def notes(report: CheckReport) -> list[str]:
    """`smoke-run: App web: <why it could not run>` per run that can't judge yet."""
    return [f"{POLICY}: App {s.app}: {s.detail}" for s in report.smoke_unjudged]


def row_text(s: SmokeRow) -> str:
    """One run in the smoke section."""
    took = f" in {s.seconds:.1f} s" if s.status in ("passed", "failed") else ""
    cause = f"{s.cause}: " if s.cause else ""
    return f"{s.app} ({s.image}): {_SHOWN.get(s.status, s.status)}{took}: {cause}{s.detail}"


def intro(report: CheckReport) -> str | None:
    """Why there is no smoke run to list, or None."""
    if not report.images:
        return "No images to smoke-run."
    if not report.building:
        return "Smoke runs: not run. Run with --build to start each built image and probe its endpoint."
    return None


def table_lines(report: CheckReport, wrap: Callable[[str, int, int], list[str]]) -> list[str]:
    """The smoke section of the table format."""
    shown = intro(report)
    if shown:
        return wrap(shown, 0, 2)
    return [TITLE, *(line for s in report.smoke for line in wrap(row_text(s), 2, 6))]


def table_logs(s: SmokeRow, wrap: Callable[[str, int, int], list[str]]) -> list[str]:
    """A failure's last log lines, under its error in the table."""
    if not s.logs:
        return []
    return ["    last log lines:", *(line for log in s.logs for line in wrap("| " + log, 6, 8))]


def markdown_logs(s: SmokeRow) -> list[str]:
    """A failure's last log lines as an indented fenced block under its list item."""
    if not s.logs:
        return []
    block = md_block("\n".join(s.logs))
    return ["  - Last log lines:", "", *("    " + line for line in block.splitlines()), ""]


def markdown_lines(report: CheckReport) -> list[str]:
    """The smoke section of the Markdown format, folded."""
    shown = intro(report)
    body = [md_text(shown)] if shown else [f"- {md_text(row_text(s))}" for s in report.smoke]
    return ["", "<details><summary>Smoke runs</summary>", "", *body, "", "</details>"]


def as_dicts(report: CheckReport) -> list[dict[str, Any]]:
    """The JSON report's `smoke` list."""
    return [
        {
            "app": s.app,
            "image": s.image,
            "dockerfile": s.dockerfile,
            "status": s.status,
            "cause": s.cause or None,
            "exitCode": s.exit_code,
            "detail": s.detail,
            "logs": list(s.logs),
            "seconds": round(s.seconds, 2),
        }
        for s in report.smoke
    ]
