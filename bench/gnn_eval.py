"""The fragility model against the Monte Carlo on held-out generated ecosystems, with the
baselines (DebtRank, PageRank on exposures, gradient-boosted trees on the same features), all
computed in one run (definitions: :mod:`gnn.evaluate`).

The held-out set is the model's own (``eval_data`` of its training config: 60 ecosystems,
seeds disjoint from training) unless ``--count``/``--seed`` say otherwise; the GBDT baseline
is fitted on the model's training set. Both sets come from the dataset cache when present
(``--cache``, default ``~/.cache/contagion/gnn``) and are generated and labelled otherwise.

    python bench/gnn_eval.py [--model PATH] [--count 60] [--seed 777] [--cache DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from rich.console import Console
from rich.progress import Progress

from gnn.dataset import build_dataset, default_cache_dir
from gnn.evaluate import METHODS, evaluate
from gnn.model import load_model
from gnn.report import evaluation_table
from gnn.train import TrainConfig

__all__ = ["main"]


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--model", type=Path, default=None, help="model file (default: shipped)")
    ap.add_argument("--count", type=int, default=None, help="held-out ecosystems")
    ap.add_argument("--seed", type=int, default=None, help="seed of the held-out set")
    ap.add_argument("--cache", type=Path, default=default_cache_dir())
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()
    err = Console(stderr=True)
    model = load_model(args.model)
    cfg = TrainConfig.model_validate(model.config)
    update = {k: v for k, v in (("count", args.count), ("seed", args.seed)) if v is not None}
    held_cfg = cfg.eval_data.model_copy(update=update)
    if held_cfg.seed == cfg.data.seed:
        raise SystemExit("the held-out seed must differ from the training seed "
                         f"({cfg.data.seed})")
    start = time.perf_counter()
    with Progress(console=err, transient=True) as p:
        def bar(name: str):  # type: ignore[no-untyped-def]
            task = p.add_task(name, total=None)
            return lambda d, t: p.update(task, completed=d, total=t)

        train_set = build_dataset(cfg.data, cache_dir=args.cache, progress=bar("training set"))
        held = build_dataset(held_cfg, cache_dir=args.cache, progress=bar("held-out set"))
        m = evaluate(model, held, train_set, progress=bar("evaluate"))
    seconds = time.perf_counter() - start
    if args.json:
        doc: dict[str, object] = {
            name: {k: m["methods"][name][k] for k in ("spearman", "auroc", "precision_at_k")}
            for name in METHODS}
        doc.update({"ecosystems": m["ecosystems"], "nodes": m["nodes"], "k": m["k"],
                    "threshold": m["threshold"], "held_out_seed": held_cfg.seed,
                    "by_type_spearman": {n: m["methods"][n]["by_type"] for n in METHODS}})
        print(json.dumps(doc, indent=1))
        return
    out = Console()
    out = Console(width=max(out.width, 130))
    out.print(evaluation_table(m))
    g = m["methods"]["gnn"]
    for name in METHODS[1:]:
        b = m["methods"][name]
        ratios = ", ".join(f"{k} {g[k] / b[k]:.2f}x" if b[k] else f"{k} —"
                           for k in ("spearman", "auroc", "precision_at_k"))
        out.print(f"gnn / {name}: {ratios}")
    out.print(f"held-out seed {held_cfg.seed}, {held_cfg.paths} Monte Carlo paths per "
              f"ecosystem; {seconds:.1f} s in all", highlight=False)


if __name__ == "__main__":
    main()
