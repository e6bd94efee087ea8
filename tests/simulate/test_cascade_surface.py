"""Option legs marked from an implied-vol surface in the cascade (simulate/cascade/system.py
``compile_cascade(..., surfaces)``, mechanics.leg_vols, mechanics.surface_response, both
kernels, run.run_cascade ``surfaces``)."""

from __future__ import annotations

import math
from functools import cache

import numpy as np
import pandas as pd
import pytest
from helpers import MARKET_DATA, assert_same_paths, fixed_paths, generated_system, tiny_snapshot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graph.export import compile_system
from simulate.cascade import (
    CascadeParams,
    compile_cascade,
    run_fast,
    run_reference,
)
from simulate.cascade.mechanics import leg_vols, surface_response
from simulate.cascade.run import RunError, run_cascade
from simulate.formulas.black_scholes import bs_delta, bs_vega
from simulate.market.implied_vol import deribit_chain
from simulate.market.surface import IVSurface, SpotVolDynamics, SVISlice, fit_surface
from simulate.scenarios import FixedShockScenario, ScenarioError

CHAIN = MARKET_DATA / "deribit" / "btc_options_chain_2020-05-14.csv"


@cache
def _btc_surface() -> IVSurface:
    return fit_surface(deribit_chain(pd.read_csv(CHAIN)),
                       dynamics=SpotVolDynamics(down=1.64, up=1.2, source="fitted"))


def _flat(vol: float, underlying: str = "ETH") -> IVSurface:
    """One slice with b = 0: w(k) = a = vol²·τ at every k, so σ_0 = vol everywhere."""
    tau = 0.25
    sl = SVISlice(expiry="2023-12-01T00:00", tau=tau, forward=2000.0, a=vol * vol * tau,
                  b=0.0, rho=0.0, m=0.0, s=0.1)
    return IVSurface(underlying=underlying, as_of="2023-09-01T00:00", spot=2000.0,
                     slices=(sl,))


def test_legs_read_the_surface_at_their_strike_against_the_shocked_spot() -> None:
    """The tiny snapshot's ETH short call (K 2,200) and put (K 1,800), stored IVs 0.6 / 0.65,
    ETH at 2,000. With a flat 80% surface and an IV multiplier of 1.5 both legs are marked at
    0.8 · 1.5 = 1.2, whatever their stored IV; their spot slope is (M/S)·σ_0·∂ln M/∂R =
    (1.5 / 1,600)·0.8·(-1.4) = -0.0010500 at a 20% fall (default dynamics)."""
    system = compile_system(tiny_snapshot())
    stored = compile_cascade(system)
    cs = compile_cascade(system, {"ETH": _flat(0.8)})
    legs = np.arange(len(cs.leg_asset))
    eth = list(system.asset_ids).index("ETH")
    spot = system.price.copy()
    spot[eth] *= 0.8
    vm = np.ones(len(spot))
    vm[eth] = 1.5
    _, vol_stored, slope_stored = leg_vols(stored, legs, spot, vm, 0.0)
    np.testing.assert_allclose(vol_stored, [0.9, 0.975])  # 0.6·1.5, 0.65·1.5
    assert (slope_stored == 0).all()
    _, vol, slope = leg_vols(cs, legs, spot, vm, 0.0)
    np.testing.assert_allclose(vol, [1.2, 1.2], rtol=1e-12)
    np.testing.assert_allclose(slope, [-0.00105, -0.00105], rtol=1e-12)
    assert cs.iv_source == {"ETH": "surface"} and stored.iv_source == {"ETH": "stored"}


def test_a_skewed_surface_is_read_at_each_strikes_moneyness() -> None:
    """On the real BTC surface, a generated ecosystem's BTC legs get M·σ_0(ln(K/S), τ)."""
    system = generated_system(200, 1)
    surf = _btc_surface()
    cs = compile_cascade(system, {"BTC": surf})
    btc = list(system.asset_ids).index("BTC")
    legs = np.flatnonzero(cs.leg_asset == btc)
    spot = system.price * 0.7
    vm = np.full(len(spot), 1.3)
    tau, vol, _ = leg_vols(cs, legs, spot, vm, 2.0)
    expect = 1.3 * surf.vol(np.log(cs.leg_strike[legs] / spot[btc]),
                            np.maximum(cs.leg_tau0[legs] - 2.0 / 365, 0.0))
    np.testing.assert_allclose(vol, expect, rtol=1e-12)
    np.testing.assert_allclose(tau, np.maximum(cs.leg_tau0[legs] - 2.0 / 365, 0.0))
    assert cs.iv_source == {"BTC": "surface", "ETH": "stored"}


