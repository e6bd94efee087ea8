"""Curve's StableSwap invariant (Egorov 2019, *StableSwap - efficient mechanism for Stablecoin
liquidity*) for a pool of ``n`` coins with balances ``x [n]`` and amplification ``A``::

    A·nⁿ·Σ x_k + D = A·nⁿ·D + D^(n+1) / (nⁿ·Π x_k)

Balances are in a common unit (each coin counted at its peg: tokens of one coin, or USD), and
``D`` is in that unit: the total the pool would hold balanced (``D = Σ x`` when all ``x_k`` are
equal, whatever ``A``). ``A`` is Curve's ``A`` (the contracts store ``A·nⁿ``). Large ``A``
flattens the curve towards a constant sum, ``A → 0`` gives a constant product.

- :func:`stableswap_d` solves the invariant for ``D`` and :func:`stableswap_y` for the balance
  of one coin given the others (Newton iterations as in Curve's contracts); both raise
  :class:`~graph.errors.ConvergenceError` when they do not converge;
- :func:`stableswap_price`: the marginal price of coin ``i`` in coin ``j`` at fixed ``D``
  (no fee), from the invariant's partial derivatives;
- :func:`stableswap_depth`: how much of a coin the pool absorbs before its price falls by a
  given fraction.

>>> stableswap_d(np.array([500.0, 500.0]), 50.0)  # balanced: D = x + y
1000.0
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from graph.errors import ConvergenceError

__all__ = ["stableswap_d", "stableswap_depth", "stableswap_price", "stableswap_y"]

#: Relative change of a Newton iterate at which :func:`stableswap_d` and :func:`stableswap_y`
#: stop, and the iterations they may take (Curve's contracts allow 255).
TOL = 1e-12
MAX_ITER = 255


def _not_converged(what: str, x: np.ndarray, amp: float, iterations: int, step: float,
                   tol: float) -> ConvergenceError:
    inputs = f"balances {np.array2string(x, precision=6)}, A = {amp:g}"
    its = f"{iterations} Newton iteration{'s' if iterations != 1 else ''}"
    if not np.isfinite(step):
        return ConvergenceError(f"stableswap {what} did not converge ({inputs}): the iterate "
                                f"stopped being finite after {its}; every balance must be "
                                "positive and finite")
    return ConvergenceError(f"stableswap {what} did not converge in {its} ({inputs}): the "
                            f"last relative step (residual) is {step:.3g} > tol {tol:g}")


def stableswap_d(x: ArrayLike, amp: float, *, tol: float = TOL, max_iter: int = MAX_ITER
                 ) -> float:
    """The invariant ``D`` of balances ``x`` ``[n]`` (module docstring), by Curve's Newton
    iteration from ``D = Σ x``::

        D_P = D^(n+1) / (nⁿ·Π x),   D ← (A·nⁿ·Σx + n·D_P)·D / ((A·nⁿ - 1)·D + (n+1)·D_P)

    until ``|ΔD| <= tol·D``. ``D = 0`` for an empty pool.

    Raises:
        ConvergenceError: when ``max_iter`` iterations do not get there (or an iterate stops
        being finite, as with a zero balance); the message gives the balances, ``A``, the
        iterations and the last relative step.

    >>> round(stableswap_d(np.array([900.0, 100.0]), 1e-9), 3)  # A → 0: 2·√(x·y)
    600.0
    """
    x = np.asarray(x, dtype=float)
    n = len(x)
    s = float(x.sum())
    if s == 0:
        return 0.0
    d, ann = s, amp * n ** n
    step, iterations = np.inf, 0
    with np.errstate(all="ignore"):
        while iterations < max_iter:
            iterations += 1
            dp = d
            for xi in x:
                dp = dp * d / (n * xi)
            prev = d
            d = (ann * s + dp * n) * d / ((ann - 1) * d + (n + 1) * dp)
            if abs(d - prev) <= tol * d:
                return float(d)
            step = abs(d - prev) / abs(d) if d else np.inf
            if not np.isfinite(step):
                break
    raise _not_converged("invariant D", x, amp, iterations, float(step), tol)


def stableswap_y(x: ArrayLike, i: int, j: int, xi_new: float, amp: float, d: float, *,
                 tol: float = TOL, max_iter: int = MAX_ITER) -> float:
    """The balance of coin ``j`` that keeps the invariant ``D`` when coin ``i`` becomes
    ``xi_new`` (the other balances as in ``x``): the positive root of
    ``y² + (b - D)·y = c`` with ``b = S' + D / (A·nⁿ)``, ``c = D^(n+1) / (nⁿ·Π' x·A·nⁿ)``
    (``S'``, ``Π'``: sum and product over the coins other than ``j``), by Newton's
    ``y ← (y² + c) / (2y + b - D)`` from ``y = D`` until ``|Δy| <= tol·y``.

    Raises:
        ConvergenceError: as :func:`stableswap_d`.

    >>> x = np.array([500.0, 500.0])
    >>> round(stableswap_y(x, 0, 1, 500.0, 50.0, stableswap_d(x, 50.0)), 9)  # no trade
    500.0
    """
    xs = np.asarray(x, dtype=float).copy()
    n = len(xs)
    ann = amp * n ** n
    xs[i] = xi_new
    c, s = d, 0.0
    step, iterations = np.inf, 0
    with np.errstate(all="ignore"):
        for k in range(n):
            if k == j:
                continue
            s += xs[k]
            c = c * d / (xs[k] * n)
        c = c * d / (ann * n)
        b = s + d / ann
        y = d
        while iterations < max_iter:
            iterations += 1
            prev = y
            y = (y * y + c) / (2 * y + b - d)
            if abs(y - prev) <= tol * y:
                return float(y)
            step = abs(y - prev) / abs(y) if y else np.inf
            if not np.isfinite(step):
                break
    raise _not_converged(f"balance y of coin {j}", xs, amp, iterations, float(step), tol)


def stableswap_price(x: ArrayLike, amp: float, i: int, j: int, d: float | None = None
                     ) -> float:
    """Marginal price of coin ``i`` in units of coin ``j`` (``-dx_j/dx_i`` along the invariant,
    no fee) at balances ``x``::

        price = (A·nⁿ + D^(n+1) / (nⁿ·Π x·x_i)) / (A·nⁿ + D^(n+1) / (nⁿ·Π x·x_j))

    ``d``: the pool's invariant (computed from ``x`` when not given). 1 for a balanced pool;
    below 1 for the coin the pool holds more of.

    >>> stableswap_price(np.array([500.0, 500.0]), 50.0, 0, 1)
    1.0
    """
    xs = np.asarray(x, dtype=float)
    n = len(xs)
    dd = stableswap_d(xs, amp) if d is None else d
    ann = amp * n ** n
    dp = dd  # D^(n+1) / (nⁿ·Π x), built up as in stableswap_d
    for xk in xs:
        dp = dp * dd / (n * xk)
    return float((ann + dp / xs[i]) / (ann + dp / xs[j]))


def stableswap_depth(balances: ArrayLike, amp: float, i: int, move: float = 0.02) -> float:
    """Amount of coin ``i`` that can be sold into a StableSwap pool (balances ``[n]`` in a
    common unit, amplification ``amp``) before its marginal price (:func:`stableswap_price`)
    against the deepest other coin ``j`` falls by ``move``: the ``Δ`` with
    ``price(x_i + Δ, y_j(x_i + Δ)) = (1 - move)·price(x)``, by bisection on the exact
    invariant. In units of the balances.

    >>> round(stableswap_depth(np.array([1e6, 1e6]), 1e-9, 0) / 1e6, 4)  # ~constant product
    0.0102
    """
    x = np.asarray(balances, dtype=float)
    j = int(np.argmax(np.where(np.arange(len(x)) == i, -np.inf, x)))
    d = stableswap_d(x, amp)

    def price(sold: float) -> float:
        after = x.copy()
        after[i] = x[i] + sold
        after[j] = stableswap_y(x, i, j, after[i], amp, d)
        return stableswap_price(after, amp, i, j, d)

    p0 = price(0.0)
    lo, hi = 0.0, float(x[i])
    while price(hi) > p0 * (1 - move):
        hi *= 2
        if hi > 1e6 * x.sum():
            return hi
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        if price(mid) > p0 * (1 - move):
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)
