"""A stand-in `pulumi` executable: answers exactly the commands the Automation API sends, as the CLI does.

Each call is run as `pulumi [--non-interactive] <command> ...` with the project directory as cwd
(pulumi/automation/_cmd.py `PulumiCommand.run`); the argv each Automation API method sends is in
pulumi/automation/_local_workspace.py and _stack.py. Stack config lives in `Pulumi.<stack>.yaml` in
that directory, as the real CLI keeps it; outputs, history and the scripted `up`s come from the
scenario in $FAKE_PULUMI_DIR/scenario.json. Every call is appended to $FAKE_PULUMI_DIR/calls.jsonl.

`up --event-log <target>` streams a recorded event stream (tests/fixtures/engine_events, by its path
there) to a file, or, when the target is `tcp://host:port`, to the Automation API's
`Events.StreamEvents` gRPC service (pulumi/runtime/proto/events.proto), as pkg/backend/display/display.go
`startEventLogger` does. Events are numbered afresh and stamped from now, keeping the recording's
spacing. `refresh --target <urn>...` answers as the CLI does without an event log (the deploy reads the
stopped Applications back before a rollback); a scripted `refresh` may fail, and so may any command
the scenario's `failures` name (as a stack whose passphrase is not set fails every command that reads
it). Secret config values read as the scenario's `secrets` give them (the real CLI decrypts them with
the stack's secrets provider).

The cancellation window, as a DIY backend has it (the rule and its sources: deploy/process.py): `up`
takes the stack's lock first (a lock file under $FAKE_PULUMI_DIR/locks; one already there refuses the
update with lock.go `checkForLock`'s words, deploy/recovery.py), then opens the cancellation scope,
streams the events, closes the scope, and only then writes the history and removes the lock. Inside
the scope the first SIGINT/SIGTERM cancels and the next one terminates (both are logged; the script
decides what the update does next: `pause_before` waits for a signal, `drain_s` is how long the steps
in flight take to finish after it). Outside it nothing handles the signals, so the CLI dies of the
first one as Go's default action has it, and the lock stays.
`cancel [--stack S] [--yes]` removes the stack's locks (backend.go `CancelCurrentUpdate`).

`refresh` and `cancel` parse their flags as the CLI's cobra/pflag definitions do (pkg/cmd/pulumi/
operations/refresh.go, cancel/cancel.go): an unknown flag, a positional argument to `refresh`, a
missing `--yes` when run non-interactively, `--skip-pending-creates` with `--clear-pending-creates`, or
an odd `--import-pending-creates` list (a string array: one value per flag) is an error. The stack's
pending operations (the scenario's `pending`) change as refresh.go changes them: `--import-pending-
creates URN --import-pending-creates ID` turns that pending create into an import, `--clear-pending-creates`
drops the remaining creates, and the refresh itself settles every pending operation.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import socket
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
FIXTURES = HERE.parents[1] / "fixtures" / "engine_events"
WAIT_BOUND_S = 60.0
"""A scripted pause never outlasts this: a test that forgets to signal fails instead of hanging."""
CLOSE_BOUND_S = 30.0
"""Nor does waiting for the Automation API to take the end of the event stream."""
_PATH_PART = re.compile(r"\[(\d+)\]|\.?([^.\[\]]+)")


class Fake:
    """The scenario, the state it changes and the call log."""

    def __init__(self, root: Path, cwd: Path) -> None:
        self.root = root
        self.cwd = cwd
        self.scenario: dict[str, Any] = json.loads((root / "scenario.json").read_text(encoding="utf-8"))

    def save(self) -> None:
        """Keep outputs, history and the `up` counter for the next call."""
        (self.root / "scenario.json").write_text(json.dumps(self.scenario, indent=1), encoding="utf-8")

    def log(self, entry: dict[str, Any]) -> None:
        """Append one line to the call log."""
        with (self.root / "calls.jsonl").open("a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")
            f.flush()

    def stack_file(self, stack: str) -> Path:
        return self.cwd / f"Pulumi.{stack.rsplit('/', 1)[-1]}.yaml"

    def read_config(self, stack: str) -> dict[str, Any]:
        data = yaml.safe_load(self.stack_file(stack).read_text(encoding="utf-8")) or {}
        config = data.get("config") or {}
        assert isinstance(config, dict)
        return config

    def write_config(self, stack: str, config: dict[str, Any]) -> None:
        path = self.stack_file(stack)
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        data["config"] = config
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def _flag(args: list[str], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args and args.index(name) + 1 < len(args) else None


def _split_path(key: str) -> tuple[str, list[str | int]]:
    """`ns:top[0].a.b` -> ("ns:top", [0, "a", "b"]), as `pulumi config --path` reads a key."""
    namespace, _, rest = key.partition(":")
    parts: list[str | int] = []
    for index, name in _PATH_PART.findall(rest):
        parts.append(int(index) if index else name)
    top = parts.pop(0)
    return f"{namespace}:{top}", parts


def _config_json(config: dict[str, Any], secrets: dict[str, str]) -> dict[str, Any]:
    """`pulumi config --json --show-secrets`: value as a string, objectValue for objects (config.go)."""
    out: dict[str, Any] = {}
    for key in sorted(config):
        value = config[key]
        if isinstance(value, dict) and set(value) == {"secure"}:
            out[key] = {"value": secrets.get(key, "decrypted-secret"), "secret": True}
        elif isinstance(value, dict | list):
            out[key] = {
                "value": json.dumps(value, separators=(",", ":")),
                "objectValue": value,
                "secret": False,
            }
        elif isinstance(value, bool):
            out[key] = {"value": "true" if value else "false", "secret": False}
        else:
            out[key] = {"value": str(value), "secret": False}
    return out


def _set(config: dict[str, Any], key: str, value: str, path: bool) -> None:
    if not path:
        config[key] = value
        return
    top, parts = _split_path(key)
    if not parts:
        config[top] = value
        return
    node = config[top]
    for part in parts[:-1]:
        node = node[part]
    node[parts[-1]] = value


def _remove(config: dict[str, Any], key: str, path: bool) -> None:
    top, parts = _split_path(key) if path else (key, [])
    if not parts:
        config.pop(top, None)
        return
    node: Any = config.get(top)
    for part in parts[:-1]:
        node = node[part] if node is not None else None
    if isinstance(node, dict):
        node.pop(parts[-1], None)


class Signals:
    """SIGINT/SIGTERM as the Pulumi CLI receives them: inside the cancellation scope, or not at all."""

    def __init__(self, fake: Fake, *, window_open: bool = False) -> None:
        self.fake = fake
        self.received: list[str] = []
        self.window_open = window_open
        for s in (signal.SIGINT, signal.SIGTERM):
            signal.signal(s, self._handle)

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if not self.window_open:
            # No handler outside the scope: Go's default action ends the process, lock and all.
            self.fake.log({"signal": name, "outside_window": True, "pid": os.getpid()})
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        self.received.append(name)
        scope = "cancel" if len(self.received) == 1 else "terminate"
        self.fake.log({"signal": name, "scope": scope, "pid": os.getpid()})

    def wait_for(self, count: int) -> None:
        """Block until `count` signals arrived in all (a bounded wait, in the main thread)."""
        self.fake.log({"waiting": count, "pid": os.getpid()})
        deadline = time.monotonic() + WAIT_BOUND_S
        while len(self.received) < count:
            if time.monotonic() > deadline:
                sys.stderr.write("fake pulumi: no signal came\n")
                sys.exit(97)
            time.sleep(0.02)


class EventLog:
    """The `--event-log` target: a file (CLI <= 3.205) or the Automation API's gRPC Events service."""

    def __init__(self, target: str) -> None:
        self.target = target
        self._file = None
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._call: Any = None
        if target.startswith("tcp://"):
            import grpc
            from pulumi.runtime.proto import events_pb2, events_pb2_grpc

            self._channel = grpc.insecure_channel(target.removeprefix("tcp://"))
            stub = events_pb2_grpc.EventsStub(self._channel)
            self._call = stub.StreamEvents.future(
                events_pb2.EventRequest(event=e) for e in iter(self._queue.get, None)
            )
        else:
            self._file = open(target, "a", encoding="utf-8")  # noqa: SIM115 (closed in close())

    def send(self, line: dict[str, Any]) -> None:
        text = json.dumps(line, separators=(",", ":"))
        if self._file is not None:
            self._file.write(text + "\n")
            self._file.flush()
        else:
            self._queue.put(text)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            return
        self._queue.put(None)
        deadline = time.monotonic() + CLOSE_BOUND_S
        while not self._call.done():  # a Python-level wait, so signals are still handled
            if time.monotonic() > deadline:
                sys.stderr.write("fake pulumi: the event stream was never taken\n")
                sys.exit(96)
            time.sleep(0.01)
        self._call.result()
        self._channel.close()


