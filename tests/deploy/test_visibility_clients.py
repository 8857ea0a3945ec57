"""GitHub's deployments and the webhook, against loopback stand-ins: the request shapes GitHub's OpenAPI
description allows, the documented retirement of earlier deployments, and every failure bounded."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from jsonschema import Draft202012Validator

from clients import github_deployments, webhook
from clients.bounded_post import Allowance, PostFailed, retry_after
from clients.github_deployments import DESCRIPTION_CHARS, Deployments, GitHubTarget, GitHubUnavailable
from clients.webhook import Webhook
from deploy import notices
from deploy.notices import AppVerdict
from deploy.visibility import Reporter
from model.record import SoakRecord, SoakVerdict
from tests.support.github_api import OWNER, REPO, SHA, TOKEN, Failure, GitHubAPI
from tests.support.github_openapi import operations, request_problems
from tests.support.webhook_server import SECRET_PATH, Answer, WebhookServer

AT = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def github() -> Iterator[GitHubAPI]:
    api = GitHubAPI()
    yield api
    api.close()


def target(api: GitHubAPI) -> GitHubTarget:
    found = GitHubTarget.from_env(
        {"GITHUB_API_URL": api.api_url, "GITHUB_REPOSITORY": f"{OWNER}/{REPO}", "GITHUB_SHA": SHA,
         "GITHUB_TOKEN": TOKEN, "GITHUB_SERVER_URL": "https://github.com", "GITHUB_RUN_ID": "42"}
    )  # fmt: skip
    assert isinstance(found, GitHubTarget)
    return found


def deploy_once(api: GitHubAPI, final: str, allowance: Allowance | None = None) -> None:
    client = Deployments(target(api), allowance=allowance)
    try:
        deployment = client.create("prod", {"apps": {"web": {"digestBefore": None}}}, "gitops-deploy prod")
        client.status(deployment, "in_progress", "deploying", "https://web.example.com/healthz")
        client.status(deployment, final, "x" * 300, "https://web.example.com/healthz")  # type: ignore[arg-type]
    finally:
        client.close()


# --- GitHub ---


def test_a_deploy_sends_what_githubs_description_allows_and_the_success_retires_earlier_ones(
    github: GitHubAPI,
) -> None:
    for final in ("success", "failure", "success"):
        deploy_once(github, final)
    assert github.problems() == []
    # The failed (rolled-back) one leaves the earlier success active; the next success retires both
    # earlier successes' deployments, as GitHub's auto_inactive rule has it.
    assert github.environment("prod") == [
        ["in_progress", "success", "inactive"],
        ["in_progress", "failure"],
        ["in_progress", "success"],
    ]
    create = github.requests[0].body
    assert create["ref"] == SHA and create["environment"] == "prod"
    assert (create["auto_merge"], create["required_contexts"]) == (False, [])
    status = github.deployments[0].statuses[-1]
    assert len(status["description"]) == DESCRIPTION_CHARS
    assert status["log_url"] == "https://github.com/acme/shop/actions/runs/42"


def test_the_requests_are_valid_for_github_enterprise_server_too(github: GitHubAPI) -> None:
    deploy_once(github, "success")
    ghes = operations("ghes-3.17")
    ops = ["repos/create-deployment", *["repos/create-deployment-status"] * 2]
    for seen, op in zip(github.requests, ops, strict=True):
        assert request_problems(ghes[op], seen.body) == []


def test_ghes_api_url_with_its_path_prefix() -> None:
    api = GitHubAPI(prefix="/api/v3")
    try:
        deploy_once(api, "success")
        assert api.problems() == [] and api.requests[0].path == f"/api/v3/repos/{OWNER}/{REPO}/deployments"
    finally:
        api.close()


def test_the_stand_in_refuses_a_misspelt_field_and_a_wrong_token(github: GitHubAPI) -> None:
    headers = {"authorization": "Bearer nope", "accept": "application/vnd.github+json"}
    url = f"{github.api_url}/repos/{OWNER}/{REPO}/deployments"
    answer = httpx.post(url, json={"ref": SHA, "enviroment": "x"}, headers=headers)
    assert answer.status_code == 422
    problems = github.problems()
    assert any("enviroment: not a field" in p for p in problems), problems
    assert any("header authorization" in p for p in problems) and any(
        "x-github-api-version" in p for p in problems
    )


@pytest.mark.parametrize(
    ("failure", "tries", "words"),
    [
        (Failure(500), 2, "answered 500 Internal Server Error (2 tries)"),
        (Failure(401), 1, "answered 401 Unauthorized (1 try)"),
        (Failure(404), 1, "answered 404 Not Found (1 try)"),
        (Failure(422), 1, "answered 422 Unprocessable Entity (1 try)"),
        (Failure(403, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(time.time()) + 600)}), 1,
         "(rate-limited); it asked to wait"),
        (Failure(429), 1, "answered 429 Too Many Requests (rate-limited); it asked to wait 60 s"),
        (Failure(429, {"retry-after": "60"}), 1,
         "answered 429 Too Many Requests (rate-limited); it asked to wait 60 s"),
    ],
)  # fmt: skip
def test_github_refusing_is_one_error_without_the_token(
    github: GitHubAPI, failure: Failure, tries: int, words: str
) -> None:
    github.failure = failure
    with pytest.raises(GitHubUnavailable) as caught:
        deploy_once(github, "success")
    assert words in str(caught.value) and "127.0.0.1" in str(caught.value)
    assert TOKEN not in str(caught.value) and len(github.requests) == tries


def test_a_short_retry_after_is_honoured_then_it_goes_on(github: GitHubAPI) -> None:
    github.failure = Failure(429, {"retry-after": "1"}, times=1)
    start = time.monotonic()
    deploy_once(github, "success")
    assert 1 <= time.monotonic() - start < 4
    assert github.environment("prod") == [["in_progress", "success"]] and len(github.requests) == 4


def test_a_hanging_github_costs_at_most_its_allowance(github: GitHubAPI) -> None:
    github.failure = Failure(hang=True)
    allowance = Allowance(1.5)
    start = time.monotonic()
    with pytest.raises(GitHubUnavailable, match=r"did not answer within"):
        deploy_once(github, "success", allowance)
    assert time.monotonic() - start < 2.5 and allowance.left() <= 0.1


def test_github_down_is_a_connection_error_naming_the_host_only() -> None:
    api = GitHubAPI()
    api.close()
    with pytest.raises(GitHubUnavailable, match=r"127\.0\.0\.1 could not be reached \(refused\) \(2 tries\)"):
        deploy_once(api, "success")


def test_retry_after_reads_seconds_a_date_and_githubs_reset() -> None:
    assert retry_after(httpx.Headers({"retry-after": "3"})) == 3
    assert (
        retry_after(httpx.Headers({"retry-after": "Fri, 01 May 2026 12:00:10 GMT"}), now=AT.timestamp()) == 10
    )
    reset = httpx.Headers({"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(AT.timestamp()) + 30)})
    assert retry_after(reset, now=AT.timestamp()) == 30
    assert retry_after(httpx.Headers({"x-ratelimit-remaining": "10"})) is None


# --- the webhook ---


def test_a_webhook_answering_500_gets_three_tries_with_short_waits() -> None:
    hook = WebhookServer([Answer(500)] * 3)
    waits: list[float] = []
    client = Webhook(hook.url, sleep=waits.append)
    try:
        with pytest.raises(PostFailed) as caught:
            client.post({"text": "hi"})
    finally:
        client.close()
        hook.close()
    assert str(caught.value) == "127.0.0.1 answered 500 Internal Server Error (3 tries)"
    assert SECRET_PATH not in str(caught.value) and "T0KEN" not in str(caught.value)
    assert waits == [0.25, 0.75] and len(hook.bodies) == 3 and hook.delivered == []


def test_a_webhook_that_recovers_gets_the_notification_once() -> None:
    hook = WebhookServer([Answer(503, {"retry-after": "0"})])
    client = Webhook(hook.url, sleep=lambda _: None)
    try:
        client.post({"text": "hi"})
    finally:
        client.close()
        hook.close()
    assert hook.delivered == [{"text": "hi"}] and hook.paths == [SECRET_PATH] * 2


def test_a_hanging_webhook_costs_at_most_its_allowance() -> None:
    hook = WebhookServer([Answer(hang=True)] * 5)
    client = Webhook(hook.url, allowance=Allowance(1.2), sleep=time.sleep)
    start = time.monotonic()
    try:
        with pytest.raises(PostFailed, match="did not answer within"):
            client.post({"text": "hi"})
        with pytest.raises(PostFailed, match="are spent"):
            client.post({"text": "again"})
    finally:
        client.close()
        hook.close()
    assert time.monotonic() - start < 2.2


# --- the notification document ---

VALIDATOR = Draft202012Validator(notices.SCHEMA)


def _soaked(
    verdict: SoakVerdict, seconds: int, probes: int, failures: int, reason: str | None = None
) -> SoakRecord:
    """A soak as the record keeps it: what the notification is built from."""
    failing = "#2 503 12 ms" if failures else None
    return SoakRecord(
        None,
        False,
        seconds,
        300,
        10,
        60,
        probes,
        failures,
        (4.0, 9.0, 12.0),
        verdict,
        reason,
        failing,
        failing,
    )


ALL = [
    notices.gate("prod", AT, [AppVerdict("web", False, "health check failed"), AppVerdict("api", True)]),
    notices.rollback("prod", AT, {"web": "registry.example.com/web@sha256:" + "1" * 64}, True),
    notices.rollback("prod", AT, {"web": None}, False, "the rollback's health check failed"),
    notices.soak("prod", AT, [("web", _soaked("failed", 300, 30, 3, "3 probes failed in a row"))]),
    notices.promotion(
        "staging", AT, "dev", "succeeded", {"web": "registry.example.com/web@sha256:" + "2" * 64}
    ),
    notices.stopped("prod", AT, "signal", "interrupted by SIGINT", 130),
    notices.failed("prod", AT, "registry-auth", "registry answered 401", 1),
]


@pytest.mark.parametrize("notice", ALL, ids=[n.event + str(i) for i, n in enumerate(ALL)])
def test_every_event_renders_to_a_valid_document_and_a_slack_line(notice: notices.Notice) -> None:
    body = notices.render(notice, "json")
    assert list(VALIDATOR.iter_errors(body)) == []
    assert (body["kind"], body["version"], body["at"]) == (
        notices.KIND,
        notices.VERSION,
        "2026-05-01T12:00:00Z",
    )
    slack = notices.render(notice, "slack")
    assert set(slack) == {"text"} and notice.text in slack["text"] and notice.stack in slack["text"]


def test_the_soak_verdict_renders_each_apps_figures() -> None:
    soaked = [
        ("web", _soaked("passed", 300, 30, 1)),
        ("api", _soaked("failed", 120, 12, 6, "error rate 50 % over 60 s")),
        ("db", _soaked("not-soaked", 0, 0, 0, "soak off")),
    ]
    notice = notices.soak("prod", AT, soaked)
    body = notices.to_json(notice)
    assert body["details"] == {
        "passed": False,
        "apps": [
            {"app": "web", "passed": True, "seconds": 300, "probes": 30, "failures": 1, "errorPercent": 3.3,
             "reason": None},
            {"app": "api", "passed": False, "seconds": 120, "probes": 12, "failures": 6, "errorPercent": 50,
             "reason": "error rate 50 % over 60 s"},
        ],
    }  # fmt: skip
    assert body["text"] == "api failed its soak: error rate 50 % over 60 s"
    passed = notices.soak("prod", AT, [("web", _soaked("passed", 300, 30, 1))])
    assert passed.text == "web passed its 300 s soak (1 of 30 probes failed)"


def test_a_document_of_another_shape_is_refused() -> None:
    body = notices.to_json(ALL[0])
    body["details"]["apps"][0]["extra"] = 1
    assert list(VALIDATOR.iter_errors(body))


def test_the_docs_state_the_tries_and_waits_the_clients_use() -> None:
    text = " ".join((Path(__file__).resolve().parents[2] / "docs" / "visibility.md").read_text().split())
    assert f"{github_deployments.TRIES.tries} tries of a call at most" in text
    waits = " and ".join(f"{w:g} s" for w in webhook.TRIES.backoff)
    assert f"{webhook.TRIES.tries} tries per notification, waits of {waits}" in text
    assert "A `Retry-After` of up to a second is honoured" in text and webhook.TRIES.max_wait == 1.0
    assert github_deployments.TRIES.max_wait == 1.0 and github_deployments.DESCRIPTION_CHARS == 140
    assert "at most 140 characters" in text


def test_an_unforeseen_error_while_reporting_is_one_warning_naming_its_type_only() -> None:
    out = io.StringIO()
    reporter = Reporter()
    reporter.start("prod", None, out)  # type: ignore[arg-type]
    assert out.getvalue() == "deploy: warning: reporting the deploy failed (AttributeError); ignored\n"


def test_the_slack_line_never_mentions_links_or_breaks_a_line() -> None:
    reason = "<!channel> see <https://evil.example|logs> & retry\nnow"
    slack = notices.render(notices.failed("prod<x>", AT, "other", reason, 1), "slack")
    assert "<" not in slack["text"] and ">" not in slack["text"] and "\n" not in slack["text"]
    assert "&lt;!channel&gt; see &lt;https://evil.example|logs&gt; &amp; retry now" in slack["text"]
    assert slack["text"].startswith("*gitops-deploy prod&lt;x&gt;* (failed): ")
