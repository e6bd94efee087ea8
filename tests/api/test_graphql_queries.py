"""Every query over real HTTP, on both stores, with the tiny ecosystem's hand-worked numbers.

Health factors (tests/helpers.py): p1 1.65, p2 17490 / 18000 = 0.971666..., p3 and p4 have
no debt (infinite, rendered as null).
"""

from __future__ import annotations

import base64

import pytest
from apiserver import ApiServer

P2_HF = 17490 / 18000


def _ids(conn: dict) -> list[str]:  # type: ignore[type-arg]
    return [e["node"]["id"] for e in conn["edges"]]


def test_protocols_with_filter(api: ApiServer) -> None:
    d = api.gql("{ protocols { edges { node { id name kind closeFactor fullCloseThreshold "
                "reserveUsd } } pageInfo { hasNextPage hasPreviousPage } } }").data
    assert _ids(d["protocols"]) == ["aave", "curve", "deribit", "lido"]
    assert d["protocols"]["edges"][0]["node"] == {
        "id": "aave", "name": "Aave", "kind": "LENDING", "closeFactor": 0.5,
        "fullCloseThreshold": 0.95, "reserveUsd": 1000.0}
    assert d["protocols"]["pageInfo"] == {"hasNextPage": False, "hasPreviousPage": False}
    lst = api.gql("{ protocols(kind: LST) { edges { node { id issuedAssets { id } "
                  "deposits { amountUsd pool { id } } pools { id } } } } }").data
    assert lst["protocols"]["edges"] == [{"node": {
        "id": "lido", "issuedAssets": [{"id": "stETH"}],
        "deposits": [{"amountUsd": 100000.0, "pool": {"id": "curve:steth-eth"}}],
        "pools": [{"id": "lido:staking"}]}}]


def test_pools_with_terms_and_filters(api: ApiServer) -> None:
    d = api.gql("""{ pools(protocol: "aave") { edges { node {
        id kind fee amplification protocol { id }
        collateral { asset { id } ltv liquidationThreshold liquidationBonus }
        lends { asset { id } supplied borrowed } holdings { amount } } } } }""").data
    assert d["pools"]["edges"] == [{"node": {
        "id": "aave:main", "kind": "LENDING", "fee": None, "amplification": None,
        "protocol": {"id": "aave"},
        "collateral": [
            {"asset": {"id": "ETH"}, "ltv": 0.8, "liquidationThreshold": 0.825,
             "liquidationBonus": 0.05},
            {"asset": {"id": "stETH"}, "ltv": 0.7, "liquidationThreshold": 0.8,
             "liquidationBonus": 0.07}],
        "lends": [{"asset": {"id": "ETH"}, "supplied": 1000.0, "borrowed": 0.0},
                  {"asset": {"id": "USDC"}, "supplied": 1e6, "borrowed": 28000.0}],
        "holdings": []}}]
    amm = api.gql('{ pools(kind: AMM) { edges { node { id fee amplification '
                  'holdings { asset { id } amount } } } } }').data
    assert amm["pools"]["edges"] == [{"node": {
        "id": "curve:steth-eth", "fee": 0.0004, "amplification": 50.0,
        "holdings": [{"asset": {"id": "ETH"}, "amount": 1000.0},
                     {"asset": {"id": "stETH"}, "amount": 1010.0}]}}]
    usdc = api.gql('{ pools(asset: "USDC") { edges { node { id maintenanceMargin '
                   'liquidationPenalty } } } }').data
    assert [e["node"] for e in usdc["pools"]["edges"]] == [
        {"id": "aave:main", "maintenanceMargin": None, "liquidationPenalty": None},
        {"id": "deribit:margin", "maintenanceMargin": 0.1, "liquidationPenalty": 0.05}]


