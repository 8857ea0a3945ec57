"""Deploy a stack with the policy pack; roll apps whose release gate fails back, and keep that release out.

One run: read the stack's outputs (the last digests that passed their gate, and the failed-release
record) and config, stop before the update if an app would ship content that failed before, check
that each app's rollback target is still in the registry, run `up` while watching for apps Argo CD
reports Degraded (stopping the update once one stays so for the grace period); on a pure release-gate
failure, run `up` again with each failed app pinned to its last good digest, a fresh
`gitops-deploy:rollbackId`, and the record with the failed release added; then restore the config.
Whatever happened, it ends with the deploy record: the table, $GITHUB_STEP_SUMMARY, `--record FILE`.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from pulumi.automation import ConfigMap, ConfigValue, OutputMap, Stack
from pulumi.automation.errors import CommandError, ConcurrentUpdateError
from pulumi.automation.events import EngineEvent

from clients.argo_cluster import Applications, ClusterError, connect, target_from_config
from deploy import recovery
from deploy.argo_ops import read_health, terminate_operations, wait_for_operations
from deploy.decide import (
    APPS_KEY,
    AppEntry,
    RollbackPlan,
    Verdict,
    app_entries,
    built_digests,
    classify,
    last_known_good,
    pending_operations,
    plan_rollback,
    rollback_problem,
)
from deploy.degraded import Degraded, DegradedWatch
from deploy.process import Interrupted, Interrupts, health_step_bound
from deploy.runtime_config import RuntimeKey, runtime_config
from deploy.targets import check_targets, registry_from_config, short
from model.budget import OPERATION_WAIT_KEY, app_budgets
from model.config import (
    NAMESPACE,
    TOP_LEVEL_KEYS,
    DeployConfig,
    StackConfig,
    parse_config,
    read_deploy,
)
from model.config_reader import ConfigError
from model.content_tag import content_tag
from model.failed_releases import (
    RECORD_KEY,
    RECORD_OUTPUT,
    FailedRelease,
    FailedReleaseRecord,
    blocked,
    blocked_message,
)
from model.http_origin import redact_urls
from model.record import Outcome, build_record, render_markdown, render_text, write_record

EXIT_OK = 0
EXIT_FAILED = 1
"""The update failed and nothing was rolled back (not a health failure, or nothing to roll back to)."""
EXIT_SETUP = 2
"""The deploy could not start (no CLI, no stack or an unreadable one, no policy config, a bad option)."""
EXIT_ROLLED_BACK = 3
"""A health gate failed; the failed apps run their last known good digest again."""
EXIT_ROLLBACK_FAILED = 4
"""A health gate failed and the rollback `up` failed too."""
EXIT_BLOCKED = 5
"""An app would ship content that failed its health gate before: stopped before the update."""
EXIT_LOCKED = 6
"""The stack is locked, another update is in progress, or an Argo CD operation this deploy did not start
did not end in time: nothing was changed."""
# A signal: 128 + its number (130 for SIGINT, 143 for SIGTERM), as a shell reports it.
OUTCOMES: Mapping[int, Outcome] = {
    EXIT_OK: "succeeded",
    EXIT_ROLLED_BACK: "rolled-back",
    EXIT_ROLLBACK_FAILED: "rollback-failed",
}
"""The deploy record's outcome of each exit code; any other code is `failed`."""
DEPLOY_KEY = f"{NAMESPACE}:deploy"

ROLLBACK_ID_KEY = f"{NAMESPACE}:rollbackId"
"""Set to a fresh value for the rollback's `up` only, so the restored release is probed again."""
RECORD_CONFIG_KEY = f"{NAMESPACE}:{RECORD_KEY}"
STALE_AFTER = timedelta(minutes=30)
"""A lock or an in-progress update older than this outlived any deploy (the jobs' timeout-minutes)."""


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


@dataclass(frozen=True)
class UpResult:
    """One `up`: its failure (None when it succeeded) and the engine events it streamed."""

    error: CommandError | None
    events: list[EngineEvent]


