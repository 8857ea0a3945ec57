"""A stack the CLI cannot read (no passphrase, a broken backend): `python -m deploy up` stops at once.

The deploy reads the stack's outputs and config first (the Automation API's `stack output --json
--show-secrets` and `config --show-secrets --json`); when the CLI refuses either, the deploy is a set-up
error (exit 2) with the CLI's reason, never a traceback, and nothing is deployed or recorded.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.fake_pulumi import GRPC_TRANSPORT, FakePulumi, read_config, run_deploy
from tests.support.fake_pulumi.fixtures import fake_fixture, project_fixture
from tests.support.fake_pulumi.project import CONFIG, OUTPUTS, STACK

pytestmark = pytest.mark.cli

fake = fake_fixture(GRPC_TRANSPORT)
project = project_fixture()

# The CLI's words when a passphrase-encrypted stack is read without the passphrase
# (pkg/secrets/passphrase/manager.go `readPassphraseImpl`, wrapped by the secrets-manager constructor).
NO_PASSPHRASE = (
    'error: constructing secrets manager of type "passphrase": passphrase must be set with '
    "PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE environment variables"
)
BACKEND_DOWN = 'error: failed to load checkpoint: blob (key ".pulumi/stacks/prod.json") (code=Unknown): EOF'


@pytest.mark.parametrize(
    ("command", "stderr", "hint"),
    [
        (["stack", "output"], NO_PASSPHRASE, "export PULUMI_CONFIG_PASSPHRASE"),
        (["config"], NO_PASSPHRASE, "export PULUMI_CONFIG_PASSPHRASE"),
        (["stack", "output"], BACKEND_DOWN, None),
    ],
    ids=["outputs-no-passphrase", "config-no-passphrase", "outputs-backend-down"],
)
def test_an_unreadable_stack_is_a_set_up_error_with_the_clis_reason(
    fake: FakePulumi, project: Path, tmp_path: Path, command: list[str], stderr: str, hint: str | None
) -> None:
    fake.play(
        {"fixture": "good_deploy.jsonl"}, outputs=OUTPUTS, failures=[{"command": command, "stderr": stderr}]
    )
    record = tmp_path / "record.json"

    proc = run_deploy(fake, project, "--stack", STACK, "--record", str(record))

    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert (
        f"deploy: error: could not read stack '{STACK}' (its outputs and config), so nothing was deployed"
        in (proc.stderr)
    )
    assert stderr in proc.stderr, "the CLI's own reason is shown"
    if hint is None:
        assert "PULUMI_CONFIG_PASSPHRASE" not in proc.stderr
    else:
        assert hint in proc.stderr
    assert fake.ups() == [], "nothing is deployed"
    assert fake.config_writes() == [], "no config is changed"
    assert read_config(project, STACK) == CONFIG
    assert not record.exists(), "a deploy that could not start writes no record"
    assert fake.unsupported() == []
