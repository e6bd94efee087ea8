"""Gatheral's raw SVI smile in total implied variance, its derivatives, and the butterfly
(density) condition.

With log-forward-moneyness ``k = ln(K / F)`` and total implied variance ``w = σ²·τ``::

    w(k)   = a + b·(ρ·(k - m) + √((k - m)² + s²))                 raw SVI (Gatheral 2004)
    w'(k)  = b·(ρ + (k - m) / √((k - m)² + s²))
    w''(k) = b·s² / ((k - m)² + s²)^(3/2)

    g(k) = (1 - k·w' / (2w))² - (w'² / 4)·(1/w + 1/4) + w'' / 2

``(a, b, ρ, m, s)``: level, wing slope, skew (``|ρ| < 1``), shift and ATM curvature
(``s > 0``). The minimum of ``w`` is ``a + b·s·√(1 - ρ²)`` (must be ``≥ 0``); the wings are
straight lines of slopes ``b·(1 + ρ)`` (right) and ``b·(1 - ρ)`` (left), which Roger Lee's
moment formula bounds by 2. The call prices of a smile are free of butterfly arbitrage (a
non-negative risk-neutral density) exactly where ``g(k) ≥ 0`` (Gatheral & Jacquier 2014,
"Arbitrage-free SVI volatility surfaces", Lemma 2.2); ``g`` applies to any smooth ``w``, so
:func:`butterfly_g` takes ``w, w', w''`` and is also used on interpolated slices.

Every function broadcasts its arguments (``[...]``) and returns that shape.

>>> round(float(svi_total_variance(0.0, 0.01, 0.1, -0.5, 0.0, 0.2)), 6)  # a + b·s
0.03
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["butterfly_g", "svi_derivatives", "svi_total_variance"]


def svi_total_variance(k: ArrayLike, a: ArrayLike, b: ArrayLike, rho: ArrayLike,
                       m: ArrayLike, s: ArrayLike) -> np.ndarray:
    """Raw SVI total variance ``w(k) = a + b·(ρ·(k - m) + √((k - m)² + s²))``."""
    return svi_derivatives(k, a, b, rho, m, s)[0]


def svi_derivatives(k: ArrayLike, a: ArrayLike, b: ArrayLike, rho: ArrayLike, m: ArrayLike,
                    s: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(w, w', w'')`` of raw SVI at ``k`` (derivatives in ``k``; module docstring).

    >>> w, w1, w2 = svi_derivatives(0.0, 0.01, 0.1, 0.0, 0.0, 0.2)
    >>> round(float(w1), 6), round(float(w2), 6)  # b·ρ, b / s
    (0.0, 0.5)
    """
    x = np.asarray(k, dtype=float) - np.asarray(m, dtype=float)
    b_ = np.asarray(b, dtype=float)
    rho_ = np.asarray(rho, dtype=float)
    s2 = np.asarray(s, dtype=float) ** 2
    root = np.sqrt(x * x + s2)
    w = np.asarray(a, dtype=float) + b_ * (rho_ * x + root)
    w1 = b_ * (rho_ + x / root)
    w2 = b_ * s2 / (root * root * root)
    return w, w1, w2


def butterfly_g(k: ArrayLike, w: ArrayLike, w1: ArrayLike, w2: ArrayLike) -> np.ndarray:
    """Gatheral's density factor ``g(k) = (1 - k·w'/(2w))² - (w'²/4)·(1/w + 1/4) + w''/2``
    of a smile with total variance ``w`` and derivatives ``w1``, ``w2`` at ``k``; the smile
    is free of butterfly arbitrage where ``g ≥ 0`` (``-inf`` where ``w ≤ 0``).

    >>> round(float(butterfly_g(0.0, 0.04, 0.0, 0.0)), 6)  # a flat smile: g = 1
    1.0
    """
    k_ = np.asarray(k, dtype=float)
    w_ = np.asarray(w, dtype=float)
    w1_ = np.asarray(w1, dtype=float)
    w2_ = np.asarray(w2, dtype=float)
    pos = w_ > 0
    safe = np.where(pos, w_, 1.0)
    g = (1.0 - k_ * w1_ / (2.0 * safe)) ** 2 - 0.25 * w1_ * w1_ * (1.0 / safe + 0.25) + 0.5 * w2_
    return np.where(pos, g, -np.inf)
