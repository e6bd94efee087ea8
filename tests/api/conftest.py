"""Fixtures of the API tests: servers over real stores (see ``tests/apiserver.py``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from apiserver import NEO4J_URI, ApiServer, make_keys, serve_backend
from helpers import tiny_snapshot

from api.keys import KeyStore

# Test modules here that write `from conftest import NEO4J_URI` get this module: the same
# server address as tests/conftest.py's.
__all__ = ["NEO4J_URI", "api", "key_file"]


@pytest.fixture(scope="session")
def key_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[KeyStore, dict[str, str]]:
    return make_keys(tmp_path_factory.mktemp("keys") / "api-keys.json")


@pytest.fixture(scope="module", params=["memory", "neo4j"])
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
        key_file: tuple[KeyStore, dict[str, str]]) -> Iterator[ApiServer]:
    """A server with default settings over the tiny ecosystem, on each backend."""
    yield from serve_backend(request, tmp_path_factory, key_file, tiny_snapshot())
