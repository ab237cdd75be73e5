"""Errors the user can act on.

Every problem with the user's input becomes an :class:`AutoMLInputError`, whose text is one line
naming the problem and the fix. The CLI prints it and exits 2; the studio shows it on the page.
"""
from __future__ import annotations


class AutoMLInputError(ValueError):
    """Bad input: the message names the problem, ``fix`` says what to do about it."""

    def __init__(self, problem: str, fix: str = "") -> None:
        self.problem = problem.rstrip(".")
        self.fix = fix.rstrip(".")
        super().__init__(str(self))

    def __str__(self) -> str:
        text = f"{self.problem}."
        if self.fix:
            text += f" Fix: {self.fix}."
        return " ".join(text.split())  # always one line, even if a column name holds a newline


class StoreLockedError(AutoMLInputError):
    """The DuckDB store is held by another process (usually a running studio)."""
