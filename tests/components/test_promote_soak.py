"""Promotion waits for the soak: the program's `soakedDigest`, and a downstream stack taking only that one.

Under the SDK's mocks: the StackReference answers the outputs each test gives
(`ProgramMocks(stack_outputs=...)`), and the stack's own last outputs are what `own_outputs` gives.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from components.app_release import soaked_digest
from components.deployment import PromotionError
from model.config_schema import NAMESPACE, SOAKED_KEY
from policy_check.simulate import ProgramFailed, ProgramMocks, Simulation, simulate
from tests.conftest import TEST_PASSWORD

WEB = "registry.example.com/team/web"
API = "registry.example.com/team/api"
KEY = f"{NAMESPACE}:{SOAKED_KEY}"
OTHER = f"{WEB}@sha256:" + "e" * 64
"""A digest of web's repository that this update does not ship."""


def _app(name: str, soak: dict[str, Any] | None = None) -> dict[str, Any]:
    app: dict[str, Any] = {
        "name": name,
        "namespace": "team",
        "image": {"repository": f"registry.example.com/team/{name}", "context": "examples/app"},
        "source": {
            "repoURL": "https://github.com/example-org/gitops-deploy.git",
            "targetRevision": "main",
            "path": "examples/app/chart",
            "type": "helm",
        },
        "health": {"url": f"https://{name}.example.com/healthz"},
    }
    if soak is not None:
        app["soak"] = soak
    return app


def _stack(*apps: dict[str, Any], **extra: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "gitops-deploy:registry": {"server": "registry.example.com", "username": "ci-pusher"},
        "gitops-deploy:apps": list(apps),
    }
    cfg.update({f"{NAMESPACE}:{k}": v for k, v in extra.items()})
    return cfg


def _run(cfg: dict[str, Any], stack: str = "up", **kwargs: Any) -> Simulation:
    return simulate(stack, config=copy.deepcopy(cfg), password=TEST_PASSWORD, **kwargs)


def _apps(sim: Simulation) -> dict[str, dict[str, Any]]:
    return {app: dict(entry) for app, entry in sim.exports["apps"].items()}


UPSTREAM = _stack(_app("web"), _app("api"))


# --- the rule itself ---


@pytest.mark.parametrize(
    ("soak_seconds", "given", "before", "promotable"),
    [
        (0, None, None, True),
        (300, None, None, False),
        (300, "D", None, True),
        (300, OTHER, None, False),
        (300, None, "D", True),
        (300, None, OTHER, False),
        (300, OTHER, "D", True),
    ],
    ids=["no-soak", "soaking", "soaked-now", "soaked-other", "carried-over", "other-before", "before-wins"],
)
def test_the_soaked_digest_rule(
    soak_seconds: int, given: str | None, before: str | None, promotable: bool
) -> None:
    """Given and before name the verified digest with "D" (resolved below)."""
    digest = f"{WEB}@sha256:" + "d" * 64
    swap = {"D": digest}
    got = soaked_digest(
        digest,
        soak_seconds=soak_seconds,
        given=swap.get(given or "", given),
        before=swap.get(before or "", before),
    )
    assert got == (digest if promotable else "")


# --- the program's export ---


def test_an_update_without_a_soak_result_leaves_the_new_digest_not_promotable() -> None:
    sim = _run(UPSTREAM)
    for app, entry in _apps(sim).items():
        assert entry["imageDigest"].startswith(f"registry.example.com/team/{app}@sha256:"), entry
        assert entry["soakedDigest"] == "", f"{app}: soaking (or interrupted): not promotable yet"


def test_the_follow_up_update_with_the_soak_result_exports_the_soaked_digest() -> None:
    released = _apps(_run(UPSTREAM))
    passed = {"web": released["web"]["imageDigest"]}  # api's soak did not pass
    after = _apps(_run({**UPSTREAM, KEY: json.dumps(passed)}))
    assert after["web"]["soakedDigest"] == after["web"]["imageDigest"] == passed["web"]
    assert after["api"]["soakedDigest"] == "", "api's soak did not pass"
    assert after["api"]["imageDigest"] == released["api"]["imageDigest"], (
        "the same release, nothing else moved"
    )


