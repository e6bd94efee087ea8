"""Judging fragility scores against the Monte Carlo on held-out ecosystems, with baselines.

Per held-out ecosystem, over all its labelled nodes (protocols, pools, assets, accounts
pooled, the Monte Carlo failure probability ``y`` against a method's score):

- ``spearman``: Spearman rank correlation (ecosystems where ``y`` is constant are skipped);
- ``auroc``: area under the ROC curve for the event ``y > 0.1`` (ecosystems with one class
  only are skipped);
- ``precision_at_k``: share of the method's top ``k`` nodes that are among the Monte Carlo's
  top ``k`` (ties at the ``k``-th probability count as top), ``k = 20``.

Each figure is the mean over ecosystems; ``by_type`` gives the Spearman correlation within
each node type (mean over ecosystems).

Baselines (:mod:`gnn.baselines`): ``debtrank`` (DebtRank on the exposure graph, shocked by
the family's mean asset moves), ``pagerank`` (personalised PageRank of distress on the
exposure graph) and ``gbdt`` (gradient-boosted trees, one per node type, on the same raw
features, no message passing).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score

from gnn.baselines import GBDTBaseline, debtrank_scores, pagerank_scores
from gnn.dataset import Sample
from gnn.features import LABELLED_TYPES
from gnn.model import FragilityModel

__all__ = ["METHODS", "THRESHOLD", "K", "evaluate", "ranking_metrics"]

METHODS = ("gnn", "debtrank", "pagerank", "gbdt")
THRESHOLD = 0.1
K = 20


def _spearman(y: np.ndarray, s: np.ndarray) -> float | None:
    if len(y) < 3 or np.ptp(y) == 0:
        return None
    if np.ptp(s) == 0:
        return 0.0
    return float(spearmanr(y, s).statistic)


def ranking_metrics(y: np.ndarray, s: np.ndarray, k: int = K) -> dict[str, float | None]:
    """Spearman, AUROC (``y > THRESHOLD``) and precision at ``k`` of scores ``s`` against
    probabilities ``y`` (both ``[n]``); ``None`` where undefined."""
    pos = y > THRESHOLD
    auroc = float(roc_auc_score(pos, s)) if 0 < pos.sum() < len(y) else None
    kk = min(k, len(y))
    prec = None
    if kk > 0 and y.max() > 0:
        cut = np.sort(y)[::-1][kk - 1]
        true_top = y >= max(cut, 1e-12)
        top = np.argsort(-s, kind="stable")[:kk]
        prec = float(true_top[top].mean())
    return {"spearman": _spearman(y, s), "auroc": auroc, "precision_at_k": prec}


def _mean(v: list[float | None]) -> float | None:
    x = [a for a in v if a is not None and np.isfinite(a)]
    return float(np.mean(x)) if x else None


def evaluate(model: FragilityModel, held_out: list[Sample], train_set: list[Sample], *,
             progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """The metrics of the module doc for ``model`` and the baselines on ``held_out``
    (``train_set`` fits the GBDT baseline). Returns ``{"ecosystems", "nodes", "k",
    "threshold", "methods": {method: {"spearman", "auroc", "precision_at_k", "by_type",
    "seconds"}}}``."""
    t0 = time.perf_counter()
    gbdt = GBDTBaseline.fit(train_set)
    fit_s = time.perf_counter() - t0
    rows: dict[str, list[dict[str, float | None]]] = {m: [] for m in METHODS}
    by_type: dict[str, dict[str, list[float | None]]] = {
        m: {t: [] for t in LABELLED_TYPES} for m in METHODS}
    secs = dict.fromkeys(METHODS, 0.0)
    secs["gbdt"] += fit_s
    nodes = 0
    for n, s in enumerate(held_out):
        y = {t: s.labels[t] for t in LABELLED_TYPES}
        scores: dict[str, dict[str, np.ndarray]] = {}
        for m in METHODS:
            t1 = time.perf_counter()
            if m == "gnn":
                scores[m] = model.predict(model.data(s.graph))
            elif m == "debtrank":
                scores[m] = debtrank_scores(s.graph)
            elif m == "pagerank":
                scores[m] = pagerank_scores(s.graph)
            else:
                scores[m] = gbdt.predict(s.graph)
            secs[m] += time.perf_counter() - t1
        yy = np.concatenate([y[t] for t in LABELLED_TYPES])
        nodes += len(yy)
        for m in METHODS:
            ss = np.concatenate([scores[m][t] for t in LABELLED_TYPES])
            rows[m].append(ranking_metrics(yy, ss))
            for t in LABELLED_TYPES:
                by_type[m][t].append(_spearman(y[t], scores[m][t]))
        if progress is not None:
            progress(n + 1, len(held_out))
    out: dict[str, Any] = {"ecosystems": len(held_out), "nodes": nodes, "k": K,
                           "threshold": THRESHOLD, "methods": {}}
    for m in METHODS:
        out["methods"][m] = {
            key: _mean([r[key] for r in rows[m]])
            for key in ("spearman", "auroc", "precision_at_k")}
        out["methods"][m]["by_type"] = {t: _mean(v) for t, v in by_type[m].items()}
        out["methods"][m]["seconds"] = secs[m]
    return out
