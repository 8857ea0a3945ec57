"""Registry benchmark: the preflight and the image-size read against real local registries (htpasswd,
token), a fresh client per call as the providers use one; ratios to the Basic preflight of this run."""

from __future__ import annotations

from collections.abc import Callable

import _harness
import httpx

from clients.registry import RegistryClient
from tests.support.registry import LocalRegistry, TokenIssuer, random_layer

ROUNDS = 30
PASSWORD = "bench-password-not-secret"


def _case(server: str, user: str, call: Callable[[RegistryClient], object]) -> tuple[float, int]:
    """Median seconds over ROUNDS of `call` on a fresh client, and the requests one call made."""
    requests: list[httpx.Request] = []

    def once() -> int:
        requests.clear()
        with RegistryClient(server, user, PASSWORD, insecure=True) as client:
            client._http.event_hooks["request"].append(requests.append)
            call(client)
        return len(requests)

    return _harness.median(once, ROUNDS)


if __name__ == "__main__":
    _harness.parse(__doc__)
    startup, basic = _harness.timed(LocalRegistry(users={"alice": PASSWORD}).start)
    issuer = TokenIssuer(users={"bob": PASSWORD}, grants={"bob": ["pull", "push"]}).start()
    token = LocalRegistry(issuer=issuer).start()
    try:
        amd = token.push_image("team/web", [random_layer(4096)] * 3)
        arm = token.push_image("team/web", [random_layer(2048)], platform="linux/arm64")
        index = token.push_index("team/web", [amd, arm])
        alice, bob = (basic.server, "alice"), (token.server, "bob")
        cases: list[tuple[str, tuple[str, str], Callable[[RegistryClient], object]]] = [
            ("preflight, Basic (htpasswd), 1 repo", alice, lambda c: c.preflight(["team/web"])),
            ("preflight, Bearer (token), 1 repo", bob, lambda c: c.preflight(["team/web"])),
            (
                "preflight, Bearer (token), 5 repos",
                bob,
                lambda c: c.preflight([f"team/app{i}" for i in range(5)]),
            ),
            ("image size, OCI manifest", bob, lambda c: c.image_size(amd.reference, "linux/amd64")),
            ("image size, OCI index -> linux/arm64", bob, lambda c: c.image_size(index, "linux/arm64")),
        ]
        results = [(name, *_case(*login, call)) for name, login, call in cases]
    finally:
        token.stop()
        basic.stop()
        issuer.stop()
    print(f"registry startup (htpasswd): {startup * 1000:.0f} ms; {ROUNDS} rounds, fresh client each")
    rows = [(name, seconds * 1e3, count, seconds / results[0][1]) for name, seconds, count in results]
    _harness.table(["case", "median ms", "requests", "x basic"], rows, "- .2f d .2f")
