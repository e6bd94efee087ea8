"""Node features and edges of the fragility graph, from :class:`~graph.export.SystemArrays`.

Node types (:data:`NODE_TYPES`): ``protocol``, ``pool``, ``asset``, ``oracle``, ``account``.
Positions are not nodes: each is aggregated into the features of its pool and of its account.
Per position ``i`` (USD at snapshot prices): collateral ``c_i``, debt ``d_i``, health
``h_i`` (the health factor ``Σ c·p·LT / Σ d·p`` of a lending or CDP position; for a margin
position with short option legs, collateral over the requirement ``mm · short notional``;
``inf`` without debt or shorts) and the *liquidation drop* ``1 - 1/h_i`` (the fall of its
collateral relative to its debt that liquidates it).

Features per node type (names in :data:`FEATURE_NAMES`; USD amounts enter as ``log1p``):

- **pool**: kind (one-hot), collateral and debt behind it, supply, borrow, holdings,
  utilisation, mean LTV / liquidation threshold / bonus over accepted assets, fee, margin and
  penalty, health-factor quantiles (min, 10%, 50%, 90% of ``log h``) over positions with
  debt, the debt-weighted histogram of liquidation drops (:data:`DROP_BINS`), leverage
  (debt / collateral), concentration (Herfindahl index of position debt, largest position's
  share, Herfindahl index of collateral assets), volatility of the collateral (collateral
  weighted), collateral of positions within a 35% drop of liquidation over the liquidity
  depth of its assets.
- **account**: kind (one-hot), collateral, debt, leverage, number of positions, health
  quantiles (min, debt-weighted mean, max of ``log h``), drop histogram, collateral-asset
  concentration, collateral volatility, short option notional over collateral, option legs,
  its largest share of a pool's debt.
- **asset**: kind (one-hot), liquidity depth (order book within 2% plus AMM reserves), the
  volatility forecast (standard deviation of the log price move under the scenario family),
  collateral posted and debt owed in it, collateral over depth, near-liquidation collateral
  over depth, supply and borrow, whether it has an issuer, the issuer's backing ratio,
  whether it is pegged.
- **protocol**: kind (one-hot), close factor, full-close threshold, reserve, reserve over
  debt, supply, borrow, collateral, utilisation, deposits made and received, pools, backing
  ratio (holdings plus loans over liabilities), drop histogram of its positions' debt.
- **oracle**: kind (one-hot), whether it reads a pool, the read pool's holdings.

Edges (:data:`EDGE_TYPES`) follow docs/architecture.md §3 with positions folded into
accounts, each with a reverse edge ``rev_<name>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import pandas as pd
import torch
from torch_geometric.data import HeteroData

from graph.export import SystemArrays, health_factors
from graph.vocab import AccountKind, AssetKind, OracleKind, PoolKind, ProtocolKind

__all__ = [
    "DROP_BINS",
    "EDGE_TYPES",
    "EDGE_USD",
    "FEATURE_NAMES",
    "LABELLED_TYPES",
    "NODE_TYPES",
    "FeatureGraph",
    "Normalizer",
    "build_graph",
    "feature_spec",
]

NODE_TYPES = ("protocol", "pool", "asset", "oracle", "account")
#: Node types with a Monte Carlo failure probability (an oracle has none).
LABELLED_TYPES = ("protocol", "pool", "asset", "account")
#: Edges of the graph before reverse edges are added: (source, relation, target).
BASE_EDGES = (
    ("protocol", "operates", "pool"),
    ("pool", "accepts", "asset"),
    ("pool", "lends", "asset"),
    ("pool", "holds", "asset"),
    ("asset", "issued_by", "protocol"),
    ("asset", "pegged_to", "asset"),
    ("asset", "priced_by", "oracle"),
    ("oracle", "reads", "pool"),
    ("protocol", "deposits_in", "pool"),
    ("account", "borrows_in", "pool"),
    ("account", "posts", "asset"),
    ("account", "owes", "asset"),
    ("account", "writes", "asset"),
)
EDGE_TYPES = BASE_EDGES + tuple((d, f"rev_{r}", s) for s, r, d in BASE_EDGES)
#: What the USD amount of each base edge is (reverse edges carry the same amount).
EDGE_USD = {
    "operates": "the pool's loans and holdings",
    "accepts": "collateral of the pool's positions in the asset",
    "lends": "the pool's loans of the asset",
    "holds": "the pool's holdings of the asset",
    "issued_by": "the asset held in positions and pools",
    "pegged_to": "the asset held in positions and pools",
    "priced_by": "collateral valued by the oracle",
    "reads": "holdings of the pool read",
    "deposits_in": "the deposit",
    "borrows_in": "the account's debt (or collateral, without debt) in the pool",
    "posts": "the account's collateral in the asset",
    "owes": "the account's debt in the asset",
    "writes": "short option notional on the asset",
}
#: Bin edges of the liquidation-drop histograms.
DROP_BINS = (0.0, 0.05, 0.10, 0.20, 0.35, 0.50, np.inf)
_LOG_H_CAP = 3.0  # log health above this (or infinite) is "safe"
_NEAR = 0.35  # "near liquidation": within a 35% drop


def _onehot(prefix: str, enum: type[StrEnum]) -> list[str]:
    return [f"{prefix}={m.value}" for m in enum]


_HIST = [f"drop_{DROP_BINS[i]:g}_{DROP_BINS[i + 1]:g}" for i in range(len(DROP_BINS) - 1)]

FEATURE_NAMES: dict[str, tuple[str, ...]] = {
    "pool": (*_onehot("kind", PoolKind), "log_collateral_usd", "log_debt_usd",
             "log_supplied_usd", "log_borrowed_usd", "log_holdings_usd", "utilisation",
             "mean_ltv", "mean_liquidation_threshold", "mean_liquidation_bonus", "fee",
             "maintenance_margin", "liquidation_penalty", "log_h_min", "log_h_q10",
             "log_h_q50", "log_h_q90", *_HIST, "leverage", "debt_hhi", "top_position_share",
             "collateral_asset_hhi", "collateral_volatility", "log_near_collateral_over_depth",
             "log_positions"),
    "account": (*_onehot("kind", AccountKind), "log_collateral_usd", "log_debt_usd",
                "leverage", "log_positions", "log_h_min", "log_h_mean", "log_h_max", *_HIST,
                "collateral_asset_hhi", "collateral_volatility", "short_notional_over_collateral",
                "log_option_legs", "max_pool_debt_share"),
    "asset": (*_onehot("kind", AssetKind), "log_depth_usd", "volatility",
              "log_collateral_usd", "log_debt_usd", "log_collateral_over_depth",
              "log_near_collateral_over_depth", "log_supplied_usd", "log_borrowed_usd",
              "has_issuer", "issuer_backing", "pegged"),
    "protocol": (*_onehot("kind", ProtocolKind), "close_factor", "full_close_threshold",
                 "log_reserve_usd", "reserve_over_debt", "log_supplied_usd", "log_borrowed_usd",
                 "log_collateral_usd", "utilisation", "log_deposits_made_usd",
                 "log_deposits_received_usd", "log_pools", "backing", *_HIST),
    "oracle": (*_onehot("kind", OracleKind), "reads_pool", "log_read_pool_holdings_usd"),
}


def feature_spec() -> dict[str, list[str]]:
    """The feature names per node type (what a saved model records and checks)."""
    return {t: list(FEATURE_NAMES[t]) for t in NODE_TYPES}


@dataclass(frozen=True, eq=False)
class FeatureGraph:
    """Raw (unnormalised) features ``x[t]`` ``[n_t, F_t]`` float32, node ids ``ids[t]``
    ``[n_t]``, edges ``edges[(s, r, d)]`` ``[2, E]`` int64 and the USD amount behind each edge
    ``usd[(s, r, d)]`` ``[E]`` of one ecosystem (:data:`EDGE_USD` says what it is).

    >>> import numpy as np
    >>> from graph.export import compile_system
    >>> from ingest.generate import generate_ecosystem
    >>> s = compile_system(generate_ecosystem(200, seed=1))
    >>> g = build_graph(s, np.zeros(len(s.asset_ids)))
    >>> g.x["pool"].shape == (len(s.pool_ids), len(FEATURE_NAMES["pool"]))
    True
    """

    x: dict[str, np.ndarray]
    ids: dict[str, np.ndarray]
    edges: dict[tuple[str, str, str], np.ndarray]
    usd: dict[tuple[str, str, str], np.ndarray]

    def num_nodes(self) -> int:
        return sum(len(v) for v in self.ids.values())

    def to_hetero(self, normalizer: Normalizer | None = None) -> HeteroData:
        """The PyG ``HeteroData`` (features normalised by ``normalizer`` when given)."""
        data = HeteroData()
        for t in NODE_TYPES:
            x = self.x[t] if normalizer is None else normalizer.apply(t, self.x[t])
            data[t].x = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
            data[t].num_nodes = len(self.ids[t])
        for et in EDGE_TYPES:
            data[et].edge_index = torch.from_numpy(self.edges[et])
        return data


class Normalizer:
    """Per-feature standardisation ``(x - mean) / std`` fitted on training graphs, clipped to
    ``[-clip, clip]``; constant features get ``std = 1``."""

    def __init__(self, mean: dict[str, np.ndarray], std: dict[str, np.ndarray],
                 clip: float = 8.0) -> None:
        self.mean, self.std, self.clip = mean, std, clip

    @classmethod
    def fit(cls, graphs: list[FeatureGraph]) -> Normalizer:
        mean, std = {}, {}
        for t in NODE_TYPES:
            x = np.concatenate([g.x[t] for g in graphs]).astype(np.float64)
            m = x.mean(axis=0) if len(x) else np.zeros(len(FEATURE_NAMES[t]))
            s = x.std(axis=0) if len(x) else np.ones(len(FEATURE_NAMES[t]))
            mean[t], std[t] = m, np.where(s > 1e-9, s, 1.0)
        return cls(mean, std)

    def apply(self, node_type: str, x: np.ndarray) -> np.ndarray:
        z = (x - self.mean[node_type]) / self.std[node_type]
        return np.clip(z, -self.clip, self.clip).astype(np.float32)

    def state(self) -> dict[str, object]:
        """Plain tensors, for ``torch.save`` and ``torch.load(weights_only=True)``."""
        return {"clip": self.clip,
                "mean": {t: torch.from_numpy(v.astype(np.float64)) for t, v in self.mean.items()},
                "std": {t: torch.from_numpy(v.astype(np.float64)) for t, v in self.std.items()}}

    @classmethod
    def from_state(cls, state: dict[str, object]) -> Normalizer:
        mean = state["mean"]
        std = state["std"]
        assert isinstance(mean, dict) and isinstance(std, dict)
        clip = state["clip"]
        assert isinstance(clip, float | int)
        return cls({t: v.numpy() for t, v in mean.items()},
                   {t: v.numpy() for t, v in std.items()}, float(clip))


# --------------------------------------------------------------------------- computation


def _l(x: np.ndarray | pd.Series | float) -> np.ndarray:
    return np.log1p(np.maximum(np.asarray(x, dtype=np.float64), 0.0))


def _ratio(a: np.ndarray, b: np.ndarray, cap: float = 10.0) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(b > 0, a / np.where(b > 0, b, 1.0), 0.0)
    return np.clip(r, 0.0, cap)


def _codes_onehot(codes: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros((len(codes), n))
    out[np.arange(len(codes)), codes.astype(np.int64)] = 1.0
    return out


def _pairs(rows: np.ndarray, cols: np.ndarray, weight: np.ndarray | None = None
           ) -> tuple[np.ndarray, np.ndarray]:
    """Unique (row, col) pairs as ``[2, E]`` int64 and their summed ``weight`` ``[E]``."""
    if not len(rows):
        return np.zeros((2, 0), dtype=np.int64), np.zeros(0)
    w = np.ones(len(rows)) if weight is None else np.asarray(weight, dtype=np.float64)
    p, inv = np.unique(np.stack([rows, cols]).astype(np.int64), axis=1, return_inverse=True)
    return np.ascontiguousarray(p), np.bincount(inv.ravel(), weights=w, minlength=p.shape[1])


def _hist(drop: np.ndarray, weight: np.ndarray, group: np.ndarray, n: int) -> np.ndarray:
    """Weighted histogram of ``drop`` per group, normalised to shares ``[n, bins]``."""
    b = np.digitize(drop, DROP_BINS[1:-1])
    out = np.zeros((n, len(DROP_BINS) - 1))
    np.add.at(out, (group, b), weight)
    tot = out.sum(axis=1, keepdims=True)
    return np.divide(out, tot, out=np.zeros_like(out), where=tot > 0)


def _group_hhi(group: np.ndarray, weight: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Herfindahl index and largest share of ``weight`` per group."""
    tot = np.bincount(group, weights=weight, minlength=n)
    share = _ratio(weight, tot[group], cap=1.0)
    hhi = np.bincount(group, weights=share**2, minlength=n)
    top = np.zeros(n)
    np.maximum.at(top, group, share)
    return hhi, top


