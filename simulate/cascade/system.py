"""The cascade's compiled view of an ecosystem: :class:`SystemArrays` plus everything both
kernels precompute once (liquidity, routes, backing, per-position entry arrays, the sorted
liquidation-threshold index of the fast kernel).

Liquidity. Every asset ``r`` that absorbs fire sales has a *virtual constant-product reserve*
``R_r`` (tokens): the sum of its reserves in constant-product AMM pools (exact), plus, for
stableswap pools, the constant-product reserve with the same 2% depth,
``depth / (0.98^(-1/2) - 1)`` (:func:`simulate.formulas.stableswap.stableswap_depth`); and an
*order book* of ``D_r`` tokens within 2% of mid (``market_depth_usd / price``), which follows
the square-root law ``1 - m = 0.02·sqrt(S_b / D)``. A sale split across constant-product pools
in proportion to their reserves moves every pool by exactly ``(R / (R + S))^2``, and a sale
split across square-root books in proportion to their depths moves each by
``0.02·sqrt(S / ΣD)``, so both sums are exact aggregates;
:func:`simulate.cascade.mechanics.sale_multiplier` splits a sale between the two at equal
prices. Wrapped assets (WETH) pool their liquidity with, and route their sales to, the asset
they wrap; an asset with no liquidity of its own and a peg target (a receipt token) is redeemed
into its target and sold there.

Options. A leg on an underlying given an implied-vol surface
(:class:`simulate.market.surface.IVSurface`, keyed by asset id or symbol) is marked from it
(``leg_surface``: the surface's index, -1 for a leg that keeps its stored ``implied_vol``);
``iv_source`` states per underlying which was used.

Backing. Protocol ``k`` owes ``L_k`` (USD at snapshot prices): what depositors supplied to its
lending pools, the stablecoin minted by its CDP vaults, and what its other pools hold (LP
tokens, staked ETH, vault shares). ``cross[k, j]``: USD that ``k`` deposited in ``j``'s pools.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse

from graph.export import SystemArrays, health_factor
from graph.vocab import AccountKind, AssetKind, PoolKind
from simulate.cascade.oracles import OracleArrays, compile_oracles
from simulate.formulas.stableswap import stableswap_depth
from simulate.market.surface import IVSurface

__all__ = ["CascadeSystem", "compile_cascade"]

_SECONDS_PER_YEAR = 365.0 * 86400.0
_DEPTH_MOVE = 0.02  # market_depth_usd is the depth within 2% of mid
_CP_DEPTH = 0.98 ** -0.5 - 1.0  # constant product: selling this x reserve moves price 2%

_LENDING = {list(PoolKind).index(PoolKind.LENDING), list(PoolKind).index(PoolKind.CDP)}
_MARGIN = {list(PoolKind).index(PoolKind.OPTIONS), list(PoolKind).index(PoolKind.PERP)}
_CDP = list(PoolKind).index(PoolKind.CDP)
_LEND = list(PoolKind).index(PoolKind.LENDING)
_AMM = list(PoolKind).index(PoolKind.AMM)
_WRAPPED = list(AssetKind).index(AssetKind.WRAPPED)
_STABLE = list(AssetKind).index(AssetKind.STABLE)
_DEALER = list(AccountKind).index(AccountKind.DEALER)


def _csr_rows(m: sparse.csr_array, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray,
                                                               np.ndarray]:
    """(indptr, indices, data) of the rows ``rows`` of ``m``."""
    sub = m[rows]
    sub.sort_indices()
    return (np.asarray(sub.indptr, dtype=np.int64), np.asarray(sub.indices, dtype=np.int64),
            np.asarray(sub.data, dtype=np.float64))


@dataclass(frozen=True, eq=False)
class CascadeSystem:
    """Arrays both kernels read. ``NL`` lending positions (in lending or CDP pools, with debt),
    ``NO`` margin positions (in options or perp pools, with option legs), ``L`` their legs,
    ``G`` lending groups (positions sharing pool, collateral asset set and debt asset set)."""

    arrays: SystemArrays
    # assets [A]
    price0: np.ndarray
    peg_target: np.ndarray  # int64 or -1
    peg_order: np.ndarray  # assets with a peg target, targets before dependents
    issuer: np.ndarray  # int64 or -1
    route: np.ndarray  # int64: the asset whose liquidity absorbs sales of each asset
    reserve: np.ndarray  # virtual constant-product reserve of each route asset, tokens
    book_depth: np.ndarray  # order-book depth within 2% of each route asset, tokens
    stable: np.ndarray  # bool
    # protocols [P], pools [M]
    close_factor: np.ndarray
    full_close_threshold: np.ndarray
    reserve_usd: np.ndarray
    liabilities_usd: np.ndarray
    cross: np.ndarray  # [P, P] USD deposited by row protocol in column protocol's pools
    pool_protocol: np.ndarray
    # lending positions [NL]; collateral entries [EC], debt entries [ED]
    lend_pos: np.ndarray
    lend_pool: np.ndarray
    c_ptr: np.ndarray
    c_asset: np.ndarray
    c_amount: np.ndarray
    c_lt: np.ndarray
    c_lb: np.ndarray
    d_ptr: np.ndarray
    d_asset: np.ndarray
    d_amount: np.ndarray
    # the same entries padded to the widest position: [NL, kc] and [NL, kd] (amount 0 = none)
    cm_asset: np.ndarray
    cm_amount: np.ndarray
    cm_lt: np.ndarray
    cm_lb: np.ndarray
    dm_asset: np.ndarray
    dm_amount: np.ndarray
    # the sorted index: lending positions ordered by (group, hf0)
    lend_group: np.ndarray  # [NL]
    order: np.ndarray
    keys: np.ndarray  # group + hf0 / (1 + hf0), ascending
    group_start: np.ndarray  # [G + 1] into order
    group_c_ptr: np.ndarray
    group_c_asset: np.ndarray
    group_d_ptr: np.ndarray
    group_d_asset: np.ndarray
    # margin positions [NO]
    opt_pos: np.ndarray
    opt_mm: np.ndarray
    opt_penalty: np.ndarray
    opt_dealer: np.ndarray  # bool
    oc_ptr: np.ndarray
    oc_asset: np.ndarray
    oc_amount: np.ndarray
    leg_ptr: np.ndarray  # [NO + 1]
    leg_asset: np.ndarray
    leg_call: np.ndarray
    leg_sign: np.ndarray  # +1 long, -1 short
    leg_size: np.ndarray
    leg_strike: np.ndarray
    leg_iv: np.ndarray
    leg_tau0: np.ndarray  # years to expiry at the snapshot
    leg_instrument: np.ndarray  # [L] index of the leg's distinct contract
    inst_leg: np.ndarray  # [I] one leg of each distinct contract (asset, kind, strike, iv, tau)
    excess: sparse.csr_array  # [NO, A + I]: margin excess = excess @ [prices, marks per unit]
    # implied-vol surfaces: legs marked from surface leg_surface[l] (-1: the stored implied vol)
    leg_surface: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    surfaces: tuple[IVSurface, ...] = ()
    surface_asset: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    #: per underlying asset id with option legs: "surface" or "stored"
    iv_source: dict[str, str] = field(default_factory=dict)
    #: each asset's oracle (simulate.cascade.oracles); None: compiled on first use
    oracles: OracleArrays | None = None

    @property
    def num_assets(self) -> int:
        return len(self.price0)

    @property
    def num_protocols(self) -> int:
        return len(self.reserve_usd)

    @property
    def num_pools(self) -> int:
        return len(self.pool_protocol)

    @property
    def num_groups(self) -> int:
        return len(self.group_start) - 1


def _padded(ptr: np.ndarray, *columns: np.ndarray) -> list[np.ndarray]:
    """CSR rows as ``[rows, widest]`` matrices, zero-padded."""
    n = len(ptr) - 1
    counts = np.diff(ptr)
    width = max(int(counts.max()) if n else 0, 1)
    owner = np.repeat(np.arange(n), counts)
    slot = np.arange(len(owner)) - ptr[owner]
    out = []
    for c in columns:
        m = np.zeros((n, width), dtype=c.dtype)
        m[owner, slot] = c
        out.append(m)
    return out


def _excess_matrix(s: SystemArrays, opt: np.ndarray, oc_ptr: np.ndarray, oc_asset: np.ndarray,
                   oc_amount: np.ndarray, leg_ptr: np.ndarray, leg_asset: np.ndarray,
                   leg_sign: np.ndarray, leg_size: np.ndarray, leg_instrument: np.ndarray,
                   mm: np.ndarray, num_instruments: int) -> sparse.csr_array:
    """``excess_j = Σ c·p + Σ sign·size·mark - mm · Σ_short size·p_u`` as a sparse matrix over
    the features ``[prices (A), marks per unit (I)]``."""
    a_n, n_o = len(s.asset_ids), len(opt)
    c_row = np.repeat(np.arange(n_o), np.diff(oc_ptr))
    l_row = np.repeat(np.arange(n_o), np.diff(leg_ptr))
    short = leg_sign < 0
    rows = np.concatenate([c_row, l_row, l_row[short]])
    cols = np.concatenate([oc_asset, a_n + leg_instrument, leg_asset[short]])
    vals = np.concatenate([oc_amount, leg_sign * leg_size,
                           -mm[l_row[short]] * leg_size[short]])
    return sparse.csr_array(sparse.coo_array((vals, (rows, cols)),
                                             shape=(n_o, a_n + num_instruments)))


def _peg_order(peg: np.ndarray) -> np.ndarray:
    depth = np.zeros(len(peg), dtype=np.int64)
    for a in range(len(peg)):
        seen, b = 0, a
        while peg[b] >= 0:
            b = int(peg[b])
            seen += 1
            if seen > len(peg):
                raise ValueError(f"asset pegs form a cycle through asset index {a}")
        depth[a] = seen
    has = np.flatnonzero(peg >= 0)
    return has[np.argsort(depth[has], kind="stable")]


def _liquidity(s: SystemArrays) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(route [A], reserve [A], book_depth [A]) as described in the module docstring."""
    a_n = len(s.asset_ids)
    own = np.zeros(a_n)
    h = s.holdings.tocoo()
    for m, a, x in zip(h.row, h.col, h.data, strict=True):
        if s.pool_kind[m] != _AMM:
            continue
        amp = s.amplification[m]
        if math.isnan(amp):
            own[a] += x
            continue
        row = s.holdings[[m]].tocoo()
        coins = row.col
        if s.pegged_to[a] not in coins:
            continue  # selling the pool's base coin (ETH for stETH) buys no stable value
        bal = row.data * s.price[coins] / s.price[a]  # balances in units of coin a
        i = int(np.flatnonzero(coins == a)[0])
        own[a] += stableswap_depth(bal, float(amp), i, _DEPTH_MOVE) / _CP_DEPTH
    book = s.market_depth_usd / s.price  # tokens within 2% of mid (square-root law)
    route = np.arange(a_n)
    for a in range(a_n):
        b = a
        while s.pegged_to[b] >= 0 and (s.asset_kind[b] == _WRAPPED
                                       or own[b] + book[b] == 0):
            b = int(s.pegged_to[b])
        route[a] = b
    reserve = np.zeros(a_n)
    depth = np.zeros(a_n)
    for a in range(a_n):
        reserve[route[a]] += own[a] * s.price[a] / s.price[route[a]]
        depth[route[a]] += book[a] * s.price[a] / s.price[route[a]]
    return route, reserve, depth


