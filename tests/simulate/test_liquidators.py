"""Liquidation economics and two-way dealer flow (simulate/cascade/liquidators.py, both
kernels): debt-side impact (a short squeeze), liquidators who act only when it pays and within
a per-round capacity, end-of-path bad debt, dealers who buy back and whose hedges are unwound
when they are margin-called; fast kernel = reference kernel with the new parameters."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
from helpers import assert_same_paths, fixed_paths, generated_system
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from graph.export import compile_system
from graph.snapshot import Manifest, Snapshot
from simulate.cascade import CascadeParams, CascadeSystem, compile_cascade, fixed_shocks
from simulate.cascade.fast import run_fast
from simulate.cascade.liquidators import (
    depth_tokens,
    liquidator_piece,
    net_impact,
    purchase_multiplier,
    update_pressure,
)
from simulate.cascade.reference import run_reference
from simulate.formulas.black_scholes import bs_delta
from simulate.scenarios import FixedShockScenario

KERNELS = [run_reference, run_fast]
MANIFEST = Manifest(name="liquidators", as_of=datetime(2023, 1, 1, tzinfo=UTC), source="hand")
_CP2 = 0.98 ** -0.5 - 1.0


def _records(collateral: str, debt: str, positions: list[tuple[float, float]],
             lt: float = 0.8, lb: float = 0.1) -> dict[str, list[dict[str, Any]]]:
    """One lending pool (close factor 1) taking ``collateral``, lending ``debt``; ETH (100 USD)
    and CRV (1 USD) each trade only in a constant-product pool against USDC (ETH 1,000 /
    USDC 100,000; CRV 20,000 / USDC 20,000); USDC has a 1e12 USD order book."""
    return {
        "protocols": [
            {"id": "L", "name": "Lender", "kind": "lending", "close_factor": 1.0,
             "full_close_threshold": 1.0, "reserve_usd": 0.0},
            {"id": "D", "name": "DEX", "kind": "dex", "close_factor": 1.0,
             "full_close_threshold": 1.0, "reserve_usd": 0.0},
        ],
        "oracles": [{"id": "o", "kind": "feed"}],
        "assets": [
            {"id": "ETH", "symbol": "ETH", "kind": "native", "price": 100.0, "decimals": 18,
             "market_depth_usd": 0.0},
            {"id": "USDC", "symbol": "USDC", "kind": "stable", "price": 1.0, "decimals": 6,
             "market_depth_usd": 1e12},
            {"id": "CRV", "symbol": "CRV", "kind": "native", "price": 1.0, "decimals": 18,
             "market_depth_usd": 0.0},
        ],
        "pools": [
            {"id": "L:main", "protocol": "L", "kind": "lending"},
            {"id": "D:eth", "protocol": "D", "kind": "amm", "fee": 0.003},
            {"id": "D:crv", "protocol": "D", "kind": "amm", "fee": 0.003},
        ],
        "accounts": [{"id": f"u{k}", "kind": "user"} for k in range(len(positions))],
        "positions": [{"id": f"s{k + 1}", "account": f"u{k}", "pool": "L:main"}
                      for k in range(len(positions))],
        "pool_collateral": [{"pool": "L:main", "asset": collateral, "ltv": lt - 0.05,
                             "liquidation_threshold": lt, "liquidation_bonus": lb}],
        "pool_lends": [{"pool": "L:main", "asset": debt, "supplied": 1e6, "borrowed": 1e4}],
        "pool_holdings": [{"pool": "D:eth", "asset": "ETH", "amount": 1000.0},
                          {"pool": "D:eth", "asset": "USDC", "amount": 100_000.0},
                          {"pool": "D:crv", "asset": "CRV", "amount": 20_000.0},
                          {"pool": "D:crv", "asset": "USDC", "amount": 20_000.0}],
        "protocol_deposits": [],
        "position_collateral": [{"position": f"s{k + 1}", "asset": collateral, "amount": c}
                                for k, (c, _) in enumerate(positions)],
        "position_debt": [{"position": f"s{k + 1}", "asset": debt, "amount": d}
                          for k, (_, d) in enumerate(positions)],
        "position_options": [],
    }


def _system(records: dict[str, list[dict[str, Any]]]) -> Any:
    return compile_system(Snapshot.from_records(records, MANIFEST))


CRV, ETH, USDC = 0, 1, 2  # compiled in id order


def _usdc_after(cs: CascadeSystem, net: float) -> float:
    """USDC's price multiplier at a net pressure of ``net`` USDC (deep: within 1e-6 of 1)."""
    x = np.zeros(cs.num_assets)
    x[USDC] = net
    return float(net_impact(cs, x)[USDC])


