"""Peg models fitted from price histories (simulate/market/peg.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers import MARKET_DATA

from graph.errors import ContagionError
from simulate.market.peg import DEFAULT_THRESHOLD, PRIOR, PegFitError, fit_peg_model
from simulate.market.shocks import PegModel, fit_market_model, simulate_returns
from simulate.prices import read_closes

HAND = [1.0, 1.0, 0.9, 0.95, 0.975, 0.9875, 1.0, 1.01, 0.8, 0.88, 1.0, 1.0]


def test_hand_solved_series() -> None:
    """The module doc's series: events at t = 2, 8; λ = 2/11; ρ = 1 - median(0.5, 0.5, 0.5,
    0.6, 0) = 0.5; sizes 0.1, 0.2: m = 0.15, s² = 0.005, c = 24.5, Beta(3.675, 20.825)."""
    p = pd.Series(HAND, index=pd.date_range("2024-01-01", periods=len(HAND), freq="h"))
    fit = fit_peg_model(p, asset="X", threshold=0.02, min_size_events=2)
    assert (fit.observations, fit.transitions, fit.skipped, fit.events) == (12, 11, 0, 2)
    assert fit.period == pd.Timedelta("1h").isoformat()
    assert fit.event_times == ["2024-01-01 02:00:00", "2024-01-01 08:00:00"]
    assert fit.model.intensity == pytest.approx(2 / 11)
    assert fit.recovery_periods == 5
    assert fit.model.recovery == pytest.approx(0.5)
    assert fit.event_sizes == pytest.approx([0.1, 0.2])
    assert fit.model.size_params == pytest.approx((3.675, 20.825))
    assert (fit.largest_depeg, fit.largest_depeg_at) == (pytest.approx(0.2),
                                                         "2024-01-01 08:00:00")
    assert fit.sizes_fitted and fit.recovery_fitted and fit.notes == []
    assert fit.model.peg == 1.0 and fit.model.size_dist == "beta"


def test_few_events_use_their_mean_with_the_prior_concentration_and_say_so() -> None:
    """Two events, fewer than the default 5: Beta(0.15·31, 0.85·31) = Beta(4.65, 26.35)."""
    fit = fit_peg_model(pd.Series(HAND), asset="X", threshold=0.02)
    assert fit.period is None and fit.transitions == 11
    assert not fit.sizes_fitted and fit.recovery_fitted
    assert fit.model.size_params == pytest.approx((4.65, 26.35))
    assert "prior concentration a + b = 31" in fit.estimators["sizes"]
    assert fit.notes == ["sizes: 2 depeg events (fewer than 5): Beta with their mean 0.15 and "
                         "the prior's concentration a + b = 31 (Beta(4.65, 26.35)) is used, "
                         "not a fit"]


def test_no_event_uses_the_prior_and_says_so() -> None:
    p = pd.Series(1.0 - 0.001 * np.random.default_rng(3).random(200))
    fit = fit_peg_model(p, asset="CALM")
    assert fit.events == 0 and fit.model.intensity == 0.0
    assert fit.model.size_params == PRIOR.size_params
    assert fit.model.recovery == PRIOR.recovery
    assert not fit.sizes_fitted and not fit.recovery_fitted
    assert fit.estimators["sizes"] == "prior Beta(1, 30)"
    assert any(n.startswith("no depeg event above 0.02 in 199 periods") for n in fit.notes)
    assert any(n.startswith("recovery: 0 periods") for n in fit.notes)


def test_a_gap_is_not_a_period() -> None:
    """Dropping hour 2 (the first event): the 1 → 3 pair spans a gap, so it is skipped."""
    p = pd.Series(HAND, index=pd.date_range("2024-01-01", periods=len(HAND), freq="h"))
    fit = fit_peg_model(p.drop(p.index[2]), asset="X", threshold=0.02, min_size_events=2)
    assert (fit.transitions, fit.skipped, fit.events) == (9, 1, 1)
    assert fit.event_times == ["2024-01-01 08:00:00"]


@pytest.mark.parametrize("seed", [5, 6])
def test_a_simulated_peg_is_fitted_back(seed: int) -> None:
    """50,000 steps of a known PegModel simulated by simulate_returns (no noise): the fit
    recovers intensity (sd of the estimate ≈ 0.00045), mean size (sd ≈ 0.002) and recovery
    (exact between events)."""
    true = PegModel(intensity=0.01, size_dist="beta", size_params=(4.0, 36.0), recovery=0.3)
    start = pd.DataFrame({"P": np.ones(10)},
                         index=pd.date_range("2023-01-01", periods=10, freq="h"))
    model = fit_market_model(start, pegged={"P": true})
    r = simulate_returns(model, 1, 50_000, seed=seed)[0, :, 0]
    price = np.exp(np.r_[0.0, np.cumsum(r)])
    closes = pd.Series(price, index=pd.date_range("2023-01-01", periods=price.size, freq="h"))
    fit = fit_peg_model(closes, asset="P")
    assert fit.sizes_fitted and fit.recovery_fitted and fit.notes == []
    assert abs(fit.model.intensity - true.intensity) < 0.0015, fit.model.intensity
    a, b = fit.model.size_params
    assert abs(a / (a + b) - 0.1) < 0.008, (a, b)
    assert 40 * 0.6 < a + b < 40 * 1.6, (a, b)  # concentration, a noisier moment
    assert abs(fit.model.recovery - true.recovery) < 0.01, fit.model.recovery


@pytest.mark.parametrize("asset", ["USDC", "DAI", "USDT"])
def test_hourly_stablecoin_noise_does_not_trigger_the_default_threshold(asset: str) -> None:
    """CoinGecko hourly closes 2021-01 .. 2023-02 (noise s.d. about 0.3% per hour): at the
    default threshold only a handful of isolated prints count (measured 5-8 in about 18,800
    hours), while a threshold at noise level (0.5%) would count well over a hundred."""
    s = read_closes(MARKET_DATA / "prices_hourly" / f"{asset}_usd.csv", asset, "hourly").series
    fit = fit_peg_model(s, asset=asset)
    assert fit.threshold == DEFAULT_THRESHOLD
    assert fit.transitions > 18_000 and fit.period == pd.Timedelta("1h").isoformat()
    assert fit.events <= 15 and fit.model.intensity < 1e-3, fit.events
    assert fit_peg_model(s, asset=asset, threshold=0.005).events > 100
    assert 0.0 <= fit.model.recovery <= 1.0 and fit.largest_depeg < 0.1


def _usdc_march_2023(column: str) -> pd.Series:
    df = pd.read_csv(MARKET_DATA / "depeg" / "usdc_15min_2023-03-09_to_03-19_stablesafe.csv")
    idx = pd.DatetimeIndex(pd.to_datetime(df["dt"], utc=True)).tz_localize(None)
    return pd.Series(df[column].to_numpy(dtype=float), index=idx)


def test_usdc_march_2023_depeg_is_found() -> None:
    """15-minute bars around the SVB failure: the drop to 0.90 on 11 March is an event (close
    0.9008 at 10:00 is the largest depeg of the closes, bar low 0.8994 that of the lows)."""
    fit = fit_peg_model(_usdc_march_2023("close"), asset="USDC")
    assert fit.period == pd.Timedelta("15min").isoformat()
    assert fit.events >= 1
    assert any(t.startswith("2023-03-11") for t in fit.event_times)
    assert fit.largest_depeg == pytest.approx(1 - 0.900761, abs=1e-5)
    assert fit.largest_depeg_at == "2023-03-11 10:00:00"
    assert max(fit.event_sizes) > 0.05
    lows = fit_peg_model(_usdc_march_2023("low"), asset="USDC")
    assert lows.largest_depeg == pytest.approx(1 - 0.899418, abs=1e-5)
    assert lows.largest_depeg_at.startswith("2023-03-11")
    # too few events for a moment fit of the sizes: flagged, not silent
    assert not fit.sizes_fitted and fit.notes and "not a fit" in fit.notes[-1]


def test_errors_say_what_was_expected() -> None:
    ok = pd.Series(HAND)
    with pytest.raises(PegFitError, match=r"peg fit of 'X' needs at least 10 closes \(got 5\)"):
        fit_peg_model(ok[:5], asset="X")
    with pytest.raises(PegFitError, match=r"closes must be positive and finite \(got -1.0 at 3"):
        fit_peg_model(ok.where(ok.index != 3, -1.0), asset="X")
    with pytest.raises(PegFitError, match=r"got nan at 4; drop missing values first"):
        fit_peg_model(ok.where(ok.index != 4, np.nan), asset="X")
    with pytest.raises(PegFitError, match=r"threshold must be a depeg in \(0, 1\) \(got 0\)"):
        fit_peg_model(ok, asset="X", threshold=0)
    with pytest.raises(PegFitError, match=r"peg must be a positive price \(got -1.0\)"):
        fit_peg_model(ok, asset="X", peg=-1.0)
    with pytest.raises(PegFitError, match="closes must be a pandas Series"):
        fit_peg_model(HAND, asset="X")  # type: ignore[arg-type]
    with pytest.raises(PegFitError, match="min_size_events must be an integer >= 2"):
        fit_peg_model(ok, asset="X", min_size_events=1)
    shuffled = pd.Series(HAND, index=pd.date_range("2024-01-01", periods=12, freq="h")[::-1])
    with pytest.raises(PegFitError, match="must be in time order"):
        fit_peg_model(shuffled, asset="X")
    assert issubclass(PegFitError, ContagionError) and issubclass(PegFitError, ValueError)
