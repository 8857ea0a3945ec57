"""Policy pack throughput over gRPC (1,000 synthetic resources); the policy check's time, 1 and 50 apps."""

from __future__ import annotations

import copy
import tempfile
import time
from functools import partial
from pathlib import Path
from statistics import mean

import _harness

from model.stack_files import read_stack_config
from policy_check.analyzer_client import PolicyInput, PolicyPackServer
from policy_check.check import CheckError, run_check
from policy_check.simulate import ProgramFailed
from tests.support.example_project import make_example_project
from tests.support.policy_resources import application, health_check, hpa, image_size, workload

N = 1_000
KUSTOMIZE = {"path": "examples/app/kustomize", "type": "kustomize", "imageName": "app", "workload": "app"}


def bench_grpc() -> None:
    """Applications, workloads, HPAs, ImageSizes and HealthChecks, the types the pack judges, through it."""
    resources: list[PolicyInput] = []
    for i in range(N // 5):
        app = application(f"app{i}", engine="helm" if i % 2 else "kustomize")
        resources += [app, workload(name=f"w{i}", parent=app.urn), hpa(3, f"h{i}")]
        resources += [image_size(10**8, f"app{i}"), health_check((app.urn,), f"app{i}")]
    t0 = time.perf_counter()
    with PolicyPackServer(stack="prod") as pack:
        started = time.perf_counter()
        analysed, _ = _harness.timed(lambda: [pack.analyze(r) for r in resources])
        stacked, _ = _harness.timed(lambda: pack.analyze_stack(resources))
    print(f"pack start (spawn, port, GetAnalyzerInfo, Configure): {started - t0:.3f}s")
    print(f"Analyze: {N} resources in {analysed:.3f}s = {N / analysed:,.0f} resources/s")
    print(f"AnalyzeStack: {N} resources in {stacked:.3f}s = {N / stacked:,.0f} resources/s")


def bench_check(n: int, render: bool) -> None:
    """The check of the example project whose dev stack has `n` apps, alternating Helm and kustomize."""
    with tempfile.TemporaryDirectory() as tmp:
        config = read_stack_config("dev", make_example_project(Path(tmp)))
        first = config["gitops-deploy:apps"][0]
        apps = config["gitops-deploy:apps"] = [copy.deepcopy(first) for _ in range(n)]
        for i, app in enumerate(apps):
            app["name"], app["replicas"] = f"app-{i:02d}", 3
            app["source"].update(KUSTOMIZE if i % 2 else {})
        case = f"policy check, {n} app(s), render={render}"
        try:
            wall, report = _harness.timed(
                partial(run_check, "dev", project_dir=Path(tmp), config=config, render=render)
            )
        except (CheckError, ProgramFailed) as exc:
            print(f"{case}: failed ({str(exc).splitlines()[0]})")
            return
    errors = len(report.render_errors)
    print(f"{case}: {wall:.2f}s wall, {report.resources} resources, {errors} render errors")
    for engine in ("helm", "kustomize"):
        times = [r.seconds for r in report.renders if r.engine == engine and r.status == "rendered"]
        if times:
            print(f"  render per app ({engine}): {mean(times):.3f}s mean over {len(times)}")


if __name__ == "__main__":
    _harness.parse(__doc__)
    bench_grpc()
    for n, render in ((1, False), (1, True), (50, False), (50, True)):
        bench_check(n, render)
