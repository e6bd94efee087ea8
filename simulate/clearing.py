"""Interbank-style clearing and distress propagation as plain numpy functions.

Four building blocks of the cascade's issuer-contagion step (docs/architecture.md §4.5) and of the
baselines the fragility model is judged against (§5), each validating its inputs and then
calling a private kernel:

- :func:`eisenberg_noe`: the clearing payment vector of Eisenberg & Noe (2001), computed
  exactly by the fictitious-default algorithm;
- :func:`debt_rank`: relative equity losses ``h ∈ [0, 1]^n`` after a shock, either by the
  original DebtRank of Battiston et al. (2012) (each node propagates its distress once) or by
  the linear DebtRank of Bardoscia et al. (2015) (every increment of distress propagates);
- :func:`debt_rank_systemic`: the system-level DebtRank ``R`` of a run of :func:`debt_rank`;
- :func:`backing_ratios`: the backing ratio of protocols with bad debt and deposits in one
  another, the greatest fixed point of a monotone map (the cascade's issuer depeg; with no
  prices involved it is Eisenberg–Noe clearing with the deposits as interbank claims).

Direction conventions (the same in all four): row ``i`` is the node that *holds the claim*.
``liabilities[i, j]`` is what ``i`` owes ``j``; ``exposures[i, j]`` is what ``i`` has lent to
(or invested in) ``j``, which ``i`` loses if ``j`` defaults. For the same bilateral loans,
``exposures == liabilities.T``.

References:
    L. Eisenberg and T. H. Noe, "Systemic Risk in Financial Systems", Management Science
    47(2), 236-249 (2001).
    S. Battiston, M. Puliga, R. Kaushik, P. Tasca and G. Caldarelli, "DebtRank: Too Central to
    Fail? Financial Networks, the FED and Systemic Risk", Scientific Reports 2, 541 (2012).
    M. Bardoscia, S. Battiston, F. Caccioli and G. Caldarelli, "DebtRank: A Microscopic
    Foundation for Shock Propagation", PLoS ONE 10(6), e0130406 (2015).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from graph.errors import ContagionError

__all__ = [
    "BACKING_MAX_ITER",
    "BACKING_TOL",
    "ClearingError",
    "DebtRankVariant",
    "backing_ratios",
    "cross_deposit_losses",
    "debt_rank",
    "debt_rank_systemic",
    "eisenberg_noe",
]

DebtRankVariant = Literal["original", "linear"]

#: Convergence threshold (largest change of any ``β`` in a round) and round budget of
#: :func:`backing_ratios`.
BACKING_TOL = 1e-13
BACKING_MAX_ITER = 1000


class ClearingError(ContagionError, ValueError):
    """Inputs a clearing or distress-propagation algorithm cannot use, or a run that did not
    converge within its iteration budget."""


# --- validation ---------------------------------------------------------------------------------


def _num(x: float) -> str:
    return f"{x:g}"


def _array(name: str, value: ArrayLike) -> np.ndarray:
    try:
        a = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ClearingError(f"{name} must be an array of numbers ({e})") from None
    return a


def _square(name: str, value: ArrayLike) -> np.ndarray:
    """A finite, non-negative ``[n, n]`` matrix with a zero diagonal."""
    m = _array(name, value)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ClearingError(f"{name} must be a square [n, n] matrix (got {list(m.shape)})")
    bad = np.argwhere(~np.isfinite(m))
    if bad.size:
        i, j = bad[0]
        raise ClearingError(f"{name} must be finite (got {_num(m[i, j])} at [{i}, {j}])")
    bad = np.argwhere(m < 0)
    if bad.size:
        i, j = bad[0]
        raise ClearingError(f"{name}[{i}, {j}] must be >= 0 (got {_num(m[i, j])})")
    diag = np.flatnonzero(np.diag(m))
    if diag.size:
        i = diag[0]
        raise ClearingError(f"{name} must have a zero diagonal: a node has no claim on itself "
                            f"(got {_num(m[i, i])} at [{i}, {i}])")
    return m


def _vector(name: str, value: ArrayLike, n: int) -> np.ndarray:
    """A finite vector with one entry per node."""
    v = _array(name, value)
    if v.shape != (n,):
        raise ClearingError(f"{name} must be a vector of length {n}, one entry per node "
                            f"(got shape {list(v.shape)})")
    bad = np.flatnonzero(~np.isfinite(v))
    if bad.size:
        raise ClearingError(f"{name}[{bad[0]}] must be finite (got {_num(v[bad[0]])})")
    return v


def _check_budget(tol: float, max_iter: int) -> None:
    if not (np.isfinite(tol) and tol > 0):
        raise ClearingError(f"tol must be a finite number > 0 (got {tol})")
    if isinstance(max_iter, bool) or not isinstance(max_iter, int | np.integer) or max_iter < 1:
        raise ClearingError(f"max_iter must be an integer >= 1 (got {max_iter!r})")


# --- Eisenberg–Noe ------------------------------------------------------------------------------


def eisenberg_noe(liabilities: ArrayLike, external_assets: ArrayLike, *, tol: float = 1e-12,
                  max_iter: int = 10_000) -> np.ndarray:
    r"""Clearing payment vector of Eisenberg & Noe (2001).

    With ``L = liabilities`` ``[n, n]`` (``L[i, j]``: what node ``i`` owes node ``j``;
    non-negative, zero diagonal) and ``e = external_assets`` ``[n]`` (``e_i >= 0``)::

        p̄_i  = Σ_j L_ij                          total obligation of i
        Π_ij = L_ij / p̄_i   (0 where p̄_i = 0)    relative liabilities (rows sum to 1 or 0)
        p    = min(p̄, e + Πᵀ p)                   clearing condition, elementwise

    ``(Πᵀp)_i = Σ_j Π_ji p_j`` is what ``i`` receives when every node ``j`` pays ``p_j``
    pro rata to its creditors. The result is the *greatest* fixed point ``p⁺`` (the one
    Eisenberg & Noe's Theorem 1 singles out; it is unique when every node reaches a node with
    positive external assets). Equity after clearing is ``e + Πᵀp - p̄`` (negative for
    defaulters, whose shortfall is ``p̄ - p``).

    Algorithm: Eisenberg & Noe's *fictitious default* algorithm, exact, not a fixed-point
    iteration. Start with every node paying in full (``p = p̄``, defaulting set ``D = ∅``).
    Each round:

    1. ``D ← {i : e_i + (Πᵀp)_i < p̄_i}`` (a node short by at most ``tol·p̄_i`` pays in full);
    2. solve the linear system in which nodes outside ``D`` pay in full and nodes in ``D``
       pay everything they receive::

           p_i = p̄_i (i ∉ D),    (I - Π_DDᵀ) p_D = e_D + Π_{D̄D}ᵀ p̄_D̄

    until ``D`` stops growing. ``D`` only grows and ``p`` only falls, so at most ``n + 1``
    rounds are run. ``I - Π_DDᵀ`` is always invertible: a set of nodes all of whose
    obligations are to one another can never default together (summed over the set, what it
    receives covers what it owes).

    Args:
        liabilities: ``[n, n]`` obligations, ``L[i, j]`` owed by ``i`` to ``j``.
        external_assets: ``[n]`` assets each node holds outside the network.
        tol: relative shortfall below which a node is taken to pay in full (absorbs rounding
            in ``Πᵀp̄``, e.g. a closed ring that exactly balances).
        max_iter: cap on the number of rounds (never binding for ``max_iter > n``).

    Returns:
        ``[n]`` payments ``p`` with ``0 <= p <= p̄`` (``p_i``: total paid by ``i``).

    Raises:
        ClearingError: on a non-square, negative, non-finite or self-owing ``liabilities``,
        an ``external_assets`` of the wrong length or negative, or a bad ``tol``/``max_iter``.

    Example (a ring: 0 owes 1 ten, 1 owes 2 five, 2 owes 0 five; node 0 receives 5 and holds
    2, so it pays 7 and defaults; nodes 1 and 2 pay in full)::

        >>> L = np.array([[0, 10, 0], [0, 0, 5], [5, 0, 0]])
        >>> eisenberg_noe(L, [2.0, 0.0, 1.0])
        array([7., 5., 5.])
    """
    lia = _square("liabilities", liabilities)
    n = lia.shape[0]
    e = _vector("external_assets", external_assets, n)
    neg = np.flatnonzero(e < 0)
    if neg.size:
        raise ClearingError(f"external_assets[{neg[0]}] must be >= 0 (got {_num(e[neg[0]])})")
    _check_budget(tol, max_iter)
    return _fictitious_default(lia, e, tol, max_iter)


def _fictitious_default(lia: np.ndarray, e: np.ndarray, tol: float, max_iter: int
                        ) -> np.ndarray:
    """Kernel of :func:`eisenberg_noe` on validated inputs."""
    n = lia.shape[0]
    pbar = lia.sum(axis=1)
    owes = pbar > 0
    pi = np.zeros_like(lia)
    pi[owes] = lia[owes] / pbar[owes, None]
    p = pbar.copy()
    default = np.zeros(n, dtype=bool)
    for _ in range(max_iter):
        income = e + pi.T @ p
        now = default | (income < pbar * (1.0 - tol))
        if now.sum() == default.sum():  # D only grows: equal size means unchanged
            return np.clip(p, 0.0, pbar)
        default = now
        d, solvent = np.flatnonzero(default), np.flatnonzero(~default)
        a = np.eye(d.size) - pi[np.ix_(d, d)].T
        b = e[d] + pi[np.ix_(solvent, d)].T @ pbar[solvent]
        p = pbar.copy()
        p[d] = np.linalg.solve(a, b)
    raise ClearingError(f"the fictitious-default algorithm needs up to n + 1 = {n + 1} rounds "
                        f"(max_iter is {max_iter})")


# --- DebtRank -----------------------------------------------------------------------------------


def debt_rank(exposures: ArrayLike, equity: ArrayLike, shocks: ArrayLike, *,
              variant: DebtRankVariant = "original", tol: float = 1e-12,
              max_iter: int = 10_000) -> np.ndarray:
    r"""Final relative equity losses after a shock, by DebtRank.

    Inputs: ``exposures`` ``[n, n]`` (``A[i, j]``: what ``i`` has lent to or invested in ``j``,
    lost by ``i`` if ``j`` defaults; non-negative, zero diagonal), ``equity`` ``[n]``
    (``E_i > 0``) and ``shocks`` ``[n]`` (``h_i(0) ∈ [0, 1]``: the initial relative equity
    loss). ``h_i = (E_i - E_i(t)) / E_i`` is the relative equity loss; ``h_i = 1`` is default.

    Direction: the matrices below are stored *creditor-row*: entry ``[i, j]`` is the impact on
    ``i`` of distress at ``j`` (losses flow against the lending edge, from borrower ``j`` to
    lender ``i``). The papers index the same quantity by (source of distress, target).

    ``variant="original"`` (Battiston et al. 2012). Impact ``W_ij = min(1, A_ij / E_i)``.
    Each node is undistressed (U), distressed (D) or inactive (I); at ``t = 0`` the nodes with
    ``h_i(0) > 0`` are D, the rest U. Then::

        h_i(t) = min(1, h_i(t-1) + Σ_{j : s_j(t-1) = D} W_ij h_j(t-1))
        s_i(t) = I              if s_i(t-1) = D
                 D              if s_i(t-1) = U and h_i(t) > 0
                 s_i(t-1)       otherwise

    so each node passes on its distress exactly once, at the level it had when it became
    distressed (later losses of an inactive node go nowhere). It stops when no node is D, after
    at most ``n + 1`` rounds. Not monotone in the shocks in general: a small positive shock
    can make a node propagate early, at a small level, instead of later at a large one
    (``tests/simulate/test_clearing.py`` has the three-node example); it is monotone among
    shocks with the same set of initially distressed nodes.

    ``variant="linear"`` (Bardoscia et al. 2015, zero recovery). Interbank leverage
    ``Λ_ij = A_ij / E_i`` (not capped at 1), ``h(-1) = 0``::

        h(t+1) = min(1, h(t) + Λ (h(t) - h(t-1)))

    iterated until ``max|h(t+1) - h(t)| <= tol``. Every increment of distress propagates. By
    induction the iterates equal the Picard iterates of ``h ↦ min(1, h(0) + Λh)`` from
    ``h(0)``, so the result is the least fixed point of ``h = min(1, h(0) + Λh)``; it is
    monotone in the shocks and bounds the original variant from above (componentwise, on the
    same inputs), since ``W ≤ Λ`` and the original passes on ``h_j`` at most once.

    Args:
        exposures: ``[n, n]`` claims, ``A[i, j]`` held by ``i`` on ``j``.
        equity: ``[n]`` equity before the shock, strictly positive.
        shocks: ``[n]`` initial relative equity losses in ``[0, 1]``.
        variant: ``"original"`` or ``"linear"``.
        tol: convergence threshold on the largest change of ``h`` (linear variant).
        max_iter: cap on the rounds; reaching it without convergence raises.

    Returns:
        ``[n]`` final relative equity losses ``h ∈ [0, 1]^n`` with ``h >= shocks``. The
        system-level DebtRank is :func:`debt_rank_systemic` ``(h, shocks, weights)``.

    Raises:
        ClearingError: on bad inputs, or when the linear variant has not converged within
        ``max_iter`` rounds.

    Example (node 1 lent 5 to node 0, node 2 lent 4 to node 1; equities 10, 10, 8; node 0
    loses half its equity: 1 loses 5/10·0.5 = 0.25, then 2 loses 4/8·0.25 = 0.125)::

        >>> A = np.array([[0, 0, 0], [5, 0, 0], [0, 4, 0]])
        >>> debt_rank(A, [10, 10, 8], [0.5, 0, 0])
        array([0.5  , 0.25 , 0.125])
    """
    a = _square("exposures", exposures)
    n = a.shape[0]
    eq = _vector("equity", equity, n)
    bad = np.flatnonzero(eq <= 0)
    if bad.size:
        raise ClearingError(f"equity[{bad[0]}] must be > 0 (got {_num(eq[bad[0]])})")
    h0 = _vector("shocks", shocks, n)
    bad = np.flatnonzero((h0 < 0) | (h0 > 1))
    if bad.size:
        raise ClearingError(f"shocks[{bad[0]}] must be in [0, 1] (got {_num(h0[bad[0]])})")
    _check_budget(tol, max_iter)
    lam = a / eq[:, None]
    if variant == "original":
        return _debt_rank_original(np.minimum(lam, 1.0), h0, max_iter)
    if variant == "linear":
        return _debt_rank_linear(lam, h0, tol, max_iter)
    raise ClearingError(f"variant must be 'original' or 'linear' (got {variant!r})")


def _debt_rank_original(w: np.ndarray, h0: np.ndarray, max_iter: int) -> np.ndarray:
    """Kernel: the distressed/inactive state machine of Battiston et al. (2012)."""
    h = h0.copy()
    distressed = h > 0
    inactive = np.zeros(h.shape, dtype=bool)
    for _ in range(max_iter):
        if not distressed.any():
            return h
        h = np.minimum(1.0, h + w[:, distressed] @ h[distressed])
        inactive |= distressed
        distressed = (h > 0) & ~inactive
    if not distressed.any():
        return h
    raise ClearingError(f"original DebtRank needs up to n + 1 = {h.size + 1} rounds "
                        f"(max_iter is {max_iter})")


def _debt_rank_linear(lam: np.ndarray, h0: np.ndarray, tol: float, max_iter: int
                      ) -> np.ndarray:
    """Kernel: the linear DebtRank recursion of Bardoscia et al. (2015)."""
    prev, h = np.zeros_like(h0), h0.copy()
    change = np.inf
    for _ in range(max_iter):
        nxt = np.minimum(1.0, h + lam @ (h - prev))
        change = float(np.max(nxt - h, initial=0.0))
        prev, h = h, nxt
        if change <= tol:
            return h
    raise ClearingError(f"linear DebtRank did not converge in {max_iter} rounds (largest "
                        f"change in the last round {change:.3g} > tol {tol:g}); raise max_iter "
                        f"or tol")


def debt_rank_systemic(h: ArrayLike, h0: ArrayLike, weights: ArrayLike) -> float:
    r"""System-level DebtRank ``R`` of a run of :func:`debt_rank` (Battiston et al. 2012)::

        v_i = weights_i / Σ_j weights_j          relative economic value
        R   = Σ_i h_i v_i - Σ_i h0_i v_i          in [0, 1]

    the share of the system's economic value lost to propagation, the initial shock
    discounted.

    Args:
        h: ``[n]`` final relative losses (the output of :func:`debt_rank`).
        h0: ``[n]`` the shocks that run started from.
        weights: ``[n]`` non-negative economic values, not all zero (equity, total assets or
            total interbank exposure; normalised here).

    Raises:
        ClearingError: when the three vectors differ in length, ``h`` or ``h0`` leave
        ``[0, 1]``, ``h < h0`` somewhere, or the weights are negative or all zero.

    >>> debt_rank_systemic([0.5, 0.25, 0.125], [0.5, 0, 0], [2, 1, 1])
    0.09375
    """
    hh = _array("h", h)
    if hh.ndim != 1:
        raise ClearingError(f"h must be a vector [n] (got shape {list(hh.shape)})")
    n = hh.shape[0]
    hh = _vector("h", hh, n)
    start = _vector("h0", h0, n)
    v = _vector("weights", weights, n)
    for name, x in (("h", hh), ("h0", start)):
        bad = np.flatnonzero((x < 0) | (x > 1))
        if bad.size:
            raise ClearingError(f"{name}[{bad[0]}] must be in [0, 1] (got {_num(x[bad[0]])})")
    bad = np.flatnonzero(hh < start)
    if bad.size:
        i = bad[0]
        raise ClearingError(f"h must be >= h0 (a run never recovers losses; got h[{i}] = "
                            f"{_num(hh[i])} < h0[{i}] = {_num(start[i])})")
    bad = np.flatnonzero(v < 0)
    if bad.size:
        raise ClearingError(f"weights[{bad[0]}] must be >= 0 (got {_num(v[bad[0]])})")
    total = float(v.sum())
    if not total > 0:
        raise ClearingError("weights must not all be zero (they are normalised to sum to 1)")
    return float((hh - start) @ v) / total


# --- backing over cross-holdings ----------------------------------------------------------------


def backing_ratios(liabilities: np.ndarray, cross: np.ndarray, bad_debt: np.ndarray, *,
                   reserve: np.ndarray | None = None, tol: float = BACKING_TOL,
                   max_iter: int = BACKING_MAX_ITER) -> np.ndarray:
    r"""Backing ratio ``β [..., P]`` of ``P`` protocols with bad debt, reserves and deposits in
    one another (docs/architecture.md §4.5)::

        loss_k = b_k + Σ_j C_kj·(1 - β_j)                       own bad debt + cross-deposit losses
        β_k    = clip(1 - max(loss_k - r_k, 0) / L_k, 0, 1)      (β_k = 1 where L_k = 0)

    ``liabilities`` ``L [P]``: what each protocol owes its depositors and token holders (USD
    at snapshot prices); ``cross`` ``C [P, P]``: ``C[k, j]`` USD that ``k`` deposited in
    ``j``'s pools (lost in proportion to ``j``'s under-backing ``1 - β_j``); ``bad_debt``
    ``b [..., P]``: each protocol's own bad debt (USD), any leading shape (e.g. ``[paths, P]``;
    every row is solved at once); ``reserve`` ``r [P]`` (default 0): what each protocol's
    reserve absorbs before its depositors lose, of its own bad debt and of its losses on
    deposits elsewhere alike. ``β`` is unitless, in ``[0, 1]``; a protocol *fails* when
    ``loss_k > r_k`` (:func:`cross_deposit_losses` gives ``loss_k - b_k``).

    With no prices involved this is Eisenberg–Noe clearing (:func:`eisenberg_noe`): ``k``
    owes ``L_k`` (``C_kj`` of ``j``'s to ``k``, the rest to outside depositors) and holds
    ``e_k = L_k + r_k - b_k - Σ_j C_kj`` outside the network, so ``β_k = p_k / L_k``.

    The map is monotone (more under-backing elsewhere never raises ``β``), so Picard iteration
    from ``β = 1`` decreases to its greatest fixed point; it stops when no ``β`` moved by more
    than ``tol`` in a round. With no bad debt beyond a reserve anywhere ``β = 1`` and nothing
    is iterated. Inputs are not validated: the cascade calls this every round with the arrays
    it compiled.

    Raises:
        ClearingError: when ``max_iter`` rounds do not converge (deposits that are almost all
        of both protocols' liabilities in a ring converge geometrically slowly); the message
        gives the rounds and the residual, the largest change of the last round.

    Example (``L = [100, 50]``; protocol 0 deposited 20 in 1, 1 deposited 10 in 0; bad debts
    10 and 5, no reserves. With ``u = 1 - β_0``, ``v = 1 - β_1``: ``u = (10 + 20v) / 100`` and
    ``v = (5 + 10u) / 50``, so ``u = 0.1 + 0.2(0.1 + 0.2u)``, ``u = 0.12 / 0.96 = 0.125`` and
    ``v = 0.1 + 0.2·0.125 = 0.125``)::

        >>> backing_ratios(np.array([100.0, 50.0]), np.array([[0.0, 20.0], [10.0, 0.0]]),
        ...                np.array([10.0, 5.0])).round(12)
        array([0.875, 0.875])

    With a reserve of 3 at protocol 0 (``u = (10 + 20v - 3) / 100``, ``v = (5 + 10u) / 50``:
    ``u = 0.07 + 0.2(0.1 + 0.2u)``, ``u = 0.09 / 0.96 = 0.09375``, ``v = 0.11875``)::

        >>> backing_ratios(np.array([100.0, 50.0]), np.array([[0.0, 20.0], [10.0, 0.0]]),
        ...                np.array([10.0, 5.0]), reserve=np.array([3.0, 0.0])).round(12)
        array([0.90625, 0.88125])
    """
    r = np.zeros_like(liabilities) if reserve is None else reserve
    safe = np.where(liabilities > 0, liabilities, 1.0)
    beta = np.ones_like(bad_debt)
    if not (bad_debt > r).any():
        return beta
    change = np.inf
    for _ in range(max_iter):
        loss = bad_debt + (1.0 - beta) @ cross.T
        new = np.where(liabilities > 0,
                       np.clip(1.0 - np.maximum(loss - r, 0.0) / safe, 0.0, 1.0), 1.0)
        change = float(np.max(np.abs(new - beta)))
        beta = new
        if change <= tol:
            return beta
    raise ClearingError(f"the backing fixed point did not converge in {max_iter} rounds: the "
                        f"residual (largest change of a backing ratio in the last round) is "
                        f"{change:.3g} > tol {tol:g} (liabilities "
                        f"{np.array2string(liabilities, precision=6)} USD)")


def cross_deposit_losses(cross: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """``[..., P]``: USD each protocol lost on its deposits in the others at backing ``β
    [..., P]`` (``Σ_j C_kj·(1 - β_j)``, the cross term of :func:`backing_ratios`)."""
    return (1.0 - beta) @ cross.T
