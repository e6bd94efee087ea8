"""The pricing formulas and invariant solvers of simulate.formulas: hand-solved values, parity
and consistency checks, and the errors of solvers that do not converge."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import simulate.formulas.black_scholes
import simulate.formulas.stableswap
from graph.errors import ContagionError, ConvergenceError
from simulate.formulas.black_scholes import bs_delta, bs_gamma, bs_price
from simulate.formulas.stableswap import (
    stableswap_d,
    stableswap_depth,
    stableswap_price,
    stableswap_y,
)


def phi(z: float) -> float:
    """Standard normal CDF."""
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


@pytest.mark.parametrize("module", [simulate.formulas.black_scholes,
                                    simulate.formulas.stableswap])
def test_docstring_examples_run(module: object) -> None:
    result = doctest.testmod(module)  # type: ignore[arg-type]
    assert result.attempted >= 3 and result.failed == 0


def test_convergence_error_is_in_the_engine_hierarchy() -> None:
    assert issubclass(ConvergenceError, ContagionError)
    assert issubclass(ConvergenceError, ArithmeticError)


# --- Black–Scholes ------------------------------------------------------------------------------


def test_black_scholes_by_hand() -> None:
    """S = 120, K = 100, τ = 0.5, σ = 0.4: sd = 0.4·√0.5 = 0.28284, d1 = (ln 1.2 + 0.04) /
    0.28284 = 0.78602, d2 = 0.50318; call = 120·N(d1) - 100·N(d2); delta N(d1); gamma
    φ(d1) / (120·0.28284)."""
    sd = 0.4 * math.sqrt(0.5)
    d1 = (math.log(1.2) + 0.5 * sd * sd) / sd
    d2 = d1 - sd
    call = 120.0 * phi(d1) - 100.0 * phi(d2)
    put = 100.0 * phi(-d2) - 120.0 * phi(-d1)
    assert float(bs_price(120.0, 100.0, 0.5, 0.4, True)) == pytest.approx(call, rel=1e-13)
    assert float(bs_price(120.0, 100.0, 0.5, 0.4, False)) == pytest.approx(put, rel=1e-12)
    assert float(bs_delta(120.0, 100.0, 0.5, 0.4, True)) == pytest.approx(phi(d1), rel=1e-13)
    assert float(bs_delta(120.0, 100.0, 0.5, 0.4, False)) == pytest.approx(phi(d1) - 1.0,
                                                                           rel=1e-12)
    density = math.exp(-0.5 * d1 * d1) / math.sqrt(2.0 * math.pi)
    assert float(bs_gamma(120.0, 100.0, 0.5, 0.4)) == pytest.approx(density / (120.0 * sd),
                                                                    rel=1e-13)


@settings(max_examples=200, deadline=None)
@given(spot=st.floats(1.0, 1e5), moneyness=st.floats(-1.0, 1.0), tau=st.floats(1e-3, 3.0),
       vol=st.floats(0.05, 2.0))
def test_put_call_parity(spot: float, moneyness: float, tau: float, vol: float) -> None:
    """At zero rates C - P = S - K, and delta_call - delta_put = 1."""
    strike = spot * math.exp(moneyness)
    call = float(bs_price(spot, strike, tau, vol, True))
    put = float(bs_price(spot, strike, tau, vol, False))
    assert call - put == pytest.approx(spot - strike, abs=1e-9 * max(spot, strike))
    dc, dp = (float(bs_delta(spot, strike, tau, vol, c)) for c in (True, False))
    assert dc - dp == pytest.approx(1.0, abs=1e-12)


def test_gamma_is_the_derivative_of_delta() -> None:
    s, h = np.array([80.0, 100.0, 130.0]), 1e-3
    fd = (bs_delta(s + h, 100.0, 0.25, 0.6, True) - bs_delta(s - h, 100.0, 0.25, 0.6, True)) / (
        2 * h)
    np.testing.assert_allclose(bs_gamma(s, 100.0, 0.25, 0.6), fd, rtol=1e-6)


def test_expiry_and_zero_vol_give_intrinsic_values() -> None:
    spot = np.array([90.0, 110.0])
    np.testing.assert_array_equal(bs_price(spot, 100.0, 0.0, 0.5, True), [0.0, 10.0])
    np.testing.assert_array_equal(bs_price(spot, 100.0, 1.0, 0.0, False), [10.0, 0.0])
    np.testing.assert_array_equal(bs_delta(spot, 100.0, 0.0, 0.5, True), [0.0, 1.0])
    np.testing.assert_array_equal(bs_gamma(spot, 100.0, 0.0, 0.5), [0.0, 0.0])
    assert float(bs_price(0.0, 100.0, 1.0, 0.5, False)) == 100.0  # a worthless underlying


def test_black_scholes_broadcasts_paths_against_contracts() -> None:
    spot = np.array([[90.0], [110.0]])  # [paths, 1]
    strike = np.array([95.0, 100.0, 105.0])  # [contracts]
    marks = bs_price(spot, strike, 0.1, 0.5, np.array([True, False, True]))
    assert marks.shape == (2, 3)
    assert float(marks[1, 0]) == float(bs_price(110.0, 95.0, 0.1, 0.5, True))


# --- StableSwap ---------------------------------------------------------------------------------


@pytest.mark.parametrize("amp", [1e-6, 1.0, 50.0, 2000.0, 1e6])
@pytest.mark.parametrize("n", [2, 3])
def test_balanced_pool_has_d_equal_to_the_sum(amp: float, n: int) -> None:
    """Equal balances x: Π x = xⁿ and D = n·x solves A·nⁿ·(n·x) + D = A·nⁿ·D + D^(n+1) /
    (nⁿ·xⁿ) (both sides are A·nⁿ·D + D), whatever A; the marginal price is 1."""
    x = np.full(n, 250.0)
    assert stableswap_d(x, amp) == pytest.approx(250.0 * n, rel=1e-12)
    assert stableswap_price(x, amp, 0, 1) == pytest.approx(1.0, rel=1e-12)


def test_two_coins_by_hand() -> None:
    """x = 400, y = 100, A = 1 (A·nⁿ = 4): the invariant 4·500 + D = 4D + D³ / (4·400·100)
    is f(D) = D³ / 160,000 + 3D - 2000 = 0. f(461) = 612.33 + 1383 - 2000 = -4.67 and
    f(462) = 616.32 + 1386 - 2000 = 2.32, so the root lies in (461, 462) (numpy's cubic roots
    give it exactly). The price of x in y is (4 + D³/(160,000·400)) / (4 + D³/(160,000·100))."""
    x = np.array([400.0, 100.0])
    roots = np.roots([1.0 / 160_000, 0.0, 3.0, -2000.0])
    d_exact = float(roots[np.isreal(roots)].real[0])
    assert 461.0 < d_exact < 462.0
    d = stableswap_d(x, 1.0)
    assert d == pytest.approx(d_exact, rel=1e-12)
    k = d**3 / 160_000
    assert stableswap_price(x, 1.0, 0, 1, d) == pytest.approx((4 + k / 400) / (4 + k / 100),
                                                              rel=1e-12)


def test_small_amplification_is_constant_product() -> None:
    """A → 0: the invariant becomes D^(n+1) / (nⁿ Π x) = D, i.e. Π x = (D / n)ⁿ, D = 2√(xy);
    the price of x in y is y / x."""
    x = np.array([900.0, 100.0])
    assert stableswap_d(x, 1e-12) == pytest.approx(600.0, rel=1e-9)
    assert stableswap_price(x, 1e-12, 0, 1) == pytest.approx(100.0 / 900.0, rel=1e-9)


@settings(max_examples=100, deadline=None)
@given(x=st.lists(st.floats(1.0, 1e9), min_size=2, max_size=4),
       amp=st.floats(0.01, 5000.0), trade=st.floats(0.0, 2.0))
def test_y_keeps_the_invariant_and_price_is_its_slope(x: list[float], amp: float,
                                                      trade: float) -> None:
    bal = np.array(x)
    d = stableswap_d(bal, amp)
    new = bal[0] * (1.0 + trade)
    y = stableswap_y(bal, 0, 1, new, amp, d)
    after = bal.copy()
    after[0], after[1] = new, y
    assert stableswap_d(after, amp) == pytest.approx(d, rel=1e-9)
    h = 1e-6 * new
    slope = (stableswap_y(bal, 0, 1, new - h, amp, d)
             - stableswap_y(bal, 0, 1, new + h, amp, d)) / (2 * h)
    assert stableswap_price(after, amp, 0, 1, d) == pytest.approx(slope, rel=1e-5)


def test_depth_of_a_constant_product_pool() -> None:
    """A → 0 with reserves (R, R): selling Δ moves the price y/x to (R / (R + Δ))², which is
    0.98 at Δ = R·(0.98^(-1/2) - 1) = 0.010153·R."""
    r = 1e6
    want = r * (0.98 ** -0.5 - 1.0)
    assert stableswap_depth(np.array([r, r]), 1e-9, 0) == pytest.approx(want, rel=1e-6)


def test_d_reports_non_convergence() -> None:
    x = np.array([1e6, 1.0])
    with pytest.raises(ConvergenceError, match=r"stableswap invariant D did not converge in 3 "
                                               r"Newton iterations \(balances .*A = 50\): the "
                                               r"last relative step \(residual\) is 0\.495 > "
                                               r"tol 1e-12"):
        stableswap_d(x, 50.0, max_iter=3)


def test_y_reports_non_convergence() -> None:
    x = np.array([1e6, 1.0])
    d = stableswap_d(x, 50.0)
    with pytest.raises(ConvergenceError, match=r"stableswap balance y of coin 1 did not "
                                               r"converge in 1 Newton iteration \(balances "
                                               r".*residual\) is [0-9.]+ > tol 1e-12"):
        stableswap_y(x, 0, 1, 2e6, 50.0, d, max_iter=1)


def test_an_empty_coin_is_an_error_not_a_nan() -> None:
    with pytest.raises(ConvergenceError, match=r"invariant D did not converge .*the iterate "
                                               r"stopped being finite after 1 Newton "
                                               r"iteration; every balance must be positive"):
        stableswap_d(np.array([1.0, 0.0]), 50.0)
    assert stableswap_d(np.array([0.0, 0.0]), 50.0) == 0.0  # an empty pool
