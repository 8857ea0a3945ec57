"""A URL is printed one way everywhere (model/http_origin.py `redact_url`): no userinfo, an IPv6 host
in brackets. Userinfo in `health.url` is refused at config, pointing to `healthHeaders`; a URL that
reaches the provider or the deploy with userinfo anyway (an older state, an older provider's report)
never shows it, in an error, a report, an output, the deploy's log, its record or `failedReleases`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import grpc
import pytest
from hypothesis import given
from hypothesis import strategies as st

from clients.health_probe import check_endpoint
from components.health import PROVIDER_VERSION, HealthCheckProvider
from deploy.cli import _stream
from model.config import parse_config
from model.config_reader import ConfigError
from model.failed_releases import FailedReleaseRecord
from model.health_settings import HealthSettings
from model.http_origin import (
    UNREADABLE_URL,
    USERINFO_PROBLEM,
    origin,
    redact_url,
    redact_urls,
    show_origin,
    url_problem,
)
from model.record import read_record
from tests.policies.test_policy_no_false_pass import PROPERTY_SETTINGS
from tests.support.dynamic_provider import DynamicProviderServer
from tests.support.fake_pulumi import GRPC_TRANSPORT, FakePulumi, run_deploy
from tests.support.fake_pulumi.fixtures import fake_fixture, project_fixture
from tests.support.fake_pulumi.project import OUTPUTS, STACK
from tests.support.health_servers import Reply, ScriptedServer
from tests.support.processes import free_port
from tests.support.project import base_config, make_project

TOKEN = "hc-token-Q7zX9pLk"
PASSWORD = "pw-Zr4m8NvT"
HEADER = "Bearer hdr-secret-3Kq8"
ENGINE_EVENTS = Path(__file__).parents[1] / "fixtures" / "engine_events"

# -- generated URLs with userinfo --------------------------------------------------------------------

_label = st.from_regex(r"[a-z][a-z0-9]{0,9}", fullmatch=True)
names = st.lists(_label, min_size=1, max_size=3).map(".".join)
ipv4 = st.ip_addresses(v=4).map(str)
ipv6 = st.ip_addresses(v=6).map(str)
hosts = st.one_of(names, ipv4, ipv6)
secrets = st.text(alphabet=st.characters(codec="utf-8"), min_size=6, max_size=24)
"""Any text a person could paste as a token (UTF-8: no lone surrogate), written percent-encoded."""
SUB_DELIMS = "!$&'()*+,;="
paths = st.from_regex(r"(/[a-z0-9._~-]{0,8}){0,3}(\?[a-z0-9=&]{0,10})?", fullmatch=True)


def _url(scheme: str, userinfo: str, host: str, port: int | None, path: str) -> str:
    bracketed = f"[{host}]" if ":" in host else host
    return f"{scheme}://{userinfo}{bracketed}{'' if port is None else f':{port}'}{path}"


@st.composite
def urls_with_userinfo(draw: st.DrawFn) -> tuple[str, list[str], str]:
    """(URL, its secret parts, its host): `TOKEN@`, `TOKEN:@`, `:PASSWORD@` or `USER:PASSWORD@`."""
    user, password = draw(secrets), draw(secrets)
    # Sub-delims may stay unencoded in userinfo (RFC 3986 3.2.1); a pasted token often keeps them.
    safe = draw(st.sampled_from(["", SUB_DELIMS]))
    u, pw = quote(user, safe=safe), quote(password, safe=safe)
    form = draw(st.sampled_from(["user", "user-colon", "password", "both"]))
    parts = {"user": [user], "user-colon": [user], "password": [password], "both": [user, password]}[form]
    encoded = {"user": f"{u}@", "user-colon": f"{u}:@", "password": f":{pw}@", "both": f"{u}:{pw}@"}[form]
    host = draw(hosts)
    rest = _url(
        draw(st.sampled_from(["http", "https"])), "", host, draw(st.none() | st.integers(1, 65535)), ""
    )
    path = draw(paths)
    url = rest.replace("://", f"://{encoded}", 1) + path
    return url, parts, host


def _shown(secret: str, text: str) -> bool:
    """Whether a secret shows in `text`, as written or percent-encoded (either way a reader gets it)."""
    return any(form in text for form in {secret, quote(secret, safe=""), quote(secret, safe=SUB_DELIMS)})


def _hidden_everywhere_but_userinfo(url: str, parts: list[str]) -> bool:
    """The secret is not also the host, port or path (then printing those would "show" it)."""
    authority_end = url.index("@") + 1
    rest = url[: url.index("://") + 3] + url[authority_end:]
    return not any(_shown(p, rest) or _shown(p, rest.lower()) for p in parts)


@PROPERTY_SETTINGS
@given(urls_with_userinfo())
def test_a_printed_url_never_shows_its_userinfo_and_brackets_an_ipv6_host(
    case: tuple[str, list[str], str],
) -> None:
    url, parts, host = case
    if not _hidden_everywhere_but_userinfo(url, parts):
        return
    printed = redact_url(url)
    assert not any(_shown(p, printed) for p in parts), (url, printed)
    assert "@" not in urlsplit(printed).netloc, printed
    if ":" in host:
        assert f"[{host}]" in printed, (url, printed)
        assert show_origin(origin(url)).split("://", 1)[1].startswith(f"[{host}]:")
    text = f"health check GET {url} FAILED; see {url}."
    scrubbed = redact_urls(text)
    assert not any(_shown(p, scrubbed) for p in parts), scrubbed
    assert scrubbed.startswith("health check GET ") and " FAILED; see " in scrubbed


@PROPERTY_SETTINGS
@given(urls_with_userinfo())
def test_userinfo_is_refused_by_the_url_rule_and_the_providers_check(
    case: tuple[str, list[str], str],
) -> None:
    url, parts, _ = case
    assert url_problem(url) == USERINFO_PROBLEM
    result = HealthCheckProvider().check({}, {"url": url, "app": "web"})
    [failure] = [f for f in result.failures if f.property == "url"]
    assert "userinfo" in failure.reason
    if _hidden_everywhere_but_userinfo(url, parts):
        assert not any(_shown(p, failure.reason) for p in parts), failure.reason


@pytest.fixture(scope="module")
def config_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_project(tmp_path_factory.mktemp("redaction"))


@PROPERTY_SETTINGS
@given(urls_with_userinfo())
def test_a_health_url_with_userinfo_is_one_config_error_pointing_to_health_headers(
    config_project: Path, case: tuple[str, list[str], str]
) -> None:
    url, parts, _ = case
    raw = base_config()
    raw["gitops-deploy:apps"][0]["health"]["url"] = url
    with pytest.raises(ConfigError) as refused:
        parse_config({k.split(":", 1)[1]: v for k, v in raw.items()}, config_project)
    [problem] = refused.value.problems
    assert problem.startswith("gitops-deploy:apps[0] (web).health.url: got "), problem
    assert "userinfo" in problem and "gitops-deploy:healthHeaders" in problem and "\n" not in problem
    if _hidden_everywhere_but_userinfo(url, parts):
        assert not any(_shown(p, problem) for p in parts), problem


@PROPERTY_SETTINGS
@given(urls_with_userinfo())
def test_a_repo_url_with_userinfo_is_one_config_error_that_shows_none_of_it(
    config_project: Path, case: tuple[str, list[str], str]
) -> None:
    """The Application carries `source.repoURL`: a preview's diff, the cluster and the state show it."""
    url, parts, _ = case
    url = f"{url.split('/', 3)[0]}//{url.split('/', 3)[2]}/org/repo.git"
    raw = base_config()
    raw["gitops-deploy:apps"][0]["source"]["repoURL"] = url
    with pytest.raises(ConfigError) as refused:
        parse_config({k.split(":", 1)[1]: v for k, v in raw.items()}, config_project)
    [problem] = refused.value.problems
    assert problem.startswith("gitops-deploy:apps[0] (web).source.repoURL: got "), problem
    assert "\n" not in problem
    if _hidden_everywhere_but_userinfo(url, parts):
        assert not any(_shown(p, problem) for p in parts), problem


