"""The health gate runs whenever what Argo CD deploys changes, and for a rollback.

The program runs under mocks before and after each kind of change; the HealthCheck inputs it
registers go to the real provider over gRPC (`python -m pulumi.dynamic`), as the engine sends them:
Check on the new inputs, then Diff against the old state, which Create or Update answered.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest

from components.argo_application import release_trigger
from components.health import HealthCheckProvider
from model.names import APPLICATION_TYPE, HEALTH_CHECK_TYPE, application_resource_name, health_check_name
from policy_check.simulate import ProgramFailed, Simulation, simulate
from tests.conftest import TEST_PASSWORD
from tests.support.dynamic_provider import DynamicProviderServer
from tests.support.health_servers import Reply, ScriptedServer

REPO = "https://github.com/example-org/gitops-deploy.git"
STACK = "trigger-test"


def _config(server: ScriptedServer) -> dict[str, Any]:
    """A stack of its own: a Helm app and a kustomize app, each probed on the local server."""

    def health(path: str) -> dict[str, Any]:
        # One fast probe: the point here is when the gate runs, not how it judges.
        return {
            "url": server.url(path),
            "attempts": 2,
            "intervalSeconds": 0.05,
            "timeoutSeconds": 2,
            "successThreshold": 1,
            "maxLatencyMs": 2000,
        }

    return {
        "gitops-deploy:registry": {"server": "registry.example.com", "username": "ci-pusher"},
        "gitops-deploy:apps": [
            {
                "name": "web",
                "namespace": "team",
                "replicas": 2,
                "image": {"repository": "registry.example.com/team/web", "context": "examples/app"},
                "source": {
                    "repoURL": REPO,
                    "targetRevision": "main",
                    "path": "examples/app/chart",
                    "type": "helm",
                },
                "health": health("/web"),
            },
            {
                "name": "api",
                "namespace": "team",
                "replicas": 2,
                "image": {"repository": "registry.example.com/team/api", "context": "examples/app"},
                "source": {
                    "repoURL": REPO,
                    "targetRevision": "main",
                    "path": "examples/app/kustomize",
                    "type": "kustomize",
                    "imageName": "web",
                },
                "health": health("/api"),
            },
        ],
    }


def _app(cfg: dict[str, Any], name: str) -> dict[str, Any]:
    return next(a for a in cfg["gitops-deploy:apps"] if a["name"] == name)


def _run(cfg: dict[str, Any]) -> Simulation:
    return simulate(STACK, config=cfg, password=TEST_PASSWORD)


def _registered(sim: Simulation, app: str) -> dict[str, Any]:
    """The HealthCheck inputs the program registered for `app`, as the engine hands them to Check."""
    [check] = [r for r in sim.by_type(HEALTH_CHECK_TYPE) if r.name == health_check_name(app)]
    return {k: v for k, v in check.inputs.items() if not k.startswith("__") and v is not None}


def _news(provider: DynamicProviderServer, sim: Simulation, app: str) -> dict[str, Any]:
    checked = provider.check(_registered(sim, app))
    assert checked.failures == [], checked.failures
    return checked.inputs


def _created(provider: DynamicProviderServer, sim: Simulation, app: str) -> dict[str, Any]:
    """The state a successful gate leaves: Create's outputs (the old state of the next Diff)."""
    _, outs = provider.create(_news(provider, sim, app))
    return outs


def _digest(sim: Simulation, app: str) -> str:
    return str(sim.exports["apps"][app]["imageDigest"])


@pytest.fixture(scope="module")
def endpoints() -> Iterator[ScriptedServer]:
    with ScriptedServer({"/web": [Reply(200)], "/api": [Reply(200)]}) as srv:
        yield srv


@pytest.fixture(scope="module")
def provider() -> Iterator[DynamicProviderServer]:
    with DynamicProviderServer(HealthCheckProvider()) as srv:
        yield srv


