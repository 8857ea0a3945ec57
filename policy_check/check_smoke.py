"""The check's smoke run under `--build`: each built app's image started alone with the local Docker Engine
and its health endpoint probed with the gate's rules (docs/policy-check.md#the-smoke-run)."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator, Sequence
from dataclasses import replace
from types import FrameType

from clients.image_engine import BuildSpec, EngineUnavailable, connect
from clients.smoke_run import ENGINE_TIMEOUT_S, SmokeSpec, run_smoke, sweep
from model.config import StackConfig
from policy_check.report import ImageRow, SmokeRow

CANT_JUDGE = "the smoke run can't judge it yet"


def smoke_rows(
    builds: Sequence[tuple[str, str, BuildSpec]],
    images: Sequence[ImageRow],
    config: StackConfig,
    *,
    enabled: bool = True,
) -> list[SmokeRow]:
    """A row per built app: its smoke run's result, or why it did not run (`images` is one row per build)."""
    apps = {a.name: a for a in config.apps}
    rows: list[SmokeRow] = []
    todo: list[tuple[SmokeRow, SmokeSpec]] = []
    for (app, name, _), image in zip(builds, images, strict=True):
        row = SmokeRow(app, name, image.dockerfile, "skipped", "")
        settings = apps[app].smoke if app in apps else None
        if settings is None or not settings.enabled:
            rows.append(replace(row, detail="smoke: false in the stack config"))
        elif not enabled:
            rows.append(replace(row, detail="--no-smoke given"))
        elif image.status == "error":
            rows.append(replace(row, detail="the image did not build"))
        else:
            health = apps[app].health
            spec = SmokeSpec(
                app, name, settings.port, health, settings.env, health.headers, settings.timeout_seconds
            )
            todo.append((row, spec))
    if not todo:
        return rows
    try:
        client = connect(ENGINE_TIMEOUT_S)
    except EngineUnavailable as exc:
        return rows + [replace(row, status="cant-judge", detail=f"{exc}; {CANT_JUDGE}") for row, _ in todo]
    try:
        sweep(client)
        for row, spec in todo:
            found = run_smoke(client, spec)
            status, cause = ("passed", "") if found.passed else ("failed", found.cause)
            rows.append(
                replace(row, status=status, detail=found.detail, cause=cause, exit_code=found.exit_code)
            )
            rows[-1] = replace(rows[-1], logs=found.logs, seconds=found.seconds)
    finally:
        client.close()
    order = {app: i for i, (app, _, _) in enumerate(builds)}
    return sorted(rows, key=lambda r: order[r.app])


class Stopped(KeyboardInterrupt):
    """The check was told to stop (SIGTERM): unwinds like Ctrl-C, so every clean-up runs."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextlib.contextmanager
def terminate_unwinds() -> Iterator[None]:
    """SIGTERM raises Stopped in the main thread for the duration, as SIGINT raises KeyboardInterrupt."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: FrameType | None) -> None:
        raise Stopped(signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def stopped_code(exc: KeyboardInterrupt) -> int:
    """128 + the signal's number, as a shell reports a process a signal stopped."""
    return 128 + (exc.signum if isinstance(exc, Stopped) else int(signal.SIGINT))
