"""Tail statistics: hand-solved samples, the coherence of the expected-shortfall estimator,
Euler contributions, standard errors on seeded exponential samples, and input validation."""

from __future__ import annotations

import doctest
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import simulate.risk
from graph.errors import ContagionError
from simulate.risk import Z95, RiskError, TailRisk, euler_contributions, tail_risk


def test_docstring_examples_run() -> None:
    result = doctest.testmod(simulate.risk)
    assert result.attempted >= 4 and result.failed == 0


def test_error_class_is_in_the_engine_hierarchy() -> None:
    assert issubclass(RiskError, ContagionError) and issubclass(RiskError, ValueError)


# --- hand-solved --------------------------------------------------------------------------------


def test_one_to_hundred_at_95() -> None:
    """Losses 1, 2, …, 100 at α = 0.95: α n = 95, k = 95, VaR = L_(95) = 95.
    ES = [Σ_{i > 95} L_(i) + (95 - 95)·95] / (100·0.05) = (96 + … + 100)/5 = 490/5 = 98:
    the mean of the worst n(1-α) = 5 losses.

    VaR SE: s = sqrt(100·0.95·0.05) = sqrt(4.75) = 2.179449, z s = 1.959964·2.179449 = 4.271640;
    j_lo = ⌊95 - 4.271640⌋ = 90, j_hi = ⌈95 + 4.271640⌉ = 100;
    SE = (100 - 90)/(2·1.959964) = 2.551067.
    ES SE: tail variance of 96..100 (weights 1/5) = (4 + 1 + 0 + 1 + 4)/5 = 2; ES - VaR = 3;
    Var = (2 + 0.95·9)/(100·0.05) = 10.55/5 = 2.11; SE = sqrt(2.11) = 1.452584.
    """
    r = tail_risk(np.arange(1.0, 101.0), 0.95)
    assert isinstance(r, TailRisk)
    assert (r.level, r.var, r.cvar, r.n) == (0.95, 95.0, 98.0, 100)
    assert r.var_se == pytest.approx(2.551067, abs=1e-6)
    assert r.cvar_se == pytest.approx(1.452584, abs=1e-6)


def test_fractional_tail_path() -> None:
    """Losses 1..10 at α = 0.75: α n = 7.5 is not an integer, k = ⌈7.5⌉ = 8, VaR = 8.
    ES = [L_(9) + L_(10) + (8 - 7.5)·L_(8)] / (10·0.25) = (9 + 10 + 0.5·8)/2.5 = 23/2.5 = 9.2:
    the worst 2.5 "paths" are 10, 9 and half of 8. Weights w = (0.2, 0.4, 0.4) on (8, 9, 10).

    VaR SE: s = sqrt(10·0.75·0.25) = 1.369306, z s = 2.683790; j_lo = ⌊4.816⌋ = 4,
    j_hi = ⌈10.184⌉ = 11 → clipped to 10; SE = (10 - 4)/3.919928 = 1.530640.
    ES SE: tail variance 0.2·(8 - 9.2)² + 0.4·(9 - 9.2)² + 0.4·(10 - 9.2)²
    = 0.288 + 0.016 + 0.256 = 0.56; α (ES - VaR)² = 0.75·1.44 = 1.08;
    Var = (0.56 + 1.08)/2.5 = 0.656; SE = 0.809938.
    """
    losses = np.arange(1.0, 11.0)
    r = tail_risk(np.random.default_rng(3).permutation(losses), 0.75)  # order does not matter
    assert r.var == 8.0
    assert r.cvar == pytest.approx(9.2, abs=1e-12)
    assert r.var_se == pytest.approx(1.530640, abs=1e-6)
    assert r.cvar_se == pytest.approx(0.809938, abs=1e-6)


def test_ties_at_var() -> None:
    """Six paths lose 0, four lose 5; α = 0.75: α n = 7.5, k = 8, VaR = L_(8) = 5.
    No loss exceeds 5; the four tied paths carry the whole tail, weight (10 - 7.5)/2.5 = 1:
    ES = 5 = VaR, and the tail variance is 0, so the ES SE is 0 as well."""
    r = tail_risk([0, 0, 0, 0, 0, 0, 5, 5, 5, 5], 0.75)
    assert (r.var, r.cvar, r.cvar_se) == (5.0, 5.0, 0.0)


