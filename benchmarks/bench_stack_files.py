"""Stack-file benchmark: the checked YAML reader of model/stack_files.py next to a plain `yaml.safe_load`."""

from __future__ import annotations

import time
from functools import partial

import _harness
import yaml

from model.stack_files import StackFileError, load_yaml

ROUNDS = 20
HEAD = "config:\n  gitops-deploy:registry:\n    server: registry.example.com\n    username: ci\n"
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
LAUGHS = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"a{n}: &a{n} [" + ", ".join([f"*a{n - 1}"] * 10) + "]\n" for n in range(1, 9)
)
"""A "billion laughs": aliases that expand 10x per level, over 9 levels."""

if __name__ == "__main__":
    _harness.parse(__doc__)
    rows = []
    for apps in (1, 10, 200):
        text = HEAD + "  gitops-deploy:apps:\n" + "".join(APP.format(i=i) for i in range(apps))
        plain, _ = _harness.median(partial(yaml.safe_load, text), ROUNDS)
        checked, _ = _harness.median(partial(load_yaml, text, "Pulumi.bench.yaml"), ROUNDS)
        rows.append([f"stack file, {apps:>3} app(s)", plain * 1e3, checked * 1e3, checked / plain])
    _harness.table(
        [f"case ({ROUNDS} rounds, median)", "safe_load ms", "load_yaml ms", "ratio"], rows, "- .2f .2f .2f"
    )
    start = time.perf_counter()
    try:
        load_yaml(LAUGHS, "Pulumi.laughs.yaml")
        refused = "ACCEPTED"
    except StackFileError as exc:
        refused = f"refused ({exc})"
    print(f"alias bomb (10^9 values): {refused} in {(time.perf_counter() - start) * 1000:.1f} ms")
