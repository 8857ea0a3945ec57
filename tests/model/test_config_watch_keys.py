"""The soak, smoke-run and notification keys: defaults, per-app overrides and one-line errors."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from model.config import ConfigError, parse_config, read_deploy, read_notify
from model.config_types import NotifyConfig, SmokeConfig, SoakConfig

APP: dict[str, Any] = {
    "name": "web",
    "namespace": "apps",
    "image": {"repository": "registry.example.com/platform/web", "context": "app"},
    "source": {
        "repoURL": "https://git.example.com/platform/deploy.git",
        "targetRevision": "main",
        "path": "charts/web",
        "type": "helm",
    },
    "health": {"url": "https://web.example.com/healthz"},
}


def _parse(tmp_path: Path, app: dict[str, Any] | None = None, **top: Any) -> Any:
    (tmp_path / "app").mkdir(exist_ok=True)
    (tmp_path / "app" / "Dockerfile").write_text("FROM scratch\n")
    raw = {
        "registry": {"server": "registry.example.com", "username": "ci"},
        "apps": [{**copy.deepcopy(APP), **(app or {})}],
        **top,
    }
    return parse_config(raw, tmp_path)


def _problems(tmp_path: Path, app: dict[str, Any] | None = None, **top: Any) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        _parse(tmp_path, app, **top)
    return caught.value.problems


def test_defaults_soak_five_minutes_and_smoke_every_app(tmp_path: Path) -> None:
    config = _parse(tmp_path)
    assert config.deploy.soak == SoakConfig() and config.deploy.soak.seconds == 300
    assert config.apps[0].soak == SoakConfig()
    assert config.apps[0].smoke == SmokeConfig() and config.apps[0].smoke.enabled
    assert config.deploy.environment_url is None


def test_an_apps_soak_keys_override_the_stacks_one_by_one(tmp_path: Path) -> None:
    config = _parse(
        tmp_path,
        {"soak": {"seconds": 60}},
        deploy={"soak": {"intervalSeconds": 5, "failuresInARow": 2}},
    )
    assert config.deploy.soak == SoakConfig(interval_seconds=5, failures_in_a_row=2)
    assert config.apps[0].soak == SoakConfig(seconds=60, interval_seconds=5, failures_in_a_row=2)


def test_smoke_false_turns_it_off_and_an_object_sets_it(tmp_path: Path) -> None:
    assert not _parse(tmp_path, {"smoke": False}).apps[0].smoke.enabled
    smoke = _parse(tmp_path, {"smoke": {"port": 3000, "env": {"DATABASE_URL": "stub"}}}).apps[0].smoke
    assert smoke == SmokeConfig(port=3000, env={"DATABASE_URL": "stub"})


@pytest.mark.parametrize(
    ("app", "top", "expected"),
    [
        (
            {"smoke": "no"},
            {},
            "gitops-deploy:apps[0] (web).smoke: got string 'no'; expected false, or an object of enabled",
        ),
        (
            {"smoke": {"port": 0}},
            {},
            "gitops-deploy:apps[0] (web).smoke.port: got number 0; expected a whole",
        ),
        ({"smoke": {"prot": 1}}, {}, "gitops-deploy:apps[0] (web).smoke.prot: got an unknown key"),
        (
            {"smoke": {"timeoutSeconds": 601}},
            {},
            "gitops-deploy:apps[0] (web).smoke.timeoutSeconds: got number 601; expected a whole number",
        ),
        (
            {},
            {"deploy": {"soak": {"seconds": 3601}}},
            "gitops-deploy:deploy.soak.seconds: got number 3601; expected a whole number from 0 to 3600",
        ),
        (
            {"soak": {"intervalSeconds": 0}},
            {},
            "gitops-deploy:apps[0] (web).soak.intervalSeconds: got number 0",
        ),
        (
            {},
            {"deploy": {"soak": {"failuresInARow": 0, "maxErrorPercent": 100}}},
            "gitops-deploy:deploy.soak: got failuresInARow 0 and maxErrorPercent 100 (both failure rules",
        ),
        (
            {"soak": {"failuresInARow": 0}},
            {"deploy": {"soak": {"maxErrorPercent": 100}}},
            "gitops-deploy:apps[0] (web).soak: got failuresInARow 0 and maxErrorPercent 100",
        ),
        (
            {},
            {"deploy": {"environmentUrl": "https://ci:tok@web.example.com/"}},
            "gitops-deploy:deploy.environmentUrl: got 'https://web.example.com/'; expected an http(s)://",
        ),
    ],
)
def test_bad_values_are_one_line_errors_naming_the_key(
    tmp_path: Path, app: dict[str, Any], top: dict[str, Any], expected: str
) -> None:
    problems = _problems(tmp_path, app, **top)
    assert any(p.startswith(expected) for p in problems), problems
    assert all("\n" not in p for p in problems)


def test_a_soak_of_zero_seconds_may_turn_both_rules_off(tmp_path: Path) -> None:
    soak = {"seconds": 0, "failuresInARow": 0, "maxErrorPercent": 100}
    assert _parse(tmp_path, deploy={"soak": soak}).deploy.soak.seconds == 0
    assert read_deploy({"soak": soak}).soak.seconds == 0
    with pytest.raises(
        ConfigError, match=r"^invalid stack configuration \(1 problem\):\n  - gitops-deploy:deploy\.soak"
    ):
        read_deploy({"soak": {**soak, "seconds": 1}})


def test_notify_is_read_alone_and_its_url_never_shows(tmp_path: Path) -> None:
    assert read_notify(None) is None
    assert read_notify({"url": "https://hooks.example.com/T0/B0/secret"}) == NotifyConfig(
        "https://hooks.example.com/T0/B0/secret"
    )
    assert read_notify({"url": "http://127.0.0.1:9/x", "format": "slack"}).format == "slack"  # type: ignore[union-attr]
    for url in ("ftp://user:hunter2@hooks.example.com/T0", "https://hooks.example.com/T0/hunter2 x"):
        with pytest.raises(ConfigError) as caught:
            read_notify({"url": url})
        [problem] = caught.value.problems
        assert problem.startswith("gitops-deploy:notify.url: got a value that is not one"), problem
        assert "hunter2" not in problem and "hooks.example.com" not in problem, problem
    with pytest.raises(
        ConfigError, match=r"gitops-deploy:notify\.format: got string 'xml'; expected one of json, slack"
    ):
        read_notify({"url": "https://hooks.example.com/x", "format": "xml"})
