"""The CLI-free check: the program under mocks, its Applications rendered, all judged by the pack (its
command line: policy_check/options.py)."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from contextlib import closing, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

from model.config import StackConfig
from model.config_reader import ConfigError
from model.errors import GitopsError
from model.stack_files import PROJECT_DIR, StackFileError, read_stack_config, stack_file
from model.text import bounded, terminal
from policy_check import check_context, github, objects, report_format
from policy_check.analyze_stream import AnalyzeStream
from policy_check.analyzer_client import (
    PACK_DIR,
    Diagnostic,
    PolicyInput,
    PolicyPackServer,
    load_policy_config,
    read_json_file,
)
from policy_check.check_images import image_builds, measure_builds, not_measured
from policy_check.check_smoke import smoke_rows, stopped_code, terminate_unwinds
from policy_check.findings import Context, Finding, group, ordered
from policy_check.inputs import (
    CheckError,
    other_stacks,
    render_applications,
    render_pool,
    sim_input,
    sim_inputs,
)
from policy_check.options import parser
from policy_check.promotion import upstream_of, upstream_outputs
from policy_check.render_common import RenderResult
from policy_check.render_source import normalize_repo_url, this_repository
from policy_check.report import EXIT_ERROR, CheckReport, Format
from policy_check.simulate import (
    PLACEHOLDER_PASSWORD,
    ProgramFailed,
    ProgramMocks,
    SimResource,
    Simulation,
    simulate,
)

if TYPE_CHECKING:  # the engines are imported only when something is rendered
    from policy_check.render import RenderPool

SIZE_POLICIES = ("image-size-limit", "image-size-registry")


def evaluate(
    stack: str,
    analyze: Sequence[PolicyInput],
    whole: Sequence[PolicyInput],
    *,
    config_file: Path | None = None,
    renders: Sequence[RenderResult] = (),
    rendering: bool = True,
    pack_dir: Path = PACK_DIR,
    pack: PolicyPackServer | None = None,
    context: Context | None = None,
    answered: Mapping[str, list[Diagnostic]] | None = None,
) -> CheckReport:
    """Every resource through Analyze (but those `answered` already, by URN), then the whole set through
    AnalyzeStack, in one pack run; the violations become findings, naming the stack's keys and files
    when `context` is given."""
    report = CheckReport(stack=stack, resources=len(whole), renders=list(renders), rendering=rendering)
    if pack is None:
        with PolicyPackServer(pack_dir, config_file=config_file, stack=stack) as started:
            return evaluate(stack, analyze, whole, renders=renders, rendering=rendering, pack=started)
    answered = answered or {}
    asked = pack.answers(r for r in analyze if r.urn not in answered)
    for resource in analyze:  # in their order, as the engine reports them
        report.diagnostics += answered[resource.urn] if resource.urn in answered else next(asked)[1]
    report.diagnostics += pack.analyze_stack(whole)
    report.resources = len(whole) - sum(len(r.objects) for r in renders)
    if context is None:
        context = check_context.context(whole=whole, renders=renders, thresholds=thresholds(pack))
    report.findings = group(report.violations, context)
    report.labels = {urn: info.label for urn, info in context.resources.items()}
    return report


def thresholds(pack: PolicyPackServer) -> dict[str, dict[str, Any]]:
    """Each policy's configured properties, schema defaults included, as the pack was configured."""
    return {name: dict(props) for name, (_, props) in pack.config.items()}


def size_limit(pack: PolicyPackServer) -> int:
    """The smaller `maxBytes` of the two size policies, as the pack was configured (defaults included)."""
    return min(int(thresholds(pack)[p]["maxBytes"]) for p in SIZE_POLICIES)


