"""Root query fields of the runs domain: the runs (newest first), one run, two compared."""

from __future__ import annotations

import asyncio
import base64
import binascii

import strawberry

from api.gateway import client_error
from api.graphql.context import Info
from api.graphql.pagination import Connection, Edge, PageInfo
from api.graphql.runs.types import RunComparison, ScenarioRun, comparison_type, run_type
from api.runs import RunNotFound, RunRecord, RunStatus

__all__ = ["RunQueries", "decode_run_cursor", "encode_run_cursor"]

_PREFIX = "run:"


def encode_run_cursor(run_id: str) -> str:
    return base64.urlsafe_b64encode(f"{_PREFIX}{run_id}".encode()).decode("ascii")


def decode_run_cursor(name: str, cursor: str) -> str:
    """The run id in ``cursor`` (argument ``name``), which must come from ``scenarioRuns``."""
    shown = cursor if len(cursor) <= 40 else cursor[:40] + "..."
    try:
        text = base64.urlsafe_b64decode(cursor.encode("ascii")).decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError):
        text = ""
    if not text.startswith(_PREFIX):
        raise client_error(f"'{name}' must be a cursor returned by scenarioRuns "
                           f"(got {shown!r})", "BAD_USER_INPUT")
    return text.removeprefix(_PREFIX)


def _page(runs: list[RunRecord], *, first: int | None, after: str | None, last: int | None,
          before: str | None, max_page: int, default_page: int
          ) -> Connection[ScenarioRun]:
    """A page of ``runs`` (newest first): ``first`` after ``after`` pages toward older runs,
    ``last`` before ``before`` toward newer ones; cursors are keys, so runs added between
    two requests never shift a page."""
    if first is not None and last is not None:
        raise client_error("pass 'first' (forward) or 'last' (backward), not both",
                           "BAD_USER_INPUT")
    for name, n in (("first", first), ("last", last)):
        if n is not None and not 0 <= n <= max_page:
            raise client_error(f"'{name}' must be between 0 and {max_page} (got {n})",
                               "BAD_USER_INPUT")
    if after is not None:
        key = decode_run_cursor("after", after)
        runs = [r for r in runs if r.id < key]
    if before is not None:
        key = decode_run_cursor("before", before)
        runs = [r for r in runs if r.id > key]
    if last is not None:
        more = len(runs) > last
        page = runs[len(runs) - last:] if last else []
        has_next, has_previous = False, more
    else:
        size = first if first is not None else default_page
        more = len(runs) > size
        page = runs[:size]
        has_next, has_previous = more, False
    edges = [Edge(cursor=encode_run_cursor(r.id), node=run_type(r)) for r in page]
    return Connection(edges=edges, page_info=PageInfo(
        has_next_page=has_next, has_previous_page=has_previous,
        start_cursor=edges[0].cursor if edges else None,
        end_cursor=edges[-1].cursor if edges else None))


@strawberry.type
class RunQueries:
    @strawberry.field(description="Scenario runs, newest first, optionally of one status.")
    def scenario_runs(self, info: Info, status: RunStatus | None = None,
                      first: int | None = None, after: str | None = None,
                      last: int | None = None, before: str | None = None
                      ) -> Connection[ScenarioRun]:
        s = info.context.settings
        return _page(info.context.runs.list(status), first=first, after=after, last=last,
                     before=before, max_page=s.max_page_size, default_page=s.default_page_size)

    @strawberry.field(description="One run by id; null if there is none.")
    def scenario_run(self, info: Info, id: strawberry.ID) -> ScenarioRun | None:
        rec = info.context.runs.get(str(id))
        return None if rec is None else run_type(rec)

    @strawberry.field(description="Run b against run a (b - a): metric differences with "
                                  "z-scores and which inputs differ. Both must have "
                                  "succeeded.")
    async def compare_runs(self, info: Info, a: strawberry.ID, b: strawberry.ID
                           ) -> RunComparison:
        runs = info.context.runs
        try:
            ra, rb = runs.require(str(a)), runs.require(str(b))
            diff = await asyncio.to_thread(runs.compare, str(a), str(b))
        except RunNotFound as e:
            raise client_error(str(e), "NOT_FOUND") from None
        except ValueError as e:
            raise client_error(str(e), "BAD_USER_INPUT") from None
        return comparison_type(ra, rb, diff)
