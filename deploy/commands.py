"""The CLI commands the deploy runs on the stack: `up`, its events decoded as they come, and `refresh`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO

from pulumi.automation import Stack
from pulumi.automation.errors import CommandError
from pulumi.automation.events import EngineEvent

from deploy.degraded import DegradedWatch
from deploy.events import Event, event
from deploy.process import Interrupted, Interrupts
from deploy.view import stderr_of
from deploy.visibility import Reporter

STALE_AFTER = timedelta(minutes=45)
"""A lock or an in-progress update older than this outlived any deploy (the jobs' timeout-minutes, a soak
after `up` included)."""


@dataclass(frozen=True)
class UpOptions:
    """What every `up` of the deploy is run with, and the run's own settings."""

    policy_packs: Sequence[str]
    policy_pack_configs: Sequence[str]
    on_output: Callable[[str], None]
    work_dir: Path
    allow_failed_releases: tuple[str, ...] = ()
    """`<app>:<content tag>` releases the user allows to ship again (`--allow-failed-release`)."""
    stale_after: timedelta = STALE_AFTER
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    record: Path | None = None
    """`--record FILE`: where to write the deploy record."""
    step_summary: Path | None = None
    """$GITHUB_STEP_SUMMARY: where to append the table as Markdown."""
    reporter: Reporter = field(default_factory=Reporter)
    """GitHub's deployment statuses and the webhook (deploy/visibility.py)."""


@dataclass(frozen=True)
class UpResult:
    """One `up`: its failure (None when it succeeded) and its engine events."""

    error: CommandError | None
    events: list[Event]


def up(
    stack: Stack, options: UpOptions, interrupts: Interrupts, watch: DegradedWatch | None = None
) -> UpResult:
    """One `up`, streaming the engine's output; a signal during it raises Interrupted once the CLI exited."""
    interrupts.check()
    events: list[Event] = []

    def on_event(raw: EngineEvent) -> None:
        decoded = event(raw)
        events.append(decoded)
        interrupts.on_event(decoded)
        if watch is not None:
            watch.on_event(decoded)

    try:
        stack.up(
            policy_packs=list(options.policy_packs),
            policy_pack_configs=list(options.policy_pack_configs),
            on_output=options.on_output,
            on_event=on_event,
            show_secrets=False,  # decrypted config is never needed in the returned summary
        )
    except CommandError as err:
        if interrupts.interrupted:
            raise Interrupted(str(err), events) from err
        return UpResult(err, events)
    finally:
        if watch is not None:
            watch.close()
    return UpResult(None, events)


def refresh(
    stack: Stack, options: UpOptions, out: TextIO, interrupts: Interrupts, urns: Sequence[str]
) -> str | None:
    """Read the stopped Applications back from the cluster; the CLI's error, or None.

    Why a stopped wait needs it: docs/engine-rules.md#a-cancelled-application-update.
    """
    interrupts.check()
    names = ", ".join(urn.split("::")[-1] for urn in urns)
    out.write(
        f"deploy: reading {names} back from the cluster first (pulumi refresh --target): the stopped wait\n"
    )
    out.write("deploy:   left the stack's state at the last release while the cluster runs the failed one\n")
    try:
        stack.refresh(target=list(urns), on_output=options.on_output, show_secrets=False)
    except CommandError as err:
        if interrupts.interrupted:
            raise Interrupted(str(err)) from err
        return stderr_of(err)
    return None
