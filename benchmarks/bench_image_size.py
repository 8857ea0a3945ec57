"""Image-size benchmark: measuring a local image next to `docker save` of it, the floor any measurement pays.

Starts its own private Docker Engine (tests/support/docker_engine.py, as root) and builds two images of
10 MB and 100 MB, each half random bytes (which gzip cannot shrink) and half text (which it shrinks a
lot), in two layers. For each it times, median of a few rounds:
- the floor: the Engine API's `GET /images/{id}/get` (`docker save`) streamed and thrown away;
- the measurement with every layer compressed (what a preview's ImageSize.check and `--build` over the
  limit do);
- the measurement when the uncompressed bound is under the limit (no compression: `--build` under it);
and prints each as a ratio to the floor of the same run.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import _cli  # benchmarks/_cli.py: the script's own folder is first on sys.path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import docker  # noqa: E402

from clients.image_engine import BuildSpec, ImageMeasurement, build_image, measure_image  # noqa: E402
from tests.support.docker_engine import LocalDockerEngine, write_context  # noqa: E402

ROUNDS = 3
T = TypeVar("T")
SIZES_MB = (10, 100)


def _text(size: int) -> bytes:
    line = b"2026-01-01T00:00:00Z INFO request handled path=/api/items status=200 latency_ms=%05d\n"
    out = bytearray()
    i = 0
    while len(out) < size:
        out += line % (i % 100_000)
        i += 1
    return bytes(out[:size])


def _image(client: docker.DockerClient, directory: Path, size_mb: int) -> str:
    import secrets

    half = size_mb * 1_000_000 // 2
    context = write_context(
        directory,
        "FROM scratch\nCOPY random /random\nCOPY text /text\n",
        {"random": secrets.token_bytes(half), "text": _text(half)},
    )
    return build_image(client, BuildSpec(context, context / "Dockerfile"))


def _median(run: Callable[[], T]) -> tuple[float, T]:
    """Median seconds over ROUNDS, and the last result."""
    times = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


Row = tuple[int, int, float, float, ImageMeasurement, float, ImageMeasurement]


def _case(client: docker.DockerClient, size_mb: int) -> Row:
    """One image: the save floor, the compressed measurement, the bound-only measurement."""
    with tempfile.TemporaryDirectory() as tmp:
        image_id = _image(client, Path(tmp), size_mb)

    def save() -> int:
        return sum(len(chunk) for chunk in client.api.get_image(image_id, chunk_size=1 << 20))

    def compressed() -> ImageMeasurement:
        return measure_image(client, image_id)

    def bound_only() -> ImageMeasurement:
        return measure_image(client, image_id, limit=10**12)

    floor_s, saved = _median(save)
    compressed_s, full = _median(compressed)
    bound_s, bound = _median(bound_only)
    assert full.compressed and not bound.compressed
    return size_mb, saved, floor_s, compressed_s, full, bound_s, bound


def main() -> None:
    """Build the images, time each case, print the table."""
    with LocalDockerEngine() as engine, engine.client(timeout=600) as client:
        rows = [_case(client, size_mb) for size_mb in SIZES_MB]
    print(f"Image-size measurement vs `docker save` (median of {ROUNDS}; own engine, vfs storage)")
    print(
        f"{'image':>7} {'save floor':>11} {'compressed':>11} {'ratio':>6} {'bound only':>11} {'ratio':>6}"
        f"  {'compressed size':>16} {'bound':>13} {'save bytes':>12}"
    )
    for size_mb, saved, floor_s, compressed_s, full, bound_s, bound in rows:
        print(
            f"{size_mb:>5}MB {floor_s * 1000:>9.0f}ms {compressed_s * 1000:>9.0f}ms "
            f"{compressed_s / floor_s:>5.1f}x {bound_s * 1000:>9.0f}ms {bound_s / floor_s:>5.1f}x"
            f"  {full.size_bytes:>16,} {bound.size_bytes:>13,} {saved:>12,}"
        )


if __name__ == "__main__":
    _cli.parse(__doc__)
    main()
