"""Run the policy pack as the Pulumi CLI does and talk to it over the analyzer gRPC protocol
(docs/engine-rules.md#the-analyzer-protocol)."""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import jsonschema
import yaml
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc, engine_pb2_grpc

from model.errors import GitopsError
from model.files import FileRefused, read_text
from model.names import PROJECT

PACK_DIR = Path(__file__).resolve().parents[1] / "policies"
"""The policy pack's folder: what `pulumi preview --policy-pack policies` runs."""
LEVELS = {
    analyzer_pb2.ADVISORY: "advisory",
    analyzer_pb2.MANDATORY: "mandatory",
    analyzer_pb2.REMEDIATE: "remediate",
    analyzer_pb2.DISABLED: "disabled",
}
LEVEL_CODES = {v: k for k, v in LEVELS.items()}
PIPELINE = 4  # Analyze calls kept in flight: the pack's gRPC server runs four at a time
_MAX_MESSAGE = 400 * 1024 * 1024  # the CLI's and the pack's gRPC message limit


class PolicyPackError(GitopsError):
    """The pack did not start, answer in time, or answered with an error."""


class PolicyConfigError(GitopsError):
    """A policy config file that the CLI would reject."""


@dataclass(frozen=True)
class PolicyInput:
    """One resource as the engine hands it to an analyzer."""

    urn: str
    type: str
    name: str
    props: Mapping[str, Any]
    """Inputs (Analyze) or state (AnalyzeStack) in wire form: secret envelopes and unknown sentinels kept."""
    parent: str = ""
    dependencies: tuple[str, ...] = ()
    property_dependencies: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    custom: bool = True
    """Components take part in AnalyzeStack only."""


@dataclass(frozen=True)
class Diagnostic:
    """One diagnostic from the pack."""

    policy: str
    message: str
    urn: str
    level: str
    """advisory, mandatory, remediate or disabled."""

    @property
    def cant_judge(self) -> bool:
        """The SDK's "can't run policy during preview" note for an unknown value: not a pass, not a fail."""
        return self.message.startswith(f"can't run policy '{self.policy}'")

    @property
    def detail(self) -> str:
        """The message without the policy description the SDK puts on its first line."""
        return self.message.split("\n", 1)[1] if "\n" in self.message else self.message


MAX_INPUT_FILE_BYTES = 16 * 1024 * 1024
"""Most bytes of a JSON file the check is handed (a policy config, the stack's outputs)."""


def read_json_file(path: Path) -> Any:
    """A JSON file the check is handed, read with a bound; ValueError saying why it cannot be used."""
    try:
        text = read_text(path, MAX_INPUT_FILE_BYTES)
        return json.loads(text) if text.strip() else None
    except FileRefused as exc:
        raise ValueError(str(exc)) from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc})") from None
    except RecursionError:
        raise ValueError("nests too deeply") from None


