"""Read the engine's event stream of one `up`: URN parts, diagnostic text, and where the stream ends.

The shapes are the Automation API's (`pulumi/automation/events.py`), which mirror
`sdk/go/common/apitype/events.go` in pulumi/pulumi. What the stream holds, and when, comes from the engine:
- `pkg/backend/display/display.go` stamps each event, in order, with `int(time.Now().Unix())`: timestamps
  are whole seconds and never go down within one stream.
- `pkg/engine/update.go` emits one policy-load event per policy pack before the prelude, and ends every
  update with a cancel event (`defer ... NewCancelEvent()`), after the summary.
- `pkg/engine/events.go` and `pkg/engine/eventsink.go` wrap every diagnostic as
  `<{%reset%}>text<{%reset%}>\\n` (colour directives, stripped here).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from pulumi.automation.events import EngineEvent

from model.http_origin import redact_urls

_COLOUR = re.compile(r"\x1b\[[0-9;]*[A-Za-z]|<\{%[a-z0-9 -]*%\}>")


def urn_type(urn: str) -> str:
    """The resource type of a URN (the last segment of its parent-qualified type), or ""."""
    parts = urn.split("::")
    return parts[2].split("$")[-1] if len(parts) >= 4 else ""


def urn_name(urn: str) -> str:
    """The resource name of a URN (the URN itself when it is not one)."""
    parts = urn.split("::")
    return "::".join(parts[3:]) if len(parts) >= 4 else urn


def clean(message: str) -> str:
    """A diagnostic's text without colour directives, surrounding blank space or any URL's userinfo.

    Every failure the deploy prints, records or keeps in `failedReleases` is read through here.
    """
    return redact_urls(_COLOUR.sub("", message)).strip()


_TRACEBACK_HEAD = "Traceback (most recent call last):"
_EXCEPTION_LINE = re.compile(r"(?:[A-Za-z_]\w*\.)*(?P<name>[A-Za-z_]\w*): (?P<message>.*)")
_EXCEPTION_NAME = re.compile(r"[A-Za-z_]\w*\.[\w.]+|[A-Za-z_]\w*(?:Error|Exception|Failed|Failure)")
"""An exception's name as Python prints it: dotted (`components.health.HealthCheckFailed`) or a builtin."""
_MULTIERROR_HEAD = re.compile(r"\d+ errors? occurred:")
"""The engine joins a provider's init-failure reasons in hashicorp/go-multierror's list format
("1 error occurred:\\n\\t* <reason>"; plugin.InitError in pkg/resource/plugin/provider_plugin.go)."""


def exception_text(message: str) -> str:
    """A provider error without its wrapping: a traceback, an exception's name, or a multierror list.

    `python -m pulumi.dynamic` aborts a failed call with `traceback.format_exc()` (pulumi/dynamic/
    __main__.py `_abort_with_traceback`). Our providers set `sys.tracebacklimit = 0` in that process
    (components/provider_errors.py), so the text is `<exception name>: <message>` with no traceback;
    other providers' errors may still carry one. The message may span lines.
    """
    text = clean(message)
    lines = text.splitlines()
    if lines and _MULTIERROR_HEAD.fullmatch(lines[0]):
        return "\n".join(line.strip().removeprefix("* ") for line in lines[1:] if line.strip())
    start = 0
    if text.startswith(_TRACEBACK_HEAD):
        found = None
        for i, line in enumerate(lines):
            if line.lstrip().startswith('File "'):
                found = None
            elif found is None and not line.startswith(" ") and _EXCEPTION_LINE.fullmatch(line):
                found = i
        if found is None:
            return text
        start = found
    match = _EXCEPTION_LINE.fullmatch(lines[start]) if lines else None
    name = match.group(0)[: match.start("message") - 2] if match else ""
    if match is None or not (start or _EXCEPTION_NAME.fullmatch(name)):
        return text
    return "\n".join([match.group("message"), *lines[start + 1 :]]).strip()


@dataclass(frozen=True)
class UpBounds:
    """When one `up` began and ended, by its own events' timestamps (Unix seconds)."""

    start: int
    end: int


def bounds(events: Sequence[EngineEvent]) -> UpBounds | None:
    """The first and last timestamp of a stream, or None when it has no events."""
    if not events:
        return None
    stamps = [e.timestamp for e in events]
    return UpBounds(min(stamps), max(stamps))
