"""Text for people: one escaper per output format, the bound on quotes, and the one table helper.

Every string the check or `deploy report` prints that came from an input (a stack file, a chart, a
record, a file name) goes through the escaper of the format it lands in, so no input can add a line,
a heading, a fence, a table cell or a terminal control sequence, or forge the verdict line.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

_HIDDEN = frozenset({"Cc", "Cf", "Cs", "Co", "Zl", "Zp"})
"""Controls, format characters (bidi overrides), lone surrogates, private use, line/paragraph separators."""
_SPACES = frozenset("\t\n\v\f\r\x1c\x1d\x1e\x1f\x85\u2028\u2029")
"""What Python's `str.splitlines` and terminals treat as a line break or tab: shown as one space."""

QUOTE_KEEP = 40
"""Characters of a quoted value a report keeps: enough to recognise it, never a whole file."""
TEXT_LIMIT = 1000
"""Characters of one input-derived message a report keeps."""


def _visible(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def terminal(text: str) -> str:
    """`text` on one line with no control character: breaks and tabs become spaces, others `\\xNN`."""
    return "".join(
        " " if c in _SPACES else _visible(c) if unicodedata.category(c) in _HIDDEN else c for c in text
    )


# --- Markdown (CommonMark with GitHub's extensions) ------------------------------------------------

_MD_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*_{}[]<>()#+!|~&@"})
"""CommonMark lets any ASCII punctuation be backslash-escaped; these start emphasis, code, links,
HTML, entities, headings, list items, table cells, strikethrough and @mentions."""


def md_text(text: str) -> str:
    """Plain text inside a Markdown line or table cell: shown as it is, never markup, never a new line."""
    shown = terminal(text).translate(_MD_SPECIAL)
    # A space at either end would be dropped, or after a list marker start an indented code block.
    if shown.startswith(" "):
        shown = "&#32;" + shown[1:]
    if shown.endswith(" "):
        shown = shown[:-1] + "&#32;"
    return shown


def md_code(text: str) -> str:
    """`text` as a one-line code span that shows it exactly, whatever backticks or spaces it holds."""
    flat = terminal(text)
    longest = max((len(m) for m in re.findall(r"`+", flat)), default=0)
    fence = "`" * (longest + 1)
    # CommonMark strips one space from each end of a span that is not all spaces: pad to keep them.
    if not flat:
        return "` `"
    edges = flat[0] + flat[-1]
    pad = " " if flat.strip(" ") and ("`" in edges or " " in edges) else ""
    return f"{fence}{pad}{flat}{pad}{fence}"


def md_block(text: str) -> str:
    """`text` as a fenced code block whose fence no line of it can close; lines kept, controls shown."""
    lines = [terminal(line) for line in text.splitlines()] or [""]
    longest = max((len(m) for line in lines for m in re.findall(r"`+", line)), default=0)
    fence = "`" * max(3, longest + 1)
    return "\n".join([fence, *lines, fence])


# --- Slack's message text -----------------------------------------------------------------------
# api.slack.com/reference/surfaces/formatting#escaping: `&`, `<` and `>` are the control characters
# (`<!channel>`, `<url|text>`); only they are escaped, as HTML entities. docs/engine-rules.md#slack-text

_SLACK = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})


def slack_text(text: str) -> str:
    """Plain text inside a Slack message: one line, never a mention, a link or a broadcast."""
    return terminal(text).translate(_SLACK)


# --- GitHub Actions workflow commands -------------------------------------------------------------
# @actions/core, packages/core/src/command.ts: escapeData replaces %, \r, \n; escapeProperty also : and ,.


def annotation_data(text: str) -> str:
    """A workflow command's message: lines kept (the runner shows them), other controls shown as `\\xNN`."""
    lines = [terminal(line) for line in text.splitlines()]
    return "%0A".join(line.replace("%", "%25") for line in lines)


def annotation_property(text: str) -> str:
    """A workflow command's property value (file, title): one line, `%`, `:` and `,` escaped."""
    flat = terminal(text).replace("%", "%25")
    return flat.replace(":", "%3A").replace(",", "%2C")


# --- quoting values -------------------------------------------------------------------------------

_QUOTED = re.compile(r"""(?<![\w'"])('(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*")(?![\w'"])""")
"""A value quoted as Python's repr or a JSON string (what jsonschema, YAML and our messages quote),
not an apostrophe inside a word."""


def clip(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, saying how long it was."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text)} characters)"


def bounded(text: str, *, keep: int = QUOTE_KEEP, limit: int = TEXT_LIMIT) -> str:
    """A message with every quoted value cut to `keep` characters and the whole to `limit`.

    A rendered value (a chart's `.Files.Get`, a template's output) can be any file's content; a
    report names it, and never quotes it whole.
    """

    def cut(match: re.Match[str]) -> str:
        quoted = match.group(1)
        if len(quoted) <= keep + 2:
            return quoted
        return f"{quoted[: keep + 1]}…{quoted[0]} ({len(quoted) - 2} characters)"

    return clip(_QUOTED.sub(cut, text), limit)


def fit(text: str, width: int, *, left: bool = False) -> str:
    """`text` cut to `width` characters with an ellipsis: at its end, or at its start when `left`."""
    if len(text) <= width:
        return text
    return "…" + text[len(text) - width + 1 :] if left else text[: width - 1] + "…"


def columns(
    headers: Sequence[str], rows: Sequence[Sequence[str]], width: int, *, align: str, cut_left: bool = False
) -> list[str]:
    """A plain-text table no wider than `width`: `align` holds one `<` or `>` per column, and the first
    column, the name, is cut (from its start when `cut_left`) to make room for the others."""
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    widths[0] = max(min(widths[0], width - sum(widths[1:]) - 2 * (len(widths) - 1)), 4)
    lines = []
    for row in [headers, *rows]:
        cells = [fit(row[0], widths[0], left=cut_left), *row[1:]]
        text = "  ".join(
            c.ljust(w) if a == "<" else c.rjust(w) for c, w, a in zip(cells, widths, align, strict=True)
        )
        lines.append(text.rstrip()[:width])
    return lines


def md_table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, align: str) -> list[str]:
    """A Markdown table: `align` holds one `<` or `>` per column; cells must already be escaped."""
    rule = "|" + "|".join(":--" if a == "<" else "--:" for a in align) + "|"
    return ["| " + " | ".join(headers) + " |", rule, *("| " + " | ".join(r) + " |" for r in rows)]
