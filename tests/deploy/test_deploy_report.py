"""The report over a folder of records with known answers, worked out by hand below from the records'
own numbers; plus a malformed record, a foreign JSON file, a duplicate, and the command line."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deploy.figures import Loaded, build_report, load, p95
from deploy.report import (
    EXIT_NO_RECORDS,
    EXIT_OK,
    EXIT_USAGE,
    RENDERERS,
    TABLE_WIDTH,
    main,
)
from model.record import (
    AppRecord,
    DeployRecord,
    FailureRecord,
    PhaseTiming,
    RecordError,
    from_json,
    to_json,
    write_record,
)

PROJECT_DIR = Path(__file__).resolve().parents[2]
DAY = datetime(2026, 1, 5, tzinfo=UTC)

# (stack, start in minutes after DAY, duration in seconds, outcome, cause, budget seconds)
RECORDS: list[tuple[str, int, int, Any, Any, int]] = [
    ("prod", 0, 150, "succeeded", None, 300),
    ("prod", 60, 200, "failed", "registry-auth", 300),  # opens an incident at 01:03:20
    ("prod", 90, 320, "rolled-back", "health", 300),  # still failing; over budget
    ("prod", 120, 180, "succeeded", None, 300),  # closes it at 02:03:00: 3580 s after it opened
    ("prod", 180, 100, "succeeded", None, 300),
    ("prod", 240, 400, "rollback-failed", "health", 300),  # opens at 04:06:40, never closed; over budget
    ("staging", 10, 90, "succeeded", None, 300),
    ("staging", 20, 250, "failed", "build", 300),  # opens at 00:24:10
    ("staging", 40, 120, "succeeded", None, 300),  # closes at 00:42:00: 1070 s
    ("staging", 50, 60, "succeeded", None, 600),  # another budget: staging's budget "varies"
]

# By hand, from RECORDS:
PROD = {
    "deploys": 6,
    "succeeded": 3,
    "failed": 3,
    "successRate": 0.5,
    "rollbacks": 2,
    "rolledBack": 1,
    "rollbackFailed": 1,
    # 3 failed deploys: health twice, registry-auth once.
    "causes": [
        {"cause": "health", "count": 2, "share": 0.6667},
        {"cause": "registry-auth", "count": 1, "share": 0.3333},
    ],
    # sorted: 100 150 180 200 320 400 -> median (180 + 200) / 2; p95 is rank ceil(0.95 * 6) = 6 -> 400.
    "durationSeconds": {"median": 190, "p95": 400},
    "budgetSeconds": 300,
    "overBudget": 2,  # 320 and 400
    "recovery": {"recovered": 1, "meanSeconds": 3580.0, "open": 1, "openSince": ["2026-01-05T04:06:40Z"]},
    # The period (00:00 to 04:06:40) is under a day, so counted as one. No commit times: lead time unknown.
    # registry-auth is stopped before the update; 5 shipped, 2 of them failed (rolled back, rollback failed).
    "dora": {
        "deploymentFrequency": {"perDay": 3, "perWeek": 21},
        "leadTimeSeconds": {"median": None, "p95": None, "known": 0, "unknown": 3},
        "changeFailureRate": 0.4,
        "timeToRestoreSeconds": 3580.0,
        # No soak caught any of them: every failure is the gate's (or came before it).
        "caughtByGate": {"changeFailureRate": 0.4, "timeToRestoreSeconds": 3580.0},
        "caughtInSoak": {"changeFailureRate": 0.0, "timeToRestoreSeconds": None},
        "stoppedBeforeUsers": {"total": 2, "beforeUpdate": 1, "byRollback": 1},
    },
}
STAGING = {
    "deploys": 4,
    "succeeded": 3,
    "failed": 1,
    "successRate": 0.75,
    "rollbacks": 0,
    "rolledBack": 0,
    "rollbackFailed": 0,
    "causes": [{"cause": "build", "count": 1, "share": 1.0}],
    # sorted: 60 90 120 250 -> median (90 + 120) / 2; p95 rank ceil(3.8) = 4 -> 250.
    "durationSeconds": {"median": 105.0, "p95": 250},
    "budgetSeconds": None,
    "overBudget": 0,
    "recovery": {"recovered": 1, "meanSeconds": 1070.0, "open": 0, "openSince": []},
    "dora": {
        "deploymentFrequency": {"perDay": 3, "perWeek": 21},
        "leadTimeSeconds": {"median": None, "p95": None, "known": 0, "unknown": 3},
        "changeFailureRate": 0.0,
        "timeToRestoreSeconds": 1070.0,
        "caughtByGate": {"changeFailureRate": 0.0, "timeToRestoreSeconds": 1070.0},
        "caughtInSoak": {"changeFailureRate": 0.0, "timeToRestoreSeconds": None},
        "stoppedBeforeUsers": {"total": 1, "beforeUpdate": 1, "byRollback": 0},
    },
}
OVERALL = {
    "deploys": 10,
    "succeeded": 6,
    "failed": 4,
    "successRate": 0.6,
    "rollbacks": 2,
    "rolledBack": 1,
    "rollbackFailed": 1,
    # 4 failed deploys; ties (registry-auth, build: 1 each) in the order of the cause list.
    "causes": [
        {"cause": "health", "count": 2, "share": 0.5},
        {"cause": "registry-auth", "count": 1, "share": 0.25},
        {"cause": "build", "count": 1, "share": 0.25},
    ],
    # sorted: 60 90 100 120 150 180 200 250 320 400 -> median (150 + 180) / 2; p95 rank 10 -> 400.
    "durationSeconds": {"median": 165.0, "p95": 400},
    "budgetSeconds": None,
    "overBudget": 2,
    "recovery": {
        "recovered": 2,
        "meanSeconds": (3580 + 1070) / 2,
        "open": 1,
        "openSince": ["2026-01-05T04:06:40Z"],
    },
    "dora": {
        "deploymentFrequency": {"perDay": 6, "perWeek": 42},
        "leadTimeSeconds": {"median": None, "p95": None, "known": 0, "unknown": 6},
        "changeFailureRate": 0.25,
        "timeToRestoreSeconds": 2325.0,
        "caughtByGate": {"changeFailureRate": 0.25, "timeToRestoreSeconds": 2325.0},
        "caughtInSoak": {"changeFailureRate": 0.0, "timeToRestoreSeconds": None},
        "stoppedBeforeUsers": {"total": 3, "beforeUpdate": 2, "byRollback": 1},
    },
}


def _deploy(stack: str, minutes: int, seconds: int, outcome: Any, cause: Any, budget: int) -> DeployRecord:
    start = DAY + timedelta(minutes=minutes)
    failures = () if cause is None else (FailureRecord(cause, "release", "web", None, f"{cause} failed"),)
    return DeployRecord(
        stack, start, start + timedelta(seconds=seconds), budget, outcome, cause, failures, ()
    )


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    """The records as `gh run download` leaves them: one folder per run, in no particular order."""
    root = tmp_path / "artifacts"
    for i, row in enumerate(reversed(RECORDS)):
        write_record(_deploy(*row), root / f"run-{i:02d}" / "deploy-record" / "deploy-record.json")
    broken = to_json(_deploy(*RECORDS[0]))
    broken["durationSeconds"] = "long"
    (root / "run-90").mkdir()
    (root / "run-90" / "deploy-record.json").write_text(json.dumps(broken), encoding="utf-8")
    (root / "run-91").mkdir()
    (root / "run-91" / "package.json").write_text('{"name": "web", "version": "1.0.0"}', encoding="utf-8")
    (root / "run-91" / "notes.txt").write_text("not JSON, and not looked at", encoding="utf-8")
    # The same deploy downloaded twice.
    write_record(_deploy(*RECORDS[1]), root / "run-99-again" / "deploy-record.json")
    return root


def _run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_the_json_report_has_the_known_answers(artifacts: Path) -> None:
    code, out, err = _run(str(artifacts), "--format", "json")
    assert (code, err) == (EXIT_OK, "")
    report = json.loads(out)
    assert report["kind"] == "gitops-deploy/deploy-report" and report["version"] == 1
    assert report["stacks"] == {"prod": PROD, "staging": STAGING}
    assert report["overall"] == OVERALL
    assert (report["period"], report["outside"]) == (["2026-01-05T00:00:00Z", "2026-01-05T04:06:40Z"], 0)
    skipped = {Path(s["path"]).relative_to(artifacts).as_posix(): s["reason"] for s in report["skipped"]}
    assert skipped == {
        "run-99-again/deploy-record.json": (
            f"duplicate of {artifacts / 'run-08' / 'deploy-record' / 'deploy-record.json'} "
            "(same stack, start, end and outcome)"
        ),
        "run-90/deploy-record.json": "broken deploy record: durationSeconds: 'long' is not of type 'integer'",
        "run-91/package.json": "not a deploy record: it has no kind (a deploy record has kind "
        "'gitops-deploy/deploy-record')",
    }


def test_the_table_report(artifacts: Path) -> None:
    code, out, _ = _run(str(artifacts))
    assert code == EXIT_OK
    lines = out.splitlines()
    assert lines[0] == "Deploy report: 10 deploy record(s) of 2 stack(s); 3 file(s) skipped"
    words = [" ".join(line.split()) for line in lines]
    assert words[2] == "stack deploys success rollbacks rb failed median p95 budget over MTTR open"
    assert words[3] == "prod 6 50.0% 2 1 3m10s 6m40s 5m00s 2 59m40s 1"
    assert words[4] == "staging 4 75.0% 0 0 1m45s 4m10s varies 0 17m50s 0"
    assert words[5] == "all stacks 10 60.0% 2 1 2m45s 6m40s varies 2 38m45s 1"
    causes = lines[lines.index("Failures by cause (share of failed deploys):") + 2 :]
    assert causes[0].split() == ["prod", "health", "2", "66.7%"]
    assert causes[1].split() == ["prod", "registry-auth", "1", "33.3%"]
    assert causes[2].split() == ["staging", "build", "1", "100.0%"]
    assert causes[3].split() == ["all", "stacks", "health", "2", "50.0%"]
    assert "  prod: failing since 2026-01-05T04:06:40Z" in lines
    assert "Skipped:" in lines
    assert all(len(line) <= TABLE_WIDTH for line in lines), out


def test_the_markdown_report(artifacts: Path) -> None:
    code, out, _ = _run(str(artifacts), "--format", "markdown")
    assert code == EXIT_OK
    lines = out.splitlines()
    assert lines[0] == "### Deploy report: 10 deploy record(s) of 2 stack(s); 3 file(s) skipped"
    assert lines[2].startswith("| stack | deploys | success | rollbacks | rollback failed | median | p95 |")
    assert "| prod | 6 | 50.0% | 2 | 1 | 3m10s | 6m40s | 5m00s | 2 | 59m40s | 1 |" in lines
    assert "| staging | build | 1 | 100.0% |" in lines
    assert "- prod: failing since 2026-01-05T04:06:40Z" in lines
    assert any(line.startswith("- `") and "package.json" in line for line in lines)


def test_files_and_folders_can_be_mixed_and_a_file_is_read_whatever_its_name(tmp_path: Path) -> None:
    record = tmp_path / "record.out"
    write_record(_deploy(*RECORDS[0]), record)
    folder = tmp_path / "more"
    write_record(_deploy(*RECORDS[6]), folder / "x.json")
    code, out, _ = _run(str(record), str(folder), str(record), "--format", "json")
    assert code == EXIT_OK
    report = json.loads(out)
    assert sorted(report["stacks"]) == ["prod", "staging"] and report["skipped"] == []
    assert report["overall"]["deploys"] == 2


def test_an_unrecovered_failure_alone_has_no_mean(tmp_path: Path) -> None:
    write_record(_deploy("dev", 0, 30, "failed", "lint", 300), tmp_path / "a.json")
    code, out, _ = _run(str(tmp_path), "--format", "json")
    assert code == EXIT_OK
    recovery = json.loads(out)["overall"]["recovery"]
    assert recovery == {"recovered": 0, "meanSeconds": None, "open": 1, "openSince": ["2026-01-05T00:00:30Z"]}
    code, out, _ = _run(str(tmp_path))
    assert out.splitlines()[3].split()[-2:] == ["-", "1"]


def test_no_records_is_exit_1_and_still_lists_what_was_skipped(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text("{}", encoding="utf-8")
    code, out, err = _run(str(tmp_path))
    assert code == EXIT_NO_RECORDS
    assert f"  {tmp_path / 'x.json'}\n    not a deploy record: it has no kind" in out
    assert err == "report: no deploy record found in the given paths\n"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _run(str(empty))[0] == EXIT_NO_RECORDS


def test_a_path_that_does_not_exist_is_a_usage_error(tmp_path: Path) -> None:
    code, out, err = _run(str(tmp_path / "nope"))
    assert (code, out) == (EXIT_USAGE, "")
    assert err == f"report: error: no such file or folder: {tmp_path / 'nope'}\n"


def test_p95_is_the_nearest_rank() -> None:
    assert p95([5]) == 5
    assert p95(list(range(1, 21))) == 19  # rank ceil(0.95 * 20) = 19
    assert p95(list(range(1, 101))) == 95
    assert p95([3, 1, 2]) == 3


def _cli(*argv: str, module: tuple[str, ...] = ("deploy", "report")) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(PROJECT_DIR)}
    return subprocess.run(
        [sys.executable, "-m", *module, *argv],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_python_m_deploy_report_runs_with_help_and_exit_codes(artifacts: Path, tmp_path: Path) -> None:
    helped = _cli("--help")
    assert helped.returncode == 0
    text = " ".join(helped.stdout.split())
    for words in (
        "usage: python -m deploy report [-h] [--format {json,markdown,table}]",
        "[--since DATE] [--until DATE] PATH [PATH ...]",
        "Summarize gitops-deploy deploy records",
        "exit codes: 0 the report was written",
        "1 no deploy record was found",
        "2 bad command line",
    ):
        assert words in text, words
    ran = _cli(str(artifacts), "--format", "json")
    assert ran.returncode == EXIT_OK and json.loads(ran.stdout)["overall"]["deploys"] == 10
    assert _cli(str(tmp_path / "nope")).returncode == EXIT_USAGE
    bad = _cli(str(artifacts), "--format", "yaml")
    assert bad.returncode == EXIT_USAGE and "invalid choice: 'yaml'" in bad.stderr
    assert "Traceback" not in bad.stderr
    # `python -m deploy.report`, the command before the sub-command, still works the same.
    alias = _cli(str(artifacts), "--format", "json", module=("deploy.report",))
    assert alias.returncode == EXIT_OK and alias.stdout == ran.stdout


def test_a_fifo_among_the_records_is_skipped_without_waiting(tmp_path: Path) -> None:
    write_record(_deploy(*RECORDS[0]), tmp_path / "a.json")
    os.mkfifo(tmp_path / "pipe.json")
    code, out, _ = _run(str(tmp_path), "--format", "json")
    assert code == EXIT_OK
    report = json.loads(out)
    assert report["overall"]["deploys"] == 1
    assert report["skipped"] == [
        {"path": str(tmp_path / "pipe.json"), "reason": "cannot be read: not a regular file"}
    ]


# -- hostile records: each skipped with a one-line reason, the good ones kept, nothing raw on screen --

_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


APP: dict[str, Any] = {
    "name": "web",
    "digestBefore": None,
    "digestAfter": None,
    "totalSeconds": 0,
    "phases": {},
}


def _good() -> dict[str, Any]:
    """A good record's JSON, with one app."""
    return {**to_json(_deploy(*RECORDS[0])), "apps": [dict(APP)]}


