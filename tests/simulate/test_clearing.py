"""Eisenberg–Noe clearing and DebtRank: textbook networks solved by hand, invariants on random
small networks (against plain fixed-point iterations written here), and input validation."""

from __future__ import annotations

import doctest
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import simulate.clearing
from graph.errors import ContagionError
from simulate.clearing import (
    ClearingError,
    backing_ratios,
    debt_rank,
    debt_rank_systemic,
    eisenberg_noe,
)


def test_docstring_examples_run() -> None:
    result = doctest.testmod(simulate.clearing, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 4 and result.failed == 0


def test_error_class_is_in_the_engine_hierarchy() -> None:
    assert issubclass(ClearingError, ContagionError) and issubclass(ClearingError, ValueError)


# --- Eisenberg–Noe: hand-solved -----------------------------------------------------------------


def test_en_ring_one_bank_defaults_others_pay_in_full() -> None:
    """Ring 0 → 1 → 2 → 0: 0 owes 1 ten, 1 owes 2 five, 2 owes 0 five; e = (2, 0, 1).

    p̄ = (10, 5, 5). Round 1, everyone pays in full: incomes are
    0: 2 + 5 = 7 < 10 (defaults), 1: 0 + 10 = 10 >= 5, 2: 1 + 5 = 6 >= 5; D = {0}.
    Solve with D = {0}: p_0 = e_0 + p_2 = 2 + 5 = 7.
    Round 2: 1 receives 7 >= 5, 2 receives 1 + 5 = 6 >= 5: D unchanged, stop.
    p = (7, 5, 5); equity after clearing: 0: 7 - 10 = -3, 1: 7 - 5 = 2, 2: 1 + 5 - 5 = 1.
    """
    lia = np.array([[0, 10, 0], [0, 0, 5], [5, 0, 0]], dtype=float)
    e = np.array([2.0, 0.0, 1.0])
    p = eisenberg_noe(lia, e)
    assert p == pytest.approx([7.0, 5.0, 5.0], abs=1e-12)
    received = (lia / lia.sum(axis=1, keepdims=True)).T @ p
    assert e + received - lia.sum(axis=1) == pytest.approx([-3.0, 2.0, 1.0], abs=1e-12)


def test_en_chain_default_propagates() -> None:
    """Chain 0 → 1 → 2: 0 owes 1 ten, 1 owes 2 ten; e = (4, 3, 0); p̄ = (10, 10, 0).

    Round 1 (all pay in full): 0 has 4 < 10 → D = {0}; 1 has 3 + 10 = 13 >= 10.
    Solve: p_0 = 4. Round 2: 1 has 3 + 4 = 7 < 10 → D = {0, 1}.
    Solve: p_0 = 4, p_1 = 3 + p_0 = 7. Round 3: 2 owes nothing (p̄_2 = 0): stop.
    p = (4, 7, 0): the default of 0 made 1 default too.
    """
    lia = np.array([[0, 10, 0], [0, 0, 10], [0, 0, 0]], dtype=float)
    p = eisenberg_noe(lia, [4.0, 3.0, 0.0])
    assert p == pytest.approx([4.0, 7.0, 0.0], abs=1e-12)


def test_en_mutual_default_solves_the_linear_system() -> None:
    """0 and 1 each owe the other 10 and owe 2 another 10; e = (2, 2, 0); p̄ = (20, 20, 0),
    Π_01 = Π_02 = Π_10 = Π_12 = 1/2.

    Round 1: 0 and 1 each have 2 + 10 = 12 < 20 → D = {0, 1}. Solve
    p_0 = 2 + p_1/2, p_1 = 2 + p_0/2 → p_0 = p_1 = 2 / (1 - 1/2) = 4. Round 2: unchanged.
    p = (4, 4, 0); check: min(20, 2 + 4/2) = 4. Node 2 receives 4/2 + 4/2 = 4 of its 20.
    (A plain iteration from p̄ only approaches 4 geometrically: 12, 8, 6, 5, 4.5, …)
    """
    lia = np.array([[0, 10, 10], [10, 0, 10], [0, 0, 0]], dtype=float)
    p = eisenberg_noe(lia, [2.0, 2.0, 0.0])
    assert p == pytest.approx([4.0, 4.0, 0.0], abs=1e-12)


def test_en_everyone_pays_in_full() -> None:
    """0 owes 1 five, 1 owes 0 three; e = (2, 0); p̄ = (5, 3).

    0 has 2 + 3 = 5 >= 5 (exactly enough), 1 has 0 + 5 = 5 >= 3: D = ∅, p = p̄ = (5, 3).
    """
    p = eisenberg_noe([[0, 5], [3, 0]], [2.0, 0.0])
    assert p.tolist() == [5.0, 3.0]


def test_en_balanced_circulation_with_rounding_pays_in_full() -> None:
    """Rows and columns of L all sum to 0.3 and e = 0: every node receives exactly what it owes,
    so p = p̄. In floating point Πᵀp̄ misses p̄ by an ulp; the relative tolerance keeps the
    three nodes (a set owing only to itself) out of default."""
    lia = np.array([[0, 0.1, 0.2], [0.2, 0, 0.1], [0.1, 0.2, 0]])
    p = eisenberg_noe(lia, np.zeros(3))
    assert p == pytest.approx(lia.sum(axis=1), rel=1e-12)


def test_en_empty_and_isolated_nodes() -> None:
    assert eisenberg_noe(np.zeros((0, 0)), np.zeros(0)).shape == (0,)
    assert eisenberg_noe(np.zeros((2, 2)), [1.0, 0.0]).tolist() == [0.0, 0.0]
    # a node that owes nothing pays nothing; the zero-asset debtor pays what it has: nothing
    assert eisenberg_noe([[0, 7], [0, 0]], [0.0, 0.0]).tolist() == [0.0, 0.0]


# --- Eisenberg–Noe: invariants ------------------------------------------------------------------


@st.composite
def networks(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """Small networks with integer obligations 0..10 (often zero) and assets 0..30, scaled."""
    n = draw(st.integers(1, 5))
    lia = draw(arrays(np.float64, (n, n), elements=st.sampled_from([0.0, 0.0, 1.0, 2.0, 3.0,
                                                                      5.0, 10.0])))
    np.fill_diagonal(lia, 0.0)
    e = draw(arrays(np.float64, (n,), elements=st.floats(0, 30)))
    scale = draw(st.sampled_from([1e-3, 1.0, 7.5, 1e6]))
    return lia * scale, e * scale


def _relative(lia: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pbar = lia.sum(axis=1)
    pi = np.divide(lia, pbar[:, None], out=np.zeros_like(lia), where=pbar[:, None] > 0)
    return pbar, pi


def _picard(lia: np.ndarray, e: np.ndarray) -> np.ndarray:
    """Plain iteration p ← min(p̄, e + Πᵀp) from p̄: decreasing, to the greatest fixed point."""
    pbar, pi = _relative(lia)
    p = pbar.copy()
    scale = max(1.0, float(pbar.max(initial=0.0)))
    for _ in range(200_000):
        nxt = np.minimum(pbar, e + pi.T @ p)
        if np.max(np.abs(nxt - p), initial=0.0) <= 1e-15 * scale:
            return nxt
        p = nxt
    raise AssertionError("the plain iteration did not converge")


@settings(max_examples=150, deadline=None)
@given(networks())
def test_en_payments_are_the_greatest_fixed_point(net: tuple[np.ndarray, np.ndarray]) -> None:
    lia, e = net
    pbar, pi = _relative(lia)
    scale = max(1.0, float(pbar.max(initial=0.0)), float(e.max(initial=0.0)))
    p = eisenberg_noe(lia, e)
    assert p.shape == e.shape
    assert np.all(p >= 0) and np.all(p <= pbar)
    assert np.abs(p - np.minimum(pbar, e + pi.T @ p)).max(initial=0.0) <= 1e-9 * scale
    assert np.abs(p - _picard(lia, e)).max(initial=0.0) <= 1e-8 * scale


@settings(max_examples=100, deadline=None)
@given(networks(), st.data())
def test_en_monotone_in_external_assets(net: tuple[np.ndarray, np.ndarray],
                                        data: st.DataObject) -> None:
    lia, e = net
    extra = data.draw(arrays(np.float64, e.shape, elements=st.floats(0, 20)))
    scale = max(1.0, float(lia.sum(axis=1).max(initial=0.0)))
    p, more = eisenberg_noe(lia, e), eisenberg_noe(lia, e + extra * scale / 10)
    assert np.all(more >= p - 1e-9 * scale)


@settings(max_examples=50, deadline=None)
@given(networks(), st.floats(1e-3, 1e3))
def test_en_positively_homogeneous(net: tuple[np.ndarray, np.ndarray], c: float) -> None:
    lia, e = net
    scale = max(1.0, float(lia.sum(axis=1).max(initial=0.0)))
    assert eisenberg_noe(c * lia, c * e) == pytest.approx(c * eisenberg_noe(lia, e),
                                                          abs=1e-9 * c * scale)


# --- DebtRank: hand-solved ----------------------------------------------------------------------

# chain: node 1 lent 5 to node 0, node 2 lent 4 to node 1
CHAIN = np.array([[0, 0, 0], [5, 0, 0], [0, 4, 0]], dtype=float)
CHAIN_EQUITY = np.array([10.0, 10.0, 8.0])

# star: centre 0 lent 2 to each leaf, each leaf lent 3 to the centre
STAR = np.array([[0, 2, 2, 2], [3, 0, 0, 0], [3, 0, 0, 0], [3, 0, 0, 0]], dtype=float)
STAR_EQUITY = np.array([10.0, 6.0, 6.0, 6.0])


@pytest.mark.parametrize("variant", ["original", "linear"])
def test_debt_rank_chain(variant: Any) -> None:
    """Impacts W_10 = min(1, 5/10) = 0.5, W_21 = min(1, 4/8) = 0.5 (Λ the same: no cap binds).
    Shock h(0) = (0.5, 0, 0).

    original: t=1: h_1 = 0 + 0.5·0.5 = 0.25 (0 → inactive, 1 → distressed);
    t=2: h_2 = 0.5·0.25 = 0.125 (1 → inactive, 2 → distressed); t=3: nobody lent to 2, stop.
    linear: h(1) = h(0) + Λh(0) = (0.5, 0.25, 0); h(2) = h(1) + Λ(0, 0.25, 0) = (0.5, 0.25,
    0.125); h(3) = h(2) + Λ(0, 0, 0.125) = h(2): converged.
    On a chain each node is hit once, so both give h = (0.5, 0.25, 0.125).
    """
    h = debt_rank(CHAIN, CHAIN_EQUITY, [0.5, 0, 0], variant=variant)
    assert h == pytest.approx([0.5, 0.25, 0.125], abs=1e-12)


def test_debt_rank_star_original() -> None:
    """Λ_0j = 2/10 = 0.2 (centre on leaf j), Λ_j0 = 3/6 = 0.5 (leaf j on centre); W = Λ.
    Shock leaf 1: h(0) = (0, 0.5, 0, 0), distressed {1}.

    t=1: h_0 = 0.2·0.5 = 0.1; h = (0.1, 0.5, 0, 0); 1 → I, 0 → D.
    t=2: each leaf += 0.5·0.1 = 0.05: h = (0.1, 0.55, 0.05, 0.05); 0 → I; 2, 3 → D
         (leaf 1 is inactive: its extra 0.05 goes nowhere).
    t=3: h_0 += 0.2·0.05 + 0.2·0.05 = 0.02: h = (0.12, 0.55, 0.05, 0.05); 2, 3 → I; stop.
    R with weights = equity (v = (10, 6, 6, 6)/28):
    (10·0.12 + 6·0.05 + 6·0.05 + 6·0.05) / 28 = 2.1/28 = 0.075.
    """
    h0 = np.array([0, 0.5, 0, 0])
    h = debt_rank(STAR, STAR_EQUITY, h0)
    assert h == pytest.approx([0.12, 0.55, 0.05, 0.05], abs=1e-12)
    assert debt_rank_systemic(h, h0, STAR_EQUITY) == pytest.approx(0.075, abs=1e-12)


def test_debt_rank_star_linear() -> None:
    """Same star and shock. Iterates: h(1) = (0.1, 0.5, 0, 0), h(2) = (0.1, 0.55, 0.05, 0.05),
    h(3) = h(2) + Λ(0, 0.05, 0.05, 0.05) = (0.13, 0.55, 0.05, 0.05),
    h(4) = h(3) + Λ(0.03, 0, 0, 0) = (0.13, 0.565, 0.065, 0.065), … — every increment
    propagates, back to leaf 1 too. The limit solves h = h(0) + Λh (no cap binds):
    x = h_0 = 0.2·(h_1 + h_2 + h_3), h_1 = 0.5 + 0.5x, h_2 = h_3 = 0.5x
    → x = 0.2·(0.5 + 1.5x) = 0.1 + 0.3x → x = 1/7;
    h = (1/7, 4/7, 1/14, 1/14) ≈ (0.142857, 0.571429, 0.071429, 0.071429), above the original
    (0.12, 0.55, 0.05, 0.05). R = (10/7 + 3·6/14) / 28 = (19/7)/28 = 19/196.
    """
    h0 = np.array([0, 0.5, 0, 0])
    h = debt_rank(STAR, STAR_EQUITY, h0, variant="linear")
    assert h == pytest.approx([1 / 7, 4 / 7, 1 / 14, 1 / 14], abs=1e-11)
    assert debt_rank_systemic(h, h0, STAR_EQUITY) == pytest.approx(19 / 196, abs=1e-11)


def test_debt_rank_impact_cap_is_original_only() -> None:
    """Node 1 lent 20 to node 0 with equity 10: W_10 = min(1, 2) = 1 but Λ_10 = 2.
    Shock h(0) = (0.3, 0): original h_1 = 1·0.3 = 0.3; linear h_1 = min(1, 2·0.3) = 0.6."""
    a, eq = [[0, 0], [20, 0]], [10, 10]
    assert debt_rank(a, eq, [0.3, 0]) == pytest.approx([0.3, 0.3], abs=1e-12)
    assert debt_rank(a, eq, [0.3, 0], variant="linear") == pytest.approx([0.3, 0.6], abs=1e-12)


def test_debt_rank_cycle_original_stops_linear_saturates() -> None:
    """Two nodes each lent the other twice its equity: Λ = [[0, 2], [2, 0]], W = [[0, 1],
    [1, 0]]. Shock h(0) = (0.1, 0).

    original: t=1: h_1 = 0.1 → (0.1, 0.1), 0 → I, 1 → D; t=2: h_0 = 0.1 + 1·0.1 = 0.2 →
    (0.2, 0.1), 1 → I; stop. h = (0.2, 0.1).
    linear: h(1) = (0.1, 0.2); h(2) = h(1) + Λ(0, 0.2) = (0.5, 0.2);
    h(3) = h(2) + Λ(0.4, 0) = (0.5, 1.0); h(4) = min(1, h(3) + Λ(0, 0.8)) = (1, 1): both default.
    """
    a, eq = [[0, 2], [2, 0]], [1, 1]
    assert debt_rank(a, eq, [0.1, 0]) == pytest.approx([0.2, 0.1], abs=1e-12)
    assert debt_rank(a, eq, [0.1, 0], variant="linear").tolist() == [1.0, 1.0]


def test_debt_rank_original_is_not_monotone_in_shocks() -> None:
    """The original variant propagates a node's distress once, at the level it has when it
    first becomes distressed. Node 1 lent 5 to node 0 (equity 10: W_10 = 0.5); node 2 lent 10
    to node 1 (equity 10: W_21 = 1).

    Shock (1, 0, 0): t=1: h_1 = 0.5, 1 → D; t=2: h_2 = 1·0.5 = 0.5. h = (1, 0.5, 0.5).
    Shock (1, 0.01, 0) (larger): 0 and 1 are distressed at t=0; t=1: h_1 = 0.01 + 0.5 = 0.51,
    h_2 = 1·0.01 = 0.01; 0, 1 → I; 2 → D but passes nothing on. h = (1, 0.51, 0.01):
    node 2 loses less under the larger shock. The linear variant gives (1, 0.5, 0.5) and
    (1, 0.51, 0.51).
    """
    a, eq = [[0, 0, 0], [5, 0, 0], [0, 10, 0]], [10, 10, 10]
    assert debt_rank(a, eq, [1, 0, 0]) == pytest.approx([1, 0.5, 0.5], abs=1e-12)
    assert debt_rank(a, eq, [1, 0.01, 0]) == pytest.approx([1, 0.51, 0.01], abs=1e-12)
    assert debt_rank(a, eq, [1, 0, 0], variant="linear") == pytest.approx([1, 0.5, 0.5])
    assert debt_rank(a, eq, [1, 0.01, 0], variant="linear") == pytest.approx([1, 0.51, 0.51])


def test_debt_rank_systemic_hand_solved() -> None:
    """h = (0.5, 0.25, 0.125), h0 = (0.5, 0, 0), weights (2, 1, 1) → v = (0.5, 0.25, 0.25):
    R = 0.25·0.25 + 0.25·0.125 = 0.09375 (the initial loss of node 0 is discounted)."""
    assert debt_rank_systemic([0.5, 0.25, 0.125], [0.5, 0, 0], [2, 1, 1]) == 0.09375


# --- DebtRank: invariants -----------------------------------------------------------------------


@st.composite
def exposure_networks(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = draw(st.integers(1, 5))
    a = draw(arrays(np.float64, (n, n), elements=st.sampled_from([0.0, 0.0, 1.0, 2.0, 5.0,
                                                                    10.0])))
    np.fill_diagonal(a, 0.0)
    eq = draw(arrays(np.float64, (n,), elements=st.sampled_from([1.0, 4.0, 10.0, 25.0])))
    # initial distress 0 or at least 0.001: with a spectral radius of exactly 1 (Λ has entries
    # of 1 here) and a subnormal h0, the iteration grows by h0 a round and no budget suffices
    h0 = draw(arrays(np.float64, (n,), elements=st.one_of(st.just(0.0), st.floats(1e-3, 1))))
    return a, eq, h0


def _linear_picard(a: np.ndarray, eq: np.ndarray, h0: np.ndarray) -> np.ndarray:
    """Plain iteration h ← min(1, h0 + Λh) from h0: increasing, to the least fixed point."""
    lam = a / eq[:, None]
    h = h0.copy()
    for _ in range(200_000):
        nxt = np.minimum(1.0, h0 + lam @ h)
        if np.max(nxt - h, initial=0.0) <= 1e-14:
            return nxt
        h = nxt
    raise AssertionError("the plain iteration did not converge")


KW: dict[str, Any] = {"tol": 1e-14, "max_iter": 200_000}


@settings(max_examples=150, deadline=None)
@given(exposure_networks())
def test_debt_rank_bounds_and_ordering(net: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    a, eq, h0 = net
    orig = debt_rank(a, eq, h0)
    lin = debt_rank(a, eq, h0, variant="linear", **KW)
    for h in (orig, lin):
        assert h.shape == h0.shape
        assert np.all(h >= h0) and np.all(h <= 1.0)
        assert 0.0 <= debt_rank_systemic(h, h0, eq) <= 1.0
    assert np.all(lin >= orig - 1e-9)
    # linear DebtRank is the least fixed point of h = min(1, h0 + Λh)
    assert lin == pytest.approx(_linear_picard(a, eq, h0), abs=1e-9)
    assert lin == pytest.approx(np.minimum(1.0, h0 + (a / eq[:, None]) @ lin), abs=1e-9)


@settings(max_examples=50, deadline=None)
@given(exposure_networks())
def test_debt_rank_zero_shock_zero_loss(net: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    a, eq, h0 = net
    for variant in ("original", "linear"):
        assert debt_rank(a, eq, np.zeros_like(h0), variant=variant).tolist() == [0.0] * len(h0)


@settings(max_examples=100, deadline=None)
@given(exposure_networks(), st.data())
def test_debt_rank_linear_monotone_in_shocks(net: tuple[np.ndarray, np.ndarray, np.ndarray],
                                             data: st.DataObject) -> None:
    a, eq, h0 = net
    bigger = np.minimum(1.0, h0 + data.draw(arrays(np.float64, h0.shape,
                                                   elements=st.floats(0, 1))))
    lo = debt_rank(a, eq, h0, variant="linear", **KW)
    hi = debt_rank(a, eq, bigger, variant="linear", **KW)
    assert np.all(hi >= lo - 1e-9)


@settings(max_examples=100, deadline=None)
@given(exposure_networks(), st.data())
def test_debt_rank_original_monotone_on_the_same_distressed_set(
        net: tuple[np.ndarray, np.ndarray, np.ndarray], data: st.DataObject) -> None:
    """With the same initially distressed nodes every node becomes distressed at the same round
    (its distance from them), so larger shocks give larger losses everywhere."""
    a, eq, h0 = net
    extra = data.draw(arrays(np.float64, h0.shape, elements=st.floats(0, 1)))
    bigger = np.where(h0 > 0, np.minimum(1.0, h0 + extra), 0.0)
    assert np.all(debt_rank(a, eq, bigger) >= debt_rank(a, eq, h0) - 1e-12)


# --- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("lia", "e", "kw", "match"), [
    (np.zeros((2, 3)), np.zeros(2), {}, r"liabilities must be a square \[n, n\] matrix "
                                        r"\(got \[2, 3\]\)"),
    (np.zeros(3), np.zeros(3), {}, r"square \[n, n\] matrix \(got \[3\]\)"),
    ([[0, -3], [1, 0]], [0, 0], {}, r"liabilities\[0, 1\] must be >= 0 \(got -3\)"),
    ([[0, np.nan], [1, 0]], [0, 0], {}, r"liabilities must be finite \(got nan at \[0, 1\]\)"),
    ([[0, 1], [1, 2]], [0, 0], {}, r"zero diagonal.*\(got 2 at \[1, 1\]\)"),
    ([[0, 1], [1, 0]], [0, -5], {}, r"external_assets\[1\] must be >= 0 \(got -5\)"),
    ([[0, 1], [1, 0]], [0, 1, 2], {}, r"external_assets must be a vector of length 2, one "
                                      r"entry per node \(got shape \[3\]\)"),
    ([[0, 1], [1, 0]], [0, np.inf], {}, r"external_assets\[1\] must be finite \(got inf\)"),
    ([[0, 1], [1, 0]], [0, 0], {"tol": 0.0}, r"tol must be a finite number > 0 \(got 0.0\)"),
    ([[0, 1], [1, 0]], [0, 0], {"max_iter": 0}, r"max_iter must be an integer >= 1 \(got 0\)"),
    ([["a", 1], [1, 0]], [0, 0], {}, r"liabilities must be an array of numbers"),
])
def test_en_rejects_bad_input(lia: Any, e: Any, kw: dict[str, Any], match: str) -> None:
    with pytest.raises(ClearingError, match=match):
        eisenberg_noe(lia, e, **kw)


def test_en_max_iter_too_small_for_the_cascade() -> None:
    """The chain needs 3 rounds (two growing D, one confirming it)."""
    lia = [[0, 10, 0], [0, 0, 10], [0, 0, 0]]
    with pytest.raises(ClearingError, match=r"up to n \+ 1 = 4 rounds \(max_iter is 2\)"):
        eisenberg_noe(lia, [4.0, 3.0, 0.0], max_iter=2)


@pytest.mark.parametrize(("args", "kw", "match"), [
    (([[0, 1], [1, 0]], [1, 0], [0, 0]), {}, r"equity\[1\] must be > 0 \(got 0\)"),
    (([[0, 1], [1, 0]], [1, 1], [1.5, 0]), {}, r"shocks\[0\] must be in \[0, 1\] \(got 1.5\)"),
    (([[0, 1], [1, 0]], [1, 1], [0]), {}, r"shocks must be a vector of length 2"),
    (([[0, 1]], [1], [0]), {}, r"exposures must be a square \[n, n\] matrix \(got \[1, 2\]\)"),
    (([[0, -1], [1, 0]], [1, 1], [0, 0]), {}, r"exposures\[0, 1\] must be >= 0 \(got -1\)"),
    (([[0, 1], [1, 0]], [1, 1], [0, 0]), {"variant": "nonlinear"},
     r"variant must be 'original' or 'linear' \(got 'nonlinear'\)"),
])
def test_debt_rank_rejects_bad_input(args: tuple[Any, Any, Any], kw: dict[str, Any],
                                     match: str) -> None:
    with pytest.raises(ClearingError, match=match):
        debt_rank(*args, **kw)


def test_debt_rank_linear_reports_non_convergence() -> None:
    """Λ = [[0, 0.99], [0.99, 0]] with a tiny shock never saturates and converges like 0.99^t."""
    a = [[0, 0.99], [0.99, 0]]
    with pytest.raises(ClearingError, match=r"did not converge in 50 rounds"):
        debt_rank(a, [1, 1], [0.001, 0], variant="linear", max_iter=50)


@pytest.mark.parametrize(("args", "match"), [
    (([0.5, 0.2], [0.5, 0.3], [1, 1]), r"h must be >= h0 .*h\[1\] = 0.2 < h0\[1\] = 0.3"),
    (([0.5, 0.2], [0.5, 0.1], [0, 0]), r"weights must not all be zero"),
    (([0.5, 0.2], [0.5, 0.1], [1, -1]), r"weights\[1\] must be >= 0 \(got -1\)"),
    (([0.5, 1.2], [0.5, 0.1], [1, 1]), r"h\[1\] must be in \[0, 1\] \(got 1.2\)"),
    (([0.5, 0.2], [0.5], [1, 1]), r"h0 must be a vector of length 2"),
])
def test_debt_rank_systemic_rejects_bad_input(args: tuple[Any, Any, Any], match: str) -> None:
    with pytest.raises(ClearingError, match=match):
        debt_rank_systemic(*args)


# --- backing over cross-holdings ----------------------------------------------------------------


def test_backing_two_protocols_by_hand() -> None:
    """L = [100, 50]; protocol 0 deposited 20 in 1, protocol 1 deposited 10 in 0; shortfalls 10
    and 5. With u = 1 - β_0 and v = 1 - β_1: u = (10 + 20v) / 100 = 0.1 + 0.2v and
    v = (5 + 10u) / 50 = 0.1 + 0.2u, so u = 0.1 + 0.02 + 0.04u, u = 0.12 / 0.96 = 0.125 = v.
    A second row without shortfall stays fully backed (rows are solved independently)."""
    beta = backing_ratios(np.array([100.0, 50.0]), np.array([[0.0, 20.0], [10.0, 0.0]]),
                          np.array([[10.0, 5.0], [0.0, 0.0]]))
    np.testing.assert_allclose(beta, [[0.875, 0.875], [1.0, 1.0]], rtol=1e-12)


def test_backing_clips_and_skips_protocols_without_liabilities() -> None:
    """A shortfall of 300 on liabilities of 100 is a full default (β = 0, not -2); protocol 1
    owes nothing (L = 0), so it is backed at 1 whatever it lost; protocol 2 deposited 40 in
    protocol 0 and loses all of it: β_2 = 1 - 40 / 200 = 0.8."""
    cross = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [40.0, 0.0, 0.0]])
    beta = backing_ratios(np.array([100.0, 0.0, 200.0]), cross, np.array([300.0, 7.0, 0.0]))
    np.testing.assert_allclose(beta, [0.0, 1.0, 0.8], rtol=1e-12)
    np.testing.assert_array_equal(backing_ratios(np.array([100.0]), np.zeros((1, 1)),
                                                 np.zeros((4, 1))), np.ones((4, 1)))


def test_backing_reports_non_convergence() -> None:
    """Two protocols that each deposited 99% of their liabilities (100) in the other, and a
    shortfall of 0.001 at protocol 0: u = 1e-5 + 0.99v and v = 0.99u (u, v = 1 - β), so
    u = 1e-5 / (1 - 0.99²) = 5.025e-4. Iteration from β = 1 closes the distance to it by only
    a factor 0.99 a round: after 1000 rounds β still moves by about 4e-10 a round."""
    lia, cross = np.array([100.0, 100.0]), np.array([[0.0, 99.0], [99.0, 0.0]])
    with pytest.raises(ClearingError, match=r"the backing fixed point did not converge in 1000 "
                                            r"rounds: the residual \(largest change of a "
                                            r"backing ratio in the last round\) is 4\.36e-10 > "
                                            r"tol 1e-13"):
        backing_ratios(lia, cross, np.array([1e-3, 0.0]))
    # with a larger budget it stops when a round moves β by <= 1e-13, which leaves it within
    # about 1e-13 / (1 - 0.99) = 1e-11 of the fixed point (relative 2e-8 of 1 - β)
    beta = backing_ratios(lia, cross, np.array([1e-3, 0.0]), max_iter=100_000)
    np.testing.assert_allclose(1.0 - beta, [1e-5 / (1 - 0.99**2), 0.99e-5 / (1 - 0.99**2)],
                               rtol=1e-7)
