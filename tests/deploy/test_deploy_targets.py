"""Before the update, `python -m deploy up` checks each app's rollback target with a manifest HEAD:
against the real test registry (Debian's docker-registry, htpasswd auth), directly and through the
stand-in CLI flow."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deploy.targets import Registry, Target, check_targets, registry_from_config
from tests.support.fake_pulumi import GRPC_TRANSPORT, FakePulumi, read_config, run_deploy
from tests.support.fake_pulumi.fixtures import fake_fixture
from tests.support.fake_pulumi.project import CONFIG, STACK, apps_output, make_project, write_config
from tests.support.health_servers import silent_server, trickling_headers_server
from tests.support.processes import free_port
from tests.support.registry import LocalRegistry, random_layer

# `python -m deploy` against the stand-in Pulumi CLI, a subprocess per case: `make test-fast` skips it.
pytestmark = [pytest.mark.cli, pytest.mark.registry]

PASSWORD = "Tgt-pw-7Hq2!mZ"
GONE = "sha256:" + "9" * 64
"""A digest the registry never had (deleted by retention, as far as a client can tell)."""


@pytest.fixture(scope="module")
def registry() -> Iterator[LocalRegistry]:
    with LocalRegistry(users={"ci": PASSWORD}) as local:
        yield local


@pytest.fixture(scope="module")
def pushed(registry: LocalRegistry) -> str:
    """web's last good digest, really in the registry."""
    return registry.push_image("platform/web", [random_layer(512)]).reference


def login(registry: LocalRegistry, password: str = PASSWORD) -> Registry:
    # Plain HTTP test registry: `insecure` lets the client fall back from https, as the config allows.
    return Registry(registry.server, "ci", password, insecure=True)


def test_present_missing_and_not_checked_targets(registry: LocalRegistry, pushed: str) -> None:
    gone = f"{registry.server}/platform/api@{GONE}"
    elsewhere = f"registry.example.com/platform/old@{GONE}"
    web, api, old = check_targets(login(registry), {"web": pushed, "api": gone, "old": elsewhere})
    assert web == Target("web", pushed, "present")
    assert api == Target("api", gone, "missing", "the registry has no such manifest (HEAD answered 404)")
    assert (old.status, old.reason) == (
        "unknown",
        f"image {elsewhere!r} is not on registry {registry.server!r}",
    )


def test_wrong_credentials_are_a_reason_once_and_never_show_the_password(
    registry: LocalRegistry, pushed: str
) -> None:
    wrong = "Wrong-pw-3Kd9"
    web, api = check_targets(login(registry, wrong), {"web": pushed, "api": pushed})
    assert web.status == api.status == "unknown"
    assert "wrong credentials" in web.reason and api.reason == web.reason, "the registry is not asked again"
    assert wrong not in web.reason and PASSWORD not in web.reason


def test_a_registry_that_cannot_be_reached_is_a_reason_not_a_hang() -> None:
    down = Registry(f"127.0.0.1:{free_port()}", "ci", PASSWORD)
    [web] = check_targets(down, {"web": f"127.0.0.1:{down.server.split(':')[1]}/platform/web@{GONE}"})
    assert web.status == "unknown" and web.reason.startswith("unreachable: cannot connect to https://")
    with silent_server() as url:
        silent = Registry(url.removeprefix("http://").rstrip("/"), "ci", PASSWORD)
        [web] = check_targets(silent, {"web": f"{silent.server}/platform/web@{GONE}"}, timeout_s=0.5)
    assert web.status == "unknown" and "did not answer within 0.5s" in web.reason


