"""What the HTTP clients share: a deadline on a whole exchange, a body bounded in every encoding, the cause
of a failed exchange read from its exception chain (docs/engine-rules.md#httpx-bounds)."""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import httpx

from model.errors import GitopsError

T = TypeVar("T")
Clock = Callable[[], float]

# Cause kinds; the health report shows their text.
TIMEOUT = "timeout"
TLS = "TLS"
DNS = "DNS"
REFUSED = "refused"
CONNECT = "connect error"
INVALID_URL = "invalid URL"
REDIRECT_LOOP = "redirect loop"
PROTOCOL = "protocol error"
UNEXPECTED = "unexpected error"

_DETAIL_CHARS = 200
"""A cause's detail is cut to this: it goes into one line of an error message."""
MAX_ENCODINGS = 3
"""A body encoded more often than this (`Content-Encoding: gzip, gzip, gzip, gzip`) is refused unread."""
ENCODINGS = ("gzip", "x-gzip", "deflate", "identity")
"""What `BoundedBody` decodes; clients ask for no other (`ACCEPT_ENCODING`)."""
ACCEPT_ENCODING = "gzip, deflate"


class DeadlineExceeded(GitopsError, TimeoutError):
    """A whole exchange did not finish before its deadline."""

    @classmethod
    def of(cls, what: str, seconds: float) -> DeadlineExceeded:
        return cls(f"{what} did not finish within {seconds:g}s")


class BodyRefused(GitopsError, ValueError):
    """A body that is too large, encoded or decoded, or that does not decode; the message is one line."""


class Deadline:
    """A wall-clock bound on a whole exchange, from now; the clock is injectable for tests."""

    def __init__(self, seconds: float, clock: Clock = time.monotonic) -> None:
        self.seconds = seconds
        self._clock = clock
        self._end = clock() + seconds

    def left(self) -> float:
        """Seconds left (negative once passed)."""
        return self._end - self._clock()

    def check(self, what: str) -> None:
        """Raise DeadlineExceeded naming `what` once the deadline has passed."""
        if self.left() <= 0:
            raise DeadlineExceeded.of(what, self.seconds)


def call_within(seconds: float, fn: Callable[[], T], *, what: str) -> T:
    """Run a blocking call in a daemon thread, abandoned when `seconds` run out (a blocking read cannot be
    interrupted); whatever `fn` raises is raised here."""
    box: list[T | BaseException] = []

    def run() -> None:
        try:
            box.append(fn())
        except BaseException as exc:  # handed to the caller's thread
            box.append(exc)

    worker = threading.Thread(target=run, name="http-deadline", daemon=True)
    worker.start()
    worker.join(seconds)
    if not box:
        raise DeadlineExceeded.of(what, seconds)
    result = box[0]
    if isinstance(result, BaseException):
        raise result
    return result


async def await_within(seconds: float, awaitable: Awaitable[T], *, what: str) -> T:
    """Await under a deadline; the awaited work is cancelled when time runs out."""
    try:
        async with asyncio.timeout(seconds):
            return await awaitable
    except TimeoutError as exc:
        if isinstance(exc, DeadlineExceeded):
            raise
        raise DeadlineExceeded.of(what, seconds) from None