def test_alpha_n_rounding_does_not_move_k() -> None:
    """0.07·100 = 7.000000000000001 in floating point; k must be 7, not 8. So VaR = 7 and ES is
    the mean of the worst 93 of 1..100: (8 + 100)/2 = 54."""
    assert 0.07 * 100 > 7
    r = tail_risk(np.arange(1.0, 101.0), 0.07)
    assert r.var == 7.0
    assert r.cvar == pytest.approx(54.0, abs=1e-12)


def test_single_path() -> None:
    r = tail_risk([3.5], 0.99)
    assert (r.var, r.cvar, r.var_se, r.cvar_se, r.n) == (3.5, 3.5, 0.0, 0.0, 1)


def test_euler_hand_solved() -> None:
    """Paths lose 1..10 in total; odd totals are component A, even ones component B.
    α = 0.75 weights (from the 1..10 case): path 10 (all B) 0.4, path 9 (all A) 0.4,
    path 8 (all B) 0.2. Contributions: A = 0.4·9 = 3.6; B = 0.4·10 + 0.2·8 = 5.6;
    A + B = 9.2 = ES of the total."""
    totals = np.arange(1.0, 11.0)
    x = np.stack([np.where(totals % 2 == 1, totals, 0), np.where(totals % 2 == 0, totals, 0)],
                 axis=1)
    c = euler_contributions(x, 0.75)
    assert c.shape == (2,)
    assert c == pytest.approx([3.6, 5.6], abs=1e-12)
    shuffled = x[np.random.default_rng(0).permutation(10)]
    assert euler_contributions(shuffled, 0.75) == pytest.approx([3.6, 5.6], abs=1e-12)


def test_euler_ties_share_the_tail_equally() -> None:
    """Totals (0×6, 5×4) at α = 0.75: the four tied paths each weigh 1/4, whatever their order.
    Components of the tied paths: (5, 0), (0, 5), (5, 0), (5, 0) → A = 15/4, B = 5/4."""
    x = np.array([[0, 0]] * 6 + [[5, 0], [0, 5], [5, 0], [5, 0]], dtype=float)
    for perm in (np.arange(10), np.arange(10)[::-1]):
        assert euler_contributions(x[perm], 0.75) == pytest.approx([3.75, 1.25], abs=1e-12)


# --- estimator invariants -----------------------------------------------------------------------

_loss = st.floats(0, 1e6, allow_subnormal=False)
samples = arrays(np.float64, st.integers(1, 200), elements=_loss)
levels = st.floats(0.01, 0.995)


@settings(max_examples=200, deadline=None)
@given(samples, levels)
def test_es_at_least_var_at_least_min(x: np.ndarray, level: float) -> None:
    r = tail_risk(x, level)
    assert x.min() <= r.var <= r.cvar <= x.max() * (1 + 1e-12)
    assert r.var_se >= 0 and r.cvar_se >= 0 and r.n == x.size
    an = level * x.size  # α n, taken as an integer when within 1e-9 relative of one
    k = round(an) if abs(an - round(an)) <= 1e-9 * max(1.0, an) else math.ceil(an)
    assert r.var == np.sort(x)[max(k, 1) - 1]


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_es_is_mean_of_worst_when_integral(data: st.DataObject) -> None:
    n = data.draw(st.integers(2, 300))
    m = data.draw(st.integers(1, n - 1))
    x = data.draw(arrays(np.float64, n, elements=_loss))
    r = tail_risk(x, 1 - m / n)
    assert r.cvar == pytest.approx(np.sort(x)[-m:].mean(), rel=1e-12, abs=1e-9)