@dataclass
class Run:
    """What one deploy did, for its record."""

    started: datetime
    ups: list[list[EngineEvent]] = field(default_factory=list)
    """The engine events of each `up`: the release, then the rollback."""
    good: dict[str, str] = field(default_factory=dict)
    """Each app's last known good digest before the deploy."""
    budget_seconds: int = DeployConfig().budget_seconds
    rolled_back: list[str] = field(default_factory=list)
    error: str | None = None
    """The CLI's error, or why the deploy stopped before the update: the cause when events show none."""


def _up(
    stack: Stack, options: UpOptions, interrupts: Interrupts, watch: DegradedWatch | None = None
) -> UpResult:
    """One `up`, streaming the engine's output; a signal during it raises Interrupted once the CLI exited."""
    interrupts.check()
    events: list[EngineEvent] = []

    def on_event(event: EngineEvent) -> None:
        events.append(event)
        interrupts.on_event(event)
        if watch is not None:
            watch.on_event(event)

    try:
        stack.up(
            policy_packs=list(options.policy_packs),
            policy_pack_configs=list(options.policy_pack_configs),
            on_output=options.on_output,
            on_event=on_event,
            # Keep decrypted config out of the returned summary; it is never needed here.
            show_secrets=False,
        )
    except CommandError as err:
        if interrupts.interrupted:
            raise Interrupted(str(err), events) from err
        return UpResult(err, events)
    finally:
        if watch is not None:
            watch.close()
    return UpResult(None, events)


def _stderr(err: CommandError) -> str:
    """The CLI's stderr from a CommandError (its stdout was already streamed)."""
    text = redact_urls(str(err))
    _, sep, stderr = text.rpartition("\n stderr: ")
    return (stderr if sep else text).strip() or "no error output"


def _indent(text: str, width: int = 4) -> str:
    return "\n".join(" " * width + line for line in text.splitlines())


def _config_value(config: Mapping[str, ConfigValue], key: str) -> str | None:
    value = config.get(key)
    return value.value if value is not None else None


def _parsed(config: Mapping[str, ConfigValue], work_dir: Path) -> StackConfig | None:
    """The stack config as the program parses it; None when the program rejects it (the `up` says why)."""
    raw: dict[str, Any] = {}
    for key in TOP_LEVEL_KEYS:
        text = _config_value(config, f"{NAMESPACE}:{key}")
        if text is None:
            continue
        try:
            raw[key] = json.loads(text)
        except ValueError:
            raw[key] = text
    try:
        return parse_config(raw, work_dir)
    except ConfigError:
        return None


def _content_tags(cfg: StackConfig | None) -> tuple[dict[str, str], tuple[str, ...], dict[str, float]]:
    """Each built app's content tag, the config's allowed releases and each app's health-check worst case."""
    if cfg is None:
        return {}, (), {}
    tags = {
        app.name: content_tag(
            app.image.context,
            app.image.dockerfile,
            app.image.platform,
            app.image.build_args,
            root=cfg.project_dir,
        )
        for app in cfg.apps
        if app.image.pin is None
    }
    return tags, cfg.allow_failed_releases, {app.name: app.health.budget_seconds for app in cfg.apps}


def _record(outputs: Mapping[str, Any], out: TextIO) -> FailedReleaseRecord:
    value = outputs.get(RECORD_OUTPUT)
    record, problems = FailedReleaseRecord.from_json(getattr(value, "value", value))
    for p in problems:
        out.write(f"deploy: warning: stack output {RECORD_OUTPUT}{p.path}: got {p.given}; ignored\n")
    return record


def _record_key(record: FailedReleaseRecord, config: Mapping[str, ConfigValue]) -> RuntimeKey:
    return RuntimeKey(
        RECORD_CONFIG_KEY, json.dumps(record.to_json()), _config_value(config, RECORD_CONFIG_KEY)
    )


