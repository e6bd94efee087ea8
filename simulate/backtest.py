"""Backtesting one-period Value-at-Risk: rolling forecasts of four methods, coverage tests and
the quantile loss, all on the same out-of-sample periods.

A period is a day or an hour (``frequency``); the VaR horizon is one period. The returns are
the decimal log returns of :func:`simulate.prices.log_returns` (never across a missing
period), oldest first; the first ``window`` of them are only ever history, and every later
period ``t`` is forecast from the returns before ``t`` only. ``VaR_t(α)`` is a positive loss
(a fraction); the forecast ``1 - α`` quantile of ``r_t`` is ``q_t = -VaR_t(α)``.

Methods (``METHODS``):

- **historical simulation** (``"historical"``):
  ``VaR_t(α) = -Q_{1-α}(r_{t-w}, …, r_{t-1})``, the empirical quantile (linear
  interpolation) of the trailing ``window`` returns.
- **RiskMetrics EWMA-normal** (``"ewma"``): ``σ²_t = λ·σ²_{t-1} + (1 - λ)·r²_{t-1}``, zero
  mean, ``VaR_t(α) = -σ_t·Φ⁻¹(1 - α)``. arch's ``EWMAVariance`` runs the recursion over every
  return used (it is not re-started per window), from arch's backcast
  ``σ²_0 = Σ_{i<τ} 0.94^i·r²_i / Σ_{i<τ} 0.94^i``, ``τ = min(75, n)`` (inside the first
  window). ``λ = 0.94`` per period at either frequency (RiskMetrics, 1996; :func:`ewma_lambda`):
  the same decay per period (half-life ``ln 0.5 / ln 0.94 ≈ 11.2`` periods, so 11 hours
  hourly), not the same half-life in time (``0.94^(1/24) ≈ 0.99743`` per hour, 11.2 days).
  RiskMetrics' rule is per observation, and hourly volatility shocks die out within hours:
  GARCH(1,1)-normal fits on eight 1,000-hour windows spread over each of the eight hourly
  series of ``data/market`` have a persistence ``α + β`` per hour between 0.38 and 0.99
  (the fit guard's bound), most of them below 0.94, none near 0.997. (On the last 6,000
  hours of each of those series, 0.94 per hour also has the lower pinball loss at both
  levels on every series.)
- **GARCH(1,1)-normal** (``"garch-normal"``) and **the project's model** (``"model"``, the
  :class:`~simulate.market.volatility.VolSpec`, default GJR-GARCH(1,1)-skewed-t): fitted by
  :func:`~simulate.market.volatility.fit_volatility` on the trailing ``window`` returns every
  ``refit_every`` periods; between refits the parameters are held and the conditional
  volatility is filtered forward (arch's fixed result,
  :meth:`~simulate.market.volatility.FittedVolatility.result`, over the window and the periods
  since the refit). With ``μ`` the fitted mean (0 for a zero mean), ``σ_t`` the one-step
  conditional volatility and ``F`` the fitted standardised innovation distribution (shape
  parameters included), ``VaR_t(α) = -(μ + σ_t·F⁻¹(1 - α))``. A refit that
  ``fit_volatility`` rejects (it raises) is counted and reported with its message; the last
  accepted parameters are then held and filtered forward over the new window, as between
  refits. Before the first accepted fit the method has no forecast: those periods are left
  out of its rows, whose ``observations`` say how many periods they cover.

Default window (:func:`default_window`): ``max(100, min(1000, n // 2))`` of ``n`` returns, so
at least half of the returns are forecast, at most 1,000 are history, and never fewer than the
100 a GARCH fit needs; a backtest needs at least ``MIN_WINDOW + MIN_OUT_OF_SAMPLE = 200``
returns. A given window must be at least 100 and leave at least 100 out-of-sample periods
(:func:`check_window`).

A violation ("hit") in period t is ``r_t < -VaR_t``. With ``n`` periods, ``x`` hits and
``p = 1 - α``:

- Kupiec (1995) proportion-of-failures, unconditional coverage, ``χ²(1)``::

    LR_uc = -2 ln[(1-p)^(n-x) p^x] + 2 ln[(1-x/n)^(n-x) (x/n)^x]

- Christoffersen (1998) independence, ``χ²(1)``: with ``n_ij`` the number of periods in
  state ``j`` after a period in state ``i`` (1 = hit), ``π_01 = n_01/(n_00+n_01)``,
  ``π_11 = n_11/(n_10+n_11)``, ``π = (n_01+n_11)/(n_00+n_01+n_10+n_11)``::

    LR_ind = -2 ln[(1-π)^(n_00+n_10) π^(n_01+n_11)]
             + 2 ln[(1-π_01)^n_00 π_01^n_01 (1-π_11)^n_10 π_11^n_11]

- conditional coverage ``LR_cc = LR_uc + LR_ind``, ``χ²(2)``.

``0 · ln 0`` is taken as 0 (``scipy.special.xlogy``), so no hits, all hits and a single period
are finite. A test passes when its p-value is at least 5%.

- pinball (quantile, tick) loss of the VaR forecast at quantile level ``τ = 1 - α``
  (:func:`pinball_loss`; lower is better, comparable across methods on the same periods)::

    L = (1/n) Σ_t (τ - 1[r_t < q_t])·(r_t - q_t),    q_t = -VaR_t(α)

  in decimal returns (the tables show it in basis points, ×10⁴).

References: P. Kupiec, "Techniques for verifying the accuracy of risk measurement models",
Journal of Derivatives 3 (1995); P. Christoffersen, "Evaluating interval forecasts",
International Economic Review 39 (1998); J.P. Morgan/Reuters, "RiskMetrics — Technical
Document", 4th ed. (1996); R. Koenker & G. Bassett, "Regression quantiles", Econometrica 46
(1978).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from arch.univariate import EWMAVariance, Normal, ZeroMean
from scipy.special import xlogy
from scipy.stats import chi2, norm

from graph.errors import ContagionError
from simulate.market.volatility import (
    SCALE,
    FittedVolatility,
    VolSpec,
    fit_volatility,
    persistence_bound,
)
from simulate.prices import Frequency, periods_per_day

__all__ = [
    "EWMA_LAMBDA",
    "GARCH_NORMAL",
    "MAX_DEFAULT_WINDOW",
    "METHODS",
    "METHOD_LABELS",
    "MIN_OUT_OF_SAMPLE",
    "MIN_WINDOW",
    "BacktestResult",
    "BacktestRow",
    "CoverageTest",
    "Method",
    "check_window",
    "christoffersen_independence",
    "conditional_coverage",
    "default_window",
    "ewma_lambda",
    "ewma_var",
    "ewma_variance",
    "garch_var",
    "historical_var",
    "horizon",
    "kupiec_pof",
    "pinball_loss",
    "var_backtest",
]

Method = Literal["historical", "ewma", "garch-normal", "model"]
#: the methods of a backtest, in the order of its rows
METHODS: tuple[Method, ...] = ("historical", "ewma", "garch-normal", "model")
#: how tables name them
METHOD_LABELS: dict[str, str] = {"historical": "historical sim.", "ewma": "RiskMetrics EWMA",
                                 "garch-normal": "GARCH(1,1)-normal", "model": "model"}
#: GARCH(1,1) with normal innovations, the ``"garch-normal"`` baseline
GARCH_NORMAL = VolSpec(model="garch", dist="normal")
#: significance of the pass/fail verdicts
SIGNIFICANCE = 0.05
#: RiskMetrics' decay per period (daily and hourly)
EWMA_LAMBDA = 0.94
#: the fewest returns a window may hold (what a GARCH fit needs)
MIN_WINDOW = 100
#: the fewest out-of-sample periods a backtest may have
MIN_OUT_OF_SAMPLE = 100
#: the largest default window
MAX_DEFAULT_WINDOW = 1000


def horizon(frequency: Frequency) -> str:
    """The VaR horizon's label: ``"1-day"`` or ``"1-hour"``."""
    return "1-day" if periods_per_day(frequency) == 1 else "1-hour"


