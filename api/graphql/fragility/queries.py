"""Root query fields of the fragility domain."""

from __future__ import annotations

import asyncio

import strawberry

from api.fragility import DEFAULT_SCORES
from api.gateway import client_error
from api.graphql.context import Info
from api.graphql.fragility.types import (
    FragilityExplanation,
    FragilityNodeType,
    FragilityScore,
    ScoreSetInfo,
    explanation_type,
)
from graph.errors import ContagionError
from graph.store.base import NodeNotFound

__all__ = ["FragilityQueries"]


def _check_top(info: Info, top: int, name: str = "top") -> None:
    cap = info.context.settings.max_page_size
    if not 1 <= top <= cap:
        raise client_error(f"'{name}' must be between 1 and {cap} (got {top})",
                           "BAD_USER_INPUT")


@strawberry.type
class FragilityQueries:
    @strawberry.field(description="The most fragile nodes by the stored scores (highest "
                                  "first, ties by id), of one type or of all scored types; "
                                  "'scores' names the score set (written by 'contagion "
                                  "score' or the rescore mutation).")
    async def fragility(self, info: Info, top: int = 20,
                        node_type: FragilityNodeType | None = None,
                        scores: str = DEFAULT_SCORES) -> list[FragilityScore]:
        _check_top(info, top)
        types = [node_type] if node_type is not None else list(FragilityNodeType)
        rows: list[FragilityScore] = []
        for t in types:
            try:
                held = await info.context.gateway.scores(scores, t.label)
            except KeyError as e:
                raise client_error(str(e.args[0]), "NOT_FOUND") from None
            rows += [FragilityScore(node_id=strawberry.ID(k), node_type=t, score=v)
                     for k, v in held.items()]
        rows.sort(key=lambda r: (-r.score, str(r.node_id)))
        return rows[:top]

    @strawberry.field(description="Why the fragility model scores a node (a protocol, pool, "
                                  "asset or account) as it does: its top contributing "
                                  "neighbours and features.")
    async def explain(self, info: Info, node_id: strawberry.ID, top: int = 10
                      ) -> FragilityExplanation:
        _check_top(info, top)
        service = info.context.fragility
        try:
            ex = await asyncio.to_thread(service.explain, str(node_id), top=top)
        except NodeNotFound as e:
            raise client_error(str(e), "NOT_FOUND") from None
        except ContagionError as e:
            code = "NOT_FOUND" if str(e).startswith("no node") else "BAD_USER_INPUT"
            raise client_error(str(e), code) from None
        return explanation_type(ex)

    @strawberry.field(description="The score sets the store holds.")
    async def score_sets(self, info: Info) -> list[ScoreSetInfo]:
        return [ScoreSetInfo.of(s) for s in await info.context.gateway.score_sets()]