# --- the liquidity, both ways -------------------------------------------------------------------


def test_a_purchase_mirrors_a_sale_on_the_constant_product_invariant() -> None:
    """Buying B of x = R tokens from x·y = k leaves x = R - B, y = k/(R - B): the price y/x is
    multiplied by (R/(R - B))²; the book alone: 1 + 0.02·√(B/D), so buying D moves it 2%;
    both venues end at one price, and each absorbs its share of B at it."""
    for b in (1.0, 100.0, 500.0):
        k = 1000.0 * 100_000.0
        amm = (k / (1000.0 - b)) / (1000.0 - b) / 100.0
        assert purchase_multiplier(1000.0, 0.0, b) == pytest.approx(amm, rel=1e-12)
    assert purchase_multiplier(1000.0, 0.0, 1000.0) == np.inf
    assert purchase_multiplier(0.0, 50.0, 50.0) == pytest.approx(1.02, rel=1e-12)
    assert purchase_multiplier(0.0, 0.0, 5.0) == 1.0  # no market: nothing moves
    m = float(purchase_multiplier(1000.0, 50.0, 300.0))
    absorbed = 1000.0 * (1.0 - m ** -0.5) + 50.0 * ((m - 1.0) / 0.02) ** 2
    assert absorbed == pytest.approx(300.0, rel=1e-9)


def test_net_pressure_nets_and_is_floored() -> None:
    """Within a round sales and buys of one route asset net; an AMM with no book is never
    drained (net pressure floored at -0.9 R, ETH at most x100)."""
    cs = compile_cascade(_system(_records("ETH", "USDC", [(1.0, 1.0)])))
    zero = np.zeros(cs.num_assets)
    routed = np.array([30.0, -5000.0, 0.0])
    net = update_pressure(cs, zero, routed, 0.5)
    assert net[ETH] == pytest.approx(-900.0) and net[CRV] == 30.0
    assert net_impact(cs, net)[ETH] == pytest.approx(100.0, rel=1e-12)
    assert net_impact(cs, net)[CRV] == pytest.approx((20_000.0 / 20_030.0) ** 2, rel=1e-12)
    assert depth_tokens(cs)[ETH] == pytest.approx(_CP2 * 1000.0, rel=1e-12)


# --- a short squeeze ----------------------------------------------------------------------------


