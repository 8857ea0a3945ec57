"""Program benchmark: the real program under mocks for 1, 10 and 100 apps, a fresh process each: wall time
and peak memory next to the import floor's (a process that only imports the Pulumi SDKs), in this run."""

from __future__ import annotations

import copy
import json
import tempfile
import time
from pathlib import Path

import _harness

from model.stack_files import read_stack_config
from tests.support.example_project import FIXTURES

PROGRAM = f"""
sys.path.insert(0, {str(_harness.ROOT)!r})
from policy_check.simulate import simulate
config = json.load(open(sys.argv[1]))
t1 = time.perf_counter()
out["resources"] = len(simulate("staging", config=config).resources)
"""


def _program(apps: int, runs: int) -> dict[str, float]:
    """The example staging stack (tests/fixtures/stacks) with `apps` apps, alternating Helm and kustomize."""
    config = read_stack_config("staging", FIXTURES)
    config.pop("gitops-deploy:promote", None)  # measured building its images, the costlier case
    templates = config["gitops-deploy:apps"]
    config["gitops-deploy:apps"] = [copy.deepcopy(templates[i % len(templates)]) for i in range(apps)]
    for i, app in enumerate(config["gitops-deploy:apps"]):
        app["name"], app["image"]["repository"] = f"app-{i:03d}", f"registry.example.com/platform/app-{i:03d}"
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "config.json").write_text(json.dumps(config))
        return _harness.interpreter(runs, PROGRAM, str(Path(tmp, "config.json")))


def main() -> None:
    runs = _harness.parse(__doc__, runs=3)
    started, floor = time.perf_counter(), _harness.interpreter(runs)
    ft, fp = floor["total_s"], floor["peak_mib"]
    print(f"import floor (pulumi + pulumi_kubernetes + pulumi_docker): {ft * 1e3:.0f} ms, peak {fp:.0f} MiB")
    rows = []
    for apps in (1, 10, 100):
        r = _program(apps, runs)
        ev, t, peak = r["eval_s"] * 1e3, r["total_s"], r["peak_mib"]
        rows.append([apps, r["resources"], ev, ev / apps, t * 1e3, t / ft, peak, peak / fp])
    headers = ["apps", "resources", "eval ms", "ms/app", "total ms", "x floor", "peak MiB", "x floor"]
    _harness.table(headers, rows, "d d .0f .1f .0f .2f .0f .2f")
    print(f"(best of {runs} runs each; benchmark took {time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()
