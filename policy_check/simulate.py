"""Run the real program under the SDK's mocks and record every resource it registers."""

from __future__ import annotations

import gc
import hashlib
import logging
import runpy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pulumi
from google.protobuf import json_format
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import settings
from pulumi.runtime.config import set_all_config
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from components.image_size import LOCAL_SOURCE, REGISTRY_SOURCE
from model.config_rules import PASSWORD_KEY
from model.errors import GitopsError
from model.failed_releases import READ_STACK_OUTPUTS
from model.image_ref import is_local_image_id
from model.names import DOCKER_IMAGE_TYPE, IMAGE_SIZE_TYPE, PROJECT, STACK_REFERENCE_TYPE, STACK_TYPE
from model.stack_files import PROJECT_DIR, engine_config, read_stack_config, secret_keys

if TYPE_CHECKING:
    from clients.image_engine import ImageMeasurement

SECRET_SIG = "4dabf18193072939515e22adb298388d"
SECRET_VALUE = "1b47061264138c4ac30d75fd1eb44270"
"""The engine's secret envelope: `{SECRET_SIG: SECRET_VALUE, "value": ...}`."""
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
    custom_timeouts: dict[str, str] = field(default_factory=dict)
    """The `customTimeouts` option as sent (create, update, delete: Go durations), the empty ones left out."""