@pytest.mark.parametrize("kernel", KERNELS)
def test_a_short_squeeze_liquidates_a_second_position(kernel: Any) -> None:
    """Two USDC-collateral positions borrow CRV (LT 0.8, LB 0.1, close factor 1): s1 1,000
    USDC / 700 CRV, s2 1,000 USDC / 650 CRV. CRV's only market is a constant-product pool of
    R = 20,000 CRV. CRV rises 20% (price 1.2).

    Round 0: s1 HF = 800/840 = 0.952 < 1: repay 700 CRV (840 USD), seize 924 USDC. The
    liquidator buys the 700 CRV: average price 1.2·20,000/19,300 ≈ 1.2435 (Simpson's rule
    on the multiplier: 1.2·1.036286 = 1.24354), cost 870.5 < 924 of USDC, profit 53.5 - 20 gas
    > 0: done. s2 HF = 800/780 = 1.026: safe.
    Round 1: the purchase moved CRV by (20,000/19,300)² = 1.073854, to 1.288625; s2's debt is
    worth 650·1.288625 = 837.6 and HF = 800/837.6 = 0.955 < 1: liquidated (repay 837.6, seize
    921.4 USDC; buying 650 from x = 19,300 costs about 866.8: profitable).
    Round 2: both closed, quiet: 2 rounds. With perfect liquidators (no debt-side impact) s2
    is never touched and the path is over after 1 round.
    """
    system = _system(_records("USDC", "CRV", [(1000.0, 700.0), (1000.0, 650.0)]))
    cs = compile_cascade(system)
    shocks = fixed_shocks(FixedShockScenario(name="crv-up", shocks={"CRV": 0.2}), system)
    params = CascadeParams(oracles="market", liquidation_capacity=None)
    res = kernel(cs, shocks, params)

    assert cs.reserve[CRV] == pytest.approx(20_000.0)
    crv1 = 1.2 * (20_000.0 / 19_300.0) ** 2
    usdc1 = _usdc_after(cs, 924.0)
    np.testing.assert_allclose(res.price_rel[0, 1, CRV], crv1, rtol=1e-6)
    np.testing.assert_allclose(res.liquidated_usd[0, :3], [924.0, 1.1 * 650.0 * crv1, 0.0],
                               rtol=1e-9)
    np.testing.assert_allclose(res.price_rel[0, 2, CRV], 1.2 * (20_000.0 / 19_000.0) ** 2,
                               rtol=1e-6)  # net pressure -700·0.5 - 650 = -1,000 CRV
    assert usdc1 == pytest.approx(1.0, abs=1e-6)
    assert res.rounds.tolist() == [2]
    assert res.position_failures.tolist() == [1, 1]
    assert (res.bad_debt_pool == 0).all()

    old = kernel(cs, shocks, CascadeParams.frictionless(oracles="market"))
    assert old.position_failures.tolist() == [1, 0] and old.rounds.tolist() == [1]
    np.testing.assert_allclose(old.price_rel[0, 1, CRV], 1.2, rtol=1e-7)


# --- unprofitable, then in pieces ---------------------------------------------------------------


@pytest.mark.parametrize("kernel", KERNELS)
def test_an_unprofitable_liquidation_is_left_then_done_in_pieces(kernel: Any) -> None:
    """One position: 200 ETH (LT 0.8, LB 0.1) against 15,000 USDC; ETH's only market is a
    constant-product pool of 1,000 ETH. ETH falls 10% (90): HF = 200·90·0.8/15,000 = 0.96.

    The full liquidation repays 15,000 and seizes 16,500 USD = 183.33 ETH. Sold at once into
    1,000 ETH it fetches about 90·1,000/1,183.33 per ETH: 13,944 < 15,000, a loss, so with no
    capacity limit nobody liquidates: round 0 is quiet and the path ends with the position open
    (collateral 18,000 > debt 15,000: no bad debt).

    With a capacity of one 2% depth per round (d = (0.98^(-1/2) - 1)·1,000 = 10.153 ETH) the
    liquidator takes the piece q = d/183.33: it seizes d ETH (913.8 USD) and repays
    913.8/1.1 = 830.7; selling d into 1,000 ETH costs about 1% (average 90·1,000/1,010.15),
    profit ≈ 904.6 - 830.7 - 20 > 0. The position keeps 200 - d ETH and 15,000 - 830.7 USDC
    (HF·(1 - qφ)/(1 - q) = 0.9584). Round 1: ETH at 90·(1,000/1,010.153)², the next piece is
    d ETH again; and so on, one piece a round (debt bought off-market here:
    ``debt_impact=False``, USDC stays at 1).
    """
    system = _system(_records("ETH", "USDC", [(200.0, 15_000.0)]))
    cs = compile_cascade(system)
    shocks = fixed_shocks(FixedShockScenario(name="eth-down", shocks={"ETH": -0.1}), system)
    base = {"oracles": "market", "debt_impact": False, "rounds": 12}

    left = kernel(cs, shocks, CascadeParams(liquidation_capacity=None, **base))
    assert left.rounds.tolist() == [0] and left.position_failures.tolist() == [0]
    assert (left.liquidated_usd == 0).all() and (left.bad_debt_pool == 0).all()

    res = kernel(cs, shocks, CascadeParams(liquidation_capacity=1.0, **base))
    d = _CP2 * 1000.0
    eth1 = 0.9 * (1000.0 / (1000.0 + d)) ** 2
    np.testing.assert_allclose(res.liquidated_usd[0, :2], [d * 90.0, d * 100.0 * eth1],
                               rtol=1e-9)
    np.testing.assert_allclose(res.price_rel[0, 1, ETH], eth1, rtol=1e-6)
    # one piece of at most d ETH a round: the seized value never exceeds d at that round's price
    seized_eth = res.liquidated_usd[0] / (100.0 * res.price_rel[0, :-1, ETH].astype(float))
    assert (seized_eth <= d * (1 + 1e-6)).all()
    assert (res.liquidated_usd[0, :5] > 0).all() and res.rounds[0] >= 5
    assert res.position_failures.tolist() == [1]

    perfect = kernel(cs, shocks, CascadeParams.frictionless(**base))
    np.testing.assert_allclose(perfect.liquidated_usd[0, 0], 16_500.0, rtol=1e-12)


