"""Co-exceedance (simulate/market/tails.py) and the tail asymmetry the default joint model keeps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers import MARKET_DATA
from hypothesis import given, settings
from hypothesis import strategies as st

from simulate.market.shocks import MarketModel, fit_market_model, simulate_returns
from simulate.market.tails import CoExceedance, TailDependenceError, co_exceedance
from simulate.prices import log_returns, read_closes


def test_hand_solved_case() -> None:
    """The module doc's case: n = 10, q = 0.2, k = 2; lower tails coincide, upper share one."""
    x = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    y = [2, 1, 9, 4, 5, 6, 7, 3, 10, 8]
    c = co_exceedance(x, y, 0.2, min_expected=2)
    assert c == CoExceedance(q=0.2, observations=10, tail_size=2, lower=1.0, upper=0.5,
                             lower_count=2, upper_count=2)
    assert c.asymmetry == 0.5
    # swapping the roles: x given y; lower positions {0, 1} and {0, 1}, upper {2, 8} vs {8, 9}
    assert co_exceedance(y, x, 0.2, min_expected=2).upper == 0.5


def test_ties_at_the_threshold_are_in_the_tail() -> None:
    """x_(2) = 1 is tied with x_(1) and x_(3): three points ≤ Q_x, the denominator is 3."""
    x = [1, 1, 1, 4, 5, 6, 7, 8, 9, 10]
    y = [1, 2, 8, 3, 4, 5, 6, 7, 9, 10]
    c = co_exceedance(x, y, 0.2, min_expected=2)
    assert (c.lower_count, c.lower) == (3, pytest.approx(2 / 3))
    assert (c.upper_count, c.upper) == (2, 1.0)


@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=40, max_size=200, unique=True),
       st.sampled_from([0.05, 0.125, 0.25, 0.5]))
@settings(max_examples=60, deadline=None)
def test_comonotone_gives_one_and_antitone_zero(values: list[float], q: float) -> None:
    x = np.asarray(values)
    c = co_exceedance(x, 2 * x, q, min_expected=2)  # strictly increasing, exactly
    assert (c.lower, c.upper) == (1.0, 1.0)
    anti = co_exceedance(x, -x, q, min_expected=2)  # strictly decreasing
    if 2 * c.tail_size <= x.size:
        assert (anti.lower, anti.upper) == (0.0, 0.0)


@pytest.mark.parametrize("q", [0.05, 0.01])
def test_independent_samples_give_q(q: float) -> None:
    rng = np.random.default_rng(2024)
    n = 200_000
    c = co_exceedance(rng.standard_t(4, n), rng.standard_normal(n), q)
    se = np.sqrt(q * (1 - q) / c.tail_size)  # binomial standard error of the proportion
    assert abs(c.lower - q) < 4 * se and abs(c.upper - q) < 4 * se, (c, se)


def test_errors_say_what_was_expected() -> None:
    x = np.arange(200.0)
    with pytest.raises(TailDependenceError, match=r"same length \(got 200 and 199\)"):
        co_exceedance(x, x[:-1], 0.05)
    with pytest.raises(TailDependenceError, match=r"q must be in \(0, 0.5\] \(got 0.6\)"):
        co_exceedance(x, x, 0.6)
    with pytest.raises(TailDependenceError, match=r"q must be in \(0, 0.5\] \(got 0\)"):
        co_exceedance(x, x, 0)
    with pytest.raises(TailDependenceError, match=r"0.01 tail: q·n = 2 expected tail points, "
                                                  r"need at least 5 \(got n = 200\)"):
        co_exceedance(x, x, 0.01)
    with pytest.raises(TailDependenceError, match="must be 1-D"):
        co_exceedance(x.reshape(20, 10), x.reshape(20, 10), 0.05)
    with pytest.raises(TailDependenceError, match="must be finite"):
        co_exceedance(np.r_[x[:-1], np.nan], x, 0.05)


# --- the default joint model keeps the asymmetry (BTC/ETH daily) ---------------------------------


@pytest.fixture(scope="module")
def btc_eth() -> tuple[MarketModel, pd.DataFrame]:
    """The last 1,460 daily closes of BTC and ETH (the pipeline's default window), fitted."""
    daily = MARKET_DATA / "prices_daily"
    closes = {a: read_closes(daily / f, a).series
              for a, f in (("BTC", "btc-usd-max_erickfm.csv"), ("ETH", "eth-usd-max_erickfm.csv"))}
    prices = pd.concat(closes, axis=1, sort=True).sort_index().iloc[-1460:]
    return fit_market_model(prices), prices


def test_fhs_keeps_the_lower_tail_asymmetry_the_t_copula_loses(
        btc_eth: tuple[MarketModel, pd.DataFrame]) -> None:
    """Crypto falls together more than it rises together; the history says so at 5%, filtered
    historical simulation reproduces it in its simulated returns, the t copula (radially
    symmetric) does not. Pooled returns of 100 paths × the fit length (about 146,000 per asset,
    7,300 in each 5% tail: a co-exceedance standard error about 0.006)."""
    model, prices = btc_eth
    rets = pd.concat([log_returns(prices[a].dropna()) for a in ("BTC", "ETH")], axis=1,
                     join="inner").to_numpy()
    emp = co_exceedance(rets[:, 0], rets[:, 1], 0.05)
    assert emp.asymmetry > 0.1, emp
    steps = len(model.joint_dates)
    sim = {m: simulate_returns(model, 100, steps, seed=11, method=m).reshape(-1, 2)
           for m in ("fhs", "t-copula")}
    fhs = co_exceedance(sim["fhs"][:, 0], sim["fhs"][:, 1], 0.05)
    cop = co_exceedance(sim["t-copula"][:, 0], sim["t-copula"][:, 1], 0.05)
    assert fhs.asymmetry > 0.1, fhs  # measured 0.18-0.19 over seeds
    assert abs(cop.asymmetry) < 0.03, cop  # measured under 0.01 over seeds
    assert cop.lower > 0.4 and cop.upper > 0.4  # still strongly dependent, only symmetric