def _hostile(good: dict[str, Any]) -> dict[str, Any]:
    """Name -> file content: broken records whose fields and names try to reach the terminal raw."""
    return {
        "overflow.json": {**good, "startedAt": "9999-12-31T23:59:59-23:59"},
        "underflow.json": {**good, "startedAt": "0001-01-01T00:00:00+23:59"},
        "kind\nnewline\x1b[31m.json": [1, 2],
        "huge-int.json": {**good, "durationSeconds": 10**400},
        "float-seconds.json": {**good, "budgetSeconds": 1e308},
        "surrogate.json": '{"kind": "\\ud800"}',
        "nested.json": "[" * 100_000 + "]" * 100_000,
        "version-text.json": {**good, "version": "1\n2"},
        "phase-name.json": {**good, "apps": [{**good["apps"][0], "phases": {"\x1b[31m": {}}}]},
    }


def test_every_hostile_record_is_skipped_with_a_reason_and_the_good_ones_kept(tmp_path: Path) -> None:
    good = _good()
    (tmp_path / "good.json").write_text(json.dumps(good))
    # A valid record whose stack name tries to drive the terminal: kept, and shown escaped.
    (tmp_path / "escape.json").write_text(json.dumps({**good, "stack": "prod\x1b[2J\nPASS\u202e"}))
    hostile = _hostile(good)
    for name, content in hostile.items():
        text = content if isinstance(content, str) else json.dumps(content)
        (tmp_path / name).write_text(text, encoding="utf-8")
    loaded = load([tmp_path])
    assert len(loaded.records) == 2 and len(loaded.skipped) == len(hostile)
    assert all(s.reason and "\n" not in s.reason for s in loaded.skipped), loaded.skipped
    for fmt in ("table", "markdown", "json"):
        code, out, err = _run(str(tmp_path), "--format", fmt)
        assert code == EXIT_OK, err
        assert not _CONTROLS.search(out), (fmt, out)
        out.encode("utf-8")
    code, out, _ = _run(str(tmp_path), "--format", "markdown")
    assert "\nPASS" not in out
    assert out.startswith("### Deploy report: 2 deploy record(s) of 2 stack(s); 9 file(s) skipped\n")
    assert "| prod\\\\x1b\\[2J PASS\\\\u202e |" in out  # shown as prod\\x1b[2J PASS\\u202e
    skipped = out.split("**Skipped**", 1)[1].strip().splitlines()
    assert len(skipped) == len(hostile) and all(line.startswith("- `") for line in skipped), skipped


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


