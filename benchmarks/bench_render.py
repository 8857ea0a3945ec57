"""Render benchmark: the render of one Application next to the engine's own render of the same source in the
same run (Helm: a worker process importing helm_python and rendering the same chart with the same values;
kustomize: `kubectl kustomize` of the same kustomization), each engine's start, and 50 apps rendered at
once next to the engines doing the same 50 renders, alone, on the same pool."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import _harness
import yaml

from model.stack_files import read_stack_config
from policy_check.render import render_all
from policy_check.render_common import MAX_RENDERS_IN_PARALLEL, PYTHON
from policy_check.render_kustomize import kubectl_path, kustomization
from policy_check.render_source import this_repository
from policy_check.simulate import SimResource
from tests.support.applications import application, stack_applications
from tests.support.example_project import make_example_project

RUNS = 9
APPS = 50
KUSTOMIZE = {"path": "examples/app/kustomize", "type": "kustomize", "imageName": "app", "workload": "app"}
HELM_ALONE = """
import json, sys
import helm_python as helm
for chart, values, release, namespace in json.loads(sys.argv[1]):
    with helm.Chart.load(chart) as loaded:
        loaded.render(values, name=release, namespace=namespace, is_install=True)
"""
"""Helm's own render: a fresh interpreter, helm_python, each chart loaded and rendered with its values."""


def _source(app: SimResource, project: Path) -> tuple[Path, dict[str, Any], str, str]:
    """(folder, `spec.source`, app, namespace) of an Application."""
    spec = app.inputs["spec"]
    name = str(app.inputs["metadata"]["name"])
    return project / spec["source"]["path"], spec["source"], name, spec["destination"]["namespace"]


def _engines_alone(apps: list[SimResource], project: Path, workdir: Path) -> Callable[[], object]:
    """The engines' own renders of `apps` on the same pool as the check's: one Helm process for every
    chart, one `kubectl kustomize` of each app's kustomization."""
    charts, overlays = [], []
    for i, app in enumerate(apps):
        folder, source, name, namespace = _source(app, project)
        if "kustomize" in source:
            built = workdir / f"k{i}"
            built.mkdir(exist_ok=True)
            doc = kustomization(folder.resolve(), built, source["kustomize"])
            (built / "kustomization.yaml").write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
            overlays.append([str(kubectl_path()), "kustomize", str(built)])
        else:
            charts.append([str(folder), source["helm"]["valuesObject"], name, namespace])
    commands = [[PYTHON, "-I", "-c", HELM_ALONE, json.dumps(charts)]] if charts else []
    commands += overlays
    run = partial(subprocess.run, check=True, capture_output=True, timeout=120)

    def render() -> None:
        with ThreadPoolExecutor(MAX_RENDERS_IN_PARALLEL) as pool:
            list(pool.map(run, commands))

    return render


def _paired(ours: Callable[[], object], floor: Callable[[], object], runs: int) -> tuple[float, float]:
    """The least wall seconds of `runs` calls of each, the two taking turns so that load hits both alike."""
    times = [(_harness.timed(ours)[0], _harness.timed(floor)[0]) for _ in range(runs)]
    return min(t for t, _ in times), min(t for _, t in times)


def _fifty(project: Path) -> list[SimResource]:
    """APPS apps of the dev stack, alternating Helm and kustomize (as bench_policy.py's check)."""
    values = read_stack_config("dev", project)
    settings = {key: values.get(f"gitops-deploy:{key}") or {} for key in ("argocd", "cluster")}
    first = values["gitops-deploy:apps"][0]
    apps = []
    for i in range(APPS):
        app = copy.deepcopy(first)
        app["name"], app["replicas"] = f"app-{i:02d}", 3
        app["source"].update(KUSTOMIZE if i % 2 else {})
        apps.append(application("dev", settings, app))
    return apps


def _measure(project: Path, workdir: Path) -> None:
    here = this_repository(project, read_stack_config("staging", project))  # as the example stacks name it
    render = partial(render_all, project_dir=project, repository=here)
    starts = {
        "helm": [PYTHON, "-I", "-c", "import helm_python"],
        "kustomize": [str(kubectl_path()), "version", "--client"],
    }
    rows: list[tuple[object, ...]] = []
    for resource in stack_applications("staging", project):
        [result] = render([resource], stack="staging")
        assert result.status == "rendered", result.reason
        if result.engine in [row[0] for row in rows]:
            continue
        engine = partial(subprocess.run, starts[result.engine], check=True, capture_output=True)
        start, _ = _harness.best(engine, RUNS)
        alone = _engines_alone([resource], project, workdir)
        ours, floor = _paired(partial(render, [resource], stack="staging"), alone, RUNS)
        row = (result.engine, result.application, len(result.objects), ours * 1e3, floor * 1e3, ours / floor)
        rows.append((*row, start * 1e3))
    print(f"render of one Application (best of {RUNS}, staging stack; Kubernetes-schema validation included)")
    headers = ["engine", "app", "objects", "ours ms", "engine's own render ms", "ratio", "engine start ms"]
    _harness.table(headers, rows, "- - d .1f .1f .2f .1f")
    overlay = [str(kubectl_path()), "kustomize", str(project / KUSTOMIZE["path"])]
    bare, _ = _harness.best(partial(subprocess.run, overlay, check=True, capture_output=True), RUNS)
    print(f"  kubectl kustomize of the overlay alone, without the Application's options: {bare * 1e3:.1f} ms")
    apps = _fifty(project)
    results = render(apps, stack="dev")
    assert {r.status for r in results} == {"rendered"}, [r.reason for r in results if r.reason]
    ours, floor = _paired(partial(render, apps, stack="dev"), _engines_alone(apps, project, workdir), 3)
    pool = f"{MAX_RENDERS_IN_PARALLEL} at once, {os.cpu_count()} cores"
    print(f"{APPS} apps, half Helm, half kustomize (best of 3, {pool}):")
    each = f"{ours / APPS * 1e3:.1f} ms per app"
    print(f"  ours {ours:.2f} s ({each}), the engines alone on it {floor:.2f} s, ratio {ours / floor:.2f}x")


if __name__ == "__main__":
    _harness.parse(__doc__)
    with tempfile.TemporaryDirectory(prefix="bench-render-") as tmp:
        _measure(make_example_project(Path(tmp) / "project"), Path(tmp))