def lock_path(root: Path, stack: str) -> Path:
    """Where the stand-in keeps a stack's lock file while an update holds it."""
    return root / "locks" / f"{stack.rsplit('/', 1)[-1]}.json"


def _locked(fake: Fake, stack: str) -> str | None:
    """lock.go `checkForLock`'s error when the stack is locked, else None."""
    path = lock_path(fake.root, stack)
    if not path.exists():
        return None
    lock = json.loads(path.read_text(encoding="utf-8"))
    return (
        "error: the stack is currently locked by 1 lock(s). Either wait for the other process(es) to end or "
        "delete the lock file with `pulumi cancel`.\n"
        f"  file://{path}: created by {lock['username']}@{lock['hostname']} (pid {lock['pid']}) at "
        f"{lock['timestamp']}"
    )


def _lock(fake: Fake, stack: str) -> None:
    path = lock_path(fake.root, stack)
    path.parent.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    lock = {"pid": os.getpid(), "username": "ci", "hostname": socket.gethostname(), "timestamp": stamp}
    path.write_text(json.dumps(lock), encoding="utf-8")


def _up(fake: Fake, args: list[str], stack: str) -> int:
    ups = fake.scenario.setdefault("ups", [])
    done = fake.scenario.get("ups_done", 0)
    script: dict[str, Any] = ups[done] if done < len(ups) else {"fixture": "good_deploy.jsonl"}
    fake.scenario["ups_done"] = done + 1
    fake.save()
    fake.log({"up": args, "config": fake.read_config(stack), "pid": os.getpid()})
    signals = Signals(fake)
    target = _flag(args, "--event-log")
    if script.get("refuse"):
        # Refused before the engine starts (a lock, a 409): no event at all.
        sys.stderr.write(script["refuse"] + "\n")
        return int(script.get("exit", 255))
    locked = _locked(fake, stack)
    if locked is not None:
        sys.stderr.write(locked + "\n")
        return 255
    _lock(fake, stack)
    lines = [json.loads(x) for x in (FIXTURES / script["fixture"]).read_text().splitlines() if x.strip()]
    pauses = list(script.get("pause_before", []))
    log = EventLog(target) if target else None
    print(f"Updating ({stack}):", flush=True)
    if script.get("before_window_s"):
        # Reading the checkpoint, loading plugins: locked, but no cancellation scope yet.
        fake.log({"before_window": True, "pid": os.getpid()})
        time.sleep(float(script["before_window_s"]))
    first, start = _clock(fake, lines)
    signals.window_open = True
    waited = 0
    for i, line in enumerate(lines):
        while pauses and pauses[0] == i:
            # The n-th pause lasts until n signals came in all (one may come before the pause).
            pauses.pop(0)
            waited += 1
            signals.wait_for(waited)
            time.sleep(float(script.get("drain_s", 0)))
        if log is not None:
            log.send({**line, "sequence": i, "timestamp": start + int(line["timestamp"]) - first})
    if script.get("hang_after"):
        # A CLI that ignores every further signal: only SIGKILL stops it.
        for s in (signal.SIGINT, signal.SIGTERM):
            signal.signal(s, lambda *_: fake.log({"ignored": True}))
        time.sleep(WAIT_BOUND_S)
    if log is not None:
        log.close()
    signals.window_open = False
    if script.get("after_window_s"):
        # Writing the snapshot and the history: still locked, the scope closed.
        fake.log({"after_window": True, "pid": os.getpid()})
        time.sleep(float(script["after_window_s"]))
    lock_path(fake.root, stack).unlink(missing_ok=True)
    code = int(script.get("exit", 0))
    if script.get("stderr"):
        sys.stderr.write(script["stderr"] + "\n")
    if code == 0:
        if "outputs" in script:
            fake.scenario["outputs"] = script["outputs"]
        fake.scenario.setdefault("history", []).insert(0, history_entry("succeeded"))
        fake.save()
        print("Resources: done", flush=True)
    return code