def ewma_lambda(frequency: Frequency) -> float:
    """RiskMetrics' decay per period of ``frequency``: 0.94 daily and hourly (the same decay
    per period; see the module docstring for why not ``0.94^(1/24)`` hourly).

    >>> ewma_lambda("daily"), ewma_lambda("hourly")
    (0.94, 0.94)
    """
    periods_per_day(frequency)  # validates the frequency
    return EWMA_LAMBDA


def default_window(n_returns: int) -> int:
    """The default window for ``n_returns`` returns: ``max(100, min(1000, n // 2))``.

    Raises ``ValueError`` below ``MIN_WINDOW + MIN_OUT_OF_SAMPLE`` (200) returns.

    >>> default_window(5000), default_window(1370), default_window(250)
    (1000, 685, 125)
    """
    need = MIN_WINDOW + MIN_OUT_OF_SAMPLE
    if n_returns < need:
        raise ValueError(f"a backtest needs at least {need} returns (a window of {MIN_WINDOW} "
                         f"and {MIN_OUT_OF_SAMPLE} out-of-sample periods; got {n_returns:,})")
    return max(MIN_WINDOW, min(MAX_DEFAULT_WINDOW, n_returns // 2))


def check_window(n_returns: int, window: int, *, name: str = "window") -> None:
    """Raise ``ValueError`` (naming ``name``) unless ``window`` is at least ``MIN_WINDOW``
    and leaves at least ``MIN_OUT_OF_SAMPLE`` of ``n_returns`` to forecast."""
    if window < MIN_WINDOW:
        raise ValueError(f"{name} must be at least {MIN_WINDOW} returns (what a GARCH fit "
                         f"needs; got {window:,})")
    left = n_returns - window
    if left < MIN_OUT_OF_SAMPLE:
        most = n_returns - MIN_OUT_OF_SAMPLE
        fix = f"at most {most:,}" if most >= MIN_WINDOW else "more returns"
        raise ValueError(f"{name} {window:,} leaves {max(left, 0):,} out-of-sample periods of "
                         f"{n_returns:,} returns; at least {MIN_OUT_OF_SAMPLE} are needed "
                         f"(use {fix})")


# --- coverage tests -----------------------------------------------------------------------------


@dataclass(frozen=True)
class CoverageTest:
    """A likelihood-ratio test: statistic, degrees of freedom, p-value, verdict at 5%."""

    statistic: float
    df: int
    p_value: float

    @property
    def passed(self) -> bool:
        return self.p_value >= SIGNIFICANCE

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}


def _check_level(level: float) -> None:
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1) (got {level})")


