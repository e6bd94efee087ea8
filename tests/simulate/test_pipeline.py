"""The run pipeline (:mod:`simulate.pipeline`): what a request asks for is what runs.

Two silent failures of earlier versions are regression tests here: the scenario's volatility
model was not the one fitted (every run used GJR-GARCH skewed-t whatever it asked), and a
step of several days drew one day's return.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers import MARKET_DATA, TINY_MANIFEST, tiny_records, tiny_snapshot

from graph.export import compile_system
from graph.snapshot import Snapshot
from simulate.cascade import fixed_shocks, monte_carlo_shocks
from simulate.cascade.scenario import scenario_moves
from simulate.market import MarketModel, VolSpec, fit_market_model, fit_volatility
from simulate.pipeline import PriceHistory, RunRequest, execute_run, fit_market
from simulate.prices import log_returns, read_closes
from simulate.scenarios import FixedShockScenario, MonteCarloScenario, ScenarioError

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
    closes = pd.concat({h.asset: read_closes(h.path, h.asset).series for h in PRICES},
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
    closes = pd.concat({h.asset: read_closes(h.path, h.asset).series for h in PRICES}, axis=1)
    return fit_market_model(closes.dropna().iloc[-DAYS:])


def test_a_step_of_ten_days_carries_ten_days_of_returns(market: MarketModel) -> None:
    """``horizon_days: 10, steps: 1`` ends exactly where ``horizon_days: 10, steps: 10`` ends
    from the same draws (the step is the sum of ten daily log returns), and its log moves
    spread about √10 ≈ 3.2 times as wide as one day's."""
    system = compile_system(tiny_snapshot())
    seed = np.random.SeedSequence(11)

    def shocks(horizon: int, steps: int) -> np.ndarray:
        sc = _scenario(horizon_days=horizon, steps=steps, paths=2000)
        return monte_carlo_shocks(sc, market, system, 2000, seed).price

    one_step, ten_steps, one_day = shocks(10, 1), shocks(10, 10), shocks(1, 1)
    assert one_step.shape[1] == 1 and ten_steps.shape[1] == 10
    np.testing.assert_allclose(one_step[:, 0], ten_steps[:, -1], rtol=1e-12)
    eth = system.asset_symbols.tolist().index("ETH")
    ratio = np.log(one_step[:, 0, eth]).std() / np.log(one_day[:, 0, eth]).std()
    assert 2.5 < ratio < 4.0, ratio


