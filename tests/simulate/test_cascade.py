"""The cascade: a hand-solved three-protocol cascade, the liquidation arithmetic, invariants on
generated ecosystems, fast kernel = reference kernel, and reproducible runs."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from helpers import MARKET_DATA, assert_same_paths, fixed_paths, generated_system
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graph.export import SystemArrays, compile_system
from graph.snapshot import Manifest, Snapshot
from graph.vocab import PoolKind
from simulate.cascade import (
    CascadeParams,
    PathResults,
    Shocks,
    compile_cascade,
    fixed_shocks,
    run_fast,
    run_reference,
)
from simulate.cascade.mechanics import backing, impact, liquidation, margin_closeout
from simulate.cascade.metrics import summarize
from simulate.cascade.run import RunResult, compare_runs, run_cascade
from simulate.market import MarketModel, fit_market_model
from simulate.prices import read_closes
from simulate.scenarios import FixedShockScenario, MonteCarloScenario, ScenarioError
from simulate.scenarios.library import load_scenario

# --- the hand-solved cascade ---------------------------------------------------------------------

CASCADE_RECORDS: dict[str, list[dict[str, Any]]] = {
    "protocols": [
        {"id": "A", "name": "Lender A", "kind": "lending", "close_factor": 0.5,
         "full_close_threshold": 0.95, "reserve_usd": 0.0},
        {"id": "B", "name": "Lender B", "kind": "lending", "close_factor": 1.0,
         "full_close_threshold": 1.0, "reserve_usd": 0.0},
        {"id": "C", "name": "DEX C", "kind": "dex", "close_factor": 1.0,
         "full_close_threshold": 1.0, "reserve_usd": 0.0},
    ],
    "oracles": [{"id": "o", "kind": "feed"}],
    "assets": [
        {"id": "ETH", "symbol": "ETH", "kind": "native", "price": 100.0, "decimals": 18,
         "market_depth_usd": 0.0},
        {"id": "USDC", "symbol": "USDC", "kind": "stable", "price": 1.0, "decimals": 6,
         "market_depth_usd": 1e12},
        {"id": "aETH", "symbol": "aETH", "kind": "receipt", "price": 100.0, "decimals": 18,
         "market_depth_usd": 0.0, "issuer": "A", "pegged_to": "ETH"},
    ],
    "pools": [
        {"id": "A:main", "protocol": "A", "kind": "lending"},
        {"id": "B:main", "protocol": "B", "kind": "lending"},
        {"id": "C:eth-usdc", "protocol": "C", "kind": "amm", "fee": 0.003},
    ],
    "accounts": [{"id": "u1", "kind": "user"}, {"id": "u2", "kind": "user"}],
    "positions": [{"id": "a1", "account": "u1", "pool": "A:main"},
                  {"id": "b1", "account": "u2", "pool": "B:main"}],
    "pool_collateral": [
        {"pool": "A:main", "asset": "ETH", "ltv": 0.75, "liquidation_threshold": 0.8,
         "liquidation_bonus": 0.1},
        {"pool": "B:main", "asset": "aETH", "ltv": 0.8, "liquidation_threshold": 0.9,
         "liquidation_bonus": 0.05},
    ],
    "pool_lends": [
        {"pool": "A:main", "asset": "USDC", "supplied": 1000.0, "borrowed": 780.0},
        {"pool": "B:main", "asset": "USDC", "supplied": 1000.0, "borrowed": 700.0},
    ],
    "pool_holdings": [{"pool": "C:eth-usdc", "asset": "ETH", "amount": 1000.0},
                      {"pool": "C:eth-usdc", "asset": "USDC", "amount": 100_000.0}],
    "protocol_deposits": [],
    "position_collateral": [{"position": "a1", "asset": "ETH", "amount": 10.0},
                            {"position": "b1", "asset": "aETH", "amount": 10.0}],
    "position_debt": [{"position": "a1", "asset": "USDC", "amount": 780.0},
                      {"position": "b1", "asset": "USDC", "amount": 700.0}],
    "position_options": [],
}
MANIFEST = Manifest(name="cascade", as_of=datetime(2023, 1, 1, tzinfo=UTC), source="hand")


def cascadegenerated_system() -> SystemArrays:
    return compile_system(Snapshot.from_records(CASCADE_RECORDS, MANIFEST))


ETH_DOWN_20 = FixedShockScenario(name="eth-down-20", shocks={"ETH": -0.2})


@pytest.mark.parametrize("kernel", [run_reference, run_fast])
def test_three_protocol_cascade_by_hand(kernel: Any) -> None:
    """A receipt token of lender A (aETH) is the collateral of lender B; DEX C holds the only
    ETH liquidity (constant product, 1000 ETH). ETH falls 20%.

    Round 0, ETH at 80 (aETH too: it follows ETH, A is fully backed):
      a1 (10 ETH, 780 USDC, LT 0.8, LB 0.1): HF = 10·80·0.8/780 = 0.8205 < 0.95, so A's close
      factor is 1: repaying 780 needs 780·1.1 = 858 > 800 of collateral. All 10 ETH are seized
      (800 USD), the liquidator repays 800/1.1 = 727.27, and 780 - 727.27 = 52.73 is bad debt
      of A (reserve 0). A is backed at β = 1 - 52.73/1000 (its depositors' 1000 USDC).
      b1 (10 aETH, 700 USDC, LT 0.9): HF = 10·80·0.9/700 = 1.0286, safe.
    Round 1: the 10 ETH went into C: ETH × (1000/1010)² = 0.980296; aETH × that × β:
      p(aETH) = 80·0.980296·0.947273 = 74.288; b1: HF = 10·74.288·0.9/700 = 0.9551 < 1; B
      closes fully: repays 700, seizes 700·1.05 = 735 of 742.88 (φ = 0.98939), no bad debt.
      The 9.8939 aETH are redeemed into ETH (9.8939·74.288/78.424 = 9.372 ETH) and sold.
    Round 2: half of round 0's pressure has been absorbed (``impact_recovery`` 0.5): ETH's
      reserve carries 10·0.5 + 9.372 ETH of sales; nothing is left to liquidate: stable after
      2 rounds.
    Failures: A (bad debt above its reserve) in round 0; aETH (0.947 of ETH, beyond the 5%
    threshold) in round 1; a1, b1 and their accounts.
    Perfect liquidators (``CascadeParams.frictionless()``): with the default liquidator
    economics, buying the repaid USDC moves USDC too (tests/simulate/test_liquidators.py).
    """
    system = cascadegenerated_system()
    cs = compile_cascade(system)
    res = kernel(cs, fixed_shocks(ETH_DOWN_20, system), CascadeParams.frictionless())

    eth, aeth = 80.0, None
    bad = 780.0 - 800.0 / 1.1
    beta = 1.0 - bad / 1000.0
    i1 = (1000.0 / 1010.0) ** 2
    aeth = 100.0 * 0.8 * i1 * beta
    cv_b = 10 * aeth
    phi_b = 700.0 * 1.05 / cv_b
    eth_sold = 10.0 * 0.5 + phi_b * 10 * aeth / (eth * i1)
    i2 = (1000.0 / (1000.0 + eth_sold)) ** 2

    assert cs.reserve[0] == pytest.approx(1000.0)  # ETH: the constant-product reserve
    np.testing.assert_allclose(res.bad_debt_pool[0], [bad, 0.0, 0.0], rtol=1e-12)
    np.testing.assert_allclose(res.liquidated_usd[0, :3], [800.0, 735.0, 0.0], rtol=1e-12)
    assert res.rounds.tolist() == [2]
    assert res.fail_protocol[0].tolist() == [0, -1, -1]
    assert res.fail_pool[0].tolist() == [0, -1, -1]
    assert res.fail_asset[0].tolist() == [-1, -1, 1]  # ETH, USDC, aETH
    assert res.position_failures.tolist() == [1, 1]
    assert res.account_failures.tolist() == [1, 1]
    np.testing.assert_allclose(res.price_rel[0, 1], [0.8 * i1, 1.0, 0.8 * i1 * beta],
                               rtol=1e-6)
    np.testing.assert_allclose(res.price_rel[0, -1], [0.8 * i2, 1.0, 0.8 * i2 * beta],
                               rtol=1e-6)


def test_constant_product_impact_is_exact() -> None:
    """Selling dx into reserves (x, y) of x·y = k: y' = k/(x + dx), so the price y/x becomes
    y'/(x + dx) = k/(x + dx)², i.e. multiplied by exactly (x/(x + dx))²."""
    cs = compile_cascade(cascadegenerated_system())
    x, y = 1000.0, 100_000.0
    for dx in (0.0, 1.0, 10.0, 250.0, 1e6):
        sold = np.array([dx, 0.0, 0.0])
        k = x * y
        amm_ratio = (k / (x + dx)) / (x + dx) / (y / x)
        assert impact(cs, sold)[0] == pytest.approx((x / (x + dx)) ** 2, rel=1e-14)
        assert impact(cs, sold)[0] == pytest.approx(amm_ratio, rel=1e-12)


def test_depth_curve_calibrates_two_percent() -> None:
    """An asset with only order-book depth D (USD within 2%) moves 2% when D is sold."""
    records = json.loads(json.dumps(CASCADE_RECORDS))
    records["pool_holdings"] = []
    records["assets"][0]["market_depth_usd"] = 5e6
    cs = compile_cascade(compile_system(Snapshot.from_records(records, MANIFEST)))
    tokens = 5e6 / 100.0
    assert impact(cs, np.array([tokens, 0.0, 0.0]))[0] == pytest.approx(0.98, rel=1e-12)


# --- the liquidation arithmetic ---------------------------------------------------------------

values = st.floats(0.0, 1e9, allow_nan=False)


@given(cv=values, debt=st.floats(1e-6, 1e9), lt=st.floats(0.05, 1.0), lb=st.floats(0.0, 0.3),
       cf=st.floats(0.01, 1.0), fct=st.floats(0.0, 1.0))
def test_liquidation_conserves_value(cv: float, debt: float, lt: float, lb: float,
                                     cf: float, fct: float) -> None:
    hf = cv * lt / debt
    phi, cf_used, seized, repaid, bad = (float(v) for v in liquidation(
        cv, cv * lb, debt, hf, cf, fct))
    assert 0.0 <= phi <= 1.0
    assert seized <= cv * (1 + 1e-12)  # nobody loses more collateral than they had
    assert repaid + bad <= debt * (1 + 1e-12) and bad >= 0.0
    if phi < 1.0:  # collateral sufficed: seized = repaid × (1 + bonus), no bad debt
        assert seized == pytest.approx(repaid * (1.0 + lb), rel=1e-9)
        assert bad == 0.0
        assert cf_used == (cf if hf >= fct else 1.0)
    else:  # ran out: everything seized, the rest of the debt is bad
        assert seized == cv and cf_used == 1.0
        assert repaid == pytest.approx(cv / (1.0 + lb), rel=1e-12)
        assert repaid + bad == pytest.approx(debt, rel=1e-9)


@given(cv=values, shorts=values, longs=values, penalty=st.floats(0.0, 0.5))
def test_margin_closeout_pays_what_collateral_can(cv: float, shorts: float, longs: float,
                                                  penalty: float) -> None:
    phi, seized, bad = (float(v) for v in margin_closeout(cv, shorts, longs, penalty))
    cost = shorts * (1 + penalty) - longs
    assert 0.0 <= phi <= 1.0 and 0.0 <= seized <= cv * (1 + 1e-12) and bad >= 0.0
    if cost > 0:
        assert seized + bad == pytest.approx(cost, rel=1e-9, abs=1e-6)
    else:
        assert seized == bad == 0.0


def test_liquidation_close_factor_by_hand() -> None:
    """Aave-style: HF 0.97 ≥ 0.95 → close factor 0.5. cv = 1000, debt 900, LB 5%: repay 450,
    seize 472.5 (φ = 0.4725), no bad debt; below 0.95 the whole debt: repay 900, seize 945."""
    phi, cf, seized, repaid, bad = liquidation(1000.0, 50.0, 900.0, 0.97, 0.5, 0.95)
    assert (float(phi), float(cf), float(seized), float(repaid), float(bad)) == pytest.approx(
        (0.4725, 0.5, 472.5, 450.0, 0.0))
    phi, cf, seized, repaid, bad = liquidation(1000.0, 50.0, 900.0, 0.9, 0.5, 0.95)
    assert (float(phi), float(cf), float(seized), float(repaid)) == pytest.approx(
        (0.945, 1.0, 945.0, 900.0))


# --- generated ecosystems: invariants and fast = reference ----------------------------------------


move = st.tuples(st.floats(-0.7, 0.2), st.floats(-0.7, 0.2), st.floats(0.8, 1.0),
                 st.floats(1.0, 3.0))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 5), positions=st.sampled_from([100, 200]),
       moves=st.lists(move, min_size=1, max_size=3), close=st.booleans(),
       hedging=st.booleans())
