"""Build an image with the local Docker Engine and measure what a push of it would upload: each layer tar
gzip-compressed as Docker's push does, plus the config blob (docs/engine-rules.md#docker-engine)."""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import os
import queue
import re
import tarfile
import tempfile
import threading
import time
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests.exceptions

from clients.http_bounds import chain, one_line
from model.build_context import ContextTimeout, write_context_tar
from model.content_tag import ContextError
from model.errors import GitopsError

CONNECT_TIMEOUT_S = 10.0
"""How long reaching the engine may take before it counts as unreachable."""
IO_TIMEOUT_S = 600
"""Longest wait for the next bytes from the engine: a RUN step silent for longer fails the build."""
BUILD_DEADLINE_S = 3600.0
"""Longest a whole build may take."""
GZIP_LEVEL = 6
"""zlib's default, and the level Go's `gzip.DefaultCompression` stands for, which Docker's push uses."""
DEFAULT_HOST = "unix:///var/run/docker.sock"
_CHUNK = 1 << 20
_KEEP = 1 << 20
"""Files of the saved archive up to this size are kept in memory (manifest.json, the config blob)."""
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)$")
_OUTPUT_LINES = 8
"""Lines of a failing step's output quoted in the error."""


class EngineUnavailable(GitopsError):
    """No Docker Engine answered where DOCKER_HOST (or the default socket) points."""


class ImageError(GitopsError):
    """The engine could not hand out the image (unknown ID, unreadable archive)."""


