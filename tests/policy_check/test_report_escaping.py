"""Input-derived strings cannot rewrite a report: a corpus of hostile strings through every output format.

Each format is checked the way its reader reads it: Markdown with a CommonMark parser (markdown-it-py,
with GitHub's tables), workflow commands line by line as the runner does, the table and the errors as
a terminal shows them, JSON with `json.loads`.
"""

from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt
from markdown_it.token import Token

from model.text import (
    annotation_data,
    annotation_property,
    bounded,
    md_block,
    md_code,
    md_text,
    terminal,
)
from policy_check import github
from policy_check.analyzer_client import Diagnostic
from policy_check.check import _input_error
from policy_check.findings import Change, Finding, Place
from policy_check.render_common import RenderedObject, RenderResult
from policy_check.report import CheckReport, ImageRow, SmokeRow
from policy_check.report_format import formatted

PROPERTIES = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

HOSTILE = [
    "web`\n\n### Policy check of `x` (without the Pulumi CLI): passed\n",
    "\n### Policy check PASSED\n```\n",
    "x\n```\n\n### Policy check of `staging` (without the Pulumi CLI): passed\n\n```",
    "a | b | c",
    "<script>alert(1)</script><!--",
    "[click](https://evil.example) ![i](x)",
    "**bold** _it_ ~~s~~ @octocat #1 <https://a.example>",
    "\x1b[2J\x1b[31mPASS\x1b[0m",
    "\r\nPASS: stack x: 0 mandatory, 0 advisory",
    "\u202eevil\u202c \u2066x\u2069",
    "line\u2028sep\u2029para\x85nel",
    "\ud800 lone surrogate",
    "::error::forged%0A::warning::x",
    "title,file=x:1",
    "`` ` ``",
    "    indented code",
    "- list\n1. item\n> quote\n---\n===",
    "&amp; &#x3C; \\",
    "\x9b31m C1 CSI \x07 bell \x00 nul \x7f del",
    "\t\v\f",
    " ",
    "",
    "'" + "secret-line " * 200 + "'",
]
"""Strings that try to end a span, a line, a cell, a fence or a command, or to drive the terminal."""

_HIDDEN = {"Cc", "Cf", "Cs", "Co", "Zl", "Zp"}
DETAILS = [
    ["<details><summary>Image sizes</summary>", "</details>"],
    ["<details><summary>Smoke runs</summary>", "</details>"],
    ["<details><summary>Rendered objects per Application</summary>", "</details>"],
]
"""The only HTML the Markdown report has: its own folded sections."""


def _markdown() -> MarkdownIt:
    return MarkdownIt("commonmark").enable("table")


def _raw_controls(text: str, allowed: str = "\n") -> list[str]:
    return [c for c in text if c not in allowed and unicodedata.category(c) in _HIDDEN]


def _inline_text(tokens: list[Token]) -> str:
    """What a reader sees of one paragraph: its text and code spans, markup gone."""
    [inline] = [t for t in tokens if t.type == "inline"]
    return "".join(c.content for c in inline.children or [] if c.type in ("text", "code_inline"))


# -- the escapers, one per format ---------------------------------------------------------------


@pytest.mark.parametrize("text", HOSTILE)
def test_terminal_text_has_no_control_character_and_no_line_break(text: str) -> None:
    shown = terminal(text)
    assert not _raw_controls(shown, allowed=""), repr(shown)
    shown.encode("utf-8")  # a lone surrogate would make the write raise


@given(st.text())
@PROPERTIES
def test_terminal_property(text: str) -> None:
    shown = terminal(text)
    assert not _raw_controls(shown, allowed="")
    assert len(shown.splitlines()) <= 1


@given(st.text())
@PROPERTIES
def test_markdown_text_is_one_paragraph_showing_the_text_as_it_is(text: str) -> None:
    tokens = _markdown().parse(f"x {md_text(text)} y")
    assert [t.type for t in tokens] == ["paragraph_open", "inline", "paragraph_close"]
    assert _inline_text(tokens) == f"x {terminal(text)} y"


@pytest.mark.parametrize("text", HOSTILE)
def test_markdown_text_and_code_of_the_corpus(text: str) -> None:
    for piece in (md_text(text), md_code(text)):
        tokens = _markdown().parse(f"x {piece} y")
        assert [t.type for t in tokens] == ["paragraph_open", "inline", "paragraph_close"], piece
        kinds = {c.type for c in tokens[1].children or []}
        assert kinds <= {"text", "code_inline"}, (piece, kinds)


