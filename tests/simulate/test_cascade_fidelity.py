"""Cascade fidelity: reserves absorb cross-deposit losses, square-root order-book impact,
causal contagion chains, and the metrics that report them (docs/architecture.md §4.4, §4.5,
§4.7, §4.8)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from test_cascade import CASCADE_RECORDS, MANIFEST

from graph.export import SystemArrays, compile_system
from graph.snapshot import Snapshot
from simulate.cascade import (
    CascadeParams,
    PathResults,
    compile_cascade,
    fixed_shocks,
    run_fast,
    run_reference,
)
from simulate.cascade.causes import BAD_DEBT, CROSS_DEPOSIT, ISSUER, NONE, SHOCK
from simulate.cascade.mechanics import impact, sale_multiplier
from simulate.cascade.metrics import summarize
from simulate.clearing import backing_ratios, eisenberg_noe
from simulate.scenarios import FixedShockScenario

KERNELS = [run_reference, run_fast]
BAD_A = 780.0 - 800.0 / 1.1  # lender A's bad debt when ETH falls 20% (test_cascade)


def _records() -> dict[str, list[dict[str, Any]]]:
    return json.loads(json.dumps(CASCADE_RECORDS))


def _depositor(reserve: float) -> SystemArrays:
    """The three-protocol cascade plus lender D: 1000 USDC supplied by its depositors (its
    receipt token dUSDC, pegged to USDC) and 1000 USD deposited in lender A's pool."""
    r = _records()
    r["protocols"].append({"id": "D", "name": "Lender D", "kind": "lending",
                           "close_factor": 0.5, "full_close_threshold": 0.95,
                           "reserve_usd": reserve})
    r["pools"].append({"id": "D:main", "protocol": "D", "kind": "lending"})
    r["pool_lends"].append({"pool": "D:main", "asset": "USDC", "supplied": 1000.0,
                            "borrowed": 0.0})
    r["assets"].append({"id": "dUSDC", "symbol": "dUSDC", "kind": "receipt", "price": 1.0,
                        "decimals": 6, "market_depth_usd": 0.0, "issuer": "D",
                        "pegged_to": "USDC"})
    r["protocol_deposits"] = [{"protocol": "D", "pool": "A:main", "amount_usd": 1000.0}]
    return compile_system(Snapshot.from_records(r, MANIFEST))


ETH_DOWN_20 = FixedShockScenario(name="eth-down-20", shocks={"ETH": -0.2})
PARAMS = CascadeParams.frictionless()


def _run(kernel: Any, system: SystemArrays, scenario: FixedShockScenario = ETH_DOWN_20
         ) -> PathResults:
    return kernel(compile_cascade(system), fixed_shocks(scenario, system), PARAMS)


# --- reserves absorb cross-deposit losses --------------------------------------------------------


@pytest.mark.parametrize("kernel", KERNELS)
def test_reserve_absorbs_a_cross_deposit_loss(kernel: Any) -> None:
    """ETH falls 20%: A takes bad debt s = 780 - 800/1.1 = 52.73 (reserve 0) in round 0, so
    β_A = 1 - s/1000 = 0.947273 and D, with 1000 USD deposited in A, loses
    1000·(1 - β_A) = 52.73 on it. D's reserve of 1e9 absorbs that: β_D = 1, dUSDC stays at
    1.000 USDC and D has not failed (its loss is reported: 52.73 against 1e9). Without the
    reserve in the fixed point, dUSDC would trade at β_D = 1 - 52.73/1000 = 0.947 and fail."""
    system = _depositor(1e9)
    res = _run(kernel, system)
    d, dusdc = 3, 3  # protocol D, asset dUSDC
    assert res.fail_protocol[0].tolist() == [0, -1, -1, -1]
    assert res.fail_asset[0, dusdc] == -1
    np.testing.assert_allclose(res.price_rel[0, :, dusdc], 1.0, rtol=1e-7)
    assert res.cross_loss_protocol[0, d] == pytest.approx(BAD_A, rel=1e-12)
    a = system
    m = summarize(res, protocol_ids=a.protocol_ids, pool_ids=a.pool_ids,
                  asset_ids=a.asset_ids, pool_protocol=a.pool_protocol,
                  position_ids=a.position_ids, account_ids=a.account_ids,
                  reserve_usd=a.reserve_usd)
    row = m["failure_probability"]["protocol"]["D"]
    assert row["p"] == 0.0 and row["reserve_usd"] == 1e9
    assert row["cross_loss_usd"] == pytest.approx(BAD_A, rel=1e-12)
    assert row["max_loss_usd"] == pytest.approx(BAD_A, rel=1e-12)


