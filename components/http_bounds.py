"""What the registry client and the health probe share about HTTP: a deadline on a whole exchange, and
the cause of a failed one, read from the exception chain.

httpx's timeouts bound each socket operation, so a server that trickles bytes can stretch a request
without end; a deadline bounds the whole exchange. A failure arrives as a chain of exceptions (httpx
wraps httpcore, which wraps the socket's or ssl's error; anyio wraps a failed connect in an exception
group), and the cause a person needs is somewhere inside it.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import httpx

T = TypeVar("T")
Clock = Callable[[], float]

# Cause kinds; their text is what the health report shows in its result column.
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


class DeadlineExceeded(TimeoutError):
    """A whole exchange did not finish before its deadline."""


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
            raise DeadlineExceeded(f"{what} did not finish within {self.seconds:g}s")


def call_within(seconds: float, fn: Callable[[], T], *, what: str) -> T:
    """Run a blocking call under a deadline: in a daemon thread that is abandoned when time runs out.

    A blocking socket read cannot be interrupted from outside; abandoning the thread is what bounds
    the caller's wait. Whatever `fn` raises is raised here, in the caller's thread.
    """
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
        raise DeadlineExceeded(f"{what} did not finish within {seconds:g}s")
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
        raise DeadlineExceeded(f"{what} did not finish within {seconds:g}s") from None


@dataclass(frozen=True)
class Cause:
    """Why an exchange failed: a kind (one of the constants above) and a one-line detail."""

    kind: str
    detail: str


def chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception, its causes and contexts, and the members of any exception group, each once."""
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
        for linked in (current.__cause__, current.__context__):
            if linked is not None:
                todo.append(linked)


def one_line(text: str) -> str:
    """Text as one line of at most _DETAIL_CHARS characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= _DETAIL_CHARS else flat[: _DETAIL_CHARS - 3] + "..."


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