@settings(max_examples=150, deadline=None)
@given(samples, levels, st.floats(-1e3, 1e3))
def test_translation_equivariance(x: np.ndarray, level: float, c: float) -> None:
    r, s = tail_risk(x, level), tail_risk(x + c, level)
    scale = 1e-9 * (1 + float(x.max()) + abs(c))
    assert s.var == pytest.approx(r.var + c, abs=scale)
    assert s.cvar == pytest.approx(r.cvar + c, abs=scale)
    assert s.var_se == pytest.approx(r.var_se, abs=scale)
    assert s.cvar_se == pytest.approx(r.cvar_se, abs=1e3 * scale)


@settings(max_examples=150, deadline=None)
@given(samples, levels, st.floats(1e-3, 1e3))
def test_positive_homogeneity(x: np.ndarray, level: float, c: float) -> None:
    r, s = tail_risk(x, level), tail_risk(c * x, level)
    for got, want in ((s.var, r.var), (s.cvar, r.cvar), (s.var_se, r.var_se),
                      (s.cvar_se, r.cvar_se)):
        assert got == pytest.approx(c * want, rel=1e-9, abs=1e-9 * c * (1 + float(x.max())))


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 100).flatmap(
    lambda n: st.tuples(arrays(np.float64, n, elements=_loss),
                        arrays(np.float64, n, elements=_loss))), levels)
def test_es_is_subadditive_and_monotone(xy: tuple[np.ndarray, np.ndarray], level: float
                                        ) -> None:
    """Coherence of the empirical ES: sub-additive over two loss components of the same paths,
    and a pathwise larger loss never has a smaller VaR or ES."""
    x, y = xy
    tol = 1e-9 * (1 + float(x.max()) + float(y.max()))
    assert tail_risk(x + y, level).cvar <= (tail_risk(x, level).cvar
                                            + tail_risk(y, level).cvar + tol)
    bigger = tail_risk(x + y, level)
    assert bigger.var >= tail_risk(x, level).var - tol
    assert bigger.cvar >= tail_risk(x, level).cvar - tol


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 100).flatmap(
    lambda n: arrays(np.float64, st.tuples(st.just(n), st.integers(1, 4)), elements=_loss)),
    levels)
def test_euler_contributions_add_up_to_es(x: np.ndarray, level: float) -> None:
    c = euler_contributions(x, level)
    es = tail_risk(x.sum(axis=1), level).cvar
    assert c.shape == (x.shape[1],)
    assert np.all(c >= 0)
    assert c.sum() == pytest.approx(es, rel=1e-12, abs=1e-9 * (1 + float(x.max())))
    # each contribution is at most that component's own ES (ES is coherent)
    for j in range(x.shape[1]):
        assert c[j] <= tail_risk(x[:, j], level).cvar * (1 + 1e-12) + 1e-9


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_euler_equals_component_tail_means(data: st.DataObject) -> None:
    """With distinct totals and n(1-α) = m integral, contribution c is the mean of component c
    over the m paths with the largest totals."""
    n = data.draw(st.integers(2, 60))
    m = data.draw(st.integers(1, n - 1))
    k = data.draw(st.integers(1, 3))
    seed = data.draw(st.integers(0, 2**32 - 1))
    x = np.random.default_rng(seed).exponential(size=(n, k))
    worst = np.argsort(x.sum(axis=1))[-m:]
    assert euler_contributions(x, 1 - m / n) == pytest.approx(x[worst].mean(axis=0), rel=1e-12)


# --- Monte Carlo standard errors ----------------------------------------------------------------


def test_standard_errors_shrink_like_root_n() -> None:
    """Exp(1) losses, α = 0.95, n = 4 000 and 16 n = 64 000 (seeded): the ratio of the SEs
    should be sqrt(16) = 4. The VaR SE (a difference of order statistics) is the noisier."""
    rng = np.random.default_rng(20240611)
    small = tail_risk(rng.exponential(size=4_000), 0.95)
    large = tail_risk(rng.exponential(size=64_000), 0.95)
    assert 2.8 <= small.var_se / large.var_se <= 5.6
    assert 3.3 <= small.cvar_se / large.cvar_se <= 4.8


