"""Simulate a promoting stack as the deploy order runs it: each upstream stack first, its exports fed on.

The CLI-free check has no upstream state; where the upstream stack's file is in the project, its
simulated exports stand in for it, so replicas, rendering and the pack are judged as in `up`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from model.stack_files import PROJECT_DIR, read_stack_config, stack_names
from policy_check.simulate import ProgramMocks, Simulation, simulate

PROMOTE_KEY = "gitops-deploy:promote"


def upstream_of(config: Mapping[str, Any]) -> str | None:
    """The stack a config promotes from, or None when it builds."""
    promote = config.get(PROMOTE_KEY)
    return str(promote["from"]) if isinstance(promote, Mapping) and "from" in promote else None


def upstream_outputs(
    config: Mapping[str, Any], *, password: str, project_dir: Path = PROJECT_DIR, _seen: tuple[str, ...] = ()
) -> dict[str, dict[str, Any]]:
    """Exports of every stack `config` promotes from, transitively, each simulated from its stack file.

    The chain stops at a stack with no file in the project (another project's, or a qualified name):
    the mocks then answer its outputs as unknown or empty.
    """
    upstream = upstream_of(config)
    if upstream is None or upstream not in stack_names(project_dir):
        return {}
    if upstream in _seen:
        raise ValueError(f"promotion cycle: {' -> '.join((*_seen, upstream))}")
    upstream_config = read_stack_config(upstream, project_dir)
    before = upstream_outputs(
        upstream_config, password=password, project_dir=project_dir, _seen=(*_seen, upstream)
    )
    sim = simulate(
        upstream, project_dir=project_dir, password=password, mocks=ProgramMocks(stack_outputs=before)
    )
    return {**before, upstream: sim.exports}


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
