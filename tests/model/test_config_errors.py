"""Every bad config value stops the program before any resource exists, with one error naming the key."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pulumi
import pytest

from model.config_reader import ConfigError
from model.errors import GitopsError
from policy_check.simulate import ProgramFailed, Simulation

Mutate = Callable[[dict[str, Any]], None]


def _app(cfg: dict[str, Any], i: int = 0) -> dict[str, Any]:
    return cfg["gitops-deploy:apps"][i]


def _second_app(cfg: dict[str, Any]) -> None:
    """Give the stack a second, valid app, so errors can name apps[1]."""
    other = copy.deepcopy(_app(cfg))
    other["name"] = "other"
    cfg["gitops-deploy:apps"].append(other)


def _set(path: str, value: Any) -> Mutate:
    """Set a dotted path inside apps[1] (or a top-level key when path has no 'apps')."""

    def mutate(cfg: dict[str, Any]) -> None:
        _second_app(cfg)
        target = _app(cfg, 1)
        *parents, last = path.split(".")
        for key in parents:
            target = target.setdefault(key, {})
        target[last] = value

    return mutate


def _dupe(cfg: dict[str, Any]) -> None:
    _second_app(cfg)
    _app(cfg, 1)["name"] = _app(cfg, 0)["name"]


CASES: list[tuple[str, Mutate, str, str]] = [
    ("replicas-zero", _set("replicas", 0), "gitops-deploy:apps[1] (api).replicas", "a whole number from 1"),
    ("replicas-string", _set("replicas", "3"), "gitops-deploy:apps[1] (api).replicas", "got string '3'"),
    (
        "repository-off-registry",
        _set("image.repository", "docker.io/acme/web"),
        "gitops-deploy:apps[1] (api).image.repository",
        "on the stack's registry 'registry.example.com'",
    ),
    (
        "repository-with-tag",
        _set("image.repository", "registry.example.com/acme/web:latest"),
        "gitops-deploy:apps[1] (api).image.repository",
        "without a tag or digest",
    ),
    (
        "repo-url-ftp",
        _set("source.repoURL", "ftp://example.com/repo.git"),
        "gitops-deploy:apps[1] (api).source.repoURL",
        "http(s):// or ssh://",
    ),
    ("name-not-dns", _set("name", "Web_App"), "gitops-deploy:apps[1] (Web_App).name", "DNS-1123 label"),
    ("name-too-long", _set("name", "a" * 64), "gitops-deploy:apps[1].name", "DNS-1123 label"),
    (
        "name-too-long-for-derived-names",
        _set("name", "a" * 55),
        f"gitops-deploy:apps[1] ({'a' * 55}).name",
        "at most 54 characters starting with a letter: Kubernetes names such as '<app>-registry'",
    ),
    ("name-digit-first", _set("name", "1web"), "gitops-deploy:apps[1] (1web).name", "DNS-1035 labels"),
    ("duplicate-name", _dupe, "gitops-deploy:apps[1] (web).name", "already has it"),
    ("empty-apps", lambda c: c.update({"gitops-deploy:apps": []}), "gitops-deploy:apps", "at least one app"),
    (
        "apps-not-list",
        lambda c: c.update({"gitops-deploy:apps": {"name": "x"}}),
        "gitops-deploy:apps",
        "expected a list",
    ),
    (
        "source-type",
        _set("source.type", "jsonnet"),
        "gitops-deploy:apps[1] (api).source.type",
        "one of helm, kustomize",
    ),
    (
        "health-url",
        _set("health.url", "tcp://x:1"),
        "gitops-deploy:apps[1] (api).health.url",
        "http:// or https://",
    ),
    (
        "health-attempts",
        _set("health.attempts", 0),
        "gitops-deploy:apps[1] (api).health.attempts",
        "a whole number from 1",
    ),
    (
        "health-latency",
        _set("health.maxLatencyMs", -5),
        "gitops-deploy:apps[1] (api).health.maxLatencyMs",
        "a positive number",
    ),
    ("health-budget", _set("health.attempts", 1000), "gitops-deploy:apps[1] (api).health", "at most 900 s"),
    (
        "threshold-over-attempts",
        _set("health.successThreshold", 20),
        "gitops-deploy:apps[1] (api).health.successThreshold",
        "the check could never pass",
    ),
    ("unknown-key", _set("replica", 3), "gitops-deploy:apps[1] (api).replica", "an unknown key"),
    (
        "missing-dockerfile",
        _set("image.dockerfile", "examples/app/Nope.Dockerfile"),
        "gitops-deploy:apps[1] (api).image.dockerfile",
        "looked for",
    ),
    (
        "missing-context",
        _set("image.context", "examples/nowhere"),
        "gitops-deploy:apps[1] (api).image.context",
        "looked for",
    ),
    (
        "bad-pin",
        _set("image.pin", "registry.example.com/platform/web:v1"),
        "gitops-deploy:apps[1] (api).image.pin",
        "@sha256:",
    ),
    (
        "registry-scheme",
        lambda c: c["gitops-deploy:registry"].update(server="https://registry.example.com"),
        "gitops-deploy:registry.server",
        "no scheme",
    ),
    (
        "registry-missing",
        lambda c: c.pop("gitops-deploy:registry"),
        "gitops-deploy:registry",
        "missing; expected an object",
    ),
    (
        "insecure-string",
        lambda c: c["gitops-deploy:registry"].update(insecure="yes"),
        "gitops-deploy:registry.insecure",
        "true or false",
    ),
    (
        "lint-threshold",
        lambda c: c.update({"gitops-deploy:build": {"lintThreshold": "fatal"}}),
        "gitops-deploy:build.lintThreshold",
        "error, warning, info, style, none",
    ),
    (
        "lint-ignore",
        lambda c: c.update({"gitops-deploy:build": {"ignore": ["no-latest"]}}),
        "gitops-deploy:build.ignore[0]",
        "rule codes",
    ),
    (
        "cluster-both",
        lambda c: c.update({"gitops-deploy:cluster": {"name": "a", "server": "https://b"}}),
        "gitops-deploy:cluster",
        "exactly one of them",
    ),
    (
        "cluster-neither",
        lambda c: c.update({"gitops-deploy:cluster": {"context": "a"}}),
        "gitops-deploy:cluster",
        "exactly one of 'name'",
    ),
    (
        "manage-default-project",
        lambda c: c.update({"gitops-deploy:argocd": {"project": "default", "manageProject": True}}),
        "gitops-deploy:argocd.manageProject",
        "default project is shared",
    ),
]


@pytest.mark.parametrize(("case", "mutate", "key", "expected"), CASES, ids=[c[0] for c in CASES])
def test_bad_value_is_one_clear_error_and_nothing_is_registered(
    run_program: Callable[..., Simulation],
    stack_config: Callable[[str], dict[str, Any]],
    case: str,
    mutate: Mutate,
    key: str,
    expected: str,
) -> None:
    cfg = stack_config("dev")
    mutate(cfg)
    with pytest.raises(ProgramFailed) as failed:
        run_program("dev", config=cfg)
    error = failed.value.cause
    assert isinstance(error, ConfigError), f"{case}: {type(error).__name__}: {error}"
    message = str(error)
    assert len(error.problems) == 1, f"{case}: expected one problem, got:\n{message}"
    assert error.problems[0].startswith(f"{key}: got ") or error.problems[0].startswith(f"{key}: missing;"), (
        f"{case}: the problem must start with the key path {key} and what was given:\n{message}"
    )
    assert expected in message, f"{case}: {expected!r} not in:\n{message}"
    assert failed.value.resources == [], f"{case}: registered {[r.urn for r in failed.value.resources]}"


def test_all_problems_are_reported_together(
    run_program: Callable[..., Simulation], stack_config: Callable[[str], dict[str, Any]]
) -> None:
    cfg = stack_config("dev")
    _app(cfg)["replicas"] = 0
    _app(cfg)["source"]["repoURL"] = "file:///tmp/repo"
    with pytest.raises(ProgramFailed) as failed:
        run_program("dev", config=cfg)
    error = failed.value.cause
    assert isinstance(error, ConfigError)
    assert len(error.problems) == 2, error.problems
    assert "(2 problems)" in str(error)


def test_missing_password_names_the_set_secret_step(
    run_program: Callable[..., Simulation], stack_config: Callable[[str], dict[str, Any]]
) -> None:
    with pytest.raises(ProgramFailed) as failed:
        run_program("dev", config=stack_config("dev"), password=None)
    assert "pulumi config set --secret gitops-deploy:registryPassword" in str(failed.value.cause)
    assert failed.value.resources == []


def test_config_error_is_a_run_error_so_no_traceback_is_shown() -> None:
    assert issubclass(ConfigError, pulumi.RunError) and issubclass(ConfigError, GitopsError)