def test_fast_kernel_equals_reference(seed: int, positions: int,
                                      moves: list[tuple[float, float, float, float]],
                                      close: bool, hedging: bool) -> None:
    system = generated_system(positions, seed)
    params = CascadeParams(rounds=12, dealer_hedging=hedging, hedge_tolerance_usd=1000.0)
    cs = compile_cascade(system)
    shocks = fixed_paths(system, moves)
    assert_same_paths(run_reference(cs, shocks, params),
                 run_fast(cs, shocks, params, chunk_paths=2 if close else 64))


def test_fast_kernel_equals_reference_over_several_steps() -> None:
    """A multi-day replay (exogenous moves in rounds 0..9) on a generated ecosystem."""
    system = generated_system(300, 11)
    params = CascadeParams(rounds=16)
    cs = compile_cascade(system)
    shocks = fixed_shocks(load_scenario("march-2020"), system)
    shocks = Shocks(np.concatenate([shocks.price, shocks.price ** 0.5]),
                    np.concatenate([shocks.iv, shocks.iv]), shocks.elapsed_days)
    ref = run_reference(cs, shocks, params)
    assert_same_paths(ref, run_fast(cs, shocks, params))
    assert ref.position_failures.sum() > 0 and (ref.rounds >= 1).all()


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 5), eth=st.floats(-0.6, -0.01), scale=st.floats(1.0, 1.6))
def test_larger_shock_never_liquidates_less(seed: int, eth: float, scale: float) -> None:
    """Every asset's move multiplied by ``scale`` ≥ 1 (a uniformly larger fall): every
    position liquidated under the smaller shock is liquidated under the larger one — with
    perfect liquidators: with liquidator economics a deeper fall can make a liquidation
    unprofitable, so the position is left (and ends as bad debt)."""
    system = generated_system(200, seed)
    params = CascadeParams.frictionless(dealer_hedging=False)
    cs = compile_cascade(system)
    small = fixed_paths(system, [(eth, eth * 0.8, 1.0, 1.0)])
    large = fixed_paths(system, [(max(eth * scale, -0.95), max(eth * 0.8 * scale, -0.95),
                                      1.0, 1.0)])
    a, b = run_fast(cs, small, params), run_fast(cs, large, params)
    assert not np.any((a.position_failures > 0) & (b.position_failures == 0))
    assert b.liquidated_usd[:, 0].sum() >= a.liquidated_usd[:, 0].sum() * (1 - 1e-12) or (
        b.position_failures.sum() >= a.position_failures.sum())


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 5), eth=st.floats(-0.99, 0.5))
def test_prices_stay_positive_and_losses_bounded(seed: int, eth: float) -> None:
    system = generated_system(200, seed)
    params = CascadeParams()
    cs = compile_cascade(system)
    res = run_fast(cs, fixed_paths(system, [(eth, eth, 0.9, 2.0)]), params)
    assert np.isfinite(res.price_rel).all() and (res.price_rel >= 0).all()
    assert (res.bad_debt_pool >= 0).all() and (res.liquidated_usd >= 0).all()
    # a lending pool's bad debt never exceeds the debt in it (valued at the highest price any
    # asset reaches in the run)
    debt_usd = np.bincount(system.position_pool, weights=system.debt @ system.price,
                           minlength=len(system.pool_ids))
    top = max(1.0, float(res.price_rel.max()))
    lending = np.isin(system.pool_kind, [list(PoolKind).index(k)
                                         for k in (PoolKind.LENDING, PoolKind.CDP)])
    assert (res.bad_debt_pool[0][lending] <= debt_usd[lending] * top + 1e-6).all()


