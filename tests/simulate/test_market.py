"""The market model: volatility recovery, joint shocks, pegs, jumps (simulate/market/shocks.py)."""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import pandas as pd
import pytest
from arch.univariate import GARCH, ConstantMean, SkewStudent
from helpers import MARKET_DATA
from scipy import stats

from simulate.market.shocks import (
    JumpSpec,
    MarketModel,
    MarketModelError,
    PegModel,
    ShockMethod,
    draw_innovations,
    fit_market_model,
    fit_t_copula,
    simulate_returns,
)
from simulate.market.volatility import SCALE, FittedVolatility, VolSpec, fit_volatility
from simulate.prices import log_returns, read_closes

DATA = MARKET_DATA

#: GJR-GARCH(1,1)-skewed-t in arch's names, percent units: persistence α + γ/2 + β ≈ 0.95
TRUE = {"mu": 0.05, "omega": 0.05, "alpha[1]": 0.05, "gamma[1]": 0.10, "beta[1]": 0.85,
        "eta": 6.0, "lambda": -0.1}
#: about three standard errors of each estimate at 6,000 observations (measured over seeds)
TOLERANCE = {"mu": 0.04, "omega": 0.03, "alpha[1]": 0.03, "gamma[1]": 0.05, "beta[1]": 0.04,
             "eta": 1.5, "lambda": 0.06}


def gjr_skewt_returns(nobs: int, seed: int, params: dict[str, float] = TRUE) -> pd.Series:
    """Decimal returns simulated by arch from GJR-GARCH(1,1)-skewed-t ``params``."""
    model = ConstantMean(None, volatility=GARCH(1, 1, 1),
                         distribution=SkewStudent(seed=np.random.default_rng(seed)))
    sim = model.simulate([params[k] for k in TRUE], nobs=nobs, burn=500)
    return pd.Series(sim["data"].to_numpy() / SCALE,
                     index=pd.date_range("2008-01-01", periods=nobs, freq="D"))


def prices_from(returns: pd.DataFrame) -> pd.DataFrame:
    first = pd.DataFrame(0.0, index=[returns.index[0] - pd.Timedelta(days=1)],
                         columns=returns.columns)
    log_prices = pd.concat([first, returns]).cumsum()
    return pd.DataFrame(100.0 * np.exp(log_prices.to_numpy()), index=log_prices.index,
                        columns=log_prices.columns)


@pytest.fixture(scope="module")
def market() -> MarketModel:
    """Three GJR assets with correlated innovations (two share dates partly) and a stablecoin."""
    rng = np.random.default_rng(7)
    n = 1500
    common = gjr_skewt_returns(n, 11)
    eth = 0.7 * common + 0.7 * gjr_skewt_returns(n, 12)
    sol = gjr_skewt_returns(n, 13)
    rets = pd.DataFrame({"BTC": common, "ETH": eth, "SOL": sol})
    prices = prices_from(rets)
    prices.iloc[:200, 2] = np.nan  # SOL lists later: joint dates are the overlap
    prices["USDC"] = 1.0 - np.abs(rng.normal(0, 0.0005, len(prices)))
    return fit_market_model(prices, pegged={"USDC": PegModel(intensity=0.05)},
                            jumps=JumpSpec(intensity=0.02, mean=-0.05, std=0.03))


# --- volatility -----------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gjr_skewt_parameters_recovered(seed: int) -> None:
    fit = fit_volatility(gjr_skewt_returns(6000, seed), asset="X")
    for name, want in TRUE.items():
        assert abs(fit.params[name] - want) <= TOLERANCE[name], (name, fit.params[name])
    again = FittedVolatility.model_validate_json(fit.to_json())
    assert again == fit


