"""Stack-file benchmark: the checked YAML reader of model/stack_files.py next to a plain `yaml.safe_load`."""

from __future__ import annotations

import copy
import time
from functools import partial

import _harness
import yaml

from model.stack_files import StackFileError, load_yaml, read_stack_config
from tests.support.example_project import FIXTURES

ROUNDS = 20
APP = read_stack_config("dev", FIXTURES)["gitops-deploy:apps"][0]  # the example stack's first app
APP["health"]["headers"] = {"X-Api-Key": {"secure": "v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}}


def _stack(apps: int) -> str:
    """A stack file of `apps` copies of the example app, with a secret header each."""
    registry = {"server": "registry.example.com", "username": "ci"}
    app_list = [{**copy.deepcopy(APP), "name": f"app-{i}"} for i in range(apps)]
    config = {"gitops-deploy:registry": registry, "gitops-deploy:apps": app_list}
    return yaml.safe_dump({"config": config}, sort_keys=False)


LAUGHS = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"a{n}: &a{n} [" + ", ".join([f"*a{n - 1}"] * 10) + "]\n" for n in range(1, 9)
)
"""A "billion laughs": aliases that expand 10x per level, over 9 levels."""

if __name__ == "__main__":
    _harness.parse(__doc__)
    rows = []
    for apps in (1, 10, 200):
        text = _stack(apps)
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
