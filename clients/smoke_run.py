"""Run a built image alone with the local Docker Engine and probe its health endpoint as the gate does; what
it starts is always removed (docs/engine-rules.md#the-smoke-run)."""

from __future__ import annotations

import contextlib
import re
import secrets
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import docker
import docker.errors
import httpx
import requests.exceptions

from clients import health_probe
from model.health_settings import HealthSettings, worst_case_seconds
from model.http_origin import redact
from model.text import clip, terminal

NAME_PREFIX = "gitops-smoke-"
"""Every container and network a smoke run creates is named with this prefix..."""
LABEL = "io.gitops-deploy.smoke"
"""...and carries this label (its value: the app): `docker ps -a --filter label=` finds a leftover."""
EXPIRES_LABEL = f"{LABEL}.expires"
"""Unix time after which the run that created it is over: a later run removes what a killed one left."""
LOG_LINES = 10
"""The container's last log lines a failure quotes..."""
LOG_LINE_CHARS = 200
"""...each cut to this many characters."""
LOG_BYTES = 64 * 1024
"""The most of a container's last log lines read: far more than LOG_LINES lines of LOG_LINE_CHARS."""
CLEANUP_RESERVE_S = 5.0
"""The part of `timeout_seconds` kept for removing the container and the network (a quarter at most)."""
ENGINE_TIMEOUT_S = 30
"""Longest wait for one Engine API answer during a smoke run."""
_POLL_S = 0.25
_SIGNALS = (signal.SIGINT, signal.SIGTERM)

PASSED = "passed"
NOT_STARTED = "did not start"
EXITED = "exited"
WRONG_STATUS = "wrong status"
TOO_SLOW = "too slow"
NO_ANSWER = "never answered"
NO_TIME = "out of time"
LEFT_BEHIND = "not removed"


@dataclass(frozen=True)
class SmokeSpec:
    """One app's smoke run: its image, how it is started, and the gate's settings its endpoint must meet."""

    app: str
    image: str
    """The built image's ID or name."""
    port: int
    """The port the container listens on, published on 127.0.0.1."""
    health: HealthSettings
    """The gate's settings; the path and query of its URL are probed on the published port."""
    env: Mapping[str, str] = field(default_factory=dict)
    """Extra environment of the container; its values are secrets, never shown."""
    headers: Mapping[str, str] = field(default_factory=dict)
    """The health check's plain headers, sent with each probe; never shown."""
    timeout_seconds: float = 60.0
    """Bound on the whole run: start, wait, probes and clean-up."""

    def secrets(self) -> list[str]:
        """Every value a report must not show."""
        return [*self.env.values(), *self.headers.values()]


@dataclass(frozen=True)
class SmokeResult:
    """What one smoke run found: passed, or the cause, the exit code and the last log lines."""

    passed: bool
    cause: str
    """PASSED, or NOT_STARTED, EXITED, WRONG_STATUS, TOO_SLOW, NO_ANSWER, NO_TIME, LEFT_BEHIND."""
    detail: str
    """One line on what happened, secrets scrubbed."""
    exit_code: int | None = None
    logs: tuple[str, ...] = ()
    """The container's last LOG_LINES lines, each cut and scrubbed (only on a failure)."""
    seconds: float = 0.0


def local_url(url: str, host_port: int) -> str:
    """The health URL's path and query on 127.0.0.1:`host_port`, over http."""
    parsed = httpx.URL(url)
    return str(httpx.URL(scheme="http", host="127.0.0.1", port=host_port, raw_path=parsed.raw_path))


def run_smoke(
    client: docker.DockerClient, spec: SmokeSpec, *, clock: Callable[[], float] = time.monotonic
) -> SmokeResult:
    """Start `spec.image` on a network of its own, wait for its endpoint, probe it as the gate does, and
    remove the container and the network whatever happens (Ctrl-C and SIGTERM included)."""
    start = clock()
    deadline = start + spec.timeout_seconds - min(CLEANUP_RESERVE_S, spec.timeout_seconds / 4)
    name = f"{NAME_PREFIX}{re.sub(r'[^a-z0-9-]', '-', spec.app.lower())[:40]}-{secrets.token_hex(4)}"
    labels = {LABEL: spec.app, EXPIRES_LABEL: str(int(time.time() + spec.timeout_seconds))}
    run = _Run(client, spec, name, labels, deadline, clock)
    try:
        result = run.result()
    finally:
        left = remove(client, name)
    if left:
        cause = LEFT_BEHIND if result.passed else result.cause
        detail = f"{result.detail}; clean-up failed: {left}"
        result = replace(result, passed=False, cause=cause, detail=detail)
    hidden = spec.secrets()
    detail = terminal(redact(result.detail, hidden))
    return replace(result, detail=detail, logs=tuple(scrub(result.logs, hidden)), seconds=clock() - start)


