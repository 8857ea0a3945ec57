"""Origins (scheme, host, port) and the checks that keep credentials on theirs; URL and port validation."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import httpx

MAX_PORT = 65535
_DEFAULT_PORTS = {"http": 80, "https": 443}
_HOST = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?")
_PORT = re.compile(r"[0-9]{1,5}")

Origin = tuple[str, str, int]
"""(scheme, host, port), with the scheme's default port filled in."""


def origin(url: httpx.URL | str) -> Origin:
    """The origin of an http(s) URL, as browsers and the Fetch standard compare them."""
    parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
    port = parsed.port if parsed.port is not None else _DEFAULT_PORTS.get(parsed.scheme, 0)
    return parsed.scheme, parsed.host.lower(), port


def show_origin(value: Origin) -> str:
    """`scheme://host:port`, for messages (never a path, query or userinfo)."""
    scheme, host, port = value
    return f"{scheme}://{host}:{port}"


def port_problem(text: str) -> str | None:
    """Why a port written in a URL or a `host:port` is not one TCP can use, or None."""
    if not _PORT.fullmatch(text):
        return f"port {text!r} is not a number"
    if not 1 <= int(text) <= MAX_PORT:
        return f"port {int(text)} is outside 1-{MAX_PORT}"
    return None


def url_problem(url: str, schemes: tuple[str, ...] = ("http", "https")) -> str | None:
    """Why `url` is not an absolute URL of one of `schemes` with a host and a usable port, or None."""
    if not url.isascii() or not url.isprintable() or any(c.isspace() for c in url):
        return "it contains whitespace, control or non-ASCII characters"
    try:
        split = urlsplit(url)
        parsed = httpx.URL(url)
    except (ValueError, httpx.InvalidURL) as exc:
        return f"it does not parse ({exc})"
    if split.scheme not in schemes or parsed.scheme not in schemes:
        return f"the scheme is not {' or '.join(f'{s}://' for s in schemes)}"
    if not split.hostname or not parsed.host:
        return "it has no host"
    netloc = split.netloc.rsplit("@", 1)[-1]
    _, bracket, after = netloc.rpartition("]")
    host_port = after if bracket else netloc
    if ":" in host_port:
        return port_problem(host_port.rsplit(":", 1)[1])
    return None


def server_problem(server: str) -> str | None:
    """Why `host[:port]` (a registry address) is not a host name or IPv4 address with a usable port."""
    host, colon, port = server.partition(":")
    if not _HOST.fullmatch(host):
        return "not a host name with an optional port"
    if colon:
        return port_problem(port)
    return None
