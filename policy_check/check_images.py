"""The CLI-free check's `--build`: each docker Image the program declares, built and measured locally."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from clients.image_engine import (
    BuildFailed,
    BuildSpec,
    EngineUnavailable,
    ImageError,
    ImageMeasurement,
    build_image,
    connect,
    measure_image,
)
from model.names import DOCKER_IMAGE_TYPE
from policy_check.check_context import app_of
from policy_check.report import ImageRow
from policy_check.simulate import Simulation


def image_builds(sim: Simulation, project_dir: Path) -> list[tuple[str, str, BuildSpec]]:
    """(app, image name, what to build) for each docker Image the program declares (pinned apps have none)."""
    by_urn = {r.urn: r for r in sim.resources}
    builds = []
    for image in sim.by_type(DOCKER_IMAGE_TYPE):
        # The inputs the program hands pulumi-docker: paths relative to the project, as its CLI resolves them.
        build = image.inputs.get("build") or {}
        context = project_dir / str(build.get("context") or ".")
        dockerfile = (
            project_dir / str(build["dockerfile"]) if build.get("dockerfile") else context / "Dockerfile"
        )
        name = str(image.inputs.get("imageName", ""))
        spec = BuildSpec(
            context=context,
            dockerfile=dockerfile,
            build_args={str(k): str(v) for k, v in (build.get("args") or {}).items()},
            platform=build.get("platform") or None,
            tags=(name,),
            root=project_dir,
        )
        builds.append((app_of(image, by_urn) or image.name, name, spec))
    return sorted(builds, key=lambda b: (b[0], b[1]))  # registration order varies; the report must not


def measure_builds(
    builds: Sequence[tuple[str, str, BuildSpec]], project_dir: Path, limit: int
) -> tuple[list[ImageRow], dict[str, ImageMeasurement]]:
    """Build and measure each image with the engine DOCKER_HOST names; rows for the report, sizes by name."""
    rows: list[ImageRow] = []
    measured: dict[str, ImageMeasurement] = {}
    try:
        client = connect()
    except EngineUnavailable as exc:
        return not_measured(builds, project_dir, f"{exc}; image-size-limit can't judge it yet"), measured
    done: dict[tuple[Any, ...], tuple[str, str, ImageMeasurement | None]] = {}
    try:
        for app, name, spec in builds:
            dockerfile = os.path.relpath(spec.dockerfile, project_dir)
            # pulumi-docker builds each image name once; apps sharing one (same inputs) share the build.
            key = (spec.context, spec.dockerfile, tuple(sorted(spec.build_args.items())), spec.platform, name)
            if key not in done:
                done[key] = _build_and_measure(client, app, dockerfile, spec, limit)
            status, detail, found = done[key]
            if found is not None:
                measured[name] = found
            rows.append(ImageRow(app, name, dockerfile, status, detail, found.size_bytes if found else None))
    finally:
        client.close()
    return rows, measured


def _build_and_measure(
    client: Any, app: str, dockerfile: str, spec: BuildSpec, limit: int
) -> tuple[str, str, ImageMeasurement | None]:
    """(status, detail, measurement) of one image: measured, a build error, or not measured."""
    try:
        found = measure_image(client, build_image(client, spec), limit=limit)
    except BuildFailed as exc:
        return "error", exc.describe(app, dockerfile), None
    except ImageError as exc:
        return "not-measured", f"{exc}; image-size-limit can't judge it yet", None
    return "measured", found.describe(), found


def not_measured(
    builds: Sequence[tuple[str, str, BuildSpec]], project_dir: Path, reason: str
) -> list[ImageRow]:
    """A row per image that was not measured, with the reason."""
    return [
        ImageRow(a, n, os.path.relpath(s.dockerfile, project_dir), "not-measured", reason)
        for a, n, s in builds
    ]
