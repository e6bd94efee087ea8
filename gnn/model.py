"""The fragility model: heterogeneous message passing over the fragility graph.

:class:`FragilityNet`: per node type a linear encoder ``[n_t, F_t] -> [n_t, H]``; then
``layers`` rounds (at least three, so second-order contagion — an account hit through the
asset its pool's liquidations sell — is visible) of :class:`torch_geometric.nn.HeteroConv`
with one :class:`~torch_geometric.nn.SAGEConv` per edge type (mean aggregation, summed over
edge types), each round residual with layer norm and ReLU; per labelled type a two-layer head
``[n_t, 2H] -> [n_t]`` over the last and the encoded state: the failure logit.

:class:`FragilityModel` is the saved artefact: network weights, network config, feature spec,
normaliser, the label family and evaluation metrics, all plain tensors, dicts and strings, so
:func:`load_model` reads it with ``torch.load(weights_only=True)`` and needs no training code.
"""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor, nn
from torch_geometric.data import HeteroData
from torch_geometric.nn import HeteroConv, SAGEConv

from gnn.features import (
    EDGE_TYPES,
    FEATURE_NAMES,
    LABELLED_TYPES,
    NODE_TYPES,
    FeatureGraph,
    Normalizer,
    build_graph,
    feature_spec,
)
from gnn.labels import ShockFamily
from graph.errors import ContagionError
from graph.export import SystemArrays
from graph.versions import numeric_stack

__all__ = ["DEFAULT_MODEL", "FragilityModel", "FragilityNet", "ModelError", "NetConfig",
           "load_model"]

_FORMAT = 1
#: The shipped default model (package data).
DEFAULT_MODEL = "fragility-default.pt"


class ModelError(ContagionError, ValueError):
    """A model file that cannot be read or does not fit the current feature code."""