@pytest.mark.parametrize("kernel", KERNELS)
def test_a_position_too_small_for_gas_ends_as_bad_debt(kernel: Any) -> None:
    """1 ETH (LT 0.8, LB 0.1) against 75 USDC; ETH falls 30% to 70: the collateral is worth
    less than the debt. All of it would be seized (70 USD), repaying 70/1.1 = 63.64: the
    liquidator's profit is at most 6.36 < 20 of gas, so nobody liquidates. At the end of the
    path the shortfall 75 - 70 = 5 is bad debt (round 0). Perfect liquidators: seized 70,
    bad debt 75 - 63.64 = 11.36 in round 0."""
    system = _system(_records("ETH", "USDC", [(1.0, 75.0)]))
    cs = compile_cascade(system)
    shocks = fixed_shocks(FixedShockScenario(name="eth-down", shocks={"ETH": -0.3}), system)
    res = kernel(cs, shocks, CascadeParams(oracles="market"))
    assert res.position_failures.tolist() == [0] and (res.liquidated_usd == 0).all()
    np.testing.assert_allclose(res.bad_debt_pool[0], [0.0, 0.0, 5.0], rtol=1e-12)
    assert res.fail_pool[0].tolist() == [-1, -1, 0]  # D:crv, D:eth, L:main

    old = kernel(cs, shocks, CascadeParams.frictionless(oracles="market"))
    np.testing.assert_allclose(old.bad_debt_pool[0], [0.0, 0.0, 75.0 - 70.0 / 1.1],
                               rtol=1e-12)
    np.testing.assert_allclose(old.liquidated_usd[0, 0], 70.0, rtol=1e-12)


# --- dealers ------------------------------------------------------------------------------------


def _dealer_records(collateral_usdc: float) -> dict[str, list[dict[str, Any]]]:
    """A dealer short 100 ETH calls (strike 2,000, 30 days, IV 60%) on an options venue
    (maintenance margin 10%, penalty 5%) with ``collateral_usdc`` USDC; ETH at 2,000 trades
    only in a constant-product pool of 1,000 ETH."""
    r = json.loads(json.dumps(_records("ETH", "USDC", [])))
    next(x for x in r["assets"] if x["id"] == "ETH")["price"] = 2000.0
    r["pool_holdings"][1]["amount"] = 2e6
    r["protocols"].append({"id": "O", "name": "Venue", "kind": "options", "close_factor": 1.0,
                           "full_close_threshold": 1.0, "reserve_usd": 0.0})
    r["pools"].append({"id": "O:margin", "protocol": "O", "kind": "options",
                       "maintenance_margin": 0.1, "liquidation_penalty": 0.05})
    r["pool_collateral"].append({"pool": "O:margin", "asset": "USDC", "ltv": 1.0,
                                 "liquidation_threshold": 1.0, "liquidation_bonus": 0.0})
    r["accounts"] = [{"id": "dealer", "kind": "dealer"}]
    r["positions"] = [{"id": "d1", "account": "dealer", "pool": "O:margin"}]
    r["position_collateral"] = [{"position": "d1", "asset": "USDC",
                                 "amount": collateral_usdc}]
    expiry = int(MANIFEST.as_of.timestamp()) + 30 * 86400
    r["position_options"] = [{"position": "d1", "asset": "ETH", "kind": "call",
                              "side": "short", "strike": 2000.0, "expiry": expiry,
                              "size": 100.0, "implied_vol": 0.6}]
    return r