@given(st.text())
@PROPERTIES
def test_a_code_span_holds_exactly_the_text(text: str) -> None:
    tokens = _markdown().parse(f"x {md_code(text)} y")
    assert [t.type for t in tokens] == ["paragraph_open", "inline", "paragraph_close"]
    spans = [c.content for c in tokens[1].children or [] if c.type == "code_inline"]
    assert spans == [terminal(text) or " "]


@given(st.text())
@PROPERTIES
def test_a_table_cell_stays_one_cell(text: str) -> None:
    table = f"| a | b |\n|:--|--:|\n| {md_text(text)} | 1 |\n"
    tokens = _markdown().parse(table)
    cells = [t for t in tokens if t.type == "td_open"]
    assert len(cells) == 2
    shown = [t.content for t in tokens if t.type == "inline"][2]
    assert _markdown().parseInline(shown)[0].children is not None


@given(st.text())
@PROPERTIES
def test_a_fenced_block_is_never_closed_early(text: str) -> None:
    tokens = _markdown().parse(md_block(text) + "\n\nafter\n")
    assert tokens[0].type == "fence"
    assert tokens[0].content.splitlines() == [terminal(line) for line in text.splitlines()] or [""]
    assert [t.type for t in tokens[1:]] == ["paragraph_open", "inline", "paragraph_close"]


def _runner_unescape(data: str) -> str:
    """actions/runner's ActionCommand unescaping of a message (src/Runner.Worker/ActionCommandManager)."""
    return data.replace("%0D", "\r").replace("%0A", "\n").replace("%25", "%")


@given(st.text())
@PROPERTIES
def test_a_workflow_command_is_one_line_and_reads_back(text: str) -> None:
    data, prop = annotation_data(text), annotation_property(text)
    for escaped in (data, prop):
        assert "\n" not in escaped and "\r" not in escaped and not _raw_controls(escaped, allowed="")
    assert "," not in prop and ":" not in prop
    lines = [terminal(line) for line in text.splitlines()]
    assert _runner_unescape(data) == "\n".join(lines)


def test_a_quoted_value_is_cut_and_the_message_bounded() -> None:
    secret = (
        "[core]\n\trepositoryformatversion = 0\n" + "x" * 5000 + "extraheader = AUTHORIZATION: basic TOKEN"
    )
    message = f"Deployment/web: {secret!r} is not of type 'integer' at spec.replicas"
    shown = bounded(message)
    assert "TOKEN" not in shown and "x" * 100 not in shown
    assert shown.startswith("Deployment/web: '[core]") and "characters)" in shown
    assert shown.endswith("is not of type 'integer' at spec.replicas")
    assert len(bounded("y" * 10_000)) < 1100
    assert bounded("can't judge 'web' yet") == "can't judge 'web' yet"


# -- the check's report through every format ----------------------------------------------------


def _hostile_report(text: str) -> CheckReport:
    """A failing report (one mandatory finding, one render error) whose every input-derived text is `text`."""
    app = "web"
    finding = Finding(
        app,
        "mandatory",
        ("minimum-replicas",),
        text,
        Change(text, key=f"gitops-deploy:apps[0] ({text}).replicas", file=text, line=3, alternative=text),
        (Place(f"Deployment '{text}'", "urn:a", text, text),),
    )
    row = RenderedObject("kubernetes:apps/v1:Deployment", text, "urn:a", None, text, text)
    render = RenderResult(text, "urn:app", "helm", text, "error", text, (row,))
    note = Diagnostic(
        "image-size-limit", f"can't run policy 'image-size-limit' during preview: {text}", "", "x"
    )
    return CheckReport(
        stack=text,
        resources=3,
        diagnostics=[note],
        renders=[render],
        images=[ImageRow(app, text, text, "error", text)],
        building=True,
        smoke=[
            SmokeRow(app, text, text, "failed", text, cause="exited", exit_code=3, logs=(text, "last")),
            SmokeRow(app, text, text, "cant-judge", text),
        ],
        findings=[finding],
        app_keys={app: f"gitops-deploy:apps[0] ({text})"},
        stack_file=text,
        policy_file=text,
        stack_outputs=text,
        labels={"urn:a": text},
    )


def _headings(markdown: str) -> list[tuple[str, str]]:
    tokens = _markdown().parse(markdown)
    return [(t.tag, tokens[i + 1].content) for i, t in enumerate(tokens) if t.type == "heading_open"]


