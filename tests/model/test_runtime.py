"""The runtime an app declares against its base images' tags, on fixture apps of each declaration style."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from model.runtime import CONTRADICTS, MALFORMED, NOT_CHECKABLE, check_dockerfile, declarations

FIXTURES = Path(__file__).parents[1] / "fixtures" / "runtime"


def _check(name: str) -> list[tuple[int, str, str]]:
    app = FIXTURES / name
    text = (app / "Dockerfile").read_text(encoding="utf-8")
    return [(f.line, f.code, f.message) for f in check_dockerfile(text, "Dockerfile", app, FIXTURES)]


@pytest.mark.parametrize(
    ("app", "message"),
    [
        (
            "engines-contradicts",
            "base image node:18-alpine (Dockerfile line 1) runs node 18, "
            "but engines-contradicts/package.json line 4 declares node '>=20'",
        ),
        (
            "nvmrc-contradicts",
            "base image node:22-slim (Dockerfile line 1) runs node 22, "
            "but nvmrc-contradicts/.nvmrc line 1 declares node '20'",
        ),
        (
            "requires-python-contradicts",
            "base image python:3.11-slim (Dockerfile line 1) runs python 3.11, "
            "but requires-python-contradicts/pyproject.toml line 4 declares python '>=3.12'",
        ),
    ],
)
def test_a_contradicting_base_image_names_both_files_lines_range_and_version(app: str, message: str) -> None:
    assert _check(app) == [(1, CONTRADICTS, message)]


@pytest.mark.parametrize("app", ["engines-agrees", "node-version-agrees", "python-version-agrees"])
def test_an_agreeing_base_image_has_no_finding(app: str) -> None:
    assert _check(app) == []


def test_a_tag_without_a_version_is_not_checkable_never_a_pass() -> None:
    assert _check("not-checkable") == [
        (
            1,
            NOT_CHECKABLE,
            "runtime not checkable: base image node:lts-alpine names no version; "
            "not-checkable/package.json line 1 declares node '>=20'",
        )
    ]


def test_a_malformed_declaration_is_one_line_naming_the_file() -> None:
    [(line, code, message)] = _check("malformed")
    assert (line, code) == (1, MALFORMED)
    assert message.startswith("runtime declaration malformed/package.json cannot be read: "), message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("declared", "image", "agrees"),
    [
        (">=20", "node:20-alpine", True),
        (">= 20", "node:18", False),
        ("^18.17", "node:18", True),
        ("^18.17", "node:18.16.0-slim", False),
        ("20.x", "node:20.11.1", True),
        ("20.x", "node:22", False),
        (">=18 <21", "node:21-bookworm", False),
        ("v20.11.0", "node:20", True),
        ("~20.1", "node:20.2.0", False),
    ],
)
def test_node_ranges(tmp_path: Path, declared: str, image: str, agrees: bool) -> None:
    (tmp_path / ".nvmrc").write_text(declared + "\n")
    found = check_dockerfile(f"FROM {image}\n", "Dockerfile", tmp_path, tmp_path)
    assert [f.code for f in found] == ([] if agrees else [CONTRADICTS]), found


@pytest.mark.parametrize(
    ("declared", "image", "agrees"),
    [
        (">=3.11", "python:3.12.8-slim", True),
        (">=3.11,<3.12", "python:3.12", False),
        ("~=3.10", "python:3", True),
        ("==3.11.*", "registry.example.com/base/python:3.11-alpine3.20", True),
        (">=3.12", "python:3.11@sha256:" + "0" * 64, False),
    ],
)
def test_python_specifiers(tmp_path: Path, declared: str, image: str, agrees: bool) -> None:
    (tmp_path / "pyproject.toml").write_text(f'[project]\nrequires-python = "{declared}"\n')
    found = check_dockerfile(f"FROM {image}\n", "Dockerfile", tmp_path, tmp_path)
    assert [f.code for f in found] == ([] if agrees else [CONTRADICTS]), found


@pytest.mark.parametrize(
    ("files", "dockerfile"),
    [
        ({".nvmrc": "lts/*\n"}, "FROM node:20\n"),
        ({".python-version": "system\n"}, "FROM python:3.12\n"),
        ({".node-version": "20\n"}, "FROM node@sha256:" + "0" * 64 + "\n"),
        ({".python-version": "3.12\n"}, "FROM python:latest\n"),
        ({".python-version": "3.12\n"}, "ARG V=3.12\nFROM python:${V}\n"),
    ],
)
def test_what_names_no_version_is_not_checkable(
    tmp_path: Path, files: dict[str, str], dockerfile: str
) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    found = check_dockerfile(dockerfile, "Dockerfile", tmp_path, tmp_path)
    assert [f.code for f in found] == [NOT_CHECKABLE], found


def test_every_stage_of_a_runtime_image_is_checked_and_other_images_and_stages_are_not(
    tmp_path: Path,
) -> None:
    (tmp_path / ".nvmrc").write_text("20\n")
    text = "FROM --platform=$BUILDPLATFORM node:18 AS build\nFROM nginx:1.27\nFROM build\nFROM node:20-slim\n"
    assert [(f.line, f.code) for f in check_dockerfile(text, "Dockerfile", tmp_path, tmp_path)] == [
        (1, CONTRADICTS)
    ]


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("package.json", '{"engines": {"node": 20}}'),
        ("pyproject.toml", "[project\n"),
        ("pyproject.toml", '[project]\nrequires-python = "banana"\n'),
        (".nvmrc", ">=>=\n"),
        (".python-version", "\n\n"),
    ],
)
def test_malformed_declarations(tmp_path: Path, name: str, text: str) -> None:
    (tmp_path / name).write_text(text)
    found, problems = declarations(tmp_path)
    assert found == [] and [p for p, _ in problems] == [name], problems


def test_a_fifo_is_refused_not_read(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / ".nvmrc")
    assert declarations(tmp_path)[1] == [(".nvmrc", "cannot be read (not a regular file)")]


def test_a_symlinked_declaration_is_not_followed(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("token-123\n")
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / ".nvmrc").symlink_to(secret)
    found, [(name, why)] = declarations(tmp_path / "app")
    assert found == [] and name == ".nvmrc" and "token" not in why, why