def _clock(fake: Fake, lines: list[dict[str, Any]]) -> tuple[int, int]:
    """(first recorded timestamp, when to stamp it): now, or later when the recording says so.

    The `up`s of one recorded deploy keep their spacing (the rollback started 8 s after the release
    ended), so their timings read as recorded; the next `up` never starts before the last one ended.
    """
    if not lines:
        return 0, int(time.time())
    first, last = int(lines[0]["timestamp"]), int(lines[-1]["timestamp"])
    start = int(time.time())
    previous = fake.scenario.get("clock")
    if previous is not None:
        gap = first - int(previous["recorded_end"])
        start = max(start, int(previous["stamped_end"]) + (gap if 0 <= gap <= 600 else 0))
    fake.scenario["clock"] = {"recorded_end": last, "stamped_end": start + last - first}
    fake.save()
    return first, start


GLOBAL_FLAGS: dict[str, tuple[str | None, str]] = {
    "non-interactive": (None, "bool"),
    "color": (None, "string"),
    "cwd": ("C", "string"),
    "emoji": (None, "bool"),
    "logtostderr": (None, "bool"),
    "logflow": (None, "bool"),
    "verbose": ("v", "string"),
    "tracing": (None, "string"),
}
"""The root command's persistent flags (pkg/cmd/pulumi/pulumi.go) the stand-in accepts."""
REFRESH_FLAGS: dict[str, tuple[str | None, str]] = {
    **GLOBAL_FLAGS,
    "yes": ("y", "bool"),
    "skip-preview": ("f", "bool"),
    "preview-only": (None, "bool"),
    "stack": ("s", "string"),
    "target": ("t", "array"),
    "exclude": ("x", "array"),
    "target-dependents": (None, "bool"),
    "exclude-dependents": (None, "bool"),
    "run-program": (None, "bool"),
    "message": ("m", "string"),
    "parallel": ("p", "string"),
    "diff": (None, "bool"),
    "debug": ("d", "bool"),
    "expect-no-changes": (None, "bool"),
    "show-secrets": (None, "bool"),
    "suppress-outputs": (None, "bool"),
    "suppress-progress": (None, "bool"),
    "event-log": (None, "string"),
    "exec-kind": (None, "string"),
    "exec-agent": (None, "string"),
    "client": (None, "string"),
    "skip-pending-creates": (None, "bool"),
    "clear-pending-creates": (None, "bool"),
    "import-pending-creates": (None, "array"),
}
"""refresh.go's flags (those the stand-in knows of): name -> (shorthand, bool | string | array)."""
CANCEL_FLAGS: dict[str, tuple[str | None, str]] = {
    **GLOBAL_FLAGS,
    "yes": ("y", "bool"),
    "stack": ("s", "string"),
}
"""cancel.go's flags."""


