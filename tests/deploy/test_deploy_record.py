"""The deploy record: built from recorded `up`s, written and read back, validated on read (a reason,
never a traceback), and rendered as the end-of-deploy table in text and Markdown."""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from deploy.outcome import build_record, commit_time
from model.config import DEFAULT_BUDGET_SECONDS
from model.record import (
    KIND,
    MAX_RECORD_BYTES,
    SCHEMA,
    VERSION,
    AppRecord,
    DeployRecord,
    FailureRecord,
    PhaseTiming,
    RecordError,
    from_json,
    read_record,
    to_json,
    write_record,
)
from model.record_table import TABLE_WIDTH, format_duration, render_markdown, render_text
from tests.support.engine_events import T0, load_case

WEB_OLD = "registry.example.com/platform/web@sha256:" + "1" * 64
WEB_NEW = "registry.example.com/platform/web@sha256:" + "a" * 64
API_OLD = "registry.example.com/platform/api@sha256:" + "2" * 64
API_NEW = "registry.example.com/platform/api@sha256:" + "b" * 64
START = datetime.fromtimestamp(T0, UTC)


def _record(case: str, outcome: Any, **kwargs: Any) -> DeployRecord:
    return build_record("prod", load_case(case), outcome, **kwargs)


@pytest.fixture
def rolled_back() -> DeployRecord:
    return _record(
        "health_rollback",
        "rolled-back",
        digests_before={"web": WEB_OLD, "api": API_OLD},
        digests_after={"web": WEB_OLD, "api": API_NEW},
    )


def test_a_rolled_back_deploy_as_json(rolled_back: DeployRecord) -> None:
    doc = to_json(rolled_back)
    assert (doc["kind"], doc["version"], doc["stack"]) == (KIND, VERSION, "prod")
    assert doc["startedAt"] == "2026-01-01T10:00:00Z" and doc["endedAt"] == "2026-01-01T10:04:41Z"
    assert (doc["durationSeconds"], doc["budgetSeconds"]) == (281, DEFAULT_BUDGET_SECONDS)
    assert (doc["outcome"], doc["cause"]) == ("rolled-back", "health")
    (failure,) = doc["failures"]
    assert failure["cause"] == "health" and failure["during"] == "release" and failure["app"] == "web"
    assert failure["resource"].endswith("::web-health")
    assert failure["message"].startswith("health check GET https://web.example.com/healthz FAILED")
    web, api = doc["apps"]
    assert (web["name"], web["digestBefore"], web["digestAfter"]) == ("web", WEB_OLD, WEB_OLD)
    assert (api["name"], api["digestBefore"], api["digestAfter"]) == ("api", API_OLD, API_NEW)
    assert {k: v["seconds"] for k, v in web["phases"].items()} == {
        "preflight": 3,
        "build": 42,
        "image-size": 1,
        "sync": 72,
        "health": 100,
        "rollback": 58,
    }
    assert web["phases"]["health"] == {"seconds": 100, "outcome": "failed", "op": "update"}
    assert web["phases"]["rollback"] == {"seconds": 58, "outcome": "succeeded", "op": "rollback"}
    assert web["totalSeconds"] == 3 + 42 + 1 + 72 + 100 + 58
    assert "rollback" not in api["phases"] and api["totalSeconds"] == 3 + 30 + 2 + 40 + 12
    text = json.dumps(doc)
    assert "[secret]" not in text and "password" not in text


