"""One error vocabulary: every error the project raises on purpose, and the one shape of a bad input."""

from __future__ import annotations

from dataclasses import dataclass


class GitopsError(Exception):
    """An error raised on purpose: its message is one line (or one block) a person can act on, never a
    traceback. Every module's own errors derive from it, so an entry point catches this one class."""


@dataclass(frozen=True)
class Problem:
    """One bad input: the key or resource it is under, what was given, and what is expected."""

    key: str
    given: str
    expected: str

    def __str__(self) -> str:
        return f"{self.key}: got {self.given}; expected {self.expected}"
