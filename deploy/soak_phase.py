"""After a successful `up`: soak every app it released, roll back one whose soak fails (as a failed gate
is), and mark the digests that survived their soak with one follow-up update.

The steps and the rule: docs/release.md#the-soak.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TextIO

from pulumi.automation import Stack
from pulumi.automation.errors import CommandError

from clients.argo_cluster import Applications
from deploy.argo_ops import read_release
from deploy.commands import UpOptions, UpResult, up
from deploy.decide import HealthFailure, Verdict, pin_key
from deploy.events import Event
from deploy.outcome import Exit, Run
from deploy.process import WORKING_OPS, Interrupts
from deploy.rollback import roll_back
from deploy.runtime_config import SOAKED_KEY, RuntimeKey, runtime_config
from deploy.soak import Outcome, ProbeAll, Soaked, Target, Wait, http_probes, monotonic, run_soak
from deploy.view import DEPLOY_KEY, StackView, last_known_good, stderr_of
from model.config_schema import HEADERS_KEY, NAMESPACE
from model.failed_releases import FailedReleaseRecord
from model.record import During, FailureRecord, SoakRecord
from model.record_table import soak_result

_SOAK_KEY = f"{DEPLOY_KEY}.soak"


@dataclass
class Soak:
    """What the soak phase works with: the deploy's stack, its run and its way to the cluster."""

    stack: Stack
    options: UpOptions
    out: TextIO
    interrupts: Interrupts
    run: Run
    view: StackView
    missing: Mapping[str, str]
    applications: Applications | None
    clock: Callable[[], float] = monotonic
    wait: Wait | None = None
    """Wait up to that long, True on a signal; the default wakes on the deploy's signals at once."""
    probes: ProbeAll | None = None
    warned: bool = False
    """The deploy said once that the soak cannot read Argo CD."""


def released(events: Sequence[Event], before: Mapping[str, str], after: Mapping[str, str]) -> list[str]:
    """The apps an `up` released: its digest changed, or its release gate ran again."""
    rerun = {e.app for e in events if e.kind == "pre" and e.phase == "health" and e.op in WORKING_OPS}
    return [app for app, digest in after.items() if before.get(app) != digest or app in rerun]


def _headers(view: StackView, app: str) -> dict[str, str]:
    """The gate's headers: the app's own, then the stack's secret healthHeaders over them."""
    try:
        secret = json.loads(view.values.get(f"{NAMESPACE}:{HEADERS_KEY}") or "{}")
    except ValueError:
        secret = {}
    own = secret.get(app) if isinstance(secret, dict) else None
    found = next(a for a in view.apps if a.name == app)
    return {**found.health.headers, **(own if isinstance(own, dict) else {})}


def _targets(ctx: Soak, apps: Sequence[str], after: Mapping[str, str], restored: bool) -> list[Target]:
    """The apps to soak; one whose soak is off (seconds 0) is recorded as not soaked."""
    targets = []
    for app in apps:
        config = next((a for a in ctx.view.apps if a.name == app), None)
        if config is None:
            continue
        if config.soak.seconds == 0:
            ctx.run.soaks.setdefault(app, []).append(
                _off(after.get(app), restored, config.soak.interval_seconds)
            )
            continue
        targets.append(
            Target(app, after.get(app), config.soak, config.health, _headers(ctx.view, app), restored)
        )
    return targets


def _off(digest: str | None, restored: bool, interval: int) -> SoakRecord:
    reason = f"{_SOAK_KEY}.seconds is 0 for it"
    return SoakRecord(
        digest, restored, 0, 0, interval, 0, 0, 0, (0.0, 0.0, 0.0), "not-soaked", reason, None, None
    )


def _announce(ctx: Soak, targets: Sequence[Target]) -> None:
    for t in targets:
        c, what = t.soak, "restored release" if t.restored else "release"
        rules = [f"{c.failures_in_a_row} failed probes in a row"] if c.failures_in_a_row else []
        if c.max_error_percent < 100:
            rules.append(f"over {c.max_error_percent} % failed in {c.window_seconds} s")
        ctx.out.write(
            f"deploy: soaking {t.app} ({what} {t.digest or 'as deployed'}) for {c.seconds} s apart from the "
            f"budget: a probe every {c.interval_seconds} s, failing on {' or '.join(rules)}\n"
        )
    if ctx.applications is None and targets and not ctx.warned:
        ctx.warned = True
        ctx.out.write(
            "deploy: warning: cannot reach Argo CD's Applications: the soak probes the health URLs alone\n"
        )


def _soak(ctx: Soak, targets: Sequence[Target]) -> Outcome:
    """One soak of `targets`, its wall time counted apart from the budget, each app's result recorded."""
    _announce(ctx, targets)
    interrupts = ctx.interrupts
    stopped = lambda: interrupts.interrupted  # noqa: E731
    applications = ctx.applications
    read = None if applications is None else (lambda app: read_release(applications, app))
    start = ctx.clock()
    outcome = run_soak(
        targets, ctx.probes or http_probes(monotonic, stopped), read, clock=ctx.clock,
        wait=ctx.wait or interrupts.wake.wait, stopped=stopped,
    )  # fmt: skip
    ctx.run.soak_seconds += round(ctx.clock() - start)
    records = [(soaked.target.app, soaked.record()) for soaked in outcome.apps]
    for (app, record), soaked in zip(records, outcome.apps, strict=True):
        ctx.run.soaks.setdefault(app, []).append(record)
        if soaked.verdict != "failed":
            ctx.out.write(f"deploy: {soak_result(app, record)}\n")
    if not outcome.interrupted:
        ctx.options.reporter.soak(records)
    return outcome