def _mutations(good: dict[str, Any]) -> st.SearchStrategy[Any]:
    """A good record with one field (top level or in an app or a failure) replaced by any JSON value."""
    top = st.builds(lambda k, v: {**good, k: v}, st.sampled_from(sorted(good)), json_values)
    app = st.builds(
        lambda k, v: {**good, "apps": [{**good["apps"][0], k: v}]},
        st.sampled_from(sorted(good["apps"][0])),
        json_values,
    )
    times = st.builds(
        lambda k, d: {**good, k: d.isoformat()},
        st.sampled_from(["startedAt", "endedAt"]),
        st.datetimes(timezones=st.timezones()),
    )
    return top | app | times | json_values


@given(st.data())
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_json_value_as_a_record_is_read_or_refused_never_raised(data: st.DataObject) -> None:
    value = data.draw(_mutations(_good()))
    try:
        record = from_json(value)
    except RecordError as err:
        assert str(err) and "\n" not in str(err)
        return
    report = build_report(Loaded(((Path("r.json"), record),), ()))
    for render in RENDERERS.values():
        assert not _CONTROLS.search(render(report))


# --- the DORA keys over generated records with known answers ---------------------------------------------

_SYNCED = (AppRecord("web", None, None, {"sync": PhaseTiming(10, "succeeded", "update")}),)