class UsageError(Exception):
    """The command line is one the CLI rejects before doing anything."""


def parse_flags(
    args: Sequence[str], flags: dict[str, tuple[str | None, str]]
) -> tuple[dict[str, Any], list[str]]:
    """pflag's parsing of `args` (after the command's name): ({flag: value}, positional arguments).

    A bool takes no separate value (`--yes`, `--yes=false`); a string or string array takes the next
    argument or `=value`; a string array (pflag `StringArray`) appends one value per occurrence.
    """
    shorthands = {short: name for name, (short, _) in flags.items() if short}
    values: dict[str, Any] = {name: [] for name, (_, kind) in flags.items() if kind == "array"}
    positional: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            positional.extend(args[i:])
            break
        if arg.startswith("--"):
            name, eq, inline = arg[2:].partition("=")
        elif arg.startswith("-") and len(arg) > 1:
            name, eq, inline = shorthands.get(arg[1], ""), "", arg[2:]
            if not name:
                raise UsageError(f"unknown shorthand flag: {arg[1]!r} in {arg}")
            eq = "=" if inline else ""
        else:
            positional.append(arg)
            continue
        if name not in flags:
            raise UsageError(f"unknown flag: --{name}")
        kind = flags[name][1]
        if kind == "bool":
            if eq and inline not in ("true", "false"):
                raise UsageError(f'invalid argument "{inline}" for "--{name}" flag: expected true or false')
            values[name] = inline != "false"
            continue
        if eq:
            value = inline
        elif i < len(args):
            value, i = args[i], i + 1
        else:
            raise UsageError(f"flag needs an argument: --{name}")
        if kind == "array":
            values[name].append(value)
        else:
            values[name] = value
    return values, positional