class _Inflater:
    """One `Content-Encoding` layer, decoded a chunk at a time, never producing more than it is allowed."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        self.total = 0
        self._deflate_fallback = encoding == "deflate"
        # gzip: the header and trailer zlib checks; deflate: the zlib wrapper (raw deflate is tried second).
        self._obj = zlib.decompressobj(16 + zlib.MAX_WBITS if "gzip" in encoding else zlib.MAX_WBITS)

    def decode(self, data: bytes, room: int) -> bytes:
        """Up to `room` decoded bytes for `data`; BodyRefused when there would be more, or it is corrupt."""
        try:
            out = self._obj.decompress(data, room + 1)
        except zlib.error as exc:
            if not (self._deflate_fallback and self.total == 0):
                raise BodyRefused(f"a body that does not decode as {self.encoding} ({exc})") from None
            # Some servers send raw deflate under `deflate`, as httpx's DeflateDecoder also accepts.
            self._obj = zlib.decompressobj(-zlib.MAX_WBITS)
            self._deflate_fallback = False
            return self.decode(data, room)
        self._deflate_fallback = False
        if len(out) > room:  # max_length was reached: the rest stays undecoded, never held
            raise BodyRefused(f"a body that decodes to more than {self.total + room} bytes")
        self.total += len(out)
        return out

    def finished(self) -> bool:
        """Whether the encoded stream ended properly (a truncated one did not)."""
        return self._obj.eof


class BoundedBody:
    """A response body decoded as its raw chunks arrive, each `Content-Encoding` layer with zlib's
    `max_length`, so no form of it is ever held past `limit` bytes (docs/engine-rules.md#httpx-bounds)."""

    def __init__(self, content_encoding: str, limit: int) -> None:
        names = [e.strip().lower() for e in content_encoding.split(",") if e.strip()]
        if len(names) > MAX_ENCODINGS:
            raise BodyRefused(f"a body encoded {len(names)} times (Content-Encoding: {content_encoding})")
        unknown = [e for e in names if e not in ENCODINGS]
        if unknown:
            raise BodyRefused(f"a body in Content-Encoding {unknown[0]!r}, which is not asked for")
        # Encodings are listed in the order they were applied: decode the last one first.
        self._layers = [_Inflater(e) for e in reversed(names) if e != "identity"]
        self.limit = limit
        self.raw = 0
        self._body = bytearray()

    def feed(self, chunk: bytes) -> None:
        """Take the next raw chunk; BodyRefused as soon as any form of the body exceeds the limit."""
        self.raw += len(chunk)
        if self.raw > self.limit:
            raise BodyRefused(f"more than {self.limit} bytes")
        data = chunk
        for layer in self._layers:
            data = layer.decode(data, self.limit - layer.total)
        if len(self._body) + len(data) > self.limit:
            raise BodyRefused(f"a body that decodes to more than {self.limit} bytes")
        self._body += data

    def content(self) -> bytes:
        """The decoded body; BodyRefused when an encoded layer was cut short."""
        if self.raw:
            for layer in self._layers:
                if not layer.finished():
                    raise BodyRefused(f"a truncated {layer.encoding} body")
        return bytes(self._body)


@dataclass(frozen=True)
class Cause:
    """Why an exchange failed: a kind (one of the constants above) and a one-line detail."""

    kind: str
    detail: str


def chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception, its causes and contexts, the members of a group and the exceptions it wraps in its
    arguments or `reason` (requests and urllib3 do), each once."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        if isinstance(current, BaseExceptionGroup):
            todo.extend(current.exceptions)
        linked = (current.__cause__, current.__context__, getattr(current, "reason", None), *current.args)
        todo += [link for link in linked if isinstance(link, BaseException)]


def one_line(text: str, limit: int = _DETAIL_CHARS) -> str:
    """Text as one line of at most `limit` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def describe(exc: BaseException) -> str:
    """`Type: message` of the innermost useful exception, on one line (groups are unwrapped)."""
    leaf = exc
    for current in chain(exc):
        if not isinstance(current, BaseExceptionGroup):
            leaf = current
            if not isinstance(current, httpx.HTTPError | DeadlineExceeded):
                break
    message = str(leaf)
    return one_line(f"{type(leaf).__name__}: {message}" if message else type(leaf).__name__)


def _tls_detail(exc: ssl.SSLError) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate verification failed ({getattr(exc, 'verify_message', None) or exc})"
    if exc.reason in ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG"):
        return f"TLS handshake failed ({exc.reason}: the server does not speak TLS, plain HTTP?)"
    return f"TLS handshake failed ({exc.reason or exc})"


def classify(exc: BaseException) -> Cause:
    """The cause of a failed exchange, from the whole exception chain."""
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return Cause(TIMEOUT, one_line(str(exc)) or "timed out")
    links = list(chain(exc))
    for link in links:
        if isinstance(link, ssl.SSLError):
            return Cause(TLS, _tls_detail(link))
        if isinstance(link, socket.gaierror):
            return Cause(DNS, one_line(f"name resolution failed ({link.strerror or link})"))
        if isinstance(link, ConnectionRefusedError):
            return Cause(REFUSED, "connection refused")
        if isinstance(link, OverflowError) or (isinstance(link, ValueError) and "port" in str(link)):
            # asyncio's connect rejects a port over 65535 (anyio wraps it in an exception group).
            return Cause(INVALID_URL, describe(link))
        if isinstance(link, TimeoutError | httpx.TimeoutException):
            return Cause(TIMEOUT, one_line(str(link)) or "timed out")
    text = str(exc)
    if "CERTIFICATE_VERIFY_FAILED" in text or "SSL" in text or "certificate" in text.lower():
        return Cause(TLS, one_line(f"TLS failed ({text})"))
    if isinstance(exc, httpx.TooManyRedirects):
        return Cause(REDIRECT_LOOP, describe(exc))
    if isinstance(exc, httpx.InvalidURL | httpx.UnsupportedProtocol):
        return Cause(INVALID_URL, describe(exc))
    if isinstance(exc, httpx.ConnectError):
        kind = REFUSED if "refused" in text.lower() else CONNECT
        return Cause(kind, describe(exc))
    if isinstance(exc, httpx.HTTPError | OSError):
        return Cause(PROTOCOL, describe(exc))
    return Cause(UNEXPECTED, describe(exc))