def test_exponential_tail_matches_closed_form() -> None:
    """For Exp(1): VaR_α = -ln(1-α), and by memorylessness ES_α = VaR_α + 1 = 1 - ln(1-α),
    Var(L | L > VaR) = 1. At α = 0.99: VaR = ln 100 = 4.605170, ES = 5.605170.
    Asymptotic SEs: VaR: sqrt(α(1-α)/n)/f(VaR) = sqrt(α/(n(1-α))) (density f = 1-α there);
    ES (Manistre–Hancock): sqrt((1 + α·1²)/(n(1-α))). With n = 200 000 both estimates must
    lie within 4 SE of the truth and the SEs near their asymptotic values."""
    n, alpha = 200_000, 0.99
    r = tail_risk(np.random.default_rng(7).exponential(size=n), alpha)
    var, es = -math.log(1 - alpha), 1 - math.log(1 - alpha)
    assert abs(r.var - var) <= 4 * r.var_se
    assert abs(r.cvar - es) <= 4 * r.cvar_se
    assert r.var_se == pytest.approx(math.sqrt(alpha / (n * (1 - alpha))), rel=0.25)
    assert r.cvar_se == pytest.approx(math.sqrt((1 + alpha) / (n * (1 - alpha))), rel=0.1)


def test_standard_errors_match_the_spread_across_replications() -> None:
    """300 independent Exp(1) samples of n = 2 000 at α = 0.95: the standard deviation of the
    300 VaR and ES estimates should match the average reported SE."""
    rng = np.random.default_rng(11)
    runs = [tail_risk(rng.exponential(size=2_000), 0.95) for _ in range(300)]
    var_sd = float(np.std([r.var for r in runs], ddof=1))
    es_sd = float(np.std([r.cvar for r in runs], ddof=1))
    assert np.mean([r.var_se for r in runs]) == pytest.approx(var_sd, rel=0.2)
    assert np.mean([r.cvar_se for r in runs]) == pytest.approx(es_sd, rel=0.2)


def test_z_is_the_two_sided_95_normal_quantile() -> None:
    assert 0.5 * math.erfc(Z95 / math.sqrt(2)) == pytest.approx(0.025, abs=1e-12)


# --- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("losses", "level", "match"), [
    (np.ones((3, 2)), 0.95, r"losses must be a 1-D array \[n_paths\] of per-path losses "
                            r"\(got shape \[3, 2\]\)"),
    (5.0, 0.95, r"losses must be a 1-D array .*\(got shape \[\]\)"),
    ([], 0.95, r"losses must not be empty \(got 0 paths\)"),
    ([1.0, np.nan, 2.0], 0.95, r"losses must be finite \(got nan at \[1\]\)"),
    ([1.0, np.inf], 0.95, r"losses must be finite \(got inf at \[1\]\)"),
    (["a", "b"], 0.95, r"losses must be an array of numbers"),
    ([1.0, 2.0], 1.0, r"level must be in \(0, 1\) \(got 1.0\)"),
    ([1.0, 2.0], 0, r"level must be in \(0, 1\) \(got 0\)"),
    ([1.0, 2.0], float("nan"), r"level must be in \(0, 1\) \(got nan\)"),
    ([1.0, 2.0], "high", r"level must be a number in \(0, 1\) \(got 'high'\)"),
])
def test_tail_risk_rejects_bad_input(losses: Any, level: Any, match: str) -> None:
    with pytest.raises(RiskError, match=match):
        tail_risk(losses, level)


@pytest.mark.parametrize(("x", "level", "match"), [
    (np.ones(4), 0.9, r"component_losses must be a \[n_paths, K\] matrix .*\(got shape \[4\]\)"),
    (np.ones((4, 0)), 0.9, r"\[n_paths, K\] matrix with n_paths >= 1 and K >= 1 "
                           r"\(got shape \[4, 0\]\)"),
    (np.ones((0, 2)), 0.9, r"\(got shape \[0, 2\]\)"),
    ([[1.0, 2.0], [3.0, np.inf]], 0.9, r"component_losses must be finite \(got inf at \[1, 1\]\)"),
    ([[1.0, 2.0]], 1.5, r"level must be in \(0, 1\) \(got 1.5\)"),
])
def test_euler_rejects_bad_input(x: Any, level: float, match: str) -> None:
    with pytest.raises(RiskError, match=match):
        euler_contributions(x, level)
