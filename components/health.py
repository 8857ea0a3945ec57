"""HealthCheck: a dynamic resource that gates a release on its live HTTP endpoint."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pulumi
from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    CreateResult,
    DiffResult,
    Resource,
    UpdateResult,
)
from pulumi.runtime import rpc

from clients.health_probe import CheckOutcome, check_endpoint
from components.dynamic_inputs import is_unknown
from components.provider_errors import OneLineErrors, failure_line
from model.health_settings import DEFAULTS as SETTING_DEFAULTS
from model.health_settings import (
    NAMES,
    HealthSettings,
    cross_problems,
    limit,
)
from model.http_origin import HEADER_NAME, HEADER_VALUE, redact, redact_url, redact_urls
from model.names import HEALTH_CHECK_MODULE, HEALTH_CHECK_NAME, HEALTH_SUFFIX

PROVIDER_VERSION = "2"
"""Bump when the probe logic changes: every HealthCheck then re-runs on the next `pulumi up`."""

DEFAULTS: dict[str, Any] = {**SETTING_DEFAULTS, "trigger": "", "provider_version": PROVIDER_VERSION}
"""Inputs filled in by `check` when absent: the settings' defaults, then the provider's own."""
INPUTS = ("url", *DEFAULTS, "headers", "app")
DIFF_KEYS = ("trigger", *(n for n in NAMES if n != "interval_seconds"), "provider_version")
"""Inputs whose change means a new check; `interval_seconds` (pacing), `headers` and `app` do not."""
OUTPUTS = ("status_code", "attempts_used", "p50_ms", "p95_ms", "max_ms", "checked_at", "report")


class HealthCheckFailed(Exception):
    """The endpoint did not pass, or the check could not run; the message never holds a header value."""


def _plain_headers(value: Any) -> dict[str, str]:
    """Headers as a plain dict, whether or not the engine sent them wrapped as a secret."""
    value = rpc.unwrap_rpc_secret(value)
    if not isinstance(value, Mapping):
        return {}
    return {str(k): str(rpc.unwrap_rpc_secret(v)) for k, v in value.items()}


def _check_setting(failures: list[CheckFailure], props: dict[str, Any], name: str) -> Any:
    """The value of one setting when known and valid, else None (with a failure naming it when invalid)."""
    value = props[name]
    if is_unknown(value):
        return None
    rule = limit(name)
    problem = rule.problem(value)
    if problem is None:
        return value
    if name == "url":
        # Quoted as every URL is printed: userinfo (a token written there) is never shown.
        shown = repr(redact_url(value)) if isinstance(value, str) else f"a {type(value).__name__}"
        failures.append(CheckFailure(name, f"got {shown}; expected {rule.expected} ({problem})"))
    else:
        failures.append(CheckFailure(name, f"got {value!r}; expected {rule.expected}"))
    return None


def _check_headers(failures: list[CheckFailure], headers: Any) -> None:
    """Names and value syntax only; a value is never quoted back."""
    if is_unknown(headers):
        return
    raw = rpc.unwrap_rpc_secret(headers)
    if not isinstance(raw, Mapping):
        failures.append(CheckFailure("headers", "expected an object of header name -> string value"))
        return
    for name, value in raw.items():
        value = rpc.unwrap_rpc_secret(value)
        if not isinstance(name, str) or not HEADER_NAME.fullmatch(name):
            failures.append(CheckFailure("headers", f"header name {name!r} is not a valid HTTP token"))
        elif is_unknown(value):
            continue
        elif not isinstance(value, str) or not HEADER_VALUE.fullmatch(value):
            failures.append(
                CheckFailure(f"headers.{name}", "value must be a string of printable ASCII characters")
            )


def _input_failures(props: dict[str, Any]) -> list[CheckFailure]:
    """One CheckFailure per bad input, naming it; the limits are HealthSettings'."""
    failures: list[CheckFailure] = []
    if "url" not in props:
        failures.append(CheckFailure("url", f"missing; expected {limit('url').expected}"))
    valid = {name: _check_setting(failures, props, name) for name in NAMES if name in props}
    for name, _given, expected in cross_problems(
        valid.get("attempts"),
        valid.get("interval_seconds"),
        valid.get("timeout_seconds"),
        valid.get("success_threshold"),
    ):
        failures.append(CheckFailure(name, f"got {_given}; expected {expected}"))
    for key in ("trigger", "provider_version", "app"):
        if key in props and not is_unknown(props[key]) and not isinstance(props[key], str):
            failures.append(CheckFailure(key, f"got a {type(props[key]).__name__}; expected a string"))
    if "headers" in props:
        _check_headers(failures, props["headers"])
    return failures


def settings_from(props: Mapping[str, Any]) -> HealthSettings:
    """The probe settings of checked inputs (numbers cross the engine as floats)."""
    values = {name: props[name] for name in NAMES}
    for name in ("expected_status", "attempts", "success_threshold"):
        values[name] = int(values[name])
    for name in ("max_latency_ms", "interval_seconds", "timeout_seconds"):
        values[name] = float(values[name])
    return HealthSettings(**values)


def _subject(props: Mapping[str, Any]) -> str:
    """`health check of app 'web' (GET url)`, for one-line failures."""
    app = props.get("app")
    url = props.get("url")
    where = f" (GET {redact_url(url)})" if isinstance(url, str) else ""
    return f"health check of app {app if isinstance(app, str) and app else '?'!r}{where}"


