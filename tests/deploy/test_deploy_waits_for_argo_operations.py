"""`python -m deploy up` and Argo CD operations: the stand-in `pulumi` (tests/support/fake_pulumi) for the
updates, a stand-in API server on 127.0.0.1 (tests/support/kube_api.py) for the Applications, reached
through the stack's own `kubernetes:kubeconfig`."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.fake_pulumi import GRPC_TRANSPORT, FakePulumi, read_config, run_deploy
from tests.support.fake_pulumi.fixtures import fake_fixture, project_fixture
from tests.support.fake_pulumi.project import CONFIG, OLD, OUTPUTS, STACK, deploy_key, write_config
from tests.support.kube_api import Flow, StandInKubeAPI, kubeconfig, load_flow

pytestmark = pytest.mark.cli

FLOWS = Path(__file__).resolve().parents[1] / "fixtures" / "argocd" / "operations"
TOKEN = "stand-in-token-0c7e"

project = project_fixture()
fake = fake_fixture(GRPC_TRANSPORT)


@pytest.fixture
def api(fake: FakePulumi) -> Iterator[StandInKubeAPI]:
    # Each request is stamped with how many `up`s the stand-in CLI had started by then.
    server = StandInKubeAPI(mark=lambda: len(fake.ups()))
    yield server
    server.stop()


def _config(project: Path, api: StandInKubeAPI, tmp_path: Path, deploy: dict[str, Any]) -> dict[str, Any]:
    path = kubeconfig(tmp_path / "kubeconfig", api.url, token=TOKEN)
    config = {
        **copy.deepcopy(CONFIG),
        "kubernetes:kubeconfig": str(path),
        "gitops-deploy:deploy": deploy_key(**deploy),
    }
    write_config(project, config)
    return config


def test_the_failed_releases_running_operation_is_terminated_before_the_rollback(
    fake: FakePulumi, project: Path, api: StandInKubeAPI, tmp_path: Path
) -> None:
    config = _config(project, api, tmp_path, {"operationWaitSeconds": 5})
    _, done, _ = load_flow(FLOWS / "user-sync.yaml")
    _, running, terminated = load_flow(FLOWS / "hooks-running.yaml")
    # Before the deploy: the last operation has ended. Once the release is written: its sync runs hooks.
    api.play("argocd", "web", Flow([done[-1], *running], reads=1, terminated=terminated))
    fake.play(
        {"fixture": "health_failure_web.jsonl", "exit": 255},
        {"fixture": "rollback_ok.jsonl"},
        outputs=OUTPUTS,
    )
    proc = run_deploy(fake, project, "--stack", STACK)
    assert proc.returncode == 3, proc.stderr
    [patch] = api.patches()
    assert patch.mark == 1, "after the release's up, before the rollback's"
    assert patch.content_type == "application/merge-patch+json"
    assert patch.body["status"] == {"operationState": {"phase": "Terminating"}}
    assert (
        "deploy: terminated Argo CD's operation on web (phase Running, started 2025-06-02T10:00:08Z"
        in proc.stderr
    )
    assert fake.ups()[1].config["gitops-deploy:apps"][0]["image"]["pin"] == OLD["web"]
    assert read_config(project, STACK) == config
    assert TOKEN not in proc.stderr + proc.stdout


def test_a_foreign_operation_that_does_not_end_stops_the_deploy_with_nothing_changed(
    fake: FakePulumi, project: Path, api: StandInKubeAPI, tmp_path: Path
) -> None:
    config = _config(project, api, tmp_path, {"operationWaitSeconds": 1})
    _, objects, _ = load_flow(FLOWS / "user-sync.yaml")
    api.play("argocd", "web", Flow(objects, reads=10_000))
    fake.play({"fixture": "good_deploy.jsonl"}, outputs=OUTPUTS)
    proc = run_deploy(fake, project, "--stack", STACK)
    assert proc.returncode == 6, proc.stderr
    assert fake.ups() == [] and fake.config_writes() == [] and api.patches() == []
    for words in (
        "Argo CD's Application web has an operation in progress that this deploy did not start",
        "phase Running, started 2025-06-02T09:58:30Z by user alice",
        "gitops-deploy:deploy.operationWaitSeconds (1 s)",
    ):
        assert words in proc.stderr, proc.stderr
    assert read_config(project, STACK) == config


def test_a_foreign_operation_that_ends_in_time_lets_the_deploy_go_on(
    fake: FakePulumi, project: Path, api: StandInKubeAPI, tmp_path: Path
) -> None:
    _config(project, api, tmp_path, {"operationWaitSeconds": 30})
    _, objects, _ = load_flow(FLOWS / "user-sync.yaml")
    api.play("argocd", "web", Flow(objects, reads=2))
    fake.play({"fixture": "good_deploy.jsonl"}, outputs=OUTPUTS)
    proc = run_deploy(fake, project, "--stack", STACK)
    assert proc.returncode == 0, proc.stderr
    assert "waiting for it to end, at most 30 s" in proc.stderr
    assert [r.mark for r in api.log] and all(r.mark == 0 for r in api.log), "all before the update"


def test_without_cluster_access_the_deploy_says_so_and_goes_on(fake: FakePulumi, project: Path) -> None:
    fake.play({"fixture": "good_deploy.jsonl"}, outputs=OUTPUTS)
    proc = run_deploy(fake, project, "--stack", STACK)
    assert proc.returncode == 0, proc.stderr
    assert "deploy: warning: cannot reach Argo CD's Applications" in proc.stderr
