"""VaR backtesting: coverage tests on hand-solved sequences, forecasters without look-ahead,
and the CLI on real BTC prices (``data/market``, see ``data/README.md``)."""

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

from simulate.backtest import (
    christoffersen_independence,
    conditional_coverage,
    garch_var,
    historical_var,
    kupiec_pof,
    var_backtest,
)
from simulate.market.volatility import SCALE, VolSpec, arch_model_for

ROOT = Path(__file__).resolve().parents[2]
BTC = DATA / "prices_daily" / "btc-usd-max_erickfm.csv"


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
    """On a refit day the VaR is -(μ + σ·q) from arch's one-step forecast of the fresh fit."""
    r = _returns(400, seed=5)
    spec = VolSpec()
    var = garch_var(r, levels=(0.99,), window=300, refit_every=40, spec=spec)
    for s in (300, 340):
        x = r.to_numpy()[s - 300:s] * SCALE
        model = arch_model_for(x, spec)
        res = model.fit(disp="off", show_warning=False)
        sigma = math.sqrt(float(res.forecast(horizon=1, reindex=False).variance.iloc[-1, 0]))
        q = float(model.distribution.ppf(0.01, [res.params["eta"], res.params["lambda"]]))
        expected = -(res.params["mu"] + sigma * q) / SCALE
        assert var.iloc[s - 300]["0.99"] == pytest.approx(expected, rel=1e-6)


def test_var_backtest_rows_and_progress() -> None:
    r = _returns(600, seed=7)
    calls: list[tuple[int, int]] = []
    res = var_backtest(r, window=400, refit_every=50, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(k, 4) for k in range(1, 5)]
    assert [(row.method, row.level) for row in res.rows] == [
        ("garch", 0.95), ("garch", 0.99), ("historical", 0.95), ("historical", 0.99)]
    for row in res.rows:
        assert row.observations == 200
        assert row.expected == pytest.approx(200 * (1 - row.level))
        hits = res.realised.to_numpy() < -res.var[(row.method, f"{row.level:g}")].to_numpy()
        assert row.violations == int(hits.sum())
    assert res.var.shape == (200, 4) and len(res.table()) == 4
    json.dumps(res.as_dict())


@pytest.mark.parametrize(("kwargs", "n", "match"), [
    ({"window": 50}, 600, r"window must be at least 100 days \(got 50\)"),
    ({"window": 500}, 400, r"needs more than 500 returns \(got 400\)"),
    ({"levels": (0.95, 1.5), "window": 400}, 600, r"level must be in \(0, 1\) \(got 1.5\)"),
    ({"refit_every": 0, "window": 400}, 600, r"refit_every must be >= 1 \(got 0\)"),
])
def test_var_backtest_rejects_bad_input(kwargs: dict[str, object], n: int, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        var_backtest(_returns(n), **kwargs)  # type: ignore[arg-type]


def test_var_backtest_rejects_missing_returns() -> None:
    r = _returns(600)
    r.iloc[10] = np.nan
    with pytest.raises(ValueError, match="returns must be finite"):
        var_backtest(r)


# --- the command line ---------------------------------------------------------------------------


def contagion(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "api.cli", *args], capture_output=True,
                          text=True, timeout=600, cwd=ROOT)


def test_cli_backtest_on_real_btc() -> None:
    assert BTC.is_file(), f"real price data missing: {BTC} (see data/README.md)"
    r = contagion("backtest", "--prices", str(BTC), "--asset", "BTC", "--last", "1500",
                  "--refit-every", "50")
    assert r.returncode == 0, r.stderr
    for word in ("BTC: one-day VaR backtest", "fitted model", "historical sim.", "violations",
                 "Kupiec", "Christoffersen", "95%", "99%"):
        assert word in r.stdout
    assert r.stdout.count(" 500 ") >= 4  # 1,500 returns less the 1,000-day window
    assert "pass" in r.stdout or "fail" in r.stdout


def test_cli_backtest_json_on_project_price_history(tmp_path: Path) -> None:
    """The project's layout (timestamp, asset, close; several assets in one file)."""
    r1, r2 = _returns(360, seed=11), _returns(360, seed=12)
    rows = [pd.DataFrame({"timestamp": r.index.strftime("%Y-%m-%dT00:00:00Z"), "asset": a,
                          "close": 100 * np.exp(r.cumsum().to_numpy())})
            for a, r in (("ETH", r1), ("BTC", r2))]
    f = tmp_path / "prices.csv"
    pd.concat(rows).to_csv(f, index=False)
    r = contagion("backtest", "--prices", str(f), "--asset", "ETH", "--window", "250",
                  "--refit-every", "60", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["asset"] == "ETH" and doc["window"] == 250 and len(doc["rows"]) == 4
    assert {row["observations"] for row in doc["rows"]} == {359 - 250}
    assert {"kupiec", "christoffersen", "conditional", "passed"} <= set(doc["rows"][0])


@pytest.mark.parametrize(("setup", "match"), [
    ("unknown", r"error: .*bad\.csv: unknown price layout \(columns: when, value;"),
    ("asset", r"error: .*WETH_usd\.csv: no rows for asset 'BTC' in column 'symbol'"),
    ("dist", r"error: --dist must be one of skewt, t, normal \(got 'cauchy'\)"),
    ("short", r"error: a backtest with window 1000 needs more than 1000 returns"),
])
def test_cli_backtest_errors_are_one_line(setup: str, match: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("when,value\n2020-01-01,1\n")
    hourly = DATA / "prices_hourly" / "WETH_usd.csv"
    args = {"unknown": ("--prices", str(bad), "--asset", "BTC"),
            "asset": ("--prices", str(hourly), "--asset", "BTC"),
            "dist": ("--prices", str(BTC), "--asset", "BTC", "--dist", "cauchy"),
            "short": ("--prices", str(hourly), "--asset", "WETH")}[setup]
    r = contagion("backtest", *args)
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    err = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(err) == 1 and re.search(match, err[0]), r.stderr