def _refresh(fake: Fake, argv: list[str]) -> int:
    """`refresh`, parsed as refresh.go parses it; what the scenario says about how it ends.

    `--target <urn>...` (what the deploy runs before a rollback) answers as the CLI does without an
    event log; the runbook's refresh changes the pending operations as refresh.go does.
    """
    try:
        flags, positional = parse_flags(argv[1:], REFRESH_FLAGS)
        if positional:
            raise UsageError(f'unknown command "{positional[0]}" for "pulumi refresh"')
        if not (flags.get("yes") or flags.get("skip-preview") or flags.get("preview-only")):
            # The stand-in never has a terminal: cmdutil.Interactive() is false.
            raise UsageError(
                "--yes or --skip-preview or --preview-only must be passed in to proceed when running in "
                "non-interactive mode"
            )
        if flags.get("skip-pending-creates") and flags.get("clear-pending-creates"):
            raise UsageError("cannot set both --skip-pending-creates and --clear-pending-creates")
        imports = flags["import-pending-creates"]
        if len(imports) % 2:
            raise UsageError("each URN must be followed by an ID: found an odd number of entries")
    except UsageError as err:
        fake.log({"usage_error": argv, "error": str(err)})
        sys.stderr.write(f"error: {err}\n")
        return 255
    stack = flags.get("stack", "")
    script: dict[str, Any] = fake.scenario.get("refresh") or {}
    targets = list(flags["target"])
    fake.log({"refresh": argv, "targets": targets, "flags": flags, "pid": os.getpid()})
    Signals(fake, window_open=True)
    code = int(script.get("exit", 0))
    if code:
        print(f"Refreshing ({stack}):", flush=True)
        sys.stderr.write(script.get("stderr", "error: refresh failed") + "\n")
        return code
    pending = _settle_pending(fake, dict(zip(imports[::2], imports[1::2], strict=True)), flags)
    print(f"Refreshing ({stack}):", flush=True)
    fake.scenario["pending"] = pending
    fake.scenario.setdefault("history", []).insert(0, {**history_entry("succeeded"), "kind": "refresh"})
    fake.save()
    print(f"Resources:\n    {len(targets)} unchanged", flush=True)
    return 0


def _settle_pending(fake: Fake, imports: dict[str, str], flags: dict[str, Any]) -> list[dict[str, Any]]:
    """refresh.go on the pending operations: the named creates become imports (read back into the state),
    then `--clear-pending-creates` drops the other creates; the refresh settles all but the creates left."""
    left: list[dict[str, Any]] = []
    for op in fake.scenario.get("pending", []):
        if op["type"] == "creating" and op["urn"] in imports:
            fake.scenario.setdefault("state", {})[op["urn"]] = imports.pop(op["urn"])
        elif op["type"] == "creating" and not flags.get("clear-pending-creates"):
            left.append(op)
    for urn in imports:
        sys.stderr.write(f'warning: "{urn}" did not correspond to a pending create\n')
    return left


