"""Training the fragility model.

Loss per graph, over its labelled nodes (protocol, pool, asset, account; ``y`` the Monte Carlo
failure probability, ``s`` the logit):

- binary cross-entropy with the probabilities as soft targets, averaged per node type and
  summed over types (so the few protocols weigh as much as the many accounts);
- plus ``rank_weight`` times a pairwise ranking loss over ``pairs`` random node pairs of the
  graph (all labelled types pooled, pairs whose labels differ by more than ``rank_margin``):
  ``|y_i - y_j| · softplus(-(s_i - s_j) · sign(y_i - y_j))`` (RankNet, weighted by the label
  gap) — the ranking of fragile nodes is what is judged.

Every draw (initial weights, batch order, pairs) comes from ``TrainConfig.seed``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor
from torch_geometric.data import Batch, HeteroData

from gnn.dataset import DatasetConfig, Sample, build_dataset
from gnn.features import FEATURE_NAMES, LABELLED_TYPES, NODE_TYPES, Normalizer
from gnn.model import FragilityModel, FragilityNet, NetConfig

__all__ = ["TrainConfig", "fit", "to_data", "train"]


class TrainConfig(BaseModel):
    """Everything ``contagion train`` needs; the defaults train the shipped model."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    data: DatasetConfig = DatasetConfig()
    eval_data: DatasetConfig = DatasetConfig(count=60, seed=777)
    net: NetConfig = NetConfig()
    epochs: int = Field(default=30, ge=1, le=10_000)
    batch_graphs: int = Field(default=8, ge=1)
    lr: float = Field(default=3e-3, gt=0.0)
    weight_decay: float = Field(default=1e-5, ge=0.0)
    rank_weight: float = Field(default=1.0, ge=0.0)
    pairs: int = Field(default=2048, ge=1)
    rank_margin: float = Field(default=0.02, ge=0.0)
    seed: int = Field(default=7, ge=0)
    evaluate: bool = True


def to_data(sample: Sample, normalizer: Normalizer) -> HeteroData:
    """Normalised ``HeteroData`` with labels ``y`` on the labelled types."""
    d = sample.graph.to_hetero(normalizer)
    for t in LABELLED_TYPES:
        d[t].y = torch.from_numpy(sample.labels[t].astype(np.float32))
    return d


def _loss(out: dict[str, Tensor], batch: HeteroData, cfg: TrainConfig, gen: torch.Generator
          ) -> Tensor:
    bce = torch.zeros(())
    for t in LABELLED_TYPES:
        if out[t].numel():
            bce = bce + torch.nn.functional.binary_cross_entropy_with_logits(out[t], batch[t].y)
    if cfg.rank_weight == 0:
        return bce
    s = torch.cat([out[t] for t in LABELLED_TYPES])
    y = torch.cat([batch[t].y for t in LABELLED_TYPES])
    g = torch.cat([batch[t].batch for t in LABELLED_TYPES])
    # pairs within a graph: draw i, then j among nodes of the same graph
    n = len(s)
    i = torch.randint(0, n, (cfg.pairs,), generator=gen)
    order = torch.argsort(g, stable=True)
    counts = torch.bincount(g)
    starts = torch.cumsum(counts, 0) - counts
    gi = g[i]
    j = order[starts[gi] + (torch.rand(cfg.pairs, generator=gen) * counts[gi]).long()]
    dy = y[i] - y[j]
    keep = dy.abs() > cfg.rank_margin
    if not keep.any():
        return bce
    rank = (dy.abs() * torch.nn.functional.softplus(-(s[i] - s[j]) * torch.sign(dy)))[keep]
    return bce + cfg.rank_weight * rank.mean() * 4.0


def fit(train_set: list[Sample], cfg: TrainConfig, *,
        progress: Callable[[int, int, float], None] | None = None,
        device: str | torch.device = "cpu") -> FragilityModel:
    """Fit the normaliser and the network on ``train_set``; ``progress(epoch, epochs,
    loss)`` after each epoch."""
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    norm = Normalizer.fit([s.graph for s in train_set])
    datas = [to_data(s, norm) for s in train_set]
    net = FragilityNet({t: len(FEATURE_NAMES[t]) for t in NODE_TYPES}, cfg.net).to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = cfg.epochs * int(np.ceil(len(datas) / cfg.batch_graphs))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=steps)
    for epoch in range(cfg.epochs):
        net.train()
        perm = torch.randperm(len(datas), generator=gen).tolist()
        total = 0.0
        for k in range(0, len(perm), cfg.batch_graphs):
            batch = Batch.from_data_list([datas[i] for i in perm[k:k + cfg.batch_graphs]])
            batch = batch.to(device)
            out = net(batch.x_dict, batch.edge_index_dict)
            loss = _loss(out, batch, cfg, gen)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            sched.step()
            total += float(loss.detach())
        if progress is not None:
            progress(epoch + 1, cfg.epochs, total / max(1, len(perm) // cfg.batch_graphs))
    net.eval()
    net.to("cpu")
    return FragilityModel(net=net, normalizer=norm, family=cfg.data.family,
                          config=cfg.model_dump(mode="json"))


def train(cfg: TrainConfig, *, cache_dir: Path | None = None,
          progress: Callable[[str, int, int], None] | None = None,
          device: str | torch.device = "cpu") -> FragilityModel:
    """Build (or read from the cache) the training set, fit, and, with ``cfg.evaluate``,
    evaluate on the held-out set against the baselines (``model.metrics``; timings under
    ``metrics["seconds"]``). ``progress(stage, done, total)``."""
    from gnn.evaluate import evaluate

    def tick(stage: str) -> Callable[[int, int], None]:
        return lambda d, t: progress(stage, d, t) if progress else None

    t0 = time.perf_counter()
    train_set = build_dataset(cfg.data, cache_dir=cache_dir, progress=tick("dataset"))
    t1 = time.perf_counter()
    model = fit(train_set, cfg, device=device,
                progress=lambda e, n, _l: progress("train", e, n) if progress else None)
    t2 = time.perf_counter()
    seconds: dict[str, Any] = {"dataset": t1 - t0, "fit": t2 - t1}
    if cfg.evaluate:
        held_out = build_dataset(cfg.eval_data, cache_dir=cache_dir,
                                 progress=tick("held-out set"))
        model.metrics = evaluate(model, held_out, train_set, progress=tick("evaluate"))
        seconds["evaluate"] = time.perf_counter() - t2
    model.metrics["seconds"] = seconds
    return model
