"""Baselines the fragility model is judged against (:mod:`gnn.evaluate`).

The **exposure graph** of an ecosystem has the labelled nodes (protocols, pools, assets,
accounts, in that order) and ``A[i, j]``, the USD that ``i`` loses if ``j`` is distressed:
an account's collateral in an asset and its short option notional on it, a pool's loans to an
account and the collateral it accepts in an asset, a protocol's loans and holdings through the
pools it operates and its deposits in other pools, an asset's value through its issuer and its
peg target. Equity (the buffer before default): an account's collateral less debt (at least
5% of its collateral), a pool's collateral less debt (at least 5% of its debt), a protocol's
reserve, an asset's liquidity depth; plus 1 USD.

- :func:`debtrank_scores`: DebtRank (Battiston et al. 2012, :func:`simulate.clearing.debt_rank`)
  from initial asset shocks ``min(1, 2·σ_a)``, ``σ_a`` the family's volatility forecast; the
  score is the final relative equity loss.
- :func:`pagerank_scores`: personalised PageRank of distress (damping 0.85): distress flows
  from ``j`` to ``i`` in proportion to ``min(1, A[i, j] / E_i)``, restarting at the shocked
  assets.
- :class:`GBDTBaseline`: one histogram gradient-boosted regressor per node type on the same
  raw features as the model, no message passing.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from sklearn.ensemble import HistGradientBoostingRegressor

from gnn.dataset import Sample
from gnn.features import FEATURE_NAMES, LABELLED_TYPES, FeatureGraph
from simulate.clearing import debt_rank

__all__ = ["GBDTBaseline", "debtrank_scores", "exposure_graph", "pagerank_scores"]

_EXPOSURES = (  # (edge type, creditor side is the source?)
    (("account", "posts", "asset"), True),
    (("account", "writes", "asset"), True),
    (("account", "borrows_in", "pool"), False),
    (("pool", "accepts", "asset"), True),
    (("protocol", "operates", "pool"), True),
    (("protocol", "deposits_in", "pool"), True),
    (("asset", "issued_by", "protocol"), True),
    (("asset", "pegged_to", "asset"), True),
)


def _feat(g: FeatureGraph, t: str, name: str) -> np.ndarray:
    return g.x[t][:, FEATURE_NAMES[t].index(name)].astype(np.float64)


def _usd(g: FeatureGraph, t: str, name: str) -> np.ndarray:
    return np.expm1(_feat(g, t, name))


def exposure_graph(g: FeatureGraph) -> tuple[sparse.csr_array, np.ndarray, np.ndarray,
                                              dict[str, slice]]:
    """``(A [n, n] USD, equity [n], shocks [n], slices per type)`` (module doc)."""
    sizes = [len(g.ids[t]) for t in LABELLED_TYPES]
    offs = np.concatenate([[0], np.cumsum(sizes)])
    sl = {t: slice(int(offs[k]), int(offs[k + 1])) for k, t in enumerate(LABELLED_TYPES)}
    n = int(offs[-1])
    rows, cols, vals = [], [], []
    for (src, rel, dst), creditor_is_src in _EXPOSURES:
        ei, w = g.edges[src, rel, dst], g.usd[src, rel, dst]
        a = ei[0] + sl[src].start
        b = ei[1] + sl[dst].start
        i, j = (a, b) if creditor_is_src else (b, a)
        keep = i != j
        rows.append(i[keep])
        cols.append(j[keep])
        vals.append(w[keep])
    a_mat = sparse.coo_array((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                             shape=(n, n)).tocsr()
    eq = np.zeros(n)
    c, d = _usd(g, "account", "log_collateral_usd"), _usd(g, "account", "log_debt_usd")
    eq[sl["account"]] = np.maximum(c - d, 0.05 * c)
    c, d = _usd(g, "pool", "log_collateral_usd"), _usd(g, "pool", "log_debt_usd")
    eq[sl["pool"]] = np.maximum(c - d, 0.05 * d)
    eq[sl["protocol"]] = _usd(g, "protocol", "log_reserve_usd")
    eq[sl["asset"]] = _usd(g, "asset", "log_depth_usd")
    h0 = np.zeros(n)
    h0[sl["asset"]] = np.clip(2.0 * _feat(g, "asset", "volatility"), 0.0, 1.0)
    return a_mat, eq + 1.0, h0, sl


def _split(v: np.ndarray, sl: dict[str, slice]) -> dict[str, np.ndarray]:
    return {t: v[s] for t, s in sl.items()}


def debtrank_scores(g: FeatureGraph) -> dict[str, np.ndarray]:
    """DebtRank relative equity loss per labelled node ``{t: [n_t]}``."""
    a, eq, h0, sl = exposure_graph(g)
    h = debt_rank(a.toarray(), eq, h0, variant="original")
    return _split(h, sl)


def pagerank_scores(g: FeatureGraph, *, damping: float = 0.85, iterations: int = 100
                    ) -> dict[str, np.ndarray]:
    """Personalised PageRank of distress per labelled node ``{t: [n_t]}``."""
    a, eq, h0, sl = exposure_graph(g)
    w = a.tocoo()
    impact = np.minimum(1.0, w.data / eq[w.row])
    # distress moves from j (column) to i (row): column-normalise
    m = sparse.coo_array((impact, (w.row, w.col)), shape=a.shape).tocsc()
    out = np.asarray(m.sum(axis=0)).ravel()
    inv = np.divide(1.0, out, out=np.zeros_like(out), where=out > 0)
    m = (m @ sparse.diags_array(inv)).tocsr()
    v = h0 / h0.sum() if h0.sum() > 0 else np.full(len(h0), 1.0 / max(len(h0), 1))
    r = v.copy()
    for _ in range(iterations):
        nxt = damping * (m @ r) + (1.0 - damping) * v
        nxt += damping * r[out == 0].sum() * v  # dangling mass restarts
        if np.abs(nxt - r).sum() < 1e-12:
            r = nxt
            break
        r = nxt
    return _split(r, sl)


class GBDTBaseline:
    """One :class:`~sklearn.ensemble.HistGradientBoostingRegressor` per labelled node type on
    the raw features (seeded, ``random_state=0``)."""

    def __init__(self, models: dict[str, HistGradientBoostingRegressor]) -> None:
        self.models = models

    @classmethod
    def fit(cls, train_set: list[Sample], *, max_iter: int = 200) -> GBDTBaseline:
        models = {}
        for t in LABELLED_TYPES:
            x = np.concatenate([s.graph.x[t] for s in train_set])
            y = np.concatenate([s.labels[t] for s in train_set])
            m = HistGradientBoostingRegressor(max_iter=max_iter, learning_rate=0.1,
                                              random_state=0)
            models[t] = m.fit(x, y)
        return cls(models)

    def predict(self, g: FeatureGraph) -> dict[str, np.ndarray]:
        return {t: np.clip(m.predict(g.x[t]), 0.0, 1.0) if len(g.x[t]) else np.zeros(0)
                for t, m in self.models.items()}