move = st.tuples(st.floats(-0.6, 0.2), st.floats(-0.6, 0.3), st.floats(1.0, 2.5))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 3), moves=st.lists(move, min_size=1, max_size=3),
       close=st.booleans())
def test_fast_kernel_equals_reference_with_a_surface(seed: int,
                                                     moves: list[tuple[float, float, float]],
                                                     close: bool) -> None:
    system = generated_system(200, seed)
    params = CascadeParams(rounds=10, dealer_hedging=True, hedge_tolerance_usd=1000.0)
    cs = compile_cascade(system, {"BTC": _btc_surface(), "ETH": _flat(0.7)})
    shocks = fixed_paths(system, [(e, b, 1.0, v) for e, b, v in moves])
    assert_same_paths(run_reference(cs, shocks, params),
                      run_fast(cs, shocks, params, chunk_paths=1 if close else 64))


def test_dealer_delta_is_smile_consistent() -> None:
    """The reference kernel's dealer delta on a surface leg is Δ_BS + vega·∂σ/∂S; on the
    flat 80% ETH surface after a 20% fall with M = 1.5 that is N(d1) - vega·0.00105."""
    from simulate.cascade.reference import _dealer_delta

    system = generated_system(200, 0)
    cs = compile_cascade(system, {"ETH": _flat(0.8)})
    eth = list(system.asset_ids).index("ETH")
    p = system.price.copy()
    p[eth] *= 0.8
    vm = np.ones(len(p))
    vm[eth] = 1.5
    open_ = np.ones(len(cs.opt_pos), dtype=bool)
    got = _dealer_delta(cs, open_, p, vm, 0.0)[eth]
    expect = 0.0
    for j in np.flatnonzero(cs.opt_dealer):
        for leg in range(cs.leg_ptr[j], cs.leg_ptr[j + 1]):
            if cs.leg_asset[leg] != eth:
                continue
            k, t = cs.leg_strike[leg], cs.leg_tau0[leg]
            d = bs_delta(p[eth], k, t, 1.2, cs.leg_call[leg]) + bs_vega(
                p[eth], k, t, 1.2) * (1.5 / p[eth]) * 0.8 * -1.4
            expect += cs.leg_sign[leg] * cs.leg_size[leg] * float(d)
    assert expect != 0 and got == pytest.approx(expect, rel=1e-12)


def test_monte_carlo_iv_follows_the_fitted_response() -> None:
    """For an underlying with a surface, the IV multiplier is its dynamics' M(ln X): with
    down 1.64, a 30% fall (ln 0.7 = -0.3567) gives e^{0.585} = 1.795; other assets keep the
    shocks' multipliers."""
    system = generated_system(200, 1)
    cs = compile_cascade(system, {"BTC": _btc_surface()})
    shocks = fixed_paths(system, [(-0.3, -0.3, 1.0, 1.1)])
    out = surface_response(cs, shocks)
    btc, eth = list(system.asset_ids).index("BTC"), list(system.asset_ids).index("ETH")
    assert out.iv[0, 0, btc] == pytest.approx(math.exp(-1.64 * math.log(0.7)), rel=1e-12)
    assert out.iv[0, 0, eth] == shocks.iv[0, 0, eth] == pytest.approx(1.1)
    assert surface_response(compile_cascade(system), shocks) is shocks


def test_run_records_which_vol_each_underlying_used() -> None:
    system = generated_system(200, 1)
    sc = FixedShockScenario(name="btc-40", shocks={"BTC": -0.4, "ETH": -0.3}, proxy="ETH")
    res = run_cascade(system, sc, surfaces={"BTC": _btc_surface()})
    iv = res.inputs["implied_vol"]
    assert iv["ETH"] == {"source": "stored"}
    assert iv["BTC"]["source"] == "surface" and len(iv["BTC"]["expiries"]) == 7
    assert iv["BTC"]["dynamics"]["down"] == 1.64 and iv["BTC"]["checks"]["butterfly_min_g"] >= 0
    plain = run_cascade(system, sc)
    assert plain.inputs["implied_vol"] == {"BTC": {"source": "stored"},
                                           "ETH": {"source": "stored"}}
    with pytest.raises(RunError, match="give surfaces to compile_cascade"):
        run_cascade(compile_cascade(system), sc, surfaces={"BTC": _btc_surface()})


def test_surfaces_that_reach_no_leg_are_refused() -> None:
    system = generated_system(200, 1)
    with pytest.raises(ValueError, match=r"surface for 'USDC': no option leg of the snapshot "
                                         r"is on asset USDC"):
        compile_cascade(system, {"USDC": _flat(0.1, "USDC")})
    with pytest.raises(ScenarioError, match="surface underlying 'SOL' is not an asset"):
        compile_cascade(system, {"SOL": _flat(0.1, "SOL")})