# --- runs ---------------------------------------------------------------------------------------


DATA = MARKET_DATA / "prices_daily"


@pytest.fixture(scope="module")
def market() -> MarketModel:
    """GJR-GARCH skewed-t on the last four years of real BTC and ETH daily closes."""
    closes = pd.concat({a: read_closes(DATA / f, a).series for a, f in (
        ("BTC", "btc-usd-max_erickfm.csv"), ("ETH", "eth-usd-max_erickfm.csv"))}, axis=1)
    return fit_market_model(closes.dropna().iloc[-1460:])


def test_scenario_errors_name_the_asset() -> None:
    system = cascadegenerated_system()
    with pytest.raises(ScenarioError, match="scenario asset 'DOGE' is not an asset"):
        fixed_shocks(FixedShockScenario(name="x", shocks={"DOGE": -0.5}), system)
    with pytest.raises(ValueError, match=r"rounds must be between the scenario.s steps \(10\)"):
        run_cascade(generated_system(100, 0), load_scenario("march-2020"),
                    params=CascadeParams(rounds=5))


def test_monte_carlo_needs_a_market_model() -> None:
    sc = MonteCarloScenario(name="mc", horizon_days=1, steps=1, paths=10, seed=1)
    with pytest.raises(ValueError, match="needs a fitted market model"):
        run_cascade(cascadegenerated_system(), sc)


