"""Liquidation economics and two-way market flow, shared by both kernels (docs/architecture.md
§4.3, §4.4, §4.6).

**Net pressure.** Each route asset ``r`` carries a signed pressure ``N_r`` (tokens): sold minus
bought, netted within a round and carried across rounds (``impact_recovery`` of it is absorbed
between rounds). Sales move the price down through :func:`simulate.cascade.mechanics.impact`;
purchases move it up through the same liquidity, mirrored (:func:`purchase_multiplier`):

- constant-product reserve ``R`` (``x·y = k``, price ``y/x``): buying ``B`` tokens leaves
  ``x = R - B`` and ``y = k/(R - B)``, so the price is multiplied by ``(R / (R - B))^2``; the
  AMM sells ``B_a(m) = R·(1 - m^(-1/2))`` to reach price multiplier ``m``. (A sale: ``x = R + S``,
  ``(R / (R + S))^2``, the same invariant.)
- order book of ``D`` tokens within 2% (square-root law, as for sales):
  ``m - 1 = 0.02·sqrt(B_b / D)``, ``B_b(m) = D·((m - 1)/0.02)^2``.
- both: the buyer splits at equal prices, ``B_a(m) + B_b(m) = B``, solved by bisection on
  ``[1, min(one-venue prices)]`` (64 halvings, a fixed count).

A buy cannot drain an AMM with no book: the pressure is floored at ``-MAX_BUY_SHARE·R``
(price at most ×100); buys of an asset with no liquidity at all move nothing.

**Liquidators** (:func:`liquidator_piece`). The protocol's rule gives the full liquidation
(``mechanics.liquidation``): collateral tokens ``c_a`` seized and debt tokens ``d_b`` repaid.
In route tokens, the liquidator's own net trade on route ``r`` is
``n_r = Σ_{a→r} c_a·p_a/p_r - Σ_{b→r} d_b·p_b/p_r`` (the debt part only with ``debt_impact``:
otherwise the debt is bought off-market at its price). Capacity: a liquidation trades at most
``κ·depth_r`` route tokens per round on each route, ``depth_r = (0.98^(-1/2) - 1)·R_r + D_r``
the tokens whose sale moves the price 2% (exact: the constant-product reserve absorbs
``(0.98^(-1/2) - 1)·R`` and the book ``D`` at 2%), so it takes the piece
``q = min(1, min_r κ·depth_r / |n_r|)`` (``q = 0`` on a route with no depth; ``κ`` =
``liquidation_capacity``, none: ``q = 1``). The piece is taken when its profit is positive::

    profit = q·Σ_r n_r·p_r·ē_r - gas
    ē_r = (1 + 4·M_r(N_r + q·n_r/2)/M_r(N_r) + M_r(N_r + q·n_r)/M_r(N_r)) / 6

``M`` the net-pressure multiplier, ``ē`` the liquidator's average execution price relative to
the round's price over its own trade (Simpson's rule over the trade; the trades of other
liquidators in the same round are not seen). Without impact the profit is
``seized - repaid - gas = LB·repaid - gas``.
"""

from __future__ import annotations

import numpy as np

from simulate.cascade.mechanics import impact, route_sales, sale_multiplier
from simulate.cascade.params import CascadeParams
from simulate.cascade.system import CascadeSystem

__all__ = [
    "MAX_BUY_SHARE",
    "depth_tokens",
    "lending_pieces",
    "liquidator_piece",
    "net_impact",
    "purchase_multiplier",
    "underwater_shortfall",
    "update_pressure",
]

#: The most of a constant-product reserve (with no order book) that net buying can take.
MAX_BUY_SHARE = 0.9
_BOOK_MOVE = 0.02  # market_depth_usd is the depth within 2% of mid
_CP_DEPTH = 0.98 ** -0.5 - 1.0  # constant product: selling this × reserve moves the price 2%


