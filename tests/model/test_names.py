"""The policy pack's own copy of the program's spellings (it runs from its own folder) equals the original."""

from __future__ import annotations

from collections.abc import Callable

from components.app_release import DOCKERCONFIGJSON
from model import names
from policy_check.simulate import Simulation
from rules import props, pull_secret


def test_pack_type_tokens_equal_the_programs() -> None:
    assert props.APPLICATION == names.APPLICATION_TYPE
    assert props.APP_PROJECT == names.APP_PROJECT_TYPE
    assert props.SECRET == names.SECRET_TYPE
    assert props.IMAGE_SIZE == names.IMAGE_SIZE_TYPE
    assert props.HEALTH_CHECK == names.HEALTH_CHECK_TYPE


def test_pack_labels_and_annotations_equal_the_programs() -> None:
    assert props.MANAGED_BY == (names.MANAGED_BY_KEY, names.MANAGED_BY_VALUE)
    assert props.PULL_SECRET_ROLE == (names.PULL_SECRET_ROLE_KEY, names.PULL_SECRET_ROLE_VALUE)
    assert props.IMAGE_SIZE_ANNOTATION == names.IMAGE_SIZE_ANNOTATION
    assert pull_secret.DOCKERCONFIGJSON == DOCKERCONFIGJSON


def test_dynamic_classes_get_the_named_tokens(run_program: Callable[..., Simulation]) -> None:
    """The SDK derives the token from the class kwargs; the registered types are the named ones."""
    sim = run_program("dev")
    types = {r.type for r in sim.resources}
    for token in (names.HEALTH_CHECK_TYPE, names.IMAGE_SIZE_TYPE, names.REGISTRY_PREFLIGHT_TYPE):
        assert token in types, f"no resource of type {token} registered; got {sorted(types)}"
    assert names.health_check_name("web") in {r.name for r in sim.by_type(names.HEALTH_CHECK_TYPE)}
    assert names.application_resource_name("web") in {r.name for r in sim.by_type(names.APPLICATION_TYPE)}
