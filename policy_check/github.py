"""The check under GitHub Actions: annotations on the files to change (on stderr), and the report in the
job summary (docs/engine-rules.md#github-actions)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from model.text import annotation_data, annotation_property, bounded
from policy_check.report import CheckReport
from policy_check.report_format import scrubbed
from policy_check.report_smoke import annotation

SUMMARY_ENV = "GITHUB_STEP_SUMMARY"


def in_actions(env: Mapping[str, str] | None = None) -> bool:
    """Whether this runs as a GitHub Actions step (the runner sets GITHUB_ACTIONS=true)."""
    return (env if env is not None else os.environ).get("GITHUB_ACTIONS") == "true"


def command(
    level: str, message: str, *, file: str | None = None, line: int | None = None, title: str = ""
) -> str:
    """One `::error` / `::warning` workflow command."""
    props = []
    if file:
        props.append(f"file={annotation_property(file)}")
        if line:
            props.append(f"line={line}")
    if title:
        props.append(f"title={annotation_property(title)}")
    head = f"::{level} {','.join(props)}" if props else f"::{level}"
    return f"{head}::{annotation_data(message)}"


def finding_annotations(report: CheckReport) -> list[str]:
    """An error per mandatory finding, render and build error and failed smoke run; a warning per advisory
    finding."""
    out = []
    report = scrubbed(report)
    for f in report.findings:
        place = f.places[0] if f.places else None
        file = f.change.file or (place.file if place else None) or report.stack_file
        line = f.change.line if f.change.file == file else None
        title = ", ".join(f.policies) + (f" ({f.app})" if f.app else "")
        message = f"{f.problem} Change {f.change.describe()}."
        out.append(command("error" if f.blocking else "warning", message, file=file, line=line, title=title))
    for r in report.render_errors:
        out.append(command("error", r.reason, file=r.path or None, title=f"render error ({r.application})"))
    for i in report.build_errors:
        out.append(command("error", i.detail, file=i.dockerfile, title=f"build error ({i.app})"))
    for s in report.smoke_failures:
        out.append(command("error", annotation(s), file=s.dockerfile, title=f"smoke run failed ({s.app})"))
    return out


_FILE_LINE = re.compile(r"^(?P<file>[^\s:]+\.(?:ya?ml|json)):(?P<line>\d+)")


def error_annotation(message: str, stack_file: str | None) -> str:
    """The check's input error as an annotation, on the file and line it names when it names one."""
    message = bounded(message)
    match = _FILE_LINE.match(message)
    if match:
        return command("error", message, file=match["file"], line=int(match["line"]), title="policy check")
    return command("error", message, file=stack_file, title="policy check")


def append_summary(markdown: str, env: Mapping[str, str] | None = None) -> Path | None:
    """Append the Markdown report to the job summary file; None when the runner gave none."""
    target = (env if env is not None else os.environ).get(SUMMARY_ENV)
    if not target:
        return None
    path = Path(target)
    with path.open("a", encoding="utf-8") as summary:
        summary.write(markdown if markdown.endswith("\n") else markdown + "\n")
    return path
