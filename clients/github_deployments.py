"""GitHub's Deployments API, as the deploy reports to it: one deployment per stack and its statuses
(docs/engine-rules.md#github-deployments). Every call is bounded; nothing here fails a deploy."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote

import httpx

from clients.bounded_post import Allowance, PostFailed, Tries, post_json

API_VERSION = "2022-11-28"
"""The REST API version asked for (X-GitHub-Api-Version)."""
ACCEPT = "application/vnd.github+json"
DEFAULT_API_URL = "https://api.github.com"
TOTAL_SECONDS = 5.0
"""What GitHub may take from a whole deploy, across every call and wait: then it is left alone."""
TRIES = Tries(tries=2, backoff=(0.5,), max_wait=1.0, per_try=2.0, unnamed_limit_wait=60.0)
"""A rate limit naming no wait asks for a minute (docs/engine-rules.md#github-deployments): no retry."""
DESCRIPTION_CHARS = 140
"""GitHub's limit on a status's description."""
ENV_VARIABLES = ("GITHUB_REPOSITORY", "GITHUB_SHA", "GITHUB_TOKEN")
"""What the deploy needs to report, besides GITHUB_API_URL (api.github.com when unset)."""

State = Literal["error", "failure", "inactive", "in_progress", "queued", "pending", "success"]


class GitHubUnavailable(PostFailed):
    """A call to GitHub that did not succeed; the message never holds the token."""


@dataclass(frozen=True)
class GitHubTarget:
    """Where and as whom to report: Actions' own variables (GHES sets its GITHUB_API_URL)."""

    api_url: str
    repository: str
    sha: str
    token: str = field(repr=False)
    log_url: str | None = None
    """The Actions run, linked from every status."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> GitHubTarget | str:
        """The target from the environment, or which variables are missing."""
        missing = [name for name in ENV_VARIABLES if not env.get(name)]
        if missing:
            return f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set"
        repository = env["GITHUB_REPOSITORY"]
        server, run = env.get("GITHUB_SERVER_URL"), env.get("GITHUB_RUN_ID")
        log_url = f"{server.rstrip('/')}/{repository}/actions/runs/{run}" if server and run else None
        api = (env.get("GITHUB_API_URL") or DEFAULT_API_URL).rstrip("/")
        return cls(api, repository, env["GITHUB_SHA"], env["GITHUB_TOKEN"], log_url)

    @property
    def host(self) -> str:
        """The API's host, which messages name."""
        return httpx.URL(self.api_url).host or self.api_url


def short_description(text: str) -> str:
    """`text` within GitHub's description limit."""
    flat = " ".join(text.split())
    return flat if len(flat) <= DESCRIPTION_CHARS else flat[: DESCRIPTION_CHARS - 1] + "…"


class Deployments:
    """One repository's deployments, under one allowance of time for the whole deploy."""

    def __init__(
        self,
        target: GitHubTarget,
        *,
        allowance: Allowance | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.target = target
        self.allowance = allowance or Allowance(TOTAL_SECONDS)
        self._sleep = sleep
        self._http = httpx.Client(transport=transport, follow_redirects=False, trust_env=False)
        self._base = f"{target.api_url}/repos/{quote(target.repository, safe='/')}/deployments"

    def _post(self, url: str, document: Mapping[str, Any]) -> Any:
        headers = {
            "accept": ACCEPT,
            "authorization": f"Bearer {self.target.token}",
            "x-github-api-version": API_VERSION,
            "user-agent": "gitops-deploy",
        }
        try:
            answer = post_json(
                self._http, url, document, headers=headers, allowance=self.allowance, tries=TRIES,
                host=self.target.host, sleep=self._sleep,
            )  # fmt: skip
        except PostFailed as err:
            raise GitHubUnavailable(str(err).replace(self.target.token, "***"), err.status) from None
        return answer.body

    def create(self, environment: str, payload: Mapping[str, Any], description: str) -> int:
        """A deployment of the commit to `environment`; its id."""
        document = {
            "ref": self.target.sha,
            "task": "deploy",
            "environment": environment,
            "payload": dict(payload),
            "description": short_description(description),
            # The deploy checked the commit already (its tests ran before it); GitHub must not merge or
            # wait for commit statuses.
            "auto_merge": False,
            "required_contexts": [],
            # Non-production, non-transient: GitHub's auto_inactive then retires the earlier deployments.
            "transient_environment": False,
            "production_environment": False,
        }
        body = self._post(self._base, document)
        found = body.get("id") if isinstance(body, dict) else None
        if isinstance(found, bool) or not isinstance(found, int):
            raise GitHubUnavailable(f"{self.target.host} answered a deployment without an id")
        return found

    def status(self, deployment: int, state: State, description: str, environment_url: str | None) -> None:
        """A status of `deployment`; a success retires the environment's earlier deployments."""
        document: dict[str, Any] = {"state": state, "description": short_description(description)}
        if environment_url:
            document["environment_url"] = environment_url
        if self.target.log_url:
            document["log_url"] = self.target.log_url
        if state == "success":
            document["auto_inactive"] = True
        self._post(f"{self._base}/{deployment}/statuses", document)

    def close(self) -> None:
        """Close the connections."""
        self._http.close()
