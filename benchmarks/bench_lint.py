"""Lint benchmark: hadolint's cost per Dockerfile next to the program's import floor.

Every preview pays the lint, so it must stay small next to what every run already pays: a fresh
interpreter importing pulumi, pulumi_kubernetes and pulumi_docker. Both are measured in this run.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import _cli  # benchmarks/_cli.py: the script's own folder is first on sys.path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from clients.dockerlint import lint_stack  # noqa: E402
from clients.hadolint import find_hadolint  # noqa: E402
from model.config import StackConfig, parse_config  # noqa: E402

_FLOOR = "import pulumi, pulumi_kubernetes, pulumi_docker"


def _best(fn: Callable[[], object], runs: int) -> float:
    """Best wall time of several runs, in seconds: the least disturbed by other load."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def _stack(project: Path, count: int) -> StackConfig:
    """A stack of `count` apps, each with its own copy of the example Dockerfile."""
    apps = []
    for i in range(count):
        shutil.copy(ROOT / "examples/app/Dockerfile", project / f"app-{i}.Dockerfile")
        apps.append(
            {
                "name": f"app-{i}",
                "namespace": "bench",
                "image": {
                    "repository": f"registry.example.com/bench/app-{i}",
                    "context": ".",
                    "dockerfile": f"app-{i}.Dockerfile",
                },
                "source": {
                    "repoURL": "https://x.example/r.git",
                    "targetRevision": "main",
                    "path": "c",
                    "type": "helm",
                },
                "health": {"url": "https://x.example/healthz"},
            }
        )
    raw = {"registry": {"server": "registry.example.com", "username": "ci"}, "apps": apps}
    return parse_config(raw, project)


def main() -> None:
    runs = _cli.parse(__doc__, runs=5).runs
    started = time.perf_counter()
    binary = find_hadolint()
    floor = _best(lambda: subprocess.run([sys.executable, "-c", _FLOOR], check=True, timeout=120), runs)
    print(f"hadolint: {binary}")
    print(f"import floor (fresh interpreter: {_FLOOR}): {floor * 1000:.0f} ms")
    print(f"{'Dockerfiles':>11} {'lint ms':>8} {'ms/file':>8} {'lint/floor':>10} {'per file/floor':>14}")
    for count in (1, 10, 50):
        with tempfile.TemporaryDirectory() as tmp:
            cfg = _stack(Path(tmp), count)
            lint = _best(partial(lint_stack, cfg, binary=binary), runs)
        print(
            f"{count:>11} {lint * 1000:>8.1f} {lint * 1000 / count:>8.2f} "
            f"{lint / floor:>10.3f} {lint / count / floor:>14.4f}"
        )
    took = time.perf_counter() - started
    print(f"(best of {runs} runs each; one hadolint process per program run; benchmark took {took:.1f} s)")


if __name__ == "__main__":
    main()