def _report_failure(out: TextIO, result: UpResult, verdict: Verdict, stack: str) -> None:
    assert result.error is not None
    if verdict.cancelled:
        out.write(
            "deploy: the update was cancelled (a signal reached the Pulumi CLI); nothing was rolled back.\n"
        )
        _write_runbook(out, stack, "If the stack is left locked or with pending operations, recover it:")
        return
    if not verdict.health and not verdict.other:
        out.write(f"deploy: the update failed; nothing was rolled back:\n{_indent(_stderr(result.error))}\n")
        return
    out.write("deploy: the update failed; nothing was rolled back (only a failed health gate is):\n")
    for line in verdict.other:
        out.write(f"  - {line}\n")
    for failure in verdict.health:
        out.write(f"  - {failure.app}: health gate failed as well ({failure.urn})\n")


_FAILURE_KIND = {
    "health-check": "health check failed",
    "application": "Application's wait timed out",
    "degraded": "Argo CD reported it Degraded for the grace period; the deploy stopped the wait",
}


def _report_rollback(out: TextIO, verdict: Verdict, plan: RollbackPlan) -> None:
    out.write("deploy: the release failed its health gate:\n")
    for failure in verdict.health:
        out.write(f"  - {failure.app}: {_FAILURE_KIND[failure.kind]} ({failure.urn})\n")
        out.write(f"{_indent(failure.report, 6)}\n")
    for line in plan.stuck:
        out.write(f"  - cannot roll back {line}\n")
    for item in verdict.interrupted:
        out.write(f"  - the early stop interrupted {item}; the rollback's update runs it again\n")


def _write_runbook(out: TextIO, stack: str, headline: str) -> None:
    out.write(f"deploy: {headline}\n")
    for line in recovery.runbook(stack):
        out.write(f"  {line}\n")


def _report_conflict(out: TextIO, stack: Stack, err: CommandError, options: UpOptions) -> None:
    stderr = _stderr(err)
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
        _write_runbook(out, stack.name, "only if no update of this stack is running after all, recover with:")
    elif conflict.kind == "left-over":
        _write_runbook(out, stack.name, "an interrupted run (a cancelled or timed-out job) left it; recover:")
    else:
        out.write("deploy: this deploy cannot tell whether that update is still running. If it is, wait.\n")
        _write_runbook(out, stack.name, "if it is not (a cancelled or timed-out job, a killed CLI), recover:")


def _report_pending(out: TextIO, events: Sequence[EngineEvent], stack: str) -> None:
    pending = pending_operations(events)
    if pending:
        out.write("deploy: warning: the stack has operations an interrupted run left pending:\n")
        for item in pending:
            out.write(f"  - {item}\n")
        _write_runbook(out, stack, "check those resources, then clear them:")


def _failed_releases(
    verdict: Verdict, plan: RollbackPlan, tags: Mapping[str, str], result: UpResult, now: datetime
) -> list[FailedRelease]:
    """The releases this rollback takes back, for the record: only built apps have a content tag."""
    digests = built_digests(result.events, tags)
    reports = {f.app: f.report for f in verdict.health}
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    return [
        FailedRelease(
            pin.app, tags[pin.app], digests.get(pin.app), stamp, _first_line(reports.get(pin.app, ""))
        )
        for pin in plan.pins
        if pin.app in tags
    ]


def _first_line(text: str) -> str:
    return (text.strip().splitlines() or [""])[0][:200]


@dataclass(frozen=True)
class StackState:
    """What the deploy reads before the update."""

    good: dict[str, str]
    """Each app's last digest that passed its health gate."""
    record: FailedReleaseRecord
    config: Mapping[str, ConfigValue]
    entries: dict[str, AppEntry]
    tags: dict[str, str]
    """Each built app's content tag."""
    allowed: tuple[str, ...]
    """Failed releases allowed to ship again: the option's and the stack config's."""
    deploy: DeployConfig = field(default_factory=DeployConfig)
    """`gitops-deploy:deploy`: the budget and the Degraded grace period."""
    operation_wait_s: int = 0
    """How long to wait for an Argo CD operation this deploy did not start (model/budget.py)."""


def _deploy_config(config: Mapping[str, ConfigValue]) -> DeployConfig:
    """The stack's `gitops-deploy:deploy`; the defaults when it is broken (the update says why)."""
    text = _config_value(config, DEPLOY_KEY)
    try:
        return read_deploy(json.loads(text) if text else None)
    except (ValueError, ConfigError):
        return DeployConfig()


