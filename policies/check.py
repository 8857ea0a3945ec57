"""`python -m policies.check --stack <stack>`: the policy pack on the program's resources, without the CLI."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from offline.simulate import ProgramFailed, SimResource, Simulation, simulate
from offline.stack_files import PROJECT_DIR, StackFileError
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
    # A workload whose omitted `replicas` a rendered HPA owns runs the HPA's minReplicas, not 1;
    # minimum-replicas judges that HPA, so its "missing means 1" finding on the workload is not a verdict.
    autoscaled = {o.urn for r in renders for o in r.objects if o.scaled_by}
    with PolicyPackServer(pack_dir, config_file=config_file, stack=stack) as pack:
        for resource in analyze:
            found = pack.analyze(resource)
            if resource.urn in autoscaled:
                found = [d for d in found if d.policy != "minimum-replicas"]
            report.diagnostics += found
        report.diagnostics += pack.analyze_stack(whole)
    report.resources = len(whole) - sum(len(r.objects) for r in renders)
    return report


def default_config_file(stack: str, pack_dir: Path = PACK_DIR) -> Path | None:
    """`policies/config.<stack>.json` when it exists, as `make preview` passes it."""
    path = pack_dir / f"config.{stack}.json"
    return path if path.is_file() else None


def run_check(
    stack: str,
    *,
    project_dir: Path = PROJECT_DIR,
    render: bool = True,
    config_file: Path | None = None,
    config: dict[str, Any] | None = None,
    stack_outputs: dict[str, Any] | None = None,
) -> CheckReport:
    """Simulate the program with the stack's config, render its Applications, and judge it all.

    `stack_outputs` (`pulumi stack output --json`) answers the program's read of its own outputs,
    where the failed-release record lives; without it the record is not checked.
    """
    config_file = config_file or default_config_file(stack)
    if config_file is not None:
        load_policy_config(config_file)  # a bad file fails before the program runs
    try:
        sim = simulate(
            stack, project_dir=project_dir, config=config, preview=True, stack_outputs=stack_outputs
        )
    except StackFileError as exc:
        raise CheckError(str(exc)) from exc
    except ProgramFailed as exc:
        raise CheckError(f"the program failed for stack {stack!r}: {exc.cause}") from exc
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
    parser.add_argument(
        "--stack-outputs",
        type=Path,
        help="the stack's outputs (`pulumi stack output --json --stack S > FILE`), to check the "
        "failed-release record; without it the record is not checked",
    )
    parser.add_argument("--project-dir", type=Path, default=PROJECT_DIR, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        outputs = _stack_outputs(args.stack_outputs)
        report = run_check(
            args.stack,
            project_dir=args.project_dir,
            render=not args.no_render,
            config_file=args.policy_config,
            stack_outputs=outputs,
        )
    except (CheckError, PolicyConfigError, PolicyPackError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    # Before the report, whose last line is the verdict.
    if outputs is None:
        print("failed-release record: not checked (pass --stack-outputs FILE: `pulumi stack output --json`)")
    else:
        print(f"failed-release record: checked against {args.stack_outputs}")
    print(report.format())
    return report.exit_code


def _stack_outputs(path: Path | None) -> dict[str, Any] | None:
    """The stack's outputs as `pulumi stack output --json` writes them."""
    if path is None:
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CheckError(f"--stack-outputs {path}: not readable as JSON ({exc})") from exc
    if not isinstance(value, dict):
        raise CheckError(
            f"--stack-outputs {path}: expected the JSON object `pulumi stack output --json` writes"
        )
    return value


if __name__ == "__main__":
    sys.exit(main())