@pytest.mark.parametrize(
    ("case", "outcome", "cause", "failures"),
    [
        ("good", "succeeded", None, []),
        ("registry_401", "failed", "registry-auth", [("registry-auth", "release", None)]),
        ("lint", "failed", "lint", [("lint", "release", None)]),
        ("build_failure", "failed", "build", [("build", "release", "web")]),
        ("policy_violation", "failed", "policy", [("policy", "release", "web")]),
        (
            "rollback_fails",
            "rollback-failed",
            "health",
            [("health", "release", "web"), ("health", "rollback", "web")],
        ),
        ("degraded_rollback", "rolled-back", "health", [("health", "release", "web")]),
    ],
)
def test_cause_and_failures_of_each_recorded_deploy(
    case: str, outcome: Any, cause: str | None, failures: list[tuple[str, str, str | None]]
) -> None:
    record = _record(case, outcome)
    assert record.cause == cause
    assert [(f.cause, f.during, f.app) for f in record.failures] == failures


def test_a_deploy_that_failed_before_any_event_keeps_the_clis_error() -> None:
    moment = datetime(2026, 1, 2, 8, 0, tzinfo=UTC)
    record = build_record(
        "prod",
        [],
        "failed",
        digests_before={"web": WEB_OLD},
        started_at=moment,
        ended_at=moment + timedelta(seconds=4),
        error="error: [409] Conflict: Another update is currently in progress.\nmore text",
    )
    assert record.cause == "other" and record.duration_seconds == 4
    (failure,) = record.failures
    assert failure.message == "error: [409] Conflict: Another update is currently in progress."
    assert [(a.name, a.digest_before, dict(a.phases)) for a in record.apps] == [("web", WEB_OLD, {})]
    bare = build_record("prod", [], "failed", started_at=moment)
    assert bare.failures[0].message == "the update failed before any engine event"
    assert bare.ended_at == bare.started_at


def test_bad_arguments_to_build_record_are_refused() -> None:
    with pytest.raises(ValueError, match="outcome 'broken'"):
        build_record("prod", [], "broken")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="budget_seconds"):
        build_record("prod", [], "succeeded", budget_seconds=0)


def test_write_then_read_gives_the_same_record(tmp_path: Path, rolled_back: DeployRecord) -> None:
    path = tmp_path / "out" / "deploy-record.json"
    write_record(rolled_back, path)
    assert read_record(path) == rolled_back
    assert json.loads(path.read_text(encoding="utf-8")) == to_json(rolled_back)
    assert [p.name for p in path.parent.iterdir()] == ["deploy-record.json"], "no temporary file left behind"


def test_fields_a_newer_tool_adds_are_ignored(rolled_back: DeployRecord) -> None:
    doc = {**to_json(rolled_back), "runUrl": "https://github.com/o/r/actions/runs/1"}
    doc["apps"][0]["extra"] = True
    assert from_json(doc) == rolled_back