class StackUnreadable(Exception):
    """The CLI could not read the stack's outputs or config: the deploy cannot start."""


def _read_outputs_and_config(stack: Stack, interrupts: Interrupts) -> tuple[OutputMap, ConfigMap]:
    """The stack's outputs and its config (secrets decrypted); StackUnreadable with the CLI's reason."""
    try:
        return stack.outputs(), stack.get_all_config()
    except CommandError as err:
        if interrupts.interrupted:
            raise Interrupted(str(err)) from err
        reason = _stderr(err)
        hint = ""
        if "passphrase" in reason.lower():
            hint = (
                "\n  The stack's secrets are passphrase-encrypted: export PULUMI_CONFIG_PASSPHRASE (or "
                "PULUMI_CONFIG_PASSPHRASE_FILE) as for `pulumi up`."
            )
        raise StackUnreadable(
            f"could not read stack {stack.name!r} (its outputs and config), so nothing was deployed:\n"
            f"{_indent(reason)}{hint}"
        ) from err


def _read_stack(stack: Stack, options: UpOptions, out: TextIO, interrupts: Interrupts) -> StackState:
    outputs, config = _read_outputs_and_config(stack, interrupts)
    record = _record(outputs, out)
    entries = app_entries(_config_value(config, APPS_KEY))
    for name, entry in entries.items():
        if entry.pin is not None:
            out.write(f"deploy: note: {name} is pinned to {entry.pin} in the stack config; not rebuilt\n")
    cfg = _parsed(config, options.work_dir)
    tags, config_allowed, worst_cases = _content_tags(cfg)
    interrupts.step_bound = health_step_bound(worst_cases)
    recorded = {r.ref for r in record.releases}
    for ref in options.allow_failed_releases:
        if ref not in recorded:
            out.write(f"deploy: note: --allow-failed-release {ref}: no such failed release is recorded\n")
    allowed = (*options.allow_failed_releases, *config_allowed)
    good = last_known_good(outputs)
    deploy = _deploy_config(config)
    budgets = app_budgets(cfg) if cfg is not None else ()
    wait = int(budgets[0].before[0].seconds) if budgets else (deploy.operation_wait_seconds or 0)
    return StackState(good, record, config, entries, tags, allowed, deploy, wait)


def deploy_up(stack: Stack, options: UpOptions, out: TextIO, interrupts: Interrupts) -> int:
    """Run the deploy and record it; a signal stops it at the next step and exits with 128 + its number."""
    run = Run(started=options.now())
    try:
        code = _deploy(stack, options, out, interrupts, run)
    except StackUnreadable as err:
        # Like the other set-up errors (no CLI, no stack): the deploy did not start and writes no record.
        out.write(f"deploy: error: {err}\n")
        return EXIT_SETUP
    except Interrupted as stopped:
        if stopped.events:
            run.ups.append(stopped.events)
        out.write(f"deploy: interrupted by {interrupts.signal_name}; the stack's config is restored.\n")
        if interrupts.terminated:
            _write_runbook(
                out,
                stack.name,
                "the Pulumi CLI was stopped mid-update: the stack may be locked and have pending operations. "
                "Recover:",
            )
        else:
            _write_runbook(
                out, stack.name, "if the next deploy finds the stack locked or operations pending:"
            )
        run.error = f"interrupted by {interrupts.signal_name}" + (f": {run.error}" if run.error else "")
        code = interrupts.exit_code
    _finish(stack, options, out, run, code, read_outputs=not interrupts.interrupted)
    return code


