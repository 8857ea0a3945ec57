"""Command line of the deploy: `python -m deploy up --stack <stack>` and `python -m deploy report PATH...`,
with clear errors and no tracebacks."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TextIO

from pulumi import automation

from deploy import report
from deploy.commands import STALE_AFTER, UpOptions
from deploy.outcome import Exit, exit_codes_help, wrapped
from deploy.process import CANCEL_GRACE_S, Interrupted, Interrupts
from deploy.pulumi_cli import DeployPulumiCommand
from deploy.run import deploy_up
from deploy.visibility import Reporter, github_target
from model.failed_releases import RELEASE_REF
from model.http_origin import redact_urls

PROJECT_DIR = Path(__file__).resolve().parents[1]
POLICY_PACK = "policies"
INSTALL_HINT = (
    "the Pulumi CLI is not on PATH. Install it (https://www.pulumi.com/docs/install/), for example "
    "`curl -fsSL https://get.pulumi.com | sh` and add ~/.pulumi/bin to PATH; in GitHub Actions, a "
    "`uses: pulumi/actions@v6` step without a command installs it"
)
DESCRIPTION = (
    "Deploy a gitops-deploy stack and measure it. `up` runs `pulumi up` with the policy pack, rolls an "
    "app whose release gate fails back to its last digest that passed, and prints a table of every "
    "app's phase timings against the deploy budget; `report` summarizes many deploy records."
)
UP_DESCRIPTION = (
    "Deploy one stack: check that each app's rollback target still exists in the registry, run "
    "`pulumi up` with the policy pack (policies/ and policies/config.<stack>.json), and when apps fail "
    "their release gate (the health check fails, the Application's wait times out, or Argo CD reports "
    "the release Degraded for gitops-deploy:deploy.degradedGraceSeconds), roll them back to their last "
    "digest that passed with a second `up`, and record the failed release so the same content does not "
    "ship again. At the end it prints each app's phase timings against gitops-deploy:deploy.budgetSeconds "
    "(also to $GITHUB_STEP_SUMMARY when set). Needs the Pulumi CLI on PATH. See docs/release.md."
)


def policy_config(stack: str) -> str:
    """The policy pack config of a stack, relative to the project (`org/proj/dev` uses `dev`'s)."""
    return f"{POLICY_PACK}/config.{stack.rsplit('/', 1)[-1]}.json"


def _release_ref(value: str) -> str:
    if RELEASE_REF.fullmatch(value) is None:
        raise argparse.ArgumentTypeError(
            f"got {value!r}; expected '<app>:<content tag>' as the deploy printed it, such as "
            "'web:ctx-0123456789ab'"
        )
    return value


def _bounded(unit: str, most: float) -> Callable[[str], float]:
    """An option's parser: a number above 0 and at most `most`, in `unit`s (named in the error)."""

    def parse(value: str) -> float:
        try:
            number = float(value)
        except ValueError:
            number = -1.0
        if not 0 < number <= most:
            raise argparse.ArgumentTypeError(
                f"got {value!r}; expected a number of {unit} above 0, at most {most:g}"
            )
        return number

    return parse


def _parser() -> argparse.ArgumentParser:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="python -m deploy",
        description=wrapped(DESCRIPTION),
        epilog=f"{exit_codes_help(what='exit codes of up')}\n\n"
        f"{exit_codes_help(report.EXIT_CODES, 'exit codes of report')}\n\n"
        "See `python -m deploy up --help` and `python -m deploy report --help`.",
        formatter_class=raw,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    up = sub.add_parser(
        "up",
        help="deploy a stack; roll apps that fail their release gate back; print the phase timings",
        description=wrapped(UP_DESCRIPTION),
        epilog=exit_codes_help(),
        formatter_class=raw,
    )
    up.add_argument("--stack", required=True, help="stack name, such as dev (or org/dev)")
    up.add_argument("--work-dir", type=Path, default=PROJECT_DIR, help="the Pulumi project directory")
    up.add_argument(
        "--record",
        type=Path,
        metavar="FILE",
        help="write the deploy record (JSON: outcome, digests, phase timings, cause) to FILE, "
        "whatever the outcome (docs/release.md)",
    )
    up.add_argument(
        "--allow-failed-release",
        action="append",
        default=[],
        type=_release_ref,
        metavar="APP:TAG",
        help="let a release that failed its health gate ship again, after fixing what made it fail "
        "outside the image (repeatable)",
    )
    up.add_argument(
        "--cancel-grace",
        type=_bounded("seconds", 3600),
        default=CANCEL_GRACE_S,
        metavar="SECONDS",
        help="on Ctrl-C, how long the CLI may take to cancel before it is told to stop "
        f"(default {CANCEL_GRACE_S:g})",
    )
    up.add_argument(
        "--stale-after",
        type=_bounded("minutes", 24 * 60),
        default=STALE_AFTER.total_seconds() / 60,
        metavar="MINUTES",
        help="a lock or an in-progress update older than this is left over from an interrupted run "
        f"(default {STALE_AFTER.total_seconds() / 60:g})",
    )
    up.add_argument(
        "--github-deployments",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="report the deploy to GitHub's Deployments API (environment = the stack) with "
        "GITHUB_API_URL, GITHUB_REPOSITORY, GITHUB_SHA and GITHUB_TOKEN; default: on under GitHub Actions "
        "(docs/visibility.md)",
    )
    summary = sub.add_parser(
        "report",
        help="summarize deploy records: success rate, failures by cause, duration against the budget, MTTR",
        description=wrapped(report.DESCRIPTION),
        epilog=report.EPILOG,
        formatter_class=raw,
    )
    report.add_arguments(summary)
    return parser


def _setup_error(out: TextIO, message: str) -> int:
    out.write(f"deploy: error: {message}\n")
    return Exit.SETUP


def _stream(line: str) -> None:
    # The CLI's log may show a URL an older state holds (a diff's old value): never its userinfo.
    print(redact_urls(line), flush=True)


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Parse the command line and run `up` or `report`."""
    args = _parser().parse_args(argv)
    if args.command == "report":
        return report.run(args, sys.stdout, out or sys.stderr)
    return _up(args, out or sys.stderr)


def _up(args: argparse.Namespace, out: TextIO) -> int:
    """Check the prerequisites, select the stack and deploy it."""
    work_dir: Path = args.work_dir.resolve()
    if shutil.which("pulumi") is None:
        return _setup_error(out, INSTALL_HINT)
    if not (work_dir / "Pulumi.yaml").is_file():
        return _setup_error(out, f"no Pulumi.yaml in {work_dir}")
    config = policy_config(args.stack)
    if not (work_dir / POLICY_PACK).is_dir() or not (work_dir / config).is_file():
        return _setup_error(out, f"policy pack config {config} not found in {work_dir}")
    github = github_target(args.github_deployments, os.environ)
    if isinstance(github, str):
        if args.github_deployments:
            return _setup_error(out, f"--github-deployments: {github}")
        out.write(f"deploy: note: GitHub deployment statuses are off: {github} (docs/visibility.md)\n")
        github = None
    interrupts = Interrupts(out, cancel_grace_s=args.cancel_grace)
    with interrupts.installed():
        try:
            command = DeployPulumiCommand(interrupts)
            stack = automation.select_stack(
                stack_name=args.stack,
                work_dir=str(work_dir),
                opts=automation.LocalWorkspaceOptions(pulumi_command=command),
            )
        except automation.StackNotFoundError:
            hint = f"create it first with `pulumi stack init {args.stack}` in {work_dir}"
            return _setup_error(out, f"no stack {args.stack!r}: {hint}")
        except FileNotFoundError:
            return _setup_error(out, INSTALL_HINT)
        except automation.errors.InvalidVersionError as err:
            return _setup_error(out, f"unsupported Pulumi CLI: {err}")
        except automation.errors.CommandError as err:
            return _setup_error(out, f"could not select stack {args.stack!r}: {str(err).strip()}")
        except Interrupted:
            return interrupts.exit_code
        options = UpOptions(
            policy_packs=[POLICY_PACK],
            policy_pack_configs=[config],
            on_output=_stream,
            work_dir=work_dir,
            allow_failed_releases=tuple(args.allow_failed_release),
            stale_after=timedelta(minutes=args.stale_after),
            record=args.record,
            step_summary=Path(os.environ["GITHUB_STEP_SUMMARY"])
            if os.environ.get("GITHUB_STEP_SUMMARY")
            else None,
            reporter=Reporter(github),
        )
        return deploy_up(stack, options, out, interrupts)
