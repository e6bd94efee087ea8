"""Rich tables of the fragility model's evaluation (shared by the CLI and the benchmark)."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from gnn.features import LABELLED_TYPES

__all__ = ["evaluation_table"]


def _f(v: float | None) -> str:
    return "—" if v is None else f"{v:.3f}"


def evaluation_table(metrics: dict[str, Any]) -> Table:
    """One row per method: Spearman, AUROC, precision at k, per-type Spearman, seconds."""
    t = Table(title=f"fragility vs Monte Carlo on {metrics['ecosystems']} held-out ecosystems "
                    f"({metrics['nodes']:,} nodes; AUROC for p > {metrics['threshold']:g}, "
                    f"precision at k = {metrics['k']})", show_edge=False)
    t.add_column("method", no_wrap=True, min_width=8)
    for c in ("spearman", "auroc", f"precision@{metrics['k']}",
              *(f"ρ {x}" for x in LABELLED_TYPES), "seconds"):
        t.add_column(c, justify="right", no_wrap=True)
    for name, m in metrics["methods"].items():
        t.add_row(name, _f(m["spearman"]), _f(m["auroc"]), _f(m["precision_at_k"]),
                  *(_f(m["by_type"][x]) for x in LABELLED_TYPES), f"{m['seconds']:.1f}")
    return t
