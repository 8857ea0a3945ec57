"""A JSON POST to a service the deploy only informs (GitHub, a webhook): bounded tries, a short wait, and a
total allowance of seconds across every call, so a slow or failing service never holds up a deploy."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from functools import partial
from typing import Any

import httpx

from clients import http_bounds
from clients.http_bounds import ACCEPT_ENCODING, BodyRefused, BoundedBody, Clock, Deadline, DeadlineExceeded
from model.errors import GitopsError

MAX_ANSWER_BYTES = 256 * 1024
"""A deployment or status answer is a few kilobytes; anything larger is cut off unread."""
MIN_TRY_SECONDS = 0.05
"""Less than this left of the allowance is too little for another exchange."""


class PostFailed(GitopsError):
    """A POST that did not succeed; the message is one line naming the host only, never the URL."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Allowance:
    """Seconds one service may take from the whole deploy, spent by every call and wait made to it."""

    seconds: float
    clock: Clock = time.monotonic
    spent: float = 0.0

    def left(self) -> float:
        """Seconds still allowed."""
        return self.seconds - self.spent


@dataclass(frozen=True)
class Tries:
    """How often and how patiently one POST is tried."""

    tries: int = 3
    backoff: tuple[float, ...] = (0.25, 0.75)
    """The wait before the 2nd, 3rd, ... try, when the answer names none."""
    max_wait: float = 1.0
    """The longest Retry-After honoured; a longer one ends the tries."""
    per_try: float = 2.0
    """The bound on one exchange (connect, send, answer)."""
    unnamed_limit_wait: float | None = None
    """The wait a rate-limited answer that names none asks for (GitHub: a minute); None: the backoff."""


@dataclass(frozen=True)
class Answer:
    """A successful answer: its status and decoded JSON body (None when it has none or is not JSON)."""

    status: int
    body: Any = field(default=None)


def retry_after(headers: httpx.Headers, now: float | None = None) -> float | None:
    """Seconds the server asks to wait: Retry-After (seconds or a date), else an exhausted rate limit's
    x-ratelimit-reset (GitHub's); None when it names no wait."""
    value = headers.get("retry-after", "").strip()
    if value.isdigit():
        return float(value)
    if value:
        try:
            return max(parsedate_to_datetime(value).timestamp() - (now or time.time()), 0.0)
        except (TypeError, ValueError):
            return None
    reset = headers.get("x-ratelimit-reset", "").strip()
    if headers.get("x-ratelimit-remaining", "").strip() == "0" and reset.isdigit():
        return max(float(reset) - (now or time.time()), 0.0)
    return None


def _rate_limited(answer: httpx.Response) -> bool:
    """GitHub's rate limits: 429, or 403 with an exhausted limit or a Retry-After (docs/engine-rules.md)."""
    if answer.status_code == 429:
        return True
    headers = answer.headers
    return answer.status_code == 403 and (
        "retry-after" in headers or headers.get("x-ratelimit-remaining", "").strip() == "0"
    )


def _exchange(
    client: httpx.Client, url: str, body: bytes, headers: Mapping[str, str], bound: float
) -> Answer:
    deadline = Deadline(bound)
    with client.stream("POST", url, content=body, headers=dict(headers), timeout=bound) as streamed:
        answer = BoundedBody(streamed.headers.get("content-encoding", ""), MAX_ANSWER_BYTES)
        for chunk in streamed.iter_raw():
            answer.feed(chunk)
            deadline.check("the answer")
        status = streamed.status_code
        if not 200 <= status < 300:
            raise _Refused(streamed)
        try:
            decoded = json.loads(answer.content() or b"null")
        except ValueError:
            decoded = None
        return Answer(status, decoded)


class _Refused(Exception):
    """A non-2xx answer, carried out of the worker thread."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def post_json(
    client: httpx.Client,
    url: str,
    document: Any,
    *,
    headers: Mapping[str, str],
    allowance: Allowance,
    tries: Tries = Tries(),
    host: str,
    sleep: Callable[[float], None] = time.sleep,
) -> Answer:
    """POST `document` as JSON; retried on 5xx, a rate limit and a transport failure, within `tries` and
    `allowance`. PostFailed, naming `host` only, when it does not succeed."""
    body = json.dumps(document).encode()
    sent = {"content-type": "application/json", "accept-encoding": ACCEPT_ENCODING, **headers}
    reason = f"not sent: the deploy's {allowance.seconds:g} s for {host} are spent"
    status: int | None = None
    made = 0
    for attempt in range(tries.tries):
        bound = min(tries.per_try, allowance.left())
        if bound <= MIN_TRY_SECONDS:
            break
        made += 1
        start = allowance.clock()
        wait: float | None = None
        try:
            return http_bounds.call_within(
                bound, partial(_exchange, client, url, body, sent, bound), what=host
            )
        except _Refused as refused:
            answer = refused.response
            status = answer.status_code
            reason = f"{host} answered {status} {answer.reason_phrase}".rstrip()
            limited = _rate_limited(answer)
            if limited:
                reason += " (rate-limited)"
            if not (limited or status >= 500):
                break
            wait = retry_after(answer.headers)
            wait = tries.unnamed_limit_wait if wait is None and limited else wait
        except (DeadlineExceeded, BodyRefused) as exc:
            reason = (
                f"{host} did not answer within {bound:.1f} s"
                if isinstance(exc, DeadlineExceeded)
                else (f"{host} answered with {exc}")
            )
        except Exception as exc:  # every transport failure: the cause's kind only, never the URL
            cause = http_bounds.classify(exc)
            timed_out = cause.kind == http_bounds.TIMEOUT  # httpx's own timeout, the same bound
            reason = (
                f"{host} did not answer within {bound:.1f} s"
                if timed_out
                else (f"{host} could not be reached ({cause.kind})")
            )
            status = None
        finally:
            allowance.spent += allowance.clock() - start
        if attempt + 1 >= tries.tries:
            break
        pause = wait if wait is not None else tries.backoff[min(attempt, len(tries.backoff) - 1)]
        if pause > tries.max_wait or pause >= allowance.left():
            reason += f"; it asked to wait {pause:.0f} s, longer than the deploy waits" if wait else ""
            break
        sleep(pause)
        allowance.spent += pause
    raise PostFailed(f"{reason} ({made} {'try' if made == 1 else 'tries'})" if made else reason, status)
