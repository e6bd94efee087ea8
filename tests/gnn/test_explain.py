"""Explanations: structure, attribution sums, the readable summary, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gnn.dataset import Sample
from gnn.explain import Explanation, explain_node
from gnn.features import FEATURE_NAMES
from gnn.model import FragilityModel
from graph.errors import ContagionError


def test_explanation_structure(tiny_model: FragilityModel, tiny_set: list[Sample]) -> None:
    g = tiny_set[0].graph
    node = str(g.ids["pool"][0])
    ex = explain_node(tiny_model, g, node, top=5)
    assert (ex.node_id, ex.node_type) == (node, "pool")
    p = tiny_model.predict(tiny_model.data(g))["pool"][0]
    assert ex.score == pytest.approx(p, abs=1e-6)
    assert len(ex.features) == 5 and len(ex.neighbours) == 5
    assert all(f.name in FEATURE_NAMES["pool"] for f in ex.features)
    mags = [abs(f.attribution) for f in ex.features]
    assert mags == sorted(mags, reverse=True)
    i = FEATURE_NAMES["pool"].index(ex.features[0].name)
    assert ex.features[0].value == pytest.approx(float(g.x["pool"][0, i]))
    w = [n.weight for n in ex.neighbours]
    assert w == sorted(w, reverse=True) and 0 < sum(w) <= 1 + 1e-9
    assert all(n.id != node for n in ex.neighbours)
    assert all(1 <= n.hops <= tiny_model.net.cfg.layers for n in ex.neighbours)
    doc = json.loads(ex.model_dump_json())
    assert set(doc) == {"node_id", "node_type", "score", "method", "neighbours", "features"}
    assert set(doc["neighbours"][0]) == {"id", "type", "hops", "weight", "contribution"}
    assert set(doc["features"][0]) == {"name", "value", "attribution"}
    assert Explanation.model_validate(doc) == ex
    text = ex.summary()
    assert text.startswith(f"pool {node}: fragility {ex.score:.3f}")
    assert ex.features[0].name in text and ex.neighbours[0].id in text


def test_attributions_add_up_to_the_logit_change(tiny_model: FragilityModel,
                                                 tiny_set: list[Sample]) -> None:
    """Integrated gradients are complete: all attributions sum to logit(x) - logit(0)."""
    import torch

    g = tiny_set[1].graph
    node = str(g.ids["account"][0])
    ex = explain_node(tiny_model, g, node, top=10_000, steps=64)
    data = tiny_model.data(g)
    with torch.no_grad():
        logit = float(tiny_model.net(data.x_dict, data.edge_index_dict)["account"][0])
        zero = {t: torch.zeros_like(v) for t, v in data.x_dict.items()}
        base = float(tiny_model.net(zero, data.edge_index_dict)["account"][0])
    total = sum(f.attribution for f in ex.features) + sum(n.contribution for n in ex.neighbours)
    assert total == pytest.approx(logit - base, abs=0.05 * max(1.0, abs(logit - base)))
    assert np.isclose(sum(n.weight for n in ex.neighbours), 1.0)


def test_explain_rejects_unknown_nodes_and_oracles(tiny_model: FragilityModel,
                                                   tiny_set: list[Sample]) -> None:
    g = tiny_set[0].graph
    with pytest.raises(ContagionError, match="no node with id 'nope'"):
        explain_node(tiny_model, g, "nope")
    with pytest.raises(ContagionError, match="is a oracle: only protocol, pool"):
        explain_node(tiny_model, g, str(g.ids["oracle"][0]))
