"""Black–Scholes price, delta, gamma and vega of European options at zero interest rates,
and the smile-consistent delta.

With spot ``S`` and strike ``K`` (USD per unit of the underlying), time to expiry ``τ``
(years) and implied volatility ``σ`` (annualised)::

    sd = σ·√τ,   d1 = (ln(S / K) + sd² / 2) / sd,   d2 = d1 - sd

    call = S·N(d1) - K·N(d2)           put = K·N(-d2) - S·N(-d1)       (USD per unit)
    delta_call = N(d1)                  delta_put = N(d1) - 1           (units per unit)
    gamma = φ(d1) / (S·sd)              (per USD, calls and puts alike)
    vega = S·φ(d1)·√τ                   (USD per unit of σ, i.e. per 100 vol points)
    smile delta = delta + vega·∂σ/∂S    (when the implied vol moves with the spot)

``N`` is the standard normal CDF (:func:`scipy.special.ndtr`), ``φ`` its density. Put-call
parity holds: ``call - put = S - K``. At expiry or at zero volatility (``sd = 0``), and at a
worthless underlying (``S = 0``), the price is the intrinsic value, delta its step and gamma 0.
Every function broadcasts its arguments (``[...]``: any shapes numpy broadcasts together, e.g.
spots ``[paths, contracts]`` against strikes ``[contracts]``) and returns that shape.

>>> round(float(bs_price(100.0, 100.0, 1.0, 0.2, True)), 6)  # S N(0.1) - K N(-0.1)
7.965567
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import ndtr

__all__ = ["bs_delta", "bs_gamma", "bs_price", "bs_vega", "smile_delta"]

_SQRT_2PI = math.sqrt(2.0 * math.pi)


def _d1(spot: np.ndarray, strike: np.ndarray, tau: np.ndarray, vol: np.ndarray
        ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(d1, d2, sd, live)``: ``live`` where ``sd > 0`` and ``S > 0`` (``d1 = d2 = 0`` and
    ``sd`` as given elsewhere)."""
    sd = vol * np.sqrt(tau)
    live = (sd > 0) & (spot > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        d1 = np.where(live, (np.log(np.where(live, spot, 1.0) / strike) + 0.5 * sd * sd)
                      / np.where(live, sd, 1.0), 0.0)
    return d1, d1 - sd, sd, live


def _arrays(spot: ArrayLike, strike: ArrayLike, tau: ArrayLike, vol: ArrayLike
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    return (np.asarray(spot, dtype=float), np.asarray(strike, dtype=float),
            np.asarray(tau, dtype=float), np.asarray(vol, dtype=float))


def bs_price(spot: ArrayLike, strike: ArrayLike, tau: ArrayLike, vol: ArrayLike,
             is_call: ArrayLike) -> np.ndarray:
    """Black–Scholes price per unit of the underlying (USD): ``S N(d1) - K N(d2)`` for calls,
    ``K N(-d2) - S N(-d1)`` for puts (module docstring); never negative; the intrinsic value
    when ``σ·√τ = 0``.

    >>> bs_price([90.0, 110.0], 100.0, 0.0, 0.5, [True, False]).tolist()  # at expiry
    [0.0, 0.0]
    """
    s, k, t, v = _arrays(spot, strike, tau, vol)
    d1, d2, _, live = _d1(s, k, t, v)
    call = s * ndtr(d1) - k * ndtr(d2)
    put = k * ndtr(-d2) - s * ndtr(-d1)
    value = np.where(is_call, call, put)
    intrinsic = np.where(is_call, np.maximum(s - k, 0.0), np.maximum(k - s, 0.0))
    return np.where(live, np.maximum(value, 0.0), intrinsic)


def bs_delta(spot: ArrayLike, strike: ArrayLike, tau: ArrayLike, vol: ArrayLike,
             is_call: ArrayLike) -> np.ndarray:
    """Black–Scholes delta per unit (units of the underlying): ``N(d1)`` for calls,
    ``N(d1) - 1`` for puts; at expiry the intrinsic step (1 or 0 for a call as ``S > K``)."""
    s, k, t, v = _arrays(spot, strike, tau, vol)
    d1, _, _, live = _d1(s, k, t, v)
    itm = np.where(s > k, 1.0, 0.0)
    call = np.where(live, ndtr(d1), itm)
    return np.where(is_call, call, call - 1.0)


def bs_gamma(spot: ArrayLike, strike: ArrayLike, tau: ArrayLike, vol: ArrayLike) -> np.ndarray:
    """Black–Scholes gamma per unit (per USD of spot), ``φ(d1) / (S σ √τ)``, the same for
    calls and puts; 0 when ``σ·√τ = 0`` or ``S = 0``. Dollar gamma is ``gamma·S²``.

    >>> round(float(bs_gamma(100.0, 100.0, 1.0, 0.2)), 6)  # φ(0.1) / (100 · 0.2)
    0.019848
    """
    s, k, t, v = _arrays(spot, strike, tau, vol)
    d1, _, sd, live = _d1(s, k, t, v)
    with np.errstate(divide="ignore", invalid="ignore"):
        g = np.exp(-0.5 * d1 * d1) / (_SQRT_2PI * np.where(live, s * sd, 1.0))
    return np.where(live, g, 0.0)


def bs_vega(spot: ArrayLike, strike: ArrayLike, tau: ArrayLike, vol: ArrayLike) -> np.ndarray:
    """Black–Scholes vega per unit (USD per unit of annualised vol, so per 100 vol points),
    ``S φ(d1) √τ``, the same for calls and puts; 0 when ``σ·√τ = 0`` or ``S = 0``.

    >>> round(float(bs_vega(100.0, 100.0, 1.0, 0.2)), 6)  # 100 · φ(0.1) · 1
    39.695255
    """
    s, k, t, v = _arrays(spot, strike, tau, vol)
    d1, _, _, live = _d1(s, k, t, v)
    vega = s * np.exp(-0.5 * d1 * d1) * np.sqrt(np.where(live, t, 0.0)) / _SQRT_2PI
    return np.where(live, vega, 0.0)


def smile_delta(spot: ArrayLike, strike: ArrayLike, tau: ArrayLike, vol: ArrayLike,
                is_call: ArrayLike, dvol_dspot: ArrayLike) -> np.ndarray:
    """Delta when the option's implied vol moves with the spot: ``bs_delta + bs_vega ·
    ∂σ/∂S`` (units of the underlying), ``dvol_dspot`` the slope ``∂σ/∂S`` (per USD) of the
    vol the option is marked at (a surface's, :meth:`simulate.market.surface.IVSurface
    .vol_and_spot_slope`). With ``dvol_dspot = 0`` it is :func:`bs_delta`.

    >>> round(float(smile_delta(100.0, 100.0, 1.0, 0.2, True, -0.001)), 6)  # N(0.1) - 0.0397
    0.500133
    """
    return (bs_delta(spot, strike, tau, vol, is_call)
            + bs_vega(spot, strike, tau, vol) * np.asarray(dvol_dspot, dtype=float))
