"""Market model speed: joint return paths per second and volatility fit time per asset.

Simulates ``--assets`` return histories from GJR-GARCH(1,1)-skewed-t (arch, a common factor
so the assets are correlated), fits the market model (one GJR-GARCH-skewed-t per asset and the
t copula), then times :func:`simulate_returns` for ``--paths`` × ``--steps`` × ``--assets``
with filtered historical simulation and with the t copula. The baseline, measured in the same
run, is drawing standard normals of the same shape with numpy; ratios against it make runs on a
shared, noisy machine comparable. Each timing is the best of ``--repeat`` runs.

    python bench/market.py [--paths 10000] [--steps 30] [--assets 20] [--obs 1500]
                           [--repeat 3] [--seed 1] [--json]

``--tails`` measures dependence instead of speed: the co-exceedance
(:func:`simulate.market.tails.co_exceedance`) of each pair at the 5% and 1% lower and upper
tails, empirical against simulated, for BTC/ETH daily (the last ``--days`` closes, 1,460 as the
run pipeline keeps by default) and WETH/WBTC/stETH hourly (the last ``--hours`` closes) of
``data/market`` (or ``CONTAGION_DATA``). Each data set is fitted once with
:func:`~simulate.market.shocks.fit_market_model` (if the default volatility model does not fit,
the first of :data:`FALLBACK_SPECS` that does is used, and the table says which). Empirical
returns are one-period log returns (:func:`simulate.prices.log_returns`, never across a missing
period), paired on the dates both assets have. Simulated returns are compared to them as
returns, after the volatility filter, by both joint models (``fhs``, ``t-copula``), two ways:

- **pooled** (the main columns): ``ceil(--tail-points / T)`` paths of ``T`` steps, ``T`` the
  number of returns the model was fitted on, every (path, step) pooled: a return sample of the
  same length as the history, so time-varying volatility mixes the tails as it does in the data;
- **one step**: ``--tail-points`` paths of one step, all from the same end-of-sample
  volatility, so their co-exceedance is that of the joint innovations alone (a per-asset scale
  does not change a co-exceedance).

Seeded (``--seed``), so a run reproduces its table exactly.

    python bench/market.py --tails [--days 1460] [--hours 8760] [--tail-points 300000]
                                   [--seed 1] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from arch.univariate import GARCH, ConstantMean, SkewStudent
from rich.console import Console
from rich.table import Table

from simulate.market.shocks import MarketModel, ShockMethod, fit_market_model, simulate_returns
from simulate.market.tails import co_exceedance
from simulate.market.volatility import SCALE, VolSpec
from simulate.prices import Frequency, log_returns, read_closes

__all__ = ["main"]

#: GJR-GARCH(1,1)-skewed-t parameters of the simulated histories (arch's order, percent units)
PARAMS = [0.05, 0.10, 0.06, 0.08, 0.87, 5.0, -0.05]

ROOT = Path(__file__).resolve().parents[1]
#: tail probabilities of the ``--tails`` table
TAIL_QS = (0.05, 0.01)
#: the ``--tails`` data sets: name, frequency, {asset: file under data/market}
TAIL_DATA: tuple[tuple[str, Frequency, dict[str, str]], ...] = (
    ("daily", "daily", {"BTC": "prices_daily/btc-usd-max_erickfm.csv",
                        "ETH": "prices_daily/eth-usd-max_erickfm.csv"}),
    ("hourly", "hourly", {a: f"prices_hourly/{a}_usd.csv" for a in ("WETH", "WBTC", "stETH")}),
)
#: volatility models tried in order when the default one does not fit a ``--tails`` data set
FALLBACK_SPECS = (VolSpec(mean="zero"), VolSpec(model="egarch"), VolSpec(model="garch"))


def _histories(num_assets: int, nobs: int, seed: int) -> pd.DataFrame:
    """USD prices ``[nobs + 1, num_assets]``: half a common factor, half idiosyncratic."""
    ss = np.random.SeedSequence(seed).spawn(num_assets + 1)

    def one(s: np.random.SeedSequence) -> np.ndarray:
        m = ConstantMean(None, volatility=GARCH(1, 1, 1),
                         distribution=SkewStudent(seed=np.random.default_rng(s)))
        return np.asarray(m.simulate(PARAMS, nobs=nobs, burn=500)["data"]) / SCALE

    common = one(ss[0])
    rets = np.column_stack([np.sqrt(0.5) * (common + one(s)) for s in ss[1:]])
    prices = 100.0 * np.exp(np.vstack([np.zeros(num_assets), np.cumsum(rets, axis=0)]))
    return pd.DataFrame(prices, columns=[f"A{i:02d}" for i in range(num_assets)],
                        index=pd.date_range("2019-01-01", periods=nobs + 1, freq="D"))


def _best(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _tail_frame(data: Path, frequency: Frequency, files: dict[str, str], last: int
                ) -> pd.DataFrame:
    """Closes ``[periods, assets]``: the last ``last`` periods of the union of the series."""
    series = {a: read_closes(data / f, a, frequency).series for a, f in files.items()}
    return pd.concat(series, axis=1, sort=True).sort_index().iloc[-last:]


def _tail_fit(prices: pd.DataFrame, frequency: Frequency) -> tuple[MarketModel, str]:
    """The market model of ``prices`` and the volatility model it was fitted with."""
    errors = []
    for spec in (VolSpec(), *FALLBACK_SPECS):
        try:
            model = fit_market_model(prices, spec, frequency=frequency)
        except ValueError as e:
            errors.append(f"{spec.model}/{spec.dist}/{spec.mean} mean: {e}")
            continue
        fitted = f"{spec.model}-{spec.dist}, {spec.mean} mean"
        if errors:
            fitted += " (fallback; " + "; ".join(errors) + ")"
        return model, fitted
    raise SystemExit("no volatility model fits: " + "; ".join(errors))


def _tail_rows(name: str, frequency: Frequency, prices: pd.DataFrame, points: int, seed: int
               ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Co-exceedance rows of every pair of ``prices``' columns, and what was run."""
    model, fitted = _tail_fit(prices, frequency)
    steps = len(model.joint_dates)
    paths = math.ceil(points / steps)
    sims: dict[str, np.ndarray] = {}
    methods: tuple[ShockMethod, ...] = ("fhs", "t-copula")
    for method in methods:
        sims[method] = simulate_returns(model, paths, steps, seed, method=method).reshape(
            -1, model.num_assets)
        sims[f"{method} 1-step"] = simulate_returns(model, points, 1, seed, method=method)[:, 0]
    rets = {a: log_returns(prices[a].dropna(), frequency) for a in model.assets}
    rows = []
    assets = list(model.assets)
    for i, a in enumerate(assets):
        for b in assets[i + 1:]:
            pair = pd.concat([rets[a], rets[b]], axis=1, join="inner").dropna().to_numpy()
            ia, ib = assets.index(a), assets.index(b)
            for q in TAIL_QS:
                emp = co_exceedance(pair[:, 0], pair[:, 1], q)
                sim = {k: co_exceedance(v[:, ia], v[:, ib], q) for k, v in sims.items()}
                for tail in ("lower", "upper"):
                    rows.append({"data": name, "pair": f"{a}/{b}", "tail": tail, "q": q,
                                 "empirical": getattr(emp, tail),
                                 "empirical_points": getattr(emp, f"{tail}_count"),
                                 "returns": emp.observations,
                                 **{k: getattr(c, tail) for k, c in sim.items()}})
    run = {"data": name, "frequency": frequency, "closes": len(prices),
           "first": str(prices.index[0]), "last": str(prices.index[-1]),
           "volatility": fitted, "pooled": f"{paths} paths x {steps} steps",
           "one_step": f"{points} paths x 1 step",
           "copula_dof": model.copula.dof if model.copula else None}
    return rows, run


