"""Image-size benchmark: measuring 10 and 100 MB images (compressed, bound only) next to `docker save`."""

from __future__ import annotations

import secrets
import tempfile
from functools import partial
from pathlib import Path

import _harness
import docker

from clients.image_engine import BuildSpec, build_image, measure_image
from tests.support.docker_engine import LocalDockerEngine, write_context

ROUNDS = 3
LOG_LINE = b"2026-01-01T00:00:00Z INFO request handled path=/api/items status=200 latency_ms=%05d\n"


def _row(client: docker.DockerClient, size_mb: int) -> list[float]:
    """An image half random bytes, half text, in two layers: the save floor, the compressed measurement
    and the bound-only one."""
    half = size_mb * 1_000_000 // 2
    text = b"".join(LOG_LINE % (i % 100_000) for i in range(half // len(LOG_LINE) + 1))[:half]
    with tempfile.TemporaryDirectory() as tmp:
        files = {"random": secrets.token_bytes(half), "text": text}
        context = write_context(Path(tmp), "FROM scratch\nCOPY random /random\nCOPY text /text\n", files)
        image = build_image(client, BuildSpec(context, context / "Dockerfile"))
    save = partial(client.api.get_image, image, chunk_size=1 << 20)
    floor, saved = _harness.median(lambda: sum(map(len, save())), ROUNDS)
    packed, full = _harness.median(lambda: measure_image(client, image), ROUNDS)
    bound_s, bound = _harness.median(lambda: measure_image(client, image, limit=10**12), ROUNDS)
    assert full.compressed and not bound.compressed
    times = [floor * 1e3, packed * 1e3, bound_s * 1e3, packed / floor, bound_s / floor]
    return [size_mb, *times, full.size_bytes, bound.size_bytes, saved]


if __name__ == "__main__":
    _harness.parse(__doc__)
    with LocalDockerEngine() as engine, engine.client(timeout=600) as client:
        rows = [_row(client, size_mb) for size_mb in (10, 100)]
    print(f"Image-size measurement vs `docker save` (median of {ROUNDS}; own engine, vfs storage)")
    headers = ["image MB", "save floor ms", "compressed ms", "bound only ms", "compressed/save", "bound/save"]
    _harness.table([*headers, "compressed size", "bound", "save bytes"], rows, "d .0f .0f .0f .1f .1f , , ,")
