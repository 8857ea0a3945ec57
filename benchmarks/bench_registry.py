"""Registry benchmark: what the preflight and the image-size read cost against a real local registry.

Starts Debian's `docker-registry` twice (htpasswd, token auth) on 127.0.0.1 and times, per call with a
fresh client as the providers use one: the Basic preflight, the Bearer preflight, a manifest read and an
index read, plus the HTTP requests each makes. Ratios are against the Basic preflight of this run.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import _cli  # benchmarks/_cli.py: the script's own folder is first on sys.path
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from clients.registry import RegistryClient  # noqa: E402
from tests.support.registry import LocalRegistry, TokenIssuer, random_layer  # noqa: E402

ROUNDS = 30
PASSWORD = "bench-password-not-secret"


def _timed(make: Callable[[list[httpx.Request]], None]) -> tuple[float, int]:
    """Median milliseconds over ROUNDS, and the requests one call made."""
    times: list[float] = []
    requests: list[httpx.Request] = []
    for _ in range(ROUNDS):
        requests.clear()
        start = time.perf_counter()
        make(requests)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), len(requests)


def _client(server: str, user: str, requests: list[httpx.Request]) -> RegistryClient:
    client = RegistryClient(server, user, PASSWORD, insecure=True)
    client._http.event_hooks["request"].append(requests.append)
    return client


def main() -> None:
    """Run every case and print its figures."""
    t0 = time.perf_counter()
    basic = LocalRegistry(users={"alice": PASSWORD}).start()
    startup_ms = (time.perf_counter() - t0) * 1000
    issuer = TokenIssuer(users={"bob": PASSWORD}, grants={"bob": ["pull", "push"]}).start()
    token = LocalRegistry(issuer=issuer).start()
    try:
        amd = token.push_image("team/web", [random_layer(4096)] * 3)
        arm = token.push_image("team/web", [random_layer(2048)], platform="linux/arm64")
        index = token.push_index("team/web", [amd, arm])

        def basic_preflight(reqs: list[httpx.Request]) -> None:
            with _client(basic.server, "alice", reqs) as c:
                c.preflight(["team/web"])

        def bearer_preflight(reqs: list[httpx.Request]) -> None:
            with _client(token.server, "bob", reqs) as c:
                c.preflight(["team/web"])

        def bearer_preflight_5(reqs: list[httpx.Request]) -> None:
            with _client(token.server, "bob", reqs) as c:
                c.preflight([f"team/app{i}" for i in range(5)])

        def manifest(reqs: list[httpx.Request]) -> None:
            with _client(token.server, "bob", reqs) as c:
                c.image_size(amd.reference, "linux/amd64")

        def index_read(reqs: list[httpx.Request]) -> None:
            with _client(token.server, "bob", reqs) as c:
                c.image_size(index, "linux/arm64")

        cases = [
            ("preflight, Basic (htpasswd), 1 repo", basic_preflight),
            ("preflight, Bearer (token), 1 repo", bearer_preflight),
            ("preflight, Bearer (token), 5 repos", bearer_preflight_5),
            ("image size, OCI manifest", manifest),
            ("image size, OCI index -> linux/arm64", index_read),
        ]
        results = [(name, *_timed(fn)) for name, fn in cases]
    finally:
        token.stop()
        basic.stop()
        issuer.stop()
    floor = results[0][1]
    print(f"registry startup (htpasswd): {startup_ms:.0f} ms")
    print(
        f"{'case':42} {'median ms':>10} {'requests':>9} {'x basic':>8}   ({ROUNDS} rounds, fresh client each)"
    )
    for name, ms, count in results:
        print(f"{name:42} {ms:10.2f} {count:9d} {ms / floor:8.2f}")


if __name__ == "__main__":
    _cli.parse(__doc__)
    main()