def _set(path: tuple[str, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(cfg: dict[str, Any]) -> None:
        target: Any = _app(cfg, path[0])
        for key in path[1:-1]:
            target = target.setdefault(key, {})
        target[path[-1]] = value

    return edit


def _cluster(cfg: dict[str, Any]) -> None:
    cfg["gitops-deploy:cluster"] = {"server": "https://10.0.0.9:6443"}


# Each change touches one app; the other app's gate must not run for it.
CHANGES: dict[str, tuple[str, Callable[[dict[str, Any]], None]]] = {
    "revision": ("web", _set(("web", "source", "targetRevision"), "v2.0.0")),
    "repoURL": ("web", _set(("web", "source", "repoURL"), "https://github.com/example-org/other.git")),
    "path": ("web", _set(("web", "source", "path"), "deploy/chart")),
    "kustomize-values": ("api", _set(("api", "source", "imageName"), "api")),
    "kustomize-workload": ("api", _set(("api", "source", "workload"), "server")),
    "replicas": ("web", _set(("web", "replicas"), 5)),
    "digest": ("api", _set(("api", "image", "buildArgs"), {"APP_ROLE": "api"})),
    "pinned-digest": (
        "web",
        _set(("web", "image", "pin"), "registry.example.com/team/web@sha256:" + "e" * 64),
    ),
}


@pytest.mark.grpc
@pytest.mark.parametrize("change", list(CHANGES))
def test_a_changed_release_runs_its_gate_and_only_its_own(
    endpoints: ScriptedServer, provider: DynamicProviderServer, change: str
) -> None:
    changed_app, edit = CHANGES[change]
    before_cfg = _config(endpoints)
    after_cfg = copy.deepcopy(before_cfg)
    edit(after_cfg)
    before, after = _run(before_cfg), _run(after_cfg)
    for app in ("web", "api"):
        diff = provider.diff(_created(provider, before, app), _news(provider, after, app))
        assert diff.has_changes == (app == changed_app), f"{change}: {app} gate runs: {diff.has_changes}"
        assert diff.replaces == [], "a new release updates the check, it never replaces it"


@pytest.mark.grpc
def test_a_changed_destination_runs_every_gate(
    endpoints: ScriptedServer, provider: DynamicProviderServer
) -> None:
    before_cfg = _config(endpoints)
    after_cfg = copy.deepcopy(before_cfg)
    _cluster(after_cfg)
    before, after = _run(before_cfg), _run(after_cfg)
    for app in ("web", "api"):
        assert provider.diff(_created(provider, before, app), _news(provider, after, app)).has_changes, app


@pytest.mark.grpc
def test_nothing_changed_runs_no_gate(endpoints: ScriptedServer, provider: DynamicProviderServer) -> None:
    first, second = _run(_config(endpoints)), _run(_config(endpoints))
    for app in ("web", "api"):
        assert _registered(first, app)["trigger"] == _registered(second, app)["trigger"], "stable hash"
        assert not provider.diff(_created(provider, first, app), _news(provider, second, app)).has_changes


@pytest.mark.grpc
def test_a_rollback_probes_the_restored_release(
    endpoints: ScriptedServer, provider: DynamicProviderServer
) -> None:
    """Good release, failed release (its update fails and keeps the old state), then the rollback."""
    good_cfg = _config(endpoints)
    good = _run(good_cfg)
    state = _created(provider, good, "web")  # the gate passed: this is the last good state
    good_digest = _digest(good, "web")

    failed_cfg = copy.deepcopy(good_cfg)
    _app(failed_cfg, "web")["image"]["buildArgs"] = {"BROKEN": "1"}
    failed = _run(failed_cfg)
    assert _digest(failed, "web") != good_digest
    assert provider.diff(state, _news(provider, failed, "web")).has_changes
    endpoints.unhealthy_until = time.monotonic() + 3600
    try:
        with pytest.raises(grpc.RpcError, match="503"):
            provider.update(state, _news(provider, failed, "web"))
    finally:
        endpoints.unhealthy_until = 0.0
    # The engine keeps the old state of a failed update, so the next Diff is against `state` again
    # (docs/engine-rules.md#what-a-failed-update-leaves-in-the-state).

    rollback_cfg = copy.deepcopy(failed_cfg)
    _app(rollback_cfg, "web")["image"]["pin"] = good_digest
    rollback_cfg["gitops-deploy:rollbackId"] = "rb-2f9c1d"
    rollback = _run(rollback_cfg)
    news = _news(provider, rollback, "web")
    assert provider.diff(state, news).has_changes, "the rollback's gate must run"
    hits = endpoints.hits["/web"]
    outs = provider.update(state, news)
    assert endpoints.hits["/web"] > hits and outs["status_code"] == 200, "the restored release was probed"
    # The app that was not rolled back keeps its gate quiet: only pinned apps carry the rollback id.
    assert not provider.diff(_created(provider, good, "api"), _news(provider, rollback, "api")).has_changes


@pytest.mark.grpc
def test_the_rollback_id_is_what_makes_a_repeated_pin_run(
    endpoints: ScriptedServer, provider: DynamicProviderServer
) -> None:
    """The last good release may itself be pinned (a previous rollback): only the new id tells them apart."""
    cfg = _config(endpoints)
    _app(cfg, "web")["image"]["pin"] = "registry.example.com/team/web@sha256:" + "a" * 64
    first = dict(cfg, **{"gitops-deploy:rollbackId": "rb-one"})
    state = _created(provider, _run(first), "web")
    again = _run(dict(cfg, **{"gitops-deploy:rollbackId": "rb-two"}))
    assert provider.diff(state, _news(provider, again, "web")).has_changes
    same = _run(dict(cfg, **{"gitops-deploy:rollbackId": "rb-one"}))
    assert not provider.diff(state, _news(provider, same, "web")).has_changes
    # Without an id, a pin equal to the stored release is no change at all: the gap the id closes.
    plain = _created(provider, _run(cfg), "web")
    assert not provider.diff(plain, _news(provider, _run(cfg), "web")).has_changes


def test_rollback_id_is_a_plain_string_and_must_not_be_empty(endpoints: ScriptedServer) -> None:
    cfg = _config(endpoints)
    # `pulumi config set` stores it as is, not as JSON: a value that is not valid JSON must read fine.
    cfg["gitops-deploy:rollbackId"] = "rb:2024-05-01T10:00:00Z/run-7"
    _run(cfg)
    cfg["gitops-deploy:rollbackId"] = " "
    with pytest.raises(ProgramFailed) as failed:
        _run(cfg)
    assert "gitops-deploy:rollbackId: got string ' '; expected a non-empty string" in str(failed.value.cause)
    assert failed.value.resources == []


def _application_spec(sim: Simulation, app: str) -> dict[str, Any]:
    [application] = [r for r in sim.by_type(APPLICATION_TYPE) if r.name == application_resource_name(app)]
    return dict(application.inputs["spec"])


def test_the_trigger_is_the_hash_of_the_spec_the_program_registers(endpoints: ScriptedServer) -> None:
    sim = _run(_config(endpoints))
    for app in ("web", "api"):
        assert _registered(sim, app)["trigger"] == release_trigger(_application_spec(sim, app)), app


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, (*path, index))
    else:
        yield path


def _changed(spec: dict[str, Any], path: tuple[Any, ...]) -> dict[str, Any]:
    edited = copy.deepcopy(spec)
    target: Any = edited
    for step in path[:-1]:
        target = target[step]
    old = target[path[-1]]
    target[path[-1]] = (not old) if isinstance(old, bool) else old + 1 if isinstance(old, int) else f"{old}x"
    return edited


def test_changing_any_field_of_the_built_spec_changes_the_trigger(endpoints: ScriptedServer) -> None:
    """A field added to the spec one day is covered without a change here: every leaf is tried."""
    sim = _run(_config(endpoints))
    for app in ("web", "api"):
        spec = _application_spec(sim, app)
        trigger = release_trigger(spec)
        reordered = {key: spec[key] for key in reversed(list(spec))}
        assert release_trigger(reordered) == trigger, "the hash is canonical"
        assert trigger.startswith("sha256:") and len(trigger) == 71
        assert release_trigger(spec, "rb-1") != trigger, "a rollback's id is folded in"
        paths = list(_leaves(spec))
        assert len(paths) > 10, paths
        for path in paths:
            assert release_trigger(_changed(spec, path)) != trigger, f"{app}: {path}"
