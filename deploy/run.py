"""Deploy a stack with the policy pack; roll apps whose release gate fails back, and keep that release out.

The steps, in order: docs/release.md.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping, Sequence
from typing import TextIO

from pulumi.automation import Stack
from pulumi.automation.errors import CommandError, ConcurrentUpdateError

from clients.argo_cluster import Applications, ClusterError, connect
from deploy import recovery
from deploy.argo_ops import read_health, wait_for_operations
from deploy.commands import UpOptions, UpResult, up
from deploy.decide import Verdict, classify, pending_operations, rollback_problem
from deploy.degraded import Degraded, DegradedWatch
from deploy.events import REGISTRY_KEY, Event
from deploy.outcome import Exit, Run, finish
from deploy.process import Interrupted, Interrupts, health_step_bound
from deploy.rollback import record_key, roll_back
from deploy.runtime_config import runtime_config
from deploy.soak_phase import Soak, soak_released
from deploy.targets import PASSWORD_KEY, check_targets, short
from deploy.view import DEPLOY_KEY, StackUnreadable, StackView, indent, last_known_good, read_view, stderr_of
from model.budget import OPERATION_WAIT_KEY
from model.failed_releases import blocked, blocked_message

_GRACE_KEY = f"{DEPLOY_KEY}.degradedGraceSeconds"


def _runbook(out: TextIO, stack: str, headline: str) -> None:
    out.write(f"deploy: {headline}\n")
    for line in recovery.runbook(stack):
        out.write(f"  {line}\n")


def _report_failure(out: TextIO, result: UpResult, verdict: Verdict, stack: str) -> None:
    assert result.error is not None
    if verdict.cancelled:
        out.write(
            "deploy: the update was cancelled (a signal reached the Pulumi CLI); nothing was rolled back.\n"
        )
        _runbook(out, stack, "If the stack is left locked or with pending operations, recover it:")
        return
    if not verdict.health and not verdict.other:
        out.write(f"deploy: the update failed; nothing was rolled back:\n{indent(stderr_of(result.error))}\n")
        return
    out.write("deploy: the update failed; nothing was rolled back (only a failed health gate is):\n")
    for line in verdict.other:
        out.write(f"  - {line}\n")
    for failure in verdict.health:
        out.write(f"  - {failure.app}: health gate failed as well ({failure.urn})\n")


def _report_conflict(out: TextIO, stack: Stack, err: CommandError, options: UpOptions) -> None:
    stderr = stderr_of(err)
    history = None
    if recovery.CONFLICT_TEXT in stderr:
        try:
            history = stack.history(page_size=1, show_secrets=False)
        except CommandError:
            history = None
    conflict = recovery.explain(
        stderr, history, now=options.now(), stale_after=options.stale_after, hostname=socket.gethostname()
    )
    out.write(f"deploy: {conflict.summary}; nothing was changed.\n")
    if conflict.kind == "in-progress":
        out.write("deploy: wait for it to finish, then deploy again.\n")
        _runbook(out, stack.name, "only if no update of this stack is running after all, recover with:")
    elif conflict.kind == "left-over":
        _runbook(out, stack.name, "an interrupted run (a cancelled or timed-out job) left it; recover:")
    else:
        out.write("deploy: this deploy cannot tell whether that update is still running. If it is, wait.\n")
        _runbook(out, stack.name, "if it is not (a cancelled or timed-out job, a killed CLI), recover:")


def _check_targets(view: StackView, out: TextIO, interrupts: Interrupts) -> dict[str, str]:
    """Say, per app, whether its rollback target is still in the registry; the missing ones, with why."""
    interrupts.check()
    targets: dict[str, str] = {}
    for app in view.entries:
        if app in view.good:
            targets[app] = view.good[app]
        else:
            out.write(
                f"deploy: rollback target for {app}: none yet (no release of it has passed its health gate)\n"
            )
    if not targets:
        return {}
    if view.registry is None:
        out.write(
            "deploy: warning: rollback targets not checked: the stack's config lacks a usable "
            f"{REGISTRY_KEY} or {PASSWORD_KEY} (the update reports it)\n"
        )
        return {}
    missing: dict[str, str] = {}
    for target in check_targets(view.registry, targets):
        where = f"rollback target for {target.app}: {short(target.reference)}"
        if target.status == "present":
            out.write(f"deploy: {where} present\n")
        elif target.status == "missing":
            missing[target.app] = target.reason
            out.write(
                f"deploy: warning: {where} missing: {target.reason}. {target.app} cannot be rolled back in "
                "this deploy: a failed release of it stays as it is\n"
            )
        else:
            out.write(f"deploy: warning: {where} not checked: {target.reason}\n")
    return missing


def _watch(
    view: StackView, missing: Mapping[str, str], interrupts: Interrupts, applications: Applications | None
) -> DegradedWatch:
    """Watch the apps a rollback can restore; stop the update once one stays Degraded for the grace."""
    grace = view.deploy.degraded_grace_seconds
    restorable = [
        app
        for app, entry in view.entries.items()
        if rollback_problem(app, entry, view.good.get(app), missing) is None
    ]

    def give_up(found: Degraded) -> None:
        interrupts.stop(
            f"Argo CD has reported {found.app} Degraded for {found.seconds:.0f} s ({_GRACE_KEY} is {grace})"
        )

    judge = None if applications is None else (lambda app: read_health(applications, app))
    return DegradedWatch(restorable, grace, give_up, judge=judge)


def _degraded_report(found: Degraded, grace: int) -> str:
    workloads = f"; Degraded: {', '.join(found.workloads)}" if found.workloads else ""
    return (
        f"Argo CD reported the release Degraded for {found.seconds:.0f} s ({found.line}{workloads}); the "
        f"deploy stopped the wait after {_GRACE_KEY} ({grace} s) rather than wait for the timeout"
    )


def _applications(view: StackView, out: TextIO) -> Applications | None:
    """A client for the stack's Applications, with the provider settings the program uses; None without."""
    try:
        return connect(view.cluster) if view.cluster is not None else None
    except ClusterError as err:
        out.write(
            f"deploy: warning: cannot reach Argo CD's Applications ({err}); running operations are not "
            "waited for or terminated, and Argo CD's Degraded report alone stops a release early\n"
        )
        return None


