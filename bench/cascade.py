"""Cascade speed: the standard run, and the fast kernel against the reference kernel.

The standard run: a generated ecosystem of ``--positions`` positions (default 1,000,000), the
``gjr-tcopula-1d`` scenario (GJR-GARCH skewed-t margins fitted on the real BTC and ETH daily
histories of ``data/market``, t copula) for ``--paths`` paths (default 10,000) and at most
``--rounds`` rounds (default 24), fast kernel, in-process. Reported: its wall time (draws,
cascade and metrics; not the generation), the process's peak resident memory, and the same time
as a multiple of one health-factor scan of every position (the baseline, measured in the same
run, so runs on a shared machine compare).

The speed-up: both kernels on the same shocks for a size the reference can run
(``--ref-positions``, ``--ref-paths``); their results must be equal.

    python bench/cascade.py [--positions 1000000] [--paths 10000] [--rounds 24]
                            [--ref-positions 20000] [--ref-paths 30] [--seed 1] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from graph.export import compile_system, health_factors
from ingest.generate import generate_ecosystem
from simulate.cascade import CascadeParams, compile_cascade, monte_carlo_shocks
from simulate.cascade.fast import run_fast
from simulate.cascade.reference import run_reference
from simulate.cascade.run import run_cascade
from simulate.market import MarketModel
from simulate.pipeline import fit_market, parse_price_histories
from simulate.scenarios import MonteCarloScenario, load_scenario

__all__ = ["main"]

ROOT = Path(__file__).resolve().parents[1]


def _market() -> MarketModel:
    data = Path(os.environ.get("CONTAGION_DATA", ROOT / "data" / "market")) / "prices_daily"
    return fit_market(parse_price_histories([f"BTC={data / 'btc-usd-max_erickfm.csv'}",
                                             f"ETH={data / 'eth-usd-max_erickfm.csv'}"]),
                      1460)[0]


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--positions", type=int, default=1_000_000)
    ap.add_argument("--paths", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=24)
    ap.add_argument("--ref-positions", type=int, default=20_000)
    ap.add_argument("--ref-paths", type=int, default=30)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()
    console = Console(stderr=True)
    scenario = load_scenario("gjr-tcopula-1d")
    assert isinstance(scenario, MonteCarloScenario)
    params = CascadeParams(rounds=args.rounds)
    with console.status("fitting the market model on BTC and ETH"):
        market = _market()

    # speed-up of the fast kernel over the reference, same shocks
    with console.status(f"reference vs fast: {args.ref_positions:,} positions, "
                        f"{args.ref_paths} paths"):
        small = compile_system(generate_ecosystem(args.ref_positions, args.seed))
        cs_small = compile_cascade(small)
        shocks = monte_carlo_shocks(scenario, market, small, args.ref_paths,
                                    np.random.SeedSequence(args.seed))
        t0 = time.perf_counter()
        ref = run_reference(cs_small, shocks, params)
        ref_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        fast = run_fast(cs_small, shocks, params)
        fast_small_s = time.perf_counter() - t0
    equal = all(np.allclose(getattr(ref, k), getattr(fast, k), rtol=1e-9, atol=1e-6)
                for k in ref.__dataclass_fields__)

    # the standard run
    with console.status(f"generating {args.positions:,} positions"):
        t0 = time.perf_counter()
        system = compile_system(generate_ecosystem(args.positions, args.seed))
        cs = compile_cascade(system)
        build_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    health_factors(system)
    scan_s = time.perf_counter() - t0
    with console.status(f"standard run: {args.paths:,} paths × {args.rounds} rounds"):
        t0 = time.perf_counter()
        run = run_cascade(cs, scenario.model_copy(update={"paths": args.paths}), market=market,
                          params=params, seed=args.seed)
        run_s = time.perf_counter() - t0
    m = run.metrics
    result = {
        "positions": args.positions, "paths": args.paths, "rounds": args.rounds,
        "standard_run_seconds": round(run_s, 2),
        "peak_memory_mb": round(_peak_mb(), 1),
        "speedup_vs_reference": round(ref_s / fast_small_s, 1),
        "reference_equal": equal,
        "build_seconds": round(build_s, 2),
        "scan_seconds": round(scan_s, 4),
        "liquidation_events_per_path": round(
            float(run.paths.position_failures.sum()) / args.paths, 1),
        "mean_rounds": m["rounds_to_stability"]["mean"],
        "bad_debt_cvar99_usd": round(m["bad_debt_usd"]["0.99"]["cvar"]),
        "liquidated_mean_usd": round(m["liquidated_usd"]["mean"]),
    }
    if args.json:
        print(json.dumps(result))
        return
    t = Table(title=f"cascade: {args.positions:,} positions, {args.paths:,} paths, "
                    f"{args.rounds} rounds (gjr-tcopula-1d, in-process)")
    for c in ("measure", "value", "× one health-factor scan"):
        t.add_column(c, justify="left" if c == "measure" else "right")
    t.add_row("one health-factor scan of every position (baseline)", f"{scan_s:.3f} s", "1")
    t.add_row("standard run (draws, cascade, metrics)", f"{run_s:.1f} s",
              f"{run_s / scan_s:,.0f}")
    t.add_row("peak resident memory", f"{_peak_mb():,.0f} MB", "")
    t.add_row("liquidation events per path", f"{result['liquidation_events_per_path']:,.0f}",
              "")
    t.add_row("generate + compile (not in the run)", f"{build_s:.1f} s", "")
    t.add_row(f"reference kernel ({args.ref_positions:,} positions × {args.ref_paths} paths)",
              f"{ref_s:.2f} s", "")
    t.add_row("fast kernel, same shocks", f"{fast_small_s:.3f} s", "")
    t.add_row("speed-up of the fast kernel", f"{ref_s / fast_small_s:,.0f}×",
              "equal" if equal else "DIFFERENT")
    Console().print(t)


if __name__ == "__main__":
    main()
