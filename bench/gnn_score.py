"""Scoring time of the fragility model against the Monte Carlo on one large graph.

A generated ecosystem with at least ``--nodes`` graph nodes (default 100,000: protocols,
pools, assets, oracles and accounts; positions are folded into accounts and pools), scored on
CPU by the shipped model — features (``model.graph``) and the forward pass, best of
``--repeat`` — next to the cascade Monte Carlo that labels the model: ``--paths`` paths
(default 512, as in the training labels) of the label shock family through the fast kernel
(compile, draws and cascade).

    python bench/gnn_score.py [--nodes 100000] [--paths 512] [--repeat 3] [--seed 1] [--json]
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from rich.console import Console
from rich.table import Table

from gnn.labels import draw_shocks
from gnn.model import load_model
from graph.export import compile_system
from ingest.generate import GeneratorConfig, generate_ecosystem
from simulate.cascade import CascadeParams, compile_cascade, run_fast

__all__ = ["main"]


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--nodes", type=int, default=100_000)
    ap.add_argument("--paths", type=int, default=512)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    err = Console(stderr=True)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    positions = int(args.nodes / 0.74)
    with err.status("generating"):
        while True:
            snap = generate_ecosystem(positions, args.seed, GeneratorConfig(
                liquidity_scale=positions / 1e6))
            system = compile_system(snap)
            nodes = sum(len(getattr(system, f"{t}_ids")) for t in
                        ("protocol", "pool", "asset", "oracle", "account"))
            if nodes >= args.nodes:
                break
            positions = int(positions * args.nodes / nodes * 1.01) + 1
    model = load_model()
    feat, fwd = [], []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        g = model.graph(system)
        t1 = time.perf_counter()
        model.predict(model.data(g))
        t2 = time.perf_counter()
        feat.append(t1 - t0)
        fwd.append(t2 - t1)
    gnn = min(a + b for a, b in zip(feat, fwd, strict=True))
    with err.status(f"Monte Carlo, {args.paths} paths"):
        t0 = time.perf_counter()
        cs = compile_cascade(system)
        shocks = draw_shocks(system, model.family, args.paths, args.seed)
        run_fast(cs, shocks, CascadeParams())
        mc = time.perf_counter() - t0
    doc = {"nodes": nodes, "positions": int(system.num_positions), "paths": args.paths,
           "gnn_seconds": gnn, "gnn_features_seconds": min(feat),
           "gnn_forward_seconds": min(fwd), "monte_carlo_seconds": mc, "speedup": mc / gnn,
           "speedup_forward_only": mc / min(fwd), "threads": torch.get_num_threads()}
    if args.json:
        print(json.dumps(doc, indent=1))
        return
    t = Table(title=f"scoring a {nodes:,}-node graph ({system.num_positions:,} positions) on "
                    f"CPU ({doc['threads']} threads)", show_edge=False)
    t.add_column("what")
    t.add_column("seconds", justify="right")
    t.add_row(f"GNN: features + forward (best of {args.repeat})", f"{gnn:.3f}")
    t.add_row("  of which features", f"{min(feat):.3f}")
    t.add_row("  of which forward pass", f"{min(fwd):.3f}")
    t.add_row(f"Monte Carlo: {args.paths} paths of the label family", f"{mc:.2f}")
    Console().print(t)
    Console().print(f"Monte Carlo / GNN: {doc['speedup']:.0f}x (forward pass only: "
                    f"{doc['speedup_forward_only']:.0f}x)", highlight=False)


if __name__ == "__main__":
    main()