def _set(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    *parents, last = path.split(".")
    target: Any = doc
    for key in parents:
        target = target[int(key)] if key.isdigit() else target[key]
    if value is _DELETE:
        del target[int(last) if last.isdigit() else last]
    else:
        target[int(last) if last.isdigit() else last] = value
    return doc


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "reason"),
    [
        ("kind", _DELETE, "not a deploy record: it has no kind"),
        (
            "kind",
            "gitops-deploy/deploy-report",
            "not a deploy record: it has kind 'gitops-deploy/deploy-report'",
        ),
        ("version", _DELETE, "broken deploy record: version is None, not a whole number"),
        ("version", "1", "broken deploy record: version is '1', not a whole number"),
        (
            "version",
            VERSION + 1,
            f"deploy record version {VERSION + 1} is newer than this tool reads (up to {VERSION})",
        ),
        ("version", 0, f"broken deploy record: version: 0 is not one of {list(range(1, VERSION + 1))}"),
        ("warnings", [""], "broken deploy record: warnings[0]: '' should be non-empty"),
        ("soakSeconds", 282, "broken deploy record: soakSeconds 282 is longer than the deploy (281 s)"),
        ("apps.0.soak", [{"verdict": "passed"}], "broken deploy record: apps[0].soak[0]"),
        ("stack", "", "broken deploy record: stack: '' should be non-empty"),
        ("outcome", "exploded", "broken deploy record: outcome: 'exploded' is not one of"),
        ("cause", None, "broken deploy record: cause: None is not one of"),
        ("cause", "gremlins", "broken deploy record: cause: 'gremlins' is not one of"),
        ("durationSeconds", -5, "broken deploy record: durationSeconds: -5 is less than the minimum of 0"),
        ("durationSeconds", 100, "durationSeconds 100 does not match startedAt to endedAt (281 s)"),
        ("budgetSeconds", 0, "broken deploy record: budgetSeconds: 0 is less than the minimum of 1"),
        ("startedAt", "yesterday", "startedAt 'yesterday' is not an ISO 8601 time"),
        ("startedAt", "2026-01-01T10:00:00", "startedAt '2026-01-01T10:00:00' has no time zone"),
        ("endedAt", "2026-01-01T09:00:00Z", "endedAt 2026-01-01T09:00:00Z is before startedAt"),
        ("apps", {}, "broken deploy record: apps: {} is not of type 'array'"),
        ("apps.0.phases.compile", {"seconds": 1, "outcome": "succeeded", "op": "x"}, "apps[0].phases"),
        ("apps.0.phases.build.seconds", 4.5, "apps[0].phases.build.seconds: 4.5 is not of type 'integer'"),
        ("apps.0.phases.build.seconds", True, "apps[0].phases.build.seconds: True is not of type 'integer'"),
        ("apps.0.totalSeconds", 1, "apps[0].totalSeconds is 1, but its phases add up to 276"),
        ("apps.1.name", "web", "apps lists web more than once"),
        ("failures.0.during", "later", "failures[0].during: 'later' is not one of"),
        ("failures.0", _DELETE, None),  # fewer failures is still a record
    ],
)
def test_broken_records_give_a_reason(
    rolled_back: DeployRecord, path: str, value: Any, reason: str | None
) -> None:
    doc = _set(to_json(rolled_back), path, value)
    if reason is None:
        assert from_json(doc).failures == ()
        return
    with pytest.raises(RecordError) as info:
        from_json(doc)
    assert reason in str(info.value)