def _wait_for_operations(
    view: StackView, applications: Applications | None, out: TextIO, interrupts: Interrupts, run: Run
) -> Exit | None:
    """Wait for operations this deploy did not start; Exit.LOCKED when one outlasts the wait."""
    if applications is None:
        return None
    try:
        foreign = wait_for_operations(
            applications, list(view.entries), view.operation_wait_s, out, interrupts.check
        )
    except ClusterError as err:
        out.write(f"deploy: warning: Argo CD's operations not checked: {err}\n")
        return None
    if foreign is None:
        return None
    message = foreign.message(OPERATION_WAIT_KEY, view.operation_wait_s)
    out.write(f"deploy: error: {message}\n")
    run.error = f"stopped before the update: {message}"
    return Exit.LOCKED


def _deploy(stack: Stack, options: UpOptions, out: TextIO, interrupts: Interrupts, run: Run) -> int:
    interrupts.check()
    view = read_view(stack, options.work_dir, options.allow_failed_releases, out, interrupts)
    options.reporter.start(stack.name, view, out)
    interrupts.step_bound = health_step_bound(view.worst_cases)
    run.good, run.budget_seconds = dict(view.good), view.deploy.budget_seconds
    found = blocked(view.record, view.tags, view.allowed)
    if found:
        out.write(f"deploy: error: {blocked_message(found, stack.name)}\n")
        refs = ", ".join(release.ref for release in found)
        run.error = f"stopped before the update: {refs} failed its health gate before and may not ship again"
        return Exit.BLOCKED
    missing = _check_targets(view, out, interrupts)
    applications = _applications(view, out)
    try:
        stopped = _wait_for_operations(view, applications, out, interrupts, run)
        if stopped is not None:
            return stopped
        return _release(stack, options, out, interrupts, run, view, missing, applications)
    finally:
        if applications is not None:
            applications.close()