@pytest.mark.parametrize("kernel", KERNELS)
def test_cross_deposit_loss_beyond_the_reserve_fails_and_depegs(kernel: Any) -> None:
    """The same with D's reserve at 50: its loss 52.73 exceeds it, so D fails in round 0 (a
    cross-deposit loss from A) and is backed at 1 - (52.73 - 50)/1000 = 0.997273 (dUSDC
    0.9973: inside the 5% threshold). With reserve 0: β_D = 1 - 52.73/1000 = 0.947273, and
    dUSDC, at that price from round 1, fails by its issuer."""
    res = _run(kernel, _depositor(50.0))
    assert res.fail_protocol[0, 3] == 0 and res.fail_asset[0, 3] == -1
    np.testing.assert_allclose(res.price_rel[0, 1, 3], 1.0 - (BAD_A - 50.0) / 1000.0,
                               rtol=1e-6)
    res = _run(kernel, _depositor(0.0))
    beta_a = 1.0 - BAD_A / 1000.0
    np.testing.assert_allclose(res.price_rel[0, 1, 3], 1.0 - 1000.0 * (1 - beta_a) / 1000.0,
                               rtol=1e-6)
    assert res.fail_protocol[0, 3] == 0 and res.fail_asset[0, 3] == 1


def test_backing_with_reserves_is_eisenberg_noe_clearing() -> None:
    """Three protocols, reserves r, own bad debt b, deposits C[k, j] (k in j) and liabilities
    L. As Eisenberg–Noe clearing: k owes L_k (C_kj of j's liabilities are owed to k, the
    rest to an outside sink node) and holds e_k = L_k + r_k - b_k - Σ_j C_kj outside the
    network; then β_k = p_k / L_k, the clearing payment over the obligation. Solving by hand
    (u = 1 - β): 0 loses 150 + 100·u_1 + 50·u_2 - 20, 1 loses 200·u_0 - 5, 2 loses
    10 + 300·u_1 - 40 < 0 (absorbed, u_2 = 0): u_0 = (130 + 100 u_1)/1000 and
    u_1 = (200 u_0 - 5)/400, so 950 u_0 = 128.75: u_0 = 0.135526, u_1 = 0.055263."""
    lia = np.array([1000.0, 400.0, 600.0])
    cross = np.array([[0.0, 100.0, 50.0], [200.0, 0.0, 0.0], [0.0, 300.0, 0.0]])
    reserve = np.array([20.0, 5.0, 40.0])
    bad = np.array([150.0, 0.0, 10.0])
    beta = backing_ratios(lia, cross, bad, reserve=reserve)
    n = len(lia)
    owed = np.zeros((n + 1, n + 1))
    owed[:n, :n] = cross.T  # j owes k what k deposited in j
    owed[:n, n] = lia - cross.sum(axis=0)  # the rest to outside depositors
    external = np.append(lia + reserve - bad - cross.sum(axis=1), 0.0)
    pay = eisenberg_noe(owed, external)
    np.testing.assert_allclose(beta, pay[:n] / lia, rtol=1e-10)
    np.testing.assert_allclose(1 - beta, [128.75 / 950, (200 * 128.75 / 950 - 5) / 400, 0.0],
                               rtol=1e-10, atol=1e-14)
    # 0 and 1 lost beyond their reserves; 2 lost 10 + 300·(1 - β_1) = 26.6 < its reserve 40
    assert (beta[:2] < 1).all() and beta[2] == 1.0
    assert 10 + 300 * (1 - beta[1]) == pytest.approx(26.58, abs=0.01)