def _finish(
    stack: Stack, options: UpOptions, out: TextIO, run: Run, code: int, *, read_outputs: bool
) -> None:
    """The deploy record: the table on `out`, Markdown for $GITHUB_STEP_SUMMARY, JSON for `--record`.

    The digests after the deploy are the stack's outputs read again, unless a signal stopped the deploy
    (the runner kills it seconds later: no more CLI calls than the cleanup needs).
    """
    after: dict[str, str] = {}
    if read_outputs:
        try:
            after = last_known_good(stack.outputs())
        except CommandError:
            after = dict(run.good)
    # Whole seconds, as the record stores them: the table then shows what the record says.
    stamps = [e.timestamp for events in run.ups for e in events]
    ended = options.now().replace(microsecond=0)
    if stamps:
        ended = max(ended, datetime.fromtimestamp(max(stamps), UTC))
    started = min(run.started.replace(microsecond=0), ended)
    record = build_record(
        stack.name,
        run.ups,
        OUTCOMES.get(code, "failed"),
        digests_before=run.good,
        digests_after=after,
        started_at=started,
        ended_at=ended,
        budget_seconds=run.budget_seconds,
        rolled_back=run.rolled_back,
        error=run.error,
    )
    out.write(render_text(record))
    if options.step_summary is not None:
        try:
            with options.step_summary.open("a", encoding="utf-8") as summary:
                summary.write(render_markdown(record) + "\n")
        except OSError as err:
            out.write(f"deploy: warning: could not append to $GITHUB_STEP_SUMMARY: {err.strerror or err}\n")
    if options.record is not None:
        try:
            write_record(record, options.record)
            out.write(f"deploy: deploy record written to {options.record}\n")
        except OSError as err:
            why = err.strerror or err
            out.write(f"deploy: warning: could not write the deploy record {options.record}: {why}\n")


def _check_targets(state: StackState, out: TextIO, interrupts: Interrupts) -> dict[str, str]:
    """Say, per app, whether its rollback target is still in the registry; the missing ones, with why."""
    interrupts.check()
    targets: dict[str, str] = {}
    for app in state.entries:
        if app in state.good:
            targets[app] = state.good[app]
        else:
            out.write(
                f"deploy: rollback target for {app}: none yet (no release of it has passed its health gate)\n"
            )
    if not targets:
        return {}
    registry = registry_from_config({k: v.value for k, v in state.config.items()})
    if registry is None:
        out.write(
            "deploy: warning: rollback targets not checked: the stack's config lacks a usable "
            f"{NAMESPACE}:registry or {NAMESPACE}:registryPassword (the update reports it)\n"
        )
        return {}
    missing: dict[str, str] = {}
    for target in check_targets(registry, targets):
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
    state: StackState, missing: Mapping[str, str], interrupts: Interrupts, applications: Applications | None
) -> DegradedWatch:
    """Watch the apps a rollback can restore; stop the update once one stays Degraded for the grace."""
    grace = state.deploy.degraded_grace_seconds
    restorable = [
        app
        for app, entry in state.entries.items()
        if rollback_problem(app, entry, state.good.get(app), missing) is None
    ]

    def give_up(found: Degraded) -> None:
        interrupts.stop(
            f"Argo CD has reported {found.app} Degraded for {found.seconds:.0f} s "
            f"({NAMESPACE}:deploy.degradedGraceSeconds is {grace})"
        )

    if applications is None:
        return DegradedWatch(restorable, grace, give_up)
    return DegradedWatch(restorable, grace, give_up, judge=lambda app: read_health(applications, app))


def _degraded_report(found: Degraded, grace: int) -> str:
    workloads = f"; Degraded: {', '.join(found.workloads)}" if found.workloads else ""
    return (
        f"Argo CD reported the release Degraded for {found.seconds:.0f} s ({found.line}{workloads}); the "
        f"deploy stopped the wait after {NAMESPACE}:deploy.degradedGraceSeconds ({grace} s) rather than wait "
        "for the timeout"
    )


def _applications(state: StackState, out: TextIO) -> Applications | None:
    """A client for the stack's Applications, with the provider settings the program uses; None without."""
    values = {k: v.value for k, v in state.config.items()}
    target = target_from_config(values, os.environ)
    try:
        return connect(target)
    except ClusterError as err:
        out.write(
            f"deploy: warning: cannot reach Argo CD's Applications ({err}); running operations are not "
            "waited for or terminated, and Argo CD's Degraded report alone stops a release early\n"
        )
        return None


