"""The deploy's time budget: per app, the longest path through the phases the program bounds
(docs/engine-rules.md#deploy-budget)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

from model.config_schema import (
    DEFAULT_BUDGET_SECONDS,
    DEFAULT_SYNC_TIMEOUT_SECONDS,
    MIN_SYNC_SECONDS,
    NAMESPACE,
)
from model.config_types import AppConfig, SoakConfig, StackConfig
from model.errors import Problem
from model.health_settings import DEFAULTS, worst_case_seconds

LINT_TIMEOUT_SECONDS = 60.0
"""Deadline of the one hadolint run per program run (it takes milliseconds per Dockerfile)."""
REGISTRY_DEADLINE_S = 20.0
"""Every exchange of one registry conversation (a preflight, an image-size read) ends within this."""

SYNC_KEY = f"{NAMESPACE}:argocd.syncTimeoutSeconds"
BUDGET_KEY = f"{NAMESPACE}:deploy.budgetSeconds"
OPERATION_WAIT_KEY = f"{NAMESPACE}:deploy.operationWaitSeconds"


@dataclass(frozen=True)
class Bound:
    """How long one phase can take at most, and the config key that sets it (empty: a program constant)."""

    phase: str
    seconds: float
    key: str = ""


@dataclass(frozen=True)
class AppBudget:
    """One app's bounded phases against the stack's budget."""

    app: str
    index: int
    budget_seconds: int
    release: tuple[Bound, ...]
    """The longest path of one `up`: the sync wait, then the health gate."""
    gives_up: tuple[Bound, ...]
    """Phases that end the deploy when they give up: each is a path of its own."""
    rollback: tuple[Bound, ...]
    """A rollback's second wait and health gate, on the same path after a failed release."""
    built: bool
    """The app's image is built in this stack (not pinned, not promoted)."""
    before: tuple[Bound, ...] = ()
    """What precedes the update on every path: the wait for a foreign Argo CD operation."""

    @property
    def worst_case(self) -> float:
        """The longest path through the bounded phases, in seconds: a release that is rolled back."""
        path = sum(b.seconds for b in (*self.before, *self.release, *self.rollback))
        return max(path, *(b.seconds for b in self.gives_up))

    @property
    def rollback_seconds(self) -> float:
        """How much of the worst case the rollback takes."""
        return sum(b.seconds for b in self.rollback)

    @property
    def fits(self) -> bool:
        """Whether the worst case is within the budget."""
        return math.ceil(self.worst_case) <= self.budget_seconds


def _health_key(index: int) -> str:
    return f"{NAMESPACE}:apps[{index}].health"


def app_budgets(cfg: StackConfig) -> tuple[AppBudget, ...]:
    """Every app's budget, in config order."""
    built = {app.name for app in cfg.built_apps}
    sync = Bound("sync wait", cfg.argocd.sync_timeout_seconds, SYNC_KEY)
    budgets = []
    for app in cfg.apps:
        gate = Bound("health gate", app.health.budget_seconds, _health_key(app.index))
        gives_up = [
            Bound("registry preflight", REGISTRY_DEADLINE_S),
            Bound("image size read", REGISTRY_DEADLINE_S),
        ]
        if built:
            # One lint run per program run, before any resource: every app waits for it.
            gives_up.append(Bound("lint", LINT_TIMEOUT_SECONDS))
        budgets.append(
            AppBudget(
                app=app.name,
                index=app.index,
                budget_seconds=cfg.deploy.budget_seconds,
                release=(sync, gate),
                gives_up=tuple(gives_up),
                rollback=(Bound("second wait", sync.seconds, SYNC_KEY), gate),
                built=app.name in built,
            )
        )
    wait = operation_wait_seconds(cfg.deploy.operation_wait_seconds, budgets)
    before = (Bound("operation wait", wait, OPERATION_WAIT_KEY),)
    return tuple(dataclasses.replace(b, before=before) for b in budgets)


def operation_wait_seconds(configured: int | None, budgets: Sequence[AppBudget]) -> int:
    """The wait for a foreign Argo CD operation: as configured, else the whole seconds the budget leaves
    after the longest of the apps' other paths (never below 0)."""
    if configured is not None:
        return configured
    if not budgets:
        return 0
    rest = max(math.ceil(b.worst_case) for b in budgets)
    return max(budgets[0].budget_seconds - rest, 0)


def human(seconds: float) -> str:
    """`45s`, `2m`, `4m10s`, `1h05m`: whole seconds, rounded up (a bound is never shown shorter)."""
    whole = math.ceil(seconds - 1e-9)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        minutes, rest = divmod(whole, 60)
        return f"{minutes}m{rest:02d}s" if rest else f"{minutes}m"
    hours, rest = divmod(whole, 3600)
    return f"{hours}h{rest // 60:02d}m"


def _phases(bounds: tuple[Bound, ...]) -> str:
    return ", ".join(f"{b.phase} {human(b.seconds)}" for b in bounds)


