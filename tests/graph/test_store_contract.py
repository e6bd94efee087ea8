"""The store contract, run against every backend (the embedded store and a real Neo4j).

Every expected value here is worked out by hand from the tiny ecosystem in ``helpers.py``.
"""

from __future__ import annotations

import math

import pytest
from helpers import TINY_MANIFEST, tiny_records, tiny_snapshot
from hypothesis import HealthCheck, given, settings
from strategies import snapshots

from graph.errors import StoreError
from graph.export import compile_system
from graph.snapshot import Snapshot
from graph.store import (
    ContagionPath,
    GraphStore,
    MemoryStore,
    Neighbour,
    NodeFilter,
    NodeNotFound,
    NodeRecord,
)
from graph.vocab import NodeLabel, RelType


def test_write_then_read_is_identity(store: GraphStore) -> None:
    snap = tiny_snapshot()
    summary = store.write_snapshot(snap)
    assert summary.added["Position"] == 4
    assert summary.added["COLLATERAL"] == 5
    back = store.read_snapshot()
    assert back.equals(snap), snap.describe_difference(back)


def test_empty_store_reads_empty_snapshot(store: GraphStore) -> None:
    assert store.read_snapshot().equals(Snapshot.empty())
    assert sum(store.stats().labels.values()) == 0


def test_rewrite_changes_nothing(store: GraphStore) -> None:
    snap = tiny_snapshot()
    store.write_snapshot(snap)
    before = store.stats()
    again = store.write_snapshot(snap)
    assert not again.changed
    assert store.stats() == before


def test_stats_counts_every_label_and_type(store: GraphStore) -> None:
    store.write_snapshot(tiny_snapshot())
    st = store.stats()
    assert st.labels == {"Protocol": 4, "Asset": 3, "Pool": 4, "Oracle": 3, "Account": 3,
                         "Position": 4}
    assert st.relationships == {
        "OPERATES": 4, "ACCEPTS_COLLATERAL": 3, "LENDS": 2, "HOLDS": 3, "ISSUED_BY": 1,
        "PEGGED_TO": 1, "PRICED_BY": 3, "READS": 1, "DEPOSITS_IN": 1, "OWNS": 4, "IN": 4,
        "COLLATERAL": 5, "DEBT": 2, "OPTION": 2}


def test_later_snapshot_updates_adds_and_removes(store: GraphStore) -> None:
    store.write_snapshot(tiny_snapshot())
    rec = tiny_records()
    # p1 repays half its debt; p3 closes; p5 opens; stETH loses its issuer; a new HOLDS row.
    next(r for r in rec["position_debt"] if r["position"] == "p1")["amount"] = 5000.0
    rec["positions"] = [r for r in rec["positions"] if r["id"] != "p3"]
    rec["position_collateral"] = [r for r in rec["position_collateral"] if r["position"] != "p3"]
    rec["positions"].append({"id": "p5", "account": "alice", "pool": "aave:main"})
    rec["position_collateral"].append({"position": "p5", "asset": "stETH", "amount": 3.0})
    next(r for r in rec["assets"] if r["id"] == "stETH")["issuer"] = None
    rec["pool_holdings"].append({"pool": "lido:staking", "asset": "stETH", "amount": 1.0})
    new = Snapshot.from_records(rec, TINY_MANIFEST)
    summary = store.write_snapshot(new)
    assert summary.updated["DEBT"] == 1
    assert summary.updated["Asset"] == 1
    assert summary.removed["Position"] == 1
    assert summary.removed["COLLATERAL"] == 1
    assert summary.added["Position"] == 1
    assert summary.added["HOLDS"] == 1
    back = store.read_snapshot()
    assert back.equals(new), new.describe_difference(back)
    assert store.stats().relationships["ISSUED_BY"] == 0
    assert store.stats().relationships["OWNS"] == 4