def test_a_soak_result_for_another_digest_does_not_make_this_one_promotable() -> None:
    sim = _run({**UPSTREAM, KEY: json.dumps({"web": OTHER})})
    assert _apps(sim)["web"]["soakedDigest"] == ""


def test_an_app_without_soak_is_promotable_once_its_gate_passed() -> None:
    cfg = _stack(_app("web", soak={"seconds": 0}), _app("api"))
    apps = _apps(_run(cfg))
    assert apps["web"]["soakedDigest"] == apps["web"]["imageDigest"] != ""
    assert apps["api"]["soakedDigest"] == "", "api keeps the stack's soak"
    # The stack's own soak off turns it off for every app that does not set its own.
    apps = _apps(
        _run(_stack(_app("web"), _app("api", soak={"seconds": 60}), deploy={"soak": {"seconds": 0}}))
    )
    assert apps["web"]["soakedDigest"] == apps["web"]["imageDigest"]
    assert apps["api"]["soakedDigest"] == ""


def test_the_soaked_digest_is_carried_over_while_the_release_is_the_same() -> None:
    released = _apps(_run(UPSTREAM))
    web, api = released["web"]["imageDigest"], released["api"]["imageDigest"]
    last = {"apps": {"web": {"imageDigest": web, "soakedDigest": web}, "api": {"imageDigest": OTHER}}}
    apps = _apps(_run(UPSTREAM, own_outputs=last))
    assert apps["web"]["soakedDigest"] == web, "a later update of an unchanged, soaked release keeps it"
    assert apps["api"]["soakedDigest"] == "" and apps["api"]["imageDigest"] == api
    # A new release of web: the soaked digest of the last one does not carry over to it.
    moved = {"apps": {"web": {"imageDigest": OTHER, "soakedDigest": OTHER}}}
    assert _apps(_run(UPSTREAM, own_outputs=moved))["web"]["soakedDigest"] == ""
    # Nor does a malformed one.
    odd = {"apps": {"web": {"soakedDigest": 7}}, "failedReleases": {}}
    assert _apps(_run(UPSTREAM, own_outputs=odd))["web"]["soakedDigest"] == ""


def test_preview_prints_the_soak_apart_from_the_budget() -> None:
    cfg = _stack(_app("web"), _app("api", soak={"seconds": 0}), deploy={"soak": {"failuresInARow": 0}})
    sim = _run(cfg, preview=True)
    [budget] = [line for line in sim.logs if line.startswith("info: web: worst case")]
    [soak] = [line for line in sim.logs if line.startswith("info: web: soak")]
    assert "soak" not in budget, budget
    assert soak == (
        "info: web: soak 5m after the update, a probe every 10s, failing on over 50% failed probes in 1m; "
        "not part of the deploy budget (gitops-deploy:apps[0].soak over gitops-deploy:deploy.soak)"
    ), soak
    assert any(line.startswith("info: api: no soak (soak.seconds 0)") for line in sim.logs), sim.logs


# --- a downstream stack promotes only soaked digests ---


def _promote(outputs: dict[str, Any], *apps: dict[str, Any]) -> Simulation:
    cfg = _stack(*(apps or (_app("web"), _app("api"))), promote={"from": "up"})
    return _run(cfg, "down", mocks=ProgramMocks(stack_outputs={"up": outputs}))


def _refusal(outputs: dict[str, Any]) -> str:
    with pytest.raises(ProgramFailed) as failed:
        _promote(outputs)
    assert isinstance(failed.value.cause, PromotionError), failed.value.cause
    applied = [
        r.urn for r in failed.value.resources if r.custom and not r.type.startswith("pulumi:providers:")
    ]
    assert applied == [], applied
    return str(failed.value.cause)


