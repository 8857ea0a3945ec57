"""The figures of many deploy records: per stack and overall, success, causes, duration, recovery, DORA keys.

The definitions: docs/release.md.
"""

from __future__ import annotations

import math
import os
import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from model.record import CAUSES, Cause, DeployRecord, RecordError, read_record

PRE_UPDATE_CAUSES: frozenset[Cause] = frozenset(
    {"registry-auth", "registry-unreachable", "lint", "build", "policy"}
)
"""Causes that fail a deploy before the update changes any workload (preflight, build, preview's policies)."""


@dataclass(frozen=True)
class Skipped:
    """A file that was not read as a deploy record, and why."""

    path: Path
    reason: str


@dataclass(frozen=True)
class Loaded:
    """Records found under the paths, in path order, and the files skipped."""

    records: tuple[tuple[Path, DeployRecord], ...]
    skipped: tuple[Skipped, ...]


def _files(path: Path) -> Iterable[Path]:
    """The path itself, or every *.json under a folder, in a stable order (symlinked folders not followed)."""
    if not path.is_dir():
        yield path
        return
    for root, dirs, names in os.walk(path):
        dirs.sort()
        for name in sorted(names):
            if name.endswith(".json"):
                yield Path(root, name)


def load(paths: Sequence[Path]) -> Loaded:
    """Read every record under `paths`; duplicates (the same deploy downloaded twice) are skipped."""
    records: list[tuple[Path, DeployRecord]] = []
    skipped: list[Skipped] = []
    seen_files: set[Path] = set()
    seen_deploys: dict[tuple[str, datetime, datetime, str], Path] = {}
    for root in paths:
        for path in _files(root):
            try:
                resolved = path.resolve()
            except (OSError, RuntimeError) as err:  # a symlink loop
                skipped.append(Skipped(path, f"cannot be read: {err}"))
                continue
            if resolved in seen_files:
                continue
            seen_files.add(resolved)
            try:
                record = read_record(path)
            except RecordError as err:
                skipped.append(Skipped(path, str(err)))
                continue
            key = (record.stack, record.started_at, record.ended_at, record.outcome)
            first = seen_deploys.setdefault(key, path)
            if first != path:
                skipped.append(Skipped(path, f"duplicate of {first} (same stack, start, end and outcome)"))
                continue
            records.append((path, record))
    return Loaded(tuple(records), tuple(skipped))


@dataclass(frozen=True)
class CauseCount:
    """How many failed deploys had one cause, and their share of all failed deploys."""

    cause: Cause
    count: int
    share: float


@dataclass(frozen=True)
class Recovery:
    """Incidents (runs of failed deploys) and how long they took to close."""

    recovered: tuple[float, ...] = ()
    """Seconds from each closed incident's first failure to the success that closed it."""
    open_since: tuple[datetime, ...] = ()
    """When each incident still open at the end of the records began (one per stack at most)."""
    late: tuple[bool, ...] = ()
    """Per closed incident (as `recovered`): whether the soak caught its first failure, not the gate."""

    @property
    def mean_seconds(self) -> float | None:
        """Mean time to recovery over closed incidents."""
        return statistics.fmean(self.recovered) if self.recovered else None

    def mean_caught(self, in_soak: bool) -> float | None:
        """Mean time to recovery of the incidents the soak caught (True), or the gate and before (False)."""
        found = [s for s, late in zip(self.recovered, self.late, strict=False) if late == in_soak]
        return statistics.fmean(found) if found else None


def stopped_before_update(record: DeployRecord) -> bool:
    """A failed deploy that changed no workload: a pre-update cause, or no app reached its sync phase."""
    if record.outcome != "failed":
        return False
    reached = any("sync" in app.phases for app in record.apps)
    return record.cause in PRE_UPDATE_CAUSES or not reached


def shipped(record: DeployRecord) -> bool:
    """A deploy whose release reached the cluster: any but one stopped before the update."""
    return not stopped_before_update(record)


def caught_in_soak(record: DeployRecord) -> bool:
    """A late failure: the release passed its gate, and its soak caught it."""
    return record.cause == "soak"