def tails(days: int, hours: int, points: int, seed: int, *, as_json: bool) -> None:
    """Print the ``--tails`` table (see the module doc)."""
    data = Path(os.environ.get("CONTAGION_DATA", ROOT / "data" / "market"))
    console = Console(stderr=True)
    rows: list[dict[str, Any]] = []
    runs: list[dict[str, Any]] = []
    for name, frequency, files in TAIL_DATA:
        last = days if frequency == "daily" else hours
        with console.status(f"{name}: fitting and simulating {', '.join(files)}"):
            r, run = _tail_rows(name, frequency, _tail_frame(data, frequency, files, last),
                                points, seed)
        rows += r
        runs.append(run)
    if as_json:
        print(json.dumps({"seed": seed, "runs": runs, "rows": rows}))
        return
    out = Console()
    for run in runs:
        t = Table(title=f"co-exceedance, {run['data']} ({run['first']} .. {run['last']}, "
                        f"{run['closes']} closes); {run['volatility']}; pooled: "
                        f"{run['pooled']}; t copula ν = {run['copula_dof']}")
        for c in ("pair", "tail", "q", "empirical (points)", "FHS", "t copula",
                  "FHS 1-step", "t copula 1-step"):
            t.add_column(c, justify="left" if c in ("pair", "tail") else "right")
        for row in rows:
            if row["data"] != run["data"]:
                continue
            t.add_row(row["pair"], row["tail"], f"{row['q']:.0%}",
                      f"{row['empirical']:.3f} ({row['empirical_points']})",
                      *(f"{row[k]:.3f}" for k in ("fhs", "t-copula", "fhs 1-step",
                                                  "t-copula 1-step")))
        out.print(t)


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--paths", type=int, default=10_000)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--assets", type=int, default=20)
    ap.add_argument("--obs", type=int, default=1500, help="daily returns per asset to fit")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--tails", action="store_true",
                    help="co-exceedance table instead of the speed table (see the doc)")
    ap.add_argument("--days", type=int, default=1460, help="--tails: daily closes kept")
    ap.add_argument("--hours", type=int, default=8760, help="--tails: hourly closes kept")
    ap.add_argument("--tail-points", type=int, default=300_000,
                    help="--tails: simulated returns per pair and method")
    args = ap.parse_args()
    if args.tails:
        tails(args.days, args.hours, args.tail_points, args.seed, as_json=args.json)
        return
    console = Console(stderr=True)
    shape = (args.paths, args.steps, args.assets)

    with console.status(f"simulating {args.assets} histories of {args.obs} days"):
        prices = _histories(args.assets, args.obs, args.seed)
    with console.status("fitting the market model"):
        t0 = time.perf_counter()
        model = fit_market_model(prices)
        fit_s = time.perf_counter() - t0

    gen = np.random.default_rng(args.seed)
    baseline_s = _best(lambda: gen.standard_normal(shape), args.repeat)
    simulate_returns(model, 100, 2, args.seed)  # warm the per-asset arch results
    timings = {}
    for method in ("fhs", "t-copula"):
        with console.status(f"{method}: {args.paths:,} × {args.steps} × {args.assets}"):
            timings[method] = _best(
                lambda m=method: simulate_returns(model, args.paths, args.steps, args.seed,
                                                  method=m),  # type: ignore[misc]
                args.repeat)

    result = {
        "paths": args.paths, "steps": args.steps, "assets": args.assets, "obs": args.obs,
        "paths_seconds": round(timings["fhs"], 4),
        "t_copula_seconds": round(timings["t-copula"], 4),
        "baseline_seconds": round(baseline_s, 4),
        "fit_seconds_per_asset": round(fit_s / args.assets, 4),
        "fit_seconds": round(fit_s, 3),
    }
    if args.json:
        print(json.dumps(result))
        return
    t = Table(title=f"market model: {args.paths:,} paths × {args.steps} steps × "
                    f"{args.assets} assets; fit on {args.obs} days per asset")
    for c in ("target", "seconds", "× numpy normal time"):
        t.add_column(c, justify="left" if c == "target" else "right")
    t.add_row("numpy standard normal draws (baseline)", f"{baseline_s:.4f}", "1.0")
    t.add_row("simulate_returns, filtered historical simulation", f"{timings['fhs']:.4f}",
              f"{timings['fhs'] / baseline_s:.1f}")
    t.add_row("simulate_returns, t copula", f"{timings['t-copula']:.4f}",
              f"{timings['t-copula'] / baseline_s:.1f}")
    t.add_row("fit per asset (GJR-GARCH-skewed-t + share of copula)",
              f"{fit_s / args.assets:.4f}", "")
    Console().print(t)


if __name__ == "__main__":
    main()
