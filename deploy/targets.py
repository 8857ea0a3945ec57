"""Before the update: does each app's last known good digest, the one a rollback would pin, still exist?

A manifest HEAD per app, within one deadline: docs/engine-rules.md#rollback-targets.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from clients.http_bounds import DeadlineExceeded, call_within
from clients.registry import ACCEPT, RegistryClient, split_reference
from clients.registry_session import RegistryError
from deploy.events import REGISTRY_KEY
from model.config import NAMESPACE
from model.config_schema import PASSWORD_KEY as _PASSWORD

REQUEST_TIMEOUT_S = 5.0
"""Timeout of each socket operation of the check (the client's deadline on a whole request is 3x)."""
TOTAL_DEADLINE_S = 30.0
"""The whole check, every app, never takes longer than this."""
_BACKSTOP_S = 1.0
"""The thread running the check is abandoned this long after the client's deadline, which ends every
request itself; only a fault outside any request could still be running then."""
PASSWORD_KEY = f"{NAMESPACE}:{_PASSWORD}"

Status = Literal["present", "missing", "unknown"]


@dataclass(frozen=True)
class Target:
    """One app's rollback target and what the registry said about it."""

    app: str
    reference: str
    status: Status
    reason: str = ""
    """For `missing` and `unknown`: why, in one line, without any credential."""


@dataclass(frozen=True)
class Registry:
    """Where the targets are, and how to log in: from the stack's config."""

    server: str
    username: str
    password: str
    insecure: bool = False


def registry_from_config(values: Mapping[str, str | None]) -> Registry | None:
    """The registry of the stack's config values (`pulumi config --json --show-secrets`), or None when
    the config lacks one (the update then reports the config error)."""
    raw, password = values.get(REGISTRY_KEY), values.get(PASSWORD_KEY)
    try:
        registry: Any = json.loads(raw) if raw else None
    except ValueError:
        registry = None
    if not isinstance(registry, dict) or not password:
        return None
    server, username = registry.get("server"), registry.get("username")
    if not isinstance(server, str) or not isinstance(username, str) or not server or not username:
        return None
    return Registry(server, username, password, registry.get("insecure") is True)


def short(reference: str) -> str:
    """`repo@sha256:0123456789ab…`: enough of the digest to recognise it."""
    repo, _, digest = reference.partition("@")
    return f"{repo}@{digest[:19]}…" if len(digest) > 19 else reference


def check_targets(
    registry: Registry,
    targets: Mapping[str, str],
    *,
    timeout_s: float = REQUEST_TIMEOUT_S,
    total_s: float = TOTAL_DEADLINE_S,
    client: Callable[[Registry, float, float], RegistryClient] | None = None,
) -> list[Target]:
    """Check each app's target (app -> `repo@sha256:...`), in order.

    Never raises, and ends within `total_s`, the deadline every request shares: apps not checked by
    then are `unknown`.
    """
    found: dict[str, Target] = {}
    make = client or _client

    def run() -> None:
        with make(registry, timeout_s, total_s) as api:
            shared = _login(api)
            for app, reference in targets.items():
                if shared is not None:
                    # The registry could not be reached, or refused the credentials: not asked again.
                    found[app] = Target(app, reference, "unknown", shared)
                    continue
                found[app], shared = _check_one(api, registry, app, reference)

    try:
        call_within(total_s + _BACKSTOP_S, run, what=f"the rollback-target check on {registry.server}")
    except DeadlineExceeded:
        pass
    except Exception as exc:  # anything unforeseen is one line, as every registry failure is
        for app, reference in targets.items():
            found.setdefault(
                app, Target(app, reference, "unknown", f"the check failed: {type(exc).__name__}")
            )
    late = f"the registry {registry.server} did not answer within {total_s:g} s"
    return [found.get(app) or Target(app, ref, "unknown", late) for app, ref in targets.items()]


def _client(registry: Registry, timeout_s: float, total_s: float) -> RegistryClient:
    return RegistryClient(
        registry.server,
        registry.username,
        registry.password,
        insecure=registry.insecure,
        timeout=timeout_s,
        deadline=total_s,
    )


def _login(api: RegistryClient) -> str | None:
    """`GET /v2/` with the credentials, as the preflight starts: why the registry cannot be asked, or None.

    With Basic auth a wrong password only shows as a 401 on a request that carries it; asked first, the
    answer is one reason for every app rather than a puzzling 401 per manifest.
    """
    try:
        response = api.request("GET", "/v2/", [])
    except RegistryError as err:
        return err.cause
    if response.status_code == 401:
        return "wrong credentials: GET /v2/ answered 401 Unauthorized (unknown user or wrong password)"
    if response.status_code != 200:
        return f"GET /v2/ answered {response.status_code} {response.reason_phrase} with the credentials"
    return None


def _check_one(
    api: RegistryClient, registry: Registry, app: str, reference: str
) -> tuple[Target, str | None]:
    """The app's target, and the reason when the failure is the registry's rather than the app's."""
    try:
        repo, digest = split_reference(registry.server, reference)
    except ValueError as err:
        return Target(app, reference, "unknown", str(err)), None
    try:
        response = api.request(
            "HEAD", f"/v2/{repo}/manifests/{digest}", [f"repository:{repo}:pull"], headers={"Accept": ACCEPT}
        )
    except RegistryError as err:
        return Target(app, reference, "unknown", err.cause), err.cause
    code = response.status_code
    if code == 200:
        return Target(app, reference, "present"), None
    if code == 404:
        return Target(
            app, reference, "missing", "the registry has no such manifest (HEAD answered 404)"
        ), None
    if code in (401, 403):
        return Target(app, reference, "unknown", f"no pull permission on {repo} (HEAD answered {code})"), None
    return Target(app, reference, "unknown", f"HEAD answered {code} {response.reason_phrase}"), None