def test_first_two_steps_follow_the_gjr_recursion(market: MarketModel) -> None:
    """arch's filter against the hand-written recursion (reference) for two steps."""
    z = draw_innovations(market, 64, 2, seed=5)
    r = simulate_returns(market.model_copy(update={"jumps": None}), 64, 2, seed=5,
                         innovations=z)
    j = market.assets.index("BTC")
    vol = market.volatility["BTC"]
    p = vol.params
    s1 = vol.next_variance
    e1 = np.sqrt(s1) * z[:, 0, j]
    s2 = p["omega"] + (p["alpha[1]"] + p["gamma[1]"] * (e1 < 0)) * e1**2 + p["beta[1]"] * s1
    e2 = np.sqrt(s2) * z[:, 1, j]
    np.testing.assert_allclose(r[:, 0, j], (p["mu"] + e1) / SCALE, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(r[:, 1, j], (p["mu"] + e2) / SCALE, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("model", ["garch", "egarch"])
def test_other_volatility_models_by_configuration(model: Literal["garch", "egarch"]) -> None:
    rets = pd.DataFrame({"X": gjr_skewt_returns(1000, 4), "Y": gjr_skewt_returns(1000, 5)})
    spec = VolSpec(model=model, dist="t")
    market = fit_market_model(prices_from(rets), spec)
    assert all(v.spec == spec for v in market.volatility.values())
    assert ("gamma[1]" in market.volatility["X"].params) is (model == "egarch")
    for method in ("fhs", "t-copula"):
        r = simulate_returns(market, 100, 5, seed=2, method=method)
        assert r.shape == (100, 5, 2) and np.isfinite(r).all()
        assert 0.005 < float(r.std()) < 0.1


# --- shocks -----------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["fhs", "t-copula"])
def test_shapes_and_same_seed_reproduces_exactly(market: MarketModel, method: ShockMethod) -> None:
    a = simulate_returns(market, 200, 7, seed=123, method=method)
    b = simulate_returns(market, 200, 7, seed=np.random.SeedSequence(123),
                         method=method)
    assert a.shape == (200, 7, 4)
    assert np.isfinite(a).all()
    assert np.array_equal(a, b)
    c = simulate_returns(market, 200, 7, seed=124, method=method)
    for j in range(4):
        assert not np.array_equal(a[:, :, j], c[:, :, j])


def test_json_round_trip_reproduces(market: MarketModel) -> None:
    again = MarketModel.model_validate_json(market.model_dump_json())
    assert again == market
    assert np.array_equal(simulate_returns(again, 50, 5, seed=9),
                          simulate_returns(market, 50, 5, seed=9))


@pytest.mark.parametrize("method", ["fhs", "t-copula"])
def test_antithetic_innovations_are_exact_negatives(market: MarketModel,
                                                    method: ShockMethod) -> None:
    z = draw_innovations(market, 300, 6, seed=3, method=method,
                         antithetic=True)
    assert z.shape == (300, 6, 4)
    assert np.array_equal(z[150:], -z[:150])
    assert not np.any(z[:, :, market.assets.index("USDC")])
    r = simulate_returns(market, 300, 6, seed=3, method=method,
                         antithetic=True)
    assert np.array_equal(r, simulate_returns(market, 300, 6, seed=3, innovations=z))
    with pytest.raises(MarketModelError, match="even num_paths"):
        draw_innovations(market, 301, 6, seed=3, antithetic=True)


def test_caller_innovations_give_the_internal_draw(market: MarketModel) -> None:
    z = draw_innovations(market, 100, 4, seed=42)
    assert np.array_equal(simulate_returns(market, 100, 4, seed=42, innovations=z),
                          simulate_returns(market, 100, 4, seed=42))
    # common random numbers: the same draws under a different seed change only jumps/pegs
    other = simulate_returns(market.model_copy(update={"jumps": None}), 100, 4, seed=1,
                             innovations=z)
    same = simulate_returns(market.model_copy(update={"jumps": None}), 100, 4, seed=42)
    vol_cols = [market.assets.index(a) for a in market.vol_assets]
    assert np.array_equal(other[:, :, vol_cols], same[:, :, vol_cols])
    with pytest.raises(MarketModelError, match=r"\[num_paths, num_steps, num_assets\]"):
        simulate_returns(market, 100, 4, seed=42, innovations=z[:, :, :3])


def test_fhs_draws_whole_dates(market: MarketModel) -> None:
    """Every path-step takes one date's residuals for all assets, from the shared dates only."""
    resid = market.joint_residuals()
    assert len(market.joint_dates) == resid.shape[0] == 1500 - 200
    assert market.joint_dates[0] == market.volatility["SOL"].dates[0]
    z = draw_innovations(market, 40, 5, seed=8)
    cols = [market.assets.index(a) for a in market.vol_assets]
    rows = {tuple(r) for r in resid}
    assert all(tuple(v) in rows for v in z[:, :, cols].reshape(-1, len(cols)))


def test_t_copula_recovers_correlation() -> None:
    corr = np.array([[1.0, 0.6, -0.3], [0.6, 1.0, 0.2], [-0.3, 0.2, 1.0]])
    nu = 5.0
    x = stats.multivariate_t(shape=corr, df=nu).rvs(size=4000, random_state=3)
    z = stats.norm.ppf(stats.t.cdf(x, nu)) * np.array([1.0, 2.0, 0.5])  # margins do not matter
    cop = fit_t_copula(z, ["a", "b", "c"])
    assert np.abs(cop.matrix() - corr).max() < 0.05
    assert 3.0 <= cop.dof <= 8.0


def test_t_copula_draws_carry_the_fitted_dependence(market: MarketModel) -> None:
    assert market.copula is not None
    z = draw_innovations(market, 4000, 1, seed=2, method="t-copula")[:, 0, :]
    i, j = market.assets.index("BTC"), market.assets.index("ETH")
    tau = stats.kendalltau(z[:, i], z[:, j]).statistic
    want = 2 / math.pi * math.asin(market.copula.matrix()[0, 1])
    assert abs(tau - want) < 0.04
    assert abs(float(np.std(z[:, i])) - 1.0) < 0.1  # margins are unit-variance skewed-t


def test_pegged_asset_stays_at_or_below_peg_and_depegs_at_its_intensity() -> None:
    peg = PegModel(peg=1.0, intensity=0.03, size_dist="beta", size_params=(2.0, 40.0),
                   recovery=0.0)
    prices = pd.DataFrame({"DAI": np.full(10, 1.0)},
                          index=pd.date_range("2023-01-01", periods=10))
    model = fit_market_model(prices, pegged={"DAI": peg})
    r = simulate_returns(model, 4000, 25, seed=17)[:, :, 0]
    price = peg.peg * np.exp(np.cumsum(r, axis=1))
    assert price.max() <= peg.peg * (1 + 1e-12)
    # with no recovery a step moves the price iff at least one depeg event happened
    hits = int((r < 0).sum())
    n, p = r.size, 1 - math.exp(-peg.intensity)
    assert abs(hits - n * p) <= 4 * math.sqrt(n * p * (1 - p)), (hits, n * p)
    assert (r <= 0).all()


def test_pegged_asset_starts_at_its_last_discount_and_recovers() -> None:
    peg = PegModel(intensity=0.0, recovery=0.5)
    prices = pd.DataFrame({"USDC": [1.0, 0.99, 0.9]}, index=pd.date_range("2023-03-09",
                                                                          periods=3))
    r = simulate_returns(fit_market_model(prices, pegged={"USDC": peg}), 3, 2, seed=0)
    price = 0.9 * np.exp(np.cumsum(r[:, :, 0], axis=1))
    np.testing.assert_allclose(price, [[0.95, 0.975]] * 3, rtol=1e-12)


def test_jumps_arrive_at_their_intensity_and_together_when_common(market: MarketModel) -> None:
    spec = JumpSpec(intensity=0.05, mean=-0.1, std=0.02, common=True)
    with_jumps = simulate_returns(market.model_copy(update={"jumps": spec}), 2000, 10, seed=4)
    without = simulate_returns(market.model_copy(update={"jumps": None}), 2000, 10, seed=4)
    cols = [market.assets.index(a) for a in market.vol_assets]
    jumped = (with_jumps - without)[:, :, cols] != 0
    assert (jumped == jumped[:, :, :1]).all()  # a common shock hits every asset at once
    n, p = jumped[:, :, 0].size, 1 - math.exp(-spec.intensity)
    assert abs(int(jumped[:, :, 0].sum()) - n * p) <= 4 * math.sqrt(n * p * (1 - p))
    usdc = market.assets.index("USDC")
    assert np.array_equal(with_jumps[:, :, usdc], without[:, :, usdc])


def test_errors_say_what_was_expected() -> None:
    with pytest.raises(ValueError, match=r"recovery per step must be in \[0, 1\] \(got 1.5\)"):
        PegModel(recovery=1.5)
    with pytest.raises(ValueError, match="beta depeg sizes need a > 0"):
        PegModel(size_params=(0.0, 3.0))
    with pytest.raises(ValueError, match=r"jump intensity must be a finite rate >= 0"):
        JumpSpec(intensity=-1.0)
    with pytest.raises(ValueError, match="'ETH' has neither a fitted volatility nor a peg"):
        MarketModel(assets=("ETH",))
    prices = pd.DataFrame({"X": [1.0, 2.0, -1.0]})
    with pytest.raises(MarketModelError, match="prices of 'X' must be positive"):
        fit_market_model(prices)
    with pytest.raises(MarketModelError, match=r"pegged assets \['Y'\] have no price column"):
        fit_market_model(pd.DataFrame({"X": [1.0, 2.0]}), pegged={"Y": PegModel()})


# --- real data --------------------------------------------------------------------------------


def _daily(name: str) -> pd.Series:
    df = pd.read_csv(DATA / "prices_daily" / name)
    idx = pd.to_datetime(df["date"].str.replace(" UTC", "", regex=False))
    return pd.Series(df["price"].to_numpy(dtype=float), index=idx)


def test_fit_and_simulate_on_real_btc_eth() -> None:
    """BTC and ETH daily 2019-2023 (CoinGecko): sane volatility, dependence and tails."""
    prices = pd.DataFrame({"BTC": _daily("btc-usd-max_erickfm.csv"),
                           "ETH": _daily("eth-usd-max_erickfm.csv")}).loc["2019-01-01":]
    prices["USDC"] = 1.0
    model = fit_market_model(prices, pegged={"USDC": PegModel()})
    for a in ("BTC", "ETH"):
        params = model.volatility[a].params
        assert 0.0 < params["beta[1]"] < 1.0 and params["eta"] > 2.0
        ann = model.volatility[a].next_volatility * math.sqrt(365)
        assert 0.1 < ann < 2.0, (a, ann)  # daily crypto vol, annualised
    assert model.copula is not None
    assert 0.6 < model.copula.matrix()[0, 1] < 0.95  # BTC-ETH move together
    r = simulate_returns(model, 2000, 10, seed=1, antithetic=True)
    ten_day = r.sum(axis=1)
    assert 0.05 < float(ten_day[:, 0].std()) < 0.4
    # fat tails: the bootstrapped residuals keep crypto's excess kurtosis
    assert stats.kurtosis(r[:, 0, 0]) > 1.0 and stats.kurtosis(r[:, 0, 1]) > 1.0
    assert np.all(np.cumsum(r[:, :, 2], axis=1) <= 1e-12)  # USDC never trades above $1


# --- guarded fits -------------------------------------------------------------------------------


def _daily_returns(name: str, asset: str) -> pd.Series:
    return log_returns(read_closes(DATA / "prices_daily" / name, asset).series)


def test_a_near_integrated_fit_is_refit_with_bounded_persistence() -> None:
    """BTC's last four years: unconstrained GJR-GARCH has persistence P = α + γ/2 + β =
    1.0000 (integrated: no long-run variance; the h-step variance forecast grows by ω a
    day without end); the kept fit is the bounded refit at P = 0.99 and says so. Its 365-day
    variance forecast is the GARCH mean-reversion formula
    ``v̄ + P^364 (v_1 - v̄)`` with ``v̄ = ω / (1 - P)``, below the integrated fit's."""
    from simulate.market.volatility import MAX_PERSISTENCE, persistence

    r = _daily_returns("btc-usd-max_erickfm.csv", "BTC").iloc[-1460:]
    fit = fit_volatility(r, asset="BTC")
    d = fit.diagnostics
    assert d is not None and d.bounded and d.converged and d.attempts >= 2
    assert d.unconstrained_persistence > 0.999
    p = persistence(fit.spec, fit.params)
    assert d.persistence == pytest.approx(p) == pytest.approx(MAX_PERSISTENCE, abs=1e-6)

    def v365(f: FittedVolatility) -> tuple[float, float]:
        v = f.result(r * 1.0).forecast(horizon=365, reindex=False).variance.to_numpy()[-1]
        return float(v[0]), float(v[-1])

    v1, vh = v365(fit)
    vbar = fit.params["omega"] / (1 - p)
    assert vh == pytest.approx(vbar + p ** 364 * (v1 - vbar), rel=1e-9)
    integrated = fit_volatility(r, asset="BTC", max_persistence=1 - 1e-9)
    assert v365(integrated)[1] > 2 * vh


def test_a_stationary_fit_is_kept_as_fitted() -> None:
    """GARCH(1,1)-normal on BTC's last four years has persistence 0.97 < 0.99: no refit."""
    r = _daily_returns("btc-usd-max_erickfm.csv", "BTC").iloc[-1460:]
    d = fit_volatility(r, VolSpec(model="garch", dist="normal"), asset="BTC").diagnostics
    assert d is not None and not d.bounded and d.attempts == 1
    assert d.persistence == d.unconstrained_persistence < 0.99


def test_degenerate_series_are_refused() -> None:
    """A pegged price with 96% zero returns is refused with a message, as are too few
    returns and no variation."""
    from simulate.market.volatility import VolatilityFitError

    rng = np.random.default_rng(0)
    x = np.where(rng.random(1000) < 0.96, 0.0, rng.normal(0, 0.001, 1000))
    idx = pd.date_range("2021-01-01", periods=1000, freq="h")
    with pytest.raises(VolatilityFitError, match=r"USDT: 9\d% of its 1000 returns are exactly "
                                                 r"zero .* model it as a pegged asset"):
        fit_volatility(pd.Series(x, index=idx), asset="USDT")
    with pytest.raises(VolatilityFitError, match=r"X needs at least 100 returns \(got 50\)"):
        fit_volatility(pd.Series(rng.normal(0, 0.01, 50)), asset="X")
    with pytest.raises(VolatilityFitError, match=r"returns of X must be finite"):
        fit_volatility(pd.Series(np.r_[rng.normal(0, 0.01, 200), np.inf]), asset="X")