# --- square-root impact --------------------------------------------------------------------------


def _book_only(depth_usd: float) -> SystemArrays:
    r = _records()
    r["pool_holdings"] = []
    r["assets"][0]["market_depth_usd"] = depth_usd
    return compile_system(Snapshot.from_records(r, MANIFEST))


def test_square_root_impact_on_an_order_book() -> None:
    """An asset with only order-book depth D (tokens within 2%): selling Q moves it by
    2%·sqrt(Q/D): 0.1·D → 2%·√0.1 = 0.632%, D → 2%, 10·D → 2%·√10 = 6.32%. The
    constant-product reserve of the same 2% depth, R = D / c with c = 0.98^(-1/2) - 1,
    would have moved 1 - (1/(1 + 0.1c))² = 0.20% and 1 - (1/(1 + 10c))² = 17.6%."""
    cs = compile_cascade(_book_only(5e6))  # ETH at 100: D = 50,000 ETH
    d = 5e6 / 100.0
    assert cs.book_depth[0] == pytest.approx(d) and cs.reserve[0] == 0.0
    moves = [1.0 - float(impact(cs, np.array([q * d, 0.0, 0.0]))[0]) for q in (0.1, 1, 10)]
    np.testing.assert_allclose(moves, [0.02 * 0.1 ** 0.5, 0.02, 0.02 * 10 ** 0.5], rtol=1e-12)
    assert moves[0] == pytest.approx(0.00632, abs=5e-6)
    assert moves[2] == pytest.approx(0.0632, abs=5e-5)
    c = 0.98 ** -0.5 - 1.0
    old = [1.0 - (1.0 / (1.0 + q * c)) ** 2 for q in (0.1, 10)]
    assert old[0] == pytest.approx(0.0020, abs=5e-5) and old[1] == pytest.approx(0.176,
                                                                                 abs=5e-4)
    # past 2500·D the book is exhausted: the price floors at 0
    assert impact(cs, np.array([2600 * d, 0.0, 0.0]))[0] == 0.0


def test_amm_and_book_split_a_sale_at_equal_prices() -> None:
    """ETH: a constant-product reserve R = 1000 ETH and a book of D = 100 ETH within 2%. At a
    common price m = 0.98² = 0.9604 the AMM has absorbed R·(1/√m - 1) = 1000·(1/0.98 - 1)
    = 20.408 ETH and the book D·((1 - m)/0.02)² = 100·1.98² = 392.04 ETH: selling the sum,
    412.448 ETH, moves the price to 0.9604 on both venues."""
    r = _records()
    r["assets"][0]["market_depth_usd"] = 100 * 100.0
    cs = compile_cascade(compile_system(Snapshot.from_records(r, MANIFEST)))
    assert (cs.reserve[0], cs.book_depth[0]) == pytest.approx((1000.0, 100.0))
    sold = 1000.0 * (1 / 0.98 - 1) + 100.0 * (0.0396 / 0.02) ** 2
    assert impact(cs, np.array([sold, 0.0, 0.0]))[0] == pytest.approx(0.9604, rel=1e-12)
    # one venue alone: the exact constant-product and square-root laws
    assert sale_multiplier(1000.0, 0.0, 10.0) == pytest.approx((1000 / 1010) ** 2, rel=1e-15)
    assert sale_multiplier(0.0, 100.0, 25.0) == pytest.approx(1 - 0.02 * 0.5, rel=1e-15)
    assert sale_multiplier(0.0, 0.0, 1.0) == 0.0 and sale_multiplier(0.0, 0.0, 0.0) == 1.0
    # more sold never raises the price
    grid = np.linspace(0.0, 5000.0, 200)
    assert (np.diff(sale_multiplier(1000.0, 100.0, grid)) <= 0).all()


