"""The SVI implied-vol surface, its no-arbitrage checks, the spot-vol dynamics and the greeks
(simulate/market/surface.py, simulate/formulas/svi.py, simulate/formulas/black_scholes.py)."""

from __future__ import annotations

import ast
import json
import math
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import MARKET_DATA
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from simulate.formulas.black_scholes import bs_delta, bs_gamma, bs_price, bs_vega, smile_delta
from simulate.formulas.svi import butterfly_g, svi_derivatives, svi_total_variance
from simulate.market.implied_vol import IVModelError, deribit_chain
from simulate.market.surface import (
    IVSurface,
    SpotVolDynamics,
    SurfaceError,
    SVISlice,
    fit_spot_vol,
    fit_surface,
    load_surface,
    read_vol_index,
    surface_quotes,
)
from simulate.prices import read_closes

CHAIN = MARKET_DATA / "deribit" / "btc_options_chain_2020-05-14.csv"
DVOL = MARKET_DATA / "deribit" / "dvol_btc_daily_kalyar197.csv"
BTC = MARKET_DATA / "prices_daily" / "btc-usd-max_erickfm.csv"


@cache
def _chain() -> pd.DataFrame:
    return deribit_chain(pd.read_csv(CHAIN))


@cache
def _surface() -> IVSurface:
    return fit_surface(_chain())


def _slice(**kw: float) -> SVISlice:
    base = {"a": 0.02, "b": 0.1, "rho": -0.3, "m": 0.05, "s": 0.2}
    return SVISlice(expiry="2020-06-26T08:00", tau=0.1, forward=100.0, **(base | kw))


# --- the SVI formula -------------------------------------------------------------------------


def test_svi_hand_solved() -> None:
    """a = 0.02, b = 0.1, ρ = -0.3, m = 0.05, s = 0.2 at k = 0.25: x = k - m = 0.2,
    √(x² + s²) = √0.08 = 0.282843; w = 0.02 + 0.1·(-0.06 + 0.282843) = 0.0422843;
    w' = 0.1·(-0.3 + 0.2/0.282843) = 0.0407107; w'' = 0.1·0.04 / 0.08^1.5 = 0.176777."""
    w, w1, w2 = svi_derivatives(0.25, 0.02, 0.1, -0.3, 0.05, 0.2)
    assert float(w) == pytest.approx(0.0422843, abs=1e-7)
    assert float(w1) == pytest.approx(0.0407107, abs=1e-7)
    assert float(w2) == pytest.approx(0.176777, abs=1e-6)
    assert float(svi_total_variance(0.25, 0.02, 0.1, -0.3, 0.05, 0.2)) == float(w)


@given(k=st.floats(-3.0, 3.0), a=st.floats(0.0, 0.1), b=st.floats(0.01, 1.0),
       rho=st.floats(-0.95, 0.95), m=st.floats(-0.5, 0.5), s=st.floats(0.05, 1.0))
def test_svi_derivatives_are_the_finite_differences(k: float, a: float, b: float, rho: float,
                                                    m: float, s: float) -> None:
    h = 1e-5
    w, w1, w2 = svi_derivatives(k, a, b, rho, m, s)
    up, dn = (svi_total_variance(k + d, a, b, rho, m, s) for d in (h, -h))
    assert float(w1) == pytest.approx(float((up - dn) / (2 * h)), abs=1e-6)
    assert float(w2) == pytest.approx(float((up - 2 * w + dn) / h ** 2), abs=2e-3 * (1 + w2))


def test_butterfly_factor_hand_solved() -> None:
    """A flat smile has g = 1. w = 0.04, w' = 0.1, w'' = 0 at k = 0.5:
    (1 - 0.5·0.1/0.08)² - 0.0025·(25 + 0.25) + 0 = 0.140625 - 0.063125 = 0.0775."""
    assert float(butterfly_g(0.3, 0.04, 0.0, 0.0)) == 1.0
    assert float(butterfly_g(0.5, 0.04, 0.1, 0.0)) == pytest.approx(0.0775, abs=1e-12)
    assert float(butterfly_g(0.0, 0.0, 0.0, 0.0)) == -math.inf