def _dora_record(
    stack: str, day: int, outcome: Any, cause: Any = None, lead_hours: int | None = None, synced: bool = True
) -> DeployRecord:
    """A deploy of 60 s starting `day` days after DAY; its commit `lead_hours` before it ended."""
    start = DAY + timedelta(days=day)
    end = start + timedelta(seconds=60)
    failures = () if cause is None else (FailureRecord(cause, "release", "web", None, "failed"),)
    commit = None if lead_hours is None else end - timedelta(hours=lead_hours)
    apps = _SYNCED if synced else ()
    return DeployRecord(stack, start, end, 300, outcome, cause, failures, apps, commit)


def _dora_of(tmp_path: Path, records: list[DeployRecord], *argv: str) -> tuple[int, dict[str, Any]]:
    for i, record in enumerate(records):
        write_record(record, tmp_path / "records" / f"{i:03d}.json")
    code, out, _ = _run(str(tmp_path / "records"), "--format", "json", *argv)
    return code, json.loads(out)


def test_the_dora_keys_per_stack_and_overall(tmp_path: Path) -> None:
    records = [
        _dora_record("prod", 0, "succeeded", lead_hours=1),
        _dora_record("prod", 1, "failed", "policy", synced=False),  # stopped in preview
        _dora_record("prod", 2, "rolled-back", "health"),  # stopped by the rollback; shipped, failed
        _dora_record("prod", 3, "succeeded", lead_hours=3),  # restores 1 day after day 2's failure
        _dora_record("prod", 4, "failed", "other", synced=False),  # stopped before the update (exit 5, 6)
        _dora_record("prod", 5, "rollback-failed", "health"),  # reached users
        _dora_record("prod", 6, "succeeded", lead_hours=2),
        _dora_record("staging", 0, "failed", "health"),  # a first deploy's failed gate: reached users
        _dora_record("staging", 13, "succeeded", lead_hours=24),
    ]
    code, report = _dora_of(tmp_path, records, "--since", "2026-01-05", "--until", "2026-01-18")
    assert code == EXIT_OK and report["period"] == ["2026-01-05T00:00:00Z", "2026-01-19T00:00:00Z"]
    prod, staging, overall = (
        report["stacks"]["prod"]["dora"],
        report["stacks"]["staging"]["dora"],
        report["overall"]["dora"],
    )
    # 14 days: 3 and 1 succeeded deploys.
    assert prod["deploymentFrequency"] == {"perDay": round(3 / 14, 4), "perWeek": 1.5}
    assert staging["deploymentFrequency"] == {"perDay": round(1 / 14, 4), "perWeek": 0.5}
    hour = 3600.0
    assert prod["leadTimeSeconds"] == {"median": 2 * hour, "p95": 3 * hour, "known": 3, "unknown": 0}
    assert overall["leadTimeSeconds"] == {"median": 2.5 * hour, "p95": 24 * hour, "known": 4, "unknown": 0}
    # Shipped: prod 5 (2 failed), staging 2 (1 failed), overall 7 (3 failed).
    assert (prod["changeFailureRate"], staging["changeFailureRate"]) == (0.4, 0.5)
    assert overall["changeFailureRate"] == round(3 / 7, 4)
    # prod: day 1's failure (its end) to day 3's success (its end); day 5's is still open.
    assert prod["timeToRestoreSeconds"] == 2 * 24 * hour
    assert staging["timeToRestoreSeconds"] == 13 * 24 * hour
    assert prod["stoppedBeforeUsers"] == {"total": 3, "beforeUpdate": 2, "byRollback": 1}
    assert staging["stoppedBeforeUsers"] == {"total": 0, "beforeUpdate": 0, "byRollback": 0}
    assert overall["stoppedBeforeUsers"] == {"total": 3, "beforeUpdate": 2, "byRollback": 1}


