"""Simulate a promoting stack as the deploy order runs it: each upstream stack first, its exports fed on
(docs/engine-rules.md#the-policy-check)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from components.deployment import APPS_OUTPUT, IMAGE_DIGEST, SOAKED_DIGEST
from model.names import PROJECT
from model.stack_files import PROJECT_DIR, read_stack_config, stack_names
from policy_check.simulate import ProgramMocks, Simulation, simulate

PROMOTE_KEY = f"{PROJECT}:promote"


def upstream_of(config: Mapping[str, Any]) -> str | None:
    """The stack a config promotes from, or None when it builds."""
    promote = config.get(PROMOTE_KEY)
    return str(promote["from"]) if isinstance(promote, Mapping) and "from" in promote else None


def upstream_outputs(
    config: Mapping[str, Any],
    *,
    password: str,
    project_dir: Path = PROJECT_DIR,
    sims: dict[str, Simulation] | None = None,
    _seen: tuple[str, ...] = (),
) -> dict[str, dict[str, Any]]:
    """Exports of every stack `config` promotes from, transitively, each simulated from its stack file
    (once per run with `sims`); the chain stops at a stack with no file in the project."""
    upstream = upstream_of(config)
    if upstream is None or upstream not in stack_names(project_dir):
        return {}
    if upstream in _seen:
        raise ValueError(f"promotion cycle: {' -> '.join((*_seen, upstream))}")
    sim = simulate_stack(upstream, password=password, project_dir=project_dir, sims=sims, _seen=_seen)
    return {**sim.upstream, upstream: soaked(sim.exports)}


def soaked(exports: Mapping[str, Any]) -> dict[str, Any]:
    """A stack's exports once the deploy order ran its soak and it passed: each verified digest is soaked
    (the follow-up update `python -m deploy` runs then, docs/promotion.md#promotion-waits-for-the-soak)."""
    apps = exports.get(APPS_OUTPUT)
    if not isinstance(apps, Mapping):
        return dict(exports)
    after = {
        app: {**entry, SOAKED_DIGEST: entry.get(IMAGE_DIGEST)} if isinstance(entry, Mapping) else entry
        for app, entry in apps.items()
    }
    return {**exports, APPS_OUTPUT: after}


def simulate_stack(
    stack: str,
    *,
    password: str,
    project_dir: Path = PROJECT_DIR,
    config: Mapping[str, Any] | None = None,
    sims: dict[str, Simulation] | None = None,
    _seen: tuple[str, ...] = (),
) -> Simulation:
    """`stack` as its stack file (or `config`, read from it) declares it, after its upstream stacks; with
    `sims`, each stack is simulated once per run."""
    if sims is not None and stack in sims:
        return sims[stack]
    values = dict(read_stack_config(stack, project_dir) if config is None else config)
    before = upstream_outputs(
        values, password=password, project_dir=project_dir, sims=sims, _seen=(*_seen, stack)
    )
    sim = simulate(
        stack,
        project_dir=project_dir,
        config=values,
        password=password,
        mocks=ProgramMocks(stack_outputs=before),
    )
    sim.upstream = before
    if sims is not None:
        sims[stack] = sim
    return sim


def simulate_promoted(
    stack: str,
    *,
    password: str,
    config: Mapping[str, Any] | None = None,
    project_dir: Path = PROJECT_DIR,
    **kwargs: Any,
) -> tuple[Simulation, ProgramMocks]:
    """Run `stack` after its upstream stacks, as `deploy.yml` orders them; returns the mocks too."""
    values = dict(read_stack_config(stack, project_dir) if config is None else config)
    mocks = ProgramMocks(stack_outputs=upstream_outputs(values, password=password, project_dir=project_dir))
    sim = simulate(stack, project_dir=project_dir, config=values, password=password, mocks=mocks, **kwargs)
    return sim, mocks