def test_assets_and_oracles(api: ApiServer) -> None:
    d = api.gql("""{ assets { edges { node { id symbol kind price decimals marketDepthUsd
        issuer { id } peggedTo { id } oracle { id kind reads { id } } } } } }""").data
    by_id = {e["node"]["id"]: e["node"] for e in d["assets"]["edges"]}
    assert list(by_id) == ["ETH", "USDC", "stETH"]
    assert by_id["stETH"] == {
        "id": "stETH", "symbol": "stETH", "kind": "LST", "price": 1980.0, "decimals": 18,
        "marketDepthUsd": 5e6, "issuer": {"id": "lido"}, "peggedTo": {"id": "ETH"},
        "oracle": {"id": "oracle:stETH", "kind": "TWAP", "reads": {"id": "curve:steth-eth"}}}
    assert by_id["ETH"]["issuer"] is None and by_id["ETH"]["peggedTo"] is None
    issued = api.gql('{ assets(issuer: "lido") { edges { node { id } } } }').data
    assert _ids(issued["assets"]) == ["stETH"]
    stable = api.gql("{ assets(kind: STABLE) { edges { node { id } } } }").data
    assert _ids(stable["assets"]) == ["USDC"]
    o = api.gql('{ oracles { edges { node { id kind assets { id } } } } '
                'twap: oracles(reads: "curve:steth-eth") { edges { node { id } } } }').data
    assert [e["node"] for e in o["oracles"]["edges"]] == [
        {"id": "oracle:ETH", "kind": "FEED", "assets": [{"id": "ETH"}]},
        {"id": "oracle:USDC", "kind": "FIXED", "assets": [{"id": "USDC"}]},
        {"id": "oracle:stETH", "kind": "TWAP", "assets": [{"id": "stETH"}]}]
    assert _ids(o["twap"]) == ["oracle:stETH"]


def test_accounts_with_their_positions(api: ApiServer) -> None:
    d = api.gql("{ accounts { edges { node { id kind positions { edges { node { id } } } } } }"
                " dealers: accounts(kind: DEALER) { edges { node { id } } } }").data
    assert [(e["node"]["id"], e["node"]["kind"], _ids(e["node"]["positions"]))
            for e in d["accounts"]["edges"]] == [
        ("alice", "USER", ["p1"]), ("bob", "USER", ["p2"]), ("carol", "DEALER", ["p3", "p4"])]
    assert _ids(d["dealers"]) == ["carol"]


def test_positions_with_health_factors_and_legs(api: ApiServer) -> None:
    d = api.gql("""{ positions { edges { node { id healthFactor account { id } pool { id }
        collateral { amount asset { id } } debt { amount asset { id } }
        options { kind side strike expiry size impliedVol asset { id } } } } } }""").data
    nodes = {e["node"]["id"]: e["node"] for e in d["positions"]["edges"]}
    assert list(nodes) == ["p1", "p2", "p3", "p4"]
    assert nodes["p1"]["healthFactor"] == pytest.approx(1.65, rel=1e-12)
    assert nodes["p2"]["healthFactor"] == pytest.approx(P2_HF, rel=1e-12)
    assert nodes["p3"]["healthFactor"] is None and nodes["p4"]["healthFactor"] is None
    assert nodes["p2"]["collateral"] == [{"amount": 1.0, "asset": {"id": "ETH"}},
                                         {"amount": 10.0, "asset": {"id": "stETH"}}]
    assert nodes["p2"]["debt"] == [{"amount": 18000.0, "asset": {"id": "USDC"}}]
    assert nodes["p2"]["account"] == {"id": "bob"} and nodes["p2"]["pool"] == {"id": "aave:main"}
    assert nodes["p4"]["options"] == [
        {"kind": "CALL", "side": "SHORT", "strike": 2200.0, "expiry": "2023-10-01T00:00:00+00:00",
         "size": 5.0, "impliedVol": 0.6, "asset": {"id": "ETH"}},
        {"kind": "PUT", "side": "SHORT", "strike": 1800.0, "expiry": "2023-10-01T00:00:00+00:00",
         "size": 5.0, "impliedVol": 0.65, "asset": {"id": "ETH"}}]


