"""File ingest: tables (CSV and Parquet), subgraph JSON, price history, options chains; bad
input named by file, row and field with the store left unchanged; idempotent re-ingest."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from helpers import tiny_snapshot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graph.errors import IngestError
from graph.snapshot import Snapshot
from graph.store import GraphStore
from ingest import ingest_files, read_price_history

ASSETS = "asset,symbol,price,decimals,kind\nWETH,WETH,2000,18,wrapped\nUSDC,USDC,1,6,stable\n"
MARKETS = ("protocol,pool,asset,ltv,liquidation_threshold,liquidation_bonus,supplied,borrowed\n"
           "aave,aave:main,WETH,0.8,0.825,0.05,1000,100\n"
           "aave,aave:main,USDC,,,,500000,25000\n")
POSITIONS = ("account,pool,asset,collateral,debt\n"
             "alice,aave:main,WETH,10,\n"
             "alice,aave:main,USDC,,15000\n"
             "bob,aave:main,WETH,2.5,0\n"
             "carol,aave:main,WETH,0,0\n")


def write(d: Path, **files: str) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (d / name.replace("_", ".")).write_text(text)
    return d


def tables_dir(d: Path, positions: str = POSITIONS) -> Path:
    return write(d, assets_csv=ASSETS, markets_csv=MARKETS, positions_csv=positions)


def test_tables_map_onto_the_schema(tmp_path: Path) -> None:
    snap = ingest_files(tables_dir(tmp_path / "in"), as_of=datetime(2024, 1, 2, tzinfo=UTC))
    want = Snapshot.from_records({
        "protocols": [{"id": "aave", "name": "aave", "kind": "lending", "close_factor": 0.5,
                       "full_close_threshold": 0.95, "reserve_usd": 0.0}],
        "pools": [{"id": "aave:main", "protocol": "aave", "kind": "lending"}],
        "assets": [{"id": "WETH", "symbol": "WETH", "kind": "wrapped", "price": 2000.0,
                    "decimals": 18, "market_depth_usd": 0.0},
                   {"id": "USDC", "symbol": "USDC", "kind": "stable", "price": 1.0,
                    "decimals": 6, "market_depth_usd": 0.0}],
        "pool_collateral": [{"pool": "aave:main", "asset": "WETH", "ltv": 0.8,
                             "liquidation_threshold": 0.825, "liquidation_bonus": 0.05}],
        "pool_lends": [{"pool": "aave:main", "asset": "WETH", "supplied": 1000.0,
                        "borrowed": 100.0},
                       {"pool": "aave:main", "asset": "USDC", "supplied": 500000.0,
                        "borrowed": 25000.0}],
        "accounts": [{"id": "alice", "kind": "user"}, {"id": "bob", "kind": "user"}],
        "positions": [{"id": "aave:main/alice", "account": "alice", "pool": "aave:main"},
                      {"id": "aave:main/bob", "account": "bob", "pool": "aave:main"}],
        "position_collateral": [{"position": "aave:main/alice", "asset": "WETH", "amount": 10.0},
                                {"position": "aave:main/bob", "asset": "WETH", "amount": 2.5}],
        "position_debt": [{"position": "aave:main/alice", "asset": "USDC", "amount": 15000.0}],
    })
    assert snap.equals(want, check_manifest=False), snap.describe_difference(
        want.with_manifest(snap.manifest))
    assert snap.manifest.as_of == datetime(2024, 1, 2, tzinfo=UTC)
    assert snap.manifest.source == "files"
    assert set(snap.manifest.params["files"]) == {"assets.csv", "markets.csv", "positions.csv"}


def test_parquet_tables_equal_csv_tables(tmp_path: Path) -> None:
    csv_dir = tables_dir(tmp_path / "csv")
    pq_dir = tmp_path / "pq"
    pq_dir.mkdir()
    for name in ("assets", "markets", "positions"):
        df = pd.read_csv(csv_dir / f"{name}.csv", dtype={"account": str})
        df.to_parquet(pq_dir / f"{name}.parquet", index=False)
    when = datetime(2024, 1, 2, tzinfo=UTC)
    assert ingest_files(pq_dir, as_of=when).equals(ingest_files(csv_dir, as_of=when),
                                                   check_manifest=False)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.floats(0, 1e12, allow_nan=False), st.floats(0, 1e9)),
                min_size=1, max_size=20))
def test_csv_round_trip_is_exact(tmp_path: Path, rows: list[tuple[float, float]]) -> None:
    """Amounts written with repr() come back bit for bit (zero rows open no position)."""
    lines = ["account,pool,asset,collateral,debt"]
    lines += [f"u{i},aave:main,WETH,{c!r},\nu{i},aave:main,USDC,,{d!r}"
              for i, (c, d) in enumerate(rows)]
    d = tables_dir(tmp_path / "rt", "\n".join(lines) + "\n")
    snap = ingest_files(d, as_of=datetime(2024, 1, 1, tzinfo=UTC))
    coll = snap["position_collateral"].set_index("position")["amount"].to_dict()
    debt = snap["position_debt"].set_index("position")["amount"].to_dict()
    for i, (c, dbt) in enumerate(rows):
        assert coll.get(f"aave:main/u{i}", 0.0) == c
        assert debt.get(f"aave:main/u{i}", 0.0) == dbt
    shutil.rmtree(d)


SUBGRAPH = {
    "data": {
        "_meta": {"block": {"number": 18000000, "timestamp": 1693526400}},
        "reserves": [
            {"id": "0xc02a0x2f39", "underlyingAsset": "0xc02a", "symbol": "WETH",
             "decimals": 18, "baseLTVasCollateral": "8050", "reserveLiquidationThreshold": "8300",
             "reserveLiquidationBonus": "10500", "usageAsCollateralEnabled": True,
             "totalATokenSupply": "2000000000000000000000",
             "totalCurrentVariableDebt": "500000000000000000000",
             "price": {"priceInEth": "164500000000"}, "pool": {"id": "0x2f39"}},
            {"id": "0xa0b80x2f39", "underlyingAsset": "0xa0b8", "symbol": "USDC",
             "decimals": 6, "baseLTVasCollateral": "7700", "reserveLiquidationThreshold": "7900",
             "reserveLiquidationBonus": "10450", "totalATokenSupply": "9000000000000",
             "totalCurrentVariableDebt": "7000000000000",
             "price": {"priceInEth": "100000000"}, "pool": {"id": "0x2f39"}},
        ],
        "userReserves": [
            {"user": {"id": "0xaaa"}, "reserve": {"id": "0xc02a0x2f39"},
             "currentATokenBalance": "1500000000000000000", "currentVariableDebt": "0",
             "usageAsCollateralEnabledOnUser": True},
            {"user": {"id": "0xaaa"}, "reserve": {"id": "0xa0b80x2f39"},
             "currentATokenBalance": "0", "currentVariableDebt": "1200500000",
             "currentStableDebt": "500000", "usageAsCollateralEnabledOnUser": False},
            {"user": {"id": "0xbbb"}, "reserve": {"id": "0xa0b80x2f39"},
             "currentATokenBalance": "250000000", "currentVariableDebt": "0",
             "usageAsCollateralEnabledOnUser": False},
        ],
    }
}


def test_subgraph_json(tmp_path: Path) -> None:
    f = tmp_path / "aave.json"
    f.write_text(json.dumps(SUBGRAPH))
    snap = ingest_files(f)
    assert snap.manifest.block == 18_000_000
    assert snap.manifest.as_of == datetime(2023, 9, 1, tzinfo=UTC)
    assets = snap["assets"].set_index("id")
    assert assets.loc["WETH", "price"] == 1645.0 and assets.loc["USDC", "decimals"] == 6
    pc = snap["pool_collateral"].set_index("asset")
    assert (pc.loc["WETH", "ltv"], pc.loc["WETH", "liquidation_threshold"],
            pc.loc["WETH", "liquidation_bonus"]) == (0.805, 0.83, 0.05)
    lends = snap["pool_lends"].set_index("asset")
    assert (lends.loc["WETH", "supplied"], lends.loc["WETH", "borrowed"]) == (2000.0, 500.0)
    # 0xaaa: 1.5 WETH collateral, 1,201 USDC debt (variable + stable); 0xbbb supplies USDC
    # without using it as collateral: no position
    assert snap["positions"]["id"].tolist() == ["aave-v3:0x2f39/0xaaa"]
    assert snap["position_collateral"][["asset", "amount"]].values.tolist() == [["WETH", 1.5]]
    assert snap["position_debt"][["asset", "amount"]].values.tolist() == [["USDC", 1201.0]]


def test_price_history_and_options_chain(tmp_path: Path) -> None:
    d = tables_dir(tmp_path / "in")
    write(d, prices_csv="timestamp,asset,close\n2024-01-01T00:00:00Z,WETH,2200\n"
                        "2024-01-02T00:00:00Z,WETH,2300\n1704153600,USDC,0.999\n"
                        "2024-01-03T00:00:00Z,WETH,2400\n",
          options_csv="instrument,underlying,kind,strike,expiry,mark_iv,open_interest,venue\n"
                      "ETH-29MAR24-2500-C,WETH,C,2500,2024-03-29T08:00:00Z,0.62,120.5,deribit\n"
                      "ETH-29MAR24-2000-P,WETH,put,2000,1711699200,0.71,80,deribit\n"
                      "ETH-29MAR24-3000-C,WETH,call,3000,1711699200,0.66,0,deribit\n")
    snap = ingest_files(d, as_of=datetime(2024, 1, 2, 12, tzinfo=UTC))
    prices = snap["assets"].set_index("id")["price"]
    assert (prices["WETH"], prices["USDC"]) == (2300.0, 0.999)  # last close <= as_of
    legs = snap["position_options"]
    assert legs[["kind", "side", "strike", "expiry", "size", "implied_vol"]].values.tolist() == [
        ["call", "short", 2500.0, 1711699200, 120.5, 0.62],
        ["put", "short", 2000.0, 1711699200, 80.0, 0.71]]  # zero open interest: no leg
    assert set(legs["position"]) == {"deribit:options/dealers"}
    assert snap["accounts"].set_index("id").loc["deribit:dealers", "kind"] == "dealer"
    hist = read_price_history(d / "prices.csv")
    assert hist.loc[hist["asset"] == "WETH", "time"].tolist() == [1704067200.0, 1704153600.0,
                                                                  1704240000.0]
    # without --as-of the snapshot is as of the last price
    assert ingest_files(d).manifest.as_of == datetime(2024, 1, 3, tzinfo=UTC)


BAD = [
    # (file, text, expected message)
    ("positions.csv", POSITIONS + "dave,aave:main,WETH,1,2,3\n",
     r"positions.csv, row 5: malformed row: 6 values for 5 columns"),
    ("positions.csv", POSITIONS.replace("collateral,debt", "collateral,debt,leverage"),
     r"positions.csv, header, field 'leverage': unknown column \(expected: account, pool, "
     r"asset, collateral, debt\)"),
    ("positions.csv", POSITIONS.replace("bob,aave:main,WETH,2.5", "bob,aave:main,WETH,2.5x"),
     r"positions.csv, row 3, field 'collateral': must be a number \(got '2.5x'\)"),
    ("positions.csv", POSITIONS.replace("alice,aave:main,USDC,,15000",
                                        "alice,aave:main,USDC,,-15000"),
     r"positions.csv, row 2, field 'debt': must be >= 0 \(got -15000.0\)"),
    ("positions.csv", POSITIONS.replace("bob,aave:main,WETH", "bob,aave:main,WBTC"),
     r"positions.csv, row 3, field 'asset': unknown asset 'WBTC' \(not in the assets file\)"),
    ("positions.csv", POSITIONS[:-12],
     r"positions.csv, row 4, field 'asset': missing: the row has 2 of 5 values \(truncated"),
    ("positions.csv", POSITIONS.replace("bob,aave:main,WETH,2.5,0", "bob,aave:main,USDC,2.5,0"),
     r"positions.csv, row 3, field 'collateral': pool 'aave:main' does not accept it as "
     r"collateral"),
    ("markets.csv", MARKETS.replace("0.8,0.825", "0.9,0.825"),
     r"markets.csv, row 1, field 'ltv': must be <= liquidation_threshold \(0.825\) \(got 0.9\)"),
    ("assets.csv", ASSETS.replace(",18,", ",eighteen,"),
     r"assets.csv, row 1, field 'decimals': must be an integer \(got 'eighteen'\)"),
    ("assets.csv", ASSETS.replace("USDC,USDC,1,6,stable", "USDC,USDC,,6,stable"),
     r"assets.csv, row 2, field 'price': asset 'USDC' has no price"),
]


@pytest.mark.parametrize(("name", "text", "message"), BAD,
                         ids=[m.split(",")[1].strip() + ":" + m.split(":")[-1][:25]
                              for _, _, m in BAD])
def test_bad_input_is_named_and_store_unchanged(tmp_path: Path, store: GraphStore, name: str,
                                                text: str, message: str) -> None:
    good = tables_dir(tmp_path / "good")
    store.write_snapshot(ingest_files(good))
    before = store.read_snapshot()
    bad = tables_dir(tmp_path / "bad")
    (bad / name).write_text(text)
    with pytest.raises(IngestError, match=message):
        ingest_files(bad)
    assert store.read_snapshot().equals(before)


def test_bad_files_of_other_kinds(tmp_path: Path) -> None:
    d = tables_dir(tmp_path / "pq")
    pd.read_csv(d / "positions.csv").to_parquet(d / "positions.parquet", index=False)
    (d / "positions.csv").unlink()
    blob = (d / "positions.parquet").read_bytes()
    (d / "positions.parquet").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(IngestError, match=r"positions.parquet: not a readable Parquet file "
                                          r"\(truncated\?\)"):
        ingest_files(d)
    pd.DataFrame({"account": ["a"], "pool": ["aave:main"], "asset": ["WETH"],
                  "collateral": ["ten"], "debt": [0.0]}).to_parquet(d / "positions.parquet")
    with pytest.raises(IngestError, match=r"positions.parquet, row 1, field 'collateral': "
                                          r"must be a number \(got 'ten'\)"):
        ingest_files(d)
    f = tmp_path / "sub.json"
    doc = json.loads(json.dumps(SUBGRAPH))
    doc["data"]["userReserves"][2]["currentATokenBalance"] = "-5"
    f.write_text(json.dumps(doc))
    with pytest.raises(IngestError, match=r"sub.json, data.userReserves\[2\]."
                                          r"currentATokenBalance: must be >= 0 \(got '-5'\)"):
        ingest_files(f)
    doc["data"]["userReserves"][2]["currentATokenBalance"] = "1"
    doc["data"]["userReserves"][1]["reserve"]["id"] = "0xdead"
    f.write_text(json.dumps(doc))
    with pytest.raises(IngestError, match=r"data.userReserves\[1\].reserve: unknown reserve "
                                          r"'0xdead'"):
        ingest_files(f)
    f.write_text(json.dumps(SUBGRAPH)[:700])
    with pytest.raises(IngestError, match=r"sub.json: not valid JSON \(truncated\?\)"):
        ingest_files(f)
    d2 = tables_dir(tmp_path / "opt")
    write(d2, options_csv="instrument,underlying,kind,strike,expiry,mark_iv,open_interest\n"
                          "BTC-1,BTC,call,50000,1711699200,0.6,10\n")
    with pytest.raises(IngestError, match=r"options.csv, row 1, field 'underlying': unknown "
                                          r"asset 'BTC'"):
        ingest_files(d2)


def test_reingest_changes_nothing_and_later_files_update(tmp_path: Path,
                                                         store: GraphStore) -> None:
    d = tables_dir(tmp_path / "in")
    first = store.write_snapshot(ingest_files(d))
    assert first.added["Position"] == 2
    assert not store.write_snapshot(ingest_files(d)).changed
    # later: alice repays part, bob closes, dave opens
    later = POSITIONS.replace("USDC,,15000", "USDC,,9000").replace("bob,aave:main,WETH,2.5,0",
                                                                   "dave,aave:main,WETH,1,0")
    (d / "positions.csv").write_text(later)
    s = store.write_snapshot(ingest_files(d))
    assert (s.added["Position"], s.removed["Position"], s.updated["DEBT"]) == (1, 1, 1)
    assert (s.added["Account"], s.removed["Account"]) == (1, 1)
    got = store.read_snapshot()
    assert got["position_debt"]["amount"].tolist() == [9000.0]
    assert sorted(got["positions"]["id"]) == ["aave:main/alice", "aave:main/dave"]


def test_snapshot_directory(tmp_path: Path) -> None:
    snap = tiny_snapshot()
    snap.save(tmp_path / "snap")
    assert ingest_files(tmp_path / "snap").equals(snap)