class _Run:
    """The steps of one run, each bounded by `deadline`."""

    def __init__(
        self,
        client: docker.DockerClient,
        spec: SmokeSpec,
        name: str,
        labels: dict[str, str],
        deadline: float,
        clock: Callable[[], float],
    ) -> None:
        self.api, self.spec, self.name, self.labels = client.api, spec, name, labels
        self.deadline, self.clock = deadline, clock

    def result(self) -> SmokeResult:
        try:
            host_port = self._start()
        except docker.errors.APIError as exc:
            exited = self._exited()
            if exited is not None:
                return exited
            return SmokeResult(False, NOT_STARTED, f"the engine refused to start it: {_explain(exc)}")
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            return SmokeResult(False, NOT_STARTED, f"the engine failed: {_explain(exc)}")
        if host_port is None:
            return self._exited() or SmokeResult(False, NOT_STARTED, "the engine published no port")
        url = local_url(self.spec.health.url, host_port)
        waited = self._wait(url)
        if waited is not None:
            return waited
        return self._probe(url)

    def _start(self) -> int | None:
        """Create the network and the container, start it; the published host port."""
        api, spec = self.api, self.spec
        api.create_network(self.name, driver="bridge", labels=self.labels)
        host_config = api.create_host_config(
            port_bindings={spec.port: ("127.0.0.1", None)}, network_mode=self.name
        )
        api.create_container(
            spec.image,
            name=self.name,
            environment=dict(spec.env),
            labels=self.labels,
            ports=[spec.port],
            host_config=host_config,
            detach=True,
        )
        api.start(self.name)
        ports = (api.inspect_container(self.name).get("NetworkSettings") or {}).get("Ports") or {}
        bound = ports.get(f"{spec.port}/tcp") or []
        return int(bound[0]["HostPort"]) if bound else None

    def _exited(self) -> SmokeResult | None:
        """The failure of a container that is no longer running, with its exit code and last logs."""
        try:
            state = self.api.inspect_container(self.name).get("State") or {}
        except docker.errors.NotFound:
            return None
        if state.get("Running"):
            return None
        code = int(state.get("ExitCode") or 0)
        why = "killed: out of memory" if state.get("OOMKilled") else f"exit code {code}"
        error = f" ({state['Error']})" if state.get("Error") else ""
        detail = f"the container stopped before its endpoint passed: {why}{error}"
        return SmokeResult(False, EXITED, detail, code, self._logs())

    def _logs(self) -> tuple[str, ...]:
        # Streamed and cut at LOG_BYTES: the last lines of a container may be of any length.
        chunks: list[bytes] = []
        try:
            stream = self.api.logs(
                self.name, stdout=True, stderr=True, tail=LOG_LINES, stream=True, follow=False
            )
            try:
                for chunk in stream:
                    chunks.append(chunk)
                    if sum(map(len, chunks)) >= LOG_BYTES:
                        break
            finally:
                stream.close()
        except (docker.errors.DockerException, requests.exceptions.RequestException, OSError):
            return ()
        text = b"".join(chunks)[:LOG_BYTES].decode("utf-8", "replace")
        return tuple(text.splitlines()[-LOG_LINES:])

    def _failed(self, cause: str, detail: str) -> SmokeResult:
        return self._exited() or SmokeResult(False, cause, detail, None, self._logs())

    def _wait(self, url: str) -> SmokeResult | None:
        """Until the endpoint answers any HTTP response: None; or the failure (exited, never answered)."""
        timeout = self.spec.health.timeout_seconds
        headers = dict(self.spec.headers)
        while True:
            exited = self._exited()
            if exited is not None:
                return exited
            left = self.deadline - self.clock()
            if left <= 0:
                limit = f"{self.spec.timeout_seconds:g} s of smoke.timeoutSeconds"
                never = (
                    f"{_where(url)} on port {self.spec.port} never answered HTTP in the {limit}: "
                    "does the app listen on that port?"
                )
                return self._failed(NO_ANSWER, never)
            # Its headers are enough: the body, of any size, is never read here.
            with (
                contextlib.suppress(httpx.HTTPError),
                httpx.Client(timeout=min(timeout, left), follow_redirects=False) as http,
                http.stream("GET", url, headers=headers),
            ):
                return None
            time.sleep(min(_POLL_S, max(self.deadline - self.clock(), 0)))

    def _probe(self, url: str) -> SmokeResult:
        """The gate's probes, as many attempts as the time left allows (at least its success threshold)."""
        gate = self.spec.health
        left = self.deadline - self.clock()
        attempts = gate.attempts
        while attempts > gate.success_threshold and _worst(gate, attempts) > left:
            attempts -= 1
        if _worst(gate, attempts) > left:
            return self._failed(
                NO_TIME,
                f"{left:.1f} s were left for the gate's {attempts} passing probes, which may take up to "
                f"{_worst(gate, attempts):.1f} s: raise smoke.timeoutSeconds",
            )
        settings = replace(gate, url=url, attempts=attempts, verify_tls=False)
        outcome = health_probe.check_endpoint(settings, self.spec.headers)
        if outcome.passed:
            return SmokeResult(True, PASSED, f"{outcome.headline()}; {outcome.verdict}")
        last = outcome.probes[-1] if outcome.probes else None
        causes = {
            health_probe.WRONG_STATUS: WRONG_STATUS,
            health_probe.HTTP_5XX: WRONG_STATUS,
            health_probe.TOO_SLOW: TOO_SLOW,
        }
        cause = causes.get(last.outcome, NO_ANSWER) if last else NO_ANSWER
        probes = "; ".join(p.short() for p in outcome.probes)
        detail = (
            f"{_where(url)}: expected HTTP {gate.expected_status} within {gate.max_latency_ms:g} ms, "
            f"{gate.success_threshold} in a row; probes: {probes}"
        )
        return self._failed(cause, detail)