def _lr(null: float, alt: float, df: int) -> CoverageTest:
    """``-2·(null - alt)`` of two log-likelihoods; a difference within rounding of them is 0
    (so the statistic is exactly 0 and the p-value exactly 1 when the null fits the data)."""
    diff = float(alt) - float(null)
    noise = 64 * np.finfo(float).eps * max(1.0, abs(float(null)), abs(float(alt)))
    s = 2.0 * diff if diff > noise else 0.0
    return CoverageTest(statistic=s, df=df, p_value=float(chi2.sf(s, df)))


def kupiec_pof(violations: int, observations: int, level: float) -> CoverageTest:
    """Kupiec's unconditional-coverage test of ``violations`` hits in ``observations``
    periods at VaR ``level`` (hit probability ``p = 1 - level``); see the module docstring.

    >>> round(kupiec_pof(5, 100, 0.95).p_value, 6)
    1.0
    """
    _check_level(level)
    n, x = int(observations), int(violations)
    if n <= 0 or not 0 <= x <= n:
        raise ValueError(f"violations must be in [0, observations] with observations > 0 "
                         f"(got {x} of {n})")
    p, phat = 1.0 - level, x / n
    null = xlogy(n - x, 1 - p) + xlogy(x, p)
    alt = xlogy(n - x, 1 - phat) + xlogy(x, phat)
    return _lr(null, alt, 1)


