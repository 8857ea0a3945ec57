"""Providers that fail the way a bug or an unforeseen library error would, for the gRPC tests.

The provider host imports this module by reference (dill), as it imports `components`.
"""

from __future__ import annotations

import json
from typing import Any

from components.health import HealthCheckProvider
from tests.support.processes import LocalHTTPServer, QuietHandler


class GroupRaisingHealthCheck(HealthCheckProvider):
    """A HealthCheck whose probe dies as anyio's connect did for port 99999: inside an exception group."""

    def _probe(self, props: dict[str, Any]) -> dict[str, Any]:
        raise ExceptionGroup(
            "unhandled errors in a TaskGroup", [OverflowError("connect(): port must be 0-65535.")]
        )


class MalformedIndexRegistry(LocalHTTPServer):
    """A registry without auth whose image index lists a platform without a digest."""

    def __init__(self) -> None:
        index = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [{"platform": {"os": "linux", "architecture": "amd64"}}],
        }
        body = json.dumps(index).encode()

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                headers = {
                    "Content-Type": "application/vnd.oci.image.index.v1+json",
                    "Docker-Distribution-Api-Version": "registry/2.0",
                }
                self.reply(200, b"{}" if self.path == "/v2/" else body, headers)

        self.body = body
        super().__init__(Handler)