def _wait_for_operations(
    state: StackState, applications: Applications | None, out: TextIO, interrupts: Interrupts, run: Run
) -> int | None:
    """Wait for operations this deploy did not start; EXIT_LOCKED when one outlasts the wait."""
    if applications is None:
        return None
    try:
        foreign = wait_for_operations(
            applications, list(state.entries), state.operation_wait_s, out, interrupts.check
        )
    except ClusterError as err:
        out.write(f"deploy: warning: Argo CD's operations not checked: {err}\n")
        return None
    if foreign is None:
        return None
    message = foreign.message(OPERATION_WAIT_KEY, state.operation_wait_s)
    out.write(f"deploy: error: {message}\n")
    run.error = f"stopped before the update: {message}"
    return EXIT_LOCKED


def _terminate_operations(applications: Applications | None, apps: Sequence[str], out: TextIO) -> None:
    """End the failed release's running operations, which would hold the rollback's sync."""
    if applications is None:
        out.write("deploy: warning: Argo CD's running operations cannot be terminated (no cluster access)\n")
        return
    for done in terminate_operations(applications, apps):
        if done.action == "terminated":
            out.write(
                f"deploy: terminated Argo CD's operation on {done.app} ({done.detail}), as `argocd app "
                "terminate-op` does: it would hold the rollback's sync\n"
            )
        elif done.action == "terminating":
            out.write(f"deploy: Argo CD's operation on {done.app} is terminating already ({done.detail})\n")
        elif done.action == "failed":
            out.write(
                f"deploy: warning: could not terminate Argo CD's operation on {done.app}: {done.detail}; "
                "the rollback's sync waits for it\n"
            )


def _deploy(stack: Stack, options: UpOptions, out: TextIO, interrupts: Interrupts, run: Run) -> int:
    interrupts.check()
    state = _read_stack(stack, options, out, interrupts)
    run.good, run.budget_seconds = dict(state.good), state.deploy.budget_seconds
    found = blocked(state.record, state.tags, state.allowed)
    if found:
        out.write(f"deploy: error: {blocked_message(found, stack.name)}\n")
        refs = ", ".join(release.ref for release in found)
        run.error = f"stopped before the update: {refs} failed its health gate before and may not ship again"
        return EXIT_BLOCKED
    missing = _check_targets(state, out, interrupts)
    applications = _applications(state, out)
    try:
        stopped = _wait_for_operations(state, applications, out, interrupts, run)
        if stopped is not None:
            return stopped
        return _release(stack, options, out, interrupts, run, state, missing, applications)
    finally:
        if applications is not None:
            applications.close()


def _release(
    stack: Stack,
    options: UpOptions,
    out: TextIO,
    interrupts: Interrupts,
    run: Run,
    state: StackState,
    missing: Mapping[str, str],
    applications: Applications | None,
) -> int:
    """The release `up`, and the rollback when its gate fails."""
    given = state.record.without(options.allow_failed_releases)
    # The program reads the record from the stack's outputs itself; pass it only when it differs.
    first_keys = [_record_key(given, state.config)] if given != state.record else []
    watch = _watch(state, missing, interrupts, applications)
    with runtime_config(stack, first_keys, interrupts, out):
        result = _up(stack, options, interrupts, watch)
    run.ups.append(result.events)
    _report_pending(out, result.events, stack.name)
    for app, judged in watch.excused.items():
        out.write(
            f"deploy: note: Argo CD reported {app} Degraded, but not its workload {judged.workload} "
            f"(Degraded: {', '.join(judged.others) or 'nothing any more'}); the deploy did not stop the "
            "release for it\n"
        )
    if result.error is None:
        out.write("deploy: the update succeeded\n")
        return EXIT_OK
    run.error = _stderr(result.error)
    if isinstance(result.error, ConcurrentUpdateError):
        _report_conflict(out, stack, result.error, options)
        return EXIT_LOCKED
    grace = state.deploy.degraded_grace_seconds
    degraded = (
        {d.app: (d.urn, _degraded_report(d, grace)) for d in watch.expired.values()}
        if interrupts.stopped_by_deploy
        else {}
    )
    verdict = classify(result.events, state.entries, run.error, degraded=degraded)
    if not verdict.rollback:
        _report_failure(out, result, verdict, stack.name)
        return EXIT_FAILED
    plan = plan_rollback(verdict, state.good, state.entries, missing)
    _report_rollback(out, verdict, plan)
    if not plan.pins:
        out.write(
            "deploy: nothing to roll back to; the failed release stays as it is (and is not recorded)\n"
        )
        return EXIT_FAILED
    failed = _failed_releases(verdict, plan, state.tags, result, options.now())
    pinned = {p.app for p in plan.pins}
    refresh = [urn for app, (urn, _) in degraded.items() if app in pinned]
    return _rollback(stack, options, out, interrupts, state, plan, given, failed, run, refresh, applications)


