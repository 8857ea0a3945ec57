"""Command line of the deploy: `python -m deploy up --stack <stack>`, with clear errors and no tracebacks."""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from deploy.run import EXIT_SETUP, UpOptions, deploy_up

PROJECT_DIR = Path(__file__).resolve().parents[1]
POLICY_PACK = "policies"
INSTALL_HINT = (
    "the Pulumi CLI is not on PATH. Install it (https://www.pulumi.com/docs/install/), for example "
    "`curl -fsSL https://get.pulumi.com | sh` and add ~/.pulumi/bin to PATH; in GitHub Actions, a "
    "`uses: pulumi/actions@v6` step without a command installs it"
)


def policy_config(stack: str) -> str:
    """The policy pack config of a stack, relative to the project (`org/proj/dev` uses `dev`'s)."""
    return f"{POLICY_PACK}/config.{stack.rsplit('/', 1)[-1]}.json"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m deploy", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="deploy a stack; roll apps that fail their health gate back")
    up.add_argument("--stack", required=True, help="stack name, such as dev (or org/dev)")
    up.add_argument("--work-dir", type=Path, default=PROJECT_DIR, help="the Pulumi project directory")
    return parser


def _setup_error(out: TextIO, message: str) -> int:
    out.write(f"deploy: error: {message}\n")
    return EXIT_SETUP


def _stream(line: str) -> None:
    print(line, flush=True)


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Parse the command line, check the prerequisites, select the stack and deploy it."""
    out = out or sys.stderr
    args = _parser().parse_args(argv)
    work_dir: Path = args.work_dir.resolve()
    if shutil.which("pulumi") is None:
        return _setup_error(out, INSTALL_HINT)
    if not (work_dir / "Pulumi.yaml").is_file():
        return _setup_error(out, f"no Pulumi.yaml in {work_dir}")
    config = policy_config(args.stack)
    if not (work_dir / POLICY_PACK).is_dir() or not (work_dir / config).is_file():
        return _setup_error(out, f"policy pack config {config} not found in {work_dir}")
    from pulumi import automation

    try:
        stack = automation.select_stack(stack_name=args.stack, work_dir=str(work_dir))
    except automation.StackNotFoundError:
        hint = f"create it first with `pulumi stack init {args.stack}` in {work_dir}"
        return _setup_error(out, f"no stack {args.stack!r}: {hint}")
    except FileNotFoundError:
        return _setup_error(out, INSTALL_HINT)
    except automation.errors.CommandError as err:
        return _setup_error(out, f"could not select stack {args.stack!r}: {str(err).strip()}")
    options = UpOptions(policy_packs=[POLICY_PACK], policy_pack_configs=[config], on_output=_stream)
    return deploy_up(stack, options, out)