def test_node_with_neighbours(store: GraphStore) -> None:
    store.write_snapshot(tiny_snapshot())
    v = store.node("p2")
    assert v.label == "Position"
    assert v.degree == 5
    assert [(n.rel, n.direction, n.id, n.label) for n in v.neighbours] == [
        ("COLLATERAL", "out", "ETH", "Asset"),
        ("COLLATERAL", "out", "stETH", "Asset"),
        ("DEBT", "out", "USDC", "Asset"),
        ("IN", "out", "aave:main", "Pool"),
        ("OWNS", "in", "bob", "Account"),
    ]
    assert dict(v.neighbours[1].properties) == {"amount": 10.0}
    a = store.node("stETH", neighbour_limit=2)
    assert a.properties["price"] == 1980.0 and a.properties["decimals"] == 18
    assert a.degree == 6 and len(a.neighbours) == 2
    assert [(n.rel, n.direction, n.id) for n in a.neighbours] == [
        ("ACCEPTS_COLLATERAL", "in", "aave:main"), ("COLLATERAL", "in", "p2")]
    legs = store.node("p4").neighbours
    assert [(n.rel, dict(n.properties).get("kind")) for n in legs[2:4]] == [
        ("OPTION", "call"), ("OPTION", "put")]
    with pytest.raises(NodeNotFound, match="no node with id 'nope'"):
        store.node("nope")


def test_dependencies_to_depth(store: GraphStore) -> None:
    store.write_snapshot(tiny_snapshot())
    d1 = store.dependencies("aave", 1)
    assert d1.nodes == {"aave": "Protocol", "aave:main": "Pool"}
    assert d1.relationships == [("aave", "OPERATES", "aave:main")]
    d2 = store.dependencies("aave", 2)
    assert set(d2.nodes) == {"aave", "aave:main", "ETH", "USDC", "stETH"}
    assert len(d2.relationships) == 5  # OPERATES + 2 ACCEPTS_COLLATERAL + 2 LENDS
    d4 = store.dependencies("aave", 4)
    # depth 3 adds lido (ISSUED_BY) and the three oracles (PRICED_BY); depth 4 the pools
    # that lido operates and deposits in and that the stETH oracle reads; positions and
    # accounts are never part of it.
    assert set(d4.nodes) == {"aave", "aave:main", "ETH", "USDC", "stETH", "lido",
                             "oracle:ETH", "oracle:USDC", "oracle:stETH", "curve:steth-eth",
                             "lido:staking"}
    assert ("oracle:stETH", "READS", "curve:steth-eth") in d4.relationships
    assert store.dependencies("aave", 0).nodes == {"aave": "Protocol"}
    with pytest.raises(NodeNotFound, match="'ETH' is not a protocol"):
        store.dependencies("ETH", 2)
    with pytest.raises(ValueError, match=r"'depth' must be an integer in \[0, 8\] \(got 9\)"):
        store.dependencies("aave", 9)


def test_contagion_paths(store: GraphStore) -> None:
    store.write_snapshot(tiny_snapshot())
    paths = store.contagion_paths("lido", "aave", 4)
    assert paths == [ContagionPath(("lido", "stETH", "aave:main", "aave"),
                                   ("ISSUED_BY", "ACCEPTS_COLLATERAL", "OPERATES"))]
    assert store.contagion_paths("lido", "aave", 2) == []
    # From the Curve pool to Aave in 4 hops: Lido's deposit in the pool backs stETH, and the
    # stETH oracle reads the pool; stETH is collateral in Aave's pool either way.
    via = store.contagion_paths("curve:steth-eth", "aave", 5)
    assert [(p.nodes, p.rels) for p in via] == [
        (("curve:steth-eth", "lido", "stETH", "aave:main", "aave"),
         ("DEPOSITS_IN", "ISSUED_BY", "ACCEPTS_COLLATERAL", "OPERATES")),
        (("curve:steth-eth", "oracle:stETH", "stETH", "aave:main", "aave"),
         ("READS", "PRICED_BY", "ACCEPTS_COLLATERAL", "OPERATES")),
    ]
    eth = store.contagion_paths("ETH", "aave", 2)
    assert [p.rels for p in eth] == [("ACCEPTS_COLLATERAL", "OPERATES"), ("LENDS", "OPERATES")]
    to_acct = store.contagion_paths("USDC", "bob", 3)
    assert [p.nodes for p in to_acct] == [("USDC", "p2", "bob"), ("USDC", "aave:main", "p2",
                                                                  "bob")]
    assert len(store.contagion_paths("ETH", "aave", 2, limit=1)) == 1
    with pytest.raises(ValueError, match=r"'max_hops' must be an integer in \[1, 8\]"):
        store.contagion_paths("ETH", "aave", 0)
    with pytest.raises(NodeNotFound):
        store.contagion_paths("ETH", "nobody", 3)


