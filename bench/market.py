"""Market model speed: joint return paths per second and volatility fit time per asset.

Simulates ``--assets`` return histories from GJR-GARCH(1,1)-skewed-t (arch, a common factor
so the assets are correlated), fits the market model (one GJR-GARCH-skewed-t per asset and the
t copula), then times :func:`simulate_returns` for ``--paths`` × ``--steps`` × ``--assets``
with filtered historical simulation and with the t copula. The baseline, measured in the same
run, is drawing standard normals of the same shape with numpy; ratios against it make runs on a
shared, noisy machine comparable. Each timing is the best of ``--repeat`` runs.

    python bench/market.py [--paths 10000] [--steps 30] [--assets 20] [--obs 1500]
                           [--repeat 3] [--seed 1] [--json]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

import numpy as np
import pandas as pd
from arch.univariate import GARCH, ConstantMean, SkewStudent
from rich.console import Console
from rich.table import Table

from simulate.market.shocks import fit_market_model, simulate_returns
from simulate.market.volatility import SCALE

__all__ = ["main"]

#: GJR-GARCH(1,1)-skewed-t parameters of the simulated histories (arch's order, percent units)
PARAMS = [0.05, 0.10, 0.06, 0.08, 0.87, 5.0, -0.05]


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


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--paths", type=int, default=10_000)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--assets", type=int, default=20)
    ap.add_argument("--obs", type=int, default=1500, help="daily returns per asset to fit")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()
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