def test_run_is_reproducible_saved_and_compared(tmp_path: Path, market: MarketModel) -> None:
    system = generated_system(300, 3)
    sc = load_scenario("gjr-tcopula-1d")
    a = run_cascade(system, sc, market=market, paths=400, shard_paths=100)
    b = run_cascade(system, sc, market=market, paths=400, shard_paths=100)
    c = run_cascade(system, sc, market=market, paths=400, shard_paths=100, seed=8)
    assert_same_paths(a.paths, b.paths)
    np.testing.assert_array_equal(a.paths.price_rel, b.paths.price_rel)
    assert a.metrics == b.metrics
    assert not np.array_equal(a.paths.price_rel, c.paths.price_rel)
    ref = run_cascade(system, sc, market=market, paths=40, shard_paths=20, kernel="reference")
    fast = run_cascade(system, sc, market=market, paths=40, shard_paths=20)
    assert_same_paths(ref.paths, fast.paths)

    path = a.save(tmp_path / "runs" / "a.json")
    back = RunResult.load(path)
    assert back.metrics == a.metrics and back.spec == a.spec
    assert_same_paths(back.paths, a.paths)
    diff = compare_runs(a, back)
    assert not any(diff["inputs_differ"].values())
    assert all(r["diff"] == 0.0 for r in diff["metrics"].values())
    d2 = compare_runs(a, c)
    assert d2["inputs_differ"]["seed"] and not d2["inputs_differ"]["scenario"]

    m = a.metrics
    assert m["paths"] == 400
    for loss in ("bad_debt_usd", "liquidated_usd"):
        for level in ("0.95", "0.99"):
            r = m[loss][level]
            assert r["cvar"] >= r["var"] >= 0.0 and r["cvar_se"] >= 0.0
    contrib = sum(m["marginal_contribution_usd"]["0.99"].values())
    assert contrib == pytest.approx(m["bad_debt_usd"]["0.99"]["cvar"], rel=1e-9, abs=1e-6)
    assert sum(m["rounds_to_stability"]["histogram"]) == 400


