"""Run the real program under the SDK's mocks and record every resource it registers."""

from __future__ import annotations

import hashlib
import runpy
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from google.protobuf import json_format
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import settings
from pulumi.runtime.config import set_all_config
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from components.failed_releases import READ_STACK_OUTPUTS
from components.names import DOCKER_IMAGE_TYPE, IMAGE_SIZE_TYPE, STACK_TYPE
from offline.stack_files import PROJECT_DIR, engine_config, read_stack_config

SECRET_SIG = "4dabf18193072939515e22adb298388d"
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
PLACEHOLDER_PASSWORD = "offline-simulation-not-a-password"


@dataclass(frozen=True)
class SimResource:
    """One registered resource, as the engine would have seen it."""

    urn: str
    type: str
    name: str
    custom: bool
    parent: str
    provider: str
    dependencies: tuple[str, ...]
    inputs: dict[str, Any]
    """Inputs with secrets unwrapped to their plain values."""
    secret_paths: frozenset[str]
    """Dotted paths of inputs that arrived marked secret."""
    outputs: dict[str, Any]
    """The state the mocks answered with."""
    raw_inputs: dict[str, Any] = field(repr=False, default_factory=dict)
    """Inputs as on the wire (secret envelopes included)."""
    output_secret_paths: frozenset[str] = frozenset()
    """Dotted paths of outputs the engine would keep secret."""


class ProgramFailed(Exception):
    """The program raised; carries what it had registered by then (nothing, for a config error)."""

    def __init__(self, cause: BaseException, resources: list[SimResource]) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.resources = resources


@dataclass
class Simulation:
    """What one run of the program registered and exported."""

    stack: str
    resources: list[SimResource]
    exports: dict[str, Any]
    logs: list[str]

    def by_type(self, type_: str) -> list[SimResource]:
        """Resources of one type token."""
        return [r for r in self.resources if r.type == type_]

    def get(self, urn: str) -> SimResource:
        """The resource with this URN."""
        for r in self.resources:
            if r.urn == urn:
                return r
        raise KeyError(urn)