def test_slice_validation_names_the_expiry_and_field() -> None:
    with pytest.raises(ValidationError, match=r"SVI slice 2020-06-26T08:00: 'rho' must be in"):
        _slice(rho=1.2)
    with pytest.raises(ValidationError, match=r"minimum total variance .* must be >= 0"):
        _slice(a=-0.05)
    with pytest.raises(ValidationError, match=r"wing slope b·\(1\+\|ρ\|\) must be <= 2"):
        _slice(b=1.8)
    with pytest.raises(ValidationError, match=r"'s' must be > 0"):
        _slice(s=0.0)


# --- the fitted surface ----------------------------------------------------------------------


def test_the_real_chain_fits_without_arbitrage() -> None:
    """Every one of the chain's 7 expiries (2 hours to 225 days) is one SVI slice; the fit's
    own checks pass, and the test re-checks them on its own grid: g ≥ 0 on every slice and
    every interpolated maturity, total variance rising with maturity at every k."""
    surf = _surface()
    assert len(surf.slices) == 7 and surf.checks is not None and surf.checks.passed
    assert surf.checks.butterfly_min_g >= 0 and surf.checks.calendar_min_dw >= 0
    k = np.linspace(-2.5, 2.5, 257)
    taus = np.sort(np.concatenate([surf.taus, np.linspace(1e-4, surf.taus[-1] * 1.2, 60)]))
    w = surf.total_variance(k[None, :], taus[:, None])  # [tau, k]
    assert (np.diff(w, axis=0) >= -1e-12).all()
    for sl in surf.slices:
        assert (butterfly_g(k, *sl.derivatives(k)) >= -1e-6).all(), sl.label
    assert 9000 < surf.spot < 9500 and surf.underlying == "BTC"


def test_the_surface_reproduces_the_marks() -> None:
    """In-sample RMSE against mark_iv, one out-of-the-money quote per strike and expiry:
    within 1.5 vol points on every expiry at least a week out. The 1-day expiry's far strikes
    trade at the minimum tick (marks flat at 171-176% where the quotes are one-sided, ask up to
    320%): the fit stays between bid and ask there instead (checked: no fitted vol above the
    ask)."""
    surf, q = _surface(), surface_quotes(_chain())
    for sl in surf.slices:
        if sl.tau * 365 >= 7:
            assert sl.rmse < 0.015, (sl.label, sl.rmse)
    fitted = surf.vol(q["k"].to_numpy(), q["tau"].to_numpy())
    ask = q["ask_iv"].to_numpy()
    assert (fitted[np.isfinite(ask)] <= ask[np.isfinite(ask)] + 0.01).all()


def test_far_wings_stay_sane() -> None:
    """SVI wings are linear in total variance, so the vol grows like √|k| far out. For the
    expiries quoted out to |k| ≥ 1 (26 Jun, 25 Sep, 25 Dec 2020), the vol at k = ±2 stays
    within 0.9-1.5x the mark of the farthest quoted strike on that side; every expiry stays
    below 500% at |k| = 2 (the old quadratic gave 1,031% at a quoted strike marked 184%)."""
    surf, q = _surface(), surface_quotes(_chain())
    for sl in surf.slices:
        far = sl.vol(np.array([-2.0, 2.0]))
        assert (far < 5.0).all(), sl.label
        e = q[q["expiry"] == pd.Timestamp(sl.expiry)]
        if e["k"].abs().max() < 1.0:
            continue
        left, right = e.iloc[0], e.iloc[-1]
        assert 0.9 * left["mark_iv"] <= far[0] <= 1.5 * left["mark_iv"], sl.label
        assert 0.9 * right["mark_iv"] <= far[1] <= 1.5 * right["mark_iv"], sl.label