def _transitions(hits: np.ndarray) -> tuple[int, int, int, int]:
    prev, cur = hits[:-1], hits[1:]
    n00 = int(np.sum(~prev & ~cur))
    n01 = int(np.sum(~prev & cur))
    n10 = int(np.sum(prev & ~cur))
    n11 = int(np.sum(prev & cur))
    return n00, n01, n10, n11


def _hits(hits: Sequence[bool] | np.ndarray | pd.Series) -> np.ndarray:
    h = np.asarray(hits)
    if h.ndim != 1 or h.size == 0:
        raise ValueError(f"hits must be a non-empty 1-d sequence (got shape {h.shape})")
    return h.astype(bool)


def christoffersen_independence(hits: Sequence[bool] | np.ndarray | pd.Series) -> CoverageTest:
    """Christoffersen's independence test of a hit sequence (first-order Markov alternative);
    see the module docstring. ``hits``: ``[num_periods]`` booleans, oldest first.

    >>> christoffersen_independence([0, 0, 1, 1, 0, 0, 0, 1, 0, 0]).statistic
    0.0
    """
    h = _hits(hits)
    n00, n01, n10, n11 = _transitions(h)
    pi01 = n01 / (n00 + n01) if n00 + n01 else 0.0
    pi11 = n11 / (n10 + n11) if n10 + n11 else 0.0
    total = n00 + n01 + n10 + n11
    pi = (n01 + n11) / total if total else 0.0
    null = xlogy(n00 + n10, 1 - pi) + xlogy(n01 + n11, pi)
    alt = (xlogy(n00, 1 - pi01) + xlogy(n01, pi01) + xlogy(n10, 1 - pi11) + xlogy(n11, pi11))
    return _lr(null, alt, 1)


def conditional_coverage(hits: Sequence[bool] | np.ndarray | pd.Series, level: float
                         ) -> CoverageTest:
    """Christoffersen's conditional coverage: ``LR_uc + LR_ind`` against ``χ²(2)``."""
    h = _hits(hits)
    uc = kupiec_pof(int(h.sum()), h.size, level)
    ind = christoffersen_independence(h)
    s = uc.statistic + ind.statistic
    return CoverageTest(statistic=s, df=2, p_value=float(chi2.sf(s, 2)))


def pinball_loss(realised: Sequence[float] | np.ndarray | pd.Series,
                 var: Sequence[float] | np.ndarray | pd.Series, level: float) -> float:
    """Mean pinball loss of the VaR forecasts ``var`` (positive losses) of the returns
    ``realised`` at VaR ``level``: the tick loss at the quantile ``q_t = -VaR_t`` of level
    ``τ = 1 - level`` (module docstring). Both ``[num_periods]``.

    >>> round(pinball_loss([-0.03, 0.01], [0.02, 0.02], 0.95), 12)  # (0.0095 + 0.0015) / 2
    0.0055
    """
    _check_level(level)
    r, v = np.asarray(realised, dtype=float), np.asarray(var, dtype=float)
    if r.ndim != 1 or r.shape != v.shape or r.size == 0:
        raise ValueError(f"realised and var must be non-empty 1-d arrays of one length "
                         f"(got shapes {r.shape} and {v.shape})")
    tau, q = 1.0 - level, -v
    loss = (tau - (r < q)) * (r - q)
    return float(loss.mean())


# --- forecasters --------------------------------------------------------------------------------


def _validate(returns: pd.Series, levels: Sequence[float], window: int) -> pd.Series:
    """Finite returns, a window of at least ``MIN_WINDOW`` and at least one period after it
    (a backtest asks for ``MIN_OUT_OF_SAMPLE``: :func:`check_window`), levels in (0, 1)."""
    r = pd.Series(returns, dtype=float)
    if r.isna().any() or not np.isfinite(r.to_numpy()).all():
        raise ValueError("returns must be finite (drop missing periods first)")
    if window < MIN_WINDOW:
        check_window(len(r), window)  # raises the message
    if len(r) <= window:
        raise ValueError(f"window {window:,} needs more than {window:,} returns "
                         f"(got {len(r):,})")
    for lv in levels:
        _check_level(lv)
    return r