def _unwrap(value: Any, path: str, secrets: set[str]) -> Any:
    """Strip secret envelopes, remembering where they were."""
    if isinstance(value, dict):
        if value.get(SECRET_SIG) == "1b47061264138c4ac30d75fd1eb44270":
            secrets.add(path)
            return _unwrap(value.get("value"), path, secrets)
        return {k: _unwrap(v, f"{path}.{k}" if path else k, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap(v, f"{path}[{i}]", secrets) for i, v in enumerate(value)]
    return value


def fake_digest(seed: str) -> str:
    """A stable sha256 digest standing in for a pushed image's."""
    return "sha256:" + hashlib.sha256(seed.encode()).hexdigest()


class ProgramMocks(pulumi.runtime.Mocks):
    """Answers every registration the way the real providers would shape their outputs."""

    def __init__(
        self,
        image_sizes: Mapping[str, float] | None = None,
        stack_outputs: Mapping[str, Any] | None = None,
    ) -> None:
        self.image_sizes = dict(image_sizes or {})
        self.stack_outputs = dict(stack_outputs) if stack_outputs is not None else None
        """This stack's last outputs (`pulumi stack output --json`); None: the stack has none to read."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        state = dict(args.inputs)
        if args.typ == DOCKER_IMAGE_TYPE:
            repo = str(state.get("imageName", "")).rsplit(":", 1)[0]
            state["repoDigest"] = f"{repo}@{fake_digest(str(state.get('imageName')))}"
        elif args.typ == IMAGE_SIZE_TYPE:
            # The size exists only once a registry holds the image: unknown, as in a preview.
            size = self.image_sizes.get(args.name)
            state["size_bytes"] = size if size is not None else UNKNOWN
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        if args.token == READ_STACK_OUTPUTS:
            # The engine's answer shape (pkg/resource/deploy/builtins.go readStackReference).
            outputs = self.stack_outputs or {}
            return {"name": args.args.get("name"), "outputs": outputs, "secretOutputNames": []}, []
        return {}, []


class _RecordingMonitor(pulumi_mocks.MockMonitor):
    """The SDK's mock monitor, also keeping parent, provider, dependencies and secretness."""

    def __init__(self, mocks: pulumi.runtime.Mocks) -> None:
        super().__init__(mocks)
        self.records: list[SimResource] = []

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        if request.type != STACK_TYPE:
            raw = json_format.MessageToDict(request.object)
            secrets: set[str] = set()
            inputs = _unwrap(raw, "", secrets)
            _keep_secret_outputs(response.object, secrets)
            out_secrets: set[str] = set()
            self.records.append(
                SimResource(
                    urn=response.urn,
                    type=request.type,
                    name=request.name,
                    custom=bool(request.custom),
                    parent=request.parent,
                    provider=request.provider,
                    dependencies=tuple(request.dependencies),
                    inputs=inputs,
                    secret_paths=frozenset(secrets),
                    outputs=_unwrap(json_format.MessageToDict(response.object), "", out_secrets),
                    output_secret_paths=frozenset(out_secrets),
                    raw_inputs=raw,
                )
            )
        return response


def _keep_secret_outputs(outputs: Any, secret_paths: set[str]) -> None:
    """Mark an output secret when its input was, as the engine does for every provider."""
    top = {p.split(".")[0].split("[")[0] for p in secret_paths}
    for key in top:
        if key in outputs.fields:
            value = json_format.MessageToDict(outputs.fields[key])
            if not (isinstance(value, dict) and SECRET_SIG in value):
                envelope = {SECRET_SIG: "1b47061264138c4ac30d75fd1eb44270", "value": value}
                json_format.ParseDict(envelope, outputs.fields[key])


class _LogCollector:
    """Collects what the program logs through `pulumi.log` under mocks."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def _add(self, level: str, msg: str, *args: Any, **_: Any) -> None:
        self.lines.append(f"{level}: {msg % args if args else msg}")

    def debug(self, msg: str, *args: Any, **kw: Any) -> None:
        """The SDK's own debug chatter is not the program's output."""

    def info(self, msg: str, *args: Any, **kw: Any) -> None:
        self._add("info", msg, *args, **kw)

    def warning(self, msg: str, *args: Any, **kw: Any) -> None:
        self._add("warning", msg, *args, **kw)

    def error(self, msg: str, *args: Any, **kw: Any) -> None:
        self._add("error", msg, *args, **kw)


def _run_main(main: Path) -> None:
    """Execute the program file as the language host does, as `__main__`."""
    runpy.run_path(str(main), run_name="__main__")


def simulate(
    stack: str,
    *,
    project_dir: Path = PROJECT_DIR,
    config: Mapping[str, Any] | None = None,
    password: str | None = PLACEHOLDER_PASSWORD,
    secret_config: Mapping[str, Any] | None = None,
    preview: bool = False,
    mocks: ProgramMocks | None = None,
    stack_outputs: Mapping[str, Any] | None = None,
) -> Simulation:
    """Run `__main__.py` with the stack's config (or `config`), under mocks, and return what it registered.

    `stack_outputs` answers the program's read of its own stack's outputs (used when `mocks` is None).
    """
    values = dict(read_stack_config(stack, project_dir) if config is None else config)
    secrets = dict(secret_config or {})
    if password is not None:
        secrets["gitops-deploy:registryPassword"] = password
    all_values = engine_config({**values, **secrets})
    set_all_config(all_values, [k for k in secrets if k in all_values])
    monitor = _RecordingMonitor(mocks or ProgramMocks(stack_outputs=stack_outputs))
    logger = _LogCollector()
    settings.ROOT.set(None)
    pulumi_mocks.set_mocks(
        monitor.mocks,
        project="gitops-deploy",
        stack=stack,
        preview=preview,
        monitor=monitor,
        logger=logger,  # type: ignore[arg-type]
    )
    settings.SETTINGS.rpc_manager.clear()
    settings.SETTINGS.outputs.clear()
    main = project_dir / "__main__.py"
    try:
        _sync_await(run_pulumi_func(lambda: _run_main(main)))
    except Exception as exc:
        raise ProgramFailed(exc, list(monitor.records)) from exc
    root: Any = settings.get_root_resource()
    exports = (
        {k: _sync_await(pulumi.Output.from_input(v).future()) for k, v in root.outputs.items()}
        if root is not None
        else {}
    )
    return Simulation(stack=stack, resources=list(monitor.records), exports=exports, logs=logger.lines)