@pytest.mark.parametrize("kernel", KERNELS)
def test_fire_sale_into_a_book_by_hand(kernel: Any) -> None:
    """ETH only on an order book of D = 50,000 USD / 100 = 500 ETH; b1 owes only 100 USDC.
    ETH falls 20%: a1's 10 ETH are seized in round 0 and sold; from round 1 ETH is at
    0.8·(1 - 0.02·sqrt(10/500)) = 0.8·0.997172 of its snapshot price."""
    r = _records()
    r["pool_holdings"] = []
    r["assets"][0]["market_depth_usd"] = 5e4
    r["position_debt"][1]["amount"] = 100.0
    system = compile_system(Snapshot.from_records(r, MANIFEST))
    res = _run(kernel, system)
    assert res.liquidated_usd[0, 0] == pytest.approx(800.0, rel=1e-12)
    assert res.liquidated_snapshot_usd[0, 0] == pytest.approx(1000.0, rel=1e-12)
    np.testing.assert_allclose(res.price_rel[0, 1, 0], 0.8 * (1 - 0.02 * (10 / 500) ** 0.5),
                               rtol=1e-6)


# --- causal contagion paths ----------------------------------------------------------------------


@pytest.mark.parametrize("kernel", KERNELS)
def test_causal_chain_by_hand(kernel: Any) -> None:
    """D (reserve 0, 1000 USD in A) and A's receipt token aETH as B's collateral, ETH -20%.
    Round 0: A's bad debt arises on ETH collateral (ETH, a scenario move, did not itself
    fail: its fire-sale loss (1000/1010)² = 0.980 is inside the threshold); D loses 52.73 on
    its deposit in A in the same fixed point. Round 1: aETH (issuer A) and dUSDC (issuer D)
    trade at their issuers' backing, 0.947. Two chains:
    ETH → A (bad debt on ETH) → aETH (issuer A) and ETH → A → D (deposits in A) → dUSDC."""
    system = _depositor(0.0)
    res = _run(kernel, system)
    assert res.protocol_cause[0].tolist() == [BAD_DEBT, NONE, NONE, CROSS_DEPOSIT]
    assert res.protocol_cause_src[0].tolist() == [0, -1, -1, 0]  # ETH; protocol A
    assert res.asset_cause[0].tolist() == [NONE, NONE, ISSUER, ISSUER]
    assert res.asset_cause_src[0].tolist() == [-1, -1, 0, 3]  # issuers A and D
    a = system
    m = summarize(res, protocol_ids=a.protocol_ids, pool_ids=a.pool_ids,
                  asset_ids=a.asset_ids, pool_protocol=a.pool_protocol,
                  position_ids=a.position_ids, account_ids=a.account_ids,
                  reserve_usd=a.reserve_usd)
    assert [(c["path"], c["count"]) for c in m["contagion_paths"]] == [
        (["ETH", "A", "D", "dUSDC"], 1), (["ETH", "A", "aETH"], 1)]
    steps = m["contagion_paths"][0]["steps"]
    assert [(s["kind"], s["how"]) for s in steps] == [
        ("shock", "scenario move"), ("protocol", "bad debt on ETH"),
        ("protocol", "loss on deposits in A"), ("asset", "issuer D under-backed")]


@pytest.mark.parametrize("kernel", KERNELS)
def test_a_scenario_depeg_is_a_shock_not_a_failure(kernel: Any) -> None:
    """The scenario depegs dUSDC to 0.9 (nothing else moves): it is past the 5% threshold
    from round 0 by the scenario's own move. It is recorded as a shock (p_shock 1), not a
    failure (p 0), and no contagion path consists of it alone."""
    system = _depositor(1e9)
    res = _run(kernel, system, FixedShockScenario(name="d", depegs={"dUSDC": 0.9}))
    assert res.fail_asset[0, 3] == 0 and res.asset_cause[0, 3] == SHOCK
    a = system
    m = summarize(res, protocol_ids=a.protocol_ids, pool_ids=a.pool_ids,
                  asset_ids=a.asset_ids, pool_protocol=a.pool_protocol,
                  position_ids=a.position_ids, account_ids=a.account_ids)
    assert m["failure_probability"]["asset"]["dUSDC"] == {"p": 0.0, "se": 0.0,
                                                          "p_shock": 1.0}
    assert m["contagion_paths"] == []