def default_config_file(stack: str, project_dir: Path = PROJECT_DIR) -> Path:
    """`policies/config.<stack>.json`, which `python -m deploy` needs too: missing, an error with the fix."""
    name = stack.rsplit("/", 1)[-1]
    folder = project_dir / "policies"
    path = folder / f"config.{name}.json"
    if not path.is_file():
        shipped = sorted(p.name for p in folder.glob("config.*.json"))
        example = shipped[0] if shipped else "config.<another stack>.json"
        raise CheckError(
            f"no policy config {path.name} in {folder} for stack {stack!r}: copy a shipped one and "
            f"adjust its thresholds, for example `cp policies/{example} policies/{path.name}` "
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
    smoke: bool = True,
    own_outputs: dict[str, Any] | None = None,
    repo_url: str | None = None,
    allow_remote: bool = False,
) -> CheckReport:
    """Simulate the program as `pulumi up` declares it, render its Applications, and judge it all
    (docs/engine-rules.md#the-policy-check); with `build`, each image is built, measured and (`smoke`)
    smoke-run; `own_outputs` holds the failed-release record."""
    if repo_url is not None and normalize_repo_url(repo_url) is None:
        raise CheckError("--repo-url: expected a Git URL (https://host/org/repo.git or git@host:org/repo)")
    path = stack_file(stack, project_dir) if config is None else None
    source = path.name if path else f"stack {stack!r}"
    try:
        values = read_stack_config(stack, project_dir) if config is None else dict(config)
    except StackFileError as exc:
        raise CheckError(str(exc)) from None
    config_file = config_file or default_config_file(stack, project_dir)
    load_policy_config(config_file)  # a file the CLI would refuse fails before the program runs
    pack = PolicyPackServer(PACK_DIR, config_file=config_file, stack=stack)
    # The pack starts, then hears of each resource the program registers, while the program runs.
    # Paths are the program's: relative to where its `__main__.py` really is.
    program_dir = (project_dir / "__main__.py").resolve().parent
    try:
        stack_config: StackConfig | None = check_context.stack_config(values, program_dir, stack)
        refused: ConfigError | None = None
    except ConfigError as exc:  # said after the program ran, which names what it refuses first
        stack_config, refused = None, exc
    apps = check_context.app_infos(stack_config)
    # Without a build the program runs once: each Application renders while the program goes on.
    early = render and not build and stack_config is not None
    renderer = (
        render_pool(
            project_dir,
            stack,
            check_context.source_keys(apps),
            repository=this_repository(project_dir, values, repo_url),
            allow_remote=allow_remote,
        )
        if early
        else nullcontext()
    )
    with closing(pack), AnalyzeStream(pack) as stream, renderer as pool:
        sims: dict[str, Simulation] = {}
        upstream, preview = _upstream_outputs(stack, project_dir, values, sims)
        mocks = ProgramMocks(stack_outputs=upstream, own_outputs=own_outputs)
        sim = _simulate(stack, source, project_dir, values, mocks, preview, None if build else stream, pool)
        if refused is not None or stack_config is None:
            raise CheckError(f"{source}: {refused}") from None
        builds = image_builds(sim, project_dir)
        answered = stream.end()
        if build:
            images, measured = measure_builds(builds, project_dir, size_limit(pack))
            smoked = smoke_rows(builds, images, stack_config, enabled=smoke)
            if measured:
                mocks = ProgramMocks(local_images=measured, stack_outputs=upstream, own_outputs=own_outputs)
                sim = _simulate(stack, source, project_dir, values, mocks, preview)
        else:
            images, smoked = not_measured(builds, project_dir, "--build not given"), []
        analyze, whole = sim_inputs(sim.resources)
        renders: list[RenderResult] = []
        if render:
            renders, rendered = render_applications(
                sim,
                project_dir,
                check_context.source_keys(apps),
                repository=this_repository(project_dir, values, repo_url),
                allow_remote=allow_remote,
                pool=pool,
            )
            analyze += rendered
            whole += rendered
        found = check_context.context(
            whole=whole,
            renders=renders,
            thresholds=thresholds(pack),
            config=stack_config,
            stack_file=path,
            policy_file=config_file,
            project_dir=project_dir,
        )
        report = evaluate(
            stack,
            analyze,
            whole,
            renders=renders,
            rendering=render,
            pack=pack,
            context=found,
            answered=answered,
        )
    judged, notes = judge_objects(stack, stack_config, found, renders, project_dir, sims)
    report.findings = ordered([*report.findings, *judged], found)
    report.diagnostics += notes
    report.images, report.building, report.smoke = images, build, smoked
    report.stack_file, report.policy_file = found.stack_file, found.policy_file
    report.app_keys = {name: info.key for name, info in apps.items()}
    return report