def _position_health(system: SystemArrays, coll_usd: np.ndarray) -> np.ndarray:
    """``h`` per position (module doc): health factors, margin health for option shorts."""
    h = health_factors(system)
    if len(system.option_position):
        short = ~system.option_is_long
        notional = system.option_size * system.price[system.option_asset]
        short_usd = np.bincount(system.option_position[short], weights=notional[short],
                                minlength=system.num_positions)
        mm = np.nan_to_num(system.maintenance_margin[system.position_pool], nan=0.1)
        req = np.maximum(mm, 0.01) * short_usd
        has = short_usd > 0
        h = np.where(has, _ratio(coll_usd, req, cap=1e6), h)
    return h


def build_graph(system: SystemArrays, volatility: np.ndarray) -> FeatureGraph:
    """The raw features and edges of ``system``.

    ``volatility`` ``[A]``: the volatility forecast of each asset (standard deviation of its
    log price move under the scenario family, :meth:`gnn.labels.ShockFamily.volatility`).
    """
    s = system
    na, nm, nu, npr = len(s.asset_ids), len(s.pool_ids), len(s.account_ids), len(s.protocol_ids)
    no = len(s.oracle_ids)
    n = s.num_positions
    vol = np.asarray(volatility, dtype=np.float64)
    if vol.shape != (na,):
        raise ValueError(f"volatility must be [num_assets] = [{na}] (got {list(vol.shape)})")
    price = s.price
    c_usd_by = s.collateral.multiply(price[None, :]).tocsr()  # [N, A] USD
    d_usd_by = s.debt.multiply(price[None, :]).tocsr()
    coll = np.asarray(c_usd_by.sum(axis=1)).ravel()
    debt = np.asarray(d_usd_by.sum(axis=1)).ravel()
    h = _position_health(s, coll)
    with np.errstate(divide="ignore"):
        logh = np.where(np.isfinite(h) & (h > 0), np.log(np.maximum(h, 1e-9)), _LOG_H_CAP)
    logh = np.minimum(logh, _LOG_H_CAP)
    drop = np.clip(np.where(np.isfinite(h) & (h > 0), 1.0 - 1.0 / np.maximum(h, 1e-9), 1.0),
                   0.0, 1.0)
    levered = logh < _LOG_H_CAP
    weight = np.where(debt > 0, debt, coll)
    pool, acct = s.position_pool, s.position_account
    # collateral-weighted volatility per position
    c_rows = np.repeat(np.arange(n), np.diff(c_usd_by.indptr))
    c_vol = np.bincount(c_rows, weights=c_usd_by.data * vol[c_usd_by.indices], minlength=n)
    # depth per asset: order book + AMM reserves
    amm = s.pool_kind == list(PoolKind).index(PoolKind.AMM)
    hold_usd = s.holdings.multiply(price[None, :]).tocsr()
    amm_res = np.asarray(hold_usd[np.flatnonzero(amm)].sum(axis=0)).ravel() if amm.any() \
        else np.zeros(na)
    depth = s.market_depth_usd + amm_res
    # near-liquidation collateral per asset
    near = levered & (drop < _NEAR)
    near_c = np.asarray(c_usd_by[np.flatnonzero(near)].sum(axis=0)).ravel() if near.any() \
        else np.zeros(na)
    c_asset = np.asarray(c_usd_by.sum(axis=0)).ravel()
    d_asset = np.asarray(d_usd_by.sum(axis=0)).ravel()
    near_ratio_asset = _ratio(near_c, depth, cap=1e6)

    # ---- pools
    p_coll = np.bincount(pool, weights=coll, minlength=nm)
    p_debt = np.bincount(pool, weights=debt, minlength=nm)
    supplied = s.supplied @ price
    borrowed = s.borrowed @ price
    holdings = np.asarray(hold_usd.sum(axis=1)).ravel()
    acc = s.accepts.sum(axis=1)
    mean_ltv = _ratio(s.ltv.sum(axis=1), acc)
    mean_lt = _ratio(s.liquidation_threshold.sum(axis=1), acc)
    mean_lb = _ratio(s.liquidation_bonus.sum(axis=1), acc)
    q = pd.DataFrame({"pool": pool[levered], "logh": logh[levered]}).groupby("pool")["logh"]
    quant = np.full((nm, 4), _LOG_H_CAP)
    if levered.any():
        agg = pd.concat([q.min(), q.quantile(0.1), q.quantile(0.5), q.quantile(0.9)], axis=1)
        quant[agg.index.to_numpy()] = agg.to_numpy()
    p_hist = _hist(drop[levered], weight[levered], pool[levered], nm)
    p_debt_hhi, p_top = _group_hhi(pool, debt, nm)
    pa_coll = np.zeros((nm, na))
    np.add.at(pa_coll, (pool[c_rows], c_usd_by.indices), c_usd_by.data)
    pa_share = pa_coll / np.maximum(pa_coll.sum(axis=1, keepdims=True), 1e-12)
    p_c_hhi = (pa_share**2).sum(axis=1)
    p_vol = _ratio(np.bincount(pool, weights=c_vol, minlength=nm), p_coll)
    near_pa = np.zeros((nm, na))
    nr = near[c_rows]
    np.add.at(near_pa, (pool[c_rows][nr], c_usd_by.indices[nr]), c_usd_by.data[nr])
    p_near_depth = (near_pa / np.maximum(depth, 1.0)[None, :]).sum(axis=1)
    x_pool = np.column_stack([
        _codes_onehot(s.pool_kind, len(PoolKind)), _l(p_coll), _l(p_debt), _l(supplied),
        _l(borrowed), _l(holdings), _ratio(borrowed, supplied, cap=1.0), mean_ltv, mean_lt,
        mean_lb, np.nan_to_num(s.pool_fee), np.nan_to_num(s.maintenance_margin),
        np.nan_to_num(s.liquidation_penalty), quant, p_hist, _ratio(p_debt, p_coll),
        p_debt_hhi, p_top, p_c_hhi, p_vol, _l(p_near_depth), _l(np.bincount(pool,
                                                                          minlength=nm)),
    ])

    # ---- accounts
    u_coll = np.bincount(acct, weights=coll, minlength=nu)
    u_debt = np.bincount(acct, weights=debt, minlength=nu)
    u_min = np.full(nu, _LOG_H_CAP)
    np.minimum.at(u_min, acct, logh)
    u_max = np.full(nu, -np.inf)
    np.maximum.at(u_max, acct, logh)
    u_max = np.where(np.isfinite(u_max), u_max, _LOG_H_CAP)
    u_mean = np.where(np.bincount(acct, weights=weight, minlength=nu) > 0,
                      _ratio(np.bincount(acct, weights=weight * (logh + 10.0), minlength=nu),
                             np.bincount(acct, weights=weight, minlength=nu), cap=1e6) - 10.0,
                      _LOG_H_CAP)
    u_hist = _hist(drop[levered], weight[levered], acct[levered], nu)
    ua = pd.DataFrame({"a": acct[c_rows], "asset": c_usd_by.indices, "v": c_usd_by.data})
    ua = ua.groupby(["a", "asset"], sort=False)["v"].sum().reset_index()
    u_c_hhi, _ = _group_hhi(ua["a"].to_numpy(), ua["v"].to_numpy(), nu)
    u_vol = _ratio(np.bincount(acct, weights=c_vol, minlength=nu), u_coll)
    legs = np.zeros(nu)
    short_usd = np.zeros(nu)
    if len(s.option_position):
        leg_acct = acct[s.option_position]
        legs = np.bincount(leg_acct, minlength=nu).astype(float)
        notional = s.option_size * price[s.option_asset]
        short_usd = np.bincount(leg_acct, weights=notional * (~s.option_is_long),
                                minlength=nu).astype(np.float64)
    pool_share = _ratio(debt, p_debt[pool], cap=1.0)
    u_share = np.zeros(nu)
    np.maximum.at(u_share, acct, pool_share)
    x_account = np.column_stack([
        _codes_onehot(s.account_kind, len(AccountKind)), _l(u_coll), _l(u_debt),
        _ratio(u_debt, u_coll), _l(np.bincount(acct, minlength=nu)), u_min, u_mean, u_max,
        u_hist, u_c_hhi, u_vol, _ratio(short_usd, u_coll, cap=100.0), _l(legs), u_share,
    ])

    # ---- protocols
    pp = s.pool_protocol
    pr_supplied = np.bincount(pp, weights=supplied, minlength=npr)
    pr_borrowed = np.bincount(pp, weights=borrowed, minlength=npr)
    pr_coll = np.bincount(pp, weights=p_coll, minlength=npr)
    pr_hold = np.bincount(pp, weights=holdings, minlength=npr)
    dep = s.deposits_usd
    made = np.asarray(dep.sum(axis=1)).ravel()
    recv_pool = np.asarray(dep.sum(axis=0)).ravel()
    recv = np.bincount(pp, weights=recv_pool, minlength=npr)
    lending = np.isin(s.pool_kind, [list(PoolKind).index(PoolKind.LENDING)])
    cdp = s.pool_kind == list(PoolKind).index(PoolKind.CDP)
    liab_pool = np.where(lending, supplied, np.where(cdp, borrowed, holdings))
    liab = np.bincount(pp, weights=liab_pool, minlength=npr)
    backing = _ratio(pr_hold + pr_borrowed, liab, cap=5.0)
    pr_hist = _hist(drop[levered], weight[levered], pp[pool[levered]], npr)
    x_protocol = np.column_stack([
        _codes_onehot(s.protocol_kind, len(ProtocolKind)), np.nan_to_num(s.close_factor),
        np.nan_to_num(s.full_close_threshold), _l(s.reserve_usd),
        _ratio(s.reserve_usd, np.bincount(pp, weights=p_debt, minlength=npr)),
        _l(pr_supplied), _l(pr_borrowed), _l(pr_coll), _ratio(pr_borrowed, pr_supplied, 1.0),
        _l(made), _l(recv), _l(np.bincount(pp, minlength=npr)), backing, pr_hist,
    ])

    # ---- assets
    has_issuer = s.issuer >= 0
    issuer_backing = np.where(has_issuer, backing[np.maximum(s.issuer, 0)], 1.0)
    x_asset = np.column_stack([
        _codes_onehot(s.asset_kind, len(AssetKind)), _l(depth), vol, _l(c_asset), _l(d_asset),
        _l(_ratio(c_asset, depth, cap=1e6)), _l(near_ratio_asset),
        _l(s.supplied.T @ np.ones(nm) * price), _l(s.borrowed.T @ np.ones(nm) * price),
        has_issuer.astype(float), issuer_backing, (s.pegged_to >= 0).astype(float),
    ])

    # ---- oracles
    o_pool = np.full(no, -1, dtype=np.int64)
    has_o = s.asset_oracle >= 0
    o_pool[s.asset_oracle[has_o]] = s.oracle_pool[has_o]
    reads = o_pool >= 0
    x_oracle = np.column_stack([
        _codes_onehot(s.oracle_kind, len(OracleKind)), reads.astype(float),
        np.where(reads, _l(holdings[np.maximum(o_pool, 0)] if nm else np.zeros(no)), 0.0),
    ])

    # ---- edges
    e: dict[tuple[str, str, str], tuple[np.ndarray, np.ndarray]] = {}
    e["protocol", "operates", "pool"] = _pairs(pp, np.arange(nm), borrowed + holdings)
    r, c = np.nonzero(s.accepts)
    e["pool", "accepts", "asset"] = _pairs(r, c, pa_coll[r, c])
    bor_by = s.borrowed * price[None, :]
    r, c = np.nonzero(s.supplied > 0)
    e["pool", "lends", "asset"] = _pairs(r, c, bor_by[r, c])
    hc = hold_usd.tocoo()
    keep = hc.data > 0
    e["pool", "holds", "asset"] = _pairs(hc.row[keep], hc.col[keep], hc.data[keep])
    held = c_asset + np.asarray(hold_usd.sum(axis=0)).ravel()
    a = np.flatnonzero(has_issuer)
    e["asset", "issued_by", "protocol"] = _pairs(a, s.issuer[a], held[a])
    a = np.flatnonzero(s.pegged_to >= 0)
    e["asset", "pegged_to", "asset"] = _pairs(a, s.pegged_to[a], held[a])
    a = np.flatnonzero(has_o)
    e["asset", "priced_by", "oracle"] = _pairs(a, s.asset_oracle[a], c_asset[a])
    o = np.flatnonzero(reads)
    e["oracle", "reads", "pool"] = _pairs(o, o_pool[o], holdings[o_pool[o]])
    dc = dep.tocoo()
    keep = dc.data > 0
    e["protocol", "deposits_in", "pool"] = _pairs(dc.row[keep], dc.col[keep], dc.data[keep])
    e["account", "borrows_in", "pool"] = _pairs(acct, pool, weight)
    e["account", "posts", "asset"] = _pairs(acct[c_rows], c_usd_by.indices, c_usd_by.data)
    d_rows = np.repeat(np.arange(n), np.diff(d_usd_by.indptr))
    e["account", "owes", "asset"] = _pairs(acct[d_rows], d_usd_by.indices, d_usd_by.data)
    short = ~s.option_is_long
    notional = s.option_size * price[s.option_asset]
    e["account", "writes", "asset"] = _pairs(acct[s.option_position[short]],
                                             s.option_asset[short], notional[short])
    for src, rel, dst in BASE_EDGES:
        ei, w = e[src, rel, dst]
        e[dst, f"rev_{rel}", src] = (np.ascontiguousarray(ei[::-1]), w)

    xs = {"protocol": x_protocol, "pool": x_pool, "asset": x_asset, "oracle": x_oracle,
          "account": x_account}
    for t, x in xs.items():
        want = (len(getattr(s, f"{t}_ids")), len(FEATURE_NAMES[t]))
        if x.shape != want:  # pragma: no cover - a programming error
            raise AssertionError(f"{t} features are {list(x.shape)}, expected {list(want)}")
        if not np.isfinite(x).all():  # pragma: no cover
            bad = np.argwhere(~np.isfinite(x))[0]
            raise AssertionError(f"{t} feature {FEATURE_NAMES[t][bad[1]]} is not finite")
    ids = {t: getattr(s, f"{t}_ids").astype(str) for t in NODE_TYPES}
    return FeatureGraph(x={t: v.astype(np.float32) for t, v in xs.items()}, ids=ids,
                        edges={k: v[0] for k, v in e.items()},
                        usd={k: v[1] for k, v in e.items()})
