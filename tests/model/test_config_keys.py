"""Config that must not pass: unknown keys, trailing newlines, impossible ports."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from model import config as config_module
from model.config import (
    NAMESPACE,
    SECRET_KEYS,
    TOP_LEVEL_KEYS,
    configured_keys,
    parse_config,
    unknown_key_problems,
)
from model.config_reader import ConfigError
from model.config_schema import validator
from model.health_settings import SETTINGS, HealthSettings
from model.stack_files import PROJECT_DIR
from policy_check.simulate import ProgramFailed, simulate
from tests.support.project import REGISTRY, base_config, make_project

PASSWORD = "pw-config-keys-9"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path)


def _raw(config: dict[str, Any]) -> dict[str, Any]:
    """Namespaced config -> what parse_config takes (keys without the namespace)."""
    return {k.removeprefix(f"{NAMESPACE}:"): v for k, v in config.items()}


def _problems(config: dict[str, Any], project: Path) -> list[str]:
    try:
        parse_config(_raw(config), project)
    except ConfigError as err:
        return err.problems
    return []


def _run(project: Path, config: dict[str, Any]) -> ConfigError:
    with pytest.raises(ProgramFailed) as failed:
        simulate("keys", project_dir=project, config=config, password=PASSWORD)
    assert failed.value.resources == [], [r.urn for r in failed.value.resources]
    assert isinstance(failed.value.cause, ConfigError), failed.value.cause
    return failed.value.cause


# -- 4. unknown top-level keys ----------------------------------------------------------------------


def test_a_typo_of_cluster_is_an_error_with_a_suggestion(project: Path) -> None:
    config = {**base_config(), f"{NAMESPACE}:clusters": {"name": "prod"}}
    error = _run(project, config)
    assert error.problems == [
        f"{NAMESPACE}:clusters: an unknown key; expected one of "
        + ", ".join(f"{NAMESPACE}:{k}" for k in (*TOP_LEVEL_KEYS, *SECRET_KEYS))
        + f"; did you mean {NAMESPACE}:cluster?"
    ]


KNOWN = (*TOP_LEVEL_KEYS, *SECRET_KEYS)


@pytest.mark.parametrize("key", KNOWN)
def test_every_known_key_is_accepted_and_its_near_misses_point_to_it(key: str) -> None:
    """Derived from TOP_LEVEL_KEYS and SECRET_KEYS: a key added there is known here too."""
    assert unknown_key_problems({key}) == []
    for typo in (key + "s", key[:-1], key.upper()):
        if typo in KNOWN:
            continue
        (problem,) = unknown_key_problems({typo})
        assert problem.startswith(f"{NAMESPACE}:{typo}: an unknown key"), problem
        assert problem.endswith(f"did you mean {NAMESPACE}:{key}?"), problem


def test_a_key_added_to_top_level_keys_is_known(monkeypatch: pytest.MonkeyPatch) -> None:
    """A new key is added to the one tuple and nowhere else; the check follows it."""
    assert unknown_key_problems({"newKey"}) != []
    monkeypatch.setattr(config_module, "TOP_LEVEL_KEYS", (*TOP_LEVEL_KEYS, "newKey"))
    assert unknown_key_problems({"newKey"}) == []


def test_a_key_far_from_any_gets_no_suggestion() -> None:
    (problem,) = unknown_key_problems({"zzzzzzzz"})
    assert "did you mean" not in problem


def test_keys_are_listed_from_the_language_host_environment_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """`pulumi up` hands config over in PULUMI_CONFIG, not through set_all_config."""
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps({f"{NAMESPACE}:clusters": "{}", "other:key": "1"}))
    assert "clusters" in configured_keys() and "key" not in configured_keys()


def test_every_key_pulumi_yaml_declares_is_known() -> None:
    project = yaml.safe_load((PROJECT_DIR / "Pulumi.yaml").read_text())
    declared = project.get("template", {}).get("config", {})
    for key in declared:
        assert key.startswith(f"{NAMESPACE}:") and key.split(":", 1)[1] in KNOWN, key


# -- 5. every validating pattern, with a trailing newline -------------------------------------------


def _app(config: dict[str, Any]) -> dict[str, Any]:
    app: dict[str, Any] = config[f"{NAMESPACE}:apps"][0]
    return app


Setter = Callable[[dict[str, Any], str], None]


def _set_app(*path: str) -> Setter:
    def put(config: dict[str, Any], value: str) -> None:
        target = _app(config)
        for key in path[:-1]:
            target = target.setdefault(key, {})
        target[path[-1]] = value

    return put


def _set_top(key: str, *path: str) -> Setter:
    def put(config: dict[str, Any], value: str) -> None:
        target = config.setdefault(f"{NAMESPACE}:{key}", {})
        for part in path[:-1]:
            target = target.setdefault(part, {})
        target[path[-1]] = value

    return put


def _set_registry(config: dict[str, Any], value: str) -> None:
    config[f"{NAMESPACE}:registry"]["server"] = value
    _app(config)["image"]["repository"] = f"{value.strip()}/team/web"


def _set_list(key: str, field: str) -> Setter:
    return lambda config, value: config.update({f"{NAMESPACE}:{key}": {field: [value]}})


def _set_header_name(config: dict[str, Any], value: str) -> None:
    _app(config)["health"]["headers"] = {value: "v"}


PIN = f"{REGISTRY}/team/web@sha256:{'a' * 64}"
# (key the problem names, a valid value, how to set it)
PATTERNS: list[tuple[str, str, Setter]] = [
    ("apps[0].name", "web", _set_app("name")),
    ("apps[0] (web).namespace", "web-test", _set_app("namespace")),
    ("argocd.namespace", "argocd", _set_top("argocd", "namespace")),
    ("argocd.project", "team", _set_top("argocd", "project")),
    ("registry.server", "registry.example.com:5000", _set_registry),
    ("apps[0] (web).image.repository", f"{REGISTRY}/team/web", _set_app("image", "repository")),
    ("apps[0] (web).image.pin", PIN, _set_app("image", "pin")),
    ("apps[0] (web).image.platform", "linux/arm64/v8", _set_app("image", "platform")),
    ("apps[0] (web).source.repoURL", "https://github.com/o/r.git", _set_app("source", "repoURL")),
    ("apps[0] (web).source.repoURL", "git@github.com:o/r.git", _set_app("source", "repoURL")),
    ("build.ignore[0]", "DL3008", _set_list("build", "ignore")),
    ("build.trustedRegistries[0]", "docker.io", _set_list("build", "trustedRegistries")),
    ("apps[0] (web).health.url", "https://web.example.com:8443/healthz", _set_app("health", "url")),
    ("apps[0] (web).health.headers.", "X-Api-Key", _set_header_name),
    ("cluster.server", "https://k8s.example.com:6443", _set_top("cluster", "server")),
]


@pytest.mark.parametrize(("key", "valid", "put"), PATTERNS, ids=[f"{p[0]}={p[1]}" for p in PATTERNS])
def test_a_trailing_newline_fails_every_pattern(project: Path, key: str, valid: str, put: Setter) -> None:
    config = base_config()
    put(config, valid)
    assert _problems(config, project) == [], f"{valid!r} must be valid"
    config = base_config()
    put(config, valid + "\n")
    problems = _problems(config, project)
    assert len(problems) == 1 and problems[0].startswith(f"{NAMESPACE}:{key}"), problems


def test_a_trailing_newline_fails_a_secret_header_name(project: Path) -> None:
    config = {**base_config(), f"{NAMESPACE}:healthHeaders": {"web": {"X-Api-Key\n": "secret-value-1"}}}
    error = _run(project, config)
    assert len(error.problems) == 1 and "healthHeaders.web: header name" in error.problems[0]
    assert "secret-value-1" not in str(error)


# -- 6. ports --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "put"),
    [
        ("apps[0] (web).health.url", "https://web.example.com:99999/healthz", _set_app("health", "url")),
        ("apps[0] (web).health.url", "https://web.example.com:0/healthz", _set_app("health", "url")),
        ("apps[0] (web).health.url", "https://web.example.com:-1/healthz", _set_app("health", "url")),
        ("apps[0] (web).health.url", "https://web.example.com:\uff18\uff10/", _set_app("health", "url")),
        ("registry.server", "registry.example.com:99999", _set_registry),
        ("registry.server", "registry.example.com:", _set_registry),
        ("build.trustedRegistries[0]", "docker.io:65536", _set_list("build", "trustedRegistries")),
        ("cluster.server", "https://k8s.example.com:70000", _set_top("cluster", "server")),
    ],
)
def test_an_impossible_port_is_a_config_error(project: Path, key: str, value: str, put: Setter) -> None:
    config = base_config()
    put(config, value)
    problems = _problems(config, project)
    assert len(problems) == 1 and problems[0].startswith(f"{NAMESPACE}:{key}: got "), problems
    assert "port" in problems[0] or "characters" in problems[0], problems


# -- health settings are defined once ---------------------------------------------------------------


def test_every_health_setting_is_read_from_its_config_key(project: Path) -> None:
    """Each HealthSettings field's camelCase key reaches the typed config (nothing is read twice)."""
    values = {
        "url": "https://web.example.com/ready",
        "expectedStatus": 204,
        "maxLatencyMs": 350,
        "attempts": 7,
        "intervalSeconds": 2,
        "timeoutSeconds": 3,
        "successThreshold": 2,
        "verifyTls": False,
    }
    assert sorted(values) == sorted(f.metadata["limit"].key for f in SETTINGS)
    config = base_config()
    _app(config)["health"] = copy.deepcopy(values)
    stack = parse_config(_raw(config), project)
    health = stack.apps[0].health
    assert isinstance(health, HealthSettings)
    for setting in SETTINGS:
        assert getattr(health, setting.name) == values[setting.metadata["limit"].key], setting.name


def test_the_schema_is_a_valid_json_schema() -> None:
    """The schema the config is validated against is itself valid (Draft 2020-12)."""
    Draft202012Validator.check_schema(validator().schema)
