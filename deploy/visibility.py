"""Where a deploy reports as it goes: GitHub's deployment statuses and the stack's notification webhook.

Neither can fail or hold up a deploy: each has a small allowance of seconds for the whole deploy, and a
failure is one warning line and a note in the deploy record (docs/visibility.md).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Concatenate, Literal, ParamSpec, TextIO, TypeVar

import httpx

from clients.bounded_post import PostFailed
from clients.github_deployments import Deployments, GitHubTarget, State
from clients.webhook import Webhook, host_of
from deploy import notices
from deploy.decide import Verdict
from deploy.events import Event
from deploy.notices import AppVerdict, Notice
from deploy.outcome import Exit
from deploy.view import StackView
from model.config import NAMESPACE, read_notify
from model.config_reader import ConfigError
from model.config_schema import NOTIFY_KEY
from model.http_origin import redact
from model.record import DeployRecord, SoakRecord

NOTIFY_CONFIG_KEY = f"{NAMESPACE}:{NOTIFY_KEY}"
AFTER_SIGNAL_SECONDS = 1.5
"""After a signal the runner kills the deploy soon: each service gets at most this much more."""
_STOPS: Mapping[int, notices.Stop] = {Exit.BLOCKED: "blocked", Exit.LOCKED: "locked"}
_STATES: Mapping[int, State] = {
    Exit.OK: "success", Exit.FAILED: "failure", Exit.ROLLED_BACK: "failure",
    Exit.ROLLBACK_FAILED: "failure", Exit.BLOCKED: "failure", Exit.LOCKED: "error",
}  # fmt: skip
"""The final status per exit code; a signal's is `error` (the deploy never reached a verdict)."""


def github_target(asked: bool | None, env: Mapping[str, str]) -> GitHubTarget | str | None:
    """Report to GitHub when asked (`--github-deployments`) or under Actions; a str says why it cannot."""
    if asked is False or (asked is None and env.get("GITHUB_ACTIONS") != "true"):
        return None
    return GitHubTarget.from_env(env)


def _digest(reference: str | None) -> str:
    """`sha256:0123456789ab`: enough of a digest to recognise it in GitHub's 140 characters."""
    return (reference or "").partition("@")[2][:19] or "unknown"


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _first_line(text: str) -> str:
    return (text.strip().splitlines() or [""])[0]


_R = TypeVar("_R")
_P = ParamSpec("_P")


def _never_fails(
    default: Callable[..., _R],
) -> Callable[[Callable[Concatenate[Reporter, _P], _R]], Callable[Concatenate[Reporter, _P], _R]]:
    """A reporting step that cannot fail the deploy: an unforeseen error is one warning (its type only:
    its text might hold the webhook URL), and `default(*args)` is returned."""

    def wrap(step: Callable[Concatenate[Reporter, _P], _R]) -> Callable[Concatenate[Reporter, _P], _R]:
        @functools.wraps(step)
        def guarded(self: Reporter, *args: _P.args, **kwargs: _P.kwargs) -> _R:
            try:
                return step(self, *args, **kwargs)
            except Exception as exc:
                self._out.write(
                    f"deploy: warning: reporting the deploy failed ({type(exc).__name__}); ignored\n"
                )
                return default(*args, **kwargs)

        return guarded

    return wrap


def _nothing(*_: Any) -> None:
    return None


def _unchanged(record: DeployRecord, *_: Any) -> DeployRecord:
    return record


