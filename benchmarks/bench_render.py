"""Render benchmark: time per app for Helm (worker process) and kustomize (`kubectl kustomize`), next to
each engine's start (the worker's interpreter importing helm_python; kubectl), medians of this run."""

from __future__ import annotations

import subprocess
import tempfile
from functools import partial
from pathlib import Path

import _harness

from model.stack_files import read_stack_config
from policy_check.render import render_all, validate_object
from policy_check.render_common import PYTHON
from policy_check.render_kustomize import kubectl_path
from policy_check.render_source import this_repository
from tests.support.applications import stack_applications
from tests.support.example_project import STACKS, make_example_project

RUNS = 9


def _measure(project: Path) -> None:
    here = this_repository(project, read_stack_config("staging", project))  # as the example stacks name it
    render = partial(render_all, project_dir=project, repository=here)
    by_engine = {}
    for resource in stack_applications("staging", project):
        [result] = render([resource], stack="staging")
        assert result.status == "rendered", result.reason
        by_engine[result.engine] = (resource, result)
    floors: dict[str, tuple[str, list[str]]] = {
        "helm": ("worker start + import helm_python", [PYTHON, "-I", "-c", "import helm_python"]),
        "kustomize": ("kubectl start", [str(kubectl_path()), "version", "--client"]),
    }
    objects = [o.manifest for _, r in by_engine.values() for o in r.objects]
    validate, _ = _harness.median(lambda: [validate_object(m) for m in objects], RUNS)
    print(f"render per app (median of {RUNS}, staging stack, Kubernetes-schema validation included)")
    for engine, (floor_name, command) in floors.items():
        floor, _ = _harness.median(partial(subprocess.run, command, check=True, capture_output=True), RUNS)
        resource, result = by_engine[engine]
        seconds, _ = _harness.median(partial(render, [resource], stack="staging"), RUNS)
        print(
            f"  {engine:<9} {result.application:<4} {len(result.objects)} objects  {seconds * 1000:7.1f} ms"
            f"   floor ({floor_name}) {floor * 1000:6.1f} ms   ratio {seconds / floor:4.2f}x"
        )
    print(f"  schema validation per object: {validate / len(objects) * 1000:.1f} ms")
    for stack in STACKS:
        apps = stack_applications(stack, project)
        seconds, _ = _harness.median(partial(render, apps, stack=stack), 3)
        print(f"  stack {stack:<8} {len(apps)} app(s)  {seconds * 1000:7.1f} ms")


if __name__ == "__main__":
    _harness.parse(__doc__)
    with tempfile.TemporaryDirectory(prefix="bench-render-") as tmp:
        _measure(make_example_project(Path(tmp)))
