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
    """A diagnostic's text without colour directives or surrounding blank space."""
    return _COLOUR.sub("", message).strip()


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
