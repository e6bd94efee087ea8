"""Tail dependence measured by co-exceedance: how often two assets are in the same tail.

For two return series ``x``, ``y`` of ``n`` paired observations and a tail probability ``q``,
with ``k = ⌈q·n⌉``:

- the **lower thresholds** are the empirical ``q``-quantiles ``Q_x(q) = x_(k)``,
  ``Q_y(q) = y_(k)`` (``x_(1) ≤ … ≤ x_(n)`` the order statistics: the inverse of the empirical
  distribution function, numpy's ``method="inverted_cdf"``); the **upper thresholds** are the
  ``k``-th largest values ``x_(n+1-k)``, ``y_(n+1-k)``, the same rule applied to ``-x``,
  ``-y``, so both tails hold ``k`` points of each series when there are no ties;
- **lower co-exceedance** ``λ_L(q) = #{x ≤ Q_x(q) and y ≤ Q_y(q)} / #{x ≤ Q_x(q)}``, the
  empirical ``P(y ≤ Q_y(q) | x ≤ Q_x(q))``; **upper** ``λ_U(q) = #{x ≥ x_(n+1-k) and
  y ≥ y_(n+1-k)} / #{x ≥ x_(n+1-k)}``, the empirical ``P(y ≥ Q_y(1-q) | x ≥ Q_x(1-q))``.

Ties: every observation equal to a threshold is in the tail (the inequalities are not
strict), so with ties at a threshold a tail holds more than ``k`` points; the counts
(:class:`CoExceedance` ``lower_count``, ``upper_count``) are the denominators actually used.

Reference values: comonotone series (``y`` a strictly increasing function of ``x``) give 1 in
both tails; independent series give ``≈ q``; antitone series (``y`` strictly decreasing in
``x``) give 0 while ``2k ≤ n``. Empirical BTC/ETH daily returns show ``λ_L ≫ λ_U`` (crypto
falls together more than it rises together); a t copula is radially symmetric, so its
``λ_L(q) = λ_U(q)`` (``bench/market.py --tails`` measures both against filtered historical
simulation).

Hand-solved (``n = 10``, ``q = 0.2``, so ``k = 2``):

    x = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],  y = [2, 1, 9, 4, 5, 6, 7, 3, 10, 8]

- lower: ``Q_x = x_(2) = 2`` (tail ``x ∈ {1, 2}``: positions 0, 1), ``Q_y = y_(2) = 2``
  (``y ∈ {1, 2}``: positions 0, 1); both at positions 0 and 1, so ``λ_L = 2/2 = 1``;
- upper: ``x_(9) = 9`` (``x ∈ {9, 10}``: positions 8, 9), ``y_(9) = 9`` (``y ∈ {9, 10}``:
  positions 2, 8); both only at position 8, so ``λ_U = 1/2 = 0.5``.

>>> c = co_exceedance([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [2, 1, 9, 4, 5, 6, 7, 3, 10, 8], 0.2,
...                   min_expected=2)
>>> c.lower, c.upper, c.lower_count
(1.0, 0.5, 2)

References: Sibuya (1960) tail dependence; Joe (1997) §2.1.10; Longin & Solnik (2001)
exceedance correlation.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike
from pydantic import BaseModel, ConfigDict

from graph.errors import ContagionError

__all__ = ["MIN_EXPECTED", "CoExceedance", "TailDependenceError", "co_exceedance"]

#: fewest expected tail points ``q·n`` a co-exceedance is computed from
MIN_EXPECTED = 5.0


class TailDependenceError(ContagionError, ValueError):
    """Inputs a co-exceedance cannot be computed from."""


class CoExceedance(BaseModel):
    """Lower and upper co-exceedance of ``y`` given ``x`` at tail probability ``q``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    q: float
    #: paired observations ``n``
    observations: int
    #: ``k = ⌈q·n⌉``, the tail size without ties
    tail_size: int
    #: empirical ``P(y ≤ Q_y(q) | x ≤ Q_x(q))``
    lower: float
    #: empirical ``P(y ≥ Q_y(1-q) | x ≥ Q_x(1-q))``
    upper: float
    #: ``#{x ≤ Q_x(q)}``, the denominator of ``lower``
    lower_count: int
    #: ``#{x ≥ Q_x(1-q)}``, the denominator of ``upper``
    upper_count: int

    @property
    def asymmetry(self) -> float:
        """``lower - upper``."""
        return self.lower - self.upper


def _lower(x: np.ndarray, y: np.ndarray, k: int) -> tuple[float, int]:
    """Kernel: ``(λ_L, #{x ≤ x_(k)})`` for finite 1-D ``x``, ``y`` of equal length."""
    qx = np.partition(x, k - 1)[k - 1]
    qy = np.partition(y, k - 1)[k - 1]
    in_x = x <= qx
    count = int(in_x.sum())
    return float(np.count_nonzero(in_x & (y <= qy))) / count, count


def co_exceedance(x: ArrayLike, y: ArrayLike, q: float, *,
                  min_expected: float = MIN_EXPECTED) -> CoExceedance:
    """Lower and upper co-exceedance of paired observations ``x``, ``y`` (``[n]`` each, paired
    by position) at tail probability ``q`` in ``(0, 0.5]`` (see the module doc for the exact
    quantile and tie rules).

    Raises :class:`TailDependenceError` when ``x`` and ``y`` are not 1-D of the same length,
    hold non-finite values, ``q`` is outside ``(0, 0.5]``, or the tail is expected to hold
    fewer than ``min_expected`` points (``q·n < min_expected``).
    """
    xa = np.asarray(x, dtype=float)
    ya = np.asarray(y, dtype=float)
    if xa.ndim != 1 or ya.ndim != 1:
        raise TailDependenceError(f"x and y must be 1-D series (got shapes {list(xa.shape)} "
                                  f"and {list(ya.shape)})")
    if xa.size != ya.size:
        raise TailDependenceError(f"x and y must be paired observations of the same length "
                                  f"(got {xa.size} and {ya.size})")
    try:
        qf = float(q)
    except (TypeError, ValueError):
        raise TailDependenceError(f"tail probability q must be a number (got {q!r})") from None
    if not 0.0 < qf <= 0.5:
        raise TailDependenceError(f"tail probability q must be in (0, 0.5] (got {q})")
    n = int(xa.size)
    if not qf * n >= min_expected:
        raise TailDependenceError(f"too few observations for the {q:g} tail: q·n = {qf * n:g} "
                                  f"expected tail points, need at least {min_expected:g} "
                                  f"(got n = {n})")
    if not (np.isfinite(xa).all() and np.isfinite(ya).all()):
        raise TailDependenceError("x and y must be finite (drop or align missing values first)")
    k = max(1, math.ceil(qf * n - 1e-9))  # ⌈q·n⌉, immune to q·n = 10.000000000000002
    lower, lower_count = _lower(xa, ya, k)
    upper, upper_count = _lower(-xa, -ya, k)
    return CoExceedance(q=qf, observations=n, tail_size=k, lower=lower, upper=upper,
                        lower_count=lower_count, upper_count=upper_count)