def _worst(gate: HealthSettings, attempts: int) -> float:
    return worst_case_seconds(attempts, gate.interval_seconds, gate.timeout_seconds)


def _where(url: str) -> str:
    """`GET /healthz (port 8080)`: the probed path, not the ephemeral host port."""
    parsed = httpx.URL(url)
    return f"GET {parsed.raw_path.decode('ascii', 'replace')}"


def _explain(exc: BaseException) -> str:
    text = getattr(exc, "explanation", None) or str(exc)
    return clip(" ".join(str(text).split()), 300)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Ctrl-C and SIGTERM wait until the clean-up is done, then act as they would have (main thread only).

    Python runs signal handlers in the main thread whichever thread the kernel picked, so the handlers are
    swapped for ones that only record the signal, rather than the main thread's mask being changed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    got: list[int] = []
    previous = {s: signal.signal(s, lambda n, _: got.append(n)) for s in _SIGNALS}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, signal.SIG_DFL if handler is None else handler)
        if got:
            signal.raise_signal(got[0])


def remove(client: docker.DockerClient, name: str) -> str:
    """Remove the container and the network called `name`; what could not be removed ("" when all was)."""
    problems = []
    with _signals_held():
        for what, call in (
            ("container", lambda: client.api.remove_container(name, force=True, v=True)),
            ("network", lambda: client.api.remove_network(name)),
        ):
            try:
                call()
            except docker.errors.NotFound:
                pass
            except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
                problems.append(f"{what} {name}: {_explain(exc)}")
    return "; ".join(problems)


def leftovers(client: docker.DockerClient) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(containers, networks) any smoke run created and that still exist."""
    found = {"label": [LABEL]}
    return client.api.containers(all=True, filters=found), client.api.networks(filters=found)


def sweep(client: docker.DockerClient, now: float | None = None) -> list[str]:
    """Remove what a smoke run killed before its clean-up (SIGKILL, a crash) left past its expiry."""
    now = time.time() if now is None else now
    containers, networks = leftovers(client)
    names = {str(c["Names"][0]).lstrip("/"): c.get("Labels") or {} for c in containers}
    names.update({str(n["Name"]): n.get("Labels") or {} for n in networks})
    expired = [name for name, labels in names.items() if _expired(labels, now)]
    for name in expired:
        remove(client, name)
    return expired


def _expired(labels: Mapping[str, str], now: float) -> bool:
    try:
        return float(labels.get(EXPIRES_LABEL, "")) < now
    except ValueError:
        return False


def scrub(lines: Iterable[str], hidden: Iterable[str]) -> list[str]:
    """Log lines with every hidden value and URL credential replaced, each cut to LOG_LINE_CHARS."""
    values = list(hidden)
    return [clip(terminal(redact(line, values)), LOG_LINE_CHARS) for line in lines]
