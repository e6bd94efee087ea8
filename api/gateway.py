"""The graph store as one request sees it.

Store calls are blocking (the Neo4j driver, networkx), so each runs on the server's store
thread pool, off the event loop, and may take at most ``timeout`` seconds: past that the
request gets a ``STORE_TIMEOUT`` error at once (on Neo4j the server also stops the query, see
:attr:`graph.store.neo4j.Neo4jStore.query_timeout`). One exception: on the embedded store,
whose calls are pure Python and gain nothing from threads but a handoff and a fight for the
GIL, the lookups by id (``nodes``, ``relationships``, ``health_factors``: work bounded by the
keys of one DataLoader batch, itself bounded by the page-size cap) run inline on the event
loop, which halves the server's time per request under load. Each call is counted, so a
request can report how many store queries it cost (``extensions.storeCalls``).

The store's own expected failures become client errors with a code: an unknown node
(``NOT_FOUND``), an argument the store rejects (``BAD_USER_INPUT``) and a timeout
(``STORE_TIMEOUT``). Anything else is a server fault, masked before it reaches the client.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Any, TypeVar

from graphql import GraphQLError

from graph.errors import StoreTimeout
from graph.store import (
    ContagionPath,
    GraphStore,
    MemoryStore,
    Neighbour,
    NodeFilter,
    NodeNotFound,
    NodeRecord,
    ScoreSet,
    StoreStats,
    Subgraph,
)
from graph.vocab import NodeLabel, RelType

__all__ = ["StoreGateway", "client_error"]

T = TypeVar("T")


def client_error(message: str, code: str) -> GraphQLError:
    """An error the client caused or may act on; shown as is, with ``extensions.code``."""
    return GraphQLError(message, extensions={"code": code})


class StoreGateway:
    """Counted, time-limited calls to ``store`` for one request."""

    def __init__(self, store: GraphStore, executor: Executor, timeout: float) -> None:
        self.store = store
        self.executor = executor
        self.timeout = timeout
        #: whether lookups by id run inline (the embedded store; see the module doc)
        self.inline_lookups = isinstance(store, MemoryStore)
        #: store calls made so far by this request
        self.calls = 0

    async def _call(self, fn: Callable[..., T], *args: Any, inline: bool = False,
                    **kwargs: Any) -> T:
        self.calls += 1
        try:
            if inline and self.inline_lookups:
                return fn(*args, **kwargs)
            loop = asyncio.get_running_loop()
            future = loop.run_in_executor(self.executor, functools.partial(fn, *args, **kwargs))
            return await asyncio.wait_for(future, self.timeout)
        except TimeoutError:
            raise client_error(f"store query ran past its {self.timeout:g} s limit",
                               "STORE_TIMEOUT") from None
        except StoreTimeout as e:
            raise client_error(str(e), "STORE_TIMEOUT") from None
        except NodeNotFound as e:
            raise client_error(str(e), "NOT_FOUND") from None
        except ValueError as e:
            raise client_error(str(e), "BAD_USER_INPUT") from None

    async def nodes(self, ids: Sequence[str], label: NodeLabel | None = None
                    ) -> dict[str, NodeRecord]:
        return await self._call(self.store.nodes, list(ids), label=label, inline=True)

    async def list_nodes(self, label: NodeLabel, *, where: NodeFilter, after: str | None,
                         before: str | None, limit: int, descending: bool
                         ) -> list[NodeRecord]:
        return await self._call(self.store.list_nodes, label, where=where, after=after,
                                before=before, limit=limit, descending=descending)

    async def relationships(self, ids: Sequence[str], rels: Sequence[RelType], direction: str
                            ) -> dict[str, list[Neighbour]]:
        return await self._call(self.store.relationships, list(ids), list(rels), direction,
                                inline=True)

    async def health_factors(self, ids: Sequence[str]) -> dict[str, float]:
        return await self._call(self.store.health_factors, list(ids), inline=True)

    async def dependencies(self, protocol: str, depth: int) -> Subgraph:
        return await self._call(self.store.dependencies, protocol, depth)

    async def system_graph(self) -> Subgraph:
        return await self._call(self.store.system_graph)

    async def contagion_paths(self, source: str, target: str, max_hops: int, limit: int
                              ) -> list[ContagionPath]:
        return await self._call(self.store.contagion_paths, source, target, max_hops,
                                limit=limit)

    async def scores(self, name: str, label: NodeLabel) -> dict[str, float]:
        return await self._call(self.store.scores, name, label=label)

    async def score_sets(self) -> list[ScoreSet]:
        return await self._call(self.store.score_sets)

    async def stats(self) -> StoreStats:
        return await self._call(self.store.stats)