@pytest.mark.parametrize(
    ("url", "printed"),
    [
        (f"http://{TOKEN}@web.example.com/healthz", "http://web.example.com/healthz"),
        (f"http://{TOKEN}:@web.example.com/healthz", "http://web.example.com/healthz"),
        (f"https://ci:{PASSWORD}@web.example.com:8443/h?x=1", "https://web.example.com:8443/h?x=1"),
        (f"http://{TOKEN}:{PASSWORD}@[::1]:8080/healthz", "http://[::1]:8080/healthz"),
        ("http://[::1]:8080/healthz", "http://[::1]:8080/healthz"),
        (f"http://{TOKEN}@web.example.com:port/x", "http://web.example.com:port/x"),
        (f"http://{TOKEN}@[::1/x", UNREADABLE_URL),
    ],
    ids=["token-as-user", "token-colon", "user-password", "ipv6-userinfo", "ipv6", "bad-port", "unparsable"],
)
def test_the_printed_form(url: str, printed: str) -> None:
    """User and password are dropped alike; what httpx refuses is cut at its `@`; the unparsable is hidden."""
    assert redact_url(url) == printed


def test_free_text_keeps_urls_without_userinfo_as_written() -> None:
    text = "GET https://Web.example.com:443/a@b?c and registry.example.com/team/web@sha256:abc"
    assert redact_urls(text) == text


