"""The helper the registry client and the health probe share: deadlines and failure causes."""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading

import httpx
import pytest

from clients import http_bounds as hb
from model.http_origin import origin, port_problem, server_problem, url_problem


def _raised_from(outer: BaseException, inner: BaseException) -> BaseException:
    """`outer` raised while handling `inner`, as httpx wraps httpcore's errors."""
    try:
        try:
            raise inner
        except BaseException:
            raise outer from inner
    except BaseException as exc:
        return exc


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (
            _raised_from(httpx.ConnectError("x"), ConnectionRefusedError(111, "Connection refused")),
            hb.REFUSED,
        ),
        (_raised_from(httpx.ConnectError("x"), socket.gaierror(-2, "Name or service not known")), hb.DNS),
        (_raised_from(httpx.ConnectError("x"), ssl.SSLCertVerificationError("bad cert")), hb.TLS),
        (httpx.ConnectTimeout("slow"), hb.TIMEOUT),
        (hb.DeadlineExceeded("late"), hb.TIMEOUT),
        (httpx.TooManyRedirects("loop"), hb.REDIRECT_LOOP),
        (httpx.UnsupportedProtocol("ftp"), hb.INVALID_URL),
        (httpx.RemoteProtocolError("garbage"), hb.PROTOCOL),
        # anyio wraps a failed connect in an exception group; asyncio rejects a port over 65535.
        (
            ExceptionGroup("unhandled errors", [OverflowError("connect(): port must be 0-65535.")]),
            hb.INVALID_URL,
        ),
        (KeyError("digest"), hb.UNEXPECTED),
    ],
)
def test_the_cause_is_read_from_the_whole_chain(exc: BaseException, kind: str) -> None:
    cause = hb.classify(exc)
    assert cause.kind == kind, cause
    assert "\n" not in cause.detail


def test_a_group_is_described_by_the_exception_inside() -> None:
    group = ExceptionGroup("unhandled errors in a TaskGroup", [OverflowError("port must be 0-65535.")])
    assert hb.describe(group) == "OverflowError: port must be 0-65535."
    assert len(hb.describe(ValueError("x" * 5000))) <= 200


def test_a_deadline_follows_its_clock() -> None:
    now = [0.0]
    deadline = hb.Deadline(2.0, clock=lambda: now[0])
    deadline.check("the exchange")
    now[0] = 2.5
    assert deadline.left() == pytest.approx(-0.5)
    with pytest.raises(hb.DeadlineExceeded, match="the exchange did not finish within 2s"):
        deadline.check("the exchange")


def test_a_blocking_call_is_abandoned_at_its_deadline() -> None:
    release = threading.Event()
    with pytest.raises(hb.DeadlineExceeded, match=r"did not finish within 0\.1s"):
        hb.call_within(0.1, lambda: release.wait(10), what="the request")
    release.set()
    assert hb.call_within(1, lambda: 42, what="x") == 42
    empty: dict[str, int] = {}
    with pytest.raises(KeyError):  # raised in the caller's thread, as itself
        hb.call_within(1, lambda: empty["missing"], what="x")


def test_an_awaited_call_is_cancelled_at_its_deadline() -> None:
    async def slow() -> None:
        await asyncio.sleep(10)

    # A loop of its own: asyncio.run would unset the main thread's loop, which the SDK's mocks use.
    loop = asyncio.new_event_loop()
    try:
        with pytest.raises(hb.DeadlineExceeded, match=r"the probe did not finish within 0\.05s"):
            loop.run_until_complete(hb.await_within(0.05, slow(), what="the probe"))
    finally:
        loop.close()


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://web.example.com/healthz", None),
        ("http://[::1]:8080/x", None),
        ("https://web.example.com:99999/", "port 99999 is outside 1-65535"),
        ("https://web.example.com:0/", "port 0 is outside 1-65535"),
        ("https://web.example.com:-1/", "not a number"),
        ("https://web.example.com:\uff18\uff10/", "non-ASCII"),
        ("https://web.example.com/x\n", "whitespace"),
        ("ftp://web.example.com/", "scheme"),
        ("https:///x", "no host"),
    ],
)
def test_url_problems(url: str, problem: str | None) -> None:
    found = url_problem(url)
    assert (found is None) if problem is None else (found is not None and problem in found), found


def test_origins_compare_scheme_host_and_default_port() -> None:
    assert origin("https://Web.example.com/a") == origin("https://web.example.com:443/b")
    assert origin("http://web.example.com/") != origin("https://web.example.com/")
    assert origin("http://127.0.0.1:8080/") != origin("http://127.0.0.2:8080/")
    assert server_problem("registry.example.com:5000") is None
    assert server_problem("registry.example.com:5000\n") is not None
    assert port_problem("65535") is None and port_problem("65536") is not None
