"""Implied volatility: chain fit, GARCH fallback, response to shocks (market/implied_vol.py)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from helpers import MARKET_DATA
from hypothesis import given
from hypothesis import strategies as st

from simulate.market.implied_vol import (
    IV_FLOOR,
    IVModel,
    IVModelError,
    IVSmile,
    atm_from_volatility,
    deribit_chain,
    iv_model_from_chain,
    iv_model_from_market,
    shocked_iv,
    smile,
)
from simulate.market.shocks import PegModel, fit_market_model

CHAIN = (MARKET_DATA / "deribit"
         / "btc_options_chain_2020-05-14.csv")

MODEL = IVModel(smiles={"BTC": IVSmile(underlying="BTC", atm=0.8, skew=-0.2, curvature=1.0),
                        "ETH": IVSmile(underlying="ETH", atm=1.0)},
                down=1.4, up=0.7, max_multiplier=4.0)

returns = st.floats(min_value=-3.0, max_value=3.0, allow_nan=False)


@given(r=returns, extra=st.floats(min_value=0.0, max_value=3.0, allow_nan=False))
def test_a_larger_move_in_either_tail_never_lowers_iv(r: float, extra: float) -> None:
    farther = r + math.copysign(extra, r) if r != 0 else extra
    iv = shocked_iv(MODEL, np.array([[r, -r]]))
    iv_far = shocked_iv(MODEL, np.array([[farther, -farther]]))
    assert (iv_far >= iv).all()
    assert (iv >= MODEL.atm()).all()  # any move, up or down, leaves IV at or above ATM
    assert (iv <= MODEL.atm() * MODEL.max_multiplier + 1e-12).all()


def test_iv_rises_in_both_tails_more_on_the_way_down() -> None:
    iv = shocked_iv(MODEL, np.array([[-0.3, 0.0], [0.0, 0.0], [0.3, 0.0]]))
    assert iv[1, 0] == pytest.approx(0.8)
    assert iv[0, 0] > iv[2, 0] > iv[1, 0]
    assert iv[0, 0] == pytest.approx(0.8 * math.exp(1.4 * 0.3))
    assert iv[2, 0] == pytest.approx(0.8 * math.exp(0.7 * 0.3))


def test_path_returns_use_the_cumulative_move() -> None:
    r = np.zeros((2, 3, 2))
    r[:, 0, 0] = -0.2
    r[:, 1, 0] = 0.2  # back where it started
    iv = shocked_iv(MODEL, r)
    assert iv.shape == (2, 3, 2)
    np.testing.assert_allclose(iv[0, :, 0], [0.8 * math.exp(0.28), 0.8, 0.8])
    step = shocked_iv(MODEL, r, cumulative=False)
    np.testing.assert_allclose(step[0, :, 0], [0.8 * math.exp(0.28), 0.8 * math.exp(0.14), 0.8])
    only_eth = shocked_iv(MODEL, r[:, :, :1], assets=["ETH"])
    np.testing.assert_allclose(only_eth[0, :, 0], [1.0 * math.exp(0.28), 1.0, 1.0])


def test_smile_broadcasts_and_is_floored() -> None:
    atm = shocked_iv(MODEL, np.zeros((5, 4, 2)))[..., None]
    k = np.array([-0.2, 0.0, 0.2])
    iv = smile(atm[:, :, :1], k, skew=-0.2, curvature=1.0)
    assert iv.shape == (5, 4, 1, 3)
    np.testing.assert_allclose(iv[0, 0, 0], [0.8 + 0.04 + 0.04, 0.8, 0.8 - 0.04 + 0.04])
    assert smile(0.1, 3.0, skew=-1.0).item() == IV_FLOOR


def test_iv_errors_say_what_was_expected() -> None:
    with pytest.raises(ValueError, match=r"'up' IV response must be > 0 .* \(got 0.0\)"):
        IVModel(smiles=MODEL.smiles, up=0.0)
    with pytest.raises(ValueError, match=r"annualised decimal in \(0, 10\) \(got 80.0\)"):
        IVSmile(underlying="BTC", atm=80.0)
    with pytest.raises(IVModelError, match=r"no implied vol for \['SOL'\]"):
        shocked_iv(MODEL, np.zeros((3, 1)), assets=["SOL"])
    with pytest.raises(IVModelError, match=r"\[num_paths, num_steps, num_assets\]"):
        shocked_iv(MODEL, np.zeros(3))


def test_atm_iv_from_the_real_deribit_chain() -> None:
    """BTC on 2020-05-14, three days after the halving.

    The fit uses the 22 May 2020 expiry (8 days: the nearest at least 7 days out). Its marks
    near the forward (9,350) are 0.76-0.77, and BTC's realised vol in the weeks before was
    70-90%: the ATM level must lie in [0.65, 0.95] and within 3 vol points of the mark of
    the strike nearest the forward; puts are dearer than calls (negative skew) and the smile
    is convex.
    """
    raw = pd.read_csv(CHAIN)
    chain = deribit_chain(raw)
    model = iv_model_from_chain(chain)
    btc = model.smiles["BTC"]
    assert btc.source == "chain"
    assert 8.0 < btc.tenor_days < 8.2
    assert 0.65 <= btc.atm <= 0.95
    e = chain[chain["expiry"] == pd.Timestamp("2020-05-22 08:00")]
    k = np.abs(np.log(e["strike"].to_numpy() / e["underlying_price"].to_numpy()))
    assert abs(btc.atm - float(e["mark_iv"].to_numpy()[int(np.argmin(k))])) < 0.03
    assert btc.skew < 0 < btc.curvature
    # the smile reproduces the OI-weighted marks near the money within a few vol points
    near = e[k < 0.15]
    fitted = smile(btc.atm, np.log(near["strike"] / near["underlying_price"]).to_numpy(),
                   skew=btc.skew, curvature=btc.curvature)
    assert np.abs(fitted - near["mark_iv"].to_numpy()).max() < 0.05
    with pytest.raises(IVModelError, match="looks like percent"):
        iv_model_from_chain(chain.assign(mark_iv=chain["mark_iv"] * 100))
    with pytest.raises(IVModelError, match="lacks columns"):
        iv_model_from_chain(raw)


def test_iv_from_garch_forecast_when_no_chain() -> None:
    rng = np.random.default_rng(1)
    n = 800
    vol = 0.03 * np.exp(0.3 * np.sin(np.arange(n) / 50))
    prices = pd.DataFrame({"ETH": 2000 * np.exp(np.cumsum(vol * rng.standard_t(5, n))),
                           "USDC": 1.0}, index=pd.date_range("2021-01-01", periods=n))
    market = fit_market_model(prices, pegged={"USDC": PegModel()})
    one = iv_model_from_market(market, horizon_days=1)
    assert one.smiles["ETH"].source == "garch"
    assert one.smiles["ETH"].atm == pytest.approx(atm_from_volatility(market.volatility["ETH"]),
                                                  rel=1e-9)
    month = iv_model_from_market(market, horizon_days=30)
    assert 0.3 < month.smiles["ETH"].atm < 1.5
    assert "USDC" not in month.smiles
    chain = deribit_chain(pd.read_csv(CHAIN)).assign(underlying="ETH")
    mixed = iv_model_from_market(market, chain=chain)
    assert mixed.smiles["ETH"].source == "chain"