def test_positions_by_health_factor(store: GraphStore) -> None:
    store.write_snapshot(tiny_snapshot())
    all_ = store.positions("aave:main")
    assert [(p.id, p.account) for p in all_] == [("p2", "bob"), ("p1", "alice"), ("p3", "carol")]
    assert all_[0].health_factor == pytest.approx(17490 / 18000, rel=1e-12)
    assert all_[1].health_factor == pytest.approx(1.65, rel=1e-12)
    assert math.isinf(all_[2].health_factor)
    assert [p.id for p in store.positions("aave:main", max_health=1.0)] == ["p2"]
    assert [p.id for p in store.positions("aave:main", min_health=1.0)] == ["p1", "p3"]
    assert [p.id for p in store.positions("aave:main", min_health=1.0, max_health=2.0)] == ["p1"]
    assert store.positions("curve:steth-eth") == []
    with pytest.raises(NodeNotFound, match="'aave' is not a pool"):
        store.positions("aave")


def test_export_arrays_matches_compiled_snapshot(store: GraphStore) -> None:
    snap = tiny_snapshot()
    store.write_snapshot(snap)
    got, want = store.export_arrays(), compile_system(snap)
    assert list(got.position_ids) == ["p1", "p2", "p3", "p4"]
    assert (got.collateral != want.collateral).nnz == 0
    assert (got.debt.toarray() == want.debt.toarray()).all()
    assert got.issuer.tolist() == want.issuer.tolist()


def test_clear_empties_the_store(store: GraphStore) -> None:
    store.write_snapshot(tiny_snapshot())
    store.clear()
    assert sum(store.stats().labels.values()) == 0
    assert sum(store.stats().relationships.values()) == 0


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(snap=snapshots())
def test_roundtrip_any_snapshot(store: GraphStore, snap: Snapshot) -> None:
    """Snapshot → store → Snapshot is the identity; writing it twice changes nothing."""
    store.clear()
    store.write_snapshot(snap)
    back = store.read_snapshot()
    assert back.equals(snap), snap.describe_difference(back)
    counts = store.stats()
    assert not store.write_snapshot(snap).changed
    assert store.stats() == counts


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(first=snapshots(), second=snapshots())
def test_any_snapshot_over_any_other(store: GraphStore, first: Snapshot, second: Snapshot
                                     ) -> None:
    """Writing over an existing snapshot leaves exactly the new one."""
    store.clear()
    store.write_snapshot(first)
    store.write_snapshot(second)
    back = store.read_snapshot()
    assert back.equals(second), second.describe_difference(back)


def test_memory_store_persists_to_its_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "s.zip"
    MemoryStore(path).write_snapshot(tiny_snapshot())
    again = MemoryStore(path)
    assert again.read_snapshot().equals(tiny_snapshot())
    assert again.stats().labels[NodeLabel.POSITION] == 4
    assert again.stats().relationships[RelType.OPTION] == 2


class _Interrupt(Exception):
    pass


def test_interrupted_write_is_completed_by_writing_again(store: GraphStore) -> None:
    """A write that dies part-way never leaves a half-written snapshot to readers, and
    writing the snapshot again completes it."""
    from graph.store.neo4j import Neo4jStore

    if isinstance(store, Neo4jStore):  # force the batch-by-batch path on a small snapshot
        store.transaction_rows, store.batch_size = 5, 3
    store.write_snapshot(tiny_snapshot())
    rec = tiny_records()
    for r in rec["position_collateral"]:
        r["amount"] *= 2
    rec["accounts"].append({"id": "dave", "kind": "user"})
    new = Snapshot.from_records(rec, TINY_MANIFEST)

    def die(done: int, total: int) -> None:
        if 0 < done < total:
            raise _Interrupt

    try:
        with pytest.raises(_Interrupt):
            store.write_snapshot(new, progress=die)
        held = None
        try:
            held = store.read_snapshot()
        except StoreError as e:
            assert "interrupted" in str(e)
        assert held is None or held.equals(new) or held.equals(tiny_snapshot())
        store.write_snapshot(new)
        assert store.read_snapshot().equals(new)
    finally:
        if isinstance(store, Neo4jStore):
            store.transaction_rows, store.batch_size = 200_000, 10_000