@pytest.mark.parametrize(("args", "want"), [
    ("healthFactorBelow: 1.0", ["p2"]),
    ("healthFactorBelow: 1.65", ["p2"]),
    ("healthFactorBelow: 1.7", ["p1", "p2"]),
    ("healthFactorAtLeast: 1.0", ["p1", "p3", "p4"]),
    ("healthFactorAtLeast: 1.0, healthFactorBelow: 2.0", ["p1"]),
    ('pool: "aave:main"', ["p1", "p2", "p3"]),
    ('protocol: "deribit"', ["p4"]),
    ('account: "carol"', ["p3", "p4"]),
    ('asset: "stETH"', ["p2"]),
    ('asset: "USDC"', ["p1", "p2", "p4"]),
    ('pool: "aave:main", healthFactorBelow: 1.0', ["p2"]),
    ('pool: "nope"', []),
])
def test_positions_filters(api: ApiServer, args: str, want: list[str]) -> None:
    d = api.gql(f"{{ positions({args}) {{ edges {{ node {{ id }} }} }} }}").data
    assert _ids(d["positions"]) == want


def test_pool_positions_by_health(api: ApiServer) -> None:
    d = api.gql('{ node(id: "aave:main") { ... on Pool { positions(healthFactorBelow: 1.0) '
                '{ edges { node { id healthFactor } } } } } }').data
    assert [(e["node"]["id"], e["node"]["healthFactor"])
            for e in d["node"]["positions"]["edges"]] == [("p2", pytest.approx(P2_HF))]


def test_pagination_forward_and_backward(api: ApiServer) -> None:
    q = ("query($first: Int, $after: String, $last: Int, $before: String) { "
         "positions(first: $first, after: $after, last: $last, before: $before) { "
         "edges { cursor node { id } } "
         "pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }")
    page1 = api.gql(q, {"first": 3}).data["positions"]
    assert _ids(page1) == ["p1", "p2", "p3"]
    assert page1["pageInfo"]["hasNextPage"] is True
    assert page1["pageInfo"]["startCursor"] == page1["edges"][0]["cursor"]
    assert base64.urlsafe_b64decode(page1["pageInfo"]["endCursor"]) == b"Position:p3"
    page2 = api.gql(q, {"first": 3, "after": page1["pageInfo"]["endCursor"]}).data["positions"]
    assert _ids(page2) == ["p4"]
    assert page2["pageInfo"] == {"hasNextPage": False, "hasPreviousPage": False,
                                 "startCursor": page2["edges"][0]["cursor"],
                                 "endCursor": page2["edges"][0]["cursor"]}
    # exactly at the end: no next page, and a page after the last cursor is empty
    exact = api.gql(q, {"first": 4}).data["positions"]
    assert _ids(exact) == ["p1", "p2", "p3", "p4"] and not exact["pageInfo"]["hasNextPage"]
    empty = api.gql(q, {"first": 2, "after": exact["pageInfo"]["endCursor"]}).data["positions"]
    assert empty == {"edges": [], "pageInfo": {"hasNextPage": False, "hasPreviousPage": False,
                                               "startCursor": None, "endCursor": None}}
    assert api.gql(q, {"first": 0}).data["positions"]["edges"] == []
    back = api.gql(q, {"last": 2}).data["positions"]
    assert _ids(back) == ["p3", "p4"] and back["pageInfo"]["hasPreviousPage"] is True
    back2 = api.gql(q, {"last": 2, "before": back["pageInfo"]["startCursor"]}).data["positions"]
    assert _ids(back2) == ["p1", "p2"] and back2["pageInfo"]["hasPreviousPage"] is False
    between = api.gql(q, {"first": 10, "after": page1["edges"][0]["cursor"],
                          "before": page2["edges"][0]["cursor"]}).data["positions"]
    assert _ids(between) == ["p2", "p3"]
    # the default page size is 20 and the cap 100
    assert len(api.gql(q).data["positions"]["edges"]) == 4