def test_a_succeeded_record_names_no_cause(rolled_back: DeployRecord) -> None:
    doc = _set(to_json(rolled_back), "outcome", "succeeded")
    with pytest.raises(
        RecordError, match=r"cause: 'health' was expected to be None|cause: None was expected"
    ):
        from_json(doc)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "not valid JSON: Expecting value at line 1 column 1"),
        (b'{"kind": "gitops-deploy/deploy-record",', "not valid JSON: Expecting property name"),
        (b"\xff\xfe\x00{", "not a deploy record: not UTF-8 text"),
        (b"[1, 2]", "not a deploy record: the JSON is a list, not an object"),
        (b'"text"', "not a deploy record: the JSON is a string, not an object"),
        (b"null", "not a deploy record: the JSON is null, not an object"),
        (b"12", "not a deploy record: the JSON is a number, not an object"),
        (b'{"name": "my-package", "version": "1.0.0"}', "not a deploy record: it has no kind"),
        (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
        (b"1" * 5000, "not valid JSON"),
        (b" " * (MAX_RECORD_BYTES + 1), "not a deploy record: larger than 1024 KiB"),
    ],
)
def test_files_that_are_not_records_give_a_reason(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "x.json"
    path.write_bytes(content)
    with pytest.raises(RecordError) as info:
        read_record(path)
    assert str(info.value).startswith(reason), str(info.value)


def test_an_unreadable_path_gives_a_reason(tmp_path: Path) -> None:
    with pytest.raises(RecordError, match="cannot be read"):
        read_record(tmp_path / "missing.json")
    with pytest.raises(RecordError, match="cannot be read"):
        read_record(tmp_path)


def _leaves(doc: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    if isinstance(doc, dict):
        return [path] + [p for k, v in doc.items() for p in _leaves(v, (*path, k))]
    if isinstance(doc, list):
        return [path] + [p for i, v in enumerate(doc) for p in _leaves(v, (*path, str(i)))]
    return [path]


def test_any_field_replaced_by_any_wrong_value_is_a_reason_never_a_traceback(
    rolled_back: DeployRecord,
) -> None:
    doc = to_json(rolled_back)
    wrong: list[Any] = [None, "", "x" * 300, -1, 10**30, 1.5, True, [], {}, [None], {"": None}, _DELETE]
    tried = 0
    for path in _leaves(doc):
        if not path:
            continue
        for value in wrong:
            mutated = _set(doc, ".".join(path), value)
            tried += 1
            try:
                from_json(mutated)
            except RecordError as err:
                assert str(err) and len(str(err)) < 400, str(err)
    assert tried > 500


def test_the_schema_is_the_documented_one() -> None:
    documented = (Path(__file__).resolve().parents[2] / "docs" / "release.md").read_text(encoding="utf-8")
    for key in SCHEMA["required"]:
        assert f"`{key}`" in documented, key
    for key in SCHEMA["properties"]["apps"]["items"]["required"]:
        assert f"`{key}`" in documented, key
    for key in SCHEMA["properties"]["failures"]["items"]["required"]:
        assert f"`{key}`" in documented, key


# --- the end-of-deploy table -----------------------------------------------------------------------------


def test_the_text_table(rolled_back: DeployRecord) -> None:
    lines = render_text(rolled_back).splitlines()
    assert lines[0] == "gitops-deploy prod: rolled-back in 4m41s, budget 5m00s: within budget"
    assert lines[1].split() == [
        "app",
        "preflight",
        "build",
        "size",
        "sync",
        "health",
        "rollback",
        "total",
        "verdict",
    ]
    assert lines[2].split() == [
        "web",
        "3s",
        "42s",
        "1s",
        "1m12s",
        "1m40s!",
        "58s",
        "4m36s",
        "within",
        "budget",
    ]
    assert lines[3].split() == ["api", "3s", "30s", "2s", "40s", "12s", "-", "1m27s", "within", "budget"]
    assert lines[4].split() == ["deploy", "4m41s", "within", "budget"]
    assert lines[5] == "(! failed)"
    assert lines[6].startswith("cause: health (web): health check GET https://web.example.com/healthz FAILED")
    assert all(len(line) <= TABLE_WIDTH for line in lines)


def test_an_over_budget_deploy_says_so() -> None:
    record = _record("rollback_fails", "rollback-failed", budget_seconds=300)
    lines = render_text(record).splitlines()
    assert lines[0] == "gitops-deploy prod: rollback-failed in 5m56s, budget 5m00s: over budget"
    web = lines[2].split()
    assert web[6:] == ["2m13s!", "5m51s", "over", "budget"]
    assert lines[4].split() == ["deploy", "5m56s", "over", "budget"]


def test_the_table_fits_100_columns_whatever_the_names() -> None:
    long_app = "a-very-long-application-name-that-nobody-should-use-" * 2
    record = _record(
        "rollback_fails",
        "rollback-failed",
        digests_before={long_app: WEB_OLD},
    )
    record = DeployRecord(
        "organization-with-a-long-name/gitops-deploy/production-europe-west-1-blue",
        record.started_at,
        record.ended_at + timedelta(hours=30),
        record.budget_seconds,
        record.outcome,
        record.cause,
        record.failures,
        record.apps,
    )
    text = render_text(record)
    assert all(len(line) <= TABLE_WIDTH for line in text.splitlines()), text
    assert "a-very-long-application" in text and "…" in text
    assert "30h05m" in text


def test_the_markdown_table(rolled_back: DeployRecord) -> None:
    lines = render_markdown(rolled_back).splitlines()
    assert lines[0] == "### gitops-deploy `prod`: rolled-back in 4m41s, budget 5m00s: within budget"
    assert lines[2] == "| app | preflight | build | size | sync | health | rollback | total | verdict |"
    assert lines[3] == "|:--|--:|--:|--:|--:|--:|--:|--:|:--|"
    assert lines[4] == "| web | 3s | 42s | 1s | 1m12s | 1m40s ✗ | 58s | 4m36s | within budget |"
    assert lines[5] == "| api | 3s | 30s | 2s | 40s | 12s | - | 1m27s | within budget |"
    assert lines[6] == "| **deploy** |  |  |  |  |  |  | **4m41s** | **within budget** |"
    assert "✗ failed" in lines
    assert lines[-1].startswith("**cause: health \\(web\\): health check GET")


def test_markdown_escapes_what_it_shows() -> None:
    record = DeployRecord(
        "prod",
        START,
        START + timedelta(seconds=10),
        300,
        "failed",
        "other",
        (FailureRecord("other", "release", "a|b", None, "boom | *bold* <b>`x`</b>"),),
        (AppRecord("a|b", None, None, {"build": PhaseTiming(10, "unfinished", "create")}),),
    )
    text = render_markdown(record)
    assert "| a\\|b | - | 10s … |" in text
    assert "boom \\| \\*bold\\* \\<b\\>\\`x\\`\\</b\\>" in text
    assert "… unfinished" in text


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0, "0s"),
        (59, "59s"),
        (60, "1m00s"),
        (245, "4m05s"),
        (3599, "59m59s"),
        (3600, "1h00m"),
        (7322, "2h02m"),
    ],
)
def test_durations_are_short_and_unambiguous(seconds: int, shown: str) -> None:
    assert format_duration(seconds) == shown