@pytest.mark.parametrize(("horizon", "steps", "message"), [
    (10, 3, r"horizon_days must make a whole number of days per step, at least one .* "
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
    assert rec["periods"] == DAYS and rec["fitted_from"] < rec["fitted_to"]
    assert rec["frequency"] == "daily"
    for a in ("BTC", "ETH"):
        guards = rec["fitted"][a]["diagnostics"]
        assert guards["converged"] and guards["persistence"] <= guards["max_persistence"] + 1e-6
    assert {p["asset"]: p["missing_values"] for p in rec["prices"]} == {"BTC": 0, "ETH": 0}


# --- every asset moves by a stated rule (no silent proxy) --------------------------------------


def _with_token() -> Snapshot:
    """The tiny snapshot plus AAVE, a governance token with no price history."""
    records = tiny_records()
    records["assets"].append({"id": "AAVE", "symbol": "AAVE", "kind": "token", "price": 100.0,
                              "decimals": 18, "market_depth_usd": 1e6})
    return Snapshot.from_records(records, TINY_MANIFEST)


def test_a_monte_carlo_run_refuses_an_asset_without_history_or_mapping() -> None:
    request = RunRequest(scenario=_scenario(), prices=PRICES, history_days=DAYS)
    with pytest.raises(ScenarioError, match=r"assets AAVE have no price history and no "
                                            r"mapping: give their price histories, map them"):
        execute_run(request, snapshot=_with_token())


def test_the_proxy_is_a_setting_and_the_record_lists_every_assets_move() -> None:
    """``proxy_asset`` replaces the scenario's proxy; the record says how each asset moved:
    BTC and ETH by the market model, stETH with its peg target, USDC held, AAVE as ETH."""
    res = execute_run(RunRequest(scenario=_scenario(), prices=PRICES, history_days=DAYS,
                                 proxy_asset="ETH"), snapshot=_with_token())
    assert res.spec.scenario.proxy == "ETH"
    moves = res.inputs["moves"]
    assert moves["ETH"] == "own move"
    assert moves["stETH"] == "follows its peg target ETH"
    assert moves["USDC"].startswith("stablecoin")
    assert moves["AAVE"] == "moves as ETH (scenario proxy)"


def test_an_estimated_beta_is_least_squares_on_the_overlap() -> None:
    """``beta: estimate`` for BTC against ETH (BTC's own history then estimates the beta
    instead of fitting BTC a model): the record's beta is cov(r_BTC, r_ETH) / var(r_ETH) on
    the one-day returns both have from the start of the window (ETH's last 1,460 closes), and
    the run's scenario carries it."""
    records = tiny_records()
    records["assets"].append({"id": "BTC", "symbol": "BTC", "kind": "native",
                              "price": 30000.0, "decimals": 8, "market_depth_usd": 1e7})
    snap = Snapshot.from_records(records, TINY_MANIFEST)
    sc = _scenario(mappings={"BTC": {"factor": "ETH", "beta": "estimate"}})
    res = execute_run(RunRequest(scenario=sc, prices=PRICES, history_days=DAYS), snapshot=snap)
    est = res.inputs["market"]["betas"]["BTC"]
    closes = {h.asset: read_closes(h.path, h.asset).series for h in PRICES}
    start = closes["ETH"].index[-DAYS]
    r = pd.concat({a: log_returns(c).loc[start:] for a, c in closes.items()}, axis=1).dropna()
    want = float(np.cov(r["BTC"], r["ETH"], bias=True)[0, 1] / np.var(r["ETH"]))
    assert est["factor"] == "ETH" and est["returns"] == len(r)
    assert est["beta"] == pytest.approx(want, rel=1e-12)
    assert 0.5 < est["beta"] < 1.5
    assert res.spec.scenario.mappings["BTC"].beta == est["beta"]
    assert res.inputs["moves"]["BTC"] == f"beta {est['beta']:g} to ETH (scenario mapping)"
    assert set(res.inputs["market"]["fitted"]) == {"ETH"}


def test_a_mapping_moves_an_asset_as_its_factor_to_the_power_beta() -> None:
    """ETH falls 35%: AAVE, mapped with beta 1.5, is at 0.65^1.5 = 0.52405 of its price; the
    IV multiplier is the factor's (1.8), without the beta; with no mapping and no proxy AAVE
    is held (multiplier 1) and the record says so."""
    system = compile_system(_with_token())
    aave, eth = (system.asset_ids.tolist().index(a) for a in ("AAVE", "ETH"))
    sc = FixedShockScenario(name="x", shocks={"ETH": -0.35}, iv_multipliers={"ETH": 1.8},
                            mappings={"AAVE": {"factor": "ETH", "beta": 1.5}})
    s = fixed_shocks(sc, system)
    assert s.price[0, 0, eth] == pytest.approx(0.65)
    assert s.price[0, 0, aave] == pytest.approx(0.65 ** 1.5) == pytest.approx(0.52405, abs=1e-5)
    assert s.iv[0, 0, aave] == pytest.approx(1.8)
    bare = FixedShockScenario(name="x", shocks={"ETH": -0.35})
    assert fixed_shocks(bare, system).price[0, 0, aave] == 1.0
    assert scenario_moves(system, bare)["AAVE"] == ("not moved by the scenario: held at its "
                                                   "snapshot price")


def test_mapping_errors_name_the_field() -> None:
    system = compile_system(_with_token())
    with pytest.raises(ScenarioError, match=r"mappings.AAVE.factor 'DOGE' is not an asset"):
        fixed_shocks(FixedShockScenario(name="x", shocks={"ETH": -0.3},
                                        mappings={"AAVE": {"factor": "DOGE"}}), system)
    with pytest.raises(ValueError, match=r"mappings.ETH: ETH is shocked by the scenario itself"):
        FixedShockScenario(name="x", shocks={"ETH": -0.3}, mappings={"ETH": {"factor": "BTC"}})
    with pytest.raises(ValueError, match=r"mappings.AAVE.factor: an asset cannot follow itself"):
        FixedShockScenario(name="x", shocks={"ETH": -0.3},
                           mappings={"AAVE": {"factor": "AAVE"}})
    with pytest.raises(ScenarioError, match=r"mappings.AAVE.beta is 'estimate'"):
        fixed_shocks(FixedShockScenario(name="x", shocks={"ETH": -0.3}, mappings={
            "AAVE": {"factor": "ETH", "beta": "estimate"}}), system)


# --- hourly models ------------------------------------------------------------------------------

HOURLY = MARKET_DATA / "prices_hourly"


def test_an_hourly_scenario_fits_hourly_returns_and_steps_whole_hours() -> None:
    """``frequency: hourly`` reads hourly closes, fits on the last history_days·24 hours,
    and a 1-day horizon in 4 steps carries 6 hourly returns a step (the snapshot holds
    WETH, which has the hourly history; ETH moves as WETH, the run's proxy)."""
    sc = _scenario(frequency="hourly", horizon_days=1, steps=4)
    assert sc.periods_per_step == 6
    records = tiny_records()
    records["assets"].append({"id": "WETH", "symbol": "WETH", "kind": "wrapped",
                              "price": 2000.0, "decimals": 18, "market_depth_usd": 1e7})
    prices = (PriceHistory(asset="WETH", path=HOURLY / "WETH_usd.csv"),)
    res = execute_run(RunRequest(scenario=sc, prices=prices, history_days=60,
                                 proxy_asset="WETH"),
                      snapshot=Snapshot.from_records(records, TINY_MANIFEST))
    assert res.inputs["moves"]["ETH"] == "moves as WETH (scenario proxy)"
    m = res.inputs["market"]
    assert m["frequency"] == "hourly" and m["periods"] == 60 * 24
    assert m["prices"][0]["frequency"] == "hourly"
    assert 60 * 24 - 30 < m["fitted"]["WETH"]["nobs"] < 60 * 24
    with pytest.raises(ValueError, match=r"whole number of hours per step, .* 0.5 hours a step"):
        _scenario(frequency="hourly", horizon_days=1, steps=48)


def test_a_stablecoins_history_fits_a_peg_not_a_volatility_model() -> None:
    """USDC is a stablecoin in the snapshot: its hourly history fits a peg with depeg jumps
    (``record["pegged"]``), not GARCH on its price noise; WETH gets its volatility model."""
    records = tiny_records()
    records["assets"].append({"id": "WETH", "symbol": "WETH", "kind": "wrapped",
                              "price": 2000.0, "decimals": 18, "market_depth_usd": 1e7})
    prices = (PriceHistory(asset="WETH", path=HOURLY / "WETH_usd.csv"),
              PriceHistory(asset="USDC", path=HOURLY / "USDC_usd.csv"))
    sc = _scenario(frequency="hourly", horizon_days=1, steps=24)
    res = execute_run(RunRequest(scenario=sc, prices=prices, history_days=365,
                                 proxy_asset="WETH"),
                      snapshot=Snapshot.from_records(records, TINY_MANIFEST))
    m = res.inputs["market"]
    assert set(m["fitted"]) == {"WETH"} and set(m["pegged"]) == {"USDC"}
    peg = m["pegged"]["USDC"]
    assert peg["model"]["peg"] == 1.0 and peg["observations"] > 8000
    assert res.inputs["moves"]["USDC"] == "own move"
