"""What the dynamic providers share: one-line failures without a traceback, and the engine's unknown values.

The provider host prints any exception with its traceback, so the host is told to print frames of none
(docs/engine-rules.md#dynamic-provider-errors).
"""

from __future__ import annotations

import sys
from typing import Any

from pulumi.dynamic import ConfigureRequest, ResourceProvider
from pulumi.output import Unknown
from pulumi.runtime import rpc

from clients.http_bounds import describe, one_line


def failure_line(subject: str, exc: BaseException) -> str:
    """`<subject>: <Type>: <message>` on one line, groups unwrapped to the exception inside."""
    return one_line(f"{subject}: {describe(exc)}")


def is_unknown(value: Any) -> bool:
    """True for a value the engine does not know yet (during preview), also inside a list."""
    if isinstance(value, Unknown) or value == rpc.UNKNOWN:
        return True
    return isinstance(value, list) and any(is_unknown(v) for v in value)


class OneLineErrors(ResourceProvider):
    """A provider whose errors reach the engine as their message alone."""

    def configure(self, req: ConfigureRequest) -> None:
        """Called once by the provider host when it loads this provider: its tracebacks print no frames."""
        sys.tracebacklimit = 0