def test_unreadable_run_is_a_clear_error(tmp_path: Path) -> None:
    p = tmp_path / "x.json"
    p.write_text("{}")
    with pytest.raises(ValueError, match="unknown run format None"):
        RunResult.load(p)
    p.write_text("not json")
    with pytest.raises(ValueError, match="not a readable run"):
        RunResult.load(p)


def test_ray_gives_the_in_process_numbers(market: MarketModel) -> None:
    """Shards as tasks on a local Ray cluster: the same seed streams, the same numbers."""
    import ray

    system = generated_system(200, 4)
    sc = load_scenario("gjr-tcopula-1d")
    local = run_cascade(system, sc, market=market, paths=300, shard_paths=100)
    try:
        on_ray = run_cascade(system, sc, market=market, paths=300, shard_paths=100,
                             ray_address="local")
    finally:
        ray.shutdown()
    for k in PathResults.__dataclass_fields__:
        np.testing.assert_array_equal(getattr(local.paths, k), getattr(on_ray.paths, k),
                                      err_msg=k)
    assert local.metrics == on_ray.metrics


def test_metrics_by_hand() -> None:
    """Four paths, two protocols (reserve-exceeding bad debt in P in rounds 0 and 1, in Q in
    round 0 of path 2), one asset X failing in round 1 of paths 0 and 1. Causes: in paths 0
    and 1, P's bad debt is on X (X's scenario move: X fails only later) and X then fails by
    its issuer P; in path 2, Q's bad debt is on X and P fails in round 1 by its deposits in
    Q. Contagion chains: X → P → X twice, X → Q → P once; one path with no failure."""
    res = PathResults(
        bad_debt_pool=np.array([[10.0, 0.0], [20.0, 0.0], [5.0, 30.0], [0.0, 0.0]]),
        liquidated_usd=np.array([[1.0, 2.0], [3.0, 0.0], [0.0, 4.0], [0.0, 0.0]]),
        rounds=np.array([2, 1, 2, 0]),
        price_rel=np.ones((4, 3, 1), dtype=np.float32),
        fail_protocol=np.array([[0, -1], [0, -1], [1, 0], [-1, -1]], dtype=np.int16),
        fail_pool=np.array([[0, -1], [0, -1], [1, 0], [-1, -1]], dtype=np.int16),
        fail_asset=np.array([[1], [1], [-1], [-1]], dtype=np.int16),
        position_failures=np.array([3, 1]), account_failures=np.array([3]),
        protocol_cause=np.array([[4, 0], [4, 0], [6, 4], [0, 0]], dtype=np.int8),
        protocol_cause_src=np.array([[0, -1], [0, -1], [1, 0], [-1, -1]], dtype=np.int16),
        asset_cause=np.array([[3], [3], [0], [0]], dtype=np.int8),
        asset_cause_src=np.array([[0], [0], [-1], [-1]], dtype=np.int16))
    m = summarize(res, protocol_ids=np.array(["P", "Q"]), pool_ids=np.array(["p", "q"]),
                  asset_ids=np.array(["X"]), pool_protocol=np.array([0, 1]),
                  position_ids=np.array(["i", "j"]), account_ids=np.array(["u"]))
    assert m["bad_debt_usd"]["mean"] == pytest.approx(65.0 / 4)
    assert m["bad_debt_usd"]["p_positive"] == 0.75
    assert m["failure_probability"]["protocol"]["P"]["p"] == 0.75
    assert m["failure_probability"]["protocol"]["Q"]["se"] == pytest.approx(
        (0.25 * 0.75 / 4) ** 0.5)
    assert m["failure_probability"]["position"]["top"] == {"i": 0.75, "j": 0.25}
    assert [(c["path"], c["count"], c["probability"]) for c in m["contagion_paths"]] == [
        (["X", "P", "X"], 2, 0.5), (["X", "Q", "P"], 1, 0.25)]
    assert [s["how"] for s in m["contagion_paths"][1]["steps"]] == [
        "scenario move", "bad debt on X", "loss on deposits in Q"]
    assert m["liquidated_by_round_usd"] == [1.0, 1.5]
    assert m["rounds_to_stability"]["histogram"] == [1, 1, 2]


