"""Tail statistics of Monte Carlo losses: VaR, expected shortfall, their standard errors, and
the Euler allocation of expected shortfall to components.

Losses are per-path numbers, larger = worse (bad debt, liquidated value); any finite reals are
accepted. With ``n`` paths sorted as ``L_(1) <= … <= L_(n)`` and level ``α ∈ (0, 1)``:

- **VaR** is the lower empirical ``α``-quantile, the ``k``-th smallest loss::

      k = ⌈α n⌉,    VaR_α = L_(k)   (the smallest x with F_n(x) >= α)

  (``α n`` within ``1e-9`` relative of an integer counts as that integer, so rounding in
  ``0.07 · 100 = 7.000000000000001`` does not move ``k``).
- **Expected shortfall** (CVaR) is Acerbi & Tasche's estimator, the integral of the empirical
  quantile function over the worst ``1 - α`` of probability::

      ES_α = 1/(1-α) ∫_α^1 F_n⁻¹(u) du
           = [ Σ_{i > k} L_(i) + (k - α n) · L_(k) ] / (n (1 - α))

  (the ``k``-th loss enters with the fraction ``k - α n ∈ [0, 1)`` of a path that falls in
  the tail). It is the expected shortfall of the empirical distribution, so it is coherent
  (sub-additive over components of the same paths), ``ES_α >= VaR_α``, and when ``n(1 - α)``
  is an integer ``m`` it is exactly the mean of the worst ``m`` losses. Ties at ``VaR``
  share the fractional weight equally, which gives the same ``ES`` and makes the Euler
  allocation below independent of the order of the paths. Written as weights on the paths,
  with ``q = VaR_α``, ``N_≤ = #{L_i <= q}`` and ``N_= = #{L_i = q}``::

      w_i = 1 / (n(1-α))                          if L_i > q
            (N_≤ - α n) / (N_= · n(1-α))          if L_i = q
            0                                     otherwise,      Σ w_i = 1,  ES = Σ w_i L_i

- **Standard error of VaR** from the distribution-free order-statistic confidence interval of
  a quantile: the number of sample points below the true quantile is Binomial(n, α), so
  ``[L_(j_lo), L_(j_hi)]`` with ``j_lo = ⌊nα - z s⌋``, ``j_hi = ⌈nα + z s⌉`` (clipped to
  ``[1, n]``), ``s = sqrt(n α (1-α))``, ``z = Φ⁻¹(0.975)`` covers it with probability ≈ 95%,
  and ``SE(VaR) = (L_(j_hi) - L_(j_lo)) / (2 z)`` (Glasserman 2004, §9.1.2).
- **Standard error of ES**, the large-sample formula of Manistre & Hancock (2005)::

      Var(ES) ≈ [ Var(L | L >= VaR) + α (ES - VaR)² ] / (n (1 - α))

  with the tail variance ``Σ w_i (L_i - ES)²`` taken with the same weights ``w``. (It is
  ``Var((L - q)⁺) / (n(1-α)²)``, the variance of the Rockafellar–Uryasev form
  ``ES = q + E[(L - q)⁺] / (1 - α)`` at its optimum ``q = VaR``.)

The Euler allocation (:func:`euler_contributions`) applies the same weights to the component
losses of each path.

Example:
    >>> r = tail_risk(np.arange(1.0, 101.0), 0.95)
    >>> r.var, r.cvar, r.n
    (95.0, 98.0, 100)

References:
    C. Acerbi and D. Tasche, "On the coherence of expected shortfall", Journal of Banking &
    Finance 26(7), 1487-1503 (2002).
    B. J. Manistre and G. H. Hancock, "Variance of the CTE Estimator", North American
    Actuarial Journal 9(2), 129-156 (2005).
    P. Glasserman, Monte Carlo Methods in Financial Engineering, Springer (2004), §9.1.
    D. Tasche, "Risk contributions and performance measurement", working paper, TU München
    (1999); D. Tasche, "Capital allocation to business units and sub-portfolios: the Euler
    principle", in Pillar II in the New Basel Accord, Risk Books (2008).
    R. T. Rockafellar and S. Uryasev, "Optimization of conditional value-at-risk", Journal of
    Risk 2(3), 21-41 (2000).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from graph.errors import ContagionError

__all__ = [
    "RiskError",
    "TailRisk",
    "euler_contributions",
    "tail_risk",
]

#: Φ⁻¹(0.975): half-width in standard errors of a two-sided 95% normal interval
Z95 = 1.959963984540054


class RiskError(ContagionError, ValueError):
    """Losses or a level that tail statistics cannot be computed from."""


@dataclass(frozen=True)
class TailRisk:
    """Tail statistics of ``n`` per-path losses at ``level`` (see the module docstring).

    ``var`` and ``cvar`` are in the units of the losses; ``var_se`` and ``cvar_se`` are their
    Monte Carlo standard errors.
    """

    level: float
    var: float
    cvar: float
    var_se: float
    cvar_se: float
    n: int


# --- validation ---------------------------------------------------------------------------------


def _check_level(level: float) -> float:
    try:
        a = float(level)
    except (TypeError, ValueError):
        raise RiskError(f"level must be a number in (0, 1) (got {level!r})") from None
    if not 0.0 < a < 1.0:
        raise RiskError(f"level must be in (0, 1) (got {level})")
    return a


def _floats(name: str, value: ArrayLike) -> np.ndarray:
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise RiskError(f"{name} must be an array of numbers ({e})") from None


def _check_finite(name: str, x: np.ndarray) -> None:
    bad = np.argwhere(~np.isfinite(x))
    if bad.size:
        at = ", ".join(str(int(i)) for i in bad[0])
        raise RiskError(f"{name} must be finite (got {x[tuple(bad[0])]} at [{at}])")


def _losses(losses: ArrayLike) -> np.ndarray:
    x = _floats("losses", losses)
    if x.ndim != 1:
        raise RiskError(f"losses must be a 1-D array [n_paths] of per-path losses "
                        f"(got shape {list(x.shape)})")
    if x.size == 0:
        raise RiskError("losses must not be empty (got 0 paths)")
    _check_finite("losses", x)
    return x


# --- kernel -------------------------------------------------------------------------------------


def _alpha_n(alpha: float, n: int) -> float:
    """``α n``, snapped to the nearest integer when within rounding of it."""
    an = alpha * n
    r = round(an)
    return float(r) if abs(an - r) <= 1e-9 * max(1.0, an) else an


def _tail(losses: np.ndarray, alpha: float) -> tuple[float, np.ndarray, np.ndarray, float]:
    """``(VaR, above, at, w_at)``: the masks of the paths with ``L > VaR`` and ``L = VaR`` and
    the ``n(1-α)``-scaled weight each path at ``VaR`` gets (paths above get 1)."""
    n = losses.size
    an = _alpha_n(alpha, n)
    k = min(max(math.ceil(an), 1), n)
    q = float(np.partition(losses, k - 1)[k - 1])
    above, at = losses > q, losses == q
    n_le = n - int(above.sum())
    w_at = max(n_le - an, 0.0) / int(at.sum())
    return q, above, at, w_at


def _order_stat_se(losses: np.ndarray, alpha: float) -> float:
    n = losses.size
    s = math.sqrt(n * alpha * (1.0 - alpha))
    lo = min(max(math.floor(n * alpha - Z95 * s), 1), n)
    hi = min(max(math.ceil(n * alpha + Z95 * s), 1), n)
    part = np.partition(losses, [lo - 1, hi - 1])
    return float(part[hi - 1] - part[lo - 1]) / (2.0 * Z95)


# --- public -------------------------------------------------------------------------------------


def tail_risk(losses: ArrayLike, level: float) -> TailRisk:
    """VaR and expected shortfall of per-path ``losses`` ``[n_paths]`` at ``level`` (e.g.
    0.95), with Monte Carlo standard errors; formulas in the module docstring.

    Raises:
        RiskError: when ``losses`` is not a non-empty finite 1-D array or ``level`` is not in
        ``(0, 1)``.

    >>> r = tail_risk([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.75)  # worst 2.5 paths: 10, 9, ½·8
    >>> r.var, r.cvar
    (8.0, 9.2)
    """
    x = _losses(losses)
    alpha = _check_level(level)
    n = x.size
    q, above, at, w_at = _tail(x, alpha)
    tail_n = n - _alpha_n(alpha, n)  # n(1-α)
    es = (float(x[above].sum()) + w_at * float(x[at].sum())) / tail_n
    es = max(es, q)  # equal in exact arithmetic when the tail is all at VaR
    dev = x - es
    tail_var = (float((dev[above] ** 2).sum()) + w_at * float((dev[at] ** 2).sum())) / tail_n
    es_se = math.sqrt(max(tail_var + alpha * (es - q) ** 2, 0.0) / tail_n)
    return TailRisk(level=alpha, var=q, cvar=es, var_se=_order_stat_se(x, alpha),
                    cvar_se=es_se, n=n)


def euler_contributions(component_losses: ArrayLike, level: float) -> np.ndarray:
    """Euler allocation of the expected shortfall of the total loss to its components.

    ``component_losses`` ``[n_paths, K]``: loss of component ``c`` (e.g. bad debt of one
    protocol) on each path; the total is the row sum ``L = Σ_c X_c``. With the tail weights
    ``w`` of ``L`` from the module docstring (the ones :func:`tail_risk` uses)::

        C_c = Σ_i w_i X_ic
            = [ E_n[X_c 1{L > q}] + (F_n(q) - α) E_n[X_c | L = q] ] / (1 - α),   q = VaR_α(L)

    the empirical ``∂ES(L + t X_c)/∂t`` at ``t = 0`` (Tasche 1999, 2008). The contributions
    add up to ``tail_risk(L, level).cvar`` up to rounding, and each is the tail mean of its
    component (the mean over the worst ``n(1-α)`` paths when that is an integer and there are
    no ties at VaR).

    Returns:
        ``[K]`` contributions, in the units of the losses.

    Raises:
        RiskError: when ``component_losses`` is not a finite ``[n_paths, K]`` matrix with
        ``n_paths >= 1`` and ``K >= 1``, or ``level`` is not in ``(0, 1)``.

    >>> X = [[0, 1], [2, 0], [0, 3], [4, 0]]  # totals 1, 2, 3, 4; worst two paths at 50%
    >>> euler_contributions(X, 0.5)
    array([2. , 1.5])
    """
    x = _floats("component_losses", component_losses)
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise RiskError(f"component_losses must be a [n_paths, K] matrix with n_paths >= 1 "
                        f"and K >= 1 (got shape {list(x.shape)})")
    _check_finite("component_losses", x)
    alpha = _check_level(level)
    total = x.sum(axis=1)
    _, above, at, w_at = _tail(total, alpha)
    tail_n = x.shape[0] - _alpha_n(alpha, x.shape[0])
    return np.asarray((x[above].sum(axis=0) + w_at * x[at].sum(axis=0)) / tail_n,
                      dtype=np.float64)
