"""Image-size benchmark: measuring a local image next to `docker save` of it, the floor any measurement pays.

Starts its own Docker Engine (tests/support/docker_engine.py, as root), builds images of 10 and 100 MB
(half random bytes, half text, in two layers) and times, median of a few rounds: the floor (the Engine
API's `docker save`, streamed and thrown away); the measurement with every layer compressed (a preview's
ImageSize.check, `--build` over the limit); the measurement when the uncompressed bound is under the limit.
"""

from __future__ import annotations

import secrets
import tempfile
from pathlib import Path

import _harness
import docker

from clients.image_engine import BuildSpec, build_image, measure_image
from tests.support.docker_engine import LocalDockerEngine, write_context

ROUNDS = 3
SIZES_MB = (10, 100)
LOG_LINE = b"2026-01-01T00:00:00Z INFO request handled path=/api/items status=200 latency_ms=%05d\n"


def _image(client: docker.DockerClient, directory: Path, size_mb: int) -> str:
    half = size_mb * 1_000_000 // 2
    text = b"".join(LOG_LINE % (i % 100_000) for i in range(half // len(LOG_LINE) + 1))[:half]
    dockerfile = "FROM scratch\nCOPY random /random\nCOPY text /text\n"
    context = write_context(directory, dockerfile, {"random": secrets.token_bytes(half), "text": text})
    return build_image(client, BuildSpec(context, context / "Dockerfile"))


def _row(client: docker.DockerClient, size_mb: int) -> list[float]:
    """One image: the save floor, the compressed measurement, the bound-only measurement."""
    with tempfile.TemporaryDirectory() as tmp:
        image_id = _image(client, Path(tmp), size_mb)

    def save() -> int:
        return sum(map(len, client.api.get_image(image_id, chunk_size=1 << 20)))

    floor, saved = _harness.median(save, ROUNDS)
    compressed, full = _harness.median(lambda: measure_image(client, image_id), ROUNDS)
    bound_s, bound = _harness.median(lambda: measure_image(client, image_id, limit=10**12), ROUNDS)
    assert full.compressed and not bound.compressed
    return [
        size_mb,
        floor * 1e3,
        compressed * 1e3,
        compressed / floor,
        bound_s * 1e3,
        bound_s / floor,
        full.size_bytes,
        bound.size_bytes,
        saved,
    ]


def main() -> None:
    with LocalDockerEngine() as engine, engine.client(timeout=600) as client:
        rows = [_row(client, size_mb) for size_mb in SIZES_MB]
    print(f"Image-size measurement vs `docker save` (median of {ROUNDS}; own engine, vfs storage)")
    headers = ["image MB", "save floor ms", "compressed ms", "ratio", "bound only ms", "ratio"]
    _harness.table([*headers, "compressed size", "bound", "save bytes"], rows, "d .0f .0f .1f .0f .1f , , ,")


if __name__ == "__main__":
    _harness.parse(__doc__)
    main()
