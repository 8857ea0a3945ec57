"""`python -m policy_check`'s command line: its options, and its exit codes in --help."""

from __future__ import annotations

import argparse
from pathlib import Path

from model.stack_files import PROJECT_DIR
from policy_check.render_source import REPO_URL_KEY
from policy_check.report import EXIT_ERROR, EXIT_FAILED, EXIT_OK, FORMATS

DESCRIPTION = """The policy pack on a stack's program without the Pulumi CLI, a cluster or any credential.

Runs the stack's program under the SDK's mocks, renders each chart and overlay the way Argo CD will,
and judges it all with the policy pack over gRPC, as `pulumi preview --policy-pack policies` would
(docs/engine-rules.md#the-policy-check). `make policy-check STACK=<stack>` runs it.
"""
EPILOG = f"""\
exit codes:
  {EXIT_OK}  pass: no mandatory finding, render error or build error
  {EXIT_FAILED}  the change would not ship: a mandatory policy violation, a chart or overlay that does not
     render, or (with --build) an image that does not build or fails its smoke run
  {EXIT_ERROR}  bad input, nothing judged: an unknown stack, a stack file or stack config that cannot be read
     or is refused, a missing or invalid policy config, the pack did not start, a bad option
  130, 143  stopped by Ctrl-C or SIGTERM; every smoke-run container was removed first

Under GitHub Actions (GITHUB_ACTIONS=true) it also appends the Markdown report to
$GITHUB_STEP_SUMMARY and prints an ::error or ::warning annotation per finding on stderr, on the
stack file and the line of the key to change (or the chart or overlay file).

examples:
  make policy-check STACK=dev
  .venv/bin/python -m policy_check --stack staging --format markdown > report.md
  .venv/bin/python -m policy_check --stack dev --build       # also build, measure and smoke-run each image
"""


def parser() -> argparse.ArgumentParser:
    """The command line, with what it does, its options and its exit codes in --help."""
    p = argparse.ArgumentParser(
        prog="python -m policy_check",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--stack", required=True, help="the stack to judge: reads Pulumi.<stack>.yaml")
    p.add_argument(
        "--policy-config",
        type=Path,
        metavar="FILE",
        help="the pack's config (default policies/config.<stack>.json)",
    )
    p.add_argument(
        "--format", choices=FORMATS, default="table", help="how to print the report (default table)"
    )
    p.add_argument("--no-render", action="store_true", help="skip rendering charts and overlays")
    p.add_argument(
        "--build",
        action="store_true",
        help="build each non-pinned app's image with the local Docker Engine (DOCKER_HOST) and judge "
        "image-size-limit on its measured size, then start it alone and probe its health endpoint as the "
        "gate does (the smoke run; an app's `smoke: false` skips it)",
    )
    p.add_argument("--no-smoke", action="store_true", help="with --build, skip every smoke run")
    p.add_argument(
        "--stack-outputs",
        type=Path,
        metavar="FILE",
        help="the stack's outputs (`pulumi stack output --json --stack S > FILE`), to check the "
        "failed-release record; without it the record is not checked",
    )
    p.add_argument(
        "--repo-url",
        metavar="URL",
        help=f"this repository as Argo CD reads it (default {REPO_URL_KEY}, else `git remote get-url "
        "origin`); an app whose source.repoURL is another repository is not rendered",
    )
    p.add_argument(
        "--allow-remote",
        action="store_true",
        help="let kustomize fetch an overlay's remote bases and resources (unpinned); without it the "
        'check makes no network call and such an app is "can\'t judge yet"',
    )
    p.add_argument("--project-dir", type=Path, default=PROJECT_DIR, help=argparse.SUPPRESS)
    return p