class BuildFailed(GitopsError):
    """A build stopped: at which step, with the engine's message and the step's last output."""

    def __init__(self, message: str, step: str | None, output: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.step = step
        """`Step 3/5 : RUN make`, as the classic builder numbers it; None before the first step."""
        self.output = tuple(output)

    def describe(self, app: str, dockerfile: str) -> str:
        """One error naming the app, the Dockerfile and the failing step."""
        where = f"at {self.step}" if self.step else "before its first step"
        text = f"app '{app}': docker build of {dockerfile} failed {where}: {self.message}"
        if self.output:
            text += " | last output: " + " / ".join(self.output)
        return text


@dataclass(frozen=True)
class BuildSpec:
    """What pulumi-docker builds for one app: context, Dockerfile, build args and platform."""

    context: Path
    dockerfile: Path
    build_args: Mapping[str, str] = field(default_factory=dict)
    platform: str | None = None
    tags: tuple[str, ...] = ()
    """Names to give the image in the engine (pulumi-docker tags its build with the image name)."""
    root: Path | None = None
    """The repository, which the context's symlinks and ignore file must not leave; default: the
    folder holding both the context and the Dockerfile."""

    def repository(self) -> Path:
        """`root`, or the folder holding both the context and the Dockerfile."""
        return self.root or Path(
            os.path.commonpath([self.context.resolve(), self.dockerfile.resolve().parent])
        )


@dataclass(frozen=True)
class ImageMeasurement:
    """The size of one local image as a push would upload it, and how it was found."""

    image_id: str
    size_bytes: int
    """The judged figure: the compressed size, or (`compressed` False) an upper bound of it."""
    compressed: bool
    """True when every layer was compressed; False when the uncompressed bound was under `limit`."""
    uncompressed_bytes: int
    """Layer tars as the engine stores them, plus the config blob."""
    config_bytes: int
    layers: int
    limit: int | None = None
    """The limit the bound was compared with, when one was given."""
    seconds: float = 0.0

    @property
    def method(self) -> str:
        """How the figure was obtained, for reports and the `size_source` output."""
        if self.compressed:
            return (
                f"gzip of each of the {self.layers} layer tar(s) + the {self.config_bytes}-byte config blob, "
                "as a push uploads them"
            )
        return (
            f"upper bound: the {self.layers} layer tar(s) uncompressed, plus gzip's worst-case framing, "
            f"+ the config blob; under the limit of {self.limit:,} bytes, so nothing was compressed"
        )

    def describe(self) -> str:
        """`6,291,968 bytes compressed (...)` or `at most 4,000,000 bytes (...)`."""
        if self.compressed:
            return f"{self.size_bytes:,} bytes compressed ({self.method})"
        return f"at most {self.size_bytes:,} bytes ({self.method})"


def engine_address() -> str:
    """Where the engine is looked for: DOCKER_HOST, else the default socket."""
    return os.environ.get("DOCKER_HOST") or DEFAULT_HOST


def connect(timeout: int = IO_TIMEOUT_S) -> docker.DockerClient:
    """The client for the engine at DOCKER_HOST, after a bounded version ping; or EngineUnavailable."""
    try:
        client = docker.from_env(timeout=int(CONNECT_TIMEOUT_S))  # asks the engine its API version
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise EngineUnavailable(f"no Docker Engine reachable at {engine_address()} ({_cause(exc)})") from None
    client.api.timeout = timeout
    return client


def _cause(exc: BaseException) -> str:
    """The innermost OS-level reason (`No such file or directory`), else the message."""
    for link in chain(exc):
        if isinstance(link, OSError) and link.strerror:
            return link.strerror
    return one_line(str(exc).removeprefix("Error while fetching server API version: "))


def build_image(client: docker.DockerClient, spec: BuildSpec, *, deadline_s: float = BUILD_DEADLINE_S) -> str:
    """Build with the classic builder on the host network; return the image ID or raise BuildFailed."""
    tags = list(spec.tags)
    steps: list[str] = []
    output: list[str] = []
    image_id: str | None = None
    deadline = time.monotonic() + deadline_s
    try:
        # On disk, not in memory: a context may be large; the engine reads it from the start.
        with tempfile.TemporaryFile(prefix="gitops-deploy-context-") as body:
            dockerfile = write_context_tar(
                spec.context, spec.dockerfile, spec.repository(), body, deadline=deadline
            )
            body.seek(0)
            stream = client.api.build(
                fileobj=body,
                custom_context=True,
                dockerfile=dockerfile,
                tag=tags[0] if tags else None,
                buildargs=dict(spec.build_args) or None,
                platform=spec.platform,
                network_mode="host",
                rm=True,
                forcerm=True,
                decode=True,
                use_config_proxy=False,
            )
            image_id = _follow(stream, steps, output, deadline, deadline_s)
    except ContextTimeout as exc:
        raise BuildFailed(str(exc), None) from None
    except ContextError as exc:
        raise BuildFailed(f"the build context cannot be sent: expected {exc}", None) from None
    except docker.errors.APIError as exc:
        raise BuildFailed(str(exc.explanation or exc), _last(steps)) from None
    except requests.exceptions.RequestException as exc:
        # A read that waited longer than the client's timeout: the engine went silent mid-build.
        raise BuildFailed(f"the engine stopped answering ({_cause(exc)})", _last(steps)) from None
    if image_id is None:
        raise BuildFailed("the engine reported no image ID", _last(steps), output[-_OUTPUT_LINES:])
    for extra in tags[1:]:
        repository, _, tag = extra.rpartition(":")
        client.api.tag(image_id, repository, tag)
    return image_id


def _last(steps: Sequence[str]) -> str | None:
    return steps[-1] if steps else None


def _follow(
    stream: Iterator[dict[str, Any]], steps: list[str], output: list[str], deadline: float, deadline_s: float
) -> str | None:
    """Read the build's messages until it ends: the image ID, or BuildFailed at the failing step."""
    image_id: str | None = None
    for message in stream:
        if "error" in message or "errorDetail" in message:
            detail = message.get("errorDetail") or {}
            text = str(detail.get("message") or message.get("error") or "build failed").strip()
            raise BuildFailed(text, _last(steps), output[-_OUTPUT_LINES:])
        aux = message.get("aux")
        if isinstance(aux, dict) and isinstance(aux.get("ID"), str):
            image_id = aux["ID"]
        for line in _ANSI.sub("", str(message.get("stream", ""))).splitlines():
            line = line.rstrip()
            if _STEP.match(line):
                steps.append(line)
                output.clear()
            elif line and not line.startswith((" ---> ", "Removing intermediate container")):
                output.append(line)
        if time.monotonic() > deadline:
            raise BuildFailed(f"took longer than {deadline_s:g}s", _last(steps), output[-_OUTPUT_LINES:])
    return image_id


def gzip_upper_bound(size: int) -> int:
    """Most bytes gzip can turn `size` bytes into (docs/engine-rules.md#dockers-push-compression)."""
    return size + 6 * (size // 16_384 + 1) + 64


@dataclass
class _Entry:
    size: int
    compressed: int | None = None
    data: bytes | None = None


class _ChunkReader(io.RawIOBase):
    """The engine's chunked archive stream as a file for tarfile, read ahead by a thread so that the engine,
    the socket and the compression (zlib releases the GIL) overlap."""

    def __init__(self, chunks: Iterator[bytes], depth: int = 8) -> None:
        self._queue: queue.Queue[bytes | BaseException | None] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._buffer = memoryview(b"")
        self._done = False
        threading.Thread(target=self._read_ahead, args=(chunks,), daemon=True).start()

    def _read_ahead(self, chunks: Iterator[bytes]) -> None:
        try:
            if all(self._put(chunk) for chunk in chunks):
                self._put(None)
        except BaseException as exc:  # handed to the reading thread, which raises it
            self._put(exc)

    def _put(self, item: bytes | BaseException | None) -> bool:
        """Queue `item`; False when the reader closed first."""
        while not self._stop.is_set():
            with contextlib.suppress(queue.Full):
                self._queue.put(item, timeout=0.2)
                return True
        return False

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        while not self._buffer and not self._done:
            try:
                item = self._queue.get(timeout=IO_TIMEOUT_S)
            except queue.Empty:
                raise OSError(f"the engine sent nothing for {IO_TIMEOUT_S}s") from None
            if isinstance(item, BaseException):
                raise item
            if item is None:
                self._done = True
            else:
                self._buffer = memoryview(item)
        n = min(len(target), len(self._buffer))
        target[:n] = self._buffer[:n]
        self._buffer = self._buffer[n:]
        return n

    def close(self) -> None:
        self._stop.set()
        super().close()


def _gzip_size(reader: Any) -> int:
    """Bytes the gzip of a stream takes; a stream that already is gzip counts as it is."""
    first = reader.read(_CHUNK)
    rest = iter(lambda: reader.read(_CHUNK), b"")
    if first[:2] == b"\x1f\x8b":  # an engine that keeps compressed layers hands them out as they are
        return len(first) + sum(map(len, rest))
    compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)
    compressed = sum(len(compressor.compress(chunk)) for chunk in itertools.chain([first], rest))
    return compressed + len(compressor.flush())


def _scan(client: docker.DockerClient, image_id: str, *, compress: bool) -> dict[str, _Entry]:
    """Stream the saved archive once: every file's size, small files' bytes, and gzip sizes if asked."""
    entries: dict[str, _Entry] = {}
    try:
        chunks = client.api.get_image(image_id, chunk_size=_CHUNK)
        with (
            io.BufferedReader(_ChunkReader(chunks), _CHUNK) as stream,
            tarfile.open(fileobj=stream, mode="r|") as tar,
        ):
            for member in tar:
                if not member.isfile():
                    continue
                entry = _Entry(member.size)
                reader = tar.extractfile(member)
                if reader is not None and member.size <= _KEEP:
                    entry.data = reader.read()
                    if compress:
                        entry.compressed = _gzip_size(io.BytesIO(entry.data))
                elif reader is not None and compress:
                    entry.compressed = _gzip_size(reader)
                entries[member.name] = entry
    except docker.errors.APIError as exc:
        raise ImageError(f"the engine cannot hand out image {image_id}: {exc.explanation or exc}") from None
    except (requests.exceptions.RequestException, tarfile.TarError, OSError) as exc:
        raise ImageError(f"reading image {image_id} from the engine failed: {_cause(exc)}") from None
    return entries


def _layout(entries: Mapping[str, _Entry], image_id: str) -> tuple[str, list[str]]:
    """(config path, layer paths in manifest order) from the archive's manifest.json."""
    manifest = entries.get("manifest.json")
    try:
        items = json.loads(manifest.data or b"") if manifest else None
        config, layers = items[0]["Config"], list(items[0]["Layers"])  # type: ignore[index]
    except (ValueError, TypeError, KeyError, IndexError):
        raise ImageError(f"the saved archive of image {image_id} has no readable manifest.json") from None
    missing = [p for p in [config, *layers] if p not in entries]
    if missing:
        raise ImageError(f"the saved archive of image {image_id} lacks {', '.join(missing)}")
    return str(config), [str(p) for p in layers]


def measure_image(client: docker.DockerClient, image: str, *, limit: int | None = None) -> ImageMeasurement:
    """The size a push of `image` (an ID or a name) would upload; with a `limit`, the uncompressed bound is
    tried first (one read of the archive, no compression) when the engine's `Size` is under it."""
    start = time.perf_counter()
    try:
        inspect = client.api.inspect_image(image)
    except docker.errors.NotFound:
        raise ImageError(f"image {image} is not in the engine at {engine_address()}") from None
    except (docker.errors.APIError, requests.exceptions.RequestException) as exc:
        raise ImageError(f"inspecting image {image} failed: {_cause(exc)}") from None
    image_id = str(inspect["Id"])
    # `Size` is about the layer tars without headers: at the limit, the bound cannot be under it.
    compress = limit is None or int(inspect.get("Size") or 0) >= limit
    while True:
        entries = _scan(client, image_id, compress=compress)
        config, layers = _layout(entries, image_id)
        config_bytes = entries[config].size
        raw = config_bytes + sum(entries[p].size for p in layers)
        if compress:
            size = config_bytes + sum(entries[p].compressed or 0 for p in layers)
        else:
            size = config_bytes + sum(gzip_upper_bound(entries[p].size) for p in layers)
            if size >= (limit or 0):
                compress = True
                continue
        seconds = time.perf_counter() - start
        return ImageMeasurement(image_id, size, compress, raw, config_bytes, len(layers), limit, seconds)
