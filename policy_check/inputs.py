"""What the pack is handed: the program's resources, the objects each Application renders, and those of
the project's other stacks on a shared cluster (docs/engine-rules.md#clusters-two-stacks-share)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from model.config_reader import ConfigError
from model.errors import GitopsError
from model.stack_files import StackFileError, read_stack_config, stack_names
from policy_check import check_context, objects
from policy_check.analyzer_client import Diagnostic, PolicyInput
from policy_check.promotion import simulate_stack
from policy_check.render_common import RenderResult
from policy_check.render_source import Repository, this_repository
from policy_check.simulate import PLACEHOLDER_PASSWORD, ProgramFailed, SimResource, Simulation

if TYPE_CHECKING:  # the engines are imported only when something is rendered
    from policy_check.render import RenderPool


class CheckError(GitopsError):
    """A problem with the check's input (stack, config, engines): reported in one line, no traceback."""


def sim_input(r: SimResource, stack: bool = False) -> PolicyInput:
    """What the engine hands the pack of a registered resource: its inputs (Analyze) or its state
    (`stack`: AnalyzeStack), in wire form."""
    # raw_inputs keep secret envelopes and unknown sentinels; outputs add provider-computed fields.
    props = {**r.outputs, **r.raw_inputs} if stack else r.raw_inputs
    return PolicyInput(r.urn, r.type, r.name, props, r.parent, tuple(r.dependencies), custom=r.custom)


def sim_inputs(resources: Sequence[SimResource]) -> tuple[list[PolicyInput], list[PolicyInput]]:
    """(Analyze, AnalyzeStack) inputs for what the program registered, in the wire form the engine sends."""
    return [sim_input(r) for r in resources if r.custom], [sim_input(r, stack=True) for r in resources]


def render_pool(
    project_dir: Path,
    stack: str,
    source_keys: Mapping[str, str] | None = None,
    *,
    repository: Repository | None = None,
    allow_remote: bool = False,
) -> RenderPool:
    """Renders of the Applications as Argo CD would render them, started as they are handed in;
    `repository` is this checkout (default: its origin remote), and only its folders are rendered."""
    try:
        from policy_check.render import RenderPool  # needs Helm's and kustomize's engines, imported only here
    except ImportError as exc:
        raise CheckError(f"rendering is unavailable ({exc}); run with --no-render to skip it") from exc
    return RenderPool(
        project_dir,
        stack,
        source_keys=source_keys,
        repository=repository or this_repository(project_dir, _stack_values(stack, project_dir)),
        allow_remote=allow_remote,
    )


def render_applications(
    sim: Simulation,
    project_dir: Path,
    source_keys: Mapping[str, str] | None = None,
    *,
    repository: Repository | None = None,
    allow_remote: bool = False,
    pool: RenderPool | None = None,
) -> tuple[list[RenderResult], list[PolicyInput]]:
    """Render each Application as Argo CD would, as results and as policy inputs (in `pool` when one was
    already handed them while the program ran)."""
    if pool is None:
        with render_pool(
            project_dir, sim.stack, source_keys, repository=repository, allow_remote=allow_remote
        ) as own:
            results = own.results(sim.resources)
    else:
        results = pool.results(sim.resources)
    inputs = [
        PolicyInput(urn=o.urn, type=o.type, name=o.name, props=o.manifest, parent=r.application_urn)
        for r in results
        for o in r.objects
    ]
    return results, inputs


def _stack_values(stack: str, project_dir: Path) -> dict[str, Any]:
    """The stack file's config, or {} when there is none to read (the config was handed over in code)."""
    try:
        return read_stack_config(stack, project_dir)
    except StackFileError:
        return {}


def other_stacks(
    stack: str, keys: Mapping[str, str], project_dir: Path, sims: dict[str, Simulation] | None = None
) -> tuple[list[objects.Owned], list[Diagnostic]]:
    """The objects of every other stack that shares a known cluster with this one, each simulated (once
    per run with `sims`) and rendered as this one was; a "can't judge yet" note for each that could not be."""
    theirs: list[objects.Owned] = []
    notes: list[Diagnostic] = []
    known = objects.known_clusters(keys)
    for other in stack_names(project_dir) if known else []:
        if other == stack.rsplit("/", 1)[-1]:
            continue
        try:
            values = read_stack_config(other, project_dir)
            config = check_context.stack_config(values, project_dir, other)
            other_keys = objects.clusters(config.argocd, config.cluster)
            if not known & objects.known_clusters(other_keys):
                continue
            sim = simulate_stack(
                other, password=PLACEHOLDER_PASSWORD, config=values, project_dir=project_dir, sims=sims
            )
            renders, rendered = render_applications(
                sim, project_dir, repository=this_repository(project_dir, values)
            )
        except (StackFileError, ProgramFailed, ValueError, CheckError, ConfigError) as exc:
            reason = exc.cause if isinstance(exc, ProgramFailed) else exc
            policy = objects.UNIQUE
            message = (
                f"can't run policy '{policy}' during preview: stack {other} shares a cluster but {reason}"
            )
            notes.append(Diagnostic(policy=policy, message=message, urn="", level="mandatory"))
            continue
        _, whole = sim_inputs(sim.resources)
        ctx = check_context.context(whole=[*whole, *rendered], renders=renders, thresholds={})
        theirs += objects.owned(other, ctx, renders, other_keys)
    return theirs, notes