@pytest.mark.parametrize("text", HOSTILE)
def test_the_markdown_report_keeps_its_verdict_and_structure(text: str) -> None:
    report = _hostile_report(text)
    assert report.exit_code == 1
    markdown = formatted(report, "markdown")
    headings = _headings(markdown)
    assert headings[0][0] == "h3" and headings[0][1].endswith("FAILED (exit 1)"), headings
    assert [tag for tag, _ in headings] == ["h3", "h4", "h4", "h4"], headings
    tokens = _markdown().parse(markdown)
    kinds = {t.type for t in tokens} | {c.type for t in tokens for c in t.children or []}
    assert not kinds & {"code_block", "table_open", "link_open", "image", "s_open"}, kinds
    [logs] = [t for t in tokens if t.type == "fence"]  # the smoke run's log lines, never closed early
    assert logs.content.splitlines()[-1] == "last", logs.content
    html = [t.content.strip() for t in tokens if t.type == "html_block"]
    html += [c.content for t in tokens for c in t.children or [] if c.type == "html_inline"]
    assert html == [line for section in DETAILS for line in section], html
    assert not _raw_controls(markdown)
    last = [t.content for t in tokens if t.type == "inline"][-1]
    assert last.startswith("FAIL: stack ")


@pytest.mark.parametrize("text", HOSTILE)
def test_the_table_keeps_its_verdict_line_and_shows_no_control(text: str) -> None:
    table = formatted(_hostile_report(text), "table")
    lines = table.splitlines()
    assert not _raw_controls(table)
    heading = lines[: next(i for i, line in enumerate(lines) if line.startswith("  stack file "))]
    assert heading[0].startswith("Policy check of stack ")
    assert " ".join(line.strip() for line in heading).endswith(": FAIL (exit 1)")
    verdict = [line for line in lines if not line.startswith(" ")][-1]  # wrapped lines are indented
    assert verdict.startswith("FAIL: stack ")
    assert [line for line in lines if re.match(r"(PASS|FAIL)\b", line)] == [verdict]
    assert all(len(line) <= 100 for line in lines)


@pytest.mark.parametrize("text", HOSTILE)
def test_the_json_report_reads_back(text: str) -> None:
    document = formatted(_hostile_report(text), "json")
    assert document.isascii()
    data = json.loads(document)
    assert (data["verdict"], data["exitCode"]) == ("fail", 1)
    assert data["findings"][0]["problem"] == bounded(text)


@pytest.mark.parametrize("text", HOSTILE)
def test_annotations_and_the_step_summary(text: str, tmp_path: Path) -> None:
    report = _hostile_report(text)
    lines = github.finding_annotations(report)
    assert len(lines) == 4  # the finding, the render error, the build error, the smoke run
    for line in lines:
        assert "\n" not in line and "\r" not in line and not _raw_controls(line, allowed="")
        head, _, _ = line.partition("::")[2].partition("::")
        command, _, props = head.partition(" ")
        assert command == "error"
        keys = [p.split("=", 1)[0] for p in props.split(",")] if props else []
        assert set(keys) <= {"file", "line", "title"} and len(keys) == len(set(keys)), line
    summary = tmp_path / "summary.md"
    github.append_summary(formatted(report, "markdown"), {"GITHUB_STEP_SUMMARY": str(summary)})
    assert _headings(summary.read_text(encoding="utf-8"))[0][1].endswith("FAILED (exit 1)")


@pytest.mark.parametrize("text", HOSTILE)
def test_an_input_error_is_reported_as_one_error_in_every_format(
    text: str, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    assert _input_error(text, f"unknown key {text}", "markdown", actions=True) == 2
    out, err = capsys.readouterr()
    assert not _raw_controls(out) and not _raw_controls(err)
    for markdown in (out, summary.read_text(encoding="utf-8")):
        headings = _headings(markdown)
        assert len(headings) == 1 and headings[0][1].endswith("ERROR (exit 2)"), headings
        tokens = _markdown().parse(markdown)
        assert [t.type for t in tokens if t.type in ("fence", "heading_open")] == ["heading_open", "fence"]
    assert err.startswith("error: ")
    assert next(line for line in err.splitlines() if line.startswith("::")).startswith("::error ")
    assert _input_error(text, text, "json", actions=False) == 2
    data: Any = json.loads(capsys.readouterr().out)
    assert data["verdict"] == "error"
