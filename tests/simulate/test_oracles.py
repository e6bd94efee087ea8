"""The oracle channel (simulate/cascade/oracles.py, docs/architecture.md §4.2): hand-solved
cases in both kernels, the oracle book on its own, the manipulation cost, validation, and the
fast kernel held to the reference with oracles."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

from graph.export import SystemArrays, compile_system
from graph.snapshot import Manifest, Snapshot
from simulate.cascade import CascadeParams, Shocks, compile_cascade, run_fast, run_reference
from simulate.cascade.oracles import OracleBook, compile_oracles, push_cost, round_times
from simulate.cascade.run import run_cascade
from simulate.cascade.scenario import fixed_shocks
from simulate.scenarios import FixedShockScenario
from tests.helpers import assert_same_paths, generated_system

KERNELS = [run_reference, run_fast]
_MANIFEST = Manifest(name="oracles", block=18_000_000, as_of=datetime(2023, 9, 1, tzinfo=UTC),
                     source="hand-built")
_TABLES = ("protocols", "oracles", "assets", "pools", "accounts", "positions",
           "pool_collateral", "pool_lends", "pool_holdings", "protocol_deposits",
           "position_collateral", "position_debt", "position_options")


def _system(records: dict[str, list[dict[str, Any]]]) -> SystemArrays:
    full = {t: records.get(t, []) for t in _TABLES}
    return compile_system(Snapshot.from_records(full, _MANIFEST))


def _params(mode: str, **kw: Any) -> CascadeParams:
    """Perfect liquidators (the arithmetic below has no profit check or capacity)."""
    return CascadeParams.frictionless(oracles=mode, **kw)


def _shocks(s: SystemArrays, moves: dict[str, float], steps: int = 1) -> Shocks:
    x = np.ones((1, steps, len(s.asset_ids)))
    for k, v in moves.items():
        x[..., list(s.asset_ids).index(k)] = v
    return Shocks(x, np.ones_like(x), np.arange(steps, dtype=float))


# --- wstETH under an exchange-rate oracle --------------------------------------------------


def _wsteth() -> SystemArrays:
    return _system({
        "protocols": [
            {"id": "aave", "name": "Aave", "kind": "lending", "close_factor": 0.5,
             "full_close_threshold": 0.95, "reserve_usd": 0.0},
            {"id": "lido", "name": "Lido", "kind": "lst", "close_factor": 1.0,
             "full_close_threshold": 1.0, "reserve_usd": 0.0}],
        "oracles": [{"id": "o:ETH", "kind": "feed"}, {"id": "o:stETH", "kind": "feed"},
                    {"id": "o:wstETH", "kind": "exchange_rate", "reads": "lido:staking"}],
        "assets": [
            {"id": "ETH", "symbol": "ETH", "kind": "native", "price": 2000.0, "decimals": 18,
             "market_depth_usd": 1e9, "oracle": "o:ETH"},
            {"id": "stETH", "symbol": "stETH", "kind": "lst", "price": 2000.0, "decimals": 18,
             "market_depth_usd": 1e9, "issuer": "lido", "pegged_to": "ETH",
             "oracle": "o:stETH"},
            {"id": "wstETH", "symbol": "wstETH", "kind": "wrapped", "price": 2200.0,
             "decimals": 18, "market_depth_usd": 0.0, "issuer": "lido",
             "pegged_to": "stETH", "oracle": "o:wstETH"}],
        "pools": [{"id": "aave:main", "protocol": "aave", "kind": "lending"},
                  {"id": "lido:staking", "protocol": "lido", "kind": "staking"}],
        "accounts": [{"id": "alice", "kind": "user"}],
        "positions": [{"id": "p1", "account": "alice", "pool": "aave:main"}],
        "pool_collateral": [{"pool": "aave:main", "asset": "wstETH", "ltv": 0.7,
                             "liquidation_threshold": 0.8, "liquidation_bonus": 0.05}],
        "pool_lends": [{"pool": "aave:main", "asset": "ETH", "supplied": 1000.0,
                        "borrowed": 8.5}],
        "pool_holdings": [{"pool": "lido:staking", "asset": "ETH", "amount": 5000.0}],
        "position_collateral": [{"position": "p1", "asset": "wstETH", "amount": 10.0}],
        "position_debt": [{"position": "p1", "asset": "ETH", "amount": 8.5}],
    })


@pytest.mark.parametrize("kernel", KERNELS)
def test_wsteth_survives_a_steth_discount_under_its_exchange_rate_oracle(kernel: Any) -> None:
    """10 wstETH (2,200 each, LT 0.8) against 8.5 ETH (2,000): HF0 = 17,600 / 17,000 = 1.0353.
    stETH trades at 0.93 ETH (wstETH follows it on the market: 2,046).

    Market valuation: HF = 10·2,046·0.8 / 17,000 = 0.9628 ≥ 0.95, so the close factor is 0.5:
    repay 8,500, seize 8,500·1.05 = 8,925 of the 20,460 collateral (φ = 0.43622) in round 0.
    Exchange-rate oracle: wstETH = β_lido·β_lido·ETH's feed = 2,200 (no bad debt, ETH did not
    move): HF stays 1.0353, nothing is liquidated."""
    s = _wsteth()
    cs = compile_cascade(s)
    shocks = _shocks(s, {"stETH": 0.93, "wstETH": 0.93})
    market = kernel(cs, shocks, _params("market"))
    assert market.liquidated_usd[0, 0] == pytest.approx(8925.0, rel=1e-12)
    assert market.liquidated_usd[0, 1:].sum() == 0.0
    assert market.position_failures.tolist() == [1]
    modelled = kernel(cs, shocks, _params("modelled"))
    assert modelled.liquidated_usd.sum() == 0.0
    assert modelled.position_failures.tolist() == [0]


def test_exchange_rate_redeems_down_the_chain_at_each_issuers_backing() -> None:
    """wstETH → stETH → ETH, both hops issued by Lido: o = β² · o_ETH. With β = 0.9 and ETH's
    feed at 0.8 (moved 20%, past its threshold): 0.81 · 0.8 = 0.648; stETH's own feed follows
    its market (0.7)."""
    s = _wsteth()
    orc = compile_oracles(s)
    book = OracleBook(orc, 1, round_times(np.zeros(1), 3, 60.0), "modelled")
    m = np.array([[0.8, 0.7, 0.7]])  # ETH, stETH, wstETH
    beta = np.array([[1.0, 0.9]])  # aave, lido
    o = book.read(np.array([0]), 0, m, beta)
    np.testing.assert_allclose(o[0], [0.8, 0.7, 0.648], rtol=1e-15)


# --- a token priced by a TWAP and a stablecoin by a fixed oracle ------------------------------


def _twap(window: float | None = 60.0, feed: dict[str, float] | None = None) -> SystemArrays:
    """TKN (10 USD) priced by a TWAP of the constant-product pool uni:TKN-USDC (1e6 TKN,
    1e7 USDC, fee 0.3%); USDC by a fixed oracle. p1: 1,500 TKN (LT 0.8) against 8,000 USDC:
    HF0 = 12,000 / 8,000 = 1.5. ``feed``: TKN by a feed with these parameters instead."""
    tkn_oracle: dict[str, Any] = {"id": "o:TKN", "kind": "twap", "reads": "uni:TKN-USDC",
                                  "twap_window_seconds": window}
    if feed is not None:
        tkn_oracle = {"id": "o:TKN", "kind": "feed", **feed}
    return _system({
        "protocols": [
            {"id": "aave", "name": "Aave", "kind": "lending", "close_factor": 0.5,
             "full_close_threshold": 0.95, "reserve_usd": 0.0},
            {"id": "uni", "name": "Uniswap", "kind": "dex", "close_factor": 1.0,
             "full_close_threshold": 1.0, "reserve_usd": 0.0}],
        "oracles": [tkn_oracle, {"id": "o:USDC", "kind": "fixed"}],
        "assets": [
            {"id": "TKN", "symbol": "TKN", "kind": "token", "price": 10.0, "decimals": 18,
             "market_depth_usd": 0.0, "oracle": "o:TKN"},
            {"id": "USDC", "symbol": "USDC", "kind": "stable", "price": 1.0, "decimals": 6,
             "market_depth_usd": 1e9, "oracle": "o:USDC"}],
        "pools": [{"id": "aave:main", "protocol": "aave", "kind": "lending"},
                  {"id": "uni:TKN-USDC", "protocol": "uni", "kind": "amm", "fee": 0.003}],
        "accounts": [{"id": "alice", "kind": "user"}],
        "positions": [{"id": "p1", "account": "alice", "pool": "aave:main"}],
        "pool_collateral": [{"pool": "aave:main", "asset": "TKN", "ltv": 0.7,
                             "liquidation_threshold": 0.8, "liquidation_bonus": 0.05}],
        "pool_lends": [{"pool": "aave:main", "asset": "USDC", "supplied": 1e6,
                        "borrowed": 8000.0}],
        "pool_holdings": [{"pool": "uni:TKN-USDC", "asset": "TKN", "amount": 1e6},
                          {"pool": "uni:TKN-USDC", "asset": "USDC", "amount": 1e7}],
        "position_collateral": [{"position": "p1", "asset": "TKN",
                                 "amount": 1000.0 if feed is not None else 1500.0}],
        "position_debt": [{"position": "p1", "asset": "USDC",
                           "amount": 7960.2 if feed is not None else 8000.0}],
    })


def test_twap_averages_the_pool_price_over_its_window() -> None:
    """Window 60 s, rounds of 12 s from T_0 = 0; the pool's price falls to 0.5 in round 0 and
    stays. At T_t the window [12t − 60, 12t] holds the snapshot price for 60 − 12t seconds and
    0.5 for 12t: TWAP = 1 − 0.1t, i.e. 1, 0.9, 0.8, 0.7, 0.6, 0.5, then 0.5."""
    s = _twap()
    book = OracleBook(compile_oracles(s), 1, round_times(np.zeros(1), 8, 12.0), "modelled")
    seen = [book.read(np.array([0]), t, np.array([[0.5, 1.0]]), np.ones((1, 2)))[0, 0]
            for t in range(8)]
    np.testing.assert_allclose(seen, [1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.5, 0.5], rtol=1e-12)
    assert not book.pending(np.array([0]))[0]


@pytest.mark.parametrize("kernel", KERNELS)
def test_a_lagging_twap_delays_the_liquidation(kernel: Any) -> None:
    """TKN falls 50%. Market valuation: HF = 0.75 in round 0. TWAP (60 s, rounds of 12 s):
    o_t = 1 − 0.1t, HF_t = 1.5·o_t = 1.5, 1.35, 1.2, 1.05, 0.9: liquidated in round 4, with
    HF 0.9 < 0.95 (close factor 1): the protocol repays 8,000 and seizes 8,400 of 1,500·10·0.6
    = 9,000 at the oracle (φ = 0.93333), which is φ·7,500 = 7,000 at market."""
    cs = compile_cascade(_twap())
    shocks = _shocks(cs.arrays, {"TKN": 0.5})
    market = kernel(cs, shocks, _params("market", rounds=10, round_seconds=12.0))
    assert market.liquidated_usd[0, 0] > 0
    res = kernel(cs, shocks, _params("modelled", rounds=10, round_seconds=12.0))
    np.testing.assert_array_equal(res.liquidated_usd[0, :4], 0.0)
    assert res.liquidated_usd[0, 4] == pytest.approx(7000.0, rel=1e-12)
    assert res.bad_debt_pool.sum() == 0.0


@pytest.mark.parametrize("kernel", KERNELS)
def test_a_feed_inside_its_threshold_waits_for_the_heartbeat(kernel: Any) -> None:
    """A feed with δ = 1% and a 120 s heartbeat, rounds of 60 s. p1: 1,000 TKN (LT 0.8)
    against 7,960.2 USDC: HF0 = 8,000 / 7,960.2 = 1.0050. TKN falls 0.8%, inside δ: the feed
    keeps reporting 10 in rounds 0 and 1 (T = 0, 60 s) and reports 9.92 at T = 120 s, round 2:
    HF = 7,936 / 7,960.2 = 0.99696, liquidated then (market valuation: in round 0)."""
    cs = compile_cascade(_twap(feed={"deviation_threshold": 0.01, "heartbeat_seconds": 120.0}))
    shocks = _shocks(cs.arrays, {"TKN": 0.992})
    market = kernel(cs, shocks, _params("market", rounds=6))
    assert market.liquidated_usd[0, 0] > 0
    res = kernel(cs, shocks, _params("modelled", rounds=6))
    np.testing.assert_array_equal(res.liquidated_usd[0, :2], 0.0)
    assert res.liquidated_usd[0, 2] > 0
    assert res.position_failures.tolist() == [1]


def test_a_feed_past_its_threshold_reports_at_once() -> None:
    """δ = 1%: a 0.8% move is held back, a further fall to 0.98 (2% from the report) is
    reported in the same round."""
    s = _twap(feed={"deviation_threshold": 0.01, "heartbeat_seconds": 3600.0})
    book = OracleBook(compile_oracles(s), 1, round_times(np.zeros(1), 4, 60.0), "modelled")
    r = np.array([0])
    first = book.read(r, 0, np.array([[0.992, 1.0]]), np.ones((1, 2)))[0, 0]
    second = book.read(r, 1, np.array([[0.98, 1.0]]), np.ones((1, 2)))[0, 0]
    assert (first, second) == (1.0, 0.98)


@pytest.mark.parametrize("kernel", KERNELS)
def test_a_fixed_oracle_never_moves(kernel: Any) -> None:
    """USDC (the debt) trades 60% above its peg: at market the debt is 12,800 and HF = 12,000 /
    12,800 = 0.9375 (liquidated); the fixed oracle keeps it at 1 and HF at 1.5."""
    cs = compile_cascade(_twap())
    shocks = _shocks(cs.arrays, {"USDC": 1.6})
    assert kernel(cs, shocks, _params("market")).liquidated_usd.sum() > 0
    res = kernel(cs, shocks, _params("modelled"))
    assert res.liquidated_usd.sum() == 0.0


# --- manipulation -----------------------------------------------------------------------------


def test_push_cost_on_a_constant_product_pool() -> None:
    """x = 1e6 TKN at 10 USD: y = 1e7. Push up 44%: q = 1.44, √q = 1.2. Capital y·(√q − 1) =
    2,000,000; each block's round trip loses y·(√q − 2 + 1/√q) = 1e7·(1.2 − 2 + 0.8333…) =
    333,333.33 plus the 0.3% fee on the capital (6,000): 339,333.33; a 60 s TWAP window is
    5 blocks: 1,696,666.67. Push down 36%: q = 0.64, capital 1e7·(1/0.8 − 1) = 2,500,000,
    loss 1e7·(0.8 − 2 + 1.25) + 7,500 = 507,500 per block."""
    s = _twap()
    orc = compile_oracles(s)
    up = push_cost(s, orc, 0, 0.44)
    assert (up.pool, up.blocks) == ("uni:TKN-USDC", 5)
    assert up.capital_usd == pytest.approx(2e6, rel=1e-12)
    assert up.loss_per_block_usd == pytest.approx(339_333.3333333, rel=1e-9)
    assert up.cost_usd == pytest.approx(1_696_666.666667, rel=1e-9)
    down = push_cost(s, orc, 0, -0.36)
    assert down.capital_usd == pytest.approx(2.5e6, rel=1e-12)
    assert down.loss_per_block_usd == pytest.approx(507_500.0, rel=1e-9)


@pytest.mark.parametrize("kernel", ["fast", "reference"])
def test_a_pushed_spot_oracle_liquidates_without_moving_the_market(kernel: Any) -> None:
    """A spot read (window 0) pushed down 36%: o = 0.64, HF = 1.5·0.64 = 0.96 ≥ 0.95, close
    factor 0.5: repay 4,000, seize 4,200 of the 9,600 the oracle sees (φ = 0.4375), worth
    0.4375·15,000 = 6,562.5 at market, which did not move. The run states the cost: one block,
    1e7·0.05 + 0.003·2.5e6 = 507,500."""
    s = _twap(window=0.0)
    sc = FixedShockScenario(name="push", oracle_pushes={"TKN": -0.36})
    res = run_cascade(s, sc, params=_params("modelled"), kernel=kernel)
    assert res.paths.liquidated_usd[0, 0] == pytest.approx(6562.5, rel=1e-12)
    np.testing.assert_array_equal(res.paths.price_rel[0, 0], [1.0, 1.0])
    cost = res.inputs["oracle_pushes"]["TKN"]
    assert (cost["blocks"], cost["pool"]) == (1, "uni:TKN-USDC")
    assert cost["cost_usd"] == pytest.approx(507_500.0, rel=1e-9)
    assert res.inputs["oracles"]["valuation"] == "modelled"
    assert res.spec.params.oracles == "modelled"
    market = run_cascade(s, sc, params=_params("market"), kernel=kernel)
    assert market.paths.liquidated_usd.sum() == 0.0
    assert market.inputs["oracles"]["valuation"] == "market"


def test_pushes_are_validated() -> None:
    with pytest.raises(ValueError, match=r"oracle_pushes\.TKN must not be 0"):
        FixedShockScenario(name="push", oracle_pushes={"TKN": 0.0})
    with pytest.raises(ValueError, match=r"oracle_pushes\.TKN must be > -1"):
        FixedShockScenario(name="push", oracle_pushes={"TKN": -1.5})
    s = _twap()
    with pytest.raises(ValueError, match=r"oracle_pushes\.USDC: USDC is priced by a fixed "
                                         r"oracle; only a TWAP"):
        fixed_shocks(FixedShockScenario(name="push", oracle_pushes={"USDC": 0.1}), s)
    feed = _twap(feed={})
    with pytest.raises(ValueError, match=r"oracle_pushes\.TKN: TKN is priced by a feed"):
        fixed_shocks(FixedShockScenario(name="push", oracle_pushes={"TKN": 0.1}), feed)


def test_a_parameter_on_an_oracle_that_does_not_read_it_is_refused() -> None:
    s = _twap(feed={"twap_window_seconds": 600.0})
    with pytest.raises(ValueError, match=r"oracle o:TKN: 'twap_window_seconds' applies to twap "
                                         r"oracles only \(kind feed\)"):
        compile_oracles(s)


def test_round_times_combine_elapsed_days_and_round_seconds() -> None:
    """Three daily steps (days 1, 2, 3), then rounds of 60 s after the last step."""
    t = round_times(np.array([1.0, 2.0, 3.0]), 5, 60.0)
    np.testing.assert_array_equal(t, [86400.0, 172800.0, 259200.0, 259260.0, 259320.0,
                                      259380.0])


# --- fast = reference ----------------------------------------------------------------------


@pytest.mark.parametrize("seed", [1])
def test_fast_equals_reference_with_oracles(seed: int) -> None:
    """A generated ecosystem (feeds, a TWAP, exchange-rate and fixed oracles) under random
    multi-step moves: the fast kernel's pruning on oracle-relative prices loses nothing."""
    s = generated_system(120, seed)
    cs = compile_cascade(s)
    rng = np.random.default_rng(seed)
    n, steps = 12, 3
    x = np.exp(np.cumsum(rng.normal(-0.08, 0.12, (n, steps, len(s.asset_ids))), axis=1))
    shocks = Shocks(x, np.ones_like(x), np.array([0.0, 0.01, 0.02]))
    params = CascadeParams(rounds=12, round_seconds=300.0)
    ref = run_reference(cs, shocks, params)
    assert ref.liquidated_usd.sum() > 0
    assert_same_paths(ref, run_fast(cs, shocks, params, chunk_paths=7))
    market = run_reference(cs, shocks, params.model_copy(update={"oracles": "market"}))
    assert not np.array_equal(market.liquidated_usd, ref.liquidated_usd)
