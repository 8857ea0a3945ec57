"""The check's report in three formats, the same things in the same stable order: a table for a
100-column terminal, Markdown (a PR comment, a job summary), and JSON (docs/policy-check.md)."""

from __future__ import annotations

import json
import re
import textwrap
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

from model.text import bounded, clip, md_block, md_code, md_text, terminal
from policy_check import report_smoke
from policy_check.analyzer_client import Diagnostic
from policy_check.findings import Finding, Place, blocks
from policy_check.render_common import RenderedObject, RenderResult, object_label
from policy_check.report import EXIT_ERROR, CheckReport, Format, ImageRow

WIDTH = 100
"""Columns of the table format: no line is longer."""
JSON_VERSION = 1
"""Bumped when a field of the JSON report changes meaning or goes away."""
NAME_LIMIT = 100
"""Characters of an object's name or namespace a report shows (a valid one has at most 253)."""


def formatted(report: CheckReport, fmt: Format) -> str:
    """The report in `fmt`, every input-derived text bounded first (`scrubbed`)."""
    formats: dict[str, Callable[[CheckReport], str]] = {"table": table, "markdown": markdown, "json": as_json}
    return formats[fmt](scrubbed(report))


def input_error(stack: str, message: str, fmt: Format) -> str:
    """The JSON or Markdown report of a check that judged nothing: its input could not be read."""
    if fmt == "json":
        error = {"stack": stack, "verdict": "error", "exitCode": EXIT_ERROR, "error": message}
        return json.dumps({"version": JSON_VERSION, **error}, indent=2) + "\n"
    heading = _heading(stack, f"ERROR (exit {EXIT_ERROR})")
    return f"{heading}\n\nNothing was judged: the input could not be read.\n\n{md_block(message)}\n"


def _heading(stack: str, verdict: str) -> str:
    return f"### Policy check of {md_code(stack)} (without the Pulumi CLI): {verdict}"


def scrubbed(report: CheckReport) -> CheckReport:
    """The report with every quoted value cut short and every text bounded (model/text.py `bounded`):
    a rendered value can hold any file a chart reads, and a report never quotes it whole."""

    def place(p: Place) -> Place:
        return replace(p, resource=bounded(p.resource), detail=bounded(p.detail), file=_opt(p.file))

    def finding(f: Finding) -> Finding:
        change = replace(
            f.change,
            text=bounded(f.change.text),
            alternative=_opt(f.change.alternative),
            key=_opt(f.change.key),
            file=_opt(f.change.file),
        )
        places = tuple(place(p) for p in f.places)
        return replace(f, app=_opt(f.app), problem=bounded(f.problem), change=change, places=places)

    def row(o: RenderedObject) -> RenderedObject:
        namespace = clip(o.namespace, NAME_LIMIT) if o.namespace else o.namespace
        return replace(o, name=clip(o.name, NAME_LIMIT), namespace=namespace, template=_opt(o.template))

    def status(r: RenderResult) -> RenderResult:
        objects = tuple(row(o) for o in r.objects)
        return replace(r, application=bounded(r.application), reason=bounded(r.reason), objects=objects)

    def diagnostic(d: Diagnostic) -> Diagnostic:
        return replace(d, message=bounded(d.message))

    return replace(
        report,
        stack=bounded(report.stack),
        diagnostics=[diagnostic(d) for d in report.diagnostics],
        renders=[status(r) for r in report.renders],
        images=[replace(i, detail=bounded(i.detail)) for i in report.images],
        smoke=report_smoke.scrubbed(report.smoke),
        findings=[finding(f) for f in report.findings],
        app_keys={k: bounded(v) for k, v in report.app_keys.items()},
        labels={u: bounded(v) for u, v in report.labels.items()},
    )


def _opt(text: str | None) -> str | None:
    return None if text is None else bounded(text)


def _groups(report: CheckReport) -> Iterator[tuple[str | None, list[Finding]]]:
    """(app or None for the stack, its findings): every app of the stack in config order, then the stack."""
    by_app: dict[str | None, list[Finding]] = defaultdict(list)
    for f in report.findings:
        by_app[f.app].append(f)
    seen = set()
    for app in report.app_keys:
        seen.add(app)
        yield app, by_app.get(app, [])
    failed = {r.application for r in report.render_errors} | {i.app for i in report.build_errors}
    failed |= {s.app for s in report.smoke_failures}
    for name in sorted(({a for a in by_app if a is not None} | failed) - seen):
        yield name, by_app.get(name, [])
    if by_app.get(None):
        yield None, by_app[None]


