"""The may-june-2022 replay with oracles modelled and with market valuation, side by side.

    .venv/bin/python bench/oracles.py [SNAPSHOT_DIR]      (default: data/sample)

Prints liquidated value and bad debt (USD, summed over the run) under each valuation.
"""

from __future__ import annotations

import sys

from graph.export import compile_system
from graph.snapshot import Snapshot
from simulate.cascade import CascadeParams, compile_cascade
from simulate.cascade.run import run_cascade
from simulate.scenarios import load_scenario


def main(path: str = "data/sample") -> None:
    cs = compile_cascade(compile_system(Snapshot.load(path)))
    sc = load_scenario("may-june-2022")
    print(f"may-june-2022 on {path} ({cs.arrays.num_positions} positions)")
    print(f"{'valuation':<10} {'liquidated_usd':>16} {'bad_debt_usd':>14} {'rounds':>7}")
    for mode in ("modelled", "market"):
        base = CascadeParams()
        params = base.model_copy(update={"oracles": mode,
                                         "rounds": max(base.rounds, len(sc.path) + 1)})
        res = run_cascade(cs, sc, params=params)
        p = res.paths
        print(f"{mode:<10} {p.liquidated_usd.sum():>16,.0f} {p.bad_debt_pool.sum():>14,.0f} "
              f"{int(p.rounds[0]):>7}")


if __name__ == "__main__":
    main(*sys.argv[1:])
