"""Build an image with the local Docker Engine and measure what a push of it would upload.

The figure is the one the registry reports once the image is pushed (ImageSize's `size_bytes`): every
layer as a gzip-compressed tar, plus the config blob. Docker keeps layers uncompressed and compresses
them while pushing (moby `distribution/push_v2.go` `uploadUsingSession` -> `compress` in
`distribution/push.go`: `gzip.NewWriter`, Go's default level); the Engine API's
`GET /images/{id}/get` (`docker save`) hands out exactly those layer tars and that config blob, so
each layer is compressed here the same way (zlib at level 6, gzip framing) and counted, never stored.

The compressed size never exceeds the uncompressed one by more than deflate's framing, so when the
uncompressed tars plus that framing are already under a limit, nothing needs compressing.

The Engine is found the way the Docker CLI finds it: `DOCKER_HOST` (and `DOCKER_TLS_VERIFY`,
`DOCKER_CERT_PATH`), else the default socket. Builds use the classic builder (the Engine API's
`POST /build` without BuildKit's session), on the host network, from the context pulumi-docker sends
(model/build_context.py), not the one the docker SDK would tar.
"""

from __future__ import annotations

import io
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

from model.build_context import ContextTimeout, write_context_tar
from model.content_tag import ContextError

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


class EngineUnavailable(Exception):
    """No Docker Engine answered where DOCKER_HOST (or the default socket) points."""


class ImageError(Exception):
    """The engine could not hand out the image (unknown ID, unreadable archive)."""


class BuildFailed(Exception):
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
    """A client for the engine DOCKER_HOST names, after a bounded ping; EngineUnavailable otherwise."""
    try:
        probe = docker.from_env(timeout=int(CONNECT_TIMEOUT_S))
    except docker.errors.DockerException as exc:
        raise EngineUnavailable(f"no Docker Engine reachable at {engine_address()} ({_cause(exc)})") from None
    try:
        version = str(probe.version()["ApiVersion"])
    except (docker.errors.DockerException, requests.exceptions.RequestException, KeyError) as exc:
        raise EngineUnavailable(f"no Docker Engine reachable at {engine_address()} ({_cause(exc)})") from None
    finally:
        probe.close()
    return docker.from_env(timeout=timeout, version=version)


def _cause(exc: BaseException) -> str:
    """The innermost OS-level reason (`No such file or directory`), else the message."""
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError) and current.strerror:
            return current.strerror
        stack += [a for a in current.args if isinstance(a, BaseException)]
        stack += [e for e in (getattr(current, "reason", None), current.__cause__, current.__context__) if e]
    text = str(exc).removeprefix("Error while fetching server API version: ")
    return text[:300]


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
    except (ContextError, ContextTimeout) as exc:
        text = (
            str(exc)
            if isinstance(exc, ContextTimeout)
            else f"the build context cannot be sent: expected {exc}"
        )
        raise BuildFailed(text, None) from None
    except docker.errors.APIError as exc:
        raise BuildFailed(str(exc.explanation or exc), steps[-1] if steps else None) from None
    except requests.exceptions.RequestException as exc:
        # A read that waited longer than the client's timeout: the engine went silent mid-build.
        raise BuildFailed(
            f"the engine stopped answering ({_cause(exc)})", steps[-1] if steps else None
        ) from None
    if image_id is None:
        raise BuildFailed(
            "the engine reported no image ID", steps[-1] if steps else None, output[-_OUTPUT_LINES:]
        )
    for extra in tags[1:]:
        repository, _, tag = extra.rpartition(":")
        client.api.tag(image_id, repository, tag)
    return image_id


def _follow(
    stream: Iterator[dict[str, Any]], steps: list[str], output: list[str], deadline: float, deadline_s: float
) -> str | None:
    """Read the build's messages until it ends: the image ID, or BuildFailed at the failing step."""
    image_id: str | None = None
    for message in stream:
        if "error" in message or "errorDetail" in message:
            detail = message.get("errorDetail") or {}
            text = str(detail.get("message") or message.get("error") or "build failed").strip()
            raise BuildFailed(text, steps[-1] if steps else None, output[-_OUTPUT_LINES:])
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
            raise BuildFailed(
                f"took longer than {deadline_s:g}s", steps[-1] if steps else None, output[-_OUTPUT_LINES:]
            )
    return image_id


