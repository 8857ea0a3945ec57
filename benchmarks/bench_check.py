"""The CLI-free check of 1, 10, 50 and 200 apps (alternating Helm and kustomize), rendered and not, each
in a fresh interpreter, next to its same-run floor on the same apps: the program floor (a minimal program
registering the same resources, plain inputs, under the same mocks and SDK) + the pack floor (a pack of
one trivial policy, started as the CLI starts packs, fed the same resources) + the render floor (the
engines' own renders: one Helm process for every chart, `kubectl kustomize` per overlay, two at a time)."""

from __future__ import annotations

import copy
import importlib
import json
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import _harness
import pulumi
from pulumi.runtime import mocks, settings
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from model.names import PROJECT
from model.stack_files import read_stack_config
from policy_check.analyzer_client import PACK_DIR, PolicyInput, PolicyPackServer, pack_python
from policy_check.inputs import sim_inputs
from policy_check.render_common import PYTHON
from policy_check.render_kustomize import kubectl_path
from policy_check.report import CheckReport
from policy_check.simulate import ProgramMocks, simulate
from tests.support.example_project import OVERLAY, make_example_project

KUSTOMIZE = {"path": OVERLAY, "type": "kustomize", "imageName": "app", "workload": "app"}
SIZES = (1, 10, 50, 200)
SLOW = (200, True)
"""The case measured once, not best of N: 200 rendered apps."""
_IMPORTS = f"""
sys.path.insert(0, {str(_harness.ROOT)!r})
from pathlib import Path
from policy_check.check import run_check
"""
CHECK = (
    _IMPORTS
    + f"""
project, render, dump = Path(sys.argv[1]), sys.argv[2] == "1", sys.argv[3]
config = json.loads((project / "config.json").read_text())
for key in ("cold_s", "warm_s"):  # a fresh interpreter's first check (as the CLI's), then another
    t1 = time.perf_counter()
    report = run_check("dev", project_dir=project, config=config, render=render)
    out[key] = time.perf_counter() - t1
out["resources"], out["render_errors"] = report.resources, len(report.render_errors)
if dump:  # what the floor is fed, after the timing
    sys.path.insert(0, {str(_harness.ROOT / "benchmarks")!r})
    from bench_check import write_fed
    write_fed(Path(dump), project, config, report)
"""
)
FLOOR = (
    _IMPORTS
    + f"""
sys.path.insert(0, {str(_harness.ROOT / "benchmarks")!r})
from bench_check import pack_floor, program_floor, render_floor
fed = json.loads(Path(sys.argv[1]).read_text())
t1 = time.perf_counter()
out["program_cold_s"] = program_floor(fed["resources"])
out["program_s"] = program_floor(fed["resources"])
out["pack_s"] = pack_floor(fed["analyze"], fed["whole"], Path(sys.argv[2]))
out["render_s"] = render_floor(fed["renders"])
"""
)


TRIVIAL_PACK = """
from pulumi_policy import EnforcementLevel, PolicyPack, ResourceValidationPolicy

passes = ResourceValidationPolicy(name="passes", description="passes", validate=lambda args, report: None)
PolicyPack(name="floor", policies=[passes], enforcement_level=EnforcementLevel.ADVISORY)
"""
HELM_RENDER = """
import sys, helm_python as helm
for chart, release in zip(sys.argv[1::2], sys.argv[2::2]):
    with helm.Chart.load(chart) as loaded:
        loaded.render({}, name=release, namespace="default", is_install=True)
"""


def write_fed(path: Path, project: Path, config: dict[str, Any], report: CheckReport) -> None:
    """What the floor is fed: the program's resources, the pack's inputs and the renders of this check."""
    sim = simulate("dev", project_dir=project, config=config)
    analyze, whole = sim_inputs(sim.resources)
    rendered = [
        PolicyInput(o.urn, o.type, o.name, o.manifest, parent=r.application_urn)
        for r in report.renders
        for o in r.objects
    ]
    fields = ("urn", "type", "name", "props", "parent")
    fed = {
        "resources": [
            {
                "urn": r.urn,
                "type": r.type,
                "name": r.name,
                "custom": r.custom,
                "parent": r.parent,
                "inputs": r.inputs,
            }
            for r in sim.resources
        ],
        "analyze": [{f: getattr(i, f) for f in fields} for i in [*analyze, *rendered]],
        "whole": [{f: getattr(i, f) for f in fields} for i in [*whole, *rendered]],
        "renders": [[r.engine, str(project / r.path), r.application] for r in report.renders],
    }
    path.write_text(json.dumps(fed, default=str))


def _module(type_: str) -> str:
    """The SDK module a program declaring a resource of this type token must load."""
    package, module, _ = type_.split(":")
    if package == "kubernetes":
        return (
            "pulumi_kubernetes.core.v1" if module.startswith("core/") else "pulumi_kubernetes.apiextensions"
        )
    return {"docker": "pulumi_docker", "pulumi-python": "pulumi.dynamic"}.get(package, "pulumi")


def program_floor(resources: list[dict[str, Any]]) -> float:
    """Seconds of a minimal program: the SDK modules loaded, then the same resources (type, name, parent)
    registered with plain inputs under the check's mocks and the SDK's own mock monitor."""
    start = time.perf_counter()
    for module in sorted({_module(r["type"]) for r in resources}):
        importlib.import_module(module)
    settings.ROOT.set(None)
    mocks.set_mocks(ProgramMocks(), project=PROJECT, stack="dev", preview=False)

    def program() -> None:
        made: dict[str, pulumi.Resource] = {}
        for r in resources:
            opts = pulumi.ResourceOptions(parent=made.get(r["parent"]))
            if r["type"].startswith("pulumi:providers:"):
                made[r["urn"]] = pulumi.ProviderResource(
                    r["type"].split(":")[2], r["name"], r["inputs"], opts
                )
            elif r["custom"]:
                made[r["urn"]] = pulumi.CustomResource(r["type"], r["name"], r["inputs"], opts)
            else:
                made[r["urn"]] = pulumi.ComponentResource(r["type"], r["name"], None, opts)

    _sync_await(run_pulumi_func(program))
    return time.perf_counter() - start


