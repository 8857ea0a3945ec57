"""Drive a dynamic provider the way the Pulumi engine does: over gRPC, against `python -m pulumi.dynamic`."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import grpc
from google.protobuf import struct_pb2
from pulumi.dynamic.dynamic import ResourceProvider, serialize_provider
from pulumi.runtime import rpc
from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc

from tests.support.processes import read_line, stop_process

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PROVIDER_KEY = "__provider"
UNKNOWN = rpc.UNKNOWN
"""The value the engine sends for an input that is not known yet (during preview)."""

_START_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class CheckResult:
    """What the provider's Check answered."""

    inputs: dict[str, Any]
    failures: list[tuple[str, str]]


@dataclass(frozen=True)
class DiffResult:
    """What the provider's Diff answered."""

    changes: int
    replaces: list[str]

    @property
    def has_changes(self) -> bool:
        """True when the engine would plan an update or replace."""
        return self.changes == provider_pb2.DiffResponse.DIFF_SOME


def _struct(props: Mapping[str, Any]) -> struct_pb2.Struct:
    """Serialize props exactly as the SDK does for the wire."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(rpc.serialize_properties(dict(props), {}))
    finally:
        loop.close()


def _plain(struct: struct_pb2.Struct) -> dict[str, Any]:
    """Deserialize a wire struct into plain Python values, unknowns kept as UNKNOWN."""
    return dict(rpc.deserialize_properties(struct, keep_unknowns=True))


class DynamicProviderServer:
    """A running `python -m pulumi.dynamic` process and a client for its ResourceProvider service."""

    def __init__(self, provider: ResourceProvider, *, cwd: Path = PROJECT_ROOT) -> None:
        self._serialized = serialize_provider(provider)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(cwd), env.get("PYTHONPATH")]))
        # The engine starts the plugin from the project directory, so project modules import.
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pulumi.dynamic"],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        # Drain stderr all along: an undrained pipe fills up (64 KiB) and blocks the server mid-call.
        self._stderr = bytearray()
        self._stderr_reader = threading.Thread(target=self._drain_stderr, daemon=True)
        self._stderr_reader.start()
        try:
            port = self._read_port()
            self.channel = grpc.insecure_channel(f"127.0.0.1:{port}")
            grpc.channel_ready_future(self.channel).result(timeout=_START_TIMEOUT_S)
            self.stub = provider_pb2_grpc.ResourceProviderStub(self.channel)
            self.stub.Configure(provider_pb2.ConfigureRequest(args=_struct({})), timeout=10)
        except BaseException:
            self.close()  # no orphaned plugin process when start-up fails
            raise

    def _drain_stderr(self) -> None:
        assert self.process.stderr is not None
        fd = self.process.stderr.fileno()
        for chunk in iter(lambda: os.read(fd, 65536), b""):
            self._stderr.extend(chunk)

    def _read_port(self) -> int:
        """Read the port line the server prints, with a bound on the wait."""
        assert self.process.stdout is not None
        line = read_line(self.process.stdout, _START_TIMEOUT_S)
        if not line or not line.strip():
            raise RuntimeError("python -m pulumi.dynamic did not print its port in time")
        return int(line.strip())

    def _props(self, inputs: Mapping[str, Any]) -> struct_pb2.Struct:
        return _struct({**inputs, PROVIDER_KEY: self._serialized})

    def check(
        self, news: Mapping[str, Any], olds: Mapping[str, Any] | None = None, *, timeout: float = 60
    ) -> CheckResult:
        """Call Check as the engine does in preview and up."""
        response = self.stub.Check(
            provider_pb2.CheckRequest(
                urn="urn:pulumi:test::gitops-deploy::test::x",
                olds=self._props(olds or {}),
                news=self._props(news),
            ),
            timeout=timeout,
        )
        failures = [(f.property, f.reason) for f in response.failures]
        inputs = _plain(response.inputs)
        inputs.pop(PROVIDER_KEY, None)
        return CheckResult(inputs=inputs, failures=failures)

    def diff(
        self, olds: Mapping[str, Any], news: Mapping[str, Any], *, id_: str = "id", timeout: float = 30
    ) -> DiffResult:
        """Call Diff with old and new inputs."""
        response = self.stub.Diff(
            provider_pb2.DiffRequest(id=id_, olds=self._props(olds), news=self._props(news)),
            timeout=timeout,
        )
        return DiffResult(changes=response.changes, replaces=list(response.replaces))

    def create(self, props: Mapping[str, Any], *, timeout: float = 900) -> tuple[str, dict[str, Any]]:
        """Call Create and return the new id and the outputs (without the serialized provider)."""
        response = self.stub.Create(
            provider_pb2.CreateRequest(properties=self._props(props)), timeout=timeout
        )
        outs = _plain(response.properties)
        outs.pop(PROVIDER_KEY, None)
        return response.id, outs

    def update(
        self,
        olds: Mapping[str, Any],
        news: Mapping[str, Any],
        *,
        id_: str = "id",
        timeout: float = 900,
    ) -> dict[str, Any]:
        """Call Update and return the outputs."""
        response = self.stub.Update(
            provider_pb2.UpdateRequest(id=id_, olds=self._props(olds), news=self._props(news)),
            timeout=timeout,
        )
        outs = _plain(response.properties)
        outs.pop(PROVIDER_KEY, None)
        return outs

    def delete(self, props: Mapping[str, Any], *, id_: str = "id", timeout: float = 30) -> None:
        """Call Delete."""
        self.stub.Delete(provider_pb2.DeleteRequest(id=id_, properties=self._props(props)), timeout=timeout)

    def stderr_text(self) -> str:
        """The server's whole stderr; call after close(), which waits for the last of it."""
        if self.process.poll() is None:
            raise RuntimeError("stderr_text() is only complete after close()")
        return bytes(self._stderr).decode(errors="replace")

    def close(self) -> None:
        """Stop the server, waiting a bounded time."""
        if getattr(self, "channel", None) is not None:
            self.channel.close()
        stop_process(self.process, 10)
        self._stderr_reader.join(10)
        for pipe in (self.process.stdout, self.process.stderr):
            if pipe is not None:
                pipe.close()

    def __enter__(self) -> DynamicProviderServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