def test_a_digest_still_soaking_upstream_is_not_promoted() -> None:
    upstream = _run(UPSTREAM)
    web = upstream.exports["apps"]["web"]["imageDigest"]
    text = _refusal(upstream.exports)
    assert text.startswith("gitops-deploy:promote: stack 'up' cannot supply 2 apps:\n"), text
    assert (
        f"  - app 'web' has not passed its soak in stack 'up' with {web} (still soaking, or its soak was "
        "stopped or failed); deploy stack 'up' again and let the soak finish, or set "
        "gitops-deploy:apps[0].image.pin"
    ) in text.splitlines(), text
    assert "app 'api' has not passed its soak" in text and "gitops-deploy:apps[1].image.pin" in text, text


def test_an_upstream_exported_by_an_older_version_is_not_promoted() -> None:
    upstream = _run(UPSTREAM)
    older = {"apps": {a: {"imageDigest": e["imageDigest"]} for a, e in upstream.exports["apps"].items()}}
    text = _refusal(older)
    web = older["apps"]["web"]["imageDigest"]
    assert (
        f"app 'web' has no soak result in stack 'up' for {web}: an older version of this program "
        "deployed it; deploy stack 'up' again with this version and let the soak finish, or set "
        "gitops-deploy:apps[0].image.pin"
    ) in text, text


def test_a_soaked_digest_is_promoted_and_a_soak_result_of_an_older_release_is_not() -> None:
    released = _run(UPSTREAM).exports["apps"]
    passed = {app: e["imageDigest"] for app, e in released.items()}
    soaked = _run({**UPSTREAM, KEY: json.dumps(passed)})
    sim = _promote(soaked.exports)
    assert {a: e["imageDigest"] for a, e in _apps(sim).items()} == passed
    # The next release of web upstream is gated but still soaking: its last soaked digest is not its digest.
    newer = copy.deepcopy(soaked.exports)
    newer["apps"]["web"]["imageDigest"] = OTHER
    text = _refusal(newer)
    assert (
        f"app 'web' has not passed its soak in stack 'up' with {OTHER}" in text
        and "cannot supply 1 app" in text
    )


def test_an_upstream_app_without_soak_is_promoted_after_its_gate() -> None:
    cfg = _stack(_app("web", soak={"seconds": 0}), _app("api", soak={"seconds": 0}))
    upstream = _run(cfg)
    sim = _promote(upstream.exports)
    assert {a: e["imageDigest"] for a, e in _apps(sim).items()} == {
        a: e["imageDigest"] for a, e in upstream.exports["apps"].items()
    }


# --- the config key ---


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            "web",
            "gitops-deploy:soaked: got string 'web'; expected an object of app names to '<repository>@",
        ),
        (
            {"web": "sha256:" + "a" * 64},
            "gitops-deploy:soaked.web: got string 'sha256:aaaa",
        ),
        (
            {"web": 3},
            "gitops-deploy:soaked.web: got number 3; expected '<repository>@sha256:<64 hex digits>'",
        ),
        (
            {"nope": f"{WEB}@sha256:" + "a" * 64},
            "gitops-deploy:soaked.nope: got app 'nope'; expected an app of gitops-deploy:apps (api, web)",
        ),
        (
            {"api": f"{WEB}@sha256:" + "a" * 64},
            f"gitops-deploy:soaked.api: got '{WEB}@sha256:{'a' * 64}'; expected a digest of the app's "
            "repository, 'registry.example.com/team/api@sha256:<64 hex digits>'",
        ),
    ],
    ids=["not-an-object", "not-a-reference", "not-a-string", "unknown-app", "other-repository"],
)
def test_a_bad_soaked_key_is_one_clear_error(value: Any, expected: str) -> None:
    with pytest.raises(ProgramFailed) as failed:
        _run({**UPSTREAM, KEY: json.dumps(value)})
    text = str(failed.value.cause)
    assert text.count("\n  - ") == 1 and expected in text, text
    assert failed.value.resources == []
