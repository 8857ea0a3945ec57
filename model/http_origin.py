"""Origins and the checks that keep credentials on theirs; URL, port and header syntax; the one redaction of
what is printed (`redact_url`, `redact_urls`, `redact`)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

import httpx

MAX_PORT = 65535
_DEFAULT_PORTS = {"http": 80, "https": 443}
_HOST = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?")
_PORT = re.compile(r"[0-9]{1,5}")
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s\"<>`]+")
"""A URL in free text (an error, a report): a scheme, `://`, and what follows up to a space or a character
no URL holds. Not `'`: userinfo may hold one unencoded (RFC 3986 sub-delims), and all of it must go."""
UNREADABLE_URL = "<a URL that does not parse>"
"""How `redact_url` prints what is not a URL at all (nothing of it is shown: it may hold a credential)."""
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
"""An HTTP token (RFC 9110), the syntax of a header name."""
HEADER_VALUE = re.compile(r"[\t\x20-\x7e]*")
"""Visible ASCII, space and tab: httpx encodes header values as ASCII and would fail on anything else."""
REDACTED = "[secret]"
USERINFO_PROBLEM = (
    "it has userinfo ('user@' or 'user:password@', not shown) before the host, and a URL is printed in "
    "reports, errors and records"
)

Origin = tuple[str, str, int]
"""(scheme, host, port), with the scheme's default port filled in."""


def origin(url: httpx.URL | str) -> Origin:
    """The origin of an http(s) URL, as browsers and the Fetch standard compare them."""
    parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
    port = parsed.port if parsed.port is not None else _DEFAULT_PORTS.get(parsed.scheme, 0)
    return parsed.scheme, parsed.host.lower(), port


def show_origin(value: Origin) -> str:
    """`scheme://host:port`, for messages (never a path, query or userinfo; an IPv6 host in brackets)."""
    scheme, host, port = value
    return f"{scheme}://{_bracketed(host)}:{port}"


def _bracketed(host: str) -> str:
    """A host as a URL writes it: an IPv6 address (the only host with a colon) in brackets (RFC 3986)."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def redact_url(url: httpx.URL | str) -> str:
    """A URL as it is printed anywhere: without userinfo, an IPv6 host bracketed; one httpx refuses is cut at
    the last `@` of its authority as `urllib.parse` splits it, and what neither parses is not shown."""
    try:
        parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
        return str(parsed.copy_with(userinfo=b""))
    except (httpx.InvalidURL, TypeError, ValueError):
        pass
    try:
        split = urlsplit(url) if isinstance(url, str) else None
    except ValueError:
        split = None
    if split is None:
        return UNREADABLE_URL
    return urlunsplit(split._replace(netloc=split.netloc.rpartition("@")[2]))


def _has_userinfo(url: str) -> bool:
    try:
        return "@" in urlsplit(url).netloc
    except ValueError:
        return "@" in url


def redact_urls(text: str) -> str:
    """Free text with every URL that has userinfo printed by `redact_url`; other URLs are left as written."""
    return _URL_IN_TEXT.sub(lambda m: redact_url(m[0]) if _has_userinfo(m[0]) else m[0], text)


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret (longest first) replaced and every URL's userinfo dropped."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return redact_urls(text)


def port_problem(text: str) -> str | None:
    """Why a port written in a URL or a `host:port` is not one TCP can use, or None."""
    if not _PORT.fullmatch(text):
        return f"port {text!r} is not a number"
    if not 1 <= int(text) <= MAX_PORT:
        return f"port {int(text)} is outside 1-{MAX_PORT}"
    return None


def url_problem(url: str, schemes: tuple[str, ...] = ("http", "https")) -> str | None:
    """Why `url` is not an absolute `schemes` URL with a host, a usable port and no userinfo (a token there
    would be in every message, and httpx would send it as Basic auth), or None."""
    if not url.isascii() or not url.isprintable() or any(c.isspace() for c in url):
        return "it contains whitespace, control or non-ASCII characters"
    try:
        split = urlsplit(url)
        if "@" in split.netloc:
            return USERINFO_PROBLEM
        parsed = httpx.URL(url)
    except (ValueError, httpx.InvalidURL) as exc:
        return f"it does not parse ({exc})"
    if split.scheme not in schemes or parsed.scheme not in schemes:
        return f"the scheme is not {' or '.join(f'{s}://' for s in schemes)}"
    if not split.hostname or not parsed.host:
        return "it has no host"
    netloc = split.netloc
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