def _renders(report: CheckReport) -> list[RenderResult]:
    """The Applications in the stack's app order (registration order varies from run to run)."""
    order = {app: i for i, app in enumerate(report.app_keys)}
    return sorted(report.renders, key=lambda r: (order.get(r.application, len(order)), r.application))


def _errors(report: CheckReport, app: str | None) -> list[str]:
    """An app's render and build errors, one text each."""
    out = [
        f"RENDER ERROR ({r.engine} {r.path}): {r.reason}"
        for r in report.render_errors
        if r.application == app
    ]
    out += [f"BUILD ERROR ({i.dockerfile}): {i.detail}" for i in report.build_errors if i.app == app]
    return out + [report_smoke.failure(s) for s in report_smoke.errors(report, app)]


def _files(report: CheckReport, code: Callable[[str], str] = str) -> str:
    """Which stack file and policy config were read, and where the failed-release record came from."""
    stack = code(report.stack_file) if report.stack_file else "the stack config given"
    policy = code(report.policy_file) if report.policy_file else "the pack's defaults"
    record = (
        f"checked against {code(report.stack_outputs)}"
        if report.stack_outputs
        else f"not checked (pass {code('--stack-outputs FILE')}: `pulumi stack output --json`)"
    )
    return f"stack file {stack}, policy config {policy}; failed-release record {record}"


def _place_text(
    p: Place, problem: str, text: Callable[[str], str] = str, code: Callable[[str], str] = str
) -> str:
    """Where a finding was seen, and what was seen there when that differs from the finding's problem."""
    shown = text(p.resource) + (f" ({code(p.file)})" if p.file else "")
    return shown if p.detail == problem else f"{shown}: {text(p.detail)}"


def _cant_judge_reason(message: str) -> str:
    return message.split(" during preview: ", 1)[-1].strip()


def _rendered_verdicts(report: CheckReport) -> dict[str, str]:
    """Each rendered object's verdicts by URN, `ok` when it has none."""
    verdicts: dict[str, set[str]] = defaultdict(set)
    for d in report.violations:
        verdicts[d.urn].add(f"{'MANDATORY' if blocks(d.level) else d.level} {d.policy}")
    return defaultdict(lambda: "ok", {urn: ", ".join(sorted(v)) for urn, v in verdicts.items()})


def _image_text(i: ImageRow) -> str:
    prefix = {"error": "BUILD ERROR: ", "not-measured": "not measured: "}.get(i.status, "")
    return f"{i.app} ({i.image}, {i.dockerfile}): {prefix}{i.detail}"


def _images_intro(report: CheckReport) -> str | None:
    """Why there are no sizes, or None when there are rows to show."""
    if not report.images:
        return "No images to build (every app is pinned or promoted, or there are none)."
    if not report.building:
        return (
            f"Image sizes: not measured ({len(report.images)} image(s)); image-size-limit can't judge them "
            "yet. Run with --build to build each image with the local Docker Engine and measure it."
        )
    return None


def _render_intro(report: CheckReport) -> str | None:
    if not report.rendering:
        return "Rendering skipped (--no-render): charts and overlays were not judged."
    if not report.renders:
        return "No Argo CD Applications to render."
    return None


def _render_head(r: RenderResult) -> str:
    where = f"{r.engine} {r.path}"
    if r.status == "rendered":
        return f"{r.application} ({where}): {len(r.objects)} object(s)"
    if r.status == "not-rendered":
        return f"{r.application}: not rendered: {r.reason}"
    return f"{r.application} ({where}): RENDER ERROR (see the app above)"


def _object_label(o: RenderedObject) -> str:
    return object_label(o.type.rsplit(":", 1)[-1], o.namespace, o.name)


def _wrap(text: str, first: int, rest: int | None = None) -> list[str]:
    """`text` wrapped at WIDTH, the first line indented `first` spaces and the others `rest`."""
    return textwrap.wrap(
        terminal(text),
        width=WIDTH,
        initial_indent=" " * first,
        subsequent_indent=" " * (first + 4 if rest is None else rest),
        break_on_hyphens=False,
    ) or [" " * first]