class Reporter:
    """The deploy's reports to GitHub and to the webhook; every method is safe to call in any order."""

    def __init__(
        self,
        github: GitHubTarget | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._target = github
        self._transport = transport
        self._sleep = sleep or time.sleep
        self._now = now
        self._out: TextIO = sys.stderr
        self._stack = ""
        self._github: Deployments | None = None
        self._deployment: int | None = None
        self._webhook: Webhook | None = None
        self._format: Literal["json", "slack"] = "json"
        self._environment_url: str | None = None
        self._promote_from: str | None = None
        self._github_problem: str | None = None
        self._undelivered: list[str] = []
        self._posted = 0

    # --- the deploy's moments ---

    @_never_fails(_nothing)
    def start(self, stack: str, view: StackView, out: TextIO) -> None:
        """Read the webhook from the stack; create the GitHub deployment, `in_progress`."""
        self._out, self._stack = out, stack
        config = view.config
        self._promote_from = config.promote.from_stack if config is not None and config.promote else None
        first_health = config.apps[0].health.url if config is not None and config.apps else None
        self._environment_url = view.deploy.environment_url or first_health
        self._open_webhook(view)
        if self._target is None:
            return
        self._github = Deployments(self._target, transport=self._transport, sleep=self._sleep)
        payload = {
            "kind": "gitops-deploy/deployment",
            "stack": stack,
            "promoteFrom": self._promote_from,
            "apps": {
                app: {"digestBefore": view.good.get(app), "tag": view.tags.get(app), "pin": entry.pin}
                for app, entry in view.entries.items()
            },
        }
        try:
            self._deployment = self._github.create(stack, payload, f"gitops-deploy {stack}")
            self._github.status(self._deployment, "in_progress", "deploying", self._environment_url)
        except PostFailed as err:
            self._github_failed(err)

    @_never_fails(_nothing)
    def gate(self, events: Sequence[Event], verdict: Verdict | None) -> None:
        """The release gate's verdict: passed when `verdict` is None (the update succeeded)."""
        failed = {f.app: _first_line(f.report) or f.kind for f in (verdict.health if verdict else ())}
        passed = [e.app for e in events if e.phase == "health" and e.kind == "outputs" and e.app]
        verdicts = [AppVerdict(app, True) for app in dict.fromkeys(passed) if app not in failed]
        verdicts += [AppVerdict(app, False, reason) for app, reason in failed.items()]
        if verdict is None or failed:
            self.notify(notices.gate(self._stack, self._now(), verdicts))

    @_never_fails(_nothing)
    def soak(self, soaked: Sequence[tuple[str, SoakRecord]]) -> None:
        """The soak's verdict."""
        self.notify(notices.soak(self._stack, self._now(), soaked))

    @_never_fails(_unchanged)
    def finish(self, record: DeployRecord, code: int, rolled_back: Sequence[str]) -> DeployRecord:
        """The end: the final GitHub status and the last notifications; the record, with what failed."""
        if code >= 128:
            for client in (self._github, self._webhook):
                if client is not None:
                    client.allowance.seconds = min(
                        client.allowance.seconds, client.allowance.spent + AFTER_SIGNAL_SECONDS
                    )
        self._final_status(record, code, rolled_back)
        for notice in self._final_notices(record, code, rolled_back):
            self.notify(notice)
        self.close()
        return dataclasses.replace(record, warnings=(*record.warnings, *self.warnings()))

    # --- what each moment sends ---

    def _final_notices(self, record: DeployRecord, code: int, rolled_back: Sequence[str]) -> list[Notice]:
        at, stack = self._now(), self._stack
        reason = next((f.message for f in record.failures), "")
        after = {a.name: a.digest_after for a in record.apps}
        found: list[Notice] = []
        if code in _STOPS:
            return [notices.stopped(stack, at, _STOPS[code], reason or f"exit {code}", code)]
        if code >= 128:
            said = f"interrupted by {_signal_name(code - 128)}" + (f": {reason}" if reason else "")
            return [notices.stopped(stack, at, "signal", said, code)]
        if code in (Exit.ROLLED_BACK, Exit.ROLLBACK_FAILED):
            rollback = [f.message for f in record.failures if f.during == "rollback"]
            ok = code == Exit.ROLLED_BACK
            found.append(
                notices.rollback(stack, at, {a: after.get(a) for a in rolled_back}, ok, "" if ok else
                                 (rollback[0] if rollback else reason))
            )  # fmt: skip
        if code == Exit.FAILED:
            found.append(notices.failed(stack, at, record.cause, reason, code))
        if self._promote_from is not None:
            digests = {a: d for a, d in after.items() if d}
            found.append(notices.promotion(stack, at, self._promote_from, record.outcome, digests))
        return found

    def _final_status(self, record: DeployRecord, code: int, rolled_back: Sequence[str]) -> None:
        if self._github is None or self._deployment is None:
            return
        state = _STATES.get(code, "error")
        digests = ", ".join(f"{a.name} {_digest(a.digest_after)}" for a in record.apps if a.digest_after)
        reason = next((f.message for f in record.failures), record.cause or "")
        if code == Exit.OK:
            text = f"deployed {digests}" if digests else "deployed"
        elif code == Exit.ROLLED_BACK:
            restored = ", ".join(
                f"{a.name} {_digest(a.digest_after)}" for a in record.apps if a.name in rolled_back
            )
            text = f"rolled back ({record.cause}): restored {restored}; {reason}"
        else:
            text = f"{record.outcome} ({record.cause or 'stopped'}): {reason}"
        try:
            self._github.status(self._deployment, state, text, self._environment_url)
        except PostFailed as err:
            self._github_failed(err)

    # --- the webhook ---

    def _open_webhook(self, view: StackView) -> None:
        raw = view.values.get(NOTIFY_CONFIG_KEY)
        if raw is None:
            return
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        secrets = (
            [value] if isinstance(value, str) else [v for v in (value or {}).values() if isinstance(v, str)]
        )
        try:
            config = read_notify(value)
        except ConfigError as err:
            problems = "; ".join(redact(p, secrets) for p in err.problems)
            self._out.write(f"deploy: warning: no notifications: {problems}\n")
            return
        if config is None:
            return
        host = host_of(config.url)
        if NOTIFY_CONFIG_KEY not in view.secret_keys:
            self._out.write(
                f"deploy: warning: {NOTIFY_CONFIG_KEY} (the webhook to {host}) is stored in plain text in "
                f"the stack file, and its URL holds a token: `pulumi config set --secret {NOTIFY_CONFIG_KEY} "
                "'{\"url\": ...}'` encrypts it\n"
            )
        self._format = config.format
        self._webhook = Webhook(config.url, transport=self._transport, sleep=self._sleep)

    def notify(self, notice: Notice) -> None:
        """Post one notification; a failure is one warning line for the whole deploy."""
        if self._webhook is None:
            return
        try:
            self._webhook.post(notices.render(notice, self._format))
            self._posted += 1
        except PostFailed as err:
            if not self._undelivered:
                self._out.write(
                    f"deploy: warning: the {notice.event} notification was not delivered: {err}; the deploy "
                    "goes on\n"
                )
            self._undelivered.append(str(err))

    # --- GitHub ---

    def _github_failed(self, err: PostFailed) -> None:
        self._github_problem = str(err)
        self._out.write(
            f"deploy: warning: GitHub deployment statuses not reported: {err}; the deploy goes on "
            "without them\n"
        )
        if self._github is not None:
            self._github.close()
        self._github = None

    def warnings(self) -> list[str]:
        """What did not reach GitHub or the webhook, for the deploy record."""
        found = []
        if self._github_problem is not None:
            found.append(f"GitHub deployment statuses not reported: {self._github_problem}")
        if self._undelivered and self._webhook is not None:
            total = self._posted + len(self._undelivered)
            found.append(
                f"{len(self._undelivered)} of {total} notifications to {self._webhook.host} not delivered: "
                f"{self._undelivered[0]}"
            )
        return found

    def close(self) -> None:
        """Close the connections."""
        for client in (self._github, self._webhook):
            if client is not None:
                client.close()
