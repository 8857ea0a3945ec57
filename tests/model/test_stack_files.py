"""Stack files the offline check reads as the CLI does."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from model.names import HEALTH_CHECK_TYPE
from model.stack_files import (
    SECRET_PLACEHOLDER,
    SecretPlaceholder,
    StackFileError,
    read_stack_config,
    secret_keys,
)
from policy_check.check import main
from policy_check.simulate import simulate
from tests.support.project import BASE_STACK_YAML, check_stack, make_project, write_stack

CIPHERTEXT = "v1:Qm9ndXMtY2lwaGVydGV4dC1ub3QtYS1zZWNyZXQ="
"""What `pulumi config set --secret` writes; the offline tooling cannot (and must not) decrypt it."""

SECURE_TOP_KEYS = f"""\
  gitops-deploy:registryPassword:
    secure: {CIPHERTEXT}
  gitops-deploy:healthHeaders:
    web:
      Authorization:
        secure: {CIPHERTEXT}
"""
SECURE_APP_HEADERS = f"""\
        headers:
          X-Api-Key:
            secure: {CIPHERTEXT}
"""
SECURE_STACK = (
    "encryptionsalt: v1:c2FsdA==:v1:aXY=:Y2lwaGVy\n"
    + BASE_STACK_YAML.replace("  gitops-deploy:apps:\n", SECURE_TOP_KEYS + "  gitops-deploy:apps:\n", 1)
    + SECURE_APP_HEADERS
)
"""The base stack with secret values at the top level and under the app's health check."""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path)


def test_secure_values_read_as_secret_placeholders_everywhere(project: Path) -> None:
    write_stack(project, "sec", SECURE_STACK)
    values = read_stack_config("sec", project)
    headers = values["gitops-deploy:healthHeaders"]["web"]["Authorization"]
    plain = values["gitops-deploy:apps"][0]["health"]["headers"]["X-Api-Key"]
    assert headers == plain == values["gitops-deploy:registryPassword"] == SECRET_PLACEHOLDER
    assert isinstance(headers, SecretPlaceholder)
    assert secret_keys(values) == sorted(
        ["gitops-deploy:apps", "gitops-deploy:healthHeaders", "gitops-deploy:registryPassword"]
    )


@pytest.mark.grpc
def test_the_check_passes_a_stack_with_secret_health_headers(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_stack(project, "sec", SECURE_STACK)
    code = check_stack(project, "sec")
    out, err = capsys.readouterr()
    assert code == 0 and err == "", f"{out}{err}"
    assert CIPHERTEXT not in out


def test_secret_headers_reach_the_health_check_as_a_secret(project: Path) -> None:
    write_stack(project, "sec", SECURE_STACK)
    sim = simulate("sec", project_dir=project, password="pw-stack-files-1", preview=True)
    (check,) = sim.by_type(HEALTH_CHECK_TYPE)
    assert "headers" in check.secret_paths
    assert check.inputs["headers"] == {"X-Api-Key": SECRET_PLACEHOLDER, "Authorization": SECRET_PLACEHOLDER}
    assert all(CIPHERTEXT not in str(r.inputs) for r in sim.resources)


@pytest.mark.grpc
def test_a_missing_policy_config_is_an_error_with_the_fix(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = f"no-policy-{uuid.uuid4().hex[:8]}"  # a name no policies/config.<stack>.json can have
    write_stack(project, stack, SECURE_STACK)
    assert main(["--stack", stack, "--no-render", "--project-dir", str(project)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith(f"error: no policy config config.{stack}.json in "), err
    assert "cp policies/config." in err and f"policies/config.{stack}.json" in err
    assert "--policy-config" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_an_org_qualified_stack_reads_its_own_file(project: Path) -> None:
    """`org/project/dev` is the `dev` stack, as `python -m deploy` reads it."""
    write_stack(project, "qual", SECURE_STACK)
    assert read_stack_config("acme/gitops-deploy/qual", project) == read_stack_config("qual", project)


def test_a_stack_file_of_comments_only_is_an_empty_config(project: Path) -> None:
    write_stack(project, "blank", "# nothing yet\n")
    assert read_stack_config("blank", project) == {}


def test_a_file_that_is_not_utf8_is_one_error(project: Path) -> None:
    (project / "Pulumi.latin.yaml").write_bytes(b"config:\n  gitops-deploy:x: caf\xe9\n")
    with pytest.raises(StackFileError, match=r"^Pulumi\.latin\.yaml: cannot be read as UTF-8"):
        read_stack_config("latin", project)