def test_backing_is_the_fixed_point_over_cross_deposits() -> None:
    """A lost s = 52.73 beyond its reserve; C deposited 500 USD in A's pool, A 200 USD in C's.
    With x = 1 - β_A, y = 1 - β_C: x = (s + 200·y) / L_A and y = 500·x / L_C, L_A = 1000 (A's
    depositors), L_C = 200,000 (C's pool). So x = (s / 1000) / (1 - 200·500 / (1000·200,000))
    = 0.052727 / 0.9995 and y = 500·x / 200,000. B, with no exposure, stays at 1."""
    records = json.loads(json.dumps(CASCADE_RECORDS))
    records["protocol_deposits"] = [
        {"protocol": "C", "pool": "A:main", "amount_usd": 500.0},
        {"protocol": "A", "pool": "C:eth-usdc", "amount_usd": 200.0}]
    cs = compile_cascade(compile_system(Snapshot.from_records(records, MANIFEST)))
    s = 780.0 - 800.0 / 1.1
    beta = backing(cs, np.array([[s, 0.0, 0.0], [0.0, 0.0, 0.0]]))
    x = (s / 1000.0) / (1.0 - 200.0 * 500.0 / (1000.0 * 200_000.0))
    np.testing.assert_allclose(beta[0], [1.0 - x, 1.0, 1.0 - 500.0 * x / 200_000.0],
                               rtol=1e-12)
    np.testing.assert_array_equal(beta[1], [1.0, 1.0, 1.0])
    # a shortfall above the liabilities is a full default, never a negative price
    assert backing(cs, np.array([5000.0, 0.0, 0.0]))[0] == 0.0
