"""The notification webhook: one JSON POST per event, bounded; its URL (it holds a token) is never shown,
only its host."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from clients.bounded_post import Allowance, PostFailed, Tries, post_json

TOTAL_SECONDS = 8.0
"""What the webhook may take from a whole deploy, across every notification, try and wait."""
TRIES = Tries(tries=3, backoff=(0.25, 0.75), max_wait=1.0, per_try=2.0)


def host_of(url: str) -> str:
    """The URL's host, the only part of it any message names."""
    try:
        return httpx.URL(url).host or "the webhook"
    except (httpx.InvalidURL, TypeError, ValueError):
        return "the webhook"


class Webhook:
    """The webhook of one deploy, under one allowance of time."""

    def __init__(
        self,
        url: str,
        *,
        allowance: Allowance | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._url = url
        self.host = host_of(url)
        self.allowance = allowance or Allowance(TOTAL_SECONDS)
        self._sleep = sleep
        self._http = httpx.Client(transport=transport, follow_redirects=False, trust_env=False)

    def post(self, document: Mapping[str, Any]) -> None:
        """Deliver one notification; PostFailed naming the host only."""
        try:
            post_json(
                self._http, self._url, document, headers={"user-agent": "gitops-deploy"},
                allowance=self.allowance, tries=TRIES, host=self.host, sleep=self._sleep,
            )  # fmt: skip
        except PostFailed:
            raise
        except Exception as exc:  # an unusable URL: say so without it
            raise PostFailed(f"the webhook URL cannot be used ({type(exc).__name__})") from None

    def close(self) -> None:
        """Close the connections."""
        self._http.close()