def purchase_multiplier(amm: np.ndarray, book: np.ndarray, bought: np.ndarray) -> np.ndarray:
    """Price multiplier ``m ≥ 1`` after ``bought ≥ 0`` tokens were bought from a
    constant-product reserve of ``amm`` tokens and an order book of ``book`` tokens within 2%
    (broadcasts; see the module docstring). AMM alone: ``(R/(R - B))^2`` (inf from ``B ≥ R``);
    book alone: ``1 + 0.02·sqrt(B/D)``; no liquidity: 1."""
    amm, book, bought = np.broadcast_arrays(np.asarray(amm, dtype=float),
                                            np.asarray(book, dtype=float),
                                            np.asarray(bought, dtype=float))
    with np.errstate(invalid="ignore", divide="ignore"):
        cp = np.where((amm > 0) & (bought < amm), (amm / (amm - bought)) ** 2, np.inf)
        sq = np.where(book > 0, 1.0 + _BOOK_MOVE * np.sqrt(bought / book), np.inf)
    m = np.where(amm > 0, np.where(book > 0, np.minimum(cp, sq), cp), sq)
    m = np.where((amm > 0) | (book > 0), m, 1.0)
    m = np.where(bought > 0, m, 1.0)
    both = (amm > 0) & (book > 0) & (bought > 0)
    if both.any():
        r, d, b = amm[both], book[both], bought[both]
        lo, hi = np.ones_like(b), m[both]
        for _ in range(64):
            mid = 0.5 * (lo + hi)
            absorbed = r * (1.0 - 1.0 / np.sqrt(mid)) + d * ((mid - 1.0) / _BOOK_MOVE) ** 2
            over = absorbed > b  # the price need not rise this far
            lo = np.where(over, lo, mid)
            hi = np.where(over, mid, hi)
        m = m.copy()
        m[both] = 0.5 * (lo + hi)
    return m


def net_impact(cs: CascadeSystem, net: np.ndarray) -> np.ndarray:
    """Price multiplier ``[..., A]`` of the net pressure ``net [..., A]`` (route tokens sold
    minus bought): :func:`simulate.cascade.mechanics.impact` of a positive pressure,
    :func:`purchase_multiplier` of a negative one."""
    sold = impact(cs, np.maximum(net, 0.0))
    return sold * purchase_multiplier(cs.reserve, cs.book_depth, np.maximum(-net, 0.0))


def update_pressure(cs: CascadeSystem, net: np.ndarray, routed: np.ndarray,
                    recovery: float) -> np.ndarray:
    """The next round's net pressure: ``N·(1 - recovery) + routed`` (``routed``: the round's
    signed route tokens, :func:`simulate.cascade.mechanics.route_sales`), floored at
    ``-MAX_BUY_SHARE·R`` on a route with no order book (0 with no liquidity at all)."""
    floor = np.where(cs.book_depth > 0, -np.inf, -MAX_BUY_SHARE * cs.reserve)
    return np.maximum(net * (1.0 - recovery) + routed, floor)


def depth_tokens(cs: CascadeSystem) -> np.ndarray:
    """Tokens ``[A]`` of each route asset whose sale moves its price 2%:
    ``(0.98^(-1/2) - 1)·R + D``."""
    return _CP_DEPTH * cs.reserve + cs.book_depth