def pack_floor(analyze: list[dict[str, Any]], whole: list[dict[str, Any]], folder: Path) -> float:
    """Seconds of a pack of one trivial policy, started as the CLI starts packs, fed the same resources."""
    folder.mkdir(exist_ok=True)
    (folder / "__main__.py").write_text(TRIVIAL_PACK)
    venv = Path(pack_python(PACK_DIR)).parents[1]
    (folder / "PulumiPolicy.yaml").write_text(
        f"runtime:\n  name: python\n  options:\n    virtualenv: {venv}\n"
    )
    start = time.perf_counter()
    with PolicyPackServer(folder, stack="dev") as pack:
        for _ in pack.answers(PolicyInput(**r) for r in analyze):
            pass
        pack.analyze_stack(PolicyInput(**r) for r in whole)
    return time.perf_counter() - start


def render_floor(renders: list[tuple[str, str, str]]) -> float:
    """Seconds of the engines' own renders of the same apps: one Helm process for every chart (default
    values), next to `kubectl kustomize` of each overlay, two at a time (the machine's two cores)."""
    charts = [arg for engine, path, app in renders if engine == "helm" for arg in (path, app)]
    kubectl = str(kubectl_path())
    jobs = [[kubectl, "kustomize", path] for engine, path, _ in renders if engine == "kustomize"]
    jobs += [[PYTHON, "-I", "-c", HELM_RENDER, *charts]] if charts else []
    run = partial(subprocess.run, check=True, capture_output=True, timeout=600)
    start = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(run, reversed(jobs)))  # the Helm process first: the longest job
    return time.perf_counter() - start


def _project(root: Path, apps: int) -> Path:
    """The example project whose dev stack has `apps` apps (config.json: its config), as bench_program."""
    project = make_example_project(root)
    config = read_stack_config("dev", project)
    first = config["gitops-deploy:apps"][0]
    config["gitops-deploy:apps"] = [copy.deepcopy(first) for _ in range(apps)]
    for i, app in enumerate(config["gitops-deploy:apps"]):
        app["name"], app["replicas"] = f"app-{i:03d}", 3
        app["source"].update(KUSTOMIZE if i % 2 else {})
    (project / "config.json").write_text(json.dumps(config))
    return project


def _least(runs: int, code: str, *args: str) -> dict[str, float]:
    """Each figure's least disturbed value over `runs` fresh interpreters running `code`."""
    results = [_harness.interpreter(1, code, *args) for _ in range(runs)]
    return {key: min(r[key] for r in results) for key in results[0]}


def _case(apps: int, render: bool, runs: int, tmp: Path) -> dict[str, float]:
    """The check of `apps` apps, cold and warm, and its floor's parts, each the least of `runs`."""
    project, fed = _project(tmp / f"{apps}-{int(render)}", apps), tmp / f"fed-{apps}-{int(render)}.json"
    check = _least(1, CHECK, str(project), str(int(render)), str(fed))
    if runs > 1:
        again = _least(runs - 1, CHECK, str(project), str(int(render)), "")
        check = {key: min(value, again[key]) for key, value in check.items()}
    return {**check, **_least(runs, FLOOR, str(fed), str(tmp / "pack"))}


def _rows(render: bool, runs: int, tmp: Path) -> list[list[object]]:
    """The table's rows for each size, rendered or not; per app and linearity from the warm figures."""
    cases = {apps: _case(apps, render, 1 if (apps, render) == SLOW else runs, tmp) for apps in SIZES}
    per_app_at = cases[_harness.LINEAR_AT]["warm_s"] / _harness.LINEAR_AT
    rows: list[list[object]] = []
    for apps, c in cases.items():
        parts = c["pack_s"] + c["render_s"]
        cold, warm = c["program_cold_s"] + parts, c["program_s"] + parts
        rows.append(
            [
                apps,
                "yes" if render else "no",
                int(c["resources"]),
                c["cold_s"],
                cold,
                c["cold_s"] / cold,
                c["warm_s"],
                c["warm_s"] / apps * 1e3,
                c["warm_s"] / apps / per_app_at,
                c["program_s"],
                c["pack_s"],
                c["render_s"],
                warm,
                c["warm_s"] / warm,
                c["peak_mib"],
            ]
        )
    return rows


if __name__ == "__main__":
    runs = _harness.parse(__doc__, runs=3)
    with tempfile.TemporaryDirectory(prefix="bench-check-") as tmp:
        rows = _rows(False, runs, Path(tmp)) + _rows(True, runs, Path(tmp))
    headers = [
        "apps",
        "rendered",
        "resources",
        "check s",
        "floor s",
        "x floor",
        "warm check s",
        "ms/app",
        "x linear",
        "program",
        "pack",
        "render",
        "warm floor s",
        "x floor",
        "peak MiB",
    ]
    _harness.table(headers, rows, "d - d .2f .2f .2f .2f .1f .2f .2f .2f .2f .2f .2f .0f")
    print(
        f"(least of {runs} fresh interpreters each, of one for 200 rendered apps; check: a fresh "
        "interpreter's first, as the CLI runs; warm: its second; x linear: per app against per app at "
        f"{_harness.LINEAR_AT} apps)"
    )
