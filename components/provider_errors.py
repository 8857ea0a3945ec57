"""How this project's dynamic providers fail: one message that names the app and the cause, no traceback.

The provider host (`python -m pulumi.dynamic`, pulumi/pulumi sdk/python/lib/pulumi/dynamic/__main__.py,
`_abort_with_traceback`, from SDK 3.260.0 on: requirements.txt's floor) answers any exception with
`traceback.format_exc()`, and the engine prints that text as the resource's error. Its frames are the
host's and ours, not the user's, and an exception group from anyio runs to thousands of characters. So:

- each provider turns an unexpected exception into its own failure type with a one-line message
  (`failure_line`), raised `from None` so no chain is printed;
- `OneLineErrors.configure`, which the host calls once when it loads a provider, sets
  `sys.tracebacklimit = 0` in the host process; `traceback.format_exc()` then prints no frames and no
  "Traceback" header, only `module.Type: message`. The host process runs only dynamic providers, and
  all of this program's are ours.
"""

from __future__ import annotations

import sys

from pulumi.dynamic import ConfigureRequest, ResourceProvider

from clients.http_bounds import describe, one_line


def failure_line(subject: str, exc: BaseException) -> str:
    """`<subject>: <Type>: <message>` on one line, groups unwrapped to the exception inside."""
    return one_line(f"{subject}: {describe(exc)}")


def quiet_host_tracebacks() -> None:
    """Make the provider host report an exception as its last line only (see the module docstring)."""
    sys.tracebacklimit = 0


class OneLineErrors(ResourceProvider):
    """A provider whose errors reach the engine as their message alone."""

    def configure(self, req: ConfigureRequest) -> None:
        """Called once by the provider host when it loads this provider (never in-process)."""
        quiet_host_tracebacks()