def failure_report(soaked: Soaked) -> str:
    """The line that says why a soak failed: its window, its failures, its first and last failing probe."""
    record, breach = soaked.record(), soaked.breach
    assert breach is not None
    c = soaked.target.soak
    window = [s for s in soaked.judge.samples if s.at > soaked.judge.samples[-1].at - c.window_seconds]
    failed_in_window = sum(1 for s in window if not s.passed)
    return (
        f"soak failed after {record.seconds} s of {c.seconds} s: {breach.rule}; last {c.window_seconds} s: "
        f"{failed_in_window} of {len(window)} probes failed ({record.failures} of {record.probes} in all); "
        f"first failing probe {record.first_failure}, last {record.last_failure}"
    )


def soak_released(ctx: Soak, release: UpResult, given: FailedReleaseRecord, code: Exit) -> int:
    """Soak what the deploy released (and restored); roll a failed soak back; mark what passed."""
    try:
        after = last_known_good(ctx.stack.outputs())
    except CommandError as err:
        ctx.out.write(f"deploy: warning: no soak: the stack's outputs could not be read: {stderr_of(err)}\n")
        return code
    restored = [app for app in ctx.run.rolled_back if app in after]
    fresh = [app for app in released(release.events, ctx.view.good, after) if app not in restored]
    targets = _targets(ctx, fresh, after, False) + _targets(ctx, restored, after, True)
    passed: dict[str, str] = {}
    while targets:
        outcome = _soak(ctx, targets)
        if outcome.interrupted:
            cut = ", ".join(s.target.app for s in outcome.apps if s.verdict == "not-soaked")
            name = ctx.interrupts.signal_name
            ctx.out.write(
                f"deploy: interrupted by {name} during the soak: nothing was rolled back; {cut} not soaked, "
                "so not promotable\n"
            )
            ctx.run.error = f"interrupted by {name} during the soak ({cut} not soaked)"
            return ctx.interrupts.exit_code
        passed.update({s.target.app: s.target.digest for s in outcome.passed if s.target.digest})
        if not outcome.failed:
            break
        [failed] = outcome.failed
        code = _roll_back(ctx, failed, release, given)
        if code != Exit.ROLLED_BACK:
            return code
        after = {**after, **dict(_pinned(ctx))}
        again = [replace(failed.target, digest=after.get(failed.target.app), restored=True)]
        targets = again + [s.target for s in outcome.apps if s.verdict == "not-soaked"]
    if passed and code in (Exit.OK, Exit.ROLLED_BACK):
        _mark(ctx, passed)
    return code


def _pinned(ctx: Soak) -> list[tuple[str, str]]:
    """(app, restored digest) of each app a rollback pinned."""
    keys = {pin_key(entry.index): app for app, entry in ctx.view.entries.items()}
    return [(keys[k.key], k.value) for k in ctx.run.held if k.key in keys]


def _roll_back(ctx: Soak, failed: Soaked, release: UpResult, given: FailedReleaseRecord) -> Exit:
    """Roll the failed soak's app back as a failed gate is; a restored release has nothing to go back to."""
    app, report = failed.target.app, failure_report(failed)
    during: During = "rollback" if failed.target.restored else "release"
    ctx.run.soak_failures.append(FailureRecord("soak", during, app, None, report))
    if failed.target.restored:
        ctx.out.write(
            f"deploy: the restored release of {app} failed its soak too: {report}; there is nothing older to "
            "roll back to here. Failing the deploy.\n"
        )
        ctx.run.error = f"{app}'s restored release failed its soak"
        return Exit.ROLLBACK_FAILED
    verdict = Verdict((HealthFailure(app, "", "soak", report),), ())
    ctx.run.idle += [0] * (len(ctx.run.ups) - len(ctx.run.idle))
    ctx.run.idle.append(ctx.run.soak_seconds - sum(ctx.run.idle))
    record = ctx.run.record or given
    return roll_back(
        ctx.stack, ctx.options, ctx.out, ctx.interrupts, ctx.run, ctx.view, release, verdict, record,
        ctx.missing, {}, ctx.applications,
    )  # fmt: skip


def _mark(ctx: Soak, passed: Mapping[str, str]) -> None:
    """One follow-up update with the soaked digests in SOAKED_KEY (the stack file is never changed)."""
    value = json.dumps(dict(sorted(passed.items())))
    keys = [*ctx.run.held, RuntimeKey(SOAKED_KEY, value, ctx.view.values.get(SOAKED_KEY))]
    apps = ", ".join(sorted(passed))
    ctx.out.write(
        f"deploy: marking the soaked digests of {apps} promotable: one more update ({SOAKED_KEY})\n"
    )
    start = ctx.clock()
    with runtime_config(ctx.stack, keys, ctx.interrupts, ctx.out):
        result = up(ctx.stack, ctx.options, ctx.interrupts)
    ctx.run.soak_seconds += round(ctx.clock() - start)
    if result.error is None:
        ctx.out.write(f"deploy: marked {apps} soaked\n")
        return
    line = (stderr_of(result.error).splitlines() or ["no error output"])[-1]
    ctx.out.write(
        f"deploy: warning: the follow-up update that marks {apps} soaked failed ({line}); the releases stay "
        "live and are not promotable until a deploy marks them\n"
    )
    for app in passed:
        last = ctx.run.soaks[app][-1]
        ctx.run.soaks[app][-1] = replace(
            last, reason=f"passed, but not marked promotable: the update failed ({line})"
        )