class ProgramFailed(GitopsError):
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
    upstream: dict[str, Any] = field(default_factory=dict)
    """The exports of the stacks it promotes from, by stack, as its mocks answered them."""

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
        if value.get(SECRET_SIG) == SECRET_VALUE:
            secrets.add(path)
            return _unwrap(value.get("value"), path, secrets)
        return {k: _unwrap(v, f"{path}.{k}" if path else k, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap(v, f"{path}[{i}]", secrets) for i, v in enumerate(value)]
    return value


def fake_digest(seed: str) -> str:
    """A stable sha256 digest standing in for a pushed image's."""
    return "sha256:" + hashlib.sha256(seed.encode()).hexdigest()


def fake_image_id(image_name: str) -> str:
    """A stable local image ID standing in for a build's (a bare `sha256:...`, as `docker inspect` gives)."""
    return fake_digest(f"local image {image_name}")


def pushed_reference(image_name: str) -> str:
    """The stand-in `repository@sha256:...` the mocks answer for a pushed `repository:tag`."""
    return f"{image_name.rsplit(':', 1)[0]}@{fake_digest(image_name)}"


class ProgramMocks(pulumi.runtime.Mocks):
    """Answers every registration as the real providers shape their outputs
    (docs/engine-rules.md#program-mocks)."""

    def __init__(
        self,
        image_sizes: Mapping[str, float] | None = None,
        local_images: Mapping[str, ImageMeasurement] | None = None,
        stack_outputs: Mapping[str, Mapping[str, Any]] | None = None,
        own_outputs: Mapping[str, Any] | None = None,
    ) -> None:
        self.image_sizes = dict(image_sizes or {})  # ImageSize name -> the registry's size_bytes
        self.local_images = dict(local_images or {})  # `repository:tag` -> its measured local build
        self._answered: dict[str, ImageMeasurement] = {}  # what an Image answered -> the build behind it
        self.stack_outputs = dict(stack_outputs or {})  # other stacks' outputs, by the stack's last segment
        self.stack_references: list[str] = []
        self.own_outputs = dict(own_outputs) if own_outputs is not None else None

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        state = dict(args.inputs)
        if args.typ == DOCKER_IMAGE_TYPE:
            state.update(self._docker_image(state))
        elif args.typ == IMAGE_SIZE_TYPE:
            state.update(self._image_size(args.name, state))
        elif args.typ == STACK_REFERENCE_TYPE:
            return self._stack_reference(str(state.get("name", "")))
        return f"{args.name}-id", state

    def _stack_reference(self, name: str) -> tuple[str, dict[str, Any]]:
        """Answer as the engine's builtin provider does: a stack not given is unknown in a preview."""
        self.stack_references.append(name)
        given = self.stack_outputs.get(name.rsplit("/", 1)[-1])
        outputs: Any = dict(given) if given is not None else UNKNOWN if settings.is_dry_run() else {}
        return name, {"name": name, "outputs": outputs, "secretOutputNames": []}

    def _docker_image(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        """pulumi-docker's `repoDigest`: the build's ID in a preview or with skipPush, else the pushed one."""
        name = str(inputs.get("imageName", ""))
        local = self.local_images.get(name)
        if pulumi.runtime.is_dry_run():
            if not inputs.get("buildOnPreview"):
                return {}  # canPreview is false: the inputs are the state, repoDigest stays unknown
            answer = local.image_id if local else fake_image_id(name)
        elif inputs.get("skipPush"):
            answer = local.image_id if local else fake_image_id(name)
        else:
            answer = pushed_reference(name)
        if local is not None:
            self._answered[answer] = local
        return {"repoDigest": answer}

    def _image_size(self, name: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
        """The registry's size once it holds the image; in a preview, the local build's (ImageSize.check)."""
        size = self.image_sizes.get(name)
        if size is not None:
            return {"size_bytes": size, "size_source": REGISTRY_SOURCE}
        image = inputs.get("image")
        local = self._answered.get(image) if isinstance(image, str) else None
        if local is None:
            # Nothing measured it: unknown, as in a preview without an engine, or before the push.
            return {"size_bytes": UNKNOWN}
        how = "preview build" if is_local_image_id(image) else "built by the check, not pushed"
        return {
            "size_bytes": float(local.size_bytes),
            "layers": float(local.layers),
            "size_source": f"{LOCAL_SOURCE}: {how} {local.image_id[:19]}, {local.method}",
        }

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        if args.token == READ_STACK_OUTPUTS:
            outputs = self.own_outputs or {}
            return {"name": args.args.get("name"), "outputs": outputs, "secretOutputNames": []}, []
        return {}, []


class _RecordingMonitor(pulumi_mocks.MockMonitor):
    """The SDK's mock monitor, also keeping parent, provider, dependencies and secretness."""

    def __init__(
        self, mocks: pulumi.runtime.Mocks, on_record: Callable[[SimResource], None] | None = None
    ) -> None:
        super().__init__(mocks)
        self.records: list[SimResource] = []
        self.on_record = on_record

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        if request.type != STACK_TYPE:
            raw = json_format.MessageToDict(request.object)
            secrets: set[str] = set()
            inputs = _unwrap(raw, "", secrets)
            _keep_secret_outputs(response.object, secrets)
            out_secrets: set[str] = set()
            record = SimResource(
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
                custom_timeouts={
                    k: v for k, v in json_format.MessageToDict(request.customTimeouts).items() if v
                },
            )
            self.records.append(record)
            if self.on_record is not None:
                self.on_record(record)
        return response


def _keep_secret_outputs(outputs: Any, secret_paths: set[str]) -> None:
    """Mark an output secret when its input was, as the engine does for every provider."""
    top = {p.split(".")[0].split("[")[0] for p in secret_paths}
    for key in top:
        if key in outputs.fields:
            value = json_format.MessageToDict(outputs.fields[key])
            if not (isinstance(value, dict) and SECRET_SIG in value):
                envelope = {SECRET_SIG: SECRET_VALUE, "value": value}
                json_format.ParseDict(envelope, outputs.fields[key])


class _LogCollector:
    """Collects what the program logs through `pulumi.log` under mocks (not the SDK's debug chatter)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def debug(self, msg: str, *args: Any, **kw: Any) -> None:
        pass

    def info(self, msg: str, *args: Any, **kw: Any) -> None:
        self.lines.append(f"info: {msg % args if args else msg}")

    def warning(self, msg: str, *args: Any, **kw: Any) -> None:
        self.lines.append(f"warning: {msg % args if args else msg}")

    def error(self, msg: str, *args: Any, **kw: Any) -> None:
        self.lines.append(f"error: {msg % args if args else msg}")


def _run_main(main: Path) -> None:
    """Execute the program file as the language host does, as `__main__`."""
    runpy.run_path(str(main), run_name="__main__")


def _without_frames(exc: BaseException) -> BaseException:
    """The exception and its chain without tracebacks, whose frames would keep the run's Outputs alive."""
    pending: list[BaseException] = [exc]
    done: set[int] = set()
    while pending:
        current = pending.pop()
        if id(current) in done:
            continue  # chains can loop (an exception raised while handling itself)
        done.add(id(current))
        current.__traceback__ = None
        pending += [e for e in (current.__cause__, current.__context__) if e is not None]
    return exc


def _collect_abandoned_outputs() -> None:
    """Finalize the failed run's Output futures now, quietly (docs/engine-rules.md#program-mocks)."""
    asyncio_log = logging.getLogger("asyncio")
    level = asyncio_log.level
    asyncio_log.setLevel(logging.CRITICAL)
    try:
        gc.collect()
    finally:
        asyncio_log.setLevel(level)


def simulate(
    stack: str,
    *,
    project_dir: Path = PROJECT_DIR,
    config: Mapping[str, Any] | None = None,
    password: str | None = PLACEHOLDER_PASSWORD,
    secret_config: Mapping[str, Any] | None = None,
    preview: bool = False,
    mocks: ProgramMocks | None = None,
    own_outputs: Mapping[str, Any] | None = None,
    on_record: Callable[[SimResource], None] | None = None,
) -> Simulation:
    """Run `__main__.py` with the stack's config (or `config`) under mocks; what it registered (each
    record also handed to `on_record` as it is made, from the SDK's threads)."""
    values = dict(read_stack_config(stack, project_dir) if config is None else config)
    secrets = dict(secret_config or {})
    if password is not None:
        secrets[f"{PROJECT}:{PASSWORD_KEY}"] = password
    all_values = engine_config({**values, **secrets})
    # A `secure:` value in the stack file reads as a placeholder; the CLI marks its key secret, so here too.
    set_all_config(all_values, [k for k in secrets if k in all_values] + secret_keys(values))
    monitor = _RecordingMonitor(mocks or ProgramMocks(own_outputs=own_outputs), on_record)
    logger = _LogCollector()
    settings.ROOT.set(None)
    pulumi_mocks.set_mocks(
        monitor.mocks,
        project=PROJECT,
        stack=stack,
        preview=preview,
        monitor=monitor,
        logger=logger,  # type: ignore[arg-type]
    )
    settings.SETTINGS.rpc_manager.clear()
    settings.SETTINGS.outputs.clear()
    main = project_dir / "__main__.py"
    failed: ProgramFailed | None = None
    try:
        _sync_await(run_pulumi_func(lambda: _run_main(main)))
    except Exception as exc:
        failed = ProgramFailed(_without_frames(exc), list(monitor.records))
    if failed is not None:
        _collect_abandoned_outputs()
        raise failed
    root: Any = settings.get_root_resource()
    exports = (
        {k: _sync_await(pulumi.Output.from_input(v).future()) for k, v in root.outputs.items()}
        if root is not None
        else {}
    )
    return Simulation(stack=stack, resources=list(monitor.records), exports=exports, logs=logger.lines)
