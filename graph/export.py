"""The compiled numeric form of a snapshot that the simulator and the GNN consume.

:func:`compile_system` maps every entity to a dense integer index (in the snapshot's sorted id
order) and lays the ecosystem out as arrays: per-asset and per-pool parameter vectors, dense
``[num_pools, num_assets]`` risk-parameter matrices, and CSR ``[num_positions, num_assets]``
collateral and debt matrices. Compute never walks the graph store object by object.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import overload

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import sparse

from graph.snapshot import Snapshot
from graph.vocab import AccountKind, AssetKind, OracleKind, PoolKind, ProtocolKind

__all__ = ["SystemArrays", "compile_system", "exposure_by_protocol", "health_factor",
           "health_factors"]

_NO = -1  # index of a missing reference (an asset without issuer, ...)


def _codes(values: pd.Series, enum: type[StrEnum]) -> np.ndarray:
    order = {m.value: i for i, m in enumerate(enum)}
    return values.map(order).to_numpy(dtype=np.int8)


def _index(ids: pd.Series, refs: pd.Series) -> np.ndarray:
    """Positions of ``refs`` in ``ids`` (sorted, unique); -1 where a ref is null."""
    idx = pd.Index(ids).get_indexer(refs)
    return np.asarray(idx, dtype=np.int64)


def _dense(df: pd.DataFrame, rows: pd.Series, cols: pd.Series, row: str, col: str,
           value: str) -> np.ndarray:
    out = np.zeros((len(rows), len(cols)), dtype=np.float64)
    out[_index(rows, df[row]), _index(cols, df[col])] = df[value].to_numpy(dtype=np.float64)
    return out


def _csr(df: pd.DataFrame, rows: pd.Series, cols: pd.Series, row: str, col: str, value: str,
         ) -> sparse.csr_array:
    m = sparse.coo_array(
        (df[value].to_numpy(dtype=np.float64), (_index(rows, df[row]), _index(cols, df[col]))),
        shape=(len(rows), len(cols)),
    ).tocsr()
    m.sort_indices()
    return m


@dataclass(frozen=True, eq=False)
class SystemArrays:
    """An ecosystem as arrays. Shapes: P protocols, A assets, M pools, U accounts, N positions,
    L option legs, O oracles. Kind codes index the enumerations of :mod:`graph.vocab` in
    declaration order; references to absent entities are -1; optional parameters are NaN where
    not set.
    """

    protocol_ids: np.ndarray  # [P] str
    asset_ids: np.ndarray  # [A] str
    asset_symbols: np.ndarray  # [A] str
    pool_ids: np.ndarray  # [M] str
    account_ids: np.ndarray  # [U] str
    position_ids: np.ndarray  # [N] str
    as_of: float  # snapshot time, Unix seconds

    # protocols [P]
    protocol_kind: np.ndarray  # int8, ProtocolKind
    close_factor: np.ndarray
    full_close_threshold: np.ndarray
    reserve_usd: np.ndarray
    # assets [A]
    asset_kind: np.ndarray  # int8, AssetKind
    price: np.ndarray  # USD
    decimals: np.ndarray  # int64
    market_depth_usd: np.ndarray
    issuer: np.ndarray  # int64 protocol index or -1
    pegged_to: np.ndarray  # int64 asset index or -1
    oracle_pool: np.ndarray  # int64 pool read by the asset's oracle, or -1
    # pools [M] and pool x asset [M, A]
    pool_protocol: np.ndarray  # int64
    pool_kind: np.ndarray  # int8, PoolKind
    pool_fee: np.ndarray
    amplification: np.ndarray
    maintenance_margin: np.ndarray
    liquidation_penalty: np.ndarray
    accepts: np.ndarray  # [M, A] bool
    ltv: np.ndarray  # [M, A], 0 where not accepted
    liquidation_threshold: np.ndarray  # [M, A]
    liquidation_bonus: np.ndarray  # [M, A]
    supplied: np.ndarray  # [M, A] token units
    borrowed: np.ndarray  # [M, A]
    holdings: sparse.csr_array  # [M, A] token units
    deposits_usd: sparse.csr_array  # [P, M]
    # accounts [U]
    account_kind: np.ndarray  # int8, AccountKind
    # positions [N] and position x asset [N, A]
    position_pool: np.ndarray  # int64
    position_account: np.ndarray  # int64
    collateral: sparse.csr_array  # [N, A] token units
    debt: sparse.csr_array  # [N, A] token units
    # option legs [L]
    option_position: np.ndarray  # int64
    option_asset: np.ndarray  # int64 underlying
    option_is_call: np.ndarray  # bool
    option_is_long: np.ndarray  # bool
    option_strike: np.ndarray  # USD
    option_expiry: np.ndarray  # float64 Unix seconds
    option_size: np.ndarray  # units of the underlying
    option_iv: np.ndarray  # annualised, NaN where not given
    # oracles [O]
    oracle_ids: np.ndarray  # [O] str
    oracle_kind: np.ndarray  # int8, OracleKind
    asset_oracle: np.ndarray  # [A] int64 oracle index or -1
    # oracle parameters [O], NaN where not set (the kind's default applies)
    oracle_deviation: np.ndarray = field(default_factory=lambda: np.zeros(0))
    oracle_heartbeat: np.ndarray = field(default_factory=lambda: np.zeros(0))  # seconds
    oracle_window: np.ndarray = field(default_factory=lambda: np.zeros(0))  # TWAP, seconds

    @property
    def num_positions(self) -> int:
        return len(self.position_ids)


def compile_system(snapshot: Snapshot) -> SystemArrays:
    """Compile ``snapshot`` into :class:`SystemArrays`."""
    t = snapshot.tables
    proto, assets, pools = t["protocols"], t["assets"], t["pools"]
    accounts, pos, oracles = t["accounts"], t["positions"], t["oracles"]
    pid, aid, mid = proto["id"], assets["id"], pools["id"]
    oracle_reads = assets["oracle"].map(oracles.set_index("id")["reads"])
    opt = t["position_options"]
    pc, pl = t["pool_collateral"], t["pool_lends"]
    return SystemArrays(
        protocol_ids=pid.to_numpy(dtype=object),
        asset_ids=aid.to_numpy(dtype=object),
        asset_symbols=assets["symbol"].to_numpy(dtype=object),
        pool_ids=mid.to_numpy(dtype=object),
        account_ids=accounts["id"].to_numpy(dtype=object),
        position_ids=pos["id"].to_numpy(dtype=object),
        as_of=snapshot.manifest.as_of.timestamp(),
        protocol_kind=_codes(proto["kind"], ProtocolKind),
        close_factor=proto["close_factor"].to_numpy(dtype=np.float64),
        full_close_threshold=proto["full_close_threshold"].to_numpy(dtype=np.float64),
        reserve_usd=proto["reserve_usd"].to_numpy(dtype=np.float64),
        asset_kind=_codes(assets["kind"], AssetKind),
        price=assets["price"].to_numpy(dtype=np.float64),
        decimals=assets["decimals"].to_numpy(dtype=np.int64),
        market_depth_usd=assets["market_depth_usd"].to_numpy(dtype=np.float64),
        issuer=_index(pid, assets["issuer"]),
        pegged_to=_index(aid, assets["pegged_to"]),
        oracle_pool=_index(mid, oracle_reads),
        pool_protocol=_index(pid, pools["protocol"]),
        pool_kind=_codes(pools["kind"], PoolKind),
        pool_fee=pools["fee"].to_numpy(dtype=np.float64),
        amplification=pools["amplification"].to_numpy(dtype=np.float64),
        maintenance_margin=pools["maintenance_margin"].to_numpy(dtype=np.float64),
        liquidation_penalty=pools["liquidation_penalty"].to_numpy(dtype=np.float64),
        accepts=_dense(pc.assign(one=1.0), mid, aid, "pool", "asset", "one") > 0,
        ltv=_dense(pc, mid, aid, "pool", "asset", "ltv"),
        liquidation_threshold=_dense(pc, mid, aid, "pool", "asset", "liquidation_threshold"),
        liquidation_bonus=_dense(pc, mid, aid, "pool", "asset", "liquidation_bonus"),
        supplied=_dense(pl, mid, aid, "pool", "asset", "supplied"),
        borrowed=_dense(pl, mid, aid, "pool", "asset", "borrowed"),
        holdings=_csr(t["pool_holdings"], mid, aid, "pool", "asset", "amount"),
        deposits_usd=_csr(t["protocol_deposits"], pid, mid, "protocol", "pool", "amount_usd"),
        account_kind=_codes(accounts["kind"], AccountKind),
        position_pool=_index(mid, pos["pool"]),
        position_account=_index(accounts["id"], pos["account"]),
        collateral=_csr(t["position_collateral"], pos["id"], aid, "position", "asset", "amount"),
        debt=_csr(t["position_debt"], pos["id"], aid, "position", "asset", "amount"),
        option_position=_index(pos["id"], opt["position"]),
        option_asset=_index(aid, opt["asset"]),
        option_is_call=(opt["kind"] == "call").to_numpy(dtype=bool),
        option_is_long=(opt["side"] == "long").to_numpy(dtype=bool),
        option_strike=opt["strike"].to_numpy(dtype=np.float64),
        option_expiry=opt["expiry"].to_numpy(dtype=np.float64),
        option_size=opt["size"].to_numpy(dtype=np.float64),
        option_iv=opt["implied_vol"].to_numpy(dtype=np.float64),
        oracle_ids=oracles["id"].to_numpy(dtype=object),
        oracle_kind=_codes(oracles["kind"], OracleKind),
        asset_oracle=_index(oracles["id"], assets["oracle"]),
        oracle_deviation=oracles["deviation_threshold"].to_numpy(dtype=np.float64),
        oracle_heartbeat=oracles["heartbeat_seconds"].to_numpy(dtype=np.float64),
        oracle_window=oracles["twap_window_seconds"].to_numpy(dtype=np.float64),
    )


@overload
def health_factor(weighted_collateral: float, debt_value: float) -> float: ...


@overload
def health_factor(weighted_collateral: ArrayLike, debt_value: ArrayLike) -> np.ndarray: ...


def health_factor(weighted_collateral: ArrayLike, debt_value: ArrayLike) -> float | np.ndarray:
    """The health factor, the one definition every store, the export and the cascade use::

        HF = W / D,   W = Σ_a c_a · p_a · LT_a,   D = Σ_b d_b · p_b

    ``W``: the position's collateral ``c_a`` (token units) valued at prices ``p_a`` (USD per
    unit) and weighted by its pool's liquidation thresholds ``LT_a`` (fractions); ``D``: its
    debt ``d_b`` at the same prices (USD). ``HF`` is unitless; ``HF < 1`` is liquidatable.
    A position with ``D <= 0`` (no debt) has ``HF = inf``. Shapes broadcast (``[...]`` with
    ``[...]``); two scalars give a ``float``. The callers compute ``W`` and ``D`` from their
    own layout (CSR rows here, graph edges in the embedded store, the ``_HEALTH`` Cypher
    fragment in Neo4j).

    >>> health_factor(16_500.0, 10_000.0)
    1.65
    >>> health_factor(np.array([1.0, 2.0, 3.0]), np.array([2.0, 0.0, 3.0]))
    array([0.5, inf, 1. ])
    """
    if type(weighted_collateral) is float and type(debt_value) is float:
        # the same ratio and convention on two Python floats, without numpy's ~5 µs per call
        # (the stores call this once per position)
        return weighted_collateral / debt_value if debt_value > 0 else math.inf
    w = np.asarray(weighted_collateral, dtype=np.float64)
    d = np.asarray(debt_value, dtype=np.float64)
    hf = np.divide(w, d, out=np.full(np.broadcast_shapes(w.shape, d.shape), np.inf),
                   where=d > 0)
    return float(hf) if hf.ndim == 0 else hf


def health_factors(system: SystemArrays, price: np.ndarray | None = None) -> np.ndarray:
    """:func:`health_factor` of every position: ``HF_i = Σ_a c_ia·p_a·LT_ma / Σ_b d_ib·p_b``.

    ``price`` is ``[A]`` (defaults to the snapshot's prices). Returns ``[N]``; ``inf`` for a
    position without debt.

    >>> from graph.snapshot import Snapshot
    >>> health_factors(compile_system(Snapshot.empty())).shape
    (0,)
    """
    p = system.price if price is None else np.asarray(price, dtype=np.float64)
    c, d = system.collateral, system.debt
    n = system.num_positions
    c_rows = np.repeat(np.arange(n), np.diff(c.indptr))
    lt = system.liquidation_threshold[system.position_pool[c_rows], c.indices]
    weighted = np.bincount(c_rows, weights=c.data * p[c.indices] * lt, minlength=n)
    return health_factor(weighted, d @ p)


def exposure_by_protocol(system: SystemArrays, *, near: float = 1.1) -> pd.DataFrame:
    """Positions, collateral and debt (USD, snapshot prices) per protocol, the number of
    positions with health factor below ``near`` and the median finite health factor; one row
    per protocol with positions, sorted by debt (largest first)."""
    hf = health_factors(system)
    proto = system.pool_protocol[system.position_pool]
    df = pd.DataFrame({
        "protocol": system.protocol_ids[proto],
        "collateral_usd": system.collateral @ system.price,
        "debt_usd": system.debt @ system.price,
        "near": hf < near,
        "hf": np.where(np.isfinite(hf), hf, np.nan),
    })
    out = df.groupby("protocol").agg(
        positions=("hf", "size"), collateral_usd=("collateral_usd", "sum"),
        debt_usd=("debt_usd", "sum"), below_near=("near", "sum"), median_hf=("hf", "median"))
    return out.sort_values("debt_usd", ascending=False)