def load_policy_config(path: Path) -> dict[str, dict[str, Any]]:
    """A `--policy-pack-config` file, parsed as the CLI does: `{policy: level}` or `{policy: {...}}`."""
    try:
        data = read_json_file(path)
    except ValueError as exc:
        raise PolicyConfigError(f"policy config {path}: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise PolicyConfigError(f"{path}: expected a JSON object keyed by policy name")
    result: dict[str, dict[str, Any]] = {}
    for name, value in data.items():
        if isinstance(value, str):
            value = {"enforcementLevel": value}
        if not isinstance(value, dict):
            raise PolicyConfigError(f"{path}: {name!r} must be an enforcement level or an object")
        level = value.get("enforcementLevel")
        if level is not None and level not in LEVEL_CODES:
            raise PolicyConfigError(
                f"{path}: {name}.enforcementLevel {level!r} is not one of {sorted(LEVEL_CODES)}"
            )
        result[name] = dict(value)
    return result


def reconcile_config(
    info: analyzer_pb2.AnalyzerInfo, given: Mapping[str, Mapping[str, Any]]
) -> dict[str, tuple[str, dict[str, Any]]]:
    """Schema defaults, then `all`, then the given config, validated: what the CLI sends to Configure."""
    policies = {p.name: p for p in info.policies}
    unknown = sorted(set(given) - set(policies) - {"all"})
    if unknown:
        raise PolicyConfigError(f"policy config names unknown policies {unknown}; known: {sorted(policies)}")
    result: dict[str, tuple[str, dict[str, Any]]] = {}
    all_level = (given.get("all") or {}).get("enforcementLevel")
    for name, p in policies.items():
        schema = json_format.MessageToDict(p.configSchema.properties)
        defaults = {k: v["default"] for k, v in schema.items() if isinstance(v, dict) and "default" in v}
        result[name] = (all_level or LEVELS.get(p.enforcementLevel, "advisory"), defaults)
    for name, value in given.items():
        if name == "all":
            continue
        level, props = result[name]
        props = {**props, **{k: v for k, v in value.items() if k != "enforcementLevel"}}
        result[name] = (value.get("enforcementLevel", level), props)
    errors = []
    for name, (_, props) in result.items():
        p = policies[name]
        schema = {"type": "object", "properties": json_format.MessageToDict(p.configSchema.properties)}
        if p.configSchema.required:
            schema["required"] = list(p.configSchema.required)
        for err in jsonschema.Draft7Validator(schema).iter_errors(props):
            where = ".".join(str(x) for x in err.absolute_path) or "(root)"
            errors.append(f"{name}.{where}: {err.message}")
    if errors:
        raise PolicyConfigError("invalid policy config: " + "; ".join(errors))
    return result


def pack_python(pack_dir: Path) -> str:
    """The interpreter the CLI's `pulumi-analyzer-policy-python` shim would use for this pack."""
    try:
        project = yaml.safe_load((pack_dir / "PulumiPolicy.yaml").read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise PolicyPackError(f"cannot read {pack_dir / 'PulumiPolicy.yaml'}: {exc}") from exc
    runtime = project.get("runtime") if isinstance(project, dict) else None
    options = runtime.get("options", {}) if isinstance(runtime, dict) else {}
    venv = options.get("virtualenv") if isinstance(options, dict) else None
    if isinstance(venv, str) and venv:
        candidate = (pack_dir / venv / "bin" / "python").absolute()
        if candidate.is_file():
            return str(candidate)
    return sys.executable  # the shim would use python3 on PATH; here, the interpreter running the check


def to_struct(props: Mapping[str, Any]) -> struct_pb2.Struct:
    """Props as the engine marshals them (numbers become floats)."""
    return json_format.ParseDict(json.loads(json.dumps(props, default=str)), struct_pb2.Struct())


class _Engine(engine_pb2_grpc.EngineServicer):
    """The engine endpoint the pack is given; it records any log the pack sends."""

    def __init__(self) -> None:
        self.logs: list[str] = []

    def Log(self, request: Any, context: Any) -> empty_pb2.Empty:
        self.logs.append(request.message)
        return empty_pb2.Empty()


class PolicyPackServer:
    """The pack started as the CLI starts it, with a gRPC client; a context manager, every wait bounded."""

    def __init__(
        self,
        pack_dir: Path = PACK_DIR,
        *,
        config: Mapping[str, Mapping[str, Any]] | None = None,
        config_file: Path | None = None,
        stack: str = "dev",
        project: str = PROJECT,
        dry_run: bool = True,
        start_timeout: float = 30.0,
        rpc_timeout: float = 30.0,
    ) -> None:
        self.pack_dir = pack_dir
        self.given = dict(load_policy_config(config_file) if config_file else {})
        self.given.update({k: dict(v) for k, v in (config or {}).items()})
        self.stack, self.project, self.dry_run = stack, project, dry_run
        self.start_timeout, self.rpc_timeout = start_timeout, rpc_timeout
        self.engine = _Engine()
        self.levels: dict[str, str] = {}
        self.config: dict[str, tuple[str, dict[str, Any]]] = {}
        self.info: analyzer_pb2.AnalyzerInfo | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()
        self._channel: grpc.Channel | None = None
        self._engine_server: grpc.Server | None = None
        self._stub: analyzer_pb2_grpc.AnalyzerStub | None = None

    def __enter__(self) -> PolicyPackServer:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Start the engine endpoint and the pack, read its port, then configure it as the CLI does."""
        self._engine_server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        engine_pb2_grpc.add_EngineServicer_to_server(self.engine, self._engine_server)
        engine_port = self._engine_server.add_insecure_port("127.0.0.1:0")
        self._engine_server.start()
        env = {
            **os.environ,
            "PULUMI_PROJECT": self.project,
            "PULUMI_STACK": self.stack,
            "PULUMI_DRY_RUN": "true" if self.dry_run else "false",
        }
        self._proc = subprocess.Popen(
            [pack_python(self.pack_dir), "-u", "-m", "pulumi.policy", f"127.0.0.1:{engine_port}", "."],
            cwd=self.pack_dir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
        )
        port = self._read_port()
        limits = [(f"grpc.max_{way}_message_length", _MAX_MESSAGE) for way in ("receive", "send")]
        self._channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=limits)
        try:
            grpc.channel_ready_future(self._channel).result(timeout=self.start_timeout)
        except grpc.FutureTimeoutError as exc:
            raise PolicyPackError(f"policy pack port {port} not ready in {self.start_timeout:g}s") from exc
        self._stub = analyzer_pb2_grpc.AnalyzerStub(self._channel)
        self._handshake()
        self.info = self._call(self._stub.GetAnalyzerInfo, empty_pb2.Empty())
        self._call(
            self._stub.ConfigureStack,
            analyzer_pb2.AnalyzerStackConfigureRequest(
                stack=self.stack, project=self.project, organization="organization", dry_run=self.dry_run
            ),
        )
        self.config = reconcile_config(self.info, self.given)
        self.levels = {name: level for name, (level, _) in self.config.items()}
        request = analyzer_pb2.ConfigureAnalyzerRequest()
        for name, (level, props) in self.config.items():
            request.policyConfig[name].enforcementLevel = LEVEL_CODES[level]
            request.policyConfig[name].properties.update(props)
        self._call(self._stub.Configure, request)

    def _handshake(self) -> None:
        assert self._stub is not None
        request = analyzer_pb2.AnalyzerHandshakeRequest(
            engine_address="", root_directory=str(self.pack_dir), program_directory=str(self.pack_dir)
        )
        try:
            self._stub.Handshake(request, timeout=self.rpc_timeout)
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.UNIMPLEMENTED:
                raise PolicyPackError(f"policy pack Handshake failed: {exc}") from exc

    def _read_port(self) -> int:
        """The first stdout line: the port the pack listens on."""
        assert self._proc is not None and self._proc.stdout is not None
        deadline = time.monotonic() + self.start_timeout
        buf = b""
        with selectors.DefaultSelector() as sel:
            sel.register(self._proc.stdout, selectors.EVENT_READ)
            while b"\n" not in buf:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise PolicyPackError(
                        f"policy pack printed no port in {self.start_timeout:g}s{self._tail()}"
                    )
                if not sel.select(timeout=left):
                    continue
                chunk = os.read(self._proc.stdout.fileno(), 4096)
                if not chunk:
                    self._proc.wait(timeout=5)
                    raise PolicyPackError(
                        f"policy pack exited with code {self._proc.returncode}{self._tail()}"
                    )
                buf += chunk
        line = buf.split(b"\n", 1)[0].strip()
        if not line.isdigit():
            raise PolicyPackError(f"policy pack printed {line[:200]!r} instead of a port{self._tail()}")
        return int(line)

    def _tail(self) -> str:
        self._stderr.seek(0)
        text = self._stderr.read().decode(errors="replace").strip()
        return f":\n{text[-2000:]}" if text else ""

    def _call(self, method: Any, request: Any) -> Any:
        try:
            return method(request, timeout=self.rpc_timeout)
        except grpc.RpcError as exc:
            raise self._failed(exc) from exc

    def _failed(self, exc: grpc.RpcError) -> PolicyPackError:
        return PolicyPackError(f"policy pack call failed: {exc}{self._tail()}")

    def _diagnostics(self, response: analyzer_pb2.AnalyzeResponse, urn: str = "") -> list[Diagnostic]:
        """The response's diagnostics, those without a URN given `urn` (the resource's, from Analyze)."""
        return [
            Diagnostic(d.policyName, d.message, d.urn or urn, LEVELS.get(d.enforcementLevel, "advisory"))
            for d in response.diagnostics
        ]

    def analyze(self, resource: PolicyInput) -> list[Diagnostic]:
        """Resource policies on one resource (Analyze); diagnostics carry the resource's URN."""
        [(_, found)] = self.answers([resource])
        return found

    def answers(self, resources: Iterable[PolicyInput]) -> Iterator[tuple[PolicyInput, list[Diagnostic]]]:
        """Each resource with its `analyze` diagnostics, in order, PIPELINE calls in flight, each bounded."""
        assert self._stub is not None, "start() first"
        pending: deque[tuple[PolicyInput, Any]] = deque()
        for resource in resources:
            if len(pending) == PIPELINE:
                yield self._answered(*pending.popleft())
            request = analyzer_pb2.AnalyzeRequest(
                urn=resource.urn, type=resource.type, name=resource.name, properties=to_struct(resource.props)
            )
            request.options.parent = resource.parent
            pending.append((resource, self._stub.Analyze.future(request, timeout=self.rpc_timeout)))
        while pending:
            yield self._answered(*pending.popleft())

    def _answered(self, resource: PolicyInput, call: Any) -> tuple[PolicyInput, list[Diagnostic]]:
        try:
            return resource, self._diagnostics(call.result(), resource.urn)  # bounded by the call's deadline
        except grpc.RpcError as exc:
            raise self._failed(exc) from exc

    def analyze_stack(self, resources: Iterable[PolicyInput]) -> list[Diagnostic]:
        """Stack policies on the whole set (AnalyzeStack)."""
        assert self._stub is not None, "start() first"
        request = analyzer_pb2.AnalyzeStackRequest()
        for r in resources:
            item = request.resources.add(urn=r.urn, type=r.type, name=r.name, parent=r.parent)
            item.properties.CopyFrom(to_struct(r.props))
            item.options.parent = r.parent
            item.dependencies.extend(r.dependencies)
            for key, urns in r.property_dependencies.items():
                if urns:
                    item.propertyDependencies[key].urns.extend(urns)
        return self._diagnostics(self._call(self._stub.AnalyzeStack, request))

    def close(self) -> None:
        """Stop the pack, then close the channel (closed first, it lingers a fifth of a second while the
        pack lives) and the engine endpoint; bounded."""
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.terminate()
                try:
                    self._proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait(timeout=5)
            if self._proc.stdout is not None:
                self._proc.stdout.close()
            self._proc = None
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        if self._engine_server is not None:
            self._engine_server.stop(grace=None)
            self._engine_server = None
        self._stderr.close()
