"""Ranking metrics on hand-solved cases, and the baselines' shapes and invariants."""

from __future__ import annotations

import numpy as np
import pytest

from gnn.baselines import GBDTBaseline, debtrank_scores, exposure_graph, pagerank_scores
from gnn.dataset import Sample
from gnn.evaluate import METHODS, evaluate, ranking_metrics
from gnn.features import LABELLED_TYPES
from gnn.model import FragilityModel


def test_ranking_metrics_by_hand() -> None:
    y = np.array([0.0, 0.05, 0.2, 0.9])
    perfect = ranking_metrics(y, np.array([0.1, 0.2, 0.3, 0.4]), k=2)
    assert perfect == {"spearman": pytest.approx(1.0), "auroc": 1.0, "precision_at_k": 1.0}
    # reversed: rank correlation -1, AUROC 0, the top 2 are the two safest nodes
    worst = ranking_metrics(y, np.array([0.4, 0.3, 0.2, 0.1]), k=2)
    assert worst == {"spearman": pytest.approx(-1.0), "auroc": 0.0, "precision_at_k": 0.0}
    # one of the top two right; AUROC: of the 2 x 2 (fragile, safe) pairs 3 ordered right
    half = ranking_metrics(y, np.array([0.0, 0.5, 0.1, 0.9]), k=2)
    assert half["precision_at_k"] == 0.5
    assert half["auroc"] == pytest.approx(0.75)
    # undefined cases give None, not a number
    flat = ranking_metrics(np.zeros(4), np.arange(4.0), k=2)
    assert flat == {"spearman": None, "auroc": None, "precision_at_k": None}


def test_baselines_shapes_and_invariants(tiny_set: list[Sample]) -> None:
    g = tiny_set[0].graph
    a, eq, h0, sl = exposure_graph(g)
    n = sum(len(g.ids[t]) for t in LABELLED_TYPES)
    assert a.shape == (n, n) and (a.data >= 0).all() and (a.diagonal() == 0).all()
    assert (eq >= 1).all()
    assert (h0[sl["asset"]] > 0).any() and (h0[sl["account"]] == 0).all()
    dr, pr = debtrank_scores(g), pagerank_scores(g)
    for t in LABELLED_TYPES:
        assert dr[t].shape == pr[t].shape == (len(g.ids[t]),)
        assert ((dr[t] >= 0) & (dr[t] <= 1)).all()
        assert (pr[t] >= 0).all()
    total = sum(pr[t].sum() for t in LABELLED_TYPES)
    assert total == pytest.approx(1.0)
    # an account with collateral in a shocked asset takes some DebtRank loss
    assert (dr["account"] > 0).any()
    gb = GBDTBaseline.fit(tiny_set[1:], max_iter=20)
    p = gb.predict(g)
    assert all(((p[t] >= 0) & (p[t] <= 1)).all() for t in LABELLED_TYPES)


def test_evaluate_reports_every_method(tiny_model: FragilityModel, tiny_set: list[Sample]
                                       ) -> None:
    m = evaluate(tiny_model, tiny_set[:2], tiny_set[2:])
    assert m["ecosystems"] == 2 and set(m["methods"]) == set(METHODS)
    for v in m["methods"].values():
        assert set(v) == {"spearman", "auroc", "precision_at_k", "by_type", "seconds"}
        assert -1 <= v["spearman"] <= 1 and 0 <= v["auroc"] <= 1
        assert 0 <= v["precision_at_k"] <= 1