def _columns(levels: Sequence[float]) -> list[str]:
    return [f"{lv:g}" for lv in levels]


def historical_var(returns: pd.Series, *, levels: Sequence[float] = (0.95, 0.99),
                   window: int = 1000) -> pd.DataFrame:
    """Historical-simulation VaR for every period after the first ``window``.

    ``returns``: ``[num_periods]`` decimal log returns, oldest first. Returns
    ``[num_periods - window, len(levels)]`` positive VaR numbers (a loss, as a fraction),
    indexed by the forecast period, one column per level (``"0.95"``).
    """
    r = _validate(returns, levels, window)
    x = r.to_numpy()
    trailing = np.lib.stride_tricks.sliding_window_view(x[:-1], window)  # [n - window, window]
    q = np.quantile(trailing, [1 - lv for lv in levels], axis=1)  # [levels, n - window]
    return pd.DataFrame(-q.T, index=r.index[window:], columns=_columns(levels))


def ewma_variance(returns: pd.Series | np.ndarray, lam: float) -> np.ndarray:
    """RiskMetrics variance ``σ²_t`` (decimal²) before each of the ``[num_periods]``
    ``returns``: ``σ²_0`` arch's backcast, ``σ²_t = λ·σ²_{t-1} + (1 - λ)·r²_{t-1}`` (arch's
    ``EWMAVariance`` with ``λ`` fixed; module docstring). Returns ``[num_periods]``."""
    if not 0 < lam < 1:
        raise ValueError(f"the EWMA decay must be in (0, 1) (got {lam})")
    x = np.asarray(returns, dtype=float) * SCALE
    model = ZeroMean(x, volatility=EWMAVariance(lam), distribution=Normal())
    sigma = np.asarray(model.fix([]).conditional_volatility, dtype=float)
    return (sigma / SCALE) ** 2


def ewma_var(returns: pd.Series, *, levels: Sequence[float] = (0.95, 0.99),
             window: int = 1000, lam: float = EWMA_LAMBDA) -> pd.DataFrame:
    """RiskMetrics EWMA-normal VaR ``-σ_t·Φ⁻¹(1 - α)`` for every period after the first
    ``window`` (the recursion runs from the first return). Shape and columns as
    :func:`historical_var`."""
    r = _validate(returns, levels, window)
    sigma = np.sqrt(ewma_variance(r, lam))[window:]
    z = norm.ppf([1 - lv for lv in levels])
    return pd.DataFrame(-sigma[:, None] * z[None, :], index=r.index[window:],
                        columns=_columns(levels))


@dataclass(frozen=True)
class _Fitted:
    """A fitted method's forecasts (NaN where it has none), refits, rejected refits and
    refits whose persistence ``fit_volatility`` bounded."""

    var: pd.DataFrame
    refits: int
    rejected: tuple[str, ...]
    bounded: int = 0


def _quantiles(fitted: FittedVolatility, levels: Sequence[float], block: pd.Series,
               window: int) -> np.ndarray:
    """``[len(block) - window, len(levels)]`` VaR of ``fitted`` filtered over ``block``
    (the window, then the periods to forecast)."""
    res = fitted.result(block)
    model = res.model
    sigma = np.asarray(res.conditional_volatility, dtype=float)[window:]
    mu = fitted.params.get("mu", 0.0)
    shape = [fitted.params[n] for n in model.distribution.parameter_names()]
    q = np.asarray(model.distribution.ppf(np.array([1 - lv for lv in levels]), shape))
    return np.asarray(-(mu + sigma[:, None] * q[None, :]) / SCALE)


