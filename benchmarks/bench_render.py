"""Render benchmark: wall time per app for Helm (worker process) and kustomize (`kubectl kustomize`).

Each figure is the median of several runs, printed next to its floor measured in the same run (starting
the Helm worker's interpreter and importing helm_python; starting kubectl), as ratios.
"""

from __future__ import annotations

import statistics
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

from model.stack_files import read_stack_config  # noqa: E402
from policy_check.render import RenderResult, render_all, validate_object  # noqa: E402
from policy_check.render_common import PYTHON  # noqa: E402
from policy_check.render_kustomize import kubectl_path  # noqa: E402
from policy_check.render_source import Repository, this_repository  # noqa: E402
from policy_check.simulate import SimResource  # noqa: E402
from tests.support.applications import stack_applications  # noqa: E402
from tests.support.example_project import STACKS, make_example_project  # noqa: E402

RUNS = 9


def _median(action: Callable[[], object], runs: int = RUNS) -> float:
    """Median wall time of `action`, in seconds."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _here(project: Path) -> Repository:
    """This repository as the example stacks name it (their gitops-deploy:argocd.repoURL)."""
    return this_repository(project, read_stack_config("staging", project))


def main() -> None:
    """Print per-app render times and their floors, on the example stacks (tests/fixtures/stacks)."""
    with tempfile.TemporaryDirectory(prefix="bench-render-") as tmp:
        _measure(make_example_project(Path(tmp)))


def _measure(project: Path) -> None:
    staging = stack_applications("staging", project)
    here = _here(project)
    by_engine: dict[str, tuple[SimResource, RenderResult]] = {}
    for resource in staging:
        [result] = render_all([resource], project, "staging", repository=here)
        assert result.status == "rendered", result.reason
        by_engine[result.engine] = (resource, result)

    helm_floor = _median(lambda: subprocess.run([PYTHON, "-I", "-c", "import helm_python"], check=True))
    kubectl = str(kubectl_path())
    kubectl_floor = _median(
        lambda: subprocess.run([kubectl, "version", "--client"], check=True, capture_output=True)
    )
    objects = [o.manifest for _, r in by_engine.values() for o in r.objects]
    validate = _median(lambda: [validate_object(m) for m in objects]) / len(objects)

    print(f"render per app (median of {RUNS}, staging stack, Kubernetes-schema validation included)")
    for engine, floor, floor_name in (
        ("helm", helm_floor, "worker start + import helm_python"),
        ("kustomize", kubectl_floor, "kubectl start"),
    ):
        resource, result = by_engine[engine]
        seconds = _median(partial(render_all, [resource], project, "staging", repository=here))
        print(
            f"  {engine:<9} {result.application:<4} {len(result.objects)} objects  {seconds * 1000:7.1f} ms"
            f"   floor ({floor_name}) {floor * 1000:6.1f} ms   ratio {seconds / floor:4.2f}x"
        )
    print(f"  schema validation per object: {validate * 1000:.1f} ms")
    for stack in STACKS:
        apps = stack_applications(stack, project)
        seconds = _median(partial(render_all, apps, project, stack, repository=here), runs=3)
        print(f"  stack {stack:<8} {len(apps)} app(s)  {seconds * 1000:7.1f} ms")


if __name__ == "__main__":
    _cli.parse(__doc__)
    main()
