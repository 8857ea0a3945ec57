"""What every benchmark shares: its command line, timing over repeated runs, its floor and its tables."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from argparse import ArgumentParser, RawTextHelpFormatter
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the project's packages, for a script run as `python benchmarks/bench_x.py`

from model.text import columns  # noqa: E402

T = TypeVar("T")
EXIT_CODES = """\
exit codes:
  0  the figures were printed (ratios measured in this run; see the README's "Where to read more")
  1  a measurement failed: its error is printed, and no figure should be trusted
  2  a bad option
"""
IMPORT_FLOOR = (
    "import pulumi, pulumi.dynamic, pulumi_docker, pulumi_kubernetes, pulumi_kubernetes.core.v1, "
    "pulumi_kubernetes.meta.v1, pulumi_kubernetes.apiextensions"
)
"""What every run of the program pays before its first line, whatever it declares (pulumi_kubernetes loads
its API groups lazily): the floor its costs are set against."""
LINEAR_AT = 10
"""The size whose per-app figure the others are set against, for a benchmark's ratio to linear: at fewer
apps, start-up costs that overlap the work (the pack's, the interpreter's) hide the per-app cost."""
_CHILD = f"""
import json, resource, sys, time
t0 = time.perf_counter()
{IMPORT_FLOOR}
t1 = time.perf_counter()
out = {{{{}}}}
{{code}}
t2 = time.perf_counter()
try:  # this process's own high-water mark: ru_maxrss keeps the parent's across fork and exec
    peak = int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) / 1024
except (OSError, IndexError):
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({{{{**out, "eval_s": t2 - t1, "total_s": t2 - t0, "peak_mib": peak}}}}))
"""


def parse(doc: str | None, *, runs: int = 0) -> int:
    """Parse the command line of the benchmark whose docstring is `doc`; `runs`: repetitions by default."""
    parser = ArgumentParser(description=doc, epilog=EXIT_CODES, formatter_class=RawTextHelpFormatter)
    if runs:
        parser.add_argument("runs", nargs="?", type=int, default=runs, help=f"repetitions (default {runs})")
    return int(getattr(parser.parse_args(), "runs", 0))


def timed(action: Callable[[], T], clock: Callable[[], float] = time.perf_counter) -> tuple[float, T]:
    """Wall seconds (or `clock`'s, e.g. CPU seconds with time.process_time) of one call, and its result."""
    start = clock()
    result = action()
    return clock() - start, result


def best(action: Callable[[], T], runs: int, pick: Callable[[list[float]], float] = min) -> tuple[float, T]:
    """The least (or `pick`) wall seconds of `runs` calls, the least disturbed by load; the last result."""
    times = [timed(action)[0] for _ in range(runs - 1)]
    seconds, result = timed(action)
    return pick([*times, seconds]), result


def median(action: Callable[[], T], runs: int) -> tuple[float, T]:
    """The median wall seconds of `runs` calls, and the last result."""
    return best(action, runs, statistics.median)


def interpreter(runs: int, code: str = "", *args: str) -> dict[str, Any]:
    """The least disturbed of `runs` fresh interpreters that import IMPORT_FLOOR, then run `code` (which may
    set `out` and restart the clock `t1`): `wall_s`, `total_s` after start-up, `eval_s` and `peak_mib`."""
    command = [sys.executable, "-c", _CHILD.format(code=code), *args]
    run = partial(subprocess.run, command, capture_output=True, text=True, timeout=600, check=True, cwd=ROOT)
    results = [(wall, json.loads(done.stdout.splitlines()[-1])) for wall, done in map(timed, [run] * runs)]
    return min(({**out, "wall_s": wall} for wall, out in results), key=lambda r: r["total_s"])


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], formats: str) -> None:
    """Print `rows` under `headers`, each cell formatted with its column's spec in `formats` (`-`: as it is);
    a column of text is left-aligned, one of numbers right-aligned."""
    specs = [spec.strip("-") for spec in formats.split()]
    cells = [[format(value, spec) for value, spec in zip(row, specs, strict=True)] for row in rows]
    align = "".join("<" if isinstance(value, str) else ">" for value in rows[0])
    print("\n".join(columns(headers, cells, 160, align=align)))