def _refresh(
    stack: Stack, options: UpOptions, out: TextIO, interrupts: Interrupts, urns: Sequence[str]
) -> str | None:
    """Read the stopped Applications back from the cluster; the CLI's error, or None.

    A cancel interrupts pulumi-kubernetes' wait after the update itself was applied; the provider then
    cannot read the object back (its context is the cancelled one: provider/pkg/provider/provider.go
    `Update` -> `readLiveObject`), so the update fails without a partial state and the engine keeps the
    previous inputs (pkg/resource/deploy/step.go `UpdateStep.Apply`). The stack's state then says "last
    release" while the cluster runs the failed one, and the rollback's Application (the last release
    again) would look unchanged and never be applied. `pulumi refresh` of those Applications reads what
    the cluster has (its `Read` takes the live values, `pruneLiveState`), so the rollback differs and is
    applied.
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
        return _stderr(err)
    return None


def _rollback(
    stack: Stack,
    options: UpOptions,
    out: TextIO,
    interrupts: Interrupts,
    state: StackState,
    plan: RollbackPlan,
    given: FailedReleaseRecord,
    failed: Sequence[FailedRelease],
    run: Run,
    refresh: Sequence[str] = (),
    applications: Applications | None = None,
) -> int:
    """`up` with the failed apps pinned, a fresh rollbackId and the failed releases added to the record."""
    record = given
    for release in failed:
        record = record.add(release)
    keys = [
        *(RuntimeKey(p.key, p.digest, p.previous, path=True) for p in plan.pins),
        RuntimeKey(ROLLBACK_ID_KEY, uuid.uuid4().hex, _config_value(state.config, ROLLBACK_ID_KEY)),
        _record_key(record, state.config),
    ]
    run.rolled_back = [p.app for p in plan.pins]
    if refresh:
        problem = _refresh(stack, options, out, interrupts, refresh)
        if problem is not None:
            run.error = problem
            out.write(
                "deploy: could not read the stopped Applications back, so a rollback would not change them; "
                f"not rolling back (the failed release is not recorded):\n{_indent(problem)}\n"
            )
            return EXIT_ROLLBACK_FAILED
    interrupts.check()
    _terminate_operations(applications, [p.app for p in plan.pins], out)
    for pin in plan.pins:
        out.write(f"deploy: rolling {pin.app} back to {pin.digest} ({pin.key})\n")
    with runtime_config(stack, keys, interrupts, out):
        rollback = _up(stack, options, interrupts)
    run.ups.append(rollback.events)
    if rollback.error is not None:
        run.error = _stderr(rollback.error)
        again = classify(rollback.events, state.entries, _stderr(rollback.error))
        out.write("deploy: the rollback failed too (the failed release is not recorded):\n")
        lines = [*(f"{f.app}: {f.report}" for f in again.health), *again.other]
        for line in lines or [_stderr(rollback.error)]:
            out.write(f"{_indent(line)}\n")
        return EXIT_ROLLBACK_FAILED
    apps = ", ".join(f"{p.app} -> {p.digest}" for p in plan.pins)
    out.write(f"deploy: rolled back {apps}; the failed release is not live. Failing the deploy.\n")
    for release in failed:
        out.write(
            f"deploy: recorded {release.ref} as failed (stack output {RECORD_OUTPUT}): the same content will "
            f"not ship again until its source changes, or --allow-failed-release {release.ref}\n"
        )
    return EXIT_ROLLED_BACK