def judge_objects(
    stack: str,
    config: StackConfig,
    found: Context,
    renders: Sequence[RenderResult],
    project_dir: Path,
    sims: dict[str, Simulation] | None = None,
) -> tuple[list[Finding], list[Diagnostic]]:
    """The objects judged as a whole, also against the project's other stacks on a shared cluster (each
    simulated once per run with `sims`)."""
    keys = objects.clusters(config.argocd, config.cluster)
    mine = objects.owned(stack, found, renders, keys)
    theirs, notes = other_stacks(stack, keys, project_dir, sims) if renders else ([], [])
    findings = objects.collisions(mine, theirs, stack, found) + objects.invalid_names(mine, found)
    return findings + objects.missing_workloads(renders, found), notes


def _upstream_outputs(
    stack: str, project_dir: Path, values: Mapping[str, Any], sims: dict[str, Simulation]
) -> tuple[dict[str, Any], bool]:
    """A promoting stack's upstream exports, simulated; preview when an upstream has no stack file here."""
    try:
        outputs = upstream_outputs(values, password=PLACEHOLDER_PASSWORD, project_dir=project_dir, sims=sims)
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
    stream: AnalyzeStream | None = None,
    renders: RenderPool | None = None,
) -> Simulation:
    """The program under mocks, as `pulumi up` would declare it, each resource it registers handed to
    `stream` and `renders`; config problems become one CheckError."""

    def feed(record: SimResource) -> None:
        if record.custom and stream is not None:
            stream.add(sim_input(record))
        if renders is not None:
            renders.add(record)

    try:
        return simulate(
            stack, project_dir=project_dir, config=values, preview=preview, mocks=mocks, on_record=feed
        )
    except ProgramFailed as exc:
        if isinstance(exc.cause, ConfigError):
            raise CheckError(f"{source}: {exc.cause}") from None
        raise CheckError(f"the program failed for stack {stack!r}: {exc.cause}") from None


def main(argv: Sequence[str] | None = None) -> int:
    """Print the report; 0 pass, 1 mandatory finding or render/build error, 2 bad input."""
    args = parser().parse_args(argv)
    fmt: Format = args.format
    actions = github.in_actions()
    try:
        with terminate_unwinds():
            outputs = _stack_outputs(args.stack_outputs)
            report = run_check(
                args.stack,
                project_dir=args.project_dir,
                render=not args.no_render,
                config_file=args.policy_config,
                build=args.build,
                smoke=not args.no_smoke,
                own_outputs=outputs,
                repo_url=args.repo_url,
                allow_remote=args.allow_remote,
            )
    except GitopsError as exc:
        return _input_error(args.stack, str(exc), fmt, actions)
    except KeyboardInterrupt as exc:
        print(f"error: stopped ({str(exc) or 'SIGINT'}); nothing was judged", file=sys.stderr)
        return stopped_code(exc)
    report.stack_outputs = str(args.stack_outputs) if args.stack_outputs else None
    print(report_format.formatted(report, fmt), end="" if fmt != "table" else "\n")
    if actions:
        for line in github.finding_annotations(report):
            print(line, file=sys.stderr)
        github.append_summary(report_format.formatted(report, "markdown"))
    return report.exit_code


def _input_error(stack: str, message: str, fmt: Format, actions: bool) -> int:
    """Exit 2 with one `error:` line; the JSON and Markdown reports say so too, and so does the summary."""
    message = bounded(message)
    shown = "\n".join(terminal(line) for line in message.splitlines())
    print(f"error: {shown}", file=sys.stderr)
    if fmt != "table":
        print(report_format.input_error(stack, message, fmt), end="")
    if actions:
        print(github.error_annotation(message, stack_file(stack).name), file=sys.stderr)
        github.append_summary(report_format.input_error(stack, message, "markdown"))
    return EXIT_ERROR


def _stack_outputs(path: Path | None) -> dict[str, Any] | None:
    """The stack's outputs as `pulumi stack output --json` writes them."""
    if path is None:
        return None
    try:
        value = read_json_file(path)
    except ValueError as exc:
        raise CheckError(f"--stack-outputs {path}: {exc}") from None
    if not isinstance(value, dict):
        raise CheckError(
            f"--stack-outputs {path}: expected the JSON object `pulumi stack output --json` writes"
        )
    return value
