"""Deploy a stack with the policy pack; roll apps whose health gate fails back to their last good digest."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TextIO

from pulumi.automation import ConfigValue
from pulumi.automation.errors import CommandError, ConcurrentUpdateError
from pulumi.automation.events import EngineEvent

from deploy.decide import (
    APPS_KEY,
    Pin,
    RollbackPlan,
    Verdict,
    app_entries,
    classify,
    last_known_good,
    plan_rollback,
)

EXIT_OK = 0
EXIT_FAILED = 1
"""The update failed and nothing was rolled back (not a health failure, or nothing to roll back to)."""
EXIT_SETUP = 2
"""The deploy could not start (no CLI, no stack, no policy config)."""
EXIT_ROLLED_BACK = 3
"""A health gate failed; the failed apps run their last known good digest again."""
EXIT_ROLLBACK_FAILED = 4
"""A health gate failed and the rollback `up` failed too."""


class DeployStack(Protocol):
    """The part of `pulumi.automation.Stack` the deploy uses."""

    def outputs(self) -> Mapping[str, Any]: ...

    def get_all_config(self) -> Mapping[str, ConfigValue]: ...

    def set_config(self, key: str, value: ConfigValue, *, path: bool = False) -> None: ...

    def remove_config(self, key: str, *, path: bool = False) -> None: ...

    def up(
        self,
        *,
        policy_packs: list[str] | None = ...,
        policy_pack_configs: list[str] | None = ...,
        on_output: Callable[[str], Any] | None = ...,
        on_event: Callable[[EngineEvent], Any] | None = ...,
        show_secrets: bool = ...,
    ) -> Any: ...


@dataclass(frozen=True)
class UpOptions:
    """What every `up` of the deploy is run with."""

    policy_packs: Sequence[str]
    policy_pack_configs: Sequence[str]
    on_output: Callable[[str], None]


def _up(stack: DeployStack, options: UpOptions) -> tuple[CommandError | None, list[EngineEvent]]:
    """One `up`, streaming the engine's output; returns the failure (if any) and the recorded events."""
    events: list[EngineEvent] = []
    try:
        stack.up(
            policy_packs=list(options.policy_packs),
            policy_pack_configs=list(options.policy_pack_configs),
            on_output=options.on_output,
            on_event=events.append,
            # Keep decrypted config out of the returned summary; it is never needed here.
            show_secrets=False,
        )
    except CommandError as err:
        return err, events
    return None, events


def _apps_config(stack: DeployStack) -> str | None:
    value = stack.get_all_config().get(APPS_KEY)
    return value.value if value is not None else None


def _set_pins(stack: DeployStack, pins: Sequence[Pin]) -> None:
    for pin in pins:
        stack.set_config(pin.key, ConfigValue(pin.digest), path=True)


def _restore_pins(stack: DeployStack, pins: Sequence[Pin]) -> None:
    """Put the stack file's pins back as they were: the rollback leaves no pin of its own behind."""
    entries = app_entries(_apps_config(stack))
    for pin in pins:
        current = entries.get(pin.app)
        if pin.previous is not None:
            stack.set_config(pin.key, ConfigValue(pin.previous), path=True)
        elif current is not None and current.pin is not None:
            stack.remove_config(pin.key, path=True)


def _report_failure(out: TextIO, err: CommandError, verdict: Verdict) -> None:
    if isinstance(err, ConcurrentUpdateError):
        out.write("deploy: another update of this stack is in progress; nothing was changed\n")
        return
    if not verdict.health and not verdict.other:
        out.write(f"deploy: the update failed; nothing was rolled back:\n{_indent(_stderr(err))}\n")
        return
    out.write("deploy: the update failed; nothing was rolled back (only a failed health gate is):\n")
    for line in verdict.other:
        out.write(f"  - {line}\n")
    for failure in verdict.health:
        out.write(f"  - {failure.app}: health gate failed as well ({failure.urn})\n")


def _report_rollback(out: TextIO, verdict: Verdict, plan: RollbackPlan) -> None:
    out.write("deploy: the release failed its health gate:\n")
    for failure in verdict.health:
        what = "health check failed" if failure.kind == "health-check" else "Application never became Healthy"
        out.write(f"  - {failure.app}: {what} ({failure.urn})\n{_indent(failure.report, 6)}\n")
    for line in plan.stuck:
        out.write(f"  - cannot roll back {line}\n")


def _stderr(err: CommandError) -> str:
    """The CLI's stderr from a CommandError (its stdout was already streamed)."""
    text = str(err)
    _, sep, stderr = text.rpartition("\n stderr: ")
    return (stderr if sep else text).strip() or "no error output"


def _indent(text: str, width: int = 4) -> str:
    return "\n".join(" " * width + line for line in text.splitlines())


def deploy_up(stack: DeployStack, options: UpOptions, out: TextIO) -> int:
    """Run the deploy: up; on a health failure, up again with each failed app pinned, then unpin."""
    good = last_known_good(stack.outputs())
    entries = app_entries(_apps_config(stack))
    for name, entry in entries.items():
        if entry.pin is not None:
            out.write(f"deploy: note: {name} is pinned to {entry.pin} in the stack config; not rebuilt\n")
    err, events = _up(stack, options)
    if err is None:
        out.write("deploy: the update succeeded\n")
        return EXIT_OK
    verdict = classify(events, entries)
    if not verdict.rollback:
        _report_failure(out, err, verdict)
        return EXIT_FAILED
    plan = plan_rollback(verdict, good, entries)
    _report_rollback(out, verdict, plan)
    if not plan.pins:
        out.write("deploy: nothing to roll back to; the failed release stays as it is\n")
        return EXIT_FAILED
    for pin in plan.pins:
        out.write(f"deploy: rolling {pin.app} back to {pin.digest} ({pin.key})\n")
    try:
        _set_pins(stack, plan.pins)
        rollback_err, rollback_events = _up(stack, options)
    finally:
        # Also after a failed `config set` or an interrupted `up`: a deploy leaves no pin of its own.
        _restore_pins(stack, plan.pins)
    if rollback_err is not None:
        again = classify(rollback_events, entries)
        out.write("deploy: the rollback failed too:\n")
        lines = [*(f"{f.app}: {f.report}" for f in again.health), *again.other]
        for line in lines or [_stderr(rollback_err)]:
            out.write(f"{_indent(line)}\n")
        return EXIT_ROLLBACK_FAILED
    apps = ", ".join(f"{p.app} -> {p.digest}" for p in plan.pins)
    out.write(f"deploy: rolled back {apps}; the failed release is not live. Failing the deploy.\n")
    return EXIT_ROLLED_BACK