@pytest.mark.parametrize(("variables", "message"), [
    ({"first": 101}, "'first' must be between 0 and 100 (got 101)"),
    ({"last": -1}, "'last' must be between 0 and 100 (got -1)"),
    ({"first": 1, "last": 1}, "pass 'first' (forward) or 'last' (backward), not both"),
    ({"after": "not a cursor!"},
     "'after' must be a cursor returned by this connection (got 'not a cursor!')"),
    ({"after": base64.urlsafe_b64encode(b"Pool:aave:main").decode()},
     "'after' must be a cursor of a Position connection (got a Pool cursor)"),
    ({"before": base64.urlsafe_b64encode(b"nonsense").decode()},
     "'before' must be a cursor returned by this connection (got 'bm9uc2Vuc2U=')"),
])
def test_pagination_rejects_bad_arguments(api: ApiServer, variables: dict, message: str  # type: ignore[type-arg]
                                          ) -> None:
    r = api.gql("query($first: Int, $after: String, $last: Int, $before: String) { "
                "positions(first: $first, after: $after, last: $last, before: $before) "
                "{ edges { node { id } } } }", variables)
    assert r.status == 200
    assert r.error == (message, "BAD_USER_INPUT")
    assert r.body["data"] is None


def test_node_and_nodes(api: ApiServer) -> None:
    d = api.gql("""{ node(id: "p2") { __typename id ... on Position { healthFactor } }
        pool: node(id: "curve:steth-eth") { __typename ... on Pool { kind } }
        missing: node(id: "nope") { id }
        nodes(ids: ["USDC", "nope", "carol", "lido", "oracle:ETH"]) { __typename id } }""").data
    assert d["node"] == {"__typename": "Position", "id": "p2",
                         "healthFactor": pytest.approx(P2_HF)}
    assert d["pool"] == {"__typename": "Pool", "kind": "AMM"}
    assert d["missing"] is None
    assert d["nodes"] == [{"__typename": "Asset", "id": "USDC"}, None,
                          {"__typename": "Account", "id": "carol"},
                          {"__typename": "Protocol", "id": "lido"},
                          {"__typename": "Oracle", "id": "oracle:ETH"}]
    r = api.gql("query($ids: [ID!]!) { nodes(ids: $ids) { id } }",
                {"ids": [f"x{i}" for i in range(101)]})
    assert r.error == ("'ids' may hold at most 100 ids (got 101)", "BAD_USER_INPUT")


def test_dependencies(api: ApiServer) -> None:
    q = ("query($p: ID!, $d: Int!) { dependencies(protocol: $p, depth: $d) { protocol depth "
         "nodes { __typename id } relationships { source type target } } }")
    d2 = api.gql(q, {"p": "aave", "d": 2}).data["dependencies"]
    assert d2["protocol"] == "aave" and d2["depth"] == 2
    assert [(n["__typename"], n["id"]) for n in d2["nodes"]] == [
        ("Asset", "ETH"), ("Asset", "USDC"), ("Protocol", "aave"), ("Pool", "aave:main"),
        ("Asset", "stETH")]
    assert d2["relationships"] == [
        {"source": "aave", "type": "OPERATES", "target": "aave:main"},
        {"source": "aave:main", "type": "ACCEPTS_COLLATERAL", "target": "ETH"},
        {"source": "aave:main", "type": "ACCEPTS_COLLATERAL", "target": "stETH"},
        {"source": "aave:main", "type": "LENDS", "target": "ETH"},
        {"source": "aave:main", "type": "LENDS", "target": "USDC"}]
    d4 = api.gql(q, {"p": "aave", "d": 4}).data["dependencies"]
    assert {n["id"] for n in d4["nodes"]} == {
        "aave", "aave:main", "ETH", "USDC", "stETH", "lido", "oracle:ETH", "oracle:USDC",
        "oracle:stETH", "curve:steth-eth", "lido:staking"}
    assert api.gql(q, {"p": "ETH", "d": 2}).error == ("'ETH' is not a protocol", "NOT_FOUND")
    assert api.gql(q, {"p": "nope", "d": 2}).error == ("no node with id 'nope'", "NOT_FOUND")
    assert api.gql(q, {"p": "aave", "d": 9}).error == (
        "'depth' must be an integer in [0, 8] (got 9)", "BAD_USER_INPUT")