def test_maturity_interpolation_is_linear_in_total_variance() -> None:
    """Halfway (in τ) between two slices at fixed k the total variance is the mean of theirs;
    before the first expiry the first slice's vol holds, after the last the last one's."""
    surf = _surface()
    a, b = surf.slices[3], surf.slices[4]
    k = np.array([-0.5, 0.0, 0.4])
    mid = 0.5 * (a.tau + b.tau)
    np.testing.assert_allclose(surf.total_variance(k, mid),
                               0.5 * (a.total_variance(k) + b.total_variance(k)), rtol=1e-12)
    np.testing.assert_allclose(surf.vol(k, surf.slices[0].tau / 3), surf.slices[0].vol(k),
                               rtol=1e-12)
    np.testing.assert_allclose(surf.vol(k, 5.0), surf.slices[-1].vol(k), rtol=1e-12)


def test_surface_round_trips_through_json(tmp_path: Path) -> None:
    surf = _surface()
    path = tmp_path / "btc.json"
    path.write_text(surf.model_dump_json())
    back = load_surface(path)
    assert back == surf
    bad = surf.model_dump(mode="json")
    bad["slices"][2]["rho"] = 1.5
    path.write_text(json.dumps(bad))
    with pytest.raises(SurfaceError, match=r"btc.json: slices.2: SVI slice 2020-05-22T08:00: "
                                           r"'rho' must be in \(-1, 1\)"):
        load_surface(path)
    with pytest.raises(SurfaceError, match="cannot read"):
        load_surface(tmp_path / "missing.json")


def test_fit_refuses_what_it_cannot_use() -> None:
    chain = _chain()
    with pytest.raises(SurfaceError, match="looks like percent"):
        fit_surface(chain.assign(mark_iv=chain["mark_iv"] * 100))
    with pytest.raises(SurfaceError, match="lacks columns"):
        fit_surface(chain.drop(columns=["strike"]))
    with pytest.raises(SurfaceError, match="spread weighting needs bid_iv"):
        fit_surface(chain.drop(columns=["bid_iv", "ask_iv"]))
    last = chain[chain["expiry"] == chain["expiry"].max()]
    few = last[last["strike"].isin(sorted(last["strike"].unique())[:4])]
    with pytest.raises(SurfaceError, match=r"expiry 2020-12-25T08:00: an SVI fit needs at "
                                           r"least 5 strikes \(got 4\)"):
        fit_surface(few)
    with pytest.raises(SurfaceError, match=r"option BTC-.* expired"):
        fit_surface(chain, as_of=pd.Timestamp("2020-05-14 09:00"))
    with pytest.raises(SurfaceError, match="weighting must be"):
        fit_surface(chain, weighting="equal")  # type: ignore[arg-type]
    assert issubclass(SurfaceError, IVModelError)


def test_vega_weighting_fits_too() -> None:
    surf = fit_surface(_chain().drop(columns=["bid_iv", "ask_iv"]), weighting="vega",
                       min_days=7)
    assert surf.weighting == "vega" and surf.checks is not None and surf.checks.passed
    assert len(surf.slices) == 5 and max(s.rmse for s in surf.slices) < 0.02


# --- spot-vol dynamics -----------------------------------------------------------------------


def test_spot_vol_fit_recovers_known_slopes() -> None:
    """Prices 100·e^{R_t} with daily returns r = (-0.1, 0.05, -0.02, 0.08, ...) cycled over
    40 days; vol moves exactly Δ ln vol = 0.01 + 2·max(-r, 0) + 0.5·max(r, 0): OLS gives
    down = 2, up = 0.5, intercept 0.01, R² = 1 and zero standard errors. On 2 Jan (r = -0.1)
    the vol rises by e^{0.01 + 0.2} - 1 = 23.4%."""
    r = np.tile([-0.1, 0.05, -0.02, 0.08, 0.0, -0.04, 0.03, 0.01], 5)
    idx = pd.date_range("2024-01-01", periods=len(r) + 1)
    price = pd.Series(100 * np.exp(np.r_[0.0, np.cumsum(r)]), index=idx)
    dv = 0.01 + 2.0 * np.maximum(-r, 0) + 0.5 * np.maximum(r, 0)
    vol = pd.Series(0.6 * np.exp(np.r_[0.0, np.cumsum(dv)]), index=idx)
    assert vol.iloc[1] / vol.iloc[0] - 1 == pytest.approx(math.exp(0.21) - 1)
    fit = fit_spot_vol(vol, price)
    assert (fit.down, fit.up, fit.intercept) == pytest.approx((2.0, 0.5, 0.01), abs=1e-10)
    assert fit.r_squared == pytest.approx(1.0) and fit.observations == 40
    assert fit.down_se is not None and fit.down_se < 1e-8
    assert (fit.first, fit.last) == ("2024-01-02", "2024-02-10")
    with pytest.raises(SurfaceError, match=r"at least 30 days .* \(got 9\)"):
        fit_spot_vol(vol.iloc[:10], price)


