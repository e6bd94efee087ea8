"""The numeric export: index maps, shapes and hand-checked values on the tiny ecosystem."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import tiny_snapshot

from graph.export import compile_system, health_factor, health_factors
from graph.vocab import AssetKind, PoolKind
from ingest.generate import generate_ecosystem


def test_index_maps_and_shapes() -> None:
    s = compile_system(tiny_snapshot())
    assert list(s.asset_ids) == ["ETH", "USDC", "stETH"]
    assert list(s.pool_ids) == ["aave:main", "curve:steth-eth", "deribit:margin", "lido:staking"]
    assert list(s.protocol_ids) == ["aave", "curve", "deribit", "lido"]
    assert s.collateral.shape == s.debt.shape == (4, 3)
    assert s.liquidation_threshold.shape == s.accepts.shape == (4, 3)
    assert s.holdings.shape == (4, 3) and s.deposits_usd.shape == (4, 4)
    assert s.issuer.tolist() == [-1, -1, 3]  # stETH issued by lido
    assert s.pegged_to.tolist() == [-1, -1, 0]  # stETH pegged to ETH
    assert s.oracle_pool.tolist() == [-1, -1, 1]  # the stETH oracle reads the Curve pool
    assert s.pool_protocol.tolist() == [0, 1, 2, 3]
    assert s.pool_kind[1] == list(PoolKind).index(PoolKind.AMM)
    assert s.asset_kind[2] == list(AssetKind).index(AssetKind.LST)
    assert s.position_pool.tolist() == [0, 0, 0, 2]
    assert s.position_account.tolist() == [0, 1, 2, 2]
    assert s.collateral.toarray()[1].tolist() == [1.0, 0.0, 10.0]
    assert s.liquidation_threshold[0].tolist() == [0.825, 0.0, 0.8]
    assert s.deposits_usd.toarray()[3, 1] == 100000.0
    assert s.option_is_call.tolist() == [True, False]
    assert s.option_is_long.tolist() == [False, False]
    assert s.option_strike.tolist() == [2200.0, 1800.0]
    assert s.as_of == 1693526400.0


def test_health_factors_by_hand() -> None:
    s = compile_system(tiny_snapshot())
    hf = health_factors(s)
    assert hf[0] == pytest.approx(1.65, rel=1e-15)
    assert hf[1] == pytest.approx(17490 / 18000, rel=1e-15)
    assert math.isinf(hf[2]) and math.isinf(hf[3])
    # ETH at 1000: p1 = 10*1000*0.825/10000 = 0.825; p2 = (10*1980*0.8 + 825)/18000
    shocked = health_factors(s, np.array([1000.0, 1.0, 1980.0]))
    assert shocked[0] == pytest.approx(0.825, rel=1e-15)
    assert shocked[1] == pytest.approx((15840 + 825) / 18000, rel=1e-15)


def test_health_factor_on_scalars_and_arrays() -> None:
    """HF = W / D with inf where D <= 0 (no debt), whether given floats or arrays."""
    assert health_factor(16_500.0, 10_000.0) == 1.65 and type(health_factor(1.0, 2.0)) is float
    assert health_factor(5.0, 0.0) == math.inf and health_factor(0.0, 0.0) == math.inf
    hf = health_factor(np.array([[1.0], [3.0]]), np.array([2.0, 0.0, -1.0]))  # broadcasts
    np.testing.assert_array_equal(hf, [[0.5, np.inf, np.inf], [1.5, np.inf, np.inf]])
    # two Python floats take a shortcut past numpy: the same values, bit for bit
    w = [17490.0, 1e-300, 0.1 + 0.2, 5.0, 0.0, 3.0]
    d = [18000.0, 3e-300, 0.3, 0.0, 0.0, math.nan]
    np.testing.assert_array_equal([health_factor(a, b) for a, b in zip(w, d, strict=True)],
                                  health_factor(np.array(w), np.array(d)))


def test_health_factors_match_the_per_position_definition() -> None:
    snap = generate_ecosystem(300, 11)
    s = compile_system(snap)
    hf = health_factors(s)
    c, d = s.collateral.toarray(), s.debt.toarray()
    for i in range(s.num_positions):
        lt = s.liquidation_threshold[s.position_pool[i]]
        want = health_factor(float((c[i] * s.price * lt).sum()), float((d[i] * s.price).sum()))
        assert hf[i] == pytest.approx(want, rel=1e-12) or (math.isinf(want) and math.isinf(hf[i]))


def test_exposure_by_protocol_by_hand() -> None:
    """aave: p1 (10 ETH, 10,000 USDC debt), p2 (10 stETH + 1 ETH, 18,000), p3 (1 ETH)."""
    t = compile_system(tiny_snapshot())
    from graph.export import exposure_by_protocol

    df = exposure_by_protocol(t)
    assert list(df.index) == ["aave", "deribit"]
    aave = df.loc["aave"]
    assert aave.positions == 3
    assert aave.collateral_usd == 10 * 2000 + 10 * 1980 + 2000 + 2000
    assert aave.debt_usd == 28000
    assert aave.below_near == 1  # p2 at HF 0.97
    assert aave.median_hf == pytest.approx((1.65 + 17490 / 18000) / 2)
