"""The deploy -> program handshake of a passing soak: `gitops-deploy:soaked`, set for one `stack.up()` through
the real `pulumi.automation` against the stand-in `pulumi`, is the config the program reads in that update.

The stand-in records the stack's config at each `up` (what the CLI hands the language host); the program then
runs under mocks with exactly that config.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from pulumi import automation

from deploy.process import Interrupts
from deploy.pulumi_cli import DeployPulumiCommand
from deploy.runtime_config import RuntimeKey, runtime_config
from model.config_schema import NAMESPACE, SOAKED_KEY
from policy_check.simulate import simulate
from tests.conftest import TEST_PASSWORD
from tests.support import projects
from tests.support.fake_pulumi import FakePulumi, read_config

STACK = "dev"
KEY = f"{NAMESPACE}:{SOAKED_KEY}"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = projects.make_project(tmp_path / "project")
    chart = projects.write_chart(root)
    for app in ("web", "api"):
        (root / app).mkdir()
        (root / app / "Dockerfile").write_text(f"FROM scratch\nCOPY . /{app}\n")
    apps = [projects.app(name, name, chart=chart) for name in ("web", "api")]
    projects.write_stack(root, STACK, projects.stack_config(apps))
    return root


def _digests(project: Path, config: dict[str, object]) -> dict[str, dict[str, str]]:
    sim = simulate(STACK, project_dir=project, config=config, password=TEST_PASSWORD)
    return {app: dict(entry) for app, entry in sim.exports["apps"].items()}


def test_the_soak_result_set_for_one_up_reaches_the_program(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    released = _digests(project, read_config(project, STACK))
    assert {app: e["soakedDigest"] for app, e in released.items()} == {"web": "", "api": ""}, "still soaking"
    fake = FakePulumi(tmp_path / "fake")
    fake.play({"fixture": "good_deploy.jsonl"})
    for name, value in fake.env().items():
        monkeypatch.setenv(name, value)
    out = io.StringIO()
    interrupts = Interrupts(out)
    stack = automation.select_stack(
        stack_name=STACK,
        work_dir=str(project),
        opts=automation.LocalWorkspaceOptions(pulumi_command=DeployPulumiCommand(interrupts)),
    )
    passed = {"web": released["web"]["imageDigest"]}  # api's soak did not pass
    with (
        interrupts.installed(),
        runtime_config(stack, [RuntimeKey(KEY, json.dumps(passed))], interrupts, out),
    ):
        stack.up(on_output=out.write)
    [up] = fake.ups()
    assert fake.unsupported() == [] and fake.usage_errors() == [], out.getvalue()
    assert json.loads(up.config[KEY]) == passed, "a JSON string, as the CLI hands it to the program"
    assert KEY not in read_config(project, STACK), "set for that one update only"
    after = _digests(project, up.config)
    assert after["web"]["soakedDigest"] == after["web"]["imageDigest"] == passed["web"]
    assert (
        after["api"]["soakedDigest"] == "" and after["api"]["imageDigest"] == released["api"]["imageDigest"]
    )