def _fitted_var(r: pd.Series, levels: Sequence[float], window: int, refit_every: int,
                spec: VolSpec, asset: str, progress: Callable[[int, int], None] | None,
                frequency: Frequency = "daily") -> _Fitted:
    n = len(r)
    starts = list(range(window, n, refit_every))
    out = np.full((n - window, len(levels)), np.nan)
    held: FittedVolatility | None = None
    rejected: list[str] = []
    bounded = 0
    for k, s in enumerate(starts):
        e = min(s + refit_every, n)
        try:
            held = fit_volatility(r.iloc[s - window:s], spec, asset=asset,
                                  max_persistence=persistence_bound(periods_per_day(frequency)))
            bounded += bool(getattr(getattr(held, "diagnostics", None), "bounded", False))
        except (ContagionError, ValueError, ArithmeticError) as err:
            first = str(err).splitlines()[0] if str(err) else type(err).__name__
            rejected.append(f"refit before {r.index[s]}: {first}")
        if held is not None:
            # conditional volatility at period t uses returns up to t - 1 only: the one-step
            # forecast for t
            out[s - window:e - window] = _quantiles(held, levels, r.iloc[s - window:e], window)
        if progress is not None:
            progress(k + 1, len(starts))
    return _Fitted(pd.DataFrame(out, index=r.index[window:], columns=_columns(levels)),
                   refits=len(starts), rejected=tuple(rejected), bounded=bounded)


def garch_var(returns: pd.Series, *, levels: Sequence[float] = (0.95, 0.99),
              window: int = 1000, refit_every: int = 20, spec: VolSpec | None = None,
              asset: str = "", progress: Callable[[int, int], None] | None = None
              ) -> pd.DataFrame:
    """Fitted-model VaR for every period after the first ``window`` (module docstring).

    The model is refitted with :func:`~simulate.market.volatility.fit_volatility` on the
    trailing ``window`` returns before periods ``window``, ``window + refit_every``, …; in
    between, ``σ_t`` is the fixed-parameter filter over the trailing window plus the periods
    since the refit (arch's backcast uses only the window's start, so nothing after period
    ``t - 1`` enters period ``t``'s forecast). A rejected refit holds the last accepted
    parameters; periods before the first accepted fit are NaN. ``progress(done, total)`` is
    called after each refit. Shape and columns as :func:`historical_var`.
    """
    r = _validate(returns, levels, window)
    if refit_every < 1:
        raise ValueError(f"refit_every must be >= 1 (got {refit_every})")
    return _fitted_var(r, levels, window, refit_every, spec or VolSpec(), asset, progress).var


# --- the backtest -------------------------------------------------------------------------------


@dataclass(frozen=True)
class BacktestRow:
    """One method at one level: hits, expected hits, the three tests and the pinball loss.

    ``observations`` is the number of periods the method forecast (fewer than the
    out-of-sample periods only when its first refits were rejected); with none, the tests and
    the loss are ``None``. ``refits``, ``rejected`` and ``bounded`` count the fits of a fitted
    method, all of them, rejected ones, and ones whose persistence was bounded (0 for the
    others).
    """

    method: Method
    level: float
    observations: int
    violations: int
    kupiec: CoverageTest | None
    christoffersen: CoverageTest | None
    conditional: CoverageTest | None
    pinball: float | None
    refits: int = 0
    rejected: int = 0
    bounded: int = 0

    @property
    def expected(self) -> float:
        """Expected number of violations, ``observations · (1 - level)``."""
        return round(self.observations * (1 - self.level), 9)

    @property
    def rate(self) -> float | None:
        return self.violations / self.observations if self.observations else None

    @property
    def passed(self) -> bool:
        """Both coverage and independence pass at 5%."""
        return (self.kupiec is not None and self.christoffersen is not None
                and self.kupiec.passed and self.christoffersen.passed)

    def as_dict(self) -> dict[str, Any]:
        def test(t: CoverageTest | None) -> dict[str, Any] | None:
            return t.as_dict() if t is not None else None

        return {"method": self.method, "level": self.level, "observations": self.observations,
                "violations": self.violations, "expected": self.expected, "rate": self.rate,
                "kupiec": test(self.kupiec), "christoffersen": test(self.christoffersen),
                "conditional": test(self.conditional), "pinball": self.pinball,
                "refits": self.refits, "rejected_refits": self.rejected,
                "bounded_refits": self.bounded, "passed": self.passed}


