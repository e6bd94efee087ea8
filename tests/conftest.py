"""Shared fixtures: the real Neo4j server the suite talks to, and the two store backends.

The Neo4j server is started by ``scripts/neo4j-server start`` (``.ci/run`` and
``scripts/test`` do it); NEO4J_URI overrides where it listens. If it is not reachable every
Neo4j-backed test fails with a message saying so: it is never skipped.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from graph.store import GraphStore, MemoryStore

NEO4J_URI = os.environ.get("NEO4J_URI", "bolt://127.0.0.1:7687")


def pytest_report_header(config: pytest.Config) -> str:
    from graph.errors import StoreError
    from graph.store.neo4j import Neo4jStore

    try:
        with Neo4jStore(NEO4J_URI) as s:
            return f"neo4j: {s.server_version()} at {NEO4J_URI}"
    except StoreError as e:
        return f"neo4j: NOT REACHABLE at {NEO4J_URI} ({e}); Neo4j tests will fail"


@pytest.fixture(scope="session")
def neo4j_store() -> Iterator[GraphStore]:
    from graph.store.neo4j import Neo4jStore

    store = Neo4jStore(NEO4J_URI)  # raises StoreError, failing the test, if unreachable
    yield store
    store.clear()
    store.close()


@pytest.fixture(params=["memory", "neo4j"])
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[GraphStore]:
    """An empty store of each backend."""
    if request.param == "memory":
        yield MemoryStore(tmp_path_factory.mktemp("store") / "store.zip")
    else:
        s: GraphStore = request.getfixturevalue("neo4j_store")
        s.clear()
        yield s
