"""Stack-file reading benchmark: what the checks of model/stack_files.py cost over a plain YAML load.

`load_yaml` composes the document, walks it once (values JSON can carry, unique keys, alias expansion
bounded) and then constructs it. Ratios are against `yaml.safe_load` of the same text, in this run.
"""

from __future__ import annotations

import time
from functools import partial

import _harness
import yaml

from model.stack_files import StackFileError, load_yaml

ROUNDS = 20
APP = """\
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
HEAD = """\
config:
  gitops-deploy:registry:
    server: registry.example.com
    username: ci
  gitops-deploy:apps:
"""


def laughs(levels: int) -> str:
    """A file whose aliases expand 10x per level (a "billion laughs" at 9 levels)."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{n}: &a{n} [" + ", ".join([f"*a{n - 1}"] * 10) + "]" for n in range(1, levels)]
    return "\n".join(lines) + "\n"


def main() -> None:
    rows = []
    for apps in (1, 10, 200):
        text = HEAD + "".join(APP.format(i=i) for i in range(apps))
        plain, _ = _harness.median(partial(yaml.safe_load, text), ROUNDS)
        checked, _ = _harness.median(partial(load_yaml, text, "Pulumi.bench.yaml"), ROUNDS)
        rows.append([f"stack file, {apps:>3} app(s)", plain * 1e3, checked * 1e3, checked / plain])
    print(f"({ROUNDS} rounds, median)")
    _harness.table(["case", "safe_load ms", "load_yaml ms", "ratio"], rows, "- .2f .2f .2f")
    start = time.perf_counter()
    try:
        load_yaml(laughs(9), "Pulumi.laughs.yaml")
        refused = "ACCEPTED"
    except StackFileError as exc:
        refused = f"refused ({exc})"
    print(f"alias bomb (10^9 values): {refused} in {(time.perf_counter() - start) * 1000:.1f} ms")


if __name__ == "__main__":
    _harness.parse(__doc__)
    main()
