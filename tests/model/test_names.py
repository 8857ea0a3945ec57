"""The dynamic resource classes register under the type tokens model/names.py spells."""

from __future__ import annotations

from collections.abc import Callable

from model import names
from policy_check.simulate import Simulation


def test_dynamic_classes_get_the_named_tokens(run_program: Callable[..., Simulation]) -> None:
    """The SDK derives the token from the class kwargs; the registered types are the named ones."""
    sim = run_program("dev")
    types = {r.type for r in sim.resources}
    for token in (names.HEALTH_CHECK_TYPE, names.IMAGE_SIZE_TYPE, names.REGISTRY_PREFLIGHT_TYPE):
        assert token in types, f"no resource of type {token} registered; got {sorted(types)}"
    assert names.health_check_name("web") in {r.name for r in sim.by_type(names.HEALTH_CHECK_TYPE)}
    assert names.application_resource_name("web") in {r.name for r in sim.by_type(names.APPLICATION_TYPE)}
