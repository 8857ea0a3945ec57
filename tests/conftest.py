"""Shared fixtures: run the real program under the SDK's mocks with a known test password."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pulumi.runtime import settings
from pulumi.runtime.config import _SECRET_KEYS, CONFIG, set_all_config

from offline.simulate import Simulation, simulate
from offline.stack_files import PROJECT_DIR, read_stack_config

TEST_PASSWORD = "Tst-pw-9f3K!x7Qz"


@pytest.fixture(autouse=True)
def _restore_pulumi_runtime() -> Iterator[None]:
    """Restore config and root resource after each test, so tests never see each other's settings."""
    saved_config, saved_secrets = dict(CONFIG.get()), list(_SECRET_KEYS.get())
    saved_root = settings.ROOT.get()
    yield
    set_all_config(saved_config, saved_secrets)
    settings.ROOT.set(saved_root)


@pytest.fixture
def project_dir() -> Path:
    """The real project directory."""
    return PROJECT_DIR


@pytest.fixture
def stack_config() -> Callable[[str], dict[str, Any]]:
    """A deep copy of a shipped stack's config, for tests to modify."""
    return lambda stack: copy.deepcopy(read_stack_config(stack))


@pytest.fixture
def run_program() -> Callable[..., Simulation]:
    """Run `__main__.py` under mocks with the known test password."""

    def run(stack: str = "dev", **kwargs: Any) -> Simulation:
        kwargs.setdefault("password", TEST_PASSWORD)
        return simulate(stack, **kwargs)

    return run