def test_since_and_until_bound_the_period(tmp_path: Path) -> None:
    records = [_dora_record("prod", day, "succeeded", lead_hours=day + 1) for day in range(10)]
    code, report = _dora_of(tmp_path, records, "--since", "2026-01-07", "--until", "2026-01-08")
    assert code == EXIT_OK and (report["overall"]["deploys"], report["outside"]) == (2, 8)
    assert report["overall"]["dora"]["deploymentFrequency"]["perDay"] == 1.0
    assert report["overall"]["dora"]["leadTimeSeconds"]["median"] == 3.5 * 3600
    code, report = _dora_of(tmp_path, [], "--since", "2026-01-07T12:00:00+00:00")
    assert (code, report["overall"]["deploys"], report["period"][0]) == (EXIT_OK, 7, "2026-01-07T12:00:00Z")


def test_an_empty_period(tmp_path: Path) -> None:
    code, report = _dora_of(
        tmp_path, [_dora_record("prod", 0, "succeeded")], "--since", "2027-01-01", "--until", "2027-01-01"
    )
    assert (code, report["overall"], report["stacks"], report["outside"]) == (EXIT_NO_RECORDS, None, {}, 1)
    assert report["period"] == ["2027-01-01T00:00:00Z", "2027-01-02T00:00:00Z"]
    code, _, err = _run(str(tmp_path / "records"), "--since", "2027-01-01")
    assert (code, err) == (EXIT_NO_RECORDS, "report: no deploy record found in the period\n")


