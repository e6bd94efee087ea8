"""VaR backtesting: coverage tests, the pinball loss and the EWMA recursion on hand-solved
cases, forecasters without look-ahead, rejected refits, the default window, and the CLI on real
BTC daily and WETH hourly prices (``data/market``, see ``data/README.md``)."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from replay_data import DATA

from api import cli
from simulate import backtest
from simulate.backtest import (
    GARCH_NORMAL,
    METHODS,
    MIN_OUT_OF_SAMPLE,
    check_window,
    christoffersen_independence,
    conditional_coverage,
    default_window,
    ewma_lambda,
    ewma_var,
    ewma_variance,
    garch_var,
    historical_var,
    kupiec_pof,
    pinball_loss,
    var_backtest,
)
from simulate.market.volatility import (
    SCALE,
    FittedVolatility,
    VolatilityFitError,
    VolSpec,
    arch_model_for,
    fit_volatility,
)

ROOT = Path(__file__).resolve().parents[2]
BTC = DATA / "prices_daily" / "btc-usd-max_erickfm.csv"
HOURLY_WETH = DATA / "prices_hourly" / "WETH_usd.csv"


def _returns(n: int, seed: int = 1) -> pd.Series:
    """Heavy-tailed, volatility-clustered toy returns (a GARCH(1,1) with t(5) shocks)."""
    rng = np.random.default_rng(seed)
    z = rng.standard_t(5, n) / math.sqrt(5 / 3)
    r, v = np.empty(n), 0.03**2
    for t in range(n):
        r[t] = math.sqrt(v) * z[t]
        v = 0.05 * 0.03**2 * 0.1 + 0.1 * r[t] ** 2 + 0.85 * v
    return pd.Series(r, index=pd.date_range("2015-01-01", periods=n, freq="D"))


# --- Kupiec -------------------------------------------------------------------------------------


def test_kupiec_hand_solved() -> None:
    """n = 20 days, x = 2 hits, p = 0.05 (95% VaR), so x/n = 0.1:

    null: 18·ln 0.95 + 2·ln 0.05 = -0.923279 - 5.991465 = -6.914744
    alt:  18·ln 0.90 + 2·ln 0.10 = -1.896489 - 4.605170 = -6.501659
    LR = -2·(-6.914744 + 6.501659) = 0.826169; p = P(χ²₁ > 0.826169) = 0.363383.
    """
    t = kupiec_pof(2, 20, 0.95)
    assert t.statistic == pytest.approx(0.826169, abs=1e-6)
    assert t.p_value == pytest.approx(0.363383, abs=1e-6)
    assert t.df == 1 and t.passed


def test_kupiec_no_and_all_violations_are_finite() -> None:
    """x = 0 of 100 at 99%: LR = -2·100·ln 0.99 = 2.010067 (the alternative's terms are 0·ln 0
    = 0). x = 100 of 100: LR = -2·100·ln 0.01 = 921.034037, p ≈ 0: fails."""
    none = kupiec_pof(0, 100, 0.99)
    assert none.statistic == pytest.approx(2.010067, abs=1e-6) and none.passed
    every = kupiec_pof(100, 100, 0.99)
    assert every.statistic == pytest.approx(921.034037, abs=1e-6)
    assert every.p_value < 1e-100 and not every.passed


@pytest.mark.parametrize(("args", "match"), [
    ((5, 0, 0.95), r"violations must be in \[0, observations\]"),
    ((-1, 10, 0.95), r"violations must be in \[0, observations\] .*got -1 of 10"),
    ((1, 10, 1.0), r"level must be in \(0, 1\) \(got 1.0\)"),
])
def test_kupiec_rejects_bad_input(args: tuple[int, int, float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        kupiec_pof(*args)


@settings(max_examples=60, deadline=None)
@given(k=st.integers(1, 60), hit_p=st.sampled_from([(0.1, 10), (0.05, 20), (0.025, 40),
                                                    (0.01, 100)]))
def test_kupiec_p_value_is_one_at_expected_and_falls_away_from_it(
        k: int, hit_p: tuple[float, int]) -> None:
    """With n = k/p days the expected count is exactly k: p-value 1 there, and the p-value never
    rises as the count moves away in either direction (LR is convex in x, minimal at n·p)."""
    p, inverse = hit_p
    n = k * inverse
    level = 1 - p
    at = kupiec_pof(k, n, level)
    assert at.statistic == 0.0 and at.p_value == 1.0
    up = [kupiec_pof(x, n, level).p_value for x in range(k, min(n, 3 * k + 10) + 1)]
    down = [kupiec_pof(x, n, level).p_value for x in range(k, -1, -1)]
    for ps in (up, down):
        assert np.all(np.diff(ps) <= 1e-12)
        assert ps[-1] < ps[0]


# --- Christoffersen -----------------------------------------------------------------------------


def test_christoffersen_independent_sequence_scores_zero() -> None:
    """0 0 1 1 0 0 0 1 0 0: transitions n00 = 4, n01 = 2, n10 = 2, n11 = 1, so
    π01 = 2/6 = 1/3, π11 = 1/3 and π = 3/9 = 1/3: the alternative equals the null, LR = 0."""
    t = christoffersen_independence([0, 0, 1, 1, 0, 0, 0, 1, 0, 0])
    assert t.statistic == 0.0 and t.p_value == 1.0


def test_christoffersen_clustered_hand_solved() -> None:
    """0 0 0 1 1 1 0 0 0 0: n00 = 5, n01 = 1, n10 = 1, n11 = 2; π01 = 1/6, π11 = 2/3, π = 1/3.

    null: (5+1)·ln(2/3) + (1+2)·ln(1/3) = -2.432791 - 3.295837 = -5.728628
    alt:  5·ln(5/6) + ln(1/6) + ln(1/3) + 2·ln(2/3)
          = -0.911608 - 1.791759 - 1.098612 - 0.810930 = -4.612910
    LR = -2·(-5.728628 + 4.612910) = 2.231436; p = 0.135228.
    Kupiec on the same 10 days, 3 hits, p = 0.05:
    LR_uc = -2·(7·ln 0.95 + 3·ln 0.05) + 2·(7·ln 0.7 + 3·ln 0.3) = 6.475214,
    so conditional coverage LR = 8.706650 on 2 degrees of freedom.
    """
    hits = [0, 0, 0, 1, 1, 1, 0, 0, 0, 0]
    t = christoffersen_independence(hits)
    assert t.statistic == pytest.approx(2.231436, abs=1e-6)
    assert t.p_value == pytest.approx(0.135228, abs=1e-6)
    cc = conditional_coverage(hits, 0.95)
    assert cc.statistic == pytest.approx(6.475214 + 2.231436, abs=1e-5) and cc.df == 2


@pytest.mark.parametrize("hits", [[0] * 50, [1] * 50, [1], [0], [1, 0], [0, 1]])
def test_christoffersen_degenerate_sequences_are_finite(hits: list[int]) -> None:
    t = christoffersen_independence(hits)
    assert math.isfinite(t.statistic) and 0 <= t.p_value <= 1
    assert math.isfinite(conditional_coverage(hits, 0.99).statistic)


def test_christoffersen_rejects_empty() -> None:
    with pytest.raises(ValueError, match="hits must be a non-empty 1-d sequence"):
        christoffersen_independence([])


# --- forecasters --------------------------------------------------------------------------------


def test_historical_var_is_the_trailing_quantile() -> None:
    r = _returns(260)
    var = historical_var(r, levels=(0.95, 0.99), window=200)
    assert var.shape == (60, 2) and list(var.columns) == ["0.95", "0.99"]
    assert var.index[0] == r.index[200]
    for i in (0, 17, 59):
        past = r.to_numpy()[i:i + 200]
        assert var.iloc[i]["0.95"] == pytest.approx(-np.quantile(past, 0.05))
        assert var.iloc[i]["0.99"] == pytest.approx(-np.quantile(past, 0.01))


@pytest.mark.parametrize("spec", [VolSpec(), VolSpec(model="garch", dist="t"),
                                  VolSpec(model="egarch", dist="normal", mean="zero")])
def test_garch_var_has_no_look_ahead(spec: VolSpec) -> None:
    """Changing the returns from day t on leaves every forecast up to day t unchanged."""
    r = _returns(400, seed=3)
    window, every, t = 300, 25, 337
    base = garch_var(r, window=window, refit_every=every, spec=spec)
    bent = r.copy()
    bent.iloc[t:] = bent.iloc[t:] * 5 - 0.02
    moved = garch_var(bent, window=window, refit_every=every, spec=spec)
    upto = t - window + 1  # forecasts for days window .. t
    np.testing.assert_allclose(base.iloc[:upto], moved.iloc[:upto], rtol=1e-10)
    assert not np.allclose(base.iloc[upto + 1:], moved.iloc[upto + 1:])
    assert (base > 0).all().all()


def test_garch_var_at_a_refit_is_arch_s_own_forecast() -> None:
    """On a refit day the VaR is -(μ + σ·q) from arch's one-step forecast of the fresh fit
    (``fit_volatility``'s ``next_variance``) and the fitted skewed-t quantile."""
    r = _returns(400, seed=5)
    spec = VolSpec()
    var = garch_var(r, levels=(0.99,), window=300, refit_every=40, spec=spec)
    for s in (300, 340):
        fv = fit_volatility(r.iloc[s - 300:s], spec, asset="X")
        model = arch_model_for(r.to_numpy()[s - 300:s] * SCALE, spec)
        q = float(model.distribution.ppf(0.01, [fv.params["eta"], fv.params["lambda"]]))
        expected = -(fv.params["mu"] + math.sqrt(fv.next_variance) * q) / SCALE
        assert var.iloc[s - 300]["0.99"] == pytest.approx(expected, rel=1e-6)


def test_var_backtest_rows_and_progress() -> None:
    r = _returns(600, seed=7)
    calls: list[tuple[str, int, int]] = []
    res = var_backtest(r, window=400, refit_every=50,
                       progress=lambda m, d, t: calls.append((m, d, t)))
    assert calls == [("historical", 1, 1), ("ewma", 1, 1),
                     *[("garch-normal", k, 4) for k in range(1, 5)],
                     *[("model", k, 4) for k in range(1, 5)]]
    assert [(row.method, row.level) for row in res.rows] == [
        (m, lv) for m in METHODS for lv in (0.95, 0.99)]
    for row in res.rows:
        assert row.observations == 200
        assert row.expected == pytest.approx(200 * (1 - row.level))
        var = res.var[(row.method, f"{row.level:g}")].to_numpy()
        hits = res.realised.to_numpy() < -var
        assert row.violations == int(hits.sum())
        assert row.pinball == pytest.approx(pinball_loss(res.realised, var, row.level))
        fitted = row.method in ("garch-normal", "model")
        assert (row.refits, row.rejected) == ((4, 0) if fitted else (0, 0))
    assert res.var.shape == (200, 8) and list(res.var.index) == list(r.index[400:])
    table = res.table()
    assert len(table) == 8 and {"kupiec_passed", "christoffersen_passed", "conditional_passed",
                                "pinball"} <= set(table.columns)
    doc = res.as_dict()
    json.dumps(doc)
    assert (doc["frequency"], doc["horizon"], doc["window"], doc["window_rule"]) == (
        "daily", "1-day", 400, "given")


def test_var_backtest_methods_are_the_named_forecasters() -> None:
    """Each method's column is its own forecaster: historical and EWMA from their functions,
    GARCH(1,1)-normal from :func:`garch_var` with that spec, the model from the default spec."""
    r = _returns(500, seed=8)
    res = var_backtest(r, window=300, refit_every=100)
    pd.testing.assert_frame_equal(res.var["historical"], historical_var(r, window=300))
    pd.testing.assert_frame_equal(res.var["ewma"], ewma_var(r, window=300, lam=0.94))
    pd.testing.assert_frame_equal(res.var["garch-normal"],
                                  garch_var(r, window=300, refit_every=100, spec=GARCH_NORMAL))
    pd.testing.assert_frame_equal(res.var["model"], garch_var(r, window=300, refit_every=100))
    assert not np.allclose(res.var["garch-normal"], res.var["model"])


def test_var_backtest_fits_a_spec_once_when_the_model_is_garch_normal() -> None:
    r = _returns(400, seed=9)
    calls: list[str] = []
    res = var_backtest(r, window=250, refit_every=75, spec=GARCH_NORMAL,
                       progress=lambda m, d, t: calls.append(m))
    pd.testing.assert_frame_equal(res.var["garch-normal"], res.var["model"])
    assert calls.count("garch-normal") == 2 and calls.count("model") == 1  # 2 refits, then 1/1


def test_var_backtest_is_deterministic() -> None:
    r = _returns(450, seed=10)
    a = var_backtest(r, window=300, refit_every=50)
    b = var_backtest(r, window=300, refit_every=50)
    pd.testing.assert_frame_equal(a.var, b.var)
    assert a.as_dict() == b.as_dict()


def test_rejected_refits_are_counted_and_the_last_fit_is_held(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Refits at periods 300, 340, 380, 420 (window 300, every 40, 450 returns); the first and
    the third are rejected. The first block (40 periods) has no forecast, so the rows cover
    150 - 40 = 110 periods; the third block holds the second fit's parameters, filtered over
    the third window, which is what the fit of the second refit gives there."""
    r = _returns(450, seed=12)
    real = backtest.fit_volatility
    calls = {"n": 0}

    def flaky(returns: pd.Series, spec: VolSpec | None = None, *, asset: str = "",
              max_persistence: float = 0.99) -> FittedVolatility:
        calls["n"] += 1
        if calls["n"] in (1, 3):
            raise VolatilityFitError(f"volatility fit of {asset} did not converge")
        return real(returns, spec, asset=asset, max_persistence=max_persistence)

    monkeypatch.setattr(backtest, "fit_volatility", flaky)
    res = var_backtest(r, window=300, refit_every=40, methods=("model",), asset="X")
    for row in res.rows:
        assert (row.observations, row.refits, row.rejected) == (110, 4, 2)
    assert res.rejections["model"] == (
        f"refit before {r.index[300]}: volatility fit of X did not converge",
        f"refit before {r.index[380]}: volatility fit of X did not converge")
    var = res.var["model"]
    assert var.iloc[:40].isna().all().all() and var.iloc[40:].notna().all().all()
    second = real(r.iloc[40:340], VolSpec(), asset="X")
    sigma = np.asarray(second.result(r.iloc[80:420]).conditional_volatility)[300:] / SCALE
    held = var["0.99"].to_numpy()[80:120]
    fresh = garch_var(r, levels=(0.99,), window=300, refit_every=40)["0.99"].to_numpy()[80:120]
    assert not np.allclose(held, fresh)
    # VaR = -(μ + σ·q) with the second fit's μ and skewed-t quantile
    q = (held * SCALE + second.params["mu"]) / (-sigma * SCALE)
    np.testing.assert_allclose(-(second.params["mu"] + sigma * SCALE * q) / SCALE, held)
    assert np.ptp(q) < 1e-9  # one quantile throughout: the held parameters


def test_every_refit_rejected_leaves_a_row_without_tests(monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    def reject(returns: pd.Series, spec: VolSpec | None = None, *, asset: str = "",
               max_persistence: float = 0.99) -> FittedVolatility:
        raise VolatilityFitError(f"{asset}: 80% of its returns are exactly zero")

    monkeypatch.setattr(backtest, "fit_volatility", reject)
    res = var_backtest(_returns(300), window=150, refit_every=50, asset="USDC")
    rows = {(row.method, row.level): row for row in res.rows}
    for lv in (0.95, 0.99):
        assert rows[("historical", lv)].observations == 150
        for m in ("garch-normal", "model"):
            row = rows[(m, lv)]
            assert (row.observations, row.refits, row.rejected) == (0, 3, 3)
            assert row.kupiec is None and row.pinball is None and not row.passed
    assert res.table()["kupiec_p"].isna().sum() == 4
    json.dumps(res.as_dict())


@pytest.mark.parametrize(("kwargs", "n", "match"), [
    ({"window": 50}, 600, r"window must be at least 100 returns \(what a GARCH fit needs; "
                          r"got 50\)"),
    ({"window": 500}, 550, r"window 500 leaves 50 out-of-sample periods of 550 returns; at "
                           r"least 100 are needed \(use at most 450\)"),
    ({}, 150, r"a backtest needs at least 200 returns .*got 150\)"),
    ({"levels": (0.95, 1.5), "window": 400}, 600, r"level must be in \(0, 1\) \(got 1.5\)"),
    ({"refit_every": 0, "window": 400}, 600, r"refit_every must be >= 1 \(got 0\)"),
    ({"frequency": "weekly"}, 600, r"frequency must be one of daily, hourly \(got 'weekly'\)"),
    ({"methods": ("garch",)}, 600, r"methods must be among historical, ewma, garch-normal, "
                                   r"model \(got \['garch'\]\)"),
])
def test_var_backtest_rejects_bad_input(kwargs: dict[str, object], n: int, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        var_backtest(_returns(n), **kwargs)  # type: ignore[arg-type]


def test_var_backtest_rejects_missing_returns() -> None:
    r = _returns(600)
    r.iloc[10] = np.nan
    with pytest.raises(ValueError, match="returns must be finite"):
        var_backtest(r)


# --- hand-solved: pinball loss, EWMA, the default window -----------------------------------------


def test_pinball_loss_hand_solved() -> None:
    """95% VaR of 0.02 in every period (quantile q = -0.02, τ = 0.05), returns
    -0.03, 0.01, -0.01, 0.02; tick loss (τ - 1[r < q])·(r - q):

    t1: r < q:  (0.05 - 1)·(-0.03 + 0.02) = 0.0095
    t2:         0.05·(0.01 + 0.02) = 0.0015
    t3:         0.05·(-0.01 + 0.02) = 0.0005
    t4:         0.05·(0.02 + 0.02) = 0.0020
    mean = 0.0135 / 4 = 0.003375.
    A VaR of 0.01 instead (q = -0.01): 0.95·0.02 + 0.05·0.02 + 0 + 0.05·0.03 = 0.0215,
    mean 0.005375: worse here, as three of the four returns lie above both quantiles.
    """
    r = [-0.03, 0.01, -0.01, 0.02]
    assert pinball_loss(r, [0.02] * 4, 0.95) == pytest.approx(0.003375, abs=1e-15)
    assert pinball_loss(r, [0.01] * 4, 0.95) == pytest.approx(0.005375, abs=1e-15)


@pytest.mark.parametrize(("args", "match"), [
    (([0.1, 0.2], [0.1], 0.95), r"realised and var must be non-empty 1-d arrays of one "
                                r"length \(got shapes \(2,\) and \(1,\)\)"),
    (([], [], 0.95), r"non-empty"),
    (([0.1], [0.1], 0.0), r"level must be in \(0, 1\) \(got 0.0\)"),
])
def test_pinball_loss_rejects_bad_input(args: tuple[list[float], list[float], float],
                                        match: str) -> None:
    with pytest.raises(ValueError, match=match):
        pinball_loss(*args)


def test_ewma_variance_hand_solved() -> None:
    """Returns 1%, -2%, 3% (in percent: 1, -2, 3), λ = 0.94. arch's backcast weights the first
    min(75, n) = 3 squared returns by 0.94^i, i = 0, 1, 2 (1, 0.94, 0.8836; sum 2.8236):

    σ²_0 = (1·1 + 0.94·4 + 0.8836·9) / 2.8236 = 12.7124 / 2.8236 = 4.502196 (%²)
    σ²_1 = 0.94·4.502196 + 0.06·1² = 4.232064 + 0.06 = 4.292064
    σ²_2 = 0.94·4.292064 + 0.06·(-2)² = 4.034540 + 0.24 = 4.274540
    (decimal: ×10⁻⁴). σ²_t uses returns before t only.
    """
    v = ewma_variance(np.array([0.01, -0.02, 0.03]), 0.94)
    np.testing.assert_allclose(v * 1e4, [4.502196, 4.292064, 4.274540], atol=1e-6)
    with pytest.raises(ValueError, match=r"the EWMA decay must be in \(0, 1\) \(got 1.0\)"):
        ewma_variance(np.array([0.01]), 1.0)


def test_ewma_var_is_sigma_times_the_normal_quantile() -> None:
    """-σ_t·Φ⁻¹(0.01) = 2.326348·σ_t at 99%, and no look-ahead: a change from period t on
    leaves the forecasts up to t alone."""
    r = _returns(260)
    var = ewma_var(r, levels=(0.99,), window=200, lam=0.97)
    sigma = np.sqrt(ewma_variance(r, 0.97))[200:]
    np.testing.assert_allclose(var["0.99"].to_numpy(), 2.3263478740 * sigma, rtol=1e-9)
    bent = r.copy()
    bent.iloc[230:] *= 4
    moved = ewma_var(bent, levels=(0.99,), window=200, lam=0.97)
    np.testing.assert_allclose(moved.iloc[:31], var.iloc[:31], rtol=1e-12)
    assert not np.allclose(moved.iloc[31:], var.iloc[31:])


def test_ewma_lambda_is_the_same_decay_per_period() -> None:
    """0.94 per period at both frequencies: half-life ln 0.5 / ln 0.94 = 11.2 periods."""
    assert ewma_lambda("daily") == ewma_lambda("hourly") == 0.94
    assert math.log(0.5) / math.log(ewma_lambda("hourly")) == pytest.approx(11.2023, abs=1e-4)
    with pytest.raises(ValueError, match=r"frequency must be one of daily, hourly"):
        ewma_lambda("weekly")  # type: ignore[arg-type]


@pytest.mark.parametrize(("n", "window"), [
    (200, 100), (201, 100), (250, 125), (1370, 685), (2000, 1000), (2001, 1000),
    (18_777, 1000)])
def test_default_window_rule(n: int, window: int) -> None:
    """max(100, min(1000, n // 2)): half the returns up to 1,000, and every default leaves at
    least 100 out-of-sample periods."""
    assert default_window(n) == window
    check_window(n, window)  # accepted
    assert n - window >= MIN_OUT_OF_SAMPLE


def test_var_backtest_uses_the_default_window() -> None:
    res = var_backtest(_returns(300), refit_every=100, methods=("historical", "ewma"))
    assert (res.window, res.out_of_sample) == (150, 150)
    assert res.window_rule == "default: max(100, min(1000, 300 returns // 2))"
    assert [r.method for r in res.rows] == ["historical", "historical", "ewma", "ewma"]


def test_hourly_backtest_labels_and_lambda() -> None:
    r = _returns(240)
    r.index = pd.date_range("2022-01-01", periods=240, freq="h")
    res = var_backtest(r, frequency="hourly", methods=("ewma",))
    assert res.horizon == "1-hour" and res.ewma_lambda == ewma_lambda("hourly")
    assert (res.start, res.end) == ("2022-01-06T00:00", "2022-01-10T23:00")
    pd.testing.assert_frame_equal(res.var["ewma"],
                                  ewma_var(r, window=120, lam=ewma_lambda("hourly")))


# --- the command line ---------------------------------------------------------------------------


def contagion(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "api.cli", *args], capture_output=True,
                          text=True, timeout=600, cwd=ROOT)


def _cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
         ) -> tuple[int, str, str]:
    """The console script's entry point in this process: exit code, stdout, stderr (a
    subprocess per case would spend seconds importing; ``test_cli_backtest_on_real_btc`` runs
    the real process)."""
    monkeypatch.setattr(sys, "argv", ["contagion", *args])
    code = 0
    try:
        cli.main()
    except SystemExit as e:
        code = int(e.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_backtest_on_real_btc() -> None:
    assert BTC.is_file(), f"real price data missing: {BTC} (see data/README.md)"
    r = contagion("backtest", "--prices", str(BTC), "--asset", "BTC", "--last", "1200",
                  "--window", "1000", "--refit-every", "100")
    assert r.returncode == 0, r.stderr
    for word in ("BTC: 1-day VaR backtest", "(200 days out of sample)", "historical sim.",
                 "RiskMetrics EWMA", "GARCH(1,1)-normal", "model (gjr-garch skewt)",
                 "breaches", "Kupiec p", "Christoffersen p", "cond. cov. p", "pinball", "95%",
                 "99%", "daily closes, 2013-04-28", "returns used: the last 1,200 of",
                 "window 1,000 (given); refit every 100 days; EWMA λ = 0.94"):
        assert word in r.stdout, word
    assert r.stdout.count(" 200 ") >= 8  # 1,200 returns less the 1,000-day window, every row
    assert "pass" in r.stdout or "fail" in r.stdout


def test_cli_backtest_hourly_on_real_weth(monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """Hourly closes of WETH, the last 400 returns: default window 200, 200 hours forecast."""
    assert HOURLY_WETH.is_file(), f"real price data missing: {HOURLY_WETH}"
    args = ("backtest", "--prices", str(HOURLY_WETH), "--asset", "WETH", "--frequency",
            "hourly", "--last", "400", "--refit-every", "100")
    code, stdout, stderr = _cli(monkeypatch, capsys, *args)
    assert code == 0, stderr
    assert "WETH model gjr-garch skewt" in stderr  # a progress bar per method
    for word in ("WETH: 1-hour VaR backtest", "(200 hours out of sample)",
                 "hourly closes, 2021-01-01T00:00:00 .. 2023-02-25T23:00:00",
                 "returns used: the last 400 of",
                 "window 200 (default: max(100, min(1000, 400 returns // 2))); refit every "
                 "100 hours; EWMA λ = 0.94"):
        assert word in stdout, word
    code, stdout, stderr = _cli(monkeypatch, capsys, *args, "--json")
    assert code == 0, stderr
    doc = json.loads(stdout)
    assert (doc["frequency"], doc["horizon"], doc["returns"], doc["window"],
            doc["out_of_sample"], doc["last"]) == ("hourly", "1-hour", 400, 200, 200, 400)
    assert doc["series"]["frequency"] == "hourly" and doc["series"]["missing_periods"] > 0
    assert doc["series"]["first"] == "2021-01-01T00:00:00"
    assert [(row["method"], row["level"]) for row in doc["rows"]] == [
        (m, lv) for m in METHODS for lv in (0.95, 0.99)]
    assert {row["observations"] for row in doc["rows"]} == {200}
    assert {row["refits"] for row in doc["rows"] if row["method"] in ("garch-normal",
                                                                        "model")} == {2}
    assert all(row["pinball"] > 0 for row in doc["rows"])


def _price_file(path: Path, n: int, *, empty_at: int | None = None) -> Path:
    """The project's layout (timestamp, asset, close; ETH and BTC in one file), ``n`` daily
    closes each; ``empty_at``: an empty ETH close cell there."""
    r1, r2 = _returns(n, seed=11), _returns(n, seed=12)
    rows = []
    for a, r in (("ETH", r1), ("BTC", r2)):
        close = pd.Series(100 * np.exp(r.cumsum().to_numpy())).round(6).astype(object)
        if empty_at is not None and a == "ETH":
            close.iloc[empty_at] = None
        rows.append(pd.DataFrame({"timestamp": r.index.strftime("%Y-%m-%dT00:00:00Z"),
                                  "asset": a, "close": close}))
    pd.concat(rows).to_csv(path, index=False)
    return path


def test_cli_backtest_json_on_project_price_history(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    f = _price_file(tmp_path / "prices.csv", 360)
    code, stdout, stderr = _cli(monkeypatch, capsys, "backtest", "--prices", str(f), "--asset",
                                "ETH", "--window", "250", "--refit-every", "60", "--json")
    assert code == 0, stderr
    doc = json.loads(stdout)
    assert doc["asset"] == "ETH" and doc["window"] == 250 and len(doc["rows"]) == 8
    assert doc["window_rule"] == "given" and doc["last"] is None
    assert {row["observations"] for row in doc["rows"]} == {359 - 250}
    assert {"kupiec", "christoffersen", "conditional", "pinball", "passed"} <= set(
        doc["rows"][0])
    assert doc["series"] == {"frequency": "daily", "closes": 360,
                             "first": "2015-01-01T00:00:00", "last": "2015-12-26T00:00:00",
                             "missing_values": 0, "missing_periods": 0}


def test_cli_backtest_accepts_a_missing_price_cell(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """An empty close is dropped and counted: 359 closes, one missing value and one missing
    period; the two returns either side of the gap are not one-day returns, so 357 remain."""
    f = _price_file(tmp_path / "prices.csv", 360, empty_at=100)
    assert ",ETH,\n" in f.read_text()
    code, stdout, stderr = _cli(monkeypatch, capsys, "backtest", "--prices", str(f), "--asset",
                                "ETH", "--refit-every", "100")
    assert code == 0, stderr
    assert "359 daily closes" in stdout and "returns used: 357" in stdout
    assert "1 missing values, 1 missing periods" in stdout
    assert "window 178 (default: max(100, min(1000, 357 returns // 2)))" in stdout


@pytest.mark.parametrize(("setup", "code", "match"), [
    ("unknown", 1, r"error: .*bad\.csv: unknown price layout \(columns: when, value;"),
    ("asset", 1, r"error: .*WETH_usd\.csv: no rows for asset 'BTC' in column 'symbol'"),
    ("dist", 1, r"error: --dist must be one of skewt, t, normal \(got 'cauchy'\)"),
    ("frequency", 1, r"error: --frequency must be one of daily, hourly \(got 'weekly'\)"),
    ("window", 1, r"error: --window 1,000 leaves 50 out-of-sample periods of 1,050 returns; "
                  r"at least 100 are needed \(use at most 950\)"),
    ("short", 1, r"error: --last 150: a backtest needs at least 200 returns \(a window of 100 "
                 r"and 100 out-of-sample periods; got 150\)"),
    ("long", 1, r"error: --last 9,999,999 exceeds the [\d,]+ daily returns of BTC in "),
    ("small window", 2, r"error: invalid value for '--window': .*\b100\b.* \(see contagion "
                        r"backtest --help\)"),
    ("refit", 2, r"error: invalid value for '--refit-every': .*\b1\b"),
])
def test_cli_backtest_errors_are_one_line(setup: str, code: int, match: str, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """One ``error:`` line and the exit code (2 for usage errors)."""
    bad = tmp_path / "bad.csv"
    bad.write_text("when,value\n2020-01-01,1\n")
    btc = ("--prices", str(BTC), "--asset", "BTC")
    args = {"unknown": ("--prices", str(bad), "--asset", "BTC"),
            "asset": ("--prices", str(HOURLY_WETH), "--asset", "BTC"),
            "dist": (*btc, "--dist", "cauchy"),
            "frequency": (*btc, "--frequency", "weekly"),
            "window": (*btc, "--last", "1050", "--window", "1000"),
            "short": (*btc, "--last", "150"),
            "long": (*btc, "--last", "9999999"),
            "small window": (*btc, "--window", "50"),
            "refit": (*btc, "--refit-every", "0")}[setup]
    got, _, stderr = _cli(monkeypatch, capsys, "backtest", *args)
    assert got == code
    assert "Traceback" not in stderr
    err = [ln for ln in stderr.splitlines() if ln.startswith("error:")]
    assert len(err) == 1 and re.search(match, err[0]), stderr


def test_hourly_refits_use_the_hourly_persistence_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    """An hourly backtest bounds persistence at 0.99^(1/24) per hour (the daily 0.99 per
    day), a daily one at 0.99."""
    seen: list[float] = []
    real = backtest.fit_volatility

    def spy(returns: pd.Series, spec: VolSpec | None = None, *, asset: str = "",
            max_persistence: float = 0.99) -> FittedVolatility:
        seen.append(max_persistence)
        return real(returns, spec, asset=asset, max_persistence=max_persistence)

    monkeypatch.setattr(backtest, "fit_volatility", spy)
    rng = np.random.default_rng(3)
    r = pd.Series(rng.standard_t(5, 500) * 0.01,
                  index=pd.date_range("2022-01-01", periods=500, freq="h"))
    var_backtest(r, frequency="hourly", window=300, refit_every=200, methods=("model",))
    var_backtest(r.set_axis(pd.date_range("2020-01-01", periods=500, freq="D")),
                 window=300, refit_every=200, methods=("model",))
    assert seen == [pytest.approx(0.99 ** (1 / 24))] * 1 + [0.99] * 1