def test_the_whole_check_is_bounded_whatever_the_registry_does() -> None:
    """A registry that trickles bytes beats every per-read timeout; the check's own deadline ends it."""
    with trickling_headers_server() as url:
        slow = Registry(url.removeprefix("http://").rstrip("/"), "ci", PASSWORD, insecure=True)
        refs = {app: f"{slow.server}/platform/{app}@{GONE}" for app in ("web", "api")}
        started = time.monotonic()
        found = check_targets(slow, refs, timeout_s=5, total_s=1)
        elapsed = time.monotonic() - started
    assert [(t.app, t.status) for t in found] == [("web", "unknown"), ("api", "unknown")]
    # https, then plain http: both within the one deadline, which the reason names.
    assert (
        "and over plain HTTP: unreachable: the registry did not finish answering within 1s" in found[0].reason
    )
    assert found[1].reason == found[0].reason
    assert elapsed < 1.5, elapsed


def test_the_registry_comes_from_the_stacks_config() -> None:
    values = {
        "gitops-deploy:registry": json.dumps(
            {"server": "r.example.com:5000", "username": "ci", "insecure": True}
        ),
        "gitops-deploy:registryPassword": PASSWORD,
    }
    assert registry_from_config(values) == Registry("r.example.com:5000", "ci", PASSWORD, True)
    assert registry_from_config({**values, "gitops-deploy:registryPassword": None}) is None
    assert registry_from_config({**values, "gitops-deploy:registry": "not json"}) is None


# --- through `python -m deploy up` and the stand-in CLI ---


def _stack(project: Path, registry: LocalRegistry) -> dict[str, Any]:
    config = copy.deepcopy(CONFIG)
    config["gitops-deploy:registry"] = {"server": registry.server, "username": "ci", "insecure": True}
    for app in config["gitops-deploy:apps"]:
        app["image"]["repository"] = f"{registry.server}/platform/{app['name']}"
    write_config(project, config)
    return config


fake = fake_fixture(GRPC_TRANSPORT)


def test_the_deploy_says_where_each_rollback_target_stands_before_the_update(
    registry: LocalRegistry, pushed: str, fake: FakePulumi, tmp_path: Path
) -> None:
    project = make_project(tmp_path / "project")
    config = _stack(project, registry)
    gone = f"{registry.server}/platform/api@{GONE}"
    # api's Application times out, so api would be rolled back, to a digest the registry no longer has.
    fake.play(
        {"fixture": "application_timeout.jsonl", "exit": 255},
        outputs=apps_output(pushed, gone),
        secrets={"gitops-deploy:registryPassword": PASSWORD},
    )
    proc = run_deploy(fake, project, "--stack", STACK)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.splitlines()
    present = f"deploy: rollback target for web: {pushed.split('@')[0]}@{pushed.split('@')[1][:19]}… present"
    missing = (
        f"deploy: warning: rollback target for api: {registry.server}/platform/api@{GONE[:19]}… missing: the "
        "registry has no such manifest (HEAD answered 404). api cannot be rolled back in this deploy: a "
        "failed release of it stays as it is"
    )
    assert lines[:2] == [present, missing], "printed before the update starts"
    assert f"cannot roll back api: its last known good digest {gone} is gone from the registry" in proc.stderr
    assert len(fake.ups()) == 1, "no rollback to an image no node could pull"
    assert PASSWORD not in proc.stdout + proc.stderr
    assert read_config(project, STACK) == config


def test_an_unreachable_registry_warns_and_the_deploy_goes_on(
    registry: LocalRegistry, pushed: str, fake: FakePulumi, tmp_path: Path
) -> None:
    project = make_project(tmp_path / "project")
    _stack(project, registry)
    fake.play(
        {"fixture": "health_failure_web.jsonl", "exit": 255},
        {"fixture": "rollback_ok.jsonl"},
        outputs=apps_output(pushed, pushed.replace("/web@", "/api@")),
        secrets={"gitops-deploy:registryPassword": "Not-the-password-1"},
    )
    proc = run_deploy(fake, project, "--stack", STACK)
    assert proc.returncode == 3, proc.stderr
    assert "deploy: warning: rollback target for web: " in proc.stderr
    assert "not checked: wrong credentials" in proc.stderr
    assert "Not-the-password-1" not in proc.stderr
    assert len(fake.ups()) == 2, "a target the deploy could not check is still rolled back to"