def test_a_period_with_only_failures(tmp_path: Path) -> None:
    records = [
        _dora_record("prod", 0, "failed", "build", synced=False),
        _dora_record("prod", 1, "rolled-back", "health"),
    ]
    _, report = _dora_of(tmp_path, records)
    dora = report["overall"]["dora"]
    assert dora["deploymentFrequency"] == {"perDay": 0.0, "perWeek": 0.0}
    assert dora["leadTimeSeconds"] == {"median": None, "p95": None, "known": 0, "unknown": 0}
    assert (dora["changeFailureRate"], dora["timeToRestoreSeconds"]) == (1.0, None)
    assert dora["stoppedBeforeUsers"] == {"total": 2, "beforeUpdate": 1, "byRollback": 1}
    code, out, _ = _run(str(tmp_path / "records"))
    words = [line.split() for line in out.splitlines()]
    assert code == EXIT_OK and ["prod", "0.0", "-", "-", "0", "100.0%", "-", "2", "(1+1)"] in words


def test_version_1_records_count_their_lead_time_as_unknown(tmp_path: Path) -> None:
    old = to_json(_dora_record("prod", 0, "succeeded"))
    del old["commitAt"]
    old["version"] = 1
    (tmp_path / "records").mkdir()
    (tmp_path / "records" / "old.json").write_text(json.dumps(old), encoding="utf-8")
    code, report = _dora_of(tmp_path, [_dora_record("prod", 1, "succeeded", lead_hours=5)])
    assert code == EXIT_OK and report["overall"]["deploys"] == 2 and report["skipped"] == []
    lead = report["overall"]["dora"]["leadTimeSeconds"]
    assert lead == {"median": 5 * 3600.0, "p95": 5 * 3600.0, "known": 1, "unknown": 1}


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (
            ("--since", "yesterday"),
            "report: error: --since 'yesterday' is not an ISO date (2026-01-05) or time\n",
        ),
        (
            ("--until", "2026-02-30"),
            "report: error: --until '2026-02-30' is not an ISO date (2026-01-05) or time\n",
        ),
        (
            ("--since", "2026-01-05", "--until", "2026-01-04"),
            "report: error: --until 2026-01-04 is not after --since 2026-01-05\n",
        ),
    ],
)
def test_bad_since_or_until_is_a_one_line_usage_error(
    tmp_path: Path, argv: tuple[str, ...], error: str
) -> None:
    write_record(_dora_record("prod", 0, "succeeded"), tmp_path / "r.json")
    assert _run(str(tmp_path / "r.json"), *argv) == (EXIT_USAGE, "", error)
