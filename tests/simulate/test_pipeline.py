"""The run pipeline (:mod:`simulate.pipeline`): what a request asks for is what runs.

Two silent failures of earlier versions are regression tests here: the scenario's volatility
model was not the one fitted (every run used GJR-GARCH skewed-t whatever it asked), and a
step of several days drew one day's return.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers import MARKET_DATA, tiny_snapshot

from graph.export import compile_system
from simulate.cascade import CascadeParams, monte_carlo_shocks
from simulate.market import MarketModel, VolSpec, fit_market_model, fit_volatility
from simulate.pipeline import PriceHistory, RunRequest, execute_run, fit_market
from simulate.prices import read_daily_closes
from simulate.scenarios import MonteCarloScenario

DAILY = MARKET_DATA / "prices_daily"
PRICES = (PriceHistory(asset="BTC", path=DAILY / "btc-usd-max_erickfm.csv"),
          PriceHistory(asset="ETH", path=DAILY / "eth-usd-max_erickfm.csv"))
DAYS = 1460


def _scenario(**kw: object) -> MonteCarloScenario:
    base: dict[str, object] = {"name": "mc", "horizon_days": 1, "steps": 1, "paths": 200,
                               "seed": 3}
    return MonteCarloScenario.model_validate({**base, **kw})


def test_the_scenarios_volatility_model_is_the_one_fitted() -> None:
    """Two runs that differ only in the scenario's ``volatility`` give different paths, and
    each record's fitted parameters are arch's fit of that model on the same returns."""
    egarch = VolSpec(model="egarch", dist="normal")
    runs = {spec: execute_run(RunRequest(scenario=_scenario(volatility=spec), prices=PRICES,
                                         history_days=DAYS), snapshot=tiny_snapshot())
            for spec in (egarch, VolSpec())}
    a, b = runs[egarch], runs[VolSpec()]
    assert not np.array_equal(a.paths.liquidated_usd, b.paths.liquidated_usd)
    closes = pd.concat({h.asset: read_daily_closes(h.path, h.asset) for h in PRICES},
                       axis=1, sort=True).sort_index().iloc[-DAYS:]
    for spec, run in runs.items():
        m = run.inputs["market"]
        assert m["volatility"] == spec.model_dump(mode="json")
        for asset in ("BTC", "ETH"):
            r = np.log(closes[asset].dropna()).diff().dropna()
            want = fit_volatility(r, spec, asset=asset)
            assert m["fitted"][asset]["params"] == want.params
            assert m["fitted"][asset]["nobs"] == want.nobs
    # EGARCH's parameters are not GJR-GARCH's: the record is not a relabelled default
    assert set(a.inputs["market"]["fitted"]["ETH"]["params"]) != set(
        b.inputs["market"]["fitted"]["ETH"]["params"])


@pytest.fixture(scope="module")
def market() -> MarketModel:
    closes = pd.concat({h.asset: read_daily_closes(h.path, h.asset) for h in PRICES}, axis=1)
    return fit_market_model(closes.dropna().iloc[-DAYS:])


def test_a_step_of_ten_days_carries_ten_days_of_returns(market: MarketModel) -> None:
    """``horizon_days: 10, steps: 1`` ends exactly where ``horizon_days: 10, steps: 10`` ends
    from the same draws (the step is the sum of ten daily log returns), and its log moves
    spread about √10 ≈ 3.2 times as wide as one day's."""
    system = compile_system(tiny_snapshot())
    params = CascadeParams()
    seed = np.random.SeedSequence(11)

    def shocks(horizon: int, steps: int) -> np.ndarray:
        sc = _scenario(horizon_days=horizon, steps=steps, paths=2000)
        return monte_carlo_shocks(sc, market, system, params, 2000, seed).price

    one_step, ten_steps, one_day = shocks(10, 1), shocks(10, 10), shocks(1, 1)
    assert one_step.shape[1] == 1 and ten_steps.shape[1] == 10
    np.testing.assert_allclose(one_step[:, 0], ten_steps[:, -1], rtol=1e-12)
    eth = system.asset_symbols.tolist().index("ETH")
    ratio = np.log(one_step[:, 0, eth]).std() / np.log(one_day[:, 0, eth]).std()
    assert 2.5 < ratio < 4.0, ratio


@pytest.mark.parametrize(("horizon", "steps", "message"), [
    (10, 3, r"horizon_days must be a whole number of days per step, at least one .* "
            r"\(got horizon_days 10 in 3 steps: 3.333 days a step\)"),
    (1, 5, r"\(got horizon_days 1 in 5 steps: 0.2 days a step\)"),
])
def test_a_horizon_that_does_not_split_into_whole_days_is_refused(
        horizon: int, steps: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _scenario(horizon_days=horizon, steps=steps)


def test_the_record_states_the_market_model_fitted() -> None:
    """A default request records GJR-GARCH skewed-t, both assets' parameters and the dates."""
    market, rec = fit_market(PRICES, DAYS)
    assert rec["volatility"] == {"model": "gjr-garch", "dist": "skewt", "mean": "constant"}
    assert set(rec["fitted"]) == set(market.volatility) == {"BTC", "ETH"}
    assert rec["dates"] == DAYS and rec["fitted_from"] < rec["fitted_to"]
