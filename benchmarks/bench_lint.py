"""Lint benchmark: hadolint's cost per Dockerfile, which every preview pays, next to the import floor that
every run pays (a fresh interpreter importing the Pulumi SDKs), in this run."""

from __future__ import annotations

import shutil
import tempfile
import time
from functools import partial
from pathlib import Path

import _harness

from clients.dockerlint import lint_stack
from clients.hadolint import find_hadolint
from model.config import StackConfig, parse_config

SOURCE = {"repoURL": "https://x.example/r.git", "targetRevision": "main", "path": "c", "type": "helm"}
REGISTRY, HEALTH = {"server": "registry.example.com", "username": "ci"}, {"url": "https://x.example/healthz"}


def _stack(project: Path, count: int) -> StackConfig:
    """A stack of `count` apps, each with its own copy of the example Dockerfile."""
    apps = []
    for i in range(count):
        file = f"{i}.Dockerfile"
        shutil.copy(_harness.ROOT / "examples/app/Dockerfile", project / file)
        image = {"repository": f"registry.example.com/b/app-{i}", "context": ".", "dockerfile": file}
        apps.append(
            {"name": f"app-{i}", "namespace": "b", "image": image, "source": SOURCE, "health": HEALTH}
        )
    return parse_config({"registry": REGISTRY, "apps": apps}, project)


def main() -> None:
    runs = _harness.parse(__doc__, runs=5)
    started, binary, floor = time.perf_counter(), find_hadolint(), _harness.interpreter(runs)
    fresh = floor["wall_s"]
    print(
        f"hadolint: {binary}\nimport floor (fresh interpreter: {_harness.IMPORT_FLOOR}): {fresh * 1e3:.0f} ms"
    )
    rows = []
    for count in (1, 10, 50):
        with tempfile.TemporaryDirectory() as tmp:
            lint, _ = _harness.best(partial(lint_stack, _stack(Path(tmp), count), binary=binary), runs)
        rows.append([count, lint * 1e3, lint * 1e3 / count, lint / fresh, lint / count / fresh])
    _harness.table(
        ["Dockerfiles", "lint ms", "ms/file", "lint/floor", "per file/floor"], rows, "d .1f .2f .3f .4f"
    )
    one = rows[0][1] / 1e3 / floor["total_s"]  # the program's import floor, without the interpreter's start
    print(f"lint per Dockerfile (hadolint, every preview): {rows[0][1]:.0f} ms = {one:.2f} x import floor")
    took = time.perf_counter() - started
    print(f"(best of {runs} runs each; one hadolint process per program run; benchmark took {took:.1f} s)")


if __name__ == "__main__":
    main()