def test_contagion_paths(api: ApiServer) -> None:
    q = ("query($f: ID!, $t: ID!, $h: Int!, $l: Int!) { contagionPaths(from: $f, to: $t, "
         "maxHops: $h, limit: $l) { hops nodeIds relationships nodes { __typename } } }")
    paths = api.gql(q, {"f": "curve:steth-eth", "t": "aave", "h": 5, "l": 20}).data
    assert paths["contagionPaths"] == [
        {"hops": 4, "nodeIds": ["curve:steth-eth", "lido", "stETH", "aave:main", "aave"],
         "relationships": ["DEPOSITS_IN", "ISSUED_BY", "ACCEPTS_COLLATERAL", "OPERATES"],
         "nodes": [{"__typename": t} for t in ("Pool", "Protocol", "Asset", "Pool",
                                                "Protocol")]},
        {"hops": 4, "nodeIds": ["curve:steth-eth", "oracle:stETH", "stETH", "aave:main", "aave"],
         "relationships": ["READS", "PRICED_BY", "ACCEPTS_COLLATERAL", "OPERATES"],
         "nodes": [{"__typename": t} for t in ("Pool", "Oracle", "Asset", "Pool",
                                                "Protocol")]}]
    one = api.gql(q, {"f": "ETH", "t": "aave", "h": 2, "l": 1}).data["contagionPaths"]
    assert [p["relationships"] for p in one] == [["ACCEPTS_COLLATERAL", "OPERATES"]]
    assert api.gql(q, {"f": "lido", "t": "aave", "h": 2, "l": 5}).data == {"contagionPaths": []}
    assert api.gql(q, {"f": "ETH", "t": "aave", "h": 0, "l": 5}).error == (
        "'max_hops' must be an integer in [1, 8] (got 0)", "BAD_USER_INPUT")
    assert api.gql(q, {"f": "ETH", "t": "aave", "h": 2, "l": 101}).error == (
        "'limit' must be between 1 and 100 (got 101)", "BAD_USER_INPUT")
    assert api.gql(q, {"f": "ETH", "t": "nobody", "h": 2, "l": 5}).error == (
        "no node with id 'nobody'", "NOT_FOUND")


def test_stats(api: ApiServer) -> None:
    d = api.gql("{ stats { labels { name count } relationships { name count } } }").data
    assert {c["name"]: c["count"] for c in d["stats"]["labels"]} == {
        "Protocol": 4, "Asset": 3, "Pool": 4, "Oracle": 3, "Account": 3, "Position": 4}
    assert {c["name"]: c["count"] for c in d["stats"]["relationships"]}["COLLATERAL"] == 5


