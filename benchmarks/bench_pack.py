"""Policy pack throughput over gRPC, against a trivial pack (one policy judging nothing) and against the
pack's own policies judging nothing (what the SDK spends on that many policies), every pack started as the
CLI starts packs (python -m pulumi.policy <engine> <folder>) in this run and fed the same resources: Analyze
per resource and AnalyzeStack once, resources/s and the ratio to the trivial pack."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from functools import partial
from pathlib import Path
from typing import Any

import _harness

from policy_check.analyzer_client import PACK_DIR, PolicyInput, PolicyPackServer, pack_python
from tests.support.policy_resources import application, health_check, hpa, image_size, workload

N = 1_000
TRIVIAL = """\
from pulumi_policy import EnforcementLevel, PolicyPack, ResourceValidationPolicy

PolicyPack(
    name="trivial",
    policies=[
        ResourceValidationPolicy(name="trivial", description="Judges nothing.", validate=lambda *_: None)
    ],
    enforcement_level=EnforcementLevel.ADVISORY,
)
"""
SAME_SHAPE = f"""\
import sys
sys.path.insert(0, {str(PACK_DIR)!r})
from pulumi_policy import EnforcementLevel, PolicyPack, ResourceValidationPolicy, StackValidationPolicy
from rules import POLICIES
from rules.names import PROJECT

def nothing(*_):
    pass

def hollow(policy):
    kind = ResourceValidationPolicy if isinstance(policy, ResourceValidationPolicy) else StackValidationPolicy
    given = dict(enforcement_level=policy.enforcement_level, config_schema=policy.config_schema)
    return kind(name=policy.name, description=policy.description, validate=nothing, **given)

PolicyPack(name=PROJECT, policies=[hollow(p) for p in POLICIES], enforcement_level=EnforcementLevel.ADVISORY)
"""
"""The pack's policies (names, kinds, levels, config) judging nothing: what the SDK spends on this many."""


def _resources() -> list[PolicyInput]:
    """Applications, workloads, HPAs, ImageSizes and HealthChecks, the types the pack judges."""
    resources: list[PolicyInput] = []
    for i in range(N // 5):
        app = application(f"app{i}", engine="helm" if i % 2 else "kustomize")
        resources += [app, workload(name=f"w{i}", parent=app.urn), hpa(3, f"h{i}")]
        resources += [image_size(10**8, f"app{i}"), health_check((app.urn,), f"app{i}")]
    return resources


def _analyze_each(pack: PolicyPackServer, resources: Sequence[PolicyInput]) -> None:
    for resource in resources:
        pack.analyze(resource)


def _throughputs(folders: Mapping[str, Path], resources: Sequence[PolicyInput], runs: int) -> list[list[Any]]:
    """Each pack's start seconds and resources/s through Analyze and AnalyzeStack, the best of `runs` rounds;
    every pack runs at once and the rounds interleave them, so that load on the machine hits each alike."""
    times: dict[str, list[list[float]]] = {name: [[], [], []] for name in folders}
    with ExitStack() as stack:
        packs = {}
        for name, folder in folders.items():
            start, packs[name] = _harness.timed(
                partial(stack.enter_context, PolicyPackServer(folder, stack="prod"))
            )
            times[name][0].append(start)
        for _ in range(runs):
            for name, pack in packs.items():
                times[name][1].append(_harness.timed(partial(_analyze_each, pack, resources))[0])
                times[name][2].append(_harness.timed(partial(pack.analyze_stack, resources))[0])
    return [
        [name, start[0], len(resources) / min(one), len(resources) / min(whole)]
        for name, (start, one, whole) in times.items()
    ]


if __name__ == "__main__":
    runs = _harness.parse(__doc__, runs=5)
    resources = _resources()
    folders: dict[str, Path] = {}
    with tempfile.TemporaryDirectory() as tmp:
        venv = Path(pack_python(PACK_DIR)).parents[1]  # the pack's own interpreter, for every pack
        for name, main in (
            ("trivial pack (one policy)", TRIVIAL),
            ("same policies, judging nothing", SAME_SHAPE),
        ):
            folder = folders[name] = Path(tmp, str(len(folders)))
            folder.mkdir()
            (folder / "PulumiPolicy.yaml").write_text(
                f"runtime:\n  name: python\n  options:\n    virtualenv: {venv}\n"
            )
            (folder / "__main__.py").write_text(main)
        folders["gitops-deploy pack"] = PACK_DIR
        rows = _throughputs(folders, resources, runs)
    floor = rows[0]
    rows = [[*row, row[2] / floor[2], row[3] / floor[3]] for row in rows]
    print(f"{len(resources)} resources through each pack, best of {runs} interleaved rounds")
    headers = [
        "pack",
        "start s",
        "Analyze res/s",
        "AnalyzeStack res/s",
        "Analyze x trivial",
        "Stack x trivial",
    ]
    _harness.table(headers, rows, "- .2f ,.0f ,.0f .2f .2f")
