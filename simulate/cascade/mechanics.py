"""Price formation shared by both kernels: pure functions over a leading path axis ``[...]``.

One round of a path reads prices ``p = p0 · X · E`` where ``X`` is the exogenous multiplier of
the scenario and ``E`` the endogenous one. ``E`` is built from each asset's own fire-sale
impact ``I_a`` (``S_a`` tokens sold so far, split between its constant-product reserve
``R_a`` and its order book of 2% depth ``D_a`` at equal prices: ``(R_a / (R_a + S_a))^2``
with the AMM alone, ``1 - 0.02·sqrt(S_a / D_a)`` with the book alone; :func:`sale_multiplier`),
its issuer's backing ratio ``β``, and its peg target's ``E``:
``E_a = I_a · β_issuer(a) · E_peg(a)`` (WETH inherits ETH's fire-sale, stETH Lido's backing
and ETH's moves, wstETH stETH's).

Backing is a fixed point over cross-holdings (docs/architecture.md §4.5), solved by
:func:`simulate.clearing.backing_ratios`: protocol ``k`` with bad debt ``b_k``, reserve ``r_k``
and deposits ``cross[k, j]`` in protocols that are themselves under-backed loses
``loss_k = b_k + Σ_j cross[k, j] (1 - β_j)`` and is backed at
``β_k = clip(1 - max(loss_k - r_k, 0) / L_k, 0, 1)``: the reserve absorbs both.

Options are marked with :mod:`simulate.formulas.black_scholes` at the vol of
:func:`leg_vols`: the leg's stored implied vol times the underlying's IV multiplier, or, on an
underlying with a surface, the surface read at the leg's strike against the current spot
(sticky moneyness) times that multiplier, with its spot slope for the smile-consistent delta.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from simulate.cascade.paths import Shocks
from simulate.cascade.system import CascadeSystem
from simulate.clearing import backing_ratios, cross_deposit_losses

__all__ = [
    "asset_stress",
    "backing",
    "cross_loss",
    "endogenous",
    "impact",
    "leg_vols",
    "liquidation",
    "margin_closeout",
    "route_sales",
    "sale_multiplier",
    "surface_response",
]

_BOOK_MOVE = 0.02  # an order book's market_depth_usd is its depth within 2% of mid

def liquidation(cv: ArrayLike, lbv: ArrayLike, dv: ArrayLike, hf: ArrayLike,
                close_factor: ArrayLike, full_close_threshold: ArrayLike,
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One liquidation of positions with ``HF < 1`` (broadcasts over positions).

    ``cv``: collateral value, ``lbv``: ``Σ_a value_a · LB_a`` (so ``LB = lbv / cv`` is the
    value-weighted bonus), ``dv``: debt value, all USD. The close factor is ``close_factor``,
    or 1 below ``full_close_threshold``; the liquidator repays that share of every debt and
    seizes a fraction ``φ`` of every collateral asset worth ``repaid · (1 + LB)``. When that is
    more than the collateral, all of it is seized, ``repaid = cv / (1 + LB)`` and the rest of
    the debt is bad debt.

    Returns ``(phi, cf, seized, repaid, bad)``: collateral fraction seized, share of the debt
    closed (1 when the collateral ran out), seized value, repaid value, bad debt (USD).
    """
    cv, lbv, dv = (np.asarray(v, dtype=float) for v in (cv, lbv, dv))
    cf = np.where(np.asarray(hf) >= full_close_threshold, close_factor, 1.0)
    repay = cf * dv
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        lb = np.where(cv > 0, lbv / np.where(cv > 0, cv, 1.0), 0.0)
        need = repay * (1.0 + lb)
        enough = need < cv
        phi = np.where(enough, need / np.where(cv > 0, cv, 1.0), 1.0)
        repaid = np.where(enough, repay, cv / (1.0 + lb))
    seized = np.where(enough, phi * cv, cv)
    bad = np.where(enough, 0.0, dv - repaid)
    return phi, np.where(enough, cf, 1.0), seized, repaid, bad