def test_spot_vol_fit_on_btc_dvol() -> None:
    """DVOL closes (Nov 2022 - Nov 2025) against CoinGecko BTC closes (to Nov 2023): 366
    overlapping one-day moves. Vol rises on falls (down > 0, more than two standard errors)
    and the record holds every field."""
    fit = fit_spot_vol(read_vol_index(DVOL), read_closes(BTC, "BTC").series)
    assert fit.source == "fitted" and fit.observations > 300
    assert fit.down_se is not None and fit.down > 2 * fit.down_se > 0
    assert fit.up_se is not None and fit.intercept_se is not None
    assert fit.r_squared is not None and 0.05 < fit.r_squared < 1
    assert fit.first is not None and fit.last is not None and fit.first < fit.last


def test_vol_index_reader_rejects_bad_rows(tmp_path: Path) -> None:
    p = tmp_path / "dvol.csv"
    p.write_text("date_utc,dvol_close\n2024-01-01,50\n2024-01-02,-3\n")
    with pytest.raises(SurfaceError, match=r"'dvol_close': must be > 0 \(got -3"):
        read_vol_index(p)
    p.write_text("date,close\n2024-01-01,50\n")
    with pytest.raises(SurfaceError, match=r"lacks columns \['date_utc', 'dvol_close'\]"):
        read_vol_index(p)


def test_sticky_moneyness_under_a_spot_move() -> None:
    """The spot falls 20% (R = ln 0.8): every strike is read at ln(K/S') on the fitted smile
    and scaled by M = e^{-1.4·ln 0.8} = 1.3664 (default dynamics); the spot slope is the
    derivative of that vol in S (central difference)."""
    surf = _surface()
    s0, tau, strikes = surf.spot, 43 / 365, np.array([6000.0, 7500.0, 9000.0, 11000.0])
    s = 0.8 * s0
    vol, slope = surf.vol_and_spot_slope(strikes, tau, s, s0)
    mult = math.exp(-1.4 * math.log(0.8))
    np.testing.assert_allclose(vol, mult * surf.vol(np.log(strikes / s), tau), rtol=1e-12)
    h = 1e-3 * s
    up, _ = surf.vol_and_spot_slope(strikes, tau, s + h, s0)
    dn, _ = surf.vol_and_spot_slope(strikes, tau, s - h, s0)
    np.testing.assert_allclose(slope, (up - dn) / (2 * h), rtol=1e-4)
    dyn = SpotVolDynamics(down=1.4, up=0.7)
    assert float(dyn.log_slope(0.0)) == pytest.approx(-0.35)
    assert float(dyn.log_slope(-2.0)) == 0.0  # capped at 4: e^{2.8} > 4


# --- greeks ----------------------------------------------------------------------------------


@given(s=st.floats(50, 200), k=st.floats(50, 200), t=st.floats(0.02, 2.0),
       v=st.floats(0.1, 2.0))