def table(report: CheckReport) -> str:
    """The report for a terminal: no line over WIDTH columns; the last line is the verdict."""
    keys = report.app_keys
    lines = _wrap(f"Policy check of stack {report.stack}: {report.verdict} (exit {report.exit_code})", 0, 2)
    lines += _wrap(_files(report), 2)
    for app, findings in _groups(report):
        title = f"App {app} ({keys[app]})" if app in keys else f"App {app}"
        lines += ["", *_wrap("Stack (every app)" if app is None else title, 0, 2)]
        errors = _errors(report, app)
        for text in errors:
            lines += _wrap(text, 2)
        for smoke in report_smoke.errors(report, app):
            lines += report_smoke.table_logs(smoke, _wrap)
        for f in findings:
            level = "MANDATORY" if f.blocking else f.level
            lines += _wrap(f"{level} {', '.join(f.policies)}: {f.problem}", 2, 6)
            lines += _wrap(f"change: {f.change.describe()}", 4, 8)
            for n, place in enumerate(f.places):
                head = "seen at: " if n == 0 else "         "
                lines += _wrap(head + _place_text(place, f.problem), 4, 15)
        if not findings and not errors:
            lines.append("  no findings")
    notes = report.cant_judge
    if notes or report.smoke_unjudged:
        lines += ["", "Can't judge yet (unknown until `pulumi up` runs; not a pass, not a fail):"]
        for d in notes:
            where = _resource_label(report, d.urn)
            lines += _wrap(f"{d.policy}: {where}: {_cant_judge_reason(d.message)}", 2, 6)
        for note in report_smoke.notes(report):
            lines += _wrap(note, 2, 6)
    lines.append("")
    intro = _images_intro(report)
    if intro:
        lines += _wrap(intro, 0, 2)
    else:
        lines.append("Image sizes (--build: built with the local Docker Engine, measured as a push uploads):")
        for i in report.images:
            lines += _wrap(_image_text(i), 2, 6)
    lines += ["", *report_smoke.table_lines(report, _wrap), ""]
    intro = _render_intro(report)
    if intro:
        lines += _wrap(intro, 0, 2)
    else:
        verdicts = _rendered_verdicts(report)
        lines.append("Rendered objects per Application:")
        for r in _renders(report):
            lines += _wrap(_render_head(r), 2, 6)
            for o in r.objects:
                owned = f" (replicas owned by {o.scaled_by}, judged there)" if o.scaled_by else ""
                lines += _wrap(f"{_object_label(o)}: {verdicts[o.urn]}{owned}", 4, 8)
    lines += ["", *_wrap(report.summary(), 0, 2)]
    return "\n".join(lines)


def _resource_label(report: CheckReport, urn: str) -> str:
    if not urn:
        return "(stack)"
    if urn in report.labels:
        return report.labels[urn]
    for r in report.renders:
        for o in r.objects:
            if o.urn == urn:
                return _object_label(o)
    parts = urn.split("::")
    return f"{parts[-2].split('$')[-1]} {parts[-1]}" if len(parts) >= 4 else urn