# -- measuring ----------------------------------------------------------------------------------


def gzip_upper_bound(size: int) -> int:
    """Most bytes gzip can turn `size` bytes into: stored blocks when nothing compresses.

    Go's compress/flate (Docker's push) ends a block at most every 16 KiB of input at level 6 and
    falls back to a stored block (5 bytes of framing) when that is smaller; zlib's deflateBound is
    about 5 bytes per 16 KiB too. Six per 16 KiB plus 64 for gzip's header and trailer covers both.
    """
    return size + 6 * (size // 16_384 + 1) + 64


@dataclass
class _Entry:
    size: int
    compressed: int | None = None
    data: bytes | None = None


class _ChunkReader(io.RawIOBase):
    """A file-like view of the engine's chunked archive stream, for tarfile's streaming mode.

    A thread reads ahead (a few MiB), so the engine writing the archive, the socket and the
    compression (zlib releases the GIL) overlap instead of taking turns.
    """

    def __init__(self, chunks: Iterator[bytes], depth: int = 8) -> None:
        self._queue: queue.Queue[bytes | BaseException | None] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._buffer = memoryview(b"")
        self._done = False
        threading.Thread(target=self._read_ahead, args=(chunks,), daemon=True).start()

    def _read_ahead(self, chunks: Iterator[bytes]) -> None:
        item: bytes | BaseException | None = None
        try:
            for item in chunks:
                while not self._put(item):
                    if self._stop.is_set():
                        return
            item = None
        except BaseException as exc:  # handed to the reading thread, which raises it
            item = exc
        while not self._put(item) and not self._stop.is_set():
            pass

    def _put(self, item: bytes | BaseException | None) -> bool:
        try:
            self._queue.put(item, timeout=0.2)
        except queue.Full:
            return False
        return True

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
    if first[:2] == b"\x1f\x8b":  # an engine that keeps compressed layers hands them out as they are
        return len(first) + sum(len(c) for c in iter(lambda: reader.read(_CHUNK), b""))
    compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)
    total = len(compressor.compress(first))
    for chunk in iter(lambda: reader.read(_CHUNK), b""):
        total += len(compressor.compress(chunk))
    return total + len(compressor.flush())


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
    """The size a push of `image` (an ID or a name in the engine) would upload.

    With a `limit`, the uncompressed bound is tried first when the image's content is under it:
    one read of the archive, no compression. Otherwise every layer is compressed.
    """
    start = time.perf_counter()
    try:
        inspect = client.api.inspect_image(image)
    except docker.errors.NotFound:
        raise ImageError(f"image {image} is not in the engine at {engine_address()}") from None
    except (docker.errors.APIError, requests.exceptions.RequestException) as exc:
        raise ImageError(f"inspecting image {image} failed: {_cause(exc)}") from None
    image_id = str(inspect["Id"])
    # The engine's `Size` is about the layer tars without their headers: when it already reaches the
    # limit the bound will not be under it, and reading the archive for it would be wasted. Only the
    # bound itself decides.
    if limit is not None and int(inspect.get("Size") or 0) < limit:
        entries = _scan(client, image_id, compress=False)
        config, layers = _layout(entries, image_id)
        raw = entries[config].size + sum(entries[p].size for p in layers)
        bound = entries[config].size + sum(gzip_upper_bound(entries[p].size) for p in layers)
        if bound < limit:
            return ImageMeasurement(
                image_id, bound, False, raw, entries[config].size, len(layers), limit,
                time.perf_counter() - start,
            )  # fmt: skip
    entries = _scan(client, image_id, compress=True)
    config, layers = _layout(entries, image_id)
    raw = entries[config].size + sum(entries[p].size for p in layers)
    size = entries[config].size + sum(entries[p].compressed or 0 for p in layers)
    return ImageMeasurement(
        image_id, size, True, raw, entries[config].size, len(layers), limit, time.perf_counter() - start
    )