def test_greeks_are_the_derivatives_of_the_price(s: float, k: float, t: float,
                                                 v: float) -> None:
    hs, hv = 1e-4 * s, 1e-5
    call = [bs_price(x, k, t, v, True) for x in (s - hs, s + hs)]
    assert float(bs_delta(s, k, t, v, True)) == pytest.approx(  # O(h²) truncation
        float((call[1] - call[0]) / (2 * hs)), rel=5e-5, abs=1e-6)
    d = [bs_delta(x, k, t, v, False) for x in (s - hs, s + hs)]
    assert float(bs_gamma(s, k, t, v)) == pytest.approx(float((d[1] - d[0]) / (2 * hs)),
                                                        rel=5e-5, abs=1e-6)
    pv = [bs_price(s, k, t, x, False) for x in (v - hv, v + hv)]
    assert float(bs_vega(s, k, t, v)) == pytest.approx(float((pv[1] - pv[0]) / (2 * hv)),
                                                       rel=1e-5, abs=1e-6)
    # put-call parity C - P = S - K: the deltas differ by 1, gamma and vega are shared
    assert float(bs_price(s, k, t, v, True) - bs_price(s, k, t, v, False)) == pytest.approx(
        s - k, abs=1e-9 * s)
    assert float(bs_delta(s, k, t, v, True) - bs_delta(s, k, t, v, False)) == pytest.approx(1)


def test_vega_is_zero_at_expiry() -> None:
    assert bs_vega([100.0, 0.0], 100.0, [0.0, 1.0], 0.5).tolist() == [0.0, 0.0]


def test_smile_delta_is_the_total_derivative_on_the_surface() -> None:
    """d/dS of bs_price(S, K, τ, σ(K, τ; S)) with σ from the fitted surface and its dynamics,
    by central differences, equals Δ_BS + vega·∂σ/∂S, here 10% below the snapshot spot."""
    surf = _surface()
    s0, tau = surf.spot, 43 / 365
    strikes = np.array([6000.0, 8000.0, 10000.0, 13000.0])
    for call in (True, False):
        s = 0.9 * s0
        vol, slope = surf.vol_and_spot_slope(strikes, tau, s, s0)
        h = 1e-3 * s
        px = [bs_price(x, strikes, tau, surf.vol_and_spot_slope(strikes, tau, x, s0)[0], call)
              for x in (s - h, s + h)]
        np.testing.assert_allclose(smile_delta(s, strikes, tau, vol, call, slope),
                                   (px[1] - px[0]) / (2 * h), rtol=1e-5, atol=1e-7)


def test_greeks_match_deribits() -> None:
    """Deribit's printed greeks at the row's mark_iv, its underlying_price (the expiry's
    forward; zero rates) and τ from the row's own timestamp to expiry (365-day years).

    What the file shows: ``delta`` is the Black–Scholes forward delta N(d1) (calls) or
    N(d1) - 1 (puts) in units of BTC per option, *not* premium-adjusted for the
    coin-settled (inverse) contract (which would subtract the premium in BTC); ``gamma`` is
    per USD of the underlying; ``vega`` is USD per 1 vol point, i.e. bs_vega / 100. Printed
    values are rounded to 5 decimals; only rows with τ ≥ 1 day are compared (Deribit rounds
    the 2-hour expiry's greeks coarsely)."""
    raw = pd.read_csv(CHAIN)
    g = pd.DataFrame([ast.literal_eval(x) for x in raw["greeks"]])
    tau = (raw["expiration_timestamp"] - raw["timestamp"]) / (365 * 86400e3)
    f, k, v = raw["underlying_price"], raw["strike"], raw["mark_iv"] / 100
    call = (raw["option_type"] == "call").to_numpy()
    use = (tau * 365 >= 1).to_numpy()
    delta = bs_delta(f, k, tau, v, call)
    assert np.abs(delta - g["delta"])[use].max() < 2e-4
    assert np.abs(bs_gamma(f, k, tau, v) - g["gamma"])[use].max() < 1e-5
    vega = bs_vega(f, k, tau, v) / 100
    assert np.abs(vega - g["vega"])[use].max() < 2e-3 * max(1.0, float(g["vega"].max()))
    np.testing.assert_allclose(vega[use], g["vega"][use], rtol=1e-3, atol=6e-5)
