"""The figures of many deploy records: per stack and overall, success, causes, duration, recovery.

The definitions: docs/release.md.
"""

from __future__ import annotations

import math
import os
import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from model.record import CAUSES, Cause, DeployRecord, RecordError, read_record


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

    @property
    def mean_seconds(self) -> float | None:
        """Mean time to recovery over closed incidents."""
        return statistics.fmean(self.recovered) if self.recovered else None


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
    opened: datetime | None = None
    for record in sorted(records, key=lambda r: (r.started_at, r.ended_at)):
        if record.outcome != "succeeded":
            opened = opened or record.ended_at
        elif opened is not None:
            recovered.append((record.ended_at - opened).total_seconds())
            opened = None
    return Recovery(tuple(recovered), (opened,) if opened is not None else ())


def summarize(records: Sequence[DeployRecord], recovery: Recovery) -> Summary:
    """The figures of a non-empty set of records."""
    outcomes = Counter(r.outcome for r in records)
    failed = [r for r in records if r.outcome != "succeeded"]
    counts = Counter(r.cause or "other" for r in failed)
    causes = tuple(
        CauseCount(cause, counts[cause], counts[cause] / len(failed))
        for cause in sorted(counts, key=lambda c: (-counts[c], CAUSES.index(c)))
    )
    durations = [r.duration_seconds for r in records]
    budgets = {r.budget_seconds for r in records}
    budget = budgets.pop() if len(budgets) == 1 else None
    over = sum(1 for r in records if r.over_budget)
    counted = (outcomes["succeeded"], outcomes["rolled-back"], outcomes["rollback-failed"])
    median = statistics.median(durations)
    return Summary(len(records), *counted, causes, median, p95(durations), budget, over, recovery)


@dataclass(frozen=True)
class Report:
    """Per-stack figures (by stack name), the overall ones, and the skipped files."""

    stacks: dict[str, Summary]
    overall: Summary | None
    skipped: tuple[Skipped, ...]


def build_report(loaded: Loaded) -> Report:
    """Group the records by stack and summarize each group and the whole."""
    by_stack: dict[str, list[DeployRecord]] = {}
    for _, record in loaded.records:
        by_stack.setdefault(record.stack, []).append(record)
    stacks: dict[str, Summary] = {}
    for stack in sorted(by_stack):
        stacks[stack] = summarize(by_stack[stack], _recovery(by_stack[stack]))
    if not stacks:
        return Report({}, None, loaded.skipped)
    overall = Recovery(
        tuple(s for summary in stacks.values() for s in summary.recovery.recovered),
        tuple(t for summary in stacks.values() for t in summary.recovery.open_since),
    )
    everything = [r for _, r in loaded.records]
    return Report(stacks, summarize(everything, overall), loaded.skipped)
