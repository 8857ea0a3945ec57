"""HealthCheck: a dynamic resource that gates a release on its live HTTP endpoint."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pulumi
from pulumi.dynamic import CheckFailure, CheckResult, CreateResult, DiffResult, Resource, UpdateResult
from pulumi.runtime import rpc

from clients.health_probe import CheckOutcome, check_endpoint
from components.provider_errors import OneLineErrors, failure_line, is_unknown
from model.errors import GitopsError, Problem
from model.health_settings import DEFAULTS as SETTING_DEFAULTS
from model.health_settings import (
    NAMES,
    HealthSettings,
    InvalidSettings,
    header_problems,
    parse_settings,
    problems,
)
from model.http_origin import redact, redact_url, redact_urls
from model.names import HEALTH_CHECK_MODULE, HEALTH_CHECK_NAME, HEALTH_SUFFIX

PROVIDER_VERSION = "2"
"""Bump when the probe logic changes: every HealthCheck then re-runs on the next `pulumi up`."""

DEFAULTS: dict[str, Any] = {**SETTING_DEFAULTS, "trigger": "", "provider_version": PROVIDER_VERSION}
"""Inputs filled in by `check` when absent: the settings' defaults, then the provider's own."""
INPUTS = ("url", *DEFAULTS, "headers", "app")
DIFF_KEYS = ("trigger", *(n for n in NAMES if n != "interval_seconds"), "provider_version")
"""Inputs whose change means a new check; `interval_seconds` (pacing), `headers` and `app` do not."""
OUTPUTS = ("status_code", "attempts_used", "p50_ms", "p95_ms", "max_ms", "checked_at", "report")
_SCRUB_MIN_CHARS = 6
"""Shorter values (`1`, `yes`) would mangle the report's numbers; no header value flows into it anyway."""


class HealthCheckFailed(GitopsError):
    """The endpoint did not pass, or the check could not run; the message never holds a header value."""


def _plain_headers(value: Any) -> dict[str, str]:
    """Headers as a plain dict, whether or not the engine sent them wrapped as a secret."""
    value = rpc.unwrap_rpc_secret(value)
    if not isinstance(value, Mapping):
        return {}
    return {str(k): str(rpc.unwrap_rpc_secret(v)) for k, v in value.items()}


def _input_failures(props: dict[str, Any]) -> list[CheckFailure]:
    """The model's problems with the known inputs (a preview's unknowns wait for `up`), plus type guards."""
    known = {k: v for k, v in props.items() if not is_unknown(v)}
    found = problems(known, unknown=props.keys() - known.keys())
    if "headers" in known:
        raw = rpc.unwrap_rpc_secret(known["headers"])
        if isinstance(raw, Mapping):
            raw = {
                k: v for k, v in ((k, rpc.unwrap_rpc_secret(v)) for k, v in raw.items()) if not is_unknown(v)
            }
        found += header_problems(raw)
    found += [
        Problem(key, f"a {type(known[key]).__name__}", "a string")
        for key in ("trigger", "provider_version", "app")
        if key in known and not isinstance(known[key], str)
    ]
    return [CheckFailure(p.key, f"got {p.given}; expected {p.expected}") for p in found]


def _subject(props: Mapping[str, Any]) -> str:
    """`health check of app 'web' (GET url)`, for one-line failures."""
    app, url = props.get("app"), props.get("url")
    where = f" (GET {redact_url(url)})" if isinstance(url, str) else ""
    return f"health check of app {app if isinstance(app, str) and app else '?'!r}{where}"