def test_a_version_1_record_stays_readable_without_its_commit_time(rolled_back: DeployRecord) -> None:
    doc = {**to_json(rolled_back), "version": 1}
    del doc["commitAt"], doc["warnings"]
    assert from_json(doc) == rolled_back and from_json(doc).commit_at is None


def test_a_version_2_record_has_no_warnings_and_a_version_3_one_keeps_them(rolled_back: DeployRecord) -> None:
    doc = {**to_json(rolled_back), "version": 2}
    del doc["warnings"]
    assert from_json(doc).warnings == ()
    noted = dataclasses.replace(rolled_back, warnings=("GitHub deployment statuses not reported: x",))
    assert to_json(noted)["warnings"] == list(noted.warnings) and from_json(to_json(noted)) == noted


def test_the_commit_time_is_written_and_read_back(rolled_back: DeployRecord) -> None:
    commit = dataclasses.replace(rolled_back, commit_at=datetime(2026, 1, 1, 9, tzinfo=UTC))
    assert to_json(commit)["commitAt"] == "2026-01-01T09:00:00Z"
    assert from_json(to_json(commit)) == commit
    with pytest.raises(RecordError, match="commitAt 'noon' is not an ISO 8601 time"):
        from_json({**to_json(commit), "commitAt": "noon"})


def test_the_deploy_reads_its_commits_time_from_git_and_never_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {**os.environ, "GIT_COMMITTER_DATE": "2026-01-05T10:00:00+02:00"}
    git = [
        "git",
        "-C",
        str(tmp_path),
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@example.com",
        "-c",
        "commit.gpgsign=false",
    ]
    subprocess.run([*git, "init", "-q"], check=True, env=env)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "x"], check=True, env=env)
    monkeypatch.delenv("GITHUB_SHA", raising=False)
    assert commit_time(tmp_path) == datetime(2026, 1, 5, 8, tzinfo=UTC)
    monkeypatch.setenv("GITHUB_SHA", "0" * 40)  # not in this clone
    assert commit_time(tmp_path) is None
    assert commit_time(tmp_path / "not-a-repo") is None
    monkeypatch.setenv("PATH", str(tmp_path))  # no git at all
    assert commit_time(tmp_path) is None
