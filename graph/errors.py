"""One exception hierarchy for the whole engine (callers catch :class:`ContagionError`)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ContagionError",
    "ConvergenceError",
    "IngestError",
    "Problem",
    "SnapshotFormatError",
    "SnapshotValidationError",
    "StoreError",
    "StoreTimeout",
]


class ContagionError(Exception):
    """Base class of every error the engine raises on purpose."""


class ConvergenceError(ContagionError, ArithmeticError):
    """An iterative solver stopped without converging; the message names the solver, its
    inputs, the iterations run and the residual left."""


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


class IngestError(ContagionError, ValueError):
    """A source could not be ingested: a rejected input file (naming the file, the 1-based data
    row or JSON path, and the field), an unreachable or inconsistent chain, a bad ingest
    configuration. Nothing is written to a store when it is raised."""

    def __init__(self, message: str, *, source: str | None = None, row: int | str | None = None,
                 field: str | None = None) -> None:
        self.source, self.row, self.field = source, row, field
        where = []
        if source is not None:
            where.append(source)
        if row is not None:
            where.append(f"row {row}" if isinstance(row, int) else str(row))
        if field is not None:
            where.append(f"field '{field}'")
        super().__init__(": ".join([", ".join(where), message]) if where else message)


class StoreTimeout(StoreError):
    """A store query ran past its time limit and was abandoned."""