def _call_delta(cs: CascadeSystem, spot: float, days: float) -> float:
    tau = max(float(cs.leg_tau0[0]) - days / 365.0, 0.0)
    return float(bs_delta(spot, 2000.0, tau, 0.6, True))


@pytest.mark.parametrize("kernel", KERNELS)
def test_a_dealer_whose_delta_fell_buys_back(kernel: Any) -> None:
    """ETH rises 10% to 2,200. The dealer's book delta is -100·N(d1): it falls from
    -100·N(d1 at 2,000) ≈ -53.4 to -100·N(d1 at 2,200) ≈ -71.8, so the dealer, long 53.4 ETH
    against it, buys B = 100·(N(d1') - N(d1)) ≈ 18.4 ETH (about 40,000 USD, above the 10,000
    tolerance) from the pool of 1,000 ETH: ETH's price is multiplied by (1,000/(1,000 - B))²
    from round 1. Dealers that only sell (``dealer_buyback=False``) buy nothing: ETH stays at
    1.1."""
    system = _system(_dealer_records(1e7))
    cs = compile_cascade(system)
    shocks = fixed_shocks(FixedShockScenario(name="eth-up", shocks={"ETH": 0.1}), system)
    days = float(shocks.elapsed_days[0])
    b = 100.0 * (_call_delta(cs, 2200.0, days) - _call_delta(cs, 2000.0, 0.0))
    assert 10.0 < b < 30.0
    res = kernel(cs, shocks, CascadeParams(oracles="market"))
    np.testing.assert_allclose(res.price_rel[0, 1, ETH], 1.1 * (1000.0 / (1000.0 - b)) ** 2,
                               rtol=1e-6)
    assert res.position_failures.tolist() == [0] and res.rounds[0] >= 1

    sell_only = kernel(cs, shocks, CascadeParams(oracles="market", dealer_buyback=False))
    np.testing.assert_allclose(sell_only.price_rel[0, 1, ETH], 1.1, rtol=1e-7)
    assert sell_only.rounds.tolist() == [0]


@pytest.mark.parametrize("kernel", KERNELS)
def test_a_margin_called_dealers_hedge_is_unwound(kernel: Any) -> None:
    """The same book with 50,000 USDC: at 2,000 its equity (50,000 - 100·mark ≈ 36,200) is
    above the requirement (0.1·100·2,000 = 20,000). ETH rises 20% to 2,400: the calls are worth
    about 100·420, equity ≈ 8,000 < 24,000: margin-called in round 0. The dealer was hedged at
    the snapshot, long H = 100·N(d1 at 2,000) ≈ 53.4 ETH; closing the hedge sells H into the
    pool of 1,000 ETH: ETH from round 1 at 1.2·(1,000/(1,000 + H))². Without the unwind
    (``dealer_unwind=False``) the hedge stays and ETH stays at 1.2 (the seized USDC is sold into
    USDC's own market)."""
    system = _system(_dealer_records(50_000.0))
    cs = compile_cascade(system)
    shocks = fixed_shocks(FixedShockScenario(name="eth-up", shocks={"ETH": 0.2}), system)
    h = 100.0 * _call_delta(cs, 2000.0, 0.0)
    assert 50.0 < h < 57.0
    res = kernel(cs, shocks, CascadeParams(oracles="market"))
    assert res.position_failures.tolist() == [1]
    np.testing.assert_allclose(res.price_rel[0, 1, ETH], 1.2 * (1000.0 / (1000.0 + h)) ** 2,
                               rtol=1e-6)

    kept = kernel(cs, shocks, CascadeParams(oracles="market", dealer_unwind=False))
    assert kept.position_failures.tolist() == [1]
    np.testing.assert_allclose(kept.price_rel[0, 1, ETH], 1.2, rtol=1e-7)


