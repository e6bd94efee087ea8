"""Store query timeouts over real HTTP on both stores (a module of its own: its server holds
a generated ecosystem, not the tiny one the other modules' servers hold)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from apiserver import ApiServer, serve_backend

from api.keys import KeyStore
from api.settings import ApiSettings


@pytest.fixture(scope="module", params=["memory", "neo4j"])
def hurried(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
            key_file: tuple[KeyStore, dict[str, str]]) -> Iterator[ApiServer]:
    """A server whose store queries may take a microsecond, over a generated ecosystem where
    enumerating 8-hop contagion paths takes tens of milliseconds."""
    from ingest.generate import generate_ecosystem

    yield from serve_backend(request, tmp_path_factory, key_file, generate_ecosystem(400, 5),
                             ApiSettings(store_timeout_s=1e-6))


def test_store_timeout(hurried: ApiServer) -> None:
    r = hurried.gql('{ contagionPaths(from: "ETH", to: "isolend", maxHops: 8, limit: 100) '
                    '{ hops } }')
    assert r.status == 200
    assert r.error == ("store query ran past its 1e-06 s limit", "STORE_TIMEOUT")
    assert r.body["data"] is None
    # what needs no store query still answers
    assert hurried.gql("{ me { role } }").data == {"me": {"role": "VIEWER"}}
