"""What the dynamic providers share: one-line failures without a traceback, unknown values, registry inputs.

The provider host prints any exception with its traceback, so the host is told to print frames of none
(docs/engine-rules.md#dynamic-provider-errors).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from pulumi.dynamic import CheckFailure, ConfigureRequest, ResourceProvider
from pulumi.output import Unknown
from pulumi.runtime import rpc

from clients.http_bounds import describe, one_line
from model.http_origin import server_problem


def failure_line(subject: str, exc: BaseException) -> str:
    """`<subject>: <Type>: <message>` on one line, groups unwrapped to the exception inside."""
    return one_line(f"{subject}: {describe(exc)}")


def is_unknown(value: Any) -> bool:
    """True for a value the engine does not know yet (during preview), also inside a list."""
    if isinstance(value, Unknown) or value == rpc.UNKNOWN:
        return True
    return isinstance(value, list) and any(is_unknown(v) for v in value)


def registry_failures(news: Mapping[str, Any]) -> list[CheckFailure]:
    """The registry inputs both registry providers take: a server with a valid port, a user, a password."""
    failures: list[CheckFailure] = []
    for key in ("server", "username", "password"):
        value = news.get(key)
        if not is_unknown(value) and (not isinstance(value, str) or not value):
            failures.append(CheckFailure(key, "expected a non-empty string"))
        elif key == "server" and isinstance(value, str) and (problem := server_problem(value)) is not None:
            failures.append(
                CheckFailure(key, f"got {value!r}; expected a host with a port from 1 to 65535 ({problem})")
            )
    if not isinstance(news.get("insecure", False), bool):
        failures.append(CheckFailure("insecure", "expected true or false"))
    return failures


class OneLineErrors(ResourceProvider):
    """A provider whose errors reach the engine as their message alone."""

    def configure(self, req: ConfigureRequest) -> None:
        """Called once by the provider host when it loads this provider: its tracebacks print no frames."""
        sys.tracebacklimit = 0
