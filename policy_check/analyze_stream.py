"""The pack started, then asked about each resource the program registers, while the program runs."""

from __future__ import annotations

import queue
from concurrent import futures

from policy_check.analyzer_client import Diagnostic, PolicyInput, PolicyPackServer


class AnalyzeStream:
    """Analyze calls made while their inputs arrive (`add`, from any thread): one thread starts the pack,
    then sends each input as it comes; `end` when all are in. A context manager: the thread ends with it."""

    def __init__(self, pack: PolicyPackServer) -> None:
        self._pack = pack
        self._inputs: queue.Queue[PolicyInput | None] = queue.Queue()
        self._added: list[str] = []  # appended from any thread
        self._thread = futures.ThreadPoolExecutor(1, thread_name_prefix="analyze")
        self._answers = self._thread.submit(self._send)

    def _send(self) -> dict[str, list[Diagnostic]]:
        """Start the pack (its start-up overlaps the caller's work), then answer each input by URN."""
        self._pack.start()
        # Unbounded get: `end` always puts the closing None, also when the caller fails.
        arrivals = iter(self._inputs.get, None)
        return {resource.urn: found for resource, found in self._pack.answers(arrivals)}

    def __enter__(self) -> AnalyzeStream:
        return self

    def __exit__(self, *exc: object) -> None:
        """The thread done (its own failure dropped when the caller failed: the caller's error shows)."""
        if not self._answers.done():
            self._inputs.put(None)
            futures.wait([self._answers], timeout=self._bound())
        self._thread.shutdown(wait=False)

    def add(self, resource: PolicyInput) -> None:
        self._added.append(resource.urn)
        self._inputs.put(resource)

    def end(self) -> dict[str, list[Diagnostic]]:
        """Every input is in: each one's diagnostics by URN; raises what starting or asking the pack raised
        (bounded)."""
        self._inputs.put(None)
        return self._answers.result(timeout=self._bound())

    def _bound(self) -> float:
        """`start`'s two waits and four calls, and one call per input."""
        return 2 * self._pack.start_timeout + self._pack.rpc_timeout * (4 + len(self._added))
