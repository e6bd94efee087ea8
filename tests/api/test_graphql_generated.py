"""The DataLoader bound and answers on a generated ecosystem, over real HTTP on both stores.

The bound: a page of positions with their health factor, account, pool and its protocol, and
collateral, debt and option legs with their assets costs 7 store calls whatever the page size
(the page, then health factors, accounts, pools and legs, then protocols and assets). The
server reports the count of every request in ``extensions.storeCalls``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from apiserver import ApiServer, serve_backend

from api.keys import KeyStore
from api.settings import ApiSettings
from graph.export import compile_system, health_factors
from graph.snapshot import Snapshot
from ingest.generate import generate_ecosystem

PAGE = """query($n: Int, $after: String, $below: Float) {
  positions(first: $n, after: $after, healthFactorBelow: $below) {
    edges { node {
      id healthFactor
      account { id kind }
      pool { id kind protocol { id name } }
      collateral { amount asset { id symbol price } }
      debt { amount asset { id symbol } }
      options { strike asset { id } } } }
    pageInfo { hasNextPage endCursor } } }"""


@pytest.fixture(scope="module")
def snapshot() -> Snapshot:
    return generate_ecosystem(2000, 3)


@pytest.fixture(scope="module", params=["memory", "neo4j"])
def big(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
        key_file: tuple[KeyStore, dict[str, str]], snapshot: Snapshot) -> Iterator[ApiServer]:
    yield from serve_backend(request, tmp_path_factory, key_file, snapshot,
                             ApiSettings(rate_limit=10_000, rate_burst=10_000))


def _calls(r: Any) -> int:
    return int(r.body["extensions"]["storeCalls"])


@pytest.mark.parametrize("n", [1, 25, 100])
def test_a_page_of_positions_costs_seven_store_calls(big: ApiServer, snapshot: Snapshot,
                                                     n: int) -> None:
    r = big.gql(PAGE, {"n": n})
    edges = r.data["positions"]["edges"]
    assert len(edges) == n
    assert _calls(r) == 7
    # and the page is right: every position's pool, account, legs and assets
    t = snapshot.tables
    positions = t["positions"].set_index("id")
    protocol_of = t["pools"].set_index("id")["protocol"]
    coll = t["position_collateral"].groupby("position")
    debt = t["position_debt"].groupby("position")
    price = t["assets"].set_index("id")["price"]
    want_ids = sorted(positions.index)[:n]
    assert [e["node"]["id"] for e in edges] == want_ids
    for e in edges:
        node = e["node"]
        row = positions.loc[node["id"]]
        assert node["account"]["id"] == row["account"]
        assert node["pool"]["id"] == row["pool"]
        assert node["pool"]["protocol"]["id"] == protocol_of[row["pool"]]
        want_c = (sorted(zip(coll.get_group(node["id"])["asset"],
                             coll.get_group(node["id"])["amount"], strict=True))
                  if node["id"] in coll.groups else [])
        assert [(c["asset"]["id"], c["amount"]) for c in node["collateral"]] == want_c
        assert all(c["asset"]["price"] == price[c["asset"]["id"]] for c in node["collateral"])
        want_d = (sorted(debt.get_group(node["id"])["asset"]) if node["id"] in debt.groups
                  else [])
        assert [d["asset"]["id"] for d in node["debt"]] == want_d


@pytest.mark.parametrize(("selection", "calls"), [
    ("id", 1),
    ("id pool { id }", 2),
    ("pool { protocol { id } }", 3),
    ("healthFactor pool { protocol { id } }", 4),
    ("collateral { amount } debt { amount } options { strike }", 2),
    ("collateral { asset { id } } debt { asset { symbol } }", 3),
])
def test_store_calls_follow_the_selection_not_the_page(big: ApiServer, selection: str,
                                                       calls: int) -> None:
    for n in (3, 60):
        r = big.gql(f"{{ positions(first: {n}) {{ edges {{ node {{ {selection} }} }} }} }}")
        assert len(r.data["positions"]["edges"]) == n
        assert _calls(r) == calls


def test_positions_below_a_health_factor_match_the_compiled_arrays(big: ApiServer,
                                                                   snapshot: Snapshot) -> None:
    system = compile_system(snapshot)
    hf = health_factors(system)
    want = dict(sorted((str(p), float(h)) for p, h in zip(system.position_ids, hf,
                                                          strict=True) if h < 1.2))
    assert len(want) > 300  # the generator puts many positions near liquidation
    got: dict[str, float] = {}
    after = None
    pages = 0
    while True:
        page = big.gql(PAGE, {"n": 100, "after": after, "below": 1.2}).data["positions"]
        got.update((e["node"]["id"], e["node"]["healthFactor"]) for e in page["edges"])
        pages += 1
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert pages == -(-len(want) // 100)
    assert list(got) == list(want)
    np.testing.assert_allclose(list(got.values()), list(want.values()), rtol=1e-9)


def test_pools_and_dependencies_match_the_store(big: ApiServer, snapshot: Snapshot) -> None:
    pools = snapshot.tables["pools"]
    for protocol in snapshot.tables["protocols"]["id"]:
        d = big.gql("query($p: ID!) { pools(protocol: $p, first: 100) { edges { node { id } } }"
                    " dependencies(protocol: $p, depth: 3) { nodes { id } "
                    "relationships { source type target } } }", {"p": protocol}).data
        assert [e["node"]["id"] for e in d["pools"]["edges"]] == sorted(
            pools.loc[pools["protocol"] == protocol, "id"])
        sub = big.store.dependencies(protocol, 3)
        assert [n["id"] for n in d["dependencies"]["nodes"]] == list(sub.nodes)
        assert [(r["source"], r["type"], r["target"])
                for r in d["dependencies"]["relationships"]] == sub.relationships
