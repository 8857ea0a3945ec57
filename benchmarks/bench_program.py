"""Program benchmark: what every run of the program pays, next to the import floor (a fresh interpreter that
only imports the Pulumi SDKs), in this run: the program under mocks for 1, 10 and 100 apps, a fresh process
each (wall time, peak memory), and hadolint for 1, 10 and 50 Dockerfiles, which every preview pays."""

from __future__ import annotations

import copy
import json
import shutil
import tempfile
import time
from functools import partial
from pathlib import Path

import _harness

from clients.dockerlint import lint_stack
from clients.hadolint import find_hadolint
from model.config import StackConfig, parse_config
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


def _dockerfiles(project: Path, count: int) -> StackConfig:
    """A stack of `count` apps, each with its own copy of the example Dockerfile."""
    config = read_stack_config("dev", FIXTURES)
    apps, app = [], config["gitops-deploy:apps"][0]
    for i in range(count):
        shutil.copy(_harness.ROOT / "examples/app/Dockerfile", project / f"{i}.Dockerfile")
        image = {
            "repository": f"registry.example.com/b/app-{i}",
            "context": ".",
            "dockerfile": f"{i}.Dockerfile",
        }
        apps.append({**app, "name": f"app-{i}", "image": image})
    return parse_config({"registry": config["gitops-deploy:registry"], "apps": apps}, project)


if __name__ == "__main__":
    runs = _harness.parse(__doc__, runs=3)
    started, floor = time.perf_counter(), _harness.interpreter(runs)
    ft, fp, fresh = floor["total_s"], floor["peak_mib"], floor["wall_s"]
    print(f"import floor: {ft * 1e3:.0f} ms, peak {fp:.0f} MiB; fresh interpreter: {fresh * 1e3:.0f} ms")
    rows = []
    for apps in (1, 10, 100):
        r = _program(apps, runs)
        ev, t, peak = r["eval_s"] * 1e3, r["total_s"], r["peak_mib"]
        rows.append([apps, r["resources"], ev, ev / apps, t * 1e3, t / ft, peak, peak / fp])
    headers = ["apps", "resources", "eval ms", "ms/app", "total ms", "x floor", "peak MiB", "x floor"]
    _harness.table(headers, rows, "d d .0f .1f .0f .2f .0f .2f")
    binary, rows = find_hadolint(), []
    for count in (1, 10, 50):
        with tempfile.TemporaryDirectory() as tmp:
            lint, _ = _harness.best(
                partial(lint_stack, _dockerfiles(Path(tmp), count), binary=binary), max(runs, 5)
            )
        rows.append([count, lint * 1e3, lint * 1e3 / count, lint / ft, lint / fresh, lint / count / fresh])
    print(
        f"hadolint ({binary}), best of {max(runs, 5)}; one hadolint process per program run, in every preview"
    )
    headers = ["Dockerfiles", "lint ms", "ms/file", "x import floor", "lint/fresh", "per file/fresh"]
    _harness.table(headers, rows, "d .1f .2f .2f .3f .4f")
    print(f"(best of {runs} runs each; benchmark took {time.perf_counter() - started:.1f} s)")
