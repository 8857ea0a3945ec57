"""Policy pack throughput over gRPC (1,000 synthetic resources); offline check wall time for 1 and 50 apps."""

from __future__ import annotations

import copy
import sys
import tempfile
import time
from pathlib import Path
from statistics import mean
from typing import Any

import _cli  # benchmarks/_cli.py: the script's own folder is first on sys.path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from model.stack_files import read_stack_config
from policy_check.analyzer_client import PolicyInput, PolicyPackServer
from policy_check.check import CheckError, run_check
from policy_check.simulate import ProgramFailed
from tests.support.example_project import make_example_project
from tests.support.policy_resources import application, health_check, hpa, image_size, workload

N = 1_000


def synthetic(n: int) -> list[PolicyInput]:
    """A mix of the types the pack judges: Applications, workloads, HPAs, ImageSizes and HealthChecks."""
    out: list[PolicyInput] = []
    for i in range(n // 5):
        app = application(f"app{i}", engine="helm" if i % 2 else "kustomize")
        out += [app, workload(name=f"w{i}", parent=app.urn), hpa(3, f"h{i}"), image_size(10**8, f"app{i}")]
        out.append(health_check((app.urn,), f"app{i}"))
    return out[:n]


def bench_grpc() -> None:
    resources = synthetic(N)
    t0 = time.perf_counter()
    with PolicyPackServer(stack="prod") as pack:
        started = time.perf_counter()
        for r in resources:
            pack.analyze(r)
        analysed = time.perf_counter()
        pack.analyze_stack(resources)
        stacked = time.perf_counter()
    print(f"pack start (spawn, port, GetAnalyzerInfo, Configure): {started - t0:.3f}s")
    print(
        f"Analyze: {N} resources in {analysed - started:.3f}s = {N / (analysed - started):,.0f} resources/s"
    )
    took = stacked - analysed
    print(f"AnalyzeStack: {N} resources in {took:.3f}s = {N / took:,.0f} resources/s")


def _project(root: Path, n: int) -> dict[str, Any]:
    """The example project (tests/fixtures/stacks) whose dev stack has `n` apps, alternating Helm and the
    shared kustomize overlay, and that stack's config."""
    make_example_project(root)
    config = read_stack_config("dev", root)
    base = config["gitops-deploy:apps"][0]
    apps = []
    for i in range(n):
        app = copy.deepcopy(base)
        app["name"], app["replicas"] = f"app-{i:02d}", 3
        if i % 2:
            kustomize = {
                "path": "examples/app/kustomize",
                "type": "kustomize",
                "imageName": "app",
                "workload": "app",
            }
            app["source"].update(kustomize)
        apps.append(app)
    config["gitops-deploy:apps"] = apps
    return config


def bench_check() -> None:
    for n in (1, 50):
        with tempfile.TemporaryDirectory() as tmp:
            config = _project(Path(tmp), n)
            for render in (False, True):
                t0 = time.perf_counter()
                try:
                    report = run_check("dev", project_dir=Path(tmp), config=config, render=render)
                except (CheckError, ProgramFailed) as exc:
                    print(f"offline check, {n} app(s), render={render}: failed ({str(exc).splitlines()[0]})")
                    continue
                wall = time.perf_counter() - t0
                print(
                    f"offline check, {n} app(s), render={render}: {wall:.2f}s wall, "
                    f"{report.resources} resources, {len(report.render_errors)} render errors"
                )
                for engine in ("helm", "kustomize"):
                    done = [r for r in report.renders if r.engine == engine and r.status == "rendered"]
                    times = [r.seconds for r in done]
                    if times:
                        print(f"  render per app ({engine}): {mean(times):.3f}s mean over {len(times)}")


if __name__ == "__main__":
    _cli.parse(__doc__)
    bench_grpc()
    bench_check()
