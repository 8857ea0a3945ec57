"""`python -m policies.check --stack <stack>`: the policy pack on the program's resources, without the CLI."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from components.config_reader import ConfigError
from components.names import APP_RELEASE_TYPE, DOCKER_IMAGE_TYPE
from offline.image_build import (
    BuildFailed,
    BuildSpec,
    EngineUnavailable,
    ImageError,
    ImageMeasurement,
    build_image,
    connect,
    measure_image,
)
from offline.promotion import upstream_of, upstream_outputs
from offline.simulate import (
    PLACEHOLDER_PASSWORD,
    ProgramFailed,
    ProgramMocks,
    SimResource,
    Simulation,
    simulate,
)
from offline.stack_files import PROJECT_DIR, StackFileError, read_stack_config, stack_file
from policies.analyzer_client import (
    PACK_DIR,
    PolicyConfigError,
    PolicyInput,
    PolicyPackError,
    PolicyPackServer,
    load_policy_config,
)
from policies.report import EXIT_ERROR, CheckReport, ImageRow, RenderedRow, RenderStatus
from policies.rules.image_size import max_bytes


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


def size_limit(policy_config: Mapping[str, Mapping[str, Any]]) -> int:
    """The smaller `maxBytes` of the two size policies, read as the pack reads it (its default if unset)."""
    return min(max_bytes(policy_config.get(p)) for p in ("image-size-limit", "image-size-registry"))


def _app_of(resource: SimResource, by_urn: Mapping[str, SimResource]) -> str:
    """The app a resource belongs to: the name of its AppRelease ancestor."""
    current: SimResource | None = resource
    while current is not None:
        if current.type == APP_RELEASE_TYPE:
            return current.name
        current = by_urn.get(current.parent)
    return resource.name


def image_builds(sim: Simulation, project_dir: Path) -> list[tuple[str, str, BuildSpec]]:
    """(app, image name, what to build) for each docker Image the program declares (pinned apps have none)."""
    by_urn = {r.urn: r for r in sim.resources}
    builds = []
    for image in sim.by_type(DOCKER_IMAGE_TYPE):
        # The inputs the program hands pulumi-docker: paths relative to the project, as its CLI resolves them.
        build = image.inputs.get("build") or {}
        context = project_dir / str(build.get("context") or ".")
        dockerfile = (
            project_dir / str(build["dockerfile"]) if build.get("dockerfile") else context / "Dockerfile"
        )
        name = str(image.inputs.get("imageName", ""))
        spec = BuildSpec(
            context=context,
            dockerfile=dockerfile,
            build_args={str(k): str(v) for k, v in (build.get("args") or {}).items()},
            platform=build.get("platform") or None,
            tags=(name,),
        )
        builds.append((_app_of(image, by_urn), name, spec))
    return sorted(builds, key=lambda b: (b[0], b[1]))  # registration order varies; the report must not


def _shown(path: Path, project_dir: Path) -> str:
    return os.path.relpath(path, project_dir)


def measure_builds(
    builds: Sequence[tuple[str, str, BuildSpec]], project_dir: Path, limit: int
) -> tuple[list[ImageRow], dict[str, ImageMeasurement]]:
    """Build and measure each image with the engine DOCKER_HOST names; rows for the report, sizes by name."""
    rows: list[ImageRow] = []
    measured: dict[str, ImageMeasurement] = {}
    try:
        client = connect()
    except EngineUnavailable as exc:
        reason = f"{exc}; image-size-limit can't judge it yet"
        rows = [
            ImageRow(a, n, _shown(s.dockerfile, project_dir), "not-measured", reason) for a, n, s in builds
        ]
        return rows, measured
    done: dict[tuple[Any, ...], tuple[str, str, ImageMeasurement | None]] = {}
    try:
        for app, name, spec in builds:
            dockerfile = _shown(spec.dockerfile, project_dir)
            # pulumi-docker builds each image name once; apps sharing one (same inputs) share the build.
            key = (spec.context, spec.dockerfile, tuple(sorted(spec.build_args.items())), spec.platform, name)
            if key not in done:
                done[key] = _build_and_measure(client, app, dockerfile, spec, limit)
            status, detail, found = done[key]
            if found is not None:
                measured[name] = found
            rows.append(ImageRow(app, name, dockerfile, status, detail, found.size_bytes if found else None))
    finally:
        client.close()
    return rows, measured


def _build_and_measure(
    client: Any, app: str, dockerfile: str, spec: BuildSpec, limit: int
) -> tuple[str, str, ImageMeasurement | None]:
    """(status, detail, measurement) of one image: measured, a build error, or not measured."""
    try:
        found = measure_image(client, build_image(client, spec), limit=limit)
    except BuildFailed as exc:
        return "error", exc.describe(app, dockerfile), None
    except ImageError as exc:
        return "not-measured", f"{exc}; image-size-limit can't judge it yet", None
    return "measured", found.describe(), found


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
    build: bool = False,
    own_outputs: dict[str, Any] | None = None,
) -> CheckReport:
    """Simulate the program with the stack's config, render its Applications, and judge it all.

    The program runs as in `pulumi up` (not a preview): the check judges the release `up` declares,
    so the Application carries a pushed digest (a stand-in, as nothing is pushed) and its chart or
    overlay can be rendered. In a real preview that digest is pending (pulumi-docker answers the local
    build's ID), and Argo CD's source is unknown. The image size is unknown unless `build` is set: each
    image is then built with the local Docker Engine and its measured size stands in for the registry's.

    `own_outputs` (`pulumi stack output --json`) answers the program's read of its own outputs, where
    the failed-release record lives; without it the record is not checked.
    """
    source = stack_file(stack, project_dir).name if config is None else f"stack {stack!r}"
    try:
        values = read_stack_config(stack, project_dir) if config is None else dict(config)
    except StackFileError as exc:
        raise CheckError(str(exc)) from None
    config_file = config_file or default_config_file(stack)
    policy_config = load_policy_config(config_file)  # a bad file fails before the program runs
    upstream, preview = _upstream_outputs(stack, project_dir, values)
    mocks = ProgramMocks(stack_outputs=upstream, own_outputs=own_outputs)
    sim = _simulate(stack, source, project_dir, values, mocks, preview)
    builds = image_builds(sim, project_dir)
    if build:
        images, measured = measure_builds(builds, project_dir, size_limit(policy_config))
        if measured:
            mocks = ProgramMocks(local_images=measured, stack_outputs=upstream, own_outputs=own_outputs)
            sim = _simulate(stack, source, project_dir, values, mocks, preview)
    else:
        images = [
            ImageRow(a, n, _shown(s.dockerfile, project_dir), "not-measured", "--build not given")
            for a, n, s in builds
        ]
    analyze, whole = sim_inputs(sim.resources)
    renders: list[RenderStatus] = []
    if render:
        renders, rendered = render_applications(sim, project_dir)
        analyze += rendered
        whole += rendered
    report = evaluate(
        stack,
        analyze,
        whole,
        config_file=config_file,
        renders=renders,
        rendering=render,
    )
    report.images, report.building = images, build
    return report


def _upstream_outputs(
    stack: str, project_dir: Path, values: Mapping[str, Any]
) -> tuple[dict[str, Any], bool]:
    """A promoting stack's upstream exports, simulated from their stack files, and whether to preview.

    An upstream stack whose file is not in the project has no state here: the program then runs as a
    preview, where the engine answers its outputs as unknown, and the digests show as pending.
    """
    try:
        outputs = upstream_outputs(values, password=PLACEHOLDER_PASSWORD, project_dir=project_dir)
    except StackFileError as exc:
        raise CheckError(str(exc)) from None
    except ProgramFailed as exc:
        raise CheckError(f"the program failed for an upstream stack of {stack!r}: {exc.cause}") from None
    upstream = upstream_of(values)
    return outputs, upstream is not None and upstream not in outputs


def _simulate(
    stack: str,
    source: str,
    project_dir: Path,
    values: Mapping[str, Any],
    mocks: ProgramMocks,
    preview: bool = False,
) -> Simulation:
    """The program under mocks, as `pulumi up` would declare it; config problems become one CheckError."""
    try:
        return simulate(stack, project_dir=project_dir, config=values, preview=preview, mocks=mocks)
    except ProgramFailed as exc:
        if isinstance(exc.cause, ConfigError):
            raise CheckError(f"{source}: {exc.cause}") from None
        raise CheckError(f"the program failed for stack {stack!r}: {exc.cause}") from None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: print the table; 0 pass, 1 mandatory violation or render/build error, 2 bad input."""
    parser = argparse.ArgumentParser(prog="python -m policies.check", description=__doc__)
    parser.add_argument("--stack", required=True, help="stack name: reads Pulumi.<stack>.yaml")
    parser.add_argument("--policy-config", type=Path, help="default: policies/config.<stack>.json")
    parser.add_argument("--no-render", action="store_true", help="skip rendering charts and overlays")
    parser.add_argument(
        "--build",
        action="store_true",
        help="build each non-pinned app's image with the local Docker Engine (DOCKER_HOST) and judge "
        "image-size-limit on its measured size",
    )
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
            build=args.build,
            own_outputs=outputs,
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
