"""Why the model rates a node fragile: its top contributing neighbours and features.

:func:`explain_node` explains a node's logit with integrated gradients (Sundararajan et al.
2017, *Axiomatic Attribution for Deep Networks*), run as a
:class:`torch_geometric.explain.algorithm.ExplainerAlgorithm` through
:class:`torch_geometric.explain.Explainer` on the node's receptive field (the nodes within the
network's number of layers). The baseline is the all-zero normalised input: every node at the
training mean of its type. Attribution ``a[v, f]`` of feature ``f`` of node ``v`` is
``x[v, f] · mean_α ∂logit/∂x[v, f] (α x)`` over ``steps`` points ``α`` (midpoint rule), so the
attributions over all nodes and features add up to ``logit(x) - logit(baseline)`` (up to the
quadrature error). From them:

- **features**: the node's own features ranked by ``|attribution|`` (signed: positive raises
  the fragility), with the raw feature value;
- **neighbours**: the other nodes of the receptive field ranked by ``weight``, their share of
  the total ``|attribution|`` over all nodes other than the explained one, with the signed sum
  of their attributions (``contribution``).

The result is plain data (:class:`Explanation`, JSON via ``model_dump``) plus
:meth:`Explanation.summary`, a readable paragraph. Deterministic: no random draws.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from pydantic import BaseModel
from torch import Tensor, nn
from torch_geometric.explain import Explainer, HeteroExplanation
from torch_geometric.explain.algorithm import ExplainerAlgorithm
from torch_geometric.explain.config import MaskType

from gnn.features import EDGE_TYPES, FEATURE_NAMES, LABELLED_TYPES, NODE_TYPES, FeatureGraph
from gnn.model import FragilityModel
from graph.errors import ContagionError
from graph.export import SystemArrays

__all__ = ["Explanation", "FeatureAttribution", "IntegratedGradients", "NeighbourAttribution",
           "explain_node"]


class NeighbourAttribution(BaseModel):
    """A node of the receptive field: id, type, hops from the explained node, weight (share
    of the attribution, in ``[0, 1]``) and signed contribution to the logit."""

    id: str
    type: str
    hops: int
    weight: float
    contribution: float


class FeatureAttribution(BaseModel):
    """A feature of the explained node: name, raw value, signed attribution to the logit."""

    name: str
    value: float
    attribution: float


class Explanation(BaseModel):
    """Why ``node_id`` (of ``node_type``) scores ``score`` (predicted failure probability)."""

    node_id: str
    node_type: str
    score: float
    method: str
    neighbours: list[NeighbourAttribution]
    features: list[FeatureAttribution]

    def summary(self) -> str:
        """A readable paragraph."""
        feats = "; ".join(f"{f.name} = {f.value:.4g} ({f.attribution:+.2f})"
                          for f in self.features[:5])
        neigh = "; ".join(f"{n.type} {n.id} ({n.weight:.1%}, {n.hops} hop"
                          f"{'s' if n.hops != 1 else ''})" for n in self.neighbours[:5])
        return (f"{self.node_type} {self.node_id}: fragility {self.score:.3f} (predicted "
                f"probability of failure under the label shock family).\n"
                f"Top features (value, attribution to the logit): {feats or 'none'}.\n"
                f"Top neighbours (share of attribution, distance): {neigh or 'none'}.\n"
                f"Method: {self.method}.")


class IntegratedGradients(ExplainerAlgorithm):
    """Integrated gradients of a model's output at ``index`` with respect to every node
    feature of a heterogeneous graph (module doc); ``steps`` midpoint-rule points."""

    def __init__(self, steps: int = 32) -> None:
        super().__init__()
        self.steps = steps

    def forward(self, model: nn.Module, x: Any, edge_index: Any, *, target: Tensor,
                index: Any = None, **kwargs: Any) -> HeteroExplanation:
        total = {t: torch.zeros_like(v) for t, v in x.items()}
        for k in range(self.steps):
            alpha = (k + 0.5) / self.steps
            xs = {t: (alpha * v).detach().requires_grad_(True) for t, v in x.items()}
            out = model(xs, edge_index, **kwargs)[index].sum()
            grads = torch.autograd.grad(out, list(xs.values()), allow_unused=True)
            for t, gr in zip(xs, grads, strict=True):
                if gr is not None:
                    total[t] += gr
        ex = HeteroExplanation()
        for t, v in x.items():
            ex[t].node_mask = (v * total[t] / self.steps).detach()
        return ex

    def supports(self) -> bool:
        return (self.explainer_config.node_mask_type == MaskType.attributes
                and self.explainer_config.edge_mask_type is None)


class _OneType(nn.Module):
    """The network's logits for one node type (what the explainer differentiates)."""

    def __init__(self, model: FragilityModel, node_type: str) -> None:
        super().__init__()
        self.net, self.node_type = model.net, node_type

    def forward(self, x: dict[str, Tensor], edge_index: dict[Any, Tensor]) -> Tensor:
        return self.net(x, edge_index)[self.node_type]


