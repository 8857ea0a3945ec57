"""`python -m policies.check --stack <stack>`: the policy pack on the program's resources, without the CLI."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from components.config_reader import ConfigError
from offline.simulate import ProgramFailed, SimResource, Simulation, simulate
from offline.stack_files import PROJECT_DIR, StackFileError, read_stack_config, stack_file
from policies.analyzer_client import (
    PACK_DIR,
    PolicyConfigError,
    PolicyInput,
    PolicyPackError,
    PolicyPackServer,
    load_policy_config,
)
from policies.report import EXIT_ERROR, CheckReport, RenderedRow, RenderStatus


class CheckError(Exception):
    """A problem with the check's input (stack, config, engines): reported in one line, no traceback."""


def sim_inputs(resources: Sequence[SimResource]) -> tuple[list[PolicyInput], list[PolicyInput]]:
    """(Analyze, AnalyzeStack) inputs for what the program registered, in the wire form the engine sends."""
    analyze, stack = [], []
    for r in resources:
        common: dict[str, Any] = {
            "urn": r.urn,
            "type": r.type,
            "name": r.name,
            "parent": r.parent,
            "dependencies": tuple(r.dependencies),
            "custom": r.custom,
        }
        # raw_inputs keep secret envelopes and unknown sentinels; outputs add provider-computed fields.
        state = {**r.outputs, **r.raw_inputs}
        if r.custom:
            analyze.append(PolicyInput(props=r.raw_inputs, **common))
        stack.append(PolicyInput(props=state, **common))
    return analyze, stack


def render_applications(sim: Simulation, project_dir: Path) -> tuple[list[RenderStatus], list[PolicyInput]]:
    """Render each Application as Argo CD would (offline.render), as rows and as policy inputs."""
    try:
        from offline.render import render_all  # needs Helm's and kustomize's engines, imported only here
    except ImportError as exc:
        raise CheckError(f"rendering is unavailable ({exc}); run with --no-render to skip it") from exc
    statuses, inputs = [], []
    for result in render_all(sim.resources, project_dir, sim.stack):
        rows = tuple(RenderedRow(o.type, o.name, o.urn, o.scaled_by) for o in result.objects)
        statuses.append(
            RenderStatus(
                application=result.application,
                application_urn=result.application_urn,
                engine=str(result.engine),
                path=str(result.path),
                status=str(result.status),
                reason=result.reason,
                objects=rows,
                seconds=float(getattr(result, "seconds", 0.0)),
            )
        )
        inputs += [
            PolicyInput(urn=o.urn, type=o.type, name=o.name, props=o.manifest, parent=result.application_urn)
            for o in result.objects
        ]
    return statuses, inputs


def evaluate(
    stack: str,
    analyze: Sequence[PolicyInput],
    whole: Sequence[PolicyInput],
    *,
    config_file: Path | None = None,
    renders: Sequence[RenderStatus] = (),
    rendering: bool = True,
    pack_dir: Path = PACK_DIR,
) -> CheckReport:
    """Every resource through Analyze, then the whole set through AnalyzeStack, in one pack run."""
    report = CheckReport(stack=stack, resources=len(whole), renders=list(renders), rendering=rendering)
    # Every verdict is the pack's: a workload whose omitted `replicas` a rendered HPA owns is judged by
    # its stack policy minimum-replicas-rendered (policies/rules/replicas.py), which sees the HPAs.
    with PolicyPackServer(pack_dir, config_file=config_file, stack=stack) as pack:
        for resource in analyze:
            report.diagnostics += pack.analyze(resource)
        report.diagnostics += pack.analyze_stack(whole)
    report.resources = len(whole) - sum(len(r.objects) for r in renders)
    return report


def default_config_file(stack: str, pack_dir: Path = PACK_DIR) -> Path:
    """`policies/config.<stack>.json`, which `make preview` and `python -m deploy` pass; it must exist.

    Without it the pack would judge with its defaults while `python -m deploy up` refuses to start:
    a missing file is an error here too, with the fix.
    """
    name = stack.rsplit("/", 1)[-1]
    path = pack_dir / f"config.{name}.json"
    if not path.is_file():
        shipped = sorted(p.name for p in pack_dir.glob("config.*.json"))
        example = shipped[0] if shipped else "config.<another stack>.json"
        raise CheckError(
            f"no policy config {path.name} in {pack_dir} for stack {stack!r}: copy a shipped one and "
            f"adjust its thresholds, for example `cp {pack_dir.name}/{example} {pack_dir.name}/{path.name}` "
            f"(shipped: {', '.join(shipped) or 'none'}), or pass --policy-config"
        )
    return path


def run_check(
    stack: str,
    *,
    project_dir: Path = PROJECT_DIR,
    render: bool = True,
    config_file: Path | None = None,
    config: dict[str, Any] | None = None,
) -> CheckReport:
    """Simulate the program with the stack's config, render its Applications, and judge it all."""
    source = stack_file(stack, project_dir).name if config is None else f"stack {stack!r}"
    try:
        values = read_stack_config(stack, project_dir) if config is None else dict(config)
    except StackFileError as exc:
        raise CheckError(str(exc)) from None
    config_file = config_file or default_config_file(stack)
    load_policy_config(config_file)  # a bad file fails before the program runs
    try:
        sim = simulate(stack, project_dir=project_dir, config=values, preview=True)
    except ProgramFailed as exc:
        if isinstance(exc.cause, ConfigError):
            raise CheckError(f"{source}: {exc.cause}") from None
        raise CheckError(f"the program failed for stack {stack!r}: {exc.cause}") from None
    analyze, whole = sim_inputs(sim.resources)
    renders: list[RenderStatus] = []
    if render:
        renders, rendered = render_applications(sim, project_dir)
        analyze += rendered
        whole += rendered
    return evaluate(
        stack,
        analyze,
        whole,
        config_file=config_file,
        renders=renders,
        rendering=render,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: print the table; 0 = pass, 1 = mandatory violation or render error, 2 = bad input."""
    parser = argparse.ArgumentParser(prog="python -m policies.check", description=__doc__)
    parser.add_argument("--stack", required=True, help="stack name: reads Pulumi.<stack>.yaml")
    parser.add_argument("--policy-config", type=Path, help="default: policies/config.<stack>.json")
    parser.add_argument("--no-render", action="store_true", help="skip rendering charts and overlays")
    parser.add_argument("--project-dir", type=Path, default=PROJECT_DIR, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        report = run_check(
            args.stack,
            project_dir=args.project_dir,
            render=not args.no_render,
            config_file=args.policy_config,
        )
    except (CheckError, PolicyConfigError, PolicyPackError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    print(report.format())
    return report.exit_code


if __name__ == "__main__":
    sys.exit(main())