def _cancel(fake: Fake, argv: list[str]) -> int:
    """`cancel [stack] [--stack S] [--yes]`: removes the stack's lock (diy `CancelCurrentUpdate`)."""
    try:
        flags, positional = parse_flags(argv[1:], CANCEL_FLAGS)
        if len(positional) > 1:
            raise UsageError(f"accepts at most 1 arg(s), received {len(positional)}")
        if positional and flags.get("stack"):
            raise UsageError("only one of --stack or argument stack name may be specified, not both")
    except UsageError as err:
        fake.log({"usage_error": argv, "error": str(err)})
        sys.stderr.write(f"error: {err}\n")
        return 255
    stack = positional[0] if positional else flags.get("stack", "")
    fake.log({"cancel": argv, "pid": os.getpid()})
    lock_path(fake.root, stack).unlink(missing_ok=True)
    print(f"The currently running update for '{stack}' has been canceled!", flush=True)
    return 0


def history_entry(result: str, start: str = "2026-05-01T12:00:00.000Z") -> dict[str, Any]:
    """One entry of `pulumi stack history --json`, shaped as pkg/cmd/pulumi/stack/stack_history.go
    `updateInfoJSON`: `version` always; `endTime` (omitempty) only once the update finished."""
    entry: dict[str, Any] = {
        "version": 1,
        "kind": "update",
        "startTime": start,
        "message": "",
        "environment": {},
        "config": {},
        "result": result,
    }
    if result != "in-progress":
        entry["endTime"] = start
    return entry


def main(argv: Sequence[str]) -> int:
    """Answer one CLI call."""
    fake = Fake(Path(os.environ["FAKE_PULUMI_DIR"]), Path.cwd())
    raw = list(argv)
    sep = raw.index("--") if "--" in raw else len(raw)
    args = [a for a in raw[:sep] if a != "--non-interactive"] + raw[sep:]
    fake.log({"argv": raw})
    stack = _flag(args, "--stack") or ""
    path = "--path" in raw[:sep]
    if args == ["version"]:
        print(fake.scenario.get("version", "3.272.0"))
        return 0
    for failure in fake.scenario.get("failures", []):
        if args[: len(failure["command"])] == failure["command"]:
            sys.stderr.write(failure["stderr"] + "\n")
            return int(failure.get("exit", 255))
    if args[:2] == ["stack", "select"]:
        if not fake.stack_file(stack).is_file():
            sys.stderr.write(f"error: no stack named '{stack}' found\n")
            return 255
        return 0
    if args[:2] == ["stack", "output"]:
        outputs = fake.scenario.get("outputs", {})
        print(json.dumps(outputs, indent=2))
        return 0
    if args[:2] == ["stack", "history"]:
        print(json.dumps(fake.scenario.get("history") or [history_entry("succeeded")]))
        return 0
    if args[:1] == ["config"] and len(args) > 1 and args[1].startswith("--"):
        print(json.dumps(_config_json(fake.read_config(stack), fake.scenario.get("secrets", {})), indent=2))
        return 0
    if args[:2] == ["config", "set"]:
        config = fake.read_config(stack)
        _set(config, args[2] if args[2] != "--path" else args[3], args[-1], path)
        fake.write_config(stack, config)
        return 0
    if args[:2] in (["config", "rm"], ["config", "rm-all"]):
        config = fake.read_config(stack)
        skip = {"--stack", stack, "--path"}
        keys = [a for a in args[2:] if a not in skip]
        for key in keys:
            _remove(config, key, path)
        fake.write_config(stack, config)
        return 0
    if args[:1] == ["up"]:
        return _up(fake, args, stack)
    if args[:1] == ["refresh"]:
        return _refresh(fake, raw[raw.index("refresh") :])
    if args[:1] == ["cancel"]:
        return _cancel(fake, raw[raw.index("cancel") :])
    sys.stderr.write(f"fake pulumi: unsupported command {raw}\n")
    fake.log({"unsupported": raw})
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
