"""Graph stores: one contract (:class:`GraphStore`), two backends, opened by URI.

``memory:PATH`` (or ``memory:`` for a store that lives only in this process) opens the
embedded :class:`MemoryStore`; ``bolt://HOST:PORT``, ``neo4j://…`` and their ``+s``/``+ssc``
variants open a :class:`Neo4jStore` (credentials from NEO4J_USER / NEO4J_PASSWORD). A
``memory:PATH`` file must exist unless the store is opened to be written (``create=True``).
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


def open_store(uri: str, *, create: bool = False) -> GraphStore:
    """Open the store named by ``uri``.

    ``memory:PATH`` must name an existing store file unless ``create`` is true (for commands
    that write, such as ``contagion load`` and ``contagion ingest``: the first write then
    creates the file); a missing file raises :class:`~graph.errors.StoreError` naming it, so
    that a misspelt path is an error rather than an empty graph. A Neo4j database always
    exists once its server is reachable, so ``create`` makes no difference there.

    >>> open_store("memory:").uri
    'memory:'
    >>> open_store("memory:no/such/store.zip")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    graph.errors.StoreError: store file memory:no/such/store.zip does not exist (...)
    >>> open_store("memory:no/such/store.zip", create=True).stats().labels["Pool"]
    0
    >>> open_store("postgres://x")
    Traceback (most recent call last):
    ...
    ValueError: store URI must be memory:PATH or bolt://HOST:PORT / neo4j://HOST:PORT (got 'postgres://x')
    """
    if uri.startswith("memory:"):
        path = uri.removeprefix("memory:")
        return MemoryStore(path or None, create=create)
    if uri.startswith(_NEO4J_SCHEMES):
        from graph.store.neo4j import Neo4jStore

        return Neo4jStore(uri)
    raise ValueError(
        f"store URI must be memory:PATH or bolt://HOST:PORT / neo4j://HOST:PORT (got {uri!r})"
    )
