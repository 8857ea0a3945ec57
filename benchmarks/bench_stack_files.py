"""Stack-file reading benchmark: what the checks of model/stack_files.py cost over a plain YAML load.

`load_yaml` composes the document, walks it once (values JSON can carry, unique keys, alias expansion
bounded) and then constructs it. Ratios are against `yaml.safe_load` of the same text, in this run.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import _cli  # benchmarks/_cli.py: the script's own folder is first on sys.path
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from model.stack_files import StackFileError, load_yaml  # noqa: E402

ROUNDS = 20


def _app(i: int) -> str:
    return f"""\
    - name: app-{i}
      namespace: app-{i}
      replicas: 3
      image:
        repository: registry.example.com/team/app-{i}
        context: examples/app
      source:
        repoURL: https://github.com/example-org/gitops-deploy.git
        targetRevision: main
        path: examples/app/chart
        type: helm
      health:
        url: https://app-{i}.example.com/healthz
        headers:
          X-Api-Key:
            secure: v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=
"""


def stack(apps: int) -> str:
    head = "config:\n  gitops-deploy:registry:\n    server: registry.example.com\n    username: ci\n"
    return head + "  gitops-deploy:apps:\n" + "".join(_app(i) for i in range(apps))


def laughs(levels: int) -> str:
    """A file whose aliases expand 10x per level (a "billion laughs" at 9 levels)."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for n in range(1, levels):
        lines.append(f"a{n}: &a{n} [" + ", ".join([f"*a{n - 1}"] * 10) + "]")
    return "\n".join(lines) + "\n"


def _median_ms(fn: Callable[[], object]) -> float:
    times = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    print(f"case                          safe_load ms  load_yaml ms  ratio   ({ROUNDS} rounds, median)")
    for apps in (1, 10, 200):
        text = stack(apps)
        plain = _median_ms(partial(yaml.safe_load, text))
        checked = _median_ms(partial(load_yaml, text, "Pulumi.bench.yaml"))
        print(f"stack file, {apps:>3} app(s)          {plain:10.2f}  {checked:12.2f}  {checked / plain:5.2f}")
    text = laughs(9)
    start = time.perf_counter()
    try:
        load_yaml(text, "Pulumi.laughs.yaml")
    except StackFileError as exc:
        refused = f"refused ({exc})"
    else:
        refused = "ACCEPTED"
    print(f"alias bomb (10^9 values): {refused} in {(time.perf_counter() - start) * 1000:.1f} ms")


if __name__ == "__main__":
    _cli.parse(__doc__)
    main()
