"""Fixtures of the stand-in CLI and its project, made once and named by each test module:
`fake = fake_fixture(GRPC_TRANSPORT)` makes a fixture `fake` (pytest takes the module attribute's name)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.fake_pulumi import FILE_TRANSPORT, GRPC_TRANSPORT, FakePulumi
from tests.support.fake_pulumi.project import make_project

_IDS = {FILE_TRANSPORT: "file-events", GRPC_TRANSPORT: "grpc-events"}


def fake_fixture(*versions: str) -> Any:
    """A fixture giving the stand-in CLI in `tmp_path/fake`: of the one version given, or once per
    version (the test runs with each event transport, ids `file-events`, `grpc-events`)."""
    if len(versions) == 1:

        @pytest.fixture
        def fake(tmp_path: Path) -> FakePulumi:
            return FakePulumi(tmp_path / "fake", version=versions[0])

        return fake

    @pytest.fixture(params=versions, ids=[_IDS[v] for v in versions])
    def each_fake(request: pytest.FixtureRequest, tmp_path: Path) -> FakePulumi:
        return FakePulumi(tmp_path / "fake", version=request.param)

    return each_fake


def project_fixture() -> Any:
    """A fixture giving a project of the test's own (tests/support/fake_pulumi/project.py) in
    `tmp_path/project`."""

    @pytest.fixture
    def project(tmp_path: Path) -> Path:
        return make_project(tmp_path / "project")

    return project