def _receptive_field(g: FeatureGraph, node_type: str, index: int, hops: int
                     ) -> dict[str, np.ndarray]:
    """Hop distance ``[n_t]`` (-1 beyond ``hops``) of every node from the given node."""
    dist = {t: np.full(len(g.ids[t]), -1, dtype=np.int64) for t in NODE_TYPES}
    dist[node_type][index] = 0
    frontier = {t: np.flatnonzero(dist[t] == 0) for t in NODE_TYPES}
    for h in range(1, hops + 1):
        nxt: dict[str, list[np.ndarray]] = {t: [] for t in NODE_TYPES}
        for s, _r, d in EDGE_TYPES:
            if not len(frontier[s]):
                continue
            ei = g.edges[s, _r, d]
            hit = np.isin(ei[0], frontier[s])
            nxt[d].append(ei[1][hit])
        for t in NODE_TYPES:
            if nxt[t]:
                cand = np.unique(np.concatenate(nxt[t]))
                cand = cand[dist[t][cand] < 0]
                dist[t][cand] = h
                frontier[t] = cand
            else:
                frontier[t] = np.zeros(0, dtype=np.int64)
    return dist


def explain_node(model: FragilityModel, graph: FeatureGraph | SystemArrays, node_id: str, *,
                 top: int = 10, steps: int = 32) -> Explanation:
    """Explain the score of ``node_id`` (a protocol, pool, asset or account of ``graph``).

    ``graph``: the ecosystem (``model.graph(system)``, or the :class:`SystemArrays` itself).
    ``top``: how many neighbours and features to return; ``steps``: integration points.
    Raises :class:`~graph.errors.ContagionError` for an unknown node or an oracle.
    """
    g = model.graph(graph) if isinstance(graph, SystemArrays) else graph
    where = [(t, int(np.flatnonzero(g.ids[t] == node_id)[0]))
             for t in NODE_TYPES if (g.ids[t] == node_id).any()]
    if not where:
        raise ContagionError(f"no node with id {node_id!r} in the ecosystem")
    node_type, index = where[0]
    if node_type not in LABELLED_TYPES:
        raise ContagionError(f"{node_id!r} is a {node_type}: only {', '.join(LABELLED_TYPES)} "
                             f"nodes have a fragility score")
    dist = _receptive_field(g, node_type, index, model.net.cfg.layers)
    keep = {t: np.flatnonzero(dist[t] >= 0) for t in NODE_TYPES}
    data = model.data(g).subgraph({t: torch.from_numpy(v) for t, v in keep.items()})
    local = int(np.searchsorted(keep[node_type], index))
    x_in = {t: v for t, v in data.x_dict.items() if len(v)}
    e_in = {et: v for et, v in data.edge_index_dict.items() if v.shape[1]}
    model.net.eval()
    with torch.no_grad():
        score = float(torch.sigmoid(model.net(x_in, e_in)[node_type][local]))
    explainer = Explainer(
        model=_OneType(model, node_type),
        algorithm=IntegratedGradients(steps),
        explanation_type="model",
        node_mask_type="attributes",
        edge_mask_type=None,
        model_config={"mode": "regression", "task_level": "node", "return_type": "raw"},
    )
    ex = explainer(x_in, e_in, index=local)
    attr = {t: ex[t].node_mask.numpy().astype(np.float64) for t in x_in}
    own = attr[node_type][local]
    raw = g.x[node_type][index]
    order = np.argsort(-np.abs(own), kind="stable")[:top]
    features = [FeatureAttribution(name=FEATURE_NAMES[node_type][k], value=float(raw[k]),
                                   attribution=float(own[k])) for k in order]
    rows = []
    for t, a in attr.items():
        mag, sig = np.abs(a).sum(axis=1), a.sum(axis=1)
        for j in range(len(a)):
            if not (t == node_type and j == local):
                rows.append((float(mag[j]), float(sig[j]), t, j))
    total = sum(r[0] for r in rows) or 1.0
    rows.sort(key=lambda r: (-r[0], r[2], r[3]))
    neighbours = [NeighbourAttribution(id=str(g.ids[t][keep[t][j]]), type=t,
                                       hops=int(dist[t][keep[t][j]]), weight=m / total,
                                       contribution=c)
                  for m, c, t, j in rows[:top]]
    return Explanation(node_id=node_id, node_type=node_type, score=score,
                       method=f"integrated gradients ({steps} steps, baseline: training mean) "
                              f"on the {model.net.cfg.layers}-hop receptive field",
                       neighbours=neighbours, features=features)