def markdown(report: CheckReport) -> str:
    """The report for a PR comment or a job summary."""
    keys = report.app_keys
    verdict = "passed" if report.exit_code == 0 else f"FAILED (exit {report.exit_code})"
    out = [
        _heading(report.stack, verdict),
        "",
        f"S{_files(report, md_code)[1:]}.",
        "",
        f"{report.tally('**')}.",
    ]
    for app, findings in _groups(report):
        title = (
            "Stack (every app)"
            if app is None
            else f"App {md_code(app)}" + (f" · {md_code(keys[app])}" if app in keys else "")
        )
        out += ["", f"#### {title}", ""]
        errors = _errors(report, app)
        out += [f"- **{md_text(e.split(':', 1)[0])}**: {md_text(e.split(':', 1)[1].strip())}" for e in errors]
        for smoke in report_smoke.errors(report, app):
            out += report_smoke.markdown_logs(smoke)
        for f in findings:
            level = "**MANDATORY**" if f.blocking else f.level
            out.append(f"- {level} {', '.join(md_code(p) for p in f.policies)}: {md_text(f.problem)}")
            out.append(f"  - Change: {_md_change(f)}")
            places = "; ".join(_place_text(p, f.problem, md_text, md_code) for p in f.places)
            out.append(f"  - Seen at: {places}")
        if not findings and not errors:
            out.append("- no findings")
    notes = report.cant_judge
    if notes or report.smoke_unjudged:
        out += ["", "#### Can't judge yet", "", "Unknown until `pulumi up` runs; not a pass, not a fail.", ""]
        for d in notes:
            where, reason = _resource_label(report, d.urn), _cant_judge_reason(d.message)
            out.append(f"- {md_code(d.policy)} {md_text(where)}: {md_text(reason)}")
        out += [f"- {md_text(note)}" for note in report_smoke.notes(report)]
    out += ["", "<details><summary>Image sizes</summary>", ""]
    intro = _images_intro(report)
    out += [md_text(intro)] if intro else [f"- {md_text(_image_text(i))}" for i in report.images]
    out += ["", "</details>", *report_smoke.markdown_lines(report)]
    out += ["", "<details><summary>Rendered objects per Application</summary>", ""]
    intro = _render_intro(report)
    if intro:
        out.append(md_text(intro))
    else:
        verdicts = _rendered_verdicts(report)
        for r in _renders(report):
            out.append(f"- {md_text(_render_head(r))}")
            out += [f"  - {md_text(_object_label(o))}: {md_text(verdicts[o.urn])}" for o in r.objects]
    out += ["", "</details>", "", md_text(report.summary())]
    return "\n".join(out) + "\n"


def _md_change(f: Finding) -> str:
    c = f.change
    where = md_code(c.key) if c.key else ""
    at = f"{c.file}:{c.line}" if c.file and c.line else c.file
    if at:
        where = f"{where} in {md_code(at)}" if where else md_code(at)
    text = f"{where}: {md_text(c.text)}" if where else md_text(c.text)
    return f"{text}; or {md_text(c.alternative)}" if c.alternative else text


def as_json(report: CheckReport) -> str:
    """The report as one JSON document (docs/policy-check.md describes every field)."""
    return json.dumps(to_dict(report), indent=2) + "\n"


def _pick(item: Any, names: str) -> dict[str, Any]:
    """Fields of `item` by their snake_case names, keyed in camelCase, in the order given."""
    return {re.sub(r"_(\w)", lambda m: m[1].upper(), n): getattr(item, n) for n in names.split()}


def to_dict(report: CheckReport) -> dict[str, Any]:
    """The JSON report as a dict."""
    findings = [
        {
            **_pick(f, "app level"),
            "policies": list(f.policies),
            "problem": f.problem,
            "change": _pick(f.change, "key file line text alternative"),
            "places": [_pick(p, "resource urn file detail") for p in f.places],
        }
        for f in report.findings
    ]
    cant_judge = [
        {"policy": d.policy, "urn": d.urn, "resource": _resource_label(report, d.urn)}
        | {"reason": _cant_judge_reason(d.message)}
        for d in report.cant_judge
    ]
    cant_judge += [
        {"policy": report_smoke.POLICY, "urn": "", "resource": f"App {s.app}", "reason": s.detail}
        for s in report.smoke_unjudged
    ]
    renders = [
        _pick(r, "application engine path status reason")
        | {"objects": [_pick(o, "type name namespace urn template scaled_by") for o in r.objects]}
        for r in _renders(report)
    ]
    return {
        "version": JSON_VERSION,
        "stack": report.stack,
        "verdict": report.verdict.lower(),
        "exitCode": report.exit_code,
        "files": {"stack": report.stack_file, "policyConfig": report.policy_file},
        "stackOutputs": report.stack_outputs,
        "counts": report.counts(),
        "apps": [{"name": a, "key": k} for a, k in report.app_keys.items()],
        "findings": findings,
        "cantJudge": cant_judge,
        "images": [_pick(i, "app image dockerfile status detail size_bytes") for i in report.images],
        "building": report.building,
        "smoke": report_smoke.as_dicts(report),
        "rendering": report.rendering,
        "renders": renders,
    }
