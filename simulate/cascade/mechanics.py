"""Price formation shared by both kernels: pure functions over a leading path axis ``[...]``.

One round of a path reads prices ``p = p0 · X · E`` where ``X`` is the exogenous multiplier of
the scenario and ``E`` the endogenous one. ``E`` is built from each asset's own fire-sale
impact ``I_a = (R_a / (R_a + S_a))^2`` (``S_a`` tokens sold into its virtual reserve so far),
its issuer's backing ratio ``β``, and its peg target's ``E``:
``E_a = I_a · β_issuer(a) · E_peg(a)`` (WETH inherits ETH's fire-sale, stETH Lido's backing
and ETH's moves, wstETH stETH's).

Backing is a fixed point over cross-holdings (DESIGN.md §4.5): protocol ``k`` with bad debt
beyond its reserve (``shortfall_k``) and deposits ``cross[k, j]`` in protocols that are
themselves under-backed is backed at
``β_k = clip(1 - (shortfall_k + Σ_j cross[k, j] (1 - β_j)) / L_k, 0, 1)``. The map is monotone,
so iterating from ``β = 1`` converges to its greatest fixed point; with no prices involved this
is Eisenberg–Noe clearing with the deposits as interbank liabilities.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import ndtr

from simulate.cascade.system import CascadeSystem

__all__ = [
    "asset_stress",
    "backing",
    "bs_delta",
    "bs_price",
    "endogenous",
    "impact",
    "liquidation",
    "margin_closeout",
    "route_sales",
]

_BACKING_TOL = 1e-13
_BACKING_MAX_ITER = 1000


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


def impact(cs: CascadeSystem, sold: np.ndarray) -> np.ndarray:
    """Fire-sale multiplier ``[..., A]`` after ``sold`` tokens ``[..., A]`` went into each
    route asset's virtual constant-product reserve: ``(R / (R + S))^2``; an asset with no
    liquidity at all (``R = 0``) is worth nothing once anything is sold."""
    r = cs.reserve
    with np.errstate(invalid="ignore", divide="ignore"):
        m = np.where(r > 0, (r / (r + sold)) ** 2, np.where(sold > 0, 0.0, 1.0))
    return m


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


def backing(cs: CascadeSystem, shortfall: np.ndarray) -> np.ndarray:
    """Backing ratio ``β [..., P]`` of every protocol given its uncovered bad debt (USD)."""
    liab = cs.liabilities_usd
    safe = np.where(liab > 0, liab, 1.0)
    beta = np.ones_like(shortfall)
    if not shortfall.any():
        return beta
    for _ in range(_BACKING_MAX_ITER):
        loss = shortfall + (1.0 - beta) @ cs.cross.T
        new = np.where(liab > 0, np.clip(1.0 - loss / safe, 0.0, 1.0), 1.0)
        done = np.max(np.abs(new - beta)) <= _BACKING_TOL
        beta = new
        if done:
            break
    return beta


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


def _d1(spot: np.ndarray, strike: np.ndarray, tau: np.ndarray, vol: np.ndarray
        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    sd = vol * np.sqrt(tau)
    live = (sd > 0) & (spot > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        d1 = np.where(live, (np.log(np.where(live, spot, 1.0) / strike) + 0.5 * sd * sd)
                      / np.where(live, sd, 1.0), 0.0)
    return d1, d1 - sd, live


def bs_price(spot: ArrayLike, strike: ArrayLike, tau: ArrayLike, vol: ArrayLike,
             is_call: ArrayLike) -> np.ndarray:
    """Black–Scholes price per unit (zero rates): ``S N(d1) - K N(d2)`` for calls,
    ``K N(-d2) - S N(-d1)`` for puts; intrinsic value when ``tau · vol = 0``. Broadcasts."""
    spot, strike = np.asarray(spot, dtype=float), np.asarray(strike, dtype=float)
    d1, d2, live = _d1(spot, strike, np.asarray(tau, dtype=float), np.asarray(vol, dtype=float))
    call = spot * ndtr(d1) - strike * ndtr(d2)
    put = strike * ndtr(-d2) - spot * ndtr(-d1)
    value = np.where(is_call, call, put)
    intrinsic = np.where(is_call, np.maximum(spot - strike, 0.0), np.maximum(strike - spot, 0.0))
    return np.where(live, np.maximum(value, 0.0), intrinsic)


def bs_delta(spot: ArrayLike, strike: ArrayLike, tau: ArrayLike, vol: ArrayLike,
             is_call: ArrayLike) -> np.ndarray:
    """Black–Scholes delta per unit: ``N(d1)`` for calls, ``N(d1) - 1`` for puts; the
    intrinsic step at expiry."""
    spot, strike = np.asarray(spot, dtype=float), np.asarray(strike, dtype=float)
    d1, _, live = _d1(spot, strike, np.asarray(tau, dtype=float), np.asarray(vol, dtype=float))
    itm = np.where(spot > strike, 1.0, 0.0)
    call = np.where(live, ndtr(d1), itm)
    return np.where(is_call, call, call - 1.0)