def change_failure_rates(records: Sequence[DeployRecord]) -> tuple[float | None, float | None]:
    """The change failure rate in two parts: failures caught by the gate (or before), and late ones."""
    shipping = [r for r in records if shipped(r)]
    if not shipping:
        return None, None
    late = sum(1 for r in shipping if caught_in_soak(r))
    failed = sum(1 for r in shipping if r.outcome != "succeeded")
    return (failed - late) / len(shipping), late / len(shipping)


def change_failure_rate(records: Sequence[DeployRecord]) -> float | None:
    """Of the deploys that shipped a release, the share whose release failed (None when none shipped)."""
    shipping = [r for r in records if shipped(r)]
    if not shipping:
        return None
    return sum(1 for r in shipping if r.outcome != "succeeded") / len(shipping)


def period_days(start: datetime, end: datetime) -> float:
    """The length of a report's period in days, at least one."""
    return max((end - start) / timedelta(days=1), 1.0)


def deployment_frequency(records: Sequence[DeployRecord], days: float) -> float:
    """Succeeded deploys per day over a period of `days`."""
    return sum(1 for r in records if r.outcome == "succeeded") / days


@dataclass(frozen=True)
class LeadTime:
    """Commit time to deploy success, in seconds, over succeeded deploys that know their commit's time."""

    seconds: tuple[float, ...]
    unknown: int
    """Succeeded deploys without a commit time (version 1 records, git unavailable)."""

    @property
    def median(self) -> float | None:
        """The median lead time, None without any."""
        return statistics.median(self.seconds) if self.seconds else None

    @property
    def p95(self) -> float | None:
        """The nearest-rank 95th percentile lead time, None without any."""
        return p95(self.seconds) if self.seconds else None


def lead_time(records: Sequence[DeployRecord]) -> LeadTime:
    """The lead time for changes of the succeeded deploys (a commit dated after its deploy counts 0 s)."""
    succeeded = [r for r in records if r.outcome == "succeeded"]
    known = [max((r.ended_at - r.commit_at).total_seconds(), 0.0) for r in succeeded if r.commit_at]
    return LeadTime(tuple(known), len(succeeded) - len(known))


@dataclass(frozen=True)
class Stopped:
    """Failures stopped before users: before the update changed a workload, or by a rollback."""

    before_update: int
    by_rollback: int

    @property
    def total(self) -> int:
        """All failures stopped before users."""
        return self.before_update + self.by_rollback


def stopped_before_users(records: Sequence[DeployRecord]) -> Stopped:
    """Failed deploys whose failed release no user ran for long: stopped before the update, or rolled back."""
    before = sum(1 for r in records if stopped_before_update(r))
    return Stopped(before, sum(1 for r in records if r.outcome == "rolled-back"))


@dataclass(frozen=True)
class Dora:
    """The four keys and the failures stopped before users; time to restore is Recovery.mean_seconds."""

    per_day: float
    lead_time: LeadTime
    change_failure_rate: float | None
    stopped: Stopped
    caught: tuple[float | None, float | None] = (None, None)
    """The change failure rate of failures caught by the gate (or before), and of late ones (the soak)."""


def dora(records: Sequence[DeployRecord], days: float) -> Dora:
    """The DORA figures of a set of records over a period of `days`."""
    return Dora(
        deployment_frequency(records, days),
        lead_time(records),
        change_failure_rate(records),
        stopped_before_users(records),
        change_failure_rates(records),
    )


@dataclass(frozen=True)
class Summary:
    """The figures of one stack, or of all of them."""

    deploys: int
    succeeded: int
    rolled_back: int
    rollback_failed: int
    causes: tuple[CauseCount, ...]
    median_seconds: float
    p95_seconds: float
    budget_seconds: int | None
    """The budget when every deploy had the same one, else None."""
    over_budget: int
    recovery: Recovery = field(default_factory=Recovery)
    dora: Dora | None = None

    @property
    def failed(self) -> int:
        """Deploys that did not succeed."""
        return self.deploys - self.succeeded

    @property
    def success_rate(self) -> float:
        """Succeeded deploys over all deploys."""
        return self.succeeded / self.deploys

    @property
    def rollbacks(self) -> int:
        """Deploys that rolled back, whether the rollback worked or not."""
        return self.rolled_back + self.rollback_failed