class HealthCheckProvider(OneLineErrors):
    """Probes the endpoint on create and update; every failure is one HealthCheckFailed line."""

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        """Fill defaults and return one CheckFailure per bad input, naming it."""
        props = {k: v for k, v in news.items() if k in INPUTS}
        props.update({k: d for k, d in DEFAULTS.items() if props.get(k) is None})
        try:
            failures = _input_failures(props)
        except Exception as exc:  # a shape no rule foresaw: one failure, not a traceback
            failures = [
                CheckFailure("", redact_urls(failure_line(f"{_subject(props)}: inputs unreadable", exc)))
            ]
        return CheckResult(props, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        """A new check only when the trigger, URL, a threshold or the provider version changed."""
        changed = [k for k in DIFF_KEYS if is_unknown(news.get(k)) or olds.get(k) != news.get(k)]
        stables = [k for k in DIFF_KEYS if k not in changed]
        return DiffResult(changes=bool(changed), replaces=[], stables=stables, delete_before_replace=False)

    def create(self, props: dict[str, Any]) -> CreateResult:
        """Run the check; fail with the report unless it passes."""
        return CreateResult(_id(props), self._guarded_probe(props))

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        """Run the check again for the new inputs."""
        return UpdateResult(self._guarded_probe(news))

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """Nothing to delete: a health check leaves nothing behind."""
        pulumi.log.info("HealthCheck delete: nothing to do, a health check leaves nothing behind")

    def _guarded_probe(self, props: dict[str, Any]) -> dict[str, Any]:
        """The probe; an unexpected exception becomes one line naming the app and the cause."""
        headers = _plain_headers(props.get("headers"))
        try:
            return self._probe(props)
        except HealthCheckFailed:
            raise
        except InvalidSettings as exc:  # `check` refuses these first; a caller that skipped it gets them here
            raise HealthCheckFailed(f"{_subject(props)}: invalid inputs: {exc}") from None
        except Exception as exc:
            line = failure_line(f"{_subject(props)} could not run", exc)
            raise HealthCheckFailed(_scrub(line, headers)) from None

    def _probe(self, props: dict[str, Any]) -> dict[str, Any]:
        headers = _plain_headers(props.get("headers"))
        outcome = check_endpoint(parse_settings(props, headers), headers)
        if not outcome.passed:
            raise HealthCheckFailed(_scrub(outcome.report(), headers))
        return _outputs(props, outcome, headers)


def _id(props: Mapping[str, Any]) -> str:
    """A stable, non-secret id: the probed URL without userinfo, query or fragment."""
    return redact_url(httpx.URL(str(props["url"])).copy_with(query=None, fragment=None))


def _scrub(text: str, headers: Mapping[str, str]) -> str:
    """Defence in depth: no header value and no URL's userinfo may show in a report or an error."""
    return redact(text, (value for value in headers.values() if len(value) >= _SCRUB_MIN_CHARS))


def _outputs(props: Mapping[str, Any], outcome: CheckOutcome, headers: Mapping[str, str]) -> dict[str, Any]:
    """Echo the non-secret inputs (so Diff sees them) and add the results; headers are never included."""
    return {
        **{k: props[k] for k in INPUTS if k != "headers" and k in props},
        "status_code": outcome.status_code,
        "attempts_used": outcome.attempts_used,
        "p50_ms": outcome.latency_ms(50),
        "p95_ms": outcome.latency_ms(95),
        "max_ms": outcome.latency_ms(100),
        "checked_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "report": _scrub(outcome.summary(), headers),
    }


@dataclass(frozen=True)
class HealthCheckArgs:
    """Inputs of a HealthCheck; `headers` may be a secret Output and stays secret in state."""

    settings: HealthSettings
    """What is probed and what passes (an app's `HealthConfig` is one)."""
    headers: pulumi.Input[Mapping[str, str]] = field(default_factory=dict)
    """Request headers, for example a bearer token; always stored as a secret."""
    trigger: pulumi.Input[str] = ""
    """What forces a new check when it changes: the hash of the Application spec."""


class HealthCheck(Resource, module=HEALTH_CHECK_MODULE, name=HEALTH_CHECK_NAME):
    """Passes once the endpoint answers `expected_status` fast enough, `success_threshold` times in a row."""

    status_code: pulumi.Output[int]
    """Status of the last probe that got a response."""
    attempts_used: pulumi.Output[int]
    """Probes made."""
    p50_ms: pulumi.Output[float]
    """Median latency to the response headers over the passing probes."""
    p95_ms: pulumi.Output[float]
    """95th-percentile latency over the passing probes."""
    max_ms: pulumi.Output[float]
    """Highest latency over the passing probes."""
    checked_at: pulumi.Output[str]
    """When the check passed (UTC, ISO 8601)."""
    report: pulumi.Output[str]
    """A short report: verdict, each probe's result and latency."""

    def __init__(self, name: str, args: HealthCheckArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        props: dict[str, Any] = {
            **{setting: getattr(args.settings, setting) for setting in NAMES},
            "headers": pulumi.Output.secret(args.headers),
            "trigger": args.trigger,
            "provider_version": PROVIDER_VERSION,
            "app": name.removesuffix(HEALTH_SUFFIX),  # failures name the app
            **dict.fromkeys(OUTPUTS),
        }
        secret_opts = pulumi.ResourceOptions(additional_secret_outputs=["headers"])
        super().__init__(HealthCheckProvider(), name, props, pulumi.ResourceOptions.merge(secret_opts, opts))
