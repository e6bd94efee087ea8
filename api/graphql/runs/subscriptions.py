"""Subscriptions of the runs domain (over websockets, protocol graphql-transport-ws)."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry

from api.gateway import client_error
from api.graphql.context import Info
from api.graphql.runs.types import ScenarioRun, run_type
from api.runs import RunNotFound

__all__ = ["RunSubscriptions"]


@strawberry.type
class RunSubscriptions:
    @strawberry.subscription(description="A run's state now and at each change of its "
                                         "progress or status, until it has finished (the "
                                         "last update carries the final status).")
    async def scenario_progress(self, info: Info, id: strawberry.ID
                                ) -> AsyncGenerator[ScenarioRun, None]:
        runs = info.context.runs
        if runs.unavailable is not None:
            raise client_error(runs.unavailable, "UNAVAILABLE")
        try:
            runs.require(str(id))
        except RunNotFound as e:
            raise client_error(str(e), "NOT_FOUND") from None
        async for rec in runs.watch(str(id)):
            yield run_type(rec)