def test_the_deploy_log_line_shows_no_userinfo(capsys: pytest.CaptureFixture[str]) -> None:
    _stream(f'    url: "https://{TOKEN}:@web.example.com/healthz" => "https://web.example.com/healthz"')
    out = capsys.readouterr().out
    assert TOKEN not in out and 'url: "https://web.example.com/healthz"' in out


# -- the probe and its report -------------------------------------------------------------------------


def _settings(url: str, **overrides: Any) -> HealthSettings:
    values: dict[str, Any] = {
        "url": url,
        "attempts": 2,
        "success_threshold": 1,
        "interval_seconds": 0.05,
        "timeout_seconds": 1,
        **overrides,
    }
    return HealthSettings(**values)


def test_the_report_of_a_url_with_userinfo_shows_none_of_it() -> None:
    """In-process, past every check (as a caller that skipped them would be): report, summary, notes."""
    with ScriptedServer({"/healthz": [Reply(503), Reply(302, location="http://127.0.0.2:1/x")]}) as web:
        url = web.url("/healthz").replace("://", f"://{TOKEN}:{PASSWORD}@", 1)
        outcome = check_endpoint(_settings(url))
    texts = [outcome.report(), outcome.summary(), outcome.headline(), *(p.note for p in outcome.probes)]
    assert outcome.headline().startswith(f"health check GET {web.url('/healthz')} FAILED"), outcome.report()
    assert [p.outcome for p in outcome.probes] == ["HTTP 5xx", "off-origin"], outcome.report()
    assert all(TOKEN not in t and PASSWORD not in t for t in texts), texts


def test_an_ipv6_health_host_is_printed_in_brackets() -> None:
    """`http://[::1]:<closed port>/healthz` fails (refused, or no IPv6); the report brackets the host."""
    port = free_port()
    outcome = check_endpoint(_settings(f"http://[::1]:{port}/healthz", attempts=1))
    assert outcome.headline().startswith(f"health check GET http://[::1]:{port}/healthz FAILED"), (
        outcome.report()
    )
    with ScriptedServer({"/": [Reply(302, location=f"http://[::1]:{port}/x")]}) as home:
        redirected = check_endpoint(_settings(home.url(), attempts=1))
    [probe] = redirected.probes
    assert probe.note.startswith(f"redirect to http://[::1]:{port} refused"), redirected.report()


# -- the provider over gRPC -----------------------------------------------------------------------------


def _inputs(url: str, **overrides: Any) -> dict[str, Any]:
    return {
        "url": url,
        "expected_status": 200,
        "max_latency_ms": 1500,
        "attempts": 1,
        "interval_seconds": 0.05,
        "timeout_seconds": 1,
        "success_threshold": 1,
        "verify_tls": True,
        "headers": {"Authorization": HEADER},
        "trigger": "sha256:" + "a" * 64,
        "provider_version": PROVIDER_VERSION,
        "app": "web",
        **overrides,
    }