def test_scenario_library(api: ApiServer) -> None:
    d = api.gql("""{ scenarios { __typename name kind }
        scenario(name: "eth-35-steth-93") { name description spec proxy
          ... on FixedShockScenario { shocks { asset value } ivMultipliers { asset value }
                                      depegs { asset value } } }
        replay: scenario(name: "may-june-2022") { ... on HistoricalReplay { start end
          depegs { asset value low source } sources { key } } }
        mc: scenario(name: "gjr-fhs-10d") { ... on MonteCarloScenario { volatility { model dist
          mean } joint frequency horizonDays steps paths seed antithetic } }
        missing: scenario(name: "nope") { name } }""").data
    assert [(s["name"], s["kind"], s["__typename"]) for s in d["scenarios"]] == [
        ("eth-35-steth-93", "fixed-shock", "FixedShockScenario"),
        ("gjr-fhs-10d", "monte-carlo", "MonteCarloScenario"),
        ("gjr-tcopula-1d", "monte-carlo", "MonteCarloScenario"),
        ("march-2020", "historical", "HistoricalReplay"),
        ("march-2023", "historical", "HistoricalReplay"),
        ("may-june-2022", "historical", "HistoricalReplay"),
        ("nov-2022", "historical", "HistoricalReplay")]
    s = d["scenario"]
    assert s["shocks"] == [{"asset": "ETH", "value": -0.35}, {"asset": "BTC", "value": -0.25}]
    assert s["ivMultipliers"] == [{"asset": "ETH", "value": 1.8}, {"asset": "BTC", "value": 1.6}]
    assert s["depegs"] == [{"asset": "stETH", "value": 0.93}]
    assert s["proxy"] == "ETH"
    assert s["spec"] == {"kind": "fixed-shock", "name": "eth-35-steth-93",
                         "description": s["description"],
                         "shocks": {"ETH": -0.35, "BTC": -0.25},
                         "iv_multipliers": {"ETH": 1.8, "BTC": 1.6}, "depegs": {"stETH": 0.93},
                         "proxy": "ETH", "mappings": {}, "oracle_pushes": {}}
    from simulate.scenarios import load_scenario

    replay = load_scenario("may-june-2022")
    assert d["replay"]["start"] == str(replay.start) and d["replay"]["end"] == str(replay.end)
    assert [x["asset"] for x in d["replay"]["depegs"]] == list(replay.depegs)
    mc = load_scenario("gjr-fhs-10d")
    assert d["mc"]["steps"] == mc.steps and d["mc"]["seed"] == str(mc.seed)
    assert d["mc"]["volatility"]["model"] == mc.volatility.model
    assert d["mc"]["frequency"] == mc.frequency == "daily"
    assert d["missing"] is None


def test_me(api: ApiServer) -> None:
    assert api.gql("{ me { name role } }", role="analyst").data == {
        "me": {"name": "test analyst", "role": "ANALYST"}}


@pytest.mark.parametrize("n", [1, 2, 4])
def test_a_page_of_positions_costs_seven_store_calls(api: ApiServer, n: int) -> None:
    """The DataLoader bound on the tiny ecosystem (tests/api/test_graphql_generated.py checks
    it for pages of up to 100 positions)."""
    from test_graphql_generated import PAGE

    r = api.gql(PAGE, {"n": n})
    assert len(r.data["positions"]["edges"]) == n
    assert r.body["extensions"]["storeCalls"] == 7


def test_system_graph_is_the_union_of_every_protocols_dependencies(api: ApiServer) -> None:
    d = api.gql("{ systemGraph { nodes { __typename id } relationships { source type target } "
                "} }").data["systemGraph"]
    q = ("query($p: ID!) { dependencies(protocol: $p, depth: 8) { nodes { id } "
         "relationships { source type target } } }")
    nodes: set[str] = set()
    rels: list[dict[str, str]] = []
    for p in ("aave", "curve", "deribit", "lido"):
        sub = api.gql(q, {"p": p}).data["dependencies"]
        nodes |= {n["id"] for n in sub["nodes"]}
        rels += [r for r in sub["relationships"] if r not in rels]
    assert [n["id"] for n in d["nodes"]] == sorted(nodes)
    assert d["relationships"] == sorted(rels, key=lambda r: (r["source"], r["type"],
                                                             r["target"]))
    # every protocol, pool, asset and oracle of the tiny ecosystem, and nothing else
    assert {(n["__typename"], n["id"]) for n in d["nodes"]} == {
        ("Protocol", "aave"), ("Protocol", "curve"), ("Protocol", "deribit"),
        ("Protocol", "lido"), ("Pool", "aave:main"), ("Pool", "curve:steth-eth"),
        ("Pool", "deribit:margin"), ("Pool", "lido:staking"), ("Asset", "ETH"),
        ("Asset", "USDC"), ("Asset", "stETH"), ("Oracle", "oracle:ETH"),
        ("Oracle", "oracle:USDC"), ("Oracle", "oracle:stETH")}