def liquidator_piece(cs: CascadeSystem, params: CascadeParams, net: np.ndarray,
                     price: np.ndarray, coll: np.ndarray, debt: np.ndarray) -> np.ndarray:
    """Share ``q [...]`` of each full liquidation that a liquidator takes this round (0: none).

    ``net [..., A]``: the path's net pressure at the start of the round; ``price [..., A]``:
    the round's prices; ``coll``, ``debt [..., A]``: tokens of each asset the full liquidation
    seizes and repays. See the module docstring for capacity and profit.
    """
    cap, check = params.liquidation_capacity, params.liquidator_profit_check
    shape = np.shape(coll)[:-1]
    if cap is None and not check:
        return np.ones(shape)
    rc = route_sales(cs, coll, price)
    rd = route_sales(cs, debt, price)
    own = rc - rd if params.debt_impact else rc  # what moves the market
    if cap is None:
        q = np.ones(shape)
    else:
        lim = cap * depth_tokens(cs)
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.where(own != 0, lim / np.abs(own), np.inf)
        q = np.minimum(share.min(axis=-1), 1.0)
    if not check:
        return q
    flow = rc - rd
    rows, cols = np.nonzero(np.reshape(flow, (-1, cs.num_assets)))  # only the routes traded
    net_e = np.reshape(net, (-1, cs.num_assets))[rows, cols]
    qo = np.reshape(q, -1)[rows] * np.reshape(own, (-1, cs.num_assets))[rows, cols]
    amm, book = cs.reserve[cols], cs.book_depth[cols]
    # the round's multiplier is shared by every liquidation on a path's route: once per pair
    pairs, inverse = np.unique(np.stack([cols.astype(float), net_e]), axis=1,
                               return_inverse=True)
    uc = pairs[0].astype(np.int64)
    now = _multiplier(cs.reserve[uc], cs.book_depth[uc], pairs[1])[np.reshape(inverse, -1)]
    with np.errstate(divide="ignore", invalid="ignore"):
        half = np.where(now > 0, _multiplier(amm, book, net_e + 0.5 * qo) / now, 0.0)
        full = np.where(now > 0, _multiplier(amm, book, net_e + qo) / now, 0.0)
        avg = (1.0 + 4.0 * half + full) / 6.0
        value = (np.reshape(flow, (-1, cs.num_assets))[rows, cols]
                 * np.reshape(price, (-1, cs.num_assets))[rows, cols] * avg)
    total = np.bincount(rows, weights=value, minlength=int(np.prod(shape, dtype=np.int64)))
    profit = q * np.reshape(total, shape) - params.liquidator_gas_usd
    return np.where((q > 0) & (profit > 0), q, 0.0)


def _multiplier(amm: np.ndarray, book: np.ndarray, net: np.ndarray) -> np.ndarray:
    """:func:`net_impact` for given liquidity (``sale_multiplier`` of a sale, the mirror of a
    purchase)."""
    return (sale_multiplier(amm, book, np.maximum(net, 0.0))
            * purchase_multiplier(amm, book, np.maximum(-net, 0.0)))


def underwater_shortfall(cv: np.ndarray, dv: np.ndarray) -> np.ndarray:
    """Bad debt ``max(dv - cv, 0)`` of open positions at the end of a path (collateral worth
    ``cv``, debt ``dv``, USD)."""
    return np.maximum(np.asarray(dv, dtype=float) - np.asarray(cv, dtype=float), 0.0)


def lending_pieces(cs: CascadeSystem, params: CascadeParams, net: np.ndarray,
                   price: np.ndarray, pos: np.ndarray, kc: np.ndarray, kd: np.ndarray,
                   phi: np.ndarray, cf: np.ndarray, bad: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`liquidator_piece` for liquidations ``[h]`` of lending positions ``pos [h]`` (open
    shares ``kc``, ``kd``; the protocol's ``phi``, ``cf`` and ``bad``, USD at market) at their
    paths' ``net`` and ``price [h, A]``. Returns ``(q [h], coll [h, A], repay [h, A])``: the
    share taken, and the tokens the full liquidation seizes and repays (the repaid share of
    every debt is ``cf - bad / dv``)."""
    h, a_n = len(pos), cs.num_assets
    rows = np.arange(h)[:, None]
    flat = (rows * a_n + cs.cm_asset[pos]).ravel()
    taken = (phi[:, None] * (cs.cm_amount[pos] * kc[:, None])).ravel()
    coll = np.bincount(flat, weights=taken, minlength=h * a_n).reshape(h, a_n)
    flat = (rows * a_n + cs.dm_asset[pos]).ravel()
    owed = np.bincount(flat, weights=(cs.dm_amount[pos] * kd[:, None]).ravel(),
                       minlength=h * a_n).reshape(h, a_n)
    dv = (owed * price).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = np.where(dv > 0, cf - bad / np.where(dv > 0, dv, 1.0), 0.0)
    repay = rho[:, None] * owed
    return liquidator_piece(cs, params, net, price, coll, repay), coll, repay