def test_backends_agree_on_a_generated_ecosystem(neo4j_store: GraphStore, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The same generated snapshot gives the same answer to every query on both stores."""
    from ingest.generate import generate_ecosystem

    snap = generate_ecosystem(400, 5)
    mem = MemoryStore(tmp_path / "m.zip")
    neo4j_store.clear()
    for s in (mem, neo4j_store):
        s.write_snapshot(snap)
    assert mem.stats() == neo4j_store.stats()
    assert neo4j_store.read_snapshot().equals(mem.read_snapshot())
    protocols = list(snap["protocols"]["id"])
    for p in protocols:
        assert mem.dependencies(p, 3) == neo4j_store.dependencies(p, 3)
    for pool in snap["pools"]["id"]:
        a, b = mem.positions(pool, max_health=1.5), neo4j_store.positions(pool, max_health=1.5)
        assert [(x.id, x.account) for x in a] == [(x.id, x.account) for x in b]
        assert [x.health_factor for x in a] == pytest.approx([x.health_factor for x in b],
                                                             rel=1e-12)
    for asset in list(snap["assets"]["id"])[:6]:
        for p in protocols[:4]:
            assert mem.contagion_paths(asset, p, 4) == neo4j_store.contagion_paths(asset, p, 4)
        assert mem.node(asset, neighbour_limit=50) == neo4j_store.node(asset, neighbour_limit=50)
    neo4j_store.clear()


# -- batch reads (used by the API's DataLoaders) --------------------------------------------------


def test_nodes_by_ids(store: GraphStore) -> None:
    store.write_snapshot(tiny_snapshot())
    got = store.nodes(["stETH", "p2", "nope", "aave:main", "p2"])
    assert list(got) == ["stETH", "p2", "aave:main"]
    assert got["stETH"] == NodeRecord("Asset", {
        "id": "stETH", "symbol": "stETH", "kind": "lst", "price": 1980.0, "decimals": 18,
        "market_depth_usd": 5e6, "issuer": "lido", "pegged_to": "ETH",
        "oracle": "oracle:stETH"})
    assert got["p2"].row == {"id": "p2", "account": "bob", "pool": "aave:main"}
    assert got["aave:main"].row == {"id": "aave:main", "protocol": "aave", "kind": "lending",
                                    "fee": None, "amplification": None,
                                    "maintenance_margin": None, "liquidation_penalty": None}
    assert got["aave:main"].label == "Pool"
    assert store.nodes(["ETH", "USDC", "stETH"])["USDC"].row["issuer"] is None
    assert list(store.nodes(["p1", "aave:main", "ETH"], label="Pool")) == ["aave:main"]
    assert store.nodes([]) == {}
    with pytest.raises(ValueError, match=r"'label' must be one of Protocol, .* \(got 'Nope'\)"):
        store.nodes(["p1"], label="Nope")


def _ids(records: list[NodeRecord]) -> list[str]:
    return [r.id for r in records]


def test_list_nodes_filters(store: GraphStore) -> None:
    store.write_snapshot(tiny_snapshot())
    assert _ids(store.list_nodes("Protocol")) == ["aave", "curve", "deribit", "lido"]
    assert _ids(store.list_nodes("Protocol", where=NodeFilter(kind="lst"))) == ["lido"]
    assert _ids(store.list_nodes("Pool", where=NodeFilter(protocol="aave"))) == ["aave:main"]
    assert _ids(store.list_nodes("Pool", where=NodeFilter(asset="ETH"))) == ["aave:main"]
    assert _ids(store.list_nodes("Pool", where=NodeFilter(asset="USDC"))) == [
        "aave:main", "deribit:margin"]
    assert _ids(store.list_nodes("Asset", where=NodeFilter(protocol="lido"))) == ["stETH"]
    assert _ids(store.list_nodes("Oracle", where=NodeFilter(pool="curve:steth-eth"))) == [
        "oracle:stETH"]
    assert _ids(store.list_nodes("Account", where=NodeFilter(kind="dealer"))) == ["carol"]
    pos = store.list_nodes("Position", where=NodeFilter(account="carol"))
    assert [r.row for r in pos] == [{"id": "p3", "account": "carol", "pool": "aave:main"},
                                    {"id": "p4", "account": "carol", "pool": "deribit:margin"}]
    assert _ids(store.list_nodes("Position", where=NodeFilter(pool="aave:main"))) == [
        "p1", "p2", "p3"]
    assert _ids(store.list_nodes("Position", where=NodeFilter(protocol="deribit"))) == ["p4"]
    assert _ids(store.list_nodes("Position", where=NodeFilter(asset="stETH"))) == ["p2"]
    assert _ids(store.list_nodes("Position", where=NodeFilter(asset="USDC"))) == [
        "p1", "p2", "p4"]
    # p1 1.65, p2 0.9717, p3 and p4 without debt (infinite)
    assert _ids(store.list_nodes("Position", where=NodeFilter(max_health=1.0))) == ["p2"]
    assert _ids(store.list_nodes("Position", where=NodeFilter(max_health=1.65))) == ["p2"]
    assert _ids(store.list_nodes("Position", where=NodeFilter(min_health=1.65))) == [
        "p1", "p3", "p4"]
    assert _ids(store.list_nodes("Position", where=NodeFilter(
        min_health=1.0, max_health=2.0, account="alice"))) == ["p1"]
    assert store.list_nodes("Position", where=NodeFilter(pool="nope")) == []


def test_list_nodes_pages_by_id(store: GraphStore) -> None:
    store.write_snapshot(tiny_snapshot())
    assert _ids(store.list_nodes("Position", limit=2)) == ["p1", "p2"]
    assert _ids(store.list_nodes("Position", after="p2", limit=2)) == ["p3", "p4"]
    assert _ids(store.list_nodes("Position", after="p4", limit=2)) == []
    assert _ids(store.list_nodes("Position", descending=True, limit=3)) == ["p4", "p3", "p2"]
    assert _ids(store.list_nodes("Position", before="p3", descending=True, limit=5)) == [
        "p2", "p1"]
    assert _ids(store.list_nodes("Position", after="p1", before="p4")) == ["p2", "p3"]
    # a cursor need not be an id that exists: ids order as strings
    assert _ids(store.list_nodes("Position", after="p10", limit=1)) == ["p2"]
    assert _ids(store.list_nodes("Position", where=NodeFilter(max_health=2.0), after="p1")
                ) == ["p2"]
    assert store.list_nodes("Position", limit=0) == []


def test_list_nodes_rejects_bad_arguments(store: GraphStore) -> None:
    with pytest.raises(ValueError, match=r"filter 'pool' applies to Oracle, Position "
                                         r"\(got it for Protocol\)"):
        store.list_nodes("Protocol", where=NodeFilter(pool="x"))
    with pytest.raises(ValueError, match=r"filter 'kind' applies to Account, Asset, Oracle, "
                                         r"Pool, Protocol \(got it for Position\)"):
        store.list_nodes("Position", where=NodeFilter(kind="user"))
    with pytest.raises(ValueError, match=r"'limit' must be an integer in \[0, 10000\] "
                                         r"\(got 10001\)"):
        store.list_nodes("Position", limit=10_001)


def test_relationships_of_many_nodes(store: GraphStore) -> None:
    store.write_snapshot(tiny_snapshot())
    legs = store.relationships(["p4", "p2", "nope"], ["COLLATERAL", "DEBT", "OPTION"])
    assert list(legs) == ["p4", "p2", "nope"]
    assert [(n.rel, n.id, dict(n.properties).get("amount")) for n in legs["p2"]] == [
        ("COLLATERAL", "ETH", 1.0), ("COLLATERAL", "stETH", 10.0), ("DEBT", "USDC", 18000.0)]
    assert [(n.rel, dict(n.properties).get("kind")) for n in legs["p4"]] == [
        ("COLLATERAL", None), ("OPTION", "call"), ("OPTION", "put")]
    assert dict(legs["p4"][1].properties) == {"kind": "call", "side": "short", "strike": 2200.0,
                                              "expiry": 1_696_118_400, "size": 5.0,
                                              "implied_vol": 0.6}
    assert legs["nope"] == []
    terms = store.relationships(["aave:main"], ["ACCEPTS_COLLATERAL", "LENDS", "HOLDS"])
    assert [(n.rel, n.id, n.label) for n in terms["aave:main"]] == [
        ("ACCEPTS_COLLATERAL", "ETH", "Asset"), ("ACCEPTS_COLLATERAL", "stETH", "Asset"),
        ("LENDS", "ETH", "Asset"), ("LENDS", "USDC", "Asset")]
    assert dict(terms["aave:main"][1].properties) == {
        "ltv": 0.7, "liquidation_threshold": 0.8, "liquidation_bonus": 0.07}
    issued = store.relationships(["lido", "aave"], ["ISSUED_BY"], "in")
    assert issued == {"lido": [Neighbour("ISSUED_BY", "in", "stETH", "Asset")], "aave": []}
    with pytest.raises(ValueError, match=r"'rels' must share the label at their 'out' end "
                                         r"\(got Pool, Position\)"):
        store.relationships(["p1"], ["IN", "LENDS"])
    with pytest.raises(ValueError, match=r"'direction' must be 'out' or 'in' \(got 'up'\)"):
        store.relationships(["p1"], ["IN"], "up")
    with pytest.raises(ValueError, match=r"'rels' must be relationship types .* \(got 'X'\)"):
        store.relationships(["p1"], ["X"])


def test_health_factors_of_many_positions(store: GraphStore) -> None:
    store.write_snapshot(tiny_snapshot())
    hf = store.health_factors(["p3", "p2", "p1", "aave:main", "nope"])
    assert list(hf) == ["p3", "p2", "p1"]
    assert hf["p1"] == pytest.approx(1.65, rel=1e-12)
    assert hf["p2"] == pytest.approx(17490 / 18000, rel=1e-12)
    assert math.isinf(hf["p3"])
    assert store.health_factors([]) == {}


def test_backends_agree_on_batch_reads(neo4j_store: GraphStore, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Listings, batch lookups and health factors agree between the backends and with the
    compiled arrays on a generated ecosystem."""
    from graph.export import health_factors
    from ingest.generate import generate_ecosystem

    snap = generate_ecosystem(400, 11)
    mem = MemoryStore(tmp_path / "m.zip")
    neo4j_store.clear()
    for s in (mem, neo4j_store):
        s.write_snapshot(snap)
    system = compile_system(snap)
    want = dict(zip(system.position_ids, health_factors(system), strict=True))
    below = sorted(p for p, h in want.items() if h < 1.2)
    assert below  # the generator puts some positions near liquidation
    for s in (mem, neo4j_store):
        got = s.list_nodes("Position", where=NodeFilter(max_health=1.2), limit=10_000)
        assert _ids(got) == below
        hf = s.health_factors(list(want))
        assert [hf[p] for p in want] == pytest.approx(list(want.values()), rel=1e-9)
    pools = list(snap["pools"]["id"])
    for where in (NodeFilter(), NodeFilter(kind="lending"), NodeFilter(protocol="aave-v3"),
                  NodeFilter(asset="ETH")):
        assert mem.list_nodes("Pool", where=where) == neo4j_store.list_nodes("Pool", where=where)
    for pool in pools[:5]:
        w = NodeFilter(pool=pool, min_health=1.0)
        a, b = (s.list_nodes("Position", where=w, limit=7, after="pos:aave-v3:main:000100")
                for s in (mem, neo4j_store))
        assert a == b
    positions = list(snap["positions"]["id"])[:60]
    assert mem.nodes(positions + pools) == neo4j_store.nodes(positions + pools)
    rels = ["COLLATERAL", "DEBT", "OPTION"]
    assert mem.relationships(positions, rels) == neo4j_store.relationships(positions, rels)
    neo4j_store.clear()


def test_neo4j_read_timeout_stops_the_query_on_the_server(neo4j_store: GraphStore) -> None:
    """A read that runs past ``query_timeout`` is stopped by the server and reported as a
    StoreTimeout (here a 300-million-row sum against a 10 ms limit: the server checks
    timeouts every couple of seconds, so the query must outlast that check)."""
    from graph.errors import StoreTimeout
    from graph.store.neo4j import Neo4jStore

    assert isinstance(neo4j_store, Neo4jStore)
    neo4j_store.query_timeout = 0.01
    try:
        with pytest.raises(StoreTimeout, match=r"query stopped by the server after its 0\.01 s "
                                               r"timeout"):
            neo4j_store._run("UNWIND range(1, 300000000) AS x RETURN sum(x % 7) AS c")
    finally:
        neo4j_store.query_timeout = None


# --- scores (node properties written by the fragility model) ------------------------------------


def test_scores_write_and_read_back(store: GraphStore) -> None:
    store.write_snapshot(tiny_snapshot())
    info = store.write_scores("fragility", {"aave": 0.25, "alice": 0.75, "aave:main": 0.5},
                              model="fragility-test")
    assert (info.name, info.model, info.count) == ("fragility", "fragility-test", 3)
    assert store.scores("fragility") == {"aave": 0.25, "aave:main": 0.5, "alice": 0.75}
    assert store.scores("fragility", label="Account") == {"alice": 0.75}
    assert store.scores("fragility", ids=["alice", "bob", "nobody"]) == {"alice": 0.75}
    assert store.node("alice").properties["score_fragility"] == 0.75
    assert [(s.name, s.model, s.count) for s in store.score_sets()] == [
        ("fragility", "fragility-test", 3)]
    # the snapshot read back is untouched by the scores
    assert store.read_snapshot().equals(tiny_snapshot())


def test_scores_replace_the_set_of_that_name(store: GraphStore) -> None:
    store.write_snapshot(tiny_snapshot())
    store.write_scores("fragility", {"aave": 0.25, "alice": 0.75}, model="m1")
    store.write_scores("other", {"aave": 1.0}, model="m2")
    store.write_scores("fragility", {"bob": 0.5}, model="m3")
    assert store.scores("fragility") == {"bob": 0.5}
    assert "score_fragility" not in store.node("alice").properties
    assert store.scores("other") == {"aave": 1.0}
    assert [(s.name, s.model, s.count) for s in store.score_sets()] == [
        ("fragility", "m3", 1), ("other", "m2", 1)]


def test_scores_with_an_unknown_node_write_nothing(store: GraphStore) -> None:
    store.write_snapshot(tiny_snapshot())
    store.write_scores("fragility", {"aave": 0.25}, model="m1")
    with pytest.raises(NodeNotFound, match="no node with id 'ghost'"):
        store.write_scores("fragility", {"alice": 0.5, "ghost": 0.1}, model="m2")
    assert store.scores("fragility") == {"aave": 0.25}
    assert "score_fragility" not in store.node("alice").properties


def test_scores_reject_bad_names_values_and_unknown_sets(store: GraphStore) -> None:
    store.write_snapshot(tiny_snapshot())
    with pytest.raises(ValueError, match="score name must be"):
        store.write_scores("Frag ility", {"aave": 0.1}, model="m")
    with pytest.raises(ValueError, match="must be finite"):
        store.write_scores("fragility", {"aave": math.nan}, model="m")
    with pytest.raises(ValueError, match="model must be"):
        store.write_scores("fragility", {"aave": 0.1}, model=" ")
    with pytest.raises(KeyError, match="no scores named 'missing'"):
        store.scores("missing")


def test_scores_go_with_removed_nodes(store: GraphStore) -> None:
    store.write_snapshot(tiny_snapshot())
    store.write_scores("fragility", {"p3": 0.9, "p1": 0.1}, model="m")
    rec = tiny_records()
    rec["positions"] = [r for r in rec["positions"] if r["id"] != "p3"]
    rec["position_collateral"] = [r for r in rec["position_collateral"] if r["position"] != "p3"]
    store.write_snapshot(Snapshot.from_records(rec, TINY_MANIFEST))
    assert store.scores("fragility") == {"p1": 0.1}


def test_memory_store_persists_scores(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "s.zip"
    s1 = MemoryStore(path)
    s1.write_snapshot(tiny_snapshot())
    s1.write_scores("fragility", {"alice": 0.75, "aave": 0.25}, model="m")
    s2 = MemoryStore(path)
    assert s2.scores("fragility") == {"aave": 0.25, "alice": 0.75}
    assert s2.read_snapshot().equals(tiny_snapshot())
    assert [(s.name, s.count) for s in s2.score_sets()] == [("fragility", 2)]