def _stamp(t: Any, frequency: Frequency) -> str:
    ts = pd.Timestamp(t)
    return str(ts.date()) if periods_per_day(frequency) == 1 else ts.strftime("%Y-%m-%dT%H:%M")


@dataclass(frozen=True)
class BacktestResult:
    """Rows per (method, level), and the forecasts behind them.

    ``var``: ``[num_forecast_periods, len(methods)·len(levels)]`` positive VaR, columns
    ``(method, level)`` (NaN where a method has no forecast); ``realised``: the returns of
    those periods. ``rejections[method]``: the message of each rejected refit.
    """

    frequency: Frequency
    spec: VolSpec
    returns: int
    window: int
    default_window: bool
    refit_every: int
    ewma_lambda: float
    rows: tuple[BacktestRow, ...]
    var: pd.DataFrame = field(repr=False)
    realised: pd.Series = field(repr=False)
    rejections: dict[str, tuple[str, ...]] = field(default_factory=dict, repr=False)

    @property
    def horizon(self) -> str:
        return horizon(self.frequency)

    @property
    def out_of_sample(self) -> int:
        return int(self.realised.size)

    @property
    def start(self) -> str:
        """The first forecast period (a date, or ``YYYY-MM-DDTHH:MM`` hourly)."""
        return _stamp(self.realised.index[0], self.frequency)

    @property
    def end(self) -> str:
        return _stamp(self.realised.index[-1], self.frequency)

    @property
    def window_rule(self) -> str:
        """How the window was chosen, in words."""
        if not self.default_window:
            return "given"
        return (f"default: max({MIN_WINDOW}, min({MAX_DEFAULT_WINDOW}, {self.returns:,} "
                f"returns // 2))")

    def table(self) -> pd.DataFrame:
        """The rows as a frame (one row per method and level)."""
        def p(t: CoverageTest | None) -> float:
            return t.p_value if t is not None else math.nan

        def lr(t: CoverageTest | None) -> float:
            return t.statistic if t is not None else math.nan

        return pd.DataFrame([{
            "method": r.method, "level": r.level, "observations": r.observations,
            "violations": r.violations, "expected": r.expected,
            "kupiec_lr": lr(r.kupiec), "kupiec_p": p(r.kupiec),
            "kupiec_passed": r.kupiec is not None and r.kupiec.passed,
            "christoffersen_lr": lr(r.christoffersen), "christoffersen_p": p(r.christoffersen),
            "christoffersen_passed": r.christoffersen is not None and r.christoffersen.passed,
            "conditional_p": p(r.conditional),
            "conditional_passed": r.conditional is not None and r.conditional.passed,
            "pinball": r.pinball if r.pinball is not None else math.nan,
            "refits": r.refits, "rejected_refits": r.rejected, "bounded_refits": r.bounded,
            "passed": r.passed}
            for r in self.rows])

    def as_dict(self) -> dict[str, Any]:
        return {"frequency": self.frequency, "horizon": self.horizon, "start": self.start,
                "end": self.end, "returns": self.returns, "window": self.window,
                "window_rule": self.window_rule, "out_of_sample": self.out_of_sample,
                "refit_every": self.refit_every, "ewma_lambda": self.ewma_lambda,
                "spec": self.spec.model_dump(), "rows": [r.as_dict() for r in self.rows],
                "rejections": {m: list(v) for m, v in self.rejections.items()}}


