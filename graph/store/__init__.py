"""Graph stores: one contract (:class:`GraphStore`), two backends, opened by URI.

``memory:PATH`` (or ``memory:`` for a store that lives only in this process) opens the
embedded :class:`MemoryStore`; ``bolt://HOST:PORT``, ``neo4j://…`` and their ``+s``/``+ssc``
variants open a :class:`Neo4jStore` (credentials from NEO4J_USER / NEO4J_PASSWORD).
"""

from __future__ import annotations

from graph.store.base import (
    ContagionPath,
    GraphStore,
    Neighbour,
    NodeFilter,
    NodeNotFound,
    NodeRecord,
    NodeView,
    PositionHealth,
    ScoreSet,
    StoreStats,
    Subgraph,
    WriteSummary,
)
from graph.store.memory import MemoryStore

__all__ = [
    "ContagionPath",
    "GraphStore",
    "MemoryStore",
    "Neighbour",
    "NodeFilter",
    "NodeNotFound",
    "NodeRecord",
    "NodeView",
    "PositionHealth",
    "ScoreSet",
    "StoreStats",
    "Subgraph",
    "WriteSummary",
    "open_store",
]

_NEO4J_SCHEMES = ("bolt://", "bolt+s://", "bolt+ssc://", "neo4j://", "neo4j+s://", "neo4j+ssc://")


def open_store(uri: str) -> GraphStore:
    """Open the store named by ``uri``.

    >>> open_store("memory:").uri
    'memory:'
    >>> open_store("postgres://x")
    Traceback (most recent call last):
    ...
    ValueError: store URI must be memory:PATH or bolt://HOST:PORT / neo4j://HOST:PORT (got 'postgres://x')
    """
    if uri.startswith("memory:"):
        path = uri.removeprefix("memory:")
        return MemoryStore(path or None)
    if uri.startswith(_NEO4J_SCHEMES):
        from graph.store.neo4j import Neo4jStore

        return Neo4jStore(uri)
    raise ValueError(
        f"store URI must be memory:PATH or bolt://HOST:PORT / neo4j://HOST:PORT (got {uri!r})"
    )