def p95(values: Sequence[float]) -> float:
    """Nearest-rank 95th percentile: the smallest value with at least 95% of values at or under it."""
    ordered = sorted(values)
    return ordered[max(math.ceil(0.95 * len(ordered)) - 1, 0)]


def _recovery(records: Sequence[DeployRecord]) -> Recovery:
    """Incidents of one stack's records, in start order."""
    recovered: list[float] = []
    late: list[bool] = []
    opened: datetime | None = None
    opened_late = False
    for record in sorted(records, key=lambda r: (r.started_at, r.ended_at)):
        if record.outcome != "succeeded":
            if opened is None:
                opened, opened_late = record.ended_at, caught_in_soak(record)
        elif opened is not None:
            recovered.append((record.ended_at - opened).total_seconds())
            late.append(opened_late)
            opened = None
    return Recovery(tuple(recovered), (opened,) if opened is not None else (), tuple(late))


def summarize(records: Sequence[DeployRecord], recovery: Recovery, days: float = 1.0) -> Summary:
    """The figures of a non-empty set of records."""
    outcomes = Counter(r.outcome for r in records)
    failed = [r for r in records if r.outcome != "succeeded"]
    counts = Counter(r.cause or "other" for r in failed)
    causes = tuple(
        CauseCount(cause, counts[cause], counts[cause] / len(failed))
        for cause in sorted(counts, key=lambda c: (-counts[c], CAUSES.index(c)))
    )
    durations = [r.deploy_seconds for r in records]
    budgets = {r.budget_seconds for r in records}
    budget = budgets.pop() if len(budgets) == 1 else None
    over = sum(1 for r in records if r.over_budget)
    counted = (outcomes["succeeded"], outcomes["rolled-back"], outcomes["rollback-failed"])
    median = statistics.median(durations)
    summary = (len(records), *counted, causes, median, p95(durations), budget, over, recovery)
    return Summary(*summary, dora(records, days))


@dataclass(frozen=True)
class Report:
    """Per-stack figures (by stack name), the overall ones, and the skipped files."""

    stacks: dict[str, Summary]
    overall: Summary | None
    skipped: tuple[Skipped, ...]
    period: tuple[datetime, datetime] | None = None
    """`--since`/`--until` when given, else the records' first start and last end."""
    outside: int = 0
    """Records left out for starting outside `--since`/`--until`."""


def build_report(loaded: Loaded, since: datetime | None = None, until: datetime | None = None) -> Report:
    """Group the records that start in [since, until) by stack and summarize each group and the whole."""
    inside = [
        r
        for _, r in loaded.records
        if (since is None or r.started_at >= since) and (until is None or r.started_at < until)
    ]
    outside = len(loaded.records) - len(inside)
    by_stack: dict[str, list[DeployRecord]] = {}
    for record in inside:
        by_stack.setdefault(record.stack, []).append(record)
    start = since or min((r.started_at for r in inside), default=None)
    end = until or max((r.ended_at for r in inside), default=None)
    period = (start, end) if start is not None and end is not None else None
    days = period_days(*period) if period else 1.0
    stacks: dict[str, Summary] = {}
    for stack in sorted(by_stack):
        stacks[stack] = summarize(by_stack[stack], _recovery(by_stack[stack]), days)
    if not stacks:
        return Report({}, None, loaded.skipped, period, outside)
    overall = Recovery(
        tuple(s for summary in stacks.values() for s in summary.recovery.recovered),
        tuple(t for summary in stacks.values() for t in summary.recovery.open_since),
        tuple(late for summary in stacks.values() for late in summary.recovery.late),
    )
    return Report(stacks, summarize(inside, overall, days), loaded.skipped, period, outside)
