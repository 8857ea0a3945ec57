"""The one error a bad stack config raises, and the collector of its problems."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import pulumi

from model.errors import GitopsError, Problem
from model.text import terminal


class ConfigError(GitopsError, pulumi.RunError):
    """One error listing every bad key of the stack config; raised before any resource is registered."""

    def __init__(self, problems: Sequence[Problem | str]) -> None:
        # A key or value from the stack file may hold a line break or a control: one line each, always.
        self.problems = [terminal(str(p)) for p in problems]
        count = len(self.problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(
            f"invalid stack configuration ({count} problem{'' if count == 1 else 's'}):\n{lines}"
        )


class Reader:
    """Collects problems under one config namespace instead of raising at the first."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.problems: list[Problem | str] = []

    def problem(self, key: str, given: str, expected: str) -> None:
        """Record that `key` had `given` where `expected` was wanted."""
        self.problems.append(Problem(f"{self.namespace}:{key}", given, expected))

    def add(self, problem: Problem) -> None:
        """Record a problem whose key is not yet under the namespace."""
        self.problems.append(dataclasses.replace(problem, key=f"{self.namespace}:{problem.key}"))

    def raise_if_problems(self) -> None:
        """Raise one ConfigError for everything recorded."""
        if self.problems:
            raise ConfigError(self.problems)
