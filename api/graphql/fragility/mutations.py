"""Mutations of the fragility domain: rescoring the served store (admin only)."""

from __future__ import annotations

import asyncio

import strawberry

from api.fragility import DEFAULT_SCORES
from api.gateway import client_error
from api.graphql.context import Info
from api.graphql.fragility.types import ScoreSetInfo
from api.graphql.permissions import IsAdmin
from graph.errors import ContagionError

__all__ = ["FragilityMutations"]


@strawberry.type
class FragilityMutations:
    @strawberry.mutation(permission_classes=[IsAdmin],
                         description="Score every protocol, pool, asset and account of the "
                                     "served store with the server's fragility model and write "
                                     "the scores into the store as the set 'scores' (replacing "
                                     "it); needs the admin role.")
    async def rescore(self, info: Info, scores: str = DEFAULT_SCORES) -> ScoreSetInfo:
        try:
            done = await asyncio.to_thread(info.context.fragility.rescore, scores)
        except (ContagionError, ValueError) as e:
            raise client_error(str(e), "BAD_USER_INPUT") from None
        return ScoreSetInfo.of(done)
