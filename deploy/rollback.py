"""The rollback: pin each app that failed its release gate to its last good digest, `up` again, record it."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TextIO

from pulumi.automation import Stack

from clients.argo_cluster import Applications
from deploy.argo_ops import terminate_operations
from deploy.commands import UpOptions, UpResult, refresh, up
from deploy.decide import RollbackPlan, Verdict, built_digests, classify, plan_rollback
from deploy.outcome import Exit, Run
from deploy.process import Interrupts
from deploy.runtime_config import RuntimeKey, runtime_config
from deploy.view import RECORD_CONFIG_KEY, StackView, indent, stderr_of
from model.config import NAMESPACE
from model.failed_releases import RECORD_OUTPUT, FailedRelease, FailedReleaseRecord

ROLLBACK_ID_KEY = f"{NAMESPACE}:rollbackId"
"""Set to a fresh value for the rollback's `up` only, so the restored release is probed again."""
_FAILURE_KIND = {
    "health-check": "health check failed",
    "application": "Application's wait timed out",
    "degraded": "Argo CD reported it Degraded for the grace period; the deploy stopped the wait",
    "soak": "soak failed",
}


def record_key(record: FailedReleaseRecord, view: StackView) -> RuntimeKey:
    """The failed-release record handed to one `up`."""
    return RuntimeKey(RECORD_CONFIG_KEY, json.dumps(record.to_json()), view.values.get(RECORD_CONFIG_KEY))


def _report(out: TextIO, verdict: Verdict, plan: RollbackPlan) -> None:
    soak = all(f.kind == "soak" for f in verdict.health)
    out.write(f"deploy: the release failed its {'soak' if soak else 'health gate'}:\n")
    for failure in verdict.health:
        where = f" ({failure.urn})" if failure.urn else ""
        out.write(f"  - {failure.app}: {_FAILURE_KIND[failure.kind]}{where}\n")
        out.write(f"{indent(failure.report, 6)}\n")
    for line in plan.stuck:
        out.write(f"  - cannot roll back {line}\n")
    for item in verdict.interrupted:
        out.write(f"  - the early stop interrupted {item}; the rollback's update runs it again\n")


def _failed_releases(
    verdict: Verdict, plan: RollbackPlan, tags: Mapping[str, str], result: UpResult, now: datetime
) -> list[FailedRelease]:
    """The releases this rollback takes back, for the record: only built apps have a content tag."""
    digests = built_digests(result.events, tags)
    reports = {f.app: (f.report.strip().splitlines() or [""])[0][:200] for f in verdict.health}
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    return [
        FailedRelease(pin.app, tags[pin.app], digests.get(pin.app), stamp, reports.get(pin.app, ""))
        for pin in plan.pins
        if pin.app in tags
    ]


def _terminate(applications: Applications | None, apps: Sequence[str], out: TextIO) -> None:
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


def roll_back(
    stack: Stack,
    options: UpOptions,
    out: TextIO,
    interrupts: Interrupts,
    run: Run,
    view: StackView,
    result: UpResult,
    verdict: Verdict,
    given: FailedReleaseRecord,
    missing: Mapping[str, str],
    degraded: Mapping[str, tuple[str, str]],
    applications: Applications | None,
) -> Exit:
    """`up` with the failed apps pinned, a fresh rollbackId and the failed releases added to the record."""
    plan = plan_rollback(verdict, view.good, view.entries, missing)
    _report(out, verdict, plan)
    if not plan.pins:
        out.write(
            "deploy: nothing to roll back to; the failed release stays as it is (and is not recorded)\n"
        )
        return Exit.FAILED
    failed = _failed_releases(verdict, plan, view.tags, result, options.now())
    pinned = [p.app for p in plan.pins]
    record = given
    for release in failed:
        record = record.add(release)
    pins = [RuntimeKey(p.key, p.digest, p.previous, path=True) for p in plan.pins]
    keys = [
        *(k for k in run.held if k.key not in {p.key for p in pins}),
        *pins,
        RuntimeKey(ROLLBACK_ID_KEY, uuid.uuid4().hex, view.values.get(ROLLBACK_ID_KEY)),
        record_key(record, view),
    ]
    run.rolled_back = [*dict.fromkeys([*run.rolled_back, *pinned])]
    stopped = [urn for app, (urn, _) in degraded.items() if app in pinned]
    if stopped:
        problem = refresh(stack, options, out, interrupts, stopped)
        if problem is not None:
            run.error = problem
            out.write(
                "deploy: could not read the stopped Applications back, so a rollback would not change them; "
                f"not rolling back (the failed release is not recorded):\n{indent(problem)}\n"
            )
            return Exit.ROLLBACK_FAILED
    interrupts.check()
    _terminate(applications, pinned, out)
    for pin in plan.pins:
        out.write(f"deploy: rolling {pin.app} back to {pin.digest} ({pin.key})\n")
    with runtime_config(stack, keys, interrupts, out):
        again = up(stack, options, interrupts)
    run.ups.append(again.events)
    if again.error is not None:
        run.error = stderr_of(again.error)
        verdict = classify(again.events, view.entries, run.error)
        out.write("deploy: the rollback failed too (the failed release is not recorded):\n")
        lines = [*(f"{f.app}: {f.report}" for f in verdict.health), *verdict.other]
        for line in lines or [run.error]:
            out.write(f"{indent(line)}\n")
        return Exit.ROLLBACK_FAILED
    run.held = [*(k for k in run.held if k.key not in {p.key for p in pins}), *pins]
    run.record = record
    apps = ", ".join(f"{p.app} -> {p.digest}" for p in plan.pins)
    out.write(f"deploy: rolled back {apps}; the failed release is not live. Failing the deploy.\n")
    for release in failed:
        out.write(
            f"deploy: recorded {release.ref} as failed (stack output {RECORD_OUTPUT}): the same content will "
            f"not ship again until its source changes, or --allow-failed-release {release.ref}\n"
        )
    return Exit.ROLLED_BACK