class HealthCheckProvider(OneLineErrors):
    """Probes the endpoint on create and update; holds no state and no client between calls.

    Every failure is a HealthCheckFailed: the release report when the endpoint did not pass, one line
    naming the app and the cause when anything else went wrong (components/provider_errors.py).
    """

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        """Fill defaults and return one CheckFailure per bad input, naming it."""
        props = {k: v for k, v in news.items() if k in INPUTS}
        for key, default in DEFAULTS.items():
            if props.get(key) is None:
                props[key] = default
        try:
            failures = _input_failures(props)
        except Exception as exc:  # a shape no rule foresaw: one failure, not a traceback
            line = failure_line(f"{_subject(props)}: inputs unreadable", exc)
            failures = [CheckFailure("", redact_urls(line))]
        return CheckResult(props, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        """A new check only when the trigger, URL, a threshold or the provider version changed."""
        changed = [k for k in DIFF_KEYS if is_unknown(news.get(k)) or olds.get(k) != news.get(k)]
        stables = [k for k in DIFF_KEYS if k not in changed]
        return DiffResult(changes=bool(changed), replaces=[], stables=stables, delete_before_replace=False)

    def create(self, props: dict[str, Any]) -> CreateResult:
        """Run the check; fail with the report unless it passes."""
        outs = self._guarded_probe(props)
        return CreateResult(_id(props), outs)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        """Run the check again for the new inputs."""
        return UpdateResult(self._guarded_probe(news))

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """Nothing to delete: a health check leaves nothing behind."""
        pulumi.log.info("HealthCheck delete: nothing to do, a health check leaves nothing behind")

    def _guarded_probe(self, props: dict[str, Any]) -> dict[str, Any]:
        """The probe; an unexpected exception becomes one line naming the app and the cause."""
        try:
            return self._probe(props)
        except HealthCheckFailed:
            raise
        except Exception as exc:
            line = failure_line(f"{_subject(props)} could not run", exc)
            raise HealthCheckFailed(_scrub(line, _plain_headers(props.get("headers")))) from None

    def _probe(self, props: dict[str, Any]) -> dict[str, Any]:
        headers = _plain_headers(props.get("headers"))
        # `check` rejects these first; this keeps an httpx encoding error (which quotes part of the
        # value) out of the engine's error message even if a caller skipped `check`.
        bad = sorted(
            k for k, v in headers.items() if not HEADER_NAME.fullmatch(k) or not HEADER_VALUE.fullmatch(v)
        )
        if bad:
            raise HealthCheckFailed(
                f"{_subject(props)}: headers {', '.join(map(repr, bad))}: name or value is not valid HTTP"
            )
        failures = _input_failures(props)
        if failures:
            # `check` rejects these first; a caller that skipped it gets the same reasons, on one line.
            reasons = "; ".join(f"{f.property}: {f.reason}" for f in failures)
            raise HealthCheckFailed(f"{_subject(props)}: invalid inputs: {reasons}")
        outcome = check_endpoint(settings_from(props), headers)
        if not outcome.passed:
            raise HealthCheckFailed(_scrub(outcome.report(), headers))
        return _outputs(props, outcome, headers)


def _id(props: Mapping[str, Any]) -> str:
    """A stable, non-secret id: the probed URL without userinfo, query or fragment."""
    return redact_url(httpx.URL(str(props["url"])).copy_with(query=None, fragment=None))


_SCRUB_MIN_CHARS = 6
"""Shorter values (`1`, `yes`) would mangle the numbers of the report if replaced.

Not a leak: header values never flow into a report, an output or an error (they are built from
statuses, numbers, the failure class names and the password-redacted URL; httpx errors are classed,
never quoted). The scrub only guards that construction; tests prove short values stay out too.
"""


def _scrub(text: str, headers: Mapping[str, str]) -> str:
    """Defence in depth: the report is built from statuses, numbers and the URL as `redact_url` prints
    it, but no header value and no URL's userinfo may show."""
    return redact(text, (value for value in headers.values() if len(value) >= _SCRUB_MIN_CHARS))


def _outputs(props: Mapping[str, Any], outcome: CheckOutcome, headers: Mapping[str, str]) -> dict[str, Any]:
    """Echo the non-secret inputs (so Diff sees them) and add the results; headers are never included."""
    echoed = {k: props[k] for k in INPUTS if k != "headers" and k in props}
    return {
        **echoed,
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
    """What is probed and what passes; fields, defaults and limits are HealthSettings' (an app's
    `HealthConfig` is one)."""
    headers: pulumi.Input[Mapping[str, str]] = field(default_factory=dict)
    """Request headers, for example a bearer token; always stored as a secret, sent only to the URL's
    origin."""
    trigger: pulumi.Input[str] = ""
    """What forces a new check when it changes: the image digest."""


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
            # The resource is named `<app><HEALTH_SUFFIX>`; failures name the app.
            "app": name.removesuffix(HEALTH_SUFFIX),
            **dict.fromkeys(OUTPUTS),
        }
        secret_opts = pulumi.ResourceOptions(additional_secret_outputs=["headers"])
        super().__init__(HealthCheckProvider(), name, props, pulumi.ResourceOptions.merge(secret_opts, opts))