# --- parameters ---------------------------------------------------------------------------------


def test_parameters_are_checked_and_frictionless_is_the_old_model() -> None:
    with pytest.raises(ValidationError, match="liquidation_capacity"):
        CascadeParams(liquidation_capacity=0.0)
    with pytest.raises(ValidationError, match="liquidator_gas_usd"):
        CascadeParams(liquidator_gas_usd=-1.0)
    with pytest.raises(ValidationError, match="liquidator_gas_usd is read only by the profit"):
        CascadeParams(liquidator_profit_check=False)
    p = CascadeParams.frictionless(rounds=5)
    assert p.rounds == 5 and p.liquidation_capacity is None and not p.debt_impact
    assert not (p.liquidator_profit_check or p.dealer_buyback or p.dealer_unwind
                or p.underwater_bad_debt) and p.liquidator_gas_usd == 0.0


def test_the_piece_is_capacity_bound_and_pays() -> None:
    """The liquidator's share: capacity d/|n| on the tightest route, 0 if it does not pay."""
    cs = compile_cascade(_system(_records("ETH", "USDC", [(1.0, 1.0)])))
    zero, price = np.zeros(3), np.array([1.0, 100.0, 1.0])
    coll, debt = np.array([0.0, 100.0, 0.0]), np.array([0.0, 0.0, 9000.0])
    p = CascadeParams(debt_impact=False)
    assert liquidator_piece(cs, p, zero, price, coll, debt) == pytest.approx(_CP2 * 10.0)
    assert liquidator_piece(cs, p.model_copy(update={"liquidator_gas_usd": 1e4}), zero,
                            price, coll, debt) == 0.0


# --- fast = reference with the new parameters ----------------------------------------------------


move = st.tuples(st.floats(-0.7, 0.3), st.floats(-0.7, 0.3), st.floats(0.8, 1.0),
                 st.floats(0.8, 3.0))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 5), moves=st.lists(move, min_size=1, max_size=3),
       gas=st.sampled_from([0.0, 20.0, 2000.0]),
       capacity=st.sampled_from([None, 0.05, 1.0, 10.0]), flags=st.lists(
           st.booleans(), min_size=5, max_size=5), market=st.booleans(), close=st.booleans())
def test_fast_kernel_equals_reference_with_liquidator_economics(
        seed: int, moves: list[tuple[float, float, float, float]], gas: float,
        capacity: float | None, flags: list[bool], market: bool, close: bool) -> None:
    check, debt, buyback, unwind, underwater = flags
    params = CascadeParams(rounds=10, hedge_tolerance_usd=1000.0, oracles=(
        "market" if market else "modelled"), liquidator_profit_check=check,
        liquidator_gas_usd=gas if check else 0.0, liquidation_capacity=capacity,
        debt_impact=debt, dealer_buyback=buyback, dealer_unwind=unwind,
        underwater_bad_debt=underwater)
    system = generated_system(200, seed)
    cs = compile_cascade(system)
    shocks = fixed_paths(system, moves)
    assert_same_paths(run_reference(cs, shocks, params),
                      run_fast(cs, shocks, params, chunk_paths=1 if close else 64))


def test_fast_kernel_equals_reference_on_a_squeeze_heavy_system() -> None:
    """Generated ecosystem, severe falls and rises together, every mechanism on."""
    system = generated_system(300, 7)
    cs = compile_cascade(system)
    shocks = fixed_paths(system, [(-0.6, -0.5, 0.85, 2.5), (0.3, 0.25, 1.0, 1.5),
                                  (-0.35, 0.1, 0.9, 1.8)])
    params = CascadeParams(rounds=16, liquidation_capacity=0.2, hedge_tolerance_usd=100.0)
    ref = run_reference(cs, shocks, params)
    assert_same_paths(ref, run_fast(cs, shocks, params, chunk_paths=2))
    assert ref.position_failures.sum() > 0