def _liabilities(s: SystemArrays) -> np.ndarray:
    p_n = len(s.protocol_ids)
    held = np.asarray(s.holdings @ s.price)
    per_pool = np.where(s.pool_kind == _LEND, s.supplied @ s.price,
                        np.where(s.pool_kind == _CDP, s.borrowed @ s.price, held))
    return np.bincount(s.pool_protocol, weights=per_pool, minlength=p_n)


def _groups(pool: np.ndarray, c_ptr: np.ndarray, c_asset: np.ndarray, d_ptr: np.ndarray,
            d_asset: np.ndarray, hf0: np.ndarray) -> tuple[np.ndarray, ...]:
    n = len(pool)
    sig: dict[tuple[int, tuple[int, ...], tuple[int, ...]], int] = {}
    gid = np.empty(n, dtype=np.int64)
    for i in range(n):
        key = (int(pool[i]), tuple(c_asset[c_ptr[i]:c_ptr[i + 1]].tolist()),
               tuple(d_asset[d_ptr[i]:d_ptr[i + 1]].tolist()))
        gid[i] = sig.setdefault(key, len(sig))
    g_n = len(sig)
    u = np.where(np.isfinite(hf0), hf0 / (1.0 + hf0), 1.0)
    order = np.lexsort((u, gid))
    keys = gid[order] + u[order]
    group_start = np.searchsorted(gid[order], np.arange(g_n + 1))
    sets = list(sig)
    gc = [np.array(k[1], dtype=np.int64) for k in sets]
    gd = [np.array(k[2], dtype=np.int64) for k in sets]

    def ptr(parts: list[np.ndarray]) -> np.ndarray:
        return np.concatenate([[0], np.cumsum([len(x) for x in parts])]).astype(np.int64)

    def flat(parts: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    return (gid, order.astype(np.int64), keys, group_start.astype(np.int64), ptr(gc),
            flat(gc), ptr(gd), flat(gd))


def _surfaces(s: SystemArrays, surfaces: Mapping[str, IVSurface], leg_asset: np.ndarray
              ) -> tuple[np.ndarray, tuple[IVSurface, ...], np.ndarray, dict[str, str]]:
    """(leg_surface [L], surfaces, surface_asset, iv_source) for ``surfaces`` keyed by asset id
    or unique symbol; a surface for an asset that no option leg is on is an error."""
    from simulate.cascade.scenario import resolve_asset  # scenario imports this module's users

    leg_surface = np.full(len(leg_asset), -1, dtype=np.int64)
    got: list[IVSurface] = []
    where: list[int] = []
    for key in sorted(surfaces):
        a = resolve_asset(s, key, what="surface underlying")
        if a in where:
            raise ValueError(f"two surfaces given for asset {s.asset_ids[a]} (key {key!r})")
        if not (leg_asset == a).any():
            raise ValueError(f"surface for {key!r}: no option leg of the snapshot is on "
                             f"asset {s.asset_ids[a]}")
        leg_surface[leg_asset == a] = len(got)
        got.append(surfaces[key])
        where.append(a)
    source = {str(s.asset_ids[a]): "surface" if a in where else "stored"
              for a in np.unique(leg_asset)}
    return leg_surface, tuple(got), np.array(where, dtype=np.int64), source


def compile_cascade(s: SystemArrays, surfaces: Mapping[str, IVSurface] | None = None
                    ) -> CascadeSystem:
    """Precompute the cascade's arrays for ``s`` (once per snapshot); option legs on an
    underlying that ``surfaces`` (asset id or symbol → surface) names are marked from it."""
    route, reserve, book_depth = _liquidity(s)
    p_n = len(s.protocol_ids)
    cross = np.zeros((p_n, p_n))
    dep = s.deposits_usd.tocoo()
    np.add.at(cross, (dep.row, s.pool_protocol[dep.col]), dep.data)

    # lending positions
    has_debt = np.diff(s.debt.indptr) > 0
    lend = np.flatnonzero(np.isin(s.pool_kind[s.position_pool], list(_LENDING)) & has_debt)
    c_ptr, c_asset, c_amount = _csr_rows(s.collateral, lend)
    d_ptr, d_asset, d_amount = _csr_rows(s.debt, lend)
    lend_pool = s.position_pool[lend]
    owner = np.repeat(np.arange(len(lend)), np.diff(c_ptr))
    c_lt = s.liquidation_threshold[lend_pool[owner], c_asset]
    c_lb = s.liquidation_bonus[lend_pool[owner], c_asset]
    w = np.bincount(owner, weights=c_amount * s.price[c_asset] * c_lt, minlength=len(lend))
    dv = np.bincount(np.repeat(np.arange(len(lend)), np.diff(d_ptr)),
                     weights=d_amount * s.price[d_asset], minlength=len(lend))
    hf0 = health_factor(w, dv)
    gid, order, keys, group_start, gcp, gca, gdp, gda = _groups(lend_pool, c_ptr, c_asset, d_ptr,
                                                           d_asset, hf0)

    # margin positions and their legs
    legs_by_pos = np.bincount(s.option_position, minlength=s.num_positions)
    opt = np.flatnonzero(np.isin(s.pool_kind[s.position_pool], list(_MARGIN))
                         & (legs_by_pos > 0))
    leg_order = np.argsort(s.option_position, kind="stable")
    leg_order = leg_order[np.isin(s.option_position[leg_order], opt)]
    leg_ptr = np.concatenate([[0], np.cumsum(legs_by_pos[opt])]).astype(np.int64)
    oc_ptr, oc_asset, oc_amount = _csr_rows(s.collateral, opt)
    iv = s.option_iv[leg_order].copy()
    asset = s.option_asset[leg_order]
    for a in np.unique(asset[np.isnan(iv)]):
        known = s.option_iv[(s.option_asset == a) & ~np.isnan(s.option_iv)]
        if len(known) == 0:
            raise ValueError(f"option legs on {s.asset_ids[a]} have no implied_vol and no "
                             f"other leg on it gives one")
        iv[np.isnan(iv) & (asset == a)] = float(np.median(known))
    pool = s.position_pool[opt]
    mm = np.nan_to_num(s.maintenance_margin[pool], nan=0.0)
    pen = np.nan_to_num(s.liquidation_penalty[pool], nan=0.0)

    tau0 = np.maximum(s.option_expiry[leg_order] - s.as_of, 0.0) / _SECONDS_PER_YEAR
    call = s.option_is_call[leg_order]
    contract = np.column_stack([asset, call, s.option_strike[leg_order], iv, tau0])
    _, inst_leg, leg_instrument = np.unique(contract, axis=0, return_index=True,
                                            return_inverse=True)
    leg_instrument = leg_instrument.reshape(-1).astype(np.int64)
    leg_ptr_sign = np.where(s.option_is_long[leg_order], 1.0, -1.0)
    leg_surface, surf, surf_asset, iv_source = _surfaces(s, surfaces or {}, asset)
    cm_asset, cm_amount, cm_lt, cm_lb = _padded(c_ptr, c_asset, c_amount, c_lt, c_lb)
    dm_asset, dm_amount = _padded(d_ptr, d_asset, d_amount)
    return CascadeSystem(
        arrays=s,
        price0=s.price.astype(np.float64),
        peg_target=s.pegged_to,
        peg_order=_peg_order(s.pegged_to),
        issuer=s.issuer,
        route=route,
        reserve=reserve,
        book_depth=book_depth,
        stable=s.asset_kind == _STABLE,
        close_factor=s.close_factor,
        full_close_threshold=s.full_close_threshold,
        reserve_usd=s.reserve_usd,
        liabilities_usd=_liabilities(s),
        cross=cross,
        pool_protocol=s.pool_protocol,
        lend_pos=lend,
        lend_pool=lend_pool,
        c_ptr=c_ptr, c_asset=c_asset, c_amount=c_amount, c_lt=c_lt, c_lb=c_lb,
        d_ptr=d_ptr, d_asset=d_asset, d_amount=d_amount,
        cm_asset=cm_asset, cm_amount=cm_amount, cm_lt=cm_lt, cm_lb=cm_lb,
        dm_asset=dm_asset, dm_amount=dm_amount,
        lend_group=gid, order=order, keys=keys, group_start=group_start,
        group_c_ptr=gcp, group_c_asset=gca, group_d_ptr=gdp, group_d_asset=gda,
        opt_pos=opt,
        opt_mm=mm,
        opt_penalty=pen,
        opt_dealer=s.account_kind[s.position_account[opt]] == _DEALER,
        oc_ptr=oc_ptr, oc_asset=oc_asset, oc_amount=oc_amount,
        leg_ptr=leg_ptr,
        leg_asset=asset,
        leg_call=call,
        leg_sign=leg_ptr_sign,
        leg_size=s.option_size[leg_order],
        leg_strike=s.option_strike[leg_order],
        leg_iv=iv,
        leg_tau0=tau0,
        leg_instrument=leg_instrument,
        inst_leg=inst_leg.astype(np.int64),
        excess=_excess_matrix(s, opt, oc_ptr, oc_asset, oc_amount, leg_ptr, asset, leg_ptr_sign,
                              s.option_size[leg_order], leg_instrument, mm, len(inst_leg)),
        leg_surface=leg_surface,
        surfaces=surf,
        surface_asset=surf_asset,
        iv_source=iv_source,
        oracles=compile_oracles(s),
    )
