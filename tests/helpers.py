"""Small hand-built ecosystems shared by the tests (their numbers are worked out by hand)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from graph.export import SystemArrays, compile_system
from graph.snapshot import Manifest, Snapshot
from ingest.generate import generate_ecosystem
from simulate.cascade import Shocks, fixed_shocks
from simulate.cascade.paths import PathResults
from simulate.scenarios import FixedShockScenario

__all__ = ["MARKET_DATA", "TINY_RECORDS", "assert_same_paths", "fixed_paths", "generated_system",
           "tiny_records", "tiny_snapshot"]

#: The real public market data the project ships (``data/market``, sources and licences in
#: ``data/README.md``); ``CONTAGION_DATA`` points the tests at another directory of the same
#: layout (a larger collection, for extended validation).
MARKET_DATA = Path(os.environ.get("CONTAGION_DATA",
                                  Path(__file__).resolve().parents[1] / "data" / "market"))

TINY_RECORDS: dict[str, list[dict[str, Any]]] = {
    "protocols": [
        {"id": "aave", "name": "Aave", "kind": "lending", "close_factor": 0.5,
         "full_close_threshold": 0.95, "reserve_usd": 1000.0},
        {"id": "lido", "name": "Lido", "kind": "lst", "close_factor": 1.0,
         "full_close_threshold": 1.0, "reserve_usd": 0.0},
        {"id": "curve", "name": "Curve", "kind": "dex", "close_factor": 1.0,
         "full_close_threshold": 1.0, "reserve_usd": 0.0},
        {"id": "deribit", "name": "Deribit", "kind": "options", "close_factor": 1.0,
         "full_close_threshold": 1.0, "reserve_usd": 50000.0},
    ],
    "oracles": [
        {"id": "oracle:ETH", "kind": "feed"},
        {"id": "oracle:USDC", "kind": "fixed"},
        {"id": "oracle:stETH", "kind": "twap", "reads": "curve:steth-eth"},
    ],
    "assets": [
        {"id": "ETH", "symbol": "ETH", "kind": "native", "price": 2000.0, "decimals": 18,
         "market_depth_usd": 5e7, "oracle": "oracle:ETH"},
        {"id": "USDC", "symbol": "USDC", "kind": "stable", "price": 1.0, "decimals": 6,
         "market_depth_usd": 2e7, "oracle": "oracle:USDC"},
        {"id": "stETH", "symbol": "stETH", "kind": "lst", "price": 1980.0, "decimals": 18,
         "market_depth_usd": 5e6, "issuer": "lido", "pegged_to": "ETH",
         "oracle": "oracle:stETH"},
    ],
    "pools": [
        {"id": "aave:main", "protocol": "aave", "kind": "lending"},
        {"id": "curve:steth-eth", "protocol": "curve", "kind": "amm", "fee": 0.0004,
         "amplification": 50.0},
        {"id": "lido:staking", "protocol": "lido", "kind": "staking"},
        {"id": "deribit:margin", "protocol": "deribit", "kind": "options",
         "maintenance_margin": 0.1, "liquidation_penalty": 0.05},
    ],
    "accounts": [
        {"id": "alice", "kind": "user"},
        {"id": "bob", "kind": "user"},
        {"id": "carol", "kind": "dealer"},
    ],
    "positions": [
        {"id": "p1", "account": "alice", "pool": "aave:main"},
        {"id": "p2", "account": "bob", "pool": "aave:main"},
        {"id": "p3", "account": "carol", "pool": "aave:main"},
        {"id": "p4", "account": "carol", "pool": "deribit:margin"},
    ],
    "pool_collateral": [
        {"pool": "aave:main", "asset": "ETH", "ltv": 0.8, "liquidation_threshold": 0.825,
         "liquidation_bonus": 0.05},
        {"pool": "aave:main", "asset": "stETH", "ltv": 0.7, "liquidation_threshold": 0.8,
         "liquidation_bonus": 0.07},
        {"pool": "deribit:margin", "asset": "USDC", "ltv": 1.0, "liquidation_threshold": 1.0,
         "liquidation_bonus": 0.0},
    ],
    "pool_lends": [
        {"pool": "aave:main", "asset": "USDC", "supplied": 1e6, "borrowed": 28000.0},
        {"pool": "aave:main", "asset": "ETH", "supplied": 1000.0, "borrowed": 0.0},
    ],
    "pool_holdings": [
        {"pool": "curve:steth-eth", "asset": "ETH", "amount": 1000.0},
        {"pool": "curve:steth-eth", "asset": "stETH", "amount": 1010.0},
        {"pool": "lido:staking", "asset": "ETH", "amount": 5000.0},
    ],
    "protocol_deposits": [
        {"protocol": "lido", "pool": "curve:steth-eth", "amount_usd": 100000.0},
    ],
    # p1: HF = 10*2000*0.825 / 10000 = 1.65
    # p2: HF = (10*1980*0.8 + 1*2000*0.825) / 18000 = 17490 / 18000 = 0.971666...
    # p3: no debt, HF = inf
    "position_collateral": [
        {"position": "p1", "asset": "ETH", "amount": 10.0},
        {"position": "p2", "asset": "stETH", "amount": 10.0},
        {"position": "p2", "asset": "ETH", "amount": 1.0},
        {"position": "p3", "asset": "ETH", "amount": 1.0},
        {"position": "p4", "asset": "USDC", "amount": 250000.0},
    ],
    "position_debt": [
        {"position": "p1", "asset": "USDC", "amount": 10000.0},
        {"position": "p2", "asset": "USDC", "amount": 18000.0},
    ],
    "position_options": [
        {"position": "p4", "asset": "ETH", "kind": "call", "side": "short", "strike": 2200.0,
         "expiry": 1_696_118_400, "size": 5.0, "implied_vol": 0.6},
        {"position": "p4", "asset": "ETH", "kind": "put", "side": "short", "strike": 1800.0,
         "expiry": 1_696_118_400, "size": 5.0, "implied_vol": 0.65},
    ],
}

TINY_MANIFEST = Manifest(name="tiny", block=18_000_000,
                         as_of=datetime(2023, 9, 1, tzinfo=UTC), source="hand-built")


def tiny_records() -> dict[str, list[dict[str, Any]]]:
    """A fresh deep copy of :data:`TINY_RECORDS`, safe to mutate in a test."""
    return {k: [dict(r) for r in v] for k, v in TINY_RECORDS.items()}


def tiny_snapshot() -> Snapshot:
    return Snapshot.from_records(TINY_RECORDS, TINY_MANIFEST)


@cache
def generated_system(positions: int, seed: int) -> SystemArrays:
    """The compiled arrays of a generated ecosystem (cached: do not mutate them)."""
    return compile_system(generate_ecosystem(positions, seed))


def fixed_paths(system: SystemArrays, moves: list[tuple[float, float, float, float]]) -> Shocks:
    """One fixed-shock path per (ETH shock, BTC shock, stETH depeg, IV multiplier of ETH and
    BTC); other tokens move as ETH."""
    parts = [fixed_shocks(FixedShockScenario(
        name="s", shocks={"ETH": e, "BTC": b}, depegs={"stETH": d},
        iv_multipliers={"ETH": v, "BTC": v}, proxy="ETH"), system) for e, b, d, v in moves]
    return Shocks(np.concatenate([p.price for p in parts]),
                  np.concatenate([p.iv for p in parts]), parts[0].elapsed_days)


def assert_same_paths(a: PathResults, b: PathResults) -> None:
    """Two kernels' results agree: amounts to 1e-9 relative, counts, failures and their
    causes exactly."""
    for k in ("bad_debt_pool", "liquidated_usd", "price_rel", "liquidated_snapshot_usd",
              "cross_loss_protocol"):
        np.testing.assert_allclose(getattr(a, k), getattr(b, k), rtol=1e-9, atol=1e-6,
                                   err_msg=k)
    for k in ("rounds", "fail_protocol", "fail_pool", "fail_asset", "position_failures",
              "account_failures", "protocol_cause", "protocol_cause_src", "asset_cause",
              "asset_cause_src"):
        np.testing.assert_array_equal(getattr(a, k), getattr(b, k), err_msg=k)
