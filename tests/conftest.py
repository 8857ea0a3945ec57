"""Shared fixtures: run the real program under the SDK's mocks with a known test password.

Stack configs come from a project of the tests' own (tests/support/example_project.py), never from
the project's stack files, which are the user's.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import hypothesis
import pytest
from pulumi.runtime import settings
from pulumi.runtime.config import _SECRET_KEYS, CONFIG, set_all_config

from model.stack_files import read_stack_config
from policy_check.simulate import Simulation, simulate
from tests.support.example_project import make_example_project

TEST_PASSWORD = "Tst-pw-9f3K!x7Qz"

# Locally the properties draw new examples each run, to find what no one thought of; in CI they draw
# the same ones, so a red CI is a regression, not a new draw (a local run's failure prints its blob).
hypothesis.settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    hypothesis.settings.load_profile("ci")


@pytest.fixture(autouse=True)
def _restore_pulumi_runtime() -> Iterator[None]:
    """Restore config and root resource after each test, so tests never see each other's settings."""
    saved_config, saved_secrets = dict(CONFIG.get()), list(_SECRET_KEYS.get())
    saved_root = settings.ROOT.get()
    yield
    set_all_config(saved_config, saved_secrets)
    settings.ROOT.set(saved_root)


@pytest.fixture(scope="session")
def example_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example stacks (dev, staging, prod) in a project of the tests' own; tests must not edit it."""
    return make_example_project(tmp_path_factory.mktemp("example-project"))


@pytest.fixture
def example_copy(tmp_path: Path) -> Path:
    """A fresh copy of the example project, for a test that edits its files."""
    return make_example_project(tmp_path / "project")


@pytest.fixture
def project_dir(example_project: Path) -> Path:
    """The project the program runs in: the example project."""
    return example_project


@pytest.fixture
def stack_config(example_project: Path) -> Callable[[str], dict[str, Any]]:
    """A deep copy of an example stack's config, for tests to modify."""
    return lambda stack: copy.deepcopy(read_stack_config(stack, example_project))


@pytest.fixture
def run_program(example_project: Path) -> Callable[..., Simulation]:
    """Run `__main__.py` under mocks with the known test password, in the example project."""

    def run(stack: str = "dev", **kwargs: Any) -> Simulation:
        kwargs.setdefault("password", TEST_PASSWORD)
        kwargs.setdefault("project_dir", example_project)
        return simulate(stack, **kwargs)

    return run
