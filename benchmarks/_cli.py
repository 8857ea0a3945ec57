"""The benchmarks' command line: `--help` says what one measures, its options and its exit codes."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

EXIT_CODES = """\
exit codes:
  0  the figures were printed (ratios measured in this run; see the README's "Where to read more")
  1  a measurement failed: its error is printed, and no figure should be trusted
  2  a bad option
"""


def parse(
    doc: str | None, argv: Sequence[str] | None = None, *, runs: int | None = None
) -> argparse.Namespace:
    """Parse the command line of a benchmark whose module docstring is `doc`; `runs` adds that option."""
    parser = argparse.ArgumentParser(
        description=doc, epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    if runs is not None:
        parser.add_argument(
            "runs", nargs="?", type=int, default=runs, help=f"repetitions per figure (default {runs})"
        )
    return parser.parse_args(argv)
