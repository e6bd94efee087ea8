"""Scenario specs: validation in domain language, the library, files, and the historical
replays' magnitudes recomputed from real data (``data/market``, see ``data/README.md``)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from replay_data import (
    DATA,
    daily,
    daily_low,
    depeg_low,
    dvol,
    hourly,
    iv_multiplier,
    peak_to_trough,
    steth_eth,
    usdc_15min,
)

from simulate.scenarios import (
    FixedShockScenario,
    HistoricalReplay,
    MonteCarloScenario,
    ScenarioError,
    library_names,
    list_scenarios,
    load_scenario,
    scenario_from_dict,
)

ROOT = Path(__file__).resolve().parents[2]
REPLAYS = ("march-2020", "may-june-2022", "nov-2022", "march-2023")
#: the library's numbers are rounded to 4 decimals
TOLERANCE = 5e-4

MC: dict[str, Any] = {"kind": "monte-carlo", "name": "mc", "horizon_days": 10, "steps": 10,
                      "paths": 1000, "seed": 1}
FIXED: dict[str, Any] = {"kind": "fixed-shock", "name": "fx", "shocks": {"ETH": -0.35},
                         "iv_multipliers": {"ETH": 1.5}, "depegs": {"stETH": 0.93}}
REPLAY: dict[str, Any] = {
    "kind": "historical", "name": "rp", "start": "2022-11-05", "end": "2022-11-14",
    "sources": {"data": "somewhere"},
    "shocks": {"ETH": {"value": -0.33, "peak": "2022-11-05", "trough": "2022-11-10",
                       "source": "data"}},
    "path": [{"date": "2022-11-06", "shocks": {"ETH": -0.01}}],
}


def _with(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**base, **changes}


# --- validation ---------------------------------------------------------------------------------


def test_valid_specs_of_each_kind() -> None:
    mc = scenario_from_dict(MC)
    assert isinstance(mc, MonteCarloScenario)
    assert mc.joint == "fhs" and mc.volatility.model == "gjr-garch" and not mc.antithetic
    fx = scenario_from_dict(FIXED)
    assert isinstance(fx, FixedShockScenario) and fx.depegs == {"stETH": 0.93}
    rp = scenario_from_dict(REPLAY)
    assert isinstance(rp, HistoricalReplay) and rp.start == date(2022, 11, 5)
    assert rp.as_fixed_shock().shocks == {"ETH": -0.33}


@pytest.mark.parametrize(("data", "match"), [
    (_with(FIXED, shocks={"ETH": -1.2}), r"^fx: shocks\.ETH must be > -1 \(got -1\.2\)$"),
    (_with(FIXED, shocks={"ETH": float("nan")}), r"shocks\.ETH must be > -1 \(got nan\)"),
    (_with(FIXED, shocks={"ETH": "a lot"}), r"shocks\.ETH: input should be a valid number"),
    (_with(FIXED, iv_multipliers={"BTC": 0}), r"iv_multipliers\.BTC must be > 0 \(got 0\.0\)"),
    (_with(FIXED, depegs={"USDC": 1.1}), r"depegs\.USDC must be in \(0, 1\] \(got 1\.1\)"),
    (_with(FIXED, depegs={"USDC": 0}), r"depegs\.USDC must be in \(0, 1\] \(got 0\.0\)"),
    ({"kind": "fixed-shock", "name": "fx"}, r"needs at least one of shocks, iv_multipliers"),
    (_with(FIXED, kind="what-if"), r"kind must be one of monte-carlo, fixed-shock, historical "
                                   r"\(got 'what-if'\)"),
    ({"name": "x"}, r"kind is required \(one of monte-carlo, fixed-shock, historical\)"),
    (_with(FIXED, name="ETH crash"), r"name must be lowercase letters, digits and '-'"),
    (_with(FIXED, colour="red"), r"colour is not a scenario field"),
    ({k: v for k, v in MC.items() if k != "paths"}, r"^mc: paths is required$"),
    (_with(MC, paths=-5), r"paths must be > 0 \(got -5\)"),
    (_with(MC, horizon_days=0), r"horizon_days must be > 0 \(got 0\)"),
    (_with(MC, seed=-1), r"seed must be >= 0 \(got -1\)"),
    (_with(MC, paths=1001, antithetic=True), r"paths must be even when antithetic is true "
                                             r"\(got 1001\)"),
    (_with(MC, joint="gaussian"), r"joint must be one of 'fhs' or 't-copula' \(got 'gaussian'\)"),
    (_with(MC, volatility={"dist": "cauchy"}), r"volatility\.dist must be one of"),
    (_with(REPLAY, end="2022-11-01"), r"end must be after start \(got start 2022-11-05, "
                                      r"end 2022-11-01\)"),
    (_with(REPLAY, sources={"other": "x"}), r"shocks\.ETH\.source must be a key of sources "
                                            r"\(other\) \(got 'data'\)"),
    (_with(REPLAY, shocks={"ETH": {"value": -1.5, "peak": "2022-11-05", "trough": "2022-11-10",
                                   "source": "data"}}), r"shocks\.ETH\.value must be > -1"),
    (_with(REPLAY, shocks={"ETH": {"value": -0.3, "peak": "2022-11-10", "trough": "2022-11-06",
                                   "source": "data"}}), r"shocks\.ETH\.trough must not precede"),
    (_with(REPLAY, path=[{"date": "2022-12-01", "shocks": {"ETH": -0.1}}]),
     r"path\[0\]\.date must be within 2022-11-05 \.\. 2022-11-14 \(got 2022-12-01\)"),
    (_with(REPLAY, path=[{"date": "2022-11-07"}, {"date": "2022-11-06"}]),
     r"path\[1\]\.date must be after 2022-11-07"),
    (_with(REPLAY, path=[{"date": "2022-11-07", "depegs": {"stETH": 1.2}}]),
     r"path\[0\]\.depegs\.stETH must be in \(0, 1\]"),
    (_with(REPLAY, depegs={"USDC": {"value": 0.9, "source": "data"}}), r"depegs\.USDC\.low is "
                                                                        r"required"),
    (["not", "a", "mapping"], r"a scenario must be a mapping \(got list\)"),
])
def test_invalid_specs_name_the_field(data: Any, match: str) -> None:
    with pytest.raises(ScenarioError, match=match):
        scenario_from_dict(data, origin=str(data.get("name")) if isinstance(data, dict) else "")


def test_specs_are_frozen() -> None:
    fx = scenario_from_dict(FIXED)
    with pytest.raises(ValueError, match="frozen"):
        fx.name = "other"  # type: ignore[misc]


# --- files and the library ----------------------------------------------------------------------


def test_library_loads_and_validates() -> None:
    scenarios = list_scenarios()
    names = [s.name for s in scenarios]
    assert names == library_names() == sorted(names)
    assert set(REPLAYS) <= set(names)
    kinds = {s.kind for s in scenarios}
    assert kinds == {"monte-carlo", "fixed-shock", "historical"}
    for s in scenarios:
        assert s.description
        again = scenario_from_dict(json.loads(s.model_dump_json()))
        assert again == s  # JSON round trip
    for name in REPLAYS:
        replay = load_scenario(name)
        assert isinstance(replay, HistoricalReplay)
        assert replay.shocks and replay.path and len(replay.sources) >= 2


def test_library_replays_match_the_issue() -> None:
    """The headline numbers the issue names."""
    june = load_scenario("may-june-2022")
    usdc = load_scenario("march-2023")
    assert isinstance(june, HistoricalReplay) and isinstance(usdc, HistoricalReplay)
    assert 0.925 <= june.depegs["stETH"].value <= 0.94
    assert 0.88 <= usdc.depegs["USDC"].value <= 0.90
    assert usdc.depegs["USDC"].low == date(2023, 3, 11)


def test_load_scenario_from_yaml_and_json_files(tmp_path: Path) -> None:
    y = tmp_path / "crash.yaml"
    y.write_text(yaml.safe_dump(_with(FIXED, name="crash")))
    j = tmp_path / "crash.json"
    j.write_text(json.dumps(MC))
    assert load_scenario(y).name == "crash"
    assert load_scenario(str(j)) == scenario_from_dict(MC)


@pytest.mark.parametrize(("content", "suffix", "match"), [
    ("kind: [unclosed", ".yaml", r"bad\.yaml: not valid YAML"),
    ("{", ".json", r"bad\.json: not valid JSON"),
    ("kind: fixed-shock\nname: bad\nshocks: {ETH: -2}\n", ".yaml",
     r"bad\.yaml: shocks\.ETH must be > -1 \(got -2\.0\)"),
])
def test_load_scenario_bad_files(content: str, suffix: str, match: str, tmp_path: Path) -> None:
    f = tmp_path / f"bad{suffix}"
    f.write_text(content)
    with pytest.raises(ScenarioError, match=match):
        load_scenario(f)


def test_load_scenario_unknown_name_lists_the_library() -> None:
    with pytest.raises(ScenarioError, match=r"unknown scenario 'march-2021' \(library: .*"
                                            r"march-2020.*\)"):
        load_scenario("march-2021")
    with pytest.raises(ScenarioError, match=r"missing\.yaml: no such scenario file"):
        load_scenario("missing.yaml")


# --- the replays against the data ---------------------------------------------------------------


def _depeg_series(scenario: str, asset: str, source: str) -> pd.Series:
    if source == "usdc-15min" and asset == "USDC":
        return usdc_15min()
    if source == "coingecko-hourly" and asset == "stETH":
        return steth_eth()
    if source == "coingecko-hourly":
        return hourly(asset)
    raise AssertionError(f"{scenario}: no data check for depegs.{asset} from {source}")


#: magnitudes resting on public accounts only (no data file here); everything else is checked
PUBLIC_ONLY = {("march-2023", "depegs", "DAI")}


@pytest.mark.parametrize("name", REPLAYS)
def test_replay_magnitudes_agree_with_the_data(name: str) -> None:
    """Every data-sourced number of the replay, recomputed from ``data/market`` with the
    definitions in ``replay_data``, agrees to within 0.0005 and on the dates."""
    assert DATA.is_dir(), f"real data missing: {DATA} (see data/README.md)"
    replay = load_scenario(name)
    assert isinstance(replay, HistoricalReplay)
    checked: set[tuple[str, str, str]] = set()
    prices = {"BTC": daily("btc"), "ETH": daily("eth")}
    for asset, shock in replay.shocks.items():
        assert shock.source == "coingecko-daily"
        value, peak, trough = peak_to_trough(prices[asset], replay.start, replay.end)
        assert (shock.value, shock.peak, shock.trough) == (
            pytest.approx(value, abs=TOLERANCE), peak, trough), f"{name} shocks.{asset}"
        checked.add((name, "shocks", asset))
    depeg_data: dict[str, pd.Series] = {}
    for asset, depeg in replay.depegs.items():
        if (name, "depegs", asset) in PUBLIC_ONLY:
            assert depeg.source not in ("coingecko-hourly", "usdc-15min")
            continue
        s = depeg_data[asset] = _depeg_series(name, asset, depeg.source)
        value, low = depeg_low(s, replay.start, replay.end)
        assert depeg.value == pytest.approx(value, abs=TOLERANCE), f"{name} depegs.{asset}"
        assert depeg.low == low
        checked.add((name, "depegs", asset))
    for asset, iv in replay.iv_multipliers.items():
        assert (asset, iv.source) == ("BTC", "deribit-dvol")
        value, high = iv_multiplier(dvol(), iv.base, replay.end)
        assert iv.value == pytest.approx(value, abs=TOLERANCE) and iv.high == high
        checked.add((name, "iv_multipliers", asset))
    everything = {(name, f, a) for f in ("shocks", "depegs", "iv_multipliers")
                  for a in getattr(replay, f)}
    assert everything - checked <= PUBLIC_ONLY
    # the day-by-day path: shocks from the daily snapshots, depegs as the day's lowest
    lows = {a: daily_low(s, replay.start, replay.end) for a, s in depeg_data.items()}
    start = {a: s[pd.Timestamp(replay.start)] for a, s in prices.items()}
    assert [d.date for d in replay.path] == [
        x.date() for x in pd.date_range(replay.start, replay.end)[1:]]
    for day in replay.path:
        t = pd.Timestamp(day.date)
        for asset, x in day.shocks.items():
            assert x == pytest.approx(prices[asset][t] / start[asset] - 1, abs=TOLERANCE), (
                f"{name} path {day.date} shocks.{asset}")
        for asset, x in day.depegs.items():
            assert x == pytest.approx(min(1.0, lows[asset][t]), abs=TOLERANCE), (
                f"{name} path {day.date} depegs.{asset}")


# --- the command line ---------------------------------------------------------------------------


def contagion(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "api.cli", *args], capture_output=True,
                          text=True, timeout=600, cwd=ROOT)


def test_cli_scenarios_list_and_show() -> None:
    r = contagion("scenarios", "--json")
    assert r.returncode == 0, r.stderr
    listed = json.loads(r.stdout)
    assert [s["name"] for s in listed] == library_names()
    assert {s["kind"] for s in listed} == {"monte-carlo", "fixed-shock", "historical"}
    r = contagion("scenarios")
    assert r.returncode == 0 and "march-2023" in r.stdout and "historical" in r.stdout
    r = contagion("scenarios", "--show", "may-june-2022")
    assert r.returncode == 0, r.stderr
    assert scenario_from_dict(json.loads(r.stdout)) == load_scenario("may-june-2022")
    r = contagion("scenarios", "--show", "nope")
    assert r.returncode == 1 and r.stderr.startswith("error: unknown scenario 'nope'")


def test_errors_list_each_problem_with_its_field() -> None:
    with pytest.raises(ScenarioError) as info:
        scenario_from_dict({"kind": "fixed-shock", "name": "Bad Name", "shocks": {"ETH": -1.2},
                            "foo": 1})
    assert [(p.field, p.message) for p in info.value.problems] == [
        ("name", "name must be lowercase letters, digits and '-' (got 'Bad Name')"),
        ("shocks.ETH", "shocks.ETH must be > -1 (got -1.2)"),
        ("foo", "foo is not a scenario field"),
    ]
    cases = [
        ({"kind": "monte-carlo", "name": "x", "horizon_days": 5, "steps": 5, "paths": 3,
          "seed": 1, "antithetic": True},
         ("paths", "paths must be even when antithetic is true (got 3)")),
        ({"kind": "fixed-shock", "name": "x"},
         ("", "a fixed-shock scenario needs at least one of shocks, iv_multipliers, depegs, "
              "oracle_pushes")),
        ({"name": "x"}, ("kind", "kind is required (one of monte-carlo, fixed-shock, "
                                 "historical)")),
        ({"kind": "historical", "name": "h", "start": "2022-01-01", "end": "2022-01-05",
          "sources": {"a": "b"}, "shocks": {"ETH": {"value": -0.5, "peak": "2022-01-01",
                                                    "trough": "2022-01-02", "source": "a"}},
          "path": [{"date": "2022-01-09"}]},
         ("path[0].date", "path[0].date must be within 2022-01-01 .. 2022-01-05 "
                          "(got 2022-01-09)")),
    ]
    for spec, want in cases:
        with pytest.raises(ScenarioError) as info:
            scenario_from_dict(spec)
        assert [(p.field, p.message) for p in info.value.problems] == [want]
    with pytest.raises(ScenarioError) as info:
        scenario_from_dict([1])
    assert [(p.field, p.message) for p in info.value.problems] == [
        ("", "a scenario must be a mapping (got list)")]
