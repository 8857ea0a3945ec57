"""The project's own stack files are the user's: whatever stacks they hold, and whatever `make up` wrote
into them, the checks that read them hold, and `make test` stays green.

Only two kinds of check read them: that no secret sits in one in plaintext (below), and that the
workflows cover them (test_workflows.py, test_promote.py). Every other test uses the
example stacks of tests/fixtures/stacks.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from model.stack_files import PROJECT_DIR, load_yaml, stack_file, stack_names
from tests.support.example_project import copy_project

PASSWORD_KEY = "gitops-deploy:registryPassword"
SECRET_KEYS = (PASSWORD_KEY, "gitops-deploy:healthHeaders", "gitops-deploy:notify.url")
"""Config values that must be `secure:` envelopes (`pulumi config set --secret`), every leaf under them;
a dotted name is one value inside a key (`pulumi config set --secret --path`)."""
SALT = "encryptionsalt: v1:c2FsdA==:v1:aXY=:Y2lwaGVy\n"
CIPHERTEXT = "v1:Qm9ndXMtY2lwaGVydGV4dC1ub3QtYS1zZWNyZXQ="
"""What `pulumi config set --secret` writes with the passphrase provider; nothing can decrypt this one."""
USER_SALT = "v1:dXNlcnNhbHQ=:v1:dXNlcml2:dXNlcmNpcGhlcg=="
USER_CIPHERTEXT = "v1:VXNlcnMtb3duLWNpcGhlcnRleHQtbm90LWEtc2VjcmV0"
"""The salt and a ciphertext of a user's own `make up`: different from the test's, so the test sees which
one the file keeps."""


def _leaves(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    """(path, value) of every value under `path`, a `secure:` envelope counting as one value."""
    if isinstance(value, dict) and set(value) != {"secure"}:
        for key, child in value.items():
            yield from _leaves(child, f"{path}.{key}")
    else:
        yield path, value


def plaintext_secrets(text: str) -> list[str]:
    """Keys of a stack file that hold a secret in plaintext instead of a `secure:` envelope."""
    config = (yaml.safe_load(text) or {}).get("config") or {}
    found = []
    for key in SECRET_KEYS:
        top, _, inner = key.partition(".")
        value = config.get(top)
        if inner and isinstance(value, dict) and set(value) != {"secure"}:
            value = value.get(inner)
        if value is not None:
            found += [
                path
                for path, leaf in _leaves(value, key)
                if not (isinstance(leaf, dict) and isinstance(leaf.get("secure"), str))
            ]
    return found


def test_no_stack_file_of_the_project_holds_a_secret_in_plaintext() -> None:
    """For every stack file there is, shipped or added: encrypted values (`make up` writes one) pass."""
    for stack in stack_names(PROJECT_DIR):
        path = stack_file(stack, PROJECT_DIR)
        assert plaintext_secrets(path.read_text(encoding="utf-8")) == [], f"{path.name}: plaintext secret"


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("config:\n  gitops-deploy:registryPassword: hunter2-plain\n", ["gitops-deploy:registryPassword"]),
        (
            "config:\n  gitops-deploy:healthHeaders:\n    web:\n      Authorization: Bearer plain\n",
            ["gitops-deploy:healthHeaders.web.Authorization"],
        ),
        (f"{SALT}config:\n  gitops-deploy:registryPassword:\n    secure: {CIPHERTEXT}\n", []),
        (
            f"{SALT}config:\n  gitops-deploy:healthHeaders:\n    web:\n"
            f"      X-Key:\n        secure: {CIPHERTEXT}\n",
            [],
        ),
        ("config:\n  gitops-deploy:registry: {server: r.example.com, username: ci}\n", []),
        (
            "config:\n  gitops-deploy:notify:\n    url: https://hooks.example.com/T0/x\n    format: slack\n",
            ["gitops-deploy:notify.url"],
        ),
        (
            f"{SALT}config:\n  gitops-deploy:notify:\n    url:\n      secure: {CIPHERTEXT}\n    format: x\n",
            [],
        ),
        (f"{SALT}config:\n  gitops-deploy:notify:\n    secure: {CIPHERTEXT}\n", []),
    ],
    ids=[
        "password",
        "header",
        "encrypted-password",
        "encrypted-header",
        "no-secret",
        "webhook",
        "encrypted-webhook",
        "encrypted-notify",
    ],
)
def test_the_plaintext_check_accepts_only_secure_values(text: str, found: list[str]) -> None:
    assert plaintext_secrets(text) == found


# --- a user's checkout: a stack added, and the password `make up` stored -----------------------------

AFFECTED = [
    "tests/model/test_config_errors.py",
    "tests/project/test_makefile.py",
    "tests/components/test_program.py",
    "tests/components/test_promote.py",
    "tests/project/test_workflows.py",
    "tests/policy_check/test_check_cli.py",
    "tests/components/test_user_stacks.py",
]
"""The checks that read stack files, or once did (the ones the issue saw fail)."""


def _encrypt_password(path: Path) -> None:
    """What the first `make up` leaves in a stack file: a salt, and the password as a `secure:` value.

    A stack file `make up` already wrote keeps its own salt and password: a second `encryptionsalt:` or
    `gitops-deploy:registryPassword:` would be a duplicate key, which every reader of the file refuses.
    """
    text = path.read_text(encoding="utf-8")
    data = yaml.safe_load(text) or {}
    if PASSWORD_KEY not in (data.get("config") or {}):
        entry = f"config:\n  {PASSWORD_KEY}:\n    secure: {CIPHERTEXT}\n"
        text, found = re.subn(r"^config:[ \t]*\n", entry, text, count=1, flags=re.MULTILINE)
        assert found, f"{path.name}: no block `config:` to add the password to"
    if "encryptionsalt" not in data:
        text = SALT + text
    path.write_text(text, encoding="utf-8")


def _as_make_up_wrote_it(path: Path) -> None:
    """A stack file after a real `make up`: the CLI rewrote it (pulumi/pulumi sdk/go/common/workspace/
    project.go, `ProjectStack.Save`: `encryptionsalt` before `config`, config keys sorted), with the
    salt `pulumi stack init` made and the `secure:` values `pulumi config set --secret` wrote."""
    config = dict((yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("config") or {})
    config[PASSWORD_KEY] = {"secure": USER_CIPHERTEXT}
    config["gitops-deploy:healthHeaders"] = {"web": {"Authorization": {"secure": USER_CIPHERTEXT}}}
    text = f"encryptionsalt: {USER_SALT}\n" + yaml.safe_dump({"config": config}, sort_keys=True)
    path.write_text(text, encoding="utf-8")


@pytest.mark.parametrize("made_up", [False, True], ids=["as-shipped", "after-make-up"])
def test_the_stand_in_for_make_up_works_on_a_stack_make_up_already_wrote(
    tmp_path: Path, made_up: bool
) -> None:
    path = tmp_path / "Pulumi.dev.yaml"
    shutil.copy(PROJECT_DIR / "tests/fixtures/stacks/Pulumi.dev.yaml", path)
    if made_up:
        _as_make_up_wrote_it(path)
    before = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("config") or {}
    _encrypt_password(path)
    text = path.read_text(encoding="utf-8")
    data = load_yaml(text, path.name)  # refuses a duplicate key, as the CLI-free check does
    assert sum(line.startswith("encryptionsalt:") for line in text.splitlines()) == 1, text
    salt, ciphertext = (
        (USER_SALT, USER_CIPHERTEXT) if made_up else (SALT.split(": ", 1)[1].strip(), CIPHERTEXT)
    )
    assert data["encryptionsalt"] == salt, "a salt `make up` made is kept: it decrypts the stack's secrets"
    assert data["config"][PASSWORD_KEY] == {"secure": ciphertext}
    assert {k: v for k, v in data["config"].items() if k != PASSWORD_KEY} == {
        k: v for k, v in before.items() if k != PASSWORD_KEY
    }
    assert plaintext_secrets(text) == []


@pytest.mark.grpc
@pytest.mark.render
def test_a_users_added_stack_and_encrypted_password_keep_the_suite_green(tmp_path: Path) -> None:
    project = copy_project(tmp_path / "checkout")
    staging = (project / "Pulumi.staging.yaml").read_text(encoding="utf-8")
    (project / "Pulumi.qa.yaml").write_text(staging.replace("staging", "qa"), encoding="utf-8")
    policies = project / "policies"
    (policies / "config.qa.json").write_text((policies / "config.staging.json").read_text())
    # dev as a real `make up` left it (salt and secure values already there), qa as a user just added it.
    _as_make_up_wrote_it(project / "Pulumi.dev.yaml")
    for stack in ("dev", "qa"):
        _encrypt_password(project / f"Pulumi.{stack}.yaml")
    assert sorted(stack_names(project)) == sorted({*stack_names(PROJECT_DIR), "qa"})

    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "PULUMI_"))}
    tests = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            *AFFECTED,
            "-k",
            "not keep_the_suite",
        ],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert tests.returncode == 0, tests.stdout[-4000:] + tests.stderr[-2000:]
    assert " passed" in tests.stdout and "failed" not in tests.stdout

    # The new stack is judged like any other, its encrypted password read as a secret placeholder.
    check = subprocess.run(
        [sys.executable, "-m", "policy_check", "--stack", "qa", "--no-render"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert CIPHERTEXT not in check.stdout
    assert "stack file Pulumi.qa.yaml, policy config policies/config.qa.json" in check.stdout