def info_line(budget: AppBudget) -> str:
    """The line preview and up print for an app: its worst case against the budget, phase by phase."""
    verdict = "of the" if budget.fits else "OVER the"
    names = [b.phase.removeprefix("registry ").removeprefix("image ") for b in budget.gives_up]
    gives_up = ", ".join(names[:-1]) + f" and {names[-1]}" if len(names) > 1 else names[0]
    longest = human(max(b.seconds for b in budget.gives_up))
    build = "the build is not bounded" if budget.built else "nothing is built"
    worst, limit = human(budget.worst_case), human(budget.budget_seconds)
    return (
        f"{budget.app}: worst case {worst} {verdict} {limit} budget "
        f"({_phases((*budget.before, *budget.release))}, "
        f"a rollback's second wait and gate {human(budget.rollback_seconds)}; "
        f"{gives_up} give up within {longest}); {build}"
    )


def soak_rules(soak: SoakConfig) -> str:
    """The soak's duration, probe interval and failure rules, in words; never part of the budget."""
    if soak.seconds == 0:
        return "no soak (soak.seconds 0): promotable as soon as its health gate passes"
    rules = []
    if soak.failures_in_a_row:
        rules.append(f"{soak.failures_in_a_row} failed probes in a row")
    if soak.max_error_percent < 100:
        rules.append(f"over {soak.max_error_percent}% failed probes in {human(soak.window_seconds)}")
    return (
        f"soak {human(soak.seconds)} after the update, a probe every {human(soak.interval_seconds)}, "
        f"failing on {' or on '.join(rules)}"
    )


def soak_line(app: AppConfig) -> str:
    """The line preview and up print for an app's soak, apart from its budget line."""
    where = f"{NAMESPACE}:apps[{app.index}].soak over {NAMESPACE}:deploy.soak"
    if app.soak.seconds == 0:
        return f"{app.name}: {soak_rules(app.soak)} ({where})"
    return f"{app.name}: {soak_rules(app.soak)}; not part of the deploy budget ({where})"


def _largest_attempts(cfg: StackConfig, index: int, room: float) -> int | None:
    """The most health-check attempts (same interval and timeout) whose worst case fits `room`."""
    health = cfg.apps[index].health
    for attempts in range(health.attempts - 1, health.success_threshold - 1, -1):
        if worst_case_seconds(attempts, health.interval_seconds, health.timeout_seconds) <= room:
            return attempts
    return None


def budget_problems(cfg: StackConfig) -> list[Problem]:
    """A problem under `deploy.budgetSeconds` for each app whose bounded phases do not fit the budget."""
    problems = []
    for budget in app_budgets(cfg):
        if budget.fits:
            continue
        sync, gate = budget.release
        health = cfg.apps[budget.index].health
        given = (
            f"{budget.budget_seconds} s, but app {budget.app!r} can take {human(budget.worst_case)}: "
            f"sync wait {human(sync.seconds)} ({SYNC_KEY} {sync.seconds:g}) then "
            f"health gate {human(gate.seconds)} ({gate.key}: attempts {health.attempts}, "
            f"intervalSeconds {health.interval_seconds:g}, timeoutSeconds {health.timeout_seconds:g}), "
            "twice when the release is rolled back"
            + "".join(
                f", after the {b.phase} {human(b.seconds)} ({b.key} {b.seconds:g})"
                for b in budget.before
                if b.seconds
            )
        )
        fixes = []
        # A rolled-back release waits and probes twice: each wait and gate gets half of what the
        # operation wait leaves.
        half = (budget.budget_seconds - sum(b.seconds for b in budget.before)) / 2
        gate_room = half - sync.seconds
        attempts = _largest_attempts(cfg, budget.index, gate_room)
        if gate_room > 0:
            example = f" (for example attempts {attempts})" if attempts is not None else ""
            fixes.append(f"a health gate of at most {human(gate_room)} in {gate.key}{example}")
        sync_room = math.floor(half - gate.seconds)
        if sync_room >= MIN_SYNC_SECONDS:
            fixes.append(f"{SYNC_KEY} at most {sync_room}")
        fixes.append(f"{BUDGET_KEY} at least {math.ceil(budget.worst_case)}")
        expected = "a worst case within the deploy budget: " + ", or ".join(fixes)
        problems.append(Problem("deploy.budgetSeconds", given, expected))
    return problems


def _default_figures() -> str:
    """The worst case of a stack that keeps every default, phase by phase."""
    gate = worst_case_seconds(DEFAULTS["attempts"], DEFAULTS["interval_seconds"], DEFAULTS["timeout_seconds"])
    path = 2 * (DEFAULT_SYNC_TIMEOUT_SECONDS + gate)
    return (
        f"health gate {gate:g} s ({human(gate)}); sync wait {DEFAULT_SYNC_TIMEOUT_SECONDS} s; "
        f"a rolled-back release 2 x ({DEFAULT_SYNC_TIMEOUT_SECONDS} + {gate:g}) = {path:g} s ({human(path)}) "
        f"of the {DEFAULT_BUDGET_SECONDS} s ({human(DEFAULT_BUDGET_SECONDS)}) budget"
    )


if __name__ == "__main__":
    print(_default_figures())
    print(f"then, apart from the budget, the default {soak_rules(SoakConfig())}")