def _release(
    stack: Stack,
    options: UpOptions,
    out: TextIO,
    interrupts: Interrupts,
    run: Run,
    view: StackView,
    missing: Mapping[str, str],
    applications: Applications | None,
) -> int:
    """The release `up` and its soak, and the rollback when its gate or its soak fails."""
    given = view.record.without(options.allow_failed_releases)
    # The program reads the record from the stack's outputs itself; pass it only when it differs.
    first_keys = [record_key(given, view)] if given != view.record else []
    watch = _watch(view, missing, interrupts, applications)
    with runtime_config(stack, first_keys, interrupts, out):
        result = up(stack, options, interrupts, watch)
    run.ups.append(result.events)
    _report_pending(out, result.events, stack.name)
    for app, judged in watch.excused.items():
        out.write(
            f"deploy: note: Argo CD reported {app} Degraded, but not its workload {judged.workload} "
            f"(Degraded: {', '.join(judged.others) or 'nothing any more'}); the deploy did not stop the "
            "release for it\n"
        )
    soak = Soak(stack, options, out, interrupts, run, view, missing, applications)
    if result.error is None:
        options.reporter.gate(result.events, None)
        out.write("deploy: the update succeeded\n")
        return soak_released(soak, result, given, Exit.OK)
    run.error = stderr_of(result.error)
    if isinstance(result.error, ConcurrentUpdateError):
        _report_conflict(out, stack, result.error, options)
        return Exit.LOCKED
    grace = view.deploy.degraded_grace_seconds
    degraded = (
        {d.app: (d.urn, _degraded_report(d, grace)) for d in watch.expired.values()}
        if interrupts.stopped_by_deploy
        else {}
    )
    verdict = classify(result.events, view.entries, run.error, degraded=degraded)
    options.reporter.gate(result.events, verdict)
    if not verdict.rollback:
        _report_failure(out, result, verdict, stack.name)
        return Exit.FAILED
    code = roll_back(
        stack, options, out, interrupts, run, view, result, verdict, given, missing, degraded, applications
    )
    # The restored release, and the apps released with it, are soaked too.
    return soak_released(soak, result, given, code) if code == Exit.ROLLED_BACK else code


def _report_pending(out: TextIO, events: Sequence[Event], stack: str) -> None:
    pending = pending_operations(events)
    if pending:
        out.write("deploy: warning: the stack has operations an interrupted run left pending:\n")
        for item in pending:
            out.write(f"  - {item}\n")
        _runbook(out, stack, "check those resources, then clear them:")


def deploy_up(stack: Stack, options: UpOptions, out: TextIO, interrupts: Interrupts) -> int:
    """Run the deploy and record it; a signal stops it at the next step and exits with 128 + its number."""
    run = Run(started=options.now())
    code: int
    try:
        code = _deploy(stack, options, out, interrupts, run)
    except StackUnreadable as err:
        # Like the other set-up errors (no CLI, no stack): the deploy did not start and writes no record.
        out.write(f"deploy: error: {err}\n")
        return Exit.SETUP
    except Interrupted as stopped:
        if stopped.events:
            run.ups.append(stopped.events)
        out.write(f"deploy: interrupted by {interrupts.signal_name}; the stack's config is restored.\n")
        if interrupts.terminated:
            headline = (
                "the Pulumi CLI was stopped mid-update: the stack may be locked and have pending operations. "
                "Recover:"
            )
        else:
            headline = "if the next deploy finds the stack locked or operations pending:"
        _runbook(out, stack.name, headline)
        run.error = f"interrupted by {interrupts.signal_name}" + (f": {run.error}" if run.error else "")
        code = interrupts.exit_code
    # Unless a signal stopped the deploy (the runner kills it soon), read the digests after it again.
    after: dict[str, str] = {}
    if not interrupts.interrupted:
        try:
            after = last_known_good(stack.outputs())
        except CommandError:
            after = dict(run.good)
    finish(
        stack.name,
        run,
        code,
        after,
        options.now(),
        out,
        record=options.record,
        step_summary=options.step_summary,
        work_dir=options.work_dir,
        on_record=lambda built: options.reporter.finish(built, code, run.rolled_back),
    )
    return code