def margin_closeout(cv: ArrayLike, shorts: ArrayLike, longs: ArrayLike, penalty: ArrayLike,
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Close margin-called option positions (broadcasts): shorts (marked ``shorts`` USD) are
    bought back at mark × (1 + ``penalty``), longs sold at mark; the net cost is paid with a
    fraction ``φ`` of every collateral asset (worth ``cv`` in all), and what the collateral
    cannot pay is bad debt of the venue. Returns ``(phi, seized, bad)``."""
    cv = np.asarray(cv, dtype=float)
    cost = np.asarray(shorts, dtype=float) * (1.0 + np.asarray(penalty)) - np.asarray(longs)
    pay = cost > 0
    enough = cost < cv
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        phi = np.where(pay, np.where(enough, cost / np.where(cv > 0, cv, 1.0), 1.0), 0.0)
    seized = np.where(pay, np.where(enough, phi * cv, cv), 0.0)
    bad = np.where(pay & ~enough, cost - cv, 0.0)
    return phi, seized, bad


def sale_multiplier(amm: np.ndarray, book: np.ndarray, sold: np.ndarray) -> np.ndarray:
    """Price multiplier ``m`` after ``sold`` tokens went into a constant-product reserve of
    ``amm`` tokens and an order book with ``book`` tokens of depth within 2% (broadcasts).

    The seller splits the sale so that both venues end at the same price (arbitrage would
    align them otherwise): the AMM takes ``S_a(m) = R·(m^(-1/2) - 1)`` (constant product,
    ``m = (R / (R + S_a))^2``), the book ``S_b(m) = D·((1 - m) / 0.02)^2`` (square-root law
    ``1 - m = 0.02·sqrt(S_b / D)``, so selling ``D`` moves it 2%), and ``m`` solves
    ``S_a(m) + S_b(m) = S``. Closed forms with one venue: ``(R / (R + S))^2``, or
    ``max(1 - 0.02·sqrt(S / D), 0)``; with both, bisection on the bracket
    ``[max of the two one-venue prices, max of the prices when each venue takes S/2]`` (the
    total absorbed falls as ``m`` rises; 64 halvings, a fixed count, so a path's result does
    not depend on the others it is computed with). No liquidity at all: 0 once anything is
    sold.
    """
    amm, book, sold = np.broadcast_arrays(np.asarray(amm, dtype=float),
                                          np.asarray(book, dtype=float),
                                          np.asarray(sold, dtype=float))
    with np.errstate(invalid="ignore", divide="ignore"):
        cp = np.where(amm > 0, (amm / (amm + sold)) ** 2, 0.0)
        sq = np.where(book > 0, np.maximum(1.0 - _BOOK_MOVE * np.sqrt(sold / book), 0.0), 0.0)
    m = np.where(amm > 0, cp, sq)
    m = np.where((amm > 0) | (book > 0), m, np.where(sold > 0, 0.0, 1.0))
    both = (amm > 0) & (book > 0) & (sold > 0)
    if both.any():
        r, d, s = amm[both], book[both], sold[both]
        lo = np.maximum(cp[both], sq[both])
        hi = np.maximum((r / (r + 0.5 * s)) ** 2,
                        np.maximum(1.0 - _BOOK_MOVE * np.sqrt(0.5 * s / d), 0.0))
        for _ in range(64):
            mid = 0.5 * (lo + hi)
            absorbed = r * (1.0 / np.sqrt(mid) - 1.0) + d * ((1.0 - mid) / _BOOK_MOVE) ** 2
            over = absorbed > s  # the price need not fall this far
            lo = np.where(over, mid, lo)
            hi = np.where(over, hi, mid)
        m = m.copy()
        m[both] = 0.5 * (lo + hi)
    return m


def impact(cs: CascadeSystem, sold: np.ndarray) -> np.ndarray:
    """Fire-sale multiplier ``[..., A]`` after ``sold`` tokens ``[..., A]`` went into each
    route asset's liquidity: its constant-product reserve ``cs.reserve`` and its order-book
    depth ``cs.book_depth`` (:func:`sale_multiplier`); an asset with no liquidity at all is
    worth nothing once anything is sold."""
    return sale_multiplier(cs.reserve, cs.book_depth, sold)


def route_sales(cs: CascadeSystem, tokens: np.ndarray, price: np.ndarray) -> np.ndarray:
    """Tokens ``[..., A]`` sold of each asset, as tokens of the route asset that absorbs them,
    converted at the current prices ``[..., A]`` (equal value)."""
    out = np.zeros_like(tokens)
    rt = cs.route
    with np.errstate(invalid="ignore", divide="ignore"):
        conv = np.where(price[..., rt] > 0, tokens * price / price[..., rt], 0.0)
    for a in range(tokens.shape[-1]):
        out[..., rt[a]] += conv[..., a]
    return out


def backing(cs: CascadeSystem, bad_debt: np.ndarray) -> np.ndarray:
    """Backing ratio ``β [..., P]`` of every protocol given its own bad debt (USD)
    ``[..., P]``: :func:`simulate.clearing.backing_ratios` over the compiled liabilities,
    cross-deposits and reserves (a reserve absorbs the protocol's bad debt and its losses on
    deposits elsewhere before its depositors lose; raises
    :class:`~simulate.clearing.ClearingError` if it does not converge)."""
    return backing_ratios(cs.liabilities_usd, cs.cross, bad_debt, reserve=cs.reserve_usd)


def cross_loss(cs: CascadeSystem, beta: np.ndarray) -> np.ndarray:
    """USD ``[..., P]`` each protocol lost on its deposits in other protocols at backing
    ``β [..., P]``: ``Σ_j cross[k, j]·(1 - β_j)``. A protocol fails when its bad debt plus
    this exceeds its reserve."""
    return cross_deposit_losses(cs.cross, beta)


def endogenous(cs: CascadeSystem, imp: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """``E [..., A]`` from fire-sale multipliers ``[..., A]`` and backing ``[..., P]``."""
    iss = cs.issuer
    e = imp * np.where(iss >= 0, beta[..., np.maximum(iss, 0)], 1.0)
    for a in cs.peg_order:
        e[..., a] = e[..., a] * e[..., cs.peg_target[a]]
    return e


def asset_stress(cs: CascadeSystem, x: np.ndarray, e: np.ndarray) -> np.ndarray:
    """Relative price ``[..., A]`` an asset's failure is judged on: against its peg target for
    pegged assets, against USD for stablecoins without one, and the endogenous multiplier
    (cascade-driven loss only) for any other asset."""
    rel = x * e
    peg = cs.peg_target
    target = np.where(peg >= 0, peg, 0)
    return np.where(peg >= 0, rel / rel[..., target], np.where(cs.stable, rel, e))


def leg_vols(cs: CascadeSystem, legs: np.ndarray, spot: np.ndarray, vol_mult: np.ndarray,
             days: float | np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(τ, σ, ∂σ/∂S)`` of the legs ``legs [L']`` at spots and IV multipliers ``[..., A]``
    ``days`` after the snapshot (a float, or ``[...]`` per path).

    ``τ = max(τ0 - days/365, 0)``. A leg without a surface: ``σ = iv_leg · M_u`` and
    ``∂σ/∂S = 0`` (its delta is Black–Scholes'). A leg on surface ``j`` of underlying ``u``:
    ``σ = M_u · σ_j(ln(K / S_u), τ)`` and ``∂σ/∂S = (M_u/S_u)·(σ_j·∂ln M/∂R - ∂σ_j/∂k)`` at
    ``R = ln(S_u / p0_u)`` (:meth:`simulate.market.surface.IVSurface.vol_and_spot_slope`).
    Shapes ``[..., L']`` (``τ``: ``[L']`` for a float ``days``).
    """
    u = cs.leg_asset[legs]
    d = np.asarray(days, dtype=float)
    tau = np.maximum(cs.leg_tau0[legs] - (d[..., None] if d.ndim else d) / 365.0, 0.0)
    mult = vol_mult[..., u]
    vol = cs.leg_iv[legs] * mult
    slope = np.zeros_like(vol)
    if not cs.surfaces:
        return tau, vol, slope
    which = cs.leg_surface[legs]
    s = spot[..., u]
    for j, surface in enumerate(cs.surfaces):
        sel = which == j
        if not sel.any():
            continue
        tj = tau[..., sel] if tau.ndim > 1 else tau[sel]
        v, dv = surface.vol_and_spot_slope(cs.leg_strike[legs][sel], tj, s[..., sel],
                                           cs.price0[cs.surface_asset[j]], mult[..., sel])
        vol[..., sel] = v
        slope[..., sel] = dv
    return tau, vol, slope


def surface_response(cs: CascadeSystem, shocks: Shocks) -> Shocks:
    """``shocks`` with the IV multiplier of every underlying that has a surface replaced by
    that surface's spot-vol response to its own exogenous move, ``M(ln X)``
    (:meth:`simulate.market.surface.SpotVolDynamics.multiplier`), in place of the default
    response a Monte Carlo scenario draws; unchanged without surfaces."""
    if not cs.surfaces:
        return shocks
    iv = shocks.iv.copy()
    for surface, a in zip(cs.surfaces, cs.surface_asset, strict=True):
        iv[..., a] = surface.dynamics.multiplier(np.log(shocks.price[..., a]))
    return Shocks(shocks.price, iv, shocks.elapsed_days, shocks.oracle_push)