class NetConfig(BaseModel):
    """Shape of :class:`FragilityNet`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    hidden: int = Field(default=64, ge=4, le=1024)
    layers: int = Field(default=3, ge=3, le=8)
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)


class FragilityNet(nn.Module):
    """See the module doc. ``forward(x_dict, edge_index_dict) -> {t: logits [n_t]}``."""

    def __init__(self, in_dims: dict[str, int], cfg: NetConfig) -> None:
        super().__init__()
        h = cfg.hidden
        self.cfg = cfg
        self.enc = nn.ModuleDict({t: nn.Linear(in_dims[t], h) for t in NODE_TYPES})
        self.convs = nn.ModuleList([
            HeteroConv({et: SAGEConv((h, h), h) for et in EDGE_TYPES}, aggr="sum")
            for _ in range(cfg.layers)])
        self.norms = nn.ModuleList([
            nn.ModuleDict({t: nn.LayerNorm(h) for t in NODE_TYPES}) for _ in range(cfg.layers)])
        self.head = nn.ModuleDict({
            t: nn.Sequential(nn.Linear(2 * h, h), nn.ReLU(), nn.Linear(h, 1))
            for t in LABELLED_TYPES})
        self.dropout = cfg.dropout

    def forward(self, x_dict: dict[str, Tensor], edge_index_dict: dict[Any, Tensor]
                ) -> dict[str, Tensor]:
        h0 = {t: torch.relu(self.enc[t](x)) for t, x in x_dict.items()}
        h = h0
        for conv, norm in zip(self.convs, self.norms, strict=True):
            m = conv(h, edge_index_dict)
            h = {t: torch.relu(norm[t](h[t] + m.get(t, torch.zeros_like(h[t]))))  # type: ignore[index]
                 for t in h}
            if self.dropout and self.training:
                h = {t: nn.functional.dropout(v, self.dropout, True) for t, v in h.items()}
        return {t: self.head[t](torch.cat([h[t], h0[t]], dim=-1)).squeeze(-1)
                for t in LABELLED_TYPES if t in h}


@dataclass(eq=False)
class FragilityModel:
    """A trained fragility model with everything needed to score a new ecosystem."""

    net: FragilityNet
    normalizer: Normalizer
    family: ShockFamily
    features: dict[str, list[str]] = field(default_factory=feature_spec)
    config: dict[str, Any] = field(default_factory=dict)  # training config (JSON)
    metrics: dict[str, Any] = field(default_factory=dict)  # evaluation (JSON)
    #: versions of the numeric stack that trained it (:func:`graph.versions.numeric_stack`;
    #: empty for a model file written before they were recorded)
    environment: dict[str, str] = field(default_factory=numeric_stack)

    def graph(self, system: SystemArrays) -> FeatureGraph:
        """Raw features and edges of ``system`` (volatility under the model's family)."""
        return build_graph(system, self.family.volatility(system))

    def data(self, graph: FeatureGraph) -> HeteroData:
        """The normalised ``HeteroData`` the network reads."""
        return graph.to_hetero(self.normalizer)

    @torch.no_grad()
    def predict(self, data: HeteroData, *, device: str | torch.device = "cpu"
                ) -> dict[str, np.ndarray]:
        """Fragility scores (predicted failure probabilities) ``{t: [n_t]}`` per labelled
        type."""
        self.net.eval()
        self.net.to(device)
        d = data.to(device)
        out = self.net(d.x_dict, d.edge_index_dict)
        return {t: torch.sigmoid(v).double().cpu().numpy() for t, v in out.items()}

    def score(self, system: SystemArrays, *, device: str | torch.device = "cpu"
              ) -> dict[str, dict[str, float]]:
        """Scores of every labelled node of ``system``: ``{t: {node id: score}}``."""
        g = self.graph(system)
        p = self.predict(self.data(g), device=device)
        return {t: dict(zip(g.ids[t].tolist(), p[t].tolist(), strict=True)) for t in p}

    def save(self, path: str | Path) -> Path:
        """Write the model (plain tensors and JSON strings) to ``path``.

        Floating-point weights are stored at half precision (the file stays small); the
        network's own weights are rounded to it first, so a loaded model scores exactly as
        this one does.
        """
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        with torch.no_grad():
            for v in self.net.state_dict().values():
                if v.is_floating_point():
                    v.copy_(v.half().float())
        in_dims = {t: len(self.features[t]) for t in NODE_TYPES}
        doc = {
            "format": _FORMAT,
            "state_dict": {k: (v.detach().cpu().half() if v.is_floating_point()
                               else v.detach().cpu().clone())
                           for k, v in self.net.state_dict().items()},
            "normalizer": self.normalizer.state(),
            "json": json.dumps({"net": self.net.cfg.model_dump(mode="json"), "in_dims": in_dims,
                                "features": self.features,
                                "family": self.family.model_dump(mode="json"),
                                "config": self.config, "metrics": self.metrics,
                                "environment": self.environment}),
        }
        tmp = p.with_suffix(".tmp")
        torch.save(doc, tmp)
        tmp.replace(p)
        return p


def load_model(path: str | Path | None = None, *, check_features: bool = True
               ) -> FragilityModel:
    """Read a model written by :meth:`FragilityModel.save` (``None``: the shipped default).

    With ``check_features`` the model's feature spec must equal what the current feature code
    produces (a model trained on other features would score garbage).
    """
    if path is None:
        ref = resources.files("gnn") / "data" / DEFAULT_MODEL
        with resources.as_file(ref) as f:
            return load_model(f, check_features=check_features)
    p = Path(path)
    try:
        doc = torch.load(p, weights_only=True, map_location="cpu")
        if not isinstance(doc, dict) or doc.get("format") != _FORMAT:
            raise ModelError(f"{p}: not a fragility model (format "
                             f"{doc.get('format') if isinstance(doc, dict) else None!r}, "
                             f"expected {_FORMAT})")
        meta = json.loads(doc["json"])
    except (OSError, RuntimeError, KeyError, ValueError, EOFError, pickle.UnpicklingError) as e:
        if isinstance(e, ModelError):
            raise
        raise ModelError(f"{p}: not a readable fragility model ({type(e).__name__}: {e})"
                         ) from None
    features = {t: list(v) for t, v in meta["features"].items()}
    if check_features and features != feature_spec():
        diff = [t for t in NODE_TYPES if features.get(t) != list(FEATURE_NAMES[t])]
        raise ModelError(f"{p}: the model's features differ from the current feature code "
                         f"for node types {diff}; retrain it (contagion train)")
    net = FragilityNet({t: int(v) for t, v in meta["in_dims"].items()},
                       NetConfig.model_validate(meta["net"]))
    net.load_state_dict({k: v.float() if v.is_floating_point() else v
                         for k, v in doc["state_dict"].items()})
    net.eval()
    return FragilityModel(net=net, normalizer=Normalizer.from_state(doc["normalizer"]),
                          family=ShockFamily.model_validate(meta["family"]), features=features,
                          config=meta["config"], metrics=meta["metrics"],
                          environment=meta.get("environment", {}))
