"""RegistryPreflight: prove the stack's registry credentials may push, in preview and in `up` alike."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx
import pulumi
from pulumi.dynamic import CheckFailure, CheckResult, CreateResult, DiffResult, Resource, UpdateResult

from clients.registry import client_from_inputs
from clients.registry_session import DEFAULT_TIMEOUT_S, RegistryError
from components.provider_errors import OneLineErrors, failure_line, is_unknown, registry_failures
from model.config import REPO_PATH, RegistryConfig
from model.names import REGISTRY_PREFLIGHT_MODULE, REGISTRY_PREFLIGHT_NAME

PROVIDER_VERSION = "1"
"""Bump to make every stack update its preflight after a change to this module."""

_KEYS = ("server", "username", "password", "repositories", "insecure", "timeout_seconds", "provider_version")


def _input_failures(news: dict[str, Any]) -> list[CheckFailure]:
    """One CheckFailure per malformed input, naming the property; unknown values pass."""
    failures = registry_failures(news)
    repos = news.get("repositories")
    if not is_unknown(repos):
        if not isinstance(repos, list) or not all(isinstance(r, str) for r in repos):
            failures.append(
                CheckFailure("repositories", "expected a list of repository paths such as 'team/web'")
            )
        else:
            failures.extend(
                CheckFailure("repositories", f"{r!r} is not a repository path such as 'team/web'")
                for r in repos
                if not REPO_PATH.fullmatch(r)
            )
    timeout = news.get("timeout_seconds", DEFAULT_TIMEOUT_S)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= 120:
        failures.append(CheckFailure("timeout_seconds", "expected a number of seconds from 0 to 120"))
    return failures


def run_preflight(news: dict[str, Any], transport: httpx.BaseTransport | None = None) -> str | None:
    """Check the credentials against the registry; the error message, or None when they may push."""
    client = client_from_inputs(news, transport)
    try:
        client.preflight(sorted(set(news["repositories"])))
    except RegistryError as err:
        return str(err)
    except Exception as exc:  # anything unforeseen is still one line, scrubbed of the credentials
        return client.scrub(failure_line(f"registry {news.get('server')} preflight could not run", exc))
    finally:
        client.close()
    return None


class RegistryPreflightProvider(OneLineErrors):
    """Does its work in `check`, the one method the engine calls in both preview and update."""

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        """Validate the inputs, then ask the registry; a failure stops the preview or update here."""
        failures = _input_failures(news)
        if failures or any(is_unknown(news.get(k)) for k in _KEYS):
            # Unknown inputs can only occur in a preview; `up` checks again with every value known.
            return CheckResult(news, failures)
        error = run_preflight(news)
        return CheckResult(news, [CheckFailure("", error)] if error else [])

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        """A change of registry, repositories or version is an update; credentials are not kept to compare."""
        keys = ("server", "repositories", "insecure", "provider_version")
        changed = [k for k in keys if olds.get(k) != news.get(k)]
        return DiffResult(changes=bool(changed), replaces=[], stables=[], delete_before_replace=False)

    def create(self, props: dict[str, Any]) -> CreateResult:
        """Nothing to create: `check` already proved the credentials; record what was checked."""
        return CreateResult(f"preflight-{props['server']}", _outs(props))

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        """As create."""
        return UpdateResult(_outs(news))


def _outs(props: dict[str, Any]) -> dict[str, Any]:
    """What was checked, without the username or the password."""
    return {
        "server": props["server"],
        "repositories": sorted(set(props["repositories"])),
        "insecure": bool(props.get("insecure", False)),
        "provider_version": props.get("provider_version", PROVIDER_VERSION),
    }


class RegistryPreflight(Resource, module=REGISTRY_PREFLIGHT_MODULE, name=REGISTRY_PREFLIGHT_NAME):
    """`pulumi-python:dynamic/registry:RegistryPreflight`: fails preview and up on bad credentials."""

    server: pulumi.Output[str]
    """The registry that was checked."""
    repositories: pulumi.Output[list[str]]
    """The repositories the user may push to."""

    def __init__(
        self,
        name: str,
        registry: RegistryConfig,
        password: pulumi.Output[str],
        repositories: Sequence[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """`repositories`: the paths (without the host, `team/web`) the user must be able to push to."""
        repos = sorted(set(repositories))
        super().__init__(
            RegistryPreflightProvider(),
            name,
            {
                "server": registry.server,
                "username": registry.username,
                "password": pulumi.Output.secret(password),
                "repositories": repos,
                "insecure": registry.insecure,
                "timeout_seconds": DEFAULT_TIMEOUT_S,
                "provider_version": PROVIDER_VERSION,
            },
            opts,
        )
        # Registration only succeeds once `check` passed, in preview as in up: then say so, once.
        targets = ", ".join(f"{registry.server}/{r}" for r in repos) or registry.server
        self.urn.apply(
            lambda _: pulumi.log.info(
                f"registry preflight passed: user {registry.username!r} may push to {targets}", resource=self
            )
        )