def _row(method: Method, level: float, realised: np.ndarray, var: np.ndarray,
         fitted: _Fitted | None) -> BacktestRow:
    keep = ~np.isnan(var)
    r, v = realised[keep], var[keep]
    counts = {"refits": fitted.refits, "rejected": len(fitted.rejected),
              "bounded": fitted.bounded} if fitted is not None else {}
    if r.size == 0:
        return BacktestRow(method=method, level=level, observations=0, violations=0,
                           kupiec=None, christoffersen=None, conditional=None, pinball=None,
                           **counts)
    hits = r < -v
    return BacktestRow(method=method, level=level, observations=hits.size,
                       violations=int(hits.sum()),
                       kupiec=kupiec_pof(int(hits.sum()), hits.size, level),
                       christoffersen=christoffersen_independence(hits),
                       conditional=conditional_coverage(hits, level),
                       pinball=pinball_loss(r, v, level), **counts)


def _bind(progress: Callable[[str, int, int], None] | None, method: str
          ) -> Callable[[int, int], None] | None:
    if progress is None:
        return None
    report = progress

    def update(done: int, total: int) -> None:
        report(method, done, total)

    return update


def var_backtest(returns: pd.Series, *, frequency: Frequency = "daily",
                 levels: Sequence[float] = (0.95, 0.99), window: int | None = None,
                 refit_every: int = 20, spec: VolSpec | None = None,
                 methods: Sequence[Method] = METHODS, asset: str = "",
                 lam: float | None = None,
                 progress: Callable[[str, int, int], None] | None = None) -> BacktestResult:
    """Rolling one-period VaR backtest of ``methods`` on the same out-of-sample periods.

    ``returns``: ``[num_periods]`` decimal log returns at ``frequency`` indexed by time,
    oldest first. ``window``: trailing returns per forecast (``None``: :func:`default_window`);
    every period after the first ``window`` is forecast from the periods before it only.
    ``refit_every``: periods between refits of the fitted methods. ``spec``: the project's
    model (default GJR-GARCH(1,1)-skewed-t); ``lam``: the EWMA decay (default
    :func:`ewma_lambda` of ``frequency``). ``progress(method, done, total)`` reports each
    method (refits for the fitted ones). Raises ``ValueError`` for non-finite returns, a
    window that :func:`check_window` refuses, too short a history, ``refit_every < 1``, a
    level outside (0, 1) or an unknown method.
    """
    periods_per_day(frequency)  # validates the frequency
    spec = spec or VolSpec()
    r = pd.Series(returns, dtype=float)
    chosen = window is None
    w = default_window(len(r)) if window is None else window
    check_window(len(r), w)
    r = _validate(r, levels, w)
    if refit_every < 1:
        raise ValueError(f"refit_every must be >= 1 (got {refit_every})")
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ValueError(f"methods must be among {', '.join(METHODS)} (got {list(methods)})")
    lam = ewma_lambda(frequency) if lam is None else lam
    realised = r.iloc[w:]
    x = realised.to_numpy()
    cols = _columns(levels)

    frames: dict[str, pd.DataFrame] = {}
    fits: dict[str, _Fitted] = {}
    done: list[tuple[VolSpec, _Fitted]] = []  # a spec fitted once serves both fitted methods
    for m in methods:
        if m == "historical":
            frames[m] = historical_var(r, levels=levels, window=w)
        elif m == "ewma":
            frames[m] = ewma_var(r, levels=levels, window=w, lam=lam)
        else:
            s = GARCH_NORMAL if m == "garch-normal" else spec
            again = next((f for d, f in done if d == s), None)
            if again is None:
                fits[m] = _fitted_var(r, levels, w, refit_every, s, asset, _bind(progress, m),
                                      frequency)
                done.append((s, fits[m]))
            else:
                fits[m] = again
            frames[m] = fits[m].var
            if again is None:
                continue
        if progress is not None:
            progress(m, 1, 1)
    rows = [_row(m, lv, x, frames[m][c].to_numpy(), fits.get(m))
            for m in methods for lv, c in zip(levels, cols, strict=True)]
    return BacktestResult(
        frequency=frequency, spec=spec, returns=len(r), window=w, default_window=chosen,
        refit_every=refit_every, ewma_lambda=lam, rows=tuple(rows),
        var=pd.concat(frames, axis=1), realised=realised,
        rejections={m: f.rejected for m, f in fits.items()})