def _leaves(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from _leaves(v)
    elif isinstance(value, list):
        for v in value:
            yield from _leaves(v)
    else:
        yield str(value)


@pytest.mark.grpc
def test_over_grpc_a_url_with_userinfo_is_refused_without_showing_it() -> None:
    with (
        DynamicProviderServer(HealthCheckProvider()) as provider,
        ScriptedServer({"/healthz": [Reply(200)]}) as web,
    ):
        url = web.url("/healthz").replace("://", f"://{TOKEN}:@", 1)
        checked = provider.check(_inputs(url))
        # An engine never skips check; a create or an update that did (or inputs from an older state)
        # fails in one line before any probe, and the line shows no userinfo.
        with pytest.raises(grpc.RpcError) as created:
            provider.create(_inputs(url))
        good = _inputs(web.url("/healthz"))
        with pytest.raises(grpc.RpcError) as updated:
            provider.update({**good, "url": url}, _inputs(url))
        # An older state holds the URL with userinfo; the new inputs do not: the update runs, clean.
        outs = provider.update({**good, "url": url}, good)
        diff = provider.diff({**good, "url": url}, good)
        provider.delete({**good, "url": url})
        assert len(web.headers_seen) == 1, "only the clean update probed"
    [(prop, reason)] = checked.failures
    assert prop == "url" and "userinfo" in reason and TOKEN not in reason
    for info in (created, updated):
        details = str(info.value.details())
        assert details.startswith("components.health.HealthCheckFailed: health check of app 'web' (GET "), (
            details
        )
        assert f"(GET {web.url('/healthz')})" in details and "userinfo" in details, details
        assert TOKEN not in details and "\n" not in details.strip(), details
    assert outs["status_code"] == 200 and diff.has_changes
    assert all(TOKEN not in leaf and HEADER not in leaf for leaf in _leaves(outs))
    assert TOKEN not in provider.stderr_text()


# -- the deploy: log, error, record and failedReleases ---------------------------------------------------

project = project_fixture()
fake = fake_fixture(GRPC_TRANSPORT)


@pytest.mark.cli
def test_a_health_report_quoting_userinfo_reaches_no_output_of_the_deploy(
    fake: FakePulumi, project: Path, tmp_path: Path
) -> None:
    """An older provider printed `TOKEN:@` whole (it masked only a password); the deploy prints it nowhere."""
    recorded = (ENGINE_EVENTS / "health_failure_web.jsonl").read_text(encoding="utf-8")
    assert recorded.count("https://web.example.com/healthz") >= 2
    leaky = tmp_path / "health_failure_leaky.jsonl"
    leaky.write_text(
        recorded.replace("https://web.example.com/healthz", f"https://{TOKEN}:@web.example.com/healthz"),
        encoding="utf-8",
    )
    cli_error = f"error: health check GET https://{TOKEN}:{PASSWORD}@web.example.com/healthz FAILED"
    fake.play(
        {"fixture": str(leaky), "exit": 255, "stderr": cli_error},
        {"fixture": "rollback_ok.jsonl"},
        outputs=OUTPUTS,
    )
    path = tmp_path / "record.json"
    proc = run_deploy(fake, project, "--stack", STACK, "--record", str(path))
    assert proc.returncode == 3, proc.stderr
    _, rollback = fake.ups()
    kept = rollback.config["gitops-deploy:failedReleases"]
    [entry] = json.loads(kept)["web"]
    assert entry["reason"].startswith("health check GET https://web.example.com/healthz FAILED"), entry
    assert "health check GET https://web.example.com/healthz FAILED" in proc.stderr
    record = path.read_text(encoding="utf-8")
    assert read_record(path).cause == "health"
    for where, text in [("stdout", proc.stdout), ("stderr", proc.stderr), ("record", record), ("kept", kept)]:
        assert TOKEN not in text and PASSWORD not in text, f"{where}:\n{text}"


def test_a_failed_release_recorded_with_userinfo_is_read_without_it() -> None:
    old = {
        "web": [
            {
                "tag": "ctx-0123456789ab",
                "digest": None,
                "failedAt": "2026-05-01T12:00:00Z",
                "reason": f"health check GET http://{TOKEN}@[::1]:8080/healthz FAILED after 2 of 2 attempts",
            }
        ]
    }
    record, problems = FailedReleaseRecord.from_json(old)
    assert problems == []
    [release] = record.releases
    assert release.reason == "health check GET http://[::1]:8080/healthz FAILED after 2 of 2 attempts"
    assert TOKEN not in json.dumps(record.to_json())
