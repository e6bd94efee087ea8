"""One exception hierarchy for the whole engine (callers catch :class:`ContagionError`)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ContagionError",
    "Problem",
    "SnapshotFormatError",
    "SnapshotValidationError",
    "StoreError",
    "StoreTimeout",
]


class ContagionError(Exception):
    """Base class of every error the engine raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One rejected field of one record: where it is and what was wrong with it."""

    table: str
    record: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.message} for {self.table} {self.record}"


class SnapshotValidationError(ContagionError, ValueError):
    """A snapshot broke one or more validation rules; ``problems`` lists every one found."""

    shown = 20

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        lines = [str(p) for p in problems[: self.shown]]
        if len(problems) > self.shown:
            lines.append(f"... and {len(problems) - self.shown} more")
        noun = "problem" if len(problems) == 1 else "problems"
        super().__init__(f"invalid snapshot ({len(problems)} {noun}):\n  " + "\n  ".join(lines))


class SnapshotFormatError(ContagionError, ValueError):
    """A snapshot directory or file is missing, truncated or of an unknown schema version."""


class StoreError(ContagionError):
    """A graph store could not be opened, reached or written."""


class StoreTimeout(StoreError):
    """A store query ran past its time limit and was abandoned."""
