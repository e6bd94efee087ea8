"""Backtesting one-day Value-at-Risk: rolling forecasts and coverage tests.

Two forecasters, both using only data before the day they forecast:

- **fitted model** (``"garch"``): the :class:`~simulate.market.volatility.VolSpec` model
  (default GJR-GARCH(1,1), skewed-t) is fitted with arch on the trailing ``window`` returns
  every ``refit_every`` days; between refits its parameters are held and the conditional
  volatility is filtered forward. With ``μ`` the fitted mean, ``σ_t`` the one-step conditional
  volatility and ``F`` the fitted standardised innovation distribution (shape parameters
  included), ``VaR_t(α) = -(μ + σ_t · F⁻¹(1 - α))``.
- **historical simulation** (``"historical"``): ``VaR_t(α) = -Q_{1-α}(r_{t-w}, …, r_{t-1})``,
  the empirical quantile (linear interpolation) of the trailing ``window`` returns.

A violation ("hit") on day t is ``r_t < -VaR_t``. With ``n`` days, ``x`` hits and
``p = 1 - α``:

- Kupiec (1995) proportion-of-failures, unconditional coverage, ``χ²(1)``::

    LR_uc = -2 ln[(1-p)^(n-x) p^x] + 2 ln[(1-x/n)^(n-x) (x/n)^x]

- Christoffersen (1998) independence, ``χ²(1)``: with ``n_ij`` the number of days in state
  ``j`` after a day in state ``i`` (1 = hit), ``π_01 = n_01/(n_00+n_01)``,
  ``π_11 = n_11/(n_10+n_11)``, ``π = (n_01+n_11)/(n_00+n_01+n_10+n_11)``::

    LR_ind = -2 ln[(1-π)^(n_00+n_10) π^(n_01+n_11)]
             + 2 ln[(1-π_01)^n_00 π_01^n_01 (1-π_11)^n_10 π_11^n_11]

- conditional coverage ``LR_cc = LR_uc + LR_ind``, ``χ²(2)``.

``0 · ln 0`` is taken as 0 (``scipy.special.xlogy``), so no hits, all hits and a single day are
finite. A test passes when its p-value is at least 5%.

References: P. Kupiec, "Techniques for verifying the accuracy of risk measurement models",
Journal of Derivatives 3 (1995); P. Christoffersen, "Evaluating interval forecasts",
International Economic Review 39 (1998).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy.special import xlogy
from scipy.stats import chi2

from simulate.market.volatility import SCALE, VolSpec, arch_model_for

__all__ = [
    "BacktestResult",
    "BacktestRow",
    "CoverageTest",
    "christoffersen_independence",
    "conditional_coverage",
    "garch_var",
    "historical_var",
    "kupiec_pof",
    "var_backtest",
]

Method = Literal["garch", "historical"]
#: significance of the pass/fail verdicts
SIGNIFICANCE = 0.05


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
    """Kupiec's unconditional-coverage test of ``violations`` hits in ``observations`` days at
    VaR ``level`` (hit probability ``p = 1 - level``); see the module docstring.

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
    see the module docstring. ``hits``: ``[num_days]`` booleans, oldest first.

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


# --- forecasters --------------------------------------------------------------------------------


def _validate(returns: pd.Series, levels: Sequence[float], window: int) -> pd.Series:
    r = pd.Series(returns, dtype=float)
    if r.isna().any() or not np.isfinite(r.to_numpy()).all():
        raise ValueError("returns must be finite (drop missing days first)")
    if window < 100:
        raise ValueError(f"window must be at least 100 days (got {window})")
    if len(r) <= window:
        raise ValueError(f"a backtest with window {window} needs more than {window} returns "
                         f"(got {len(r)})")
    for lv in levels:
        _check_level(lv)
    return r


def _columns(levels: Sequence[float]) -> list[str]:
    return [f"{lv:g}" for lv in levels]


def historical_var(returns: pd.Series, *, levels: Sequence[float] = (0.95, 0.99),
                   window: int = 1000) -> pd.DataFrame:
    """Historical-simulation VaR for every day after the first ``window``.

    ``returns``: ``[num_days]`` decimal log returns, oldest first. Returns
    ``[num_days - window, len(levels)]`` positive VaR numbers (a loss, as a fraction), indexed
    by the forecast day, one column per level (``"0.95"``).
    """
    r = _validate(returns, levels, window)
    x = r.to_numpy()
    trailing = np.lib.stride_tricks.sliding_window_view(x[:-1], window)  # [n - window, window]
    q = np.quantile(trailing, [1 - lv for lv in levels], axis=1)  # [levels, n - window]
    return pd.DataFrame(-q.T, index=r.index[window:], columns=_columns(levels))


def garch_var(returns: pd.Series, *, levels: Sequence[float] = (0.95, 0.99),
              window: int = 1000, refit_every: int = 20, spec: VolSpec | None = None,
              progress: Callable[[int, int], None] | None = None) -> pd.DataFrame:
    """Fitted-model VaR for every day after the first ``window`` (see the module docstring).

    The model is refitted on the trailing ``window`` returns before days ``window``,
    ``window + refit_every``, …; in between, ``σ_t`` is the fixed-parameter filter over the
    trailing window plus the days since the refit (arch's backcast uses only the window's
    start, so nothing after day ``t - 1`` enters day ``t``'s forecast). ``progress(done,
    total)`` is called after each refit. Shape and columns as :func:`historical_var`.
    """
    r = _validate(returns, levels, window)
    if refit_every < 1:
        raise ValueError(f"refit_every must be >= 1 (got {refit_every})")
    spec = spec or VolSpec()
    x = r.to_numpy() * SCALE
    n = len(x)
    starts = list(range(window, n, refit_every))
    out = np.empty((n - window, len(levels)))
    for k, s in enumerate(starts):
        e = min(s + refit_every, n)
        fitted = arch_model_for(x[s - window:s], spec).fit(disp="off", show_warning=False)
        params = np.asarray(fitted.params, dtype=float)
        # The fixed model on window + the block: its conditional volatility at day t uses
        # returns up to t - 1 only, which is the one-day-ahead forecast for t.
        model = arch_model_for(x[s - window:e], spec)
        filt = model.fix(params)
        sigma = np.asarray(filt.conditional_volatility, dtype=float)[window:]
        mu = float(fitted.params["mu"]) if spec.mean == "constant" else 0.0
        shape = params[len(params) - model.distribution.num_params:]
        q = np.asarray(model.distribution.ppf(np.array([1 - lv for lv in levels]), shape))
        out[s - window:e - window] = -(mu + sigma[:, None] * q[None, :]) / SCALE
        if progress is not None:
            progress(k + 1, len(starts))
    return pd.DataFrame(out, index=r.index[window:], columns=_columns(levels))


# --- the backtest -------------------------------------------------------------------------------


@dataclass(frozen=True)
class BacktestRow:
    """One method at one level: hits, expected hits and the three tests."""

    method: Method
    level: float
    observations: int
    violations: int
    kupiec: CoverageTest
    christoffersen: CoverageTest
    conditional: CoverageTest

    @property
    def expected(self) -> float:
        """Expected number of violations, ``observations · (1 - level)``."""
        return round(self.observations * (1 - self.level), 9)

    @property
    def rate(self) -> float:
        return self.violations / self.observations

    @property
    def passed(self) -> bool:
        """Both coverage and independence pass at 5%."""
        return self.kupiec.passed and self.christoffersen.passed

    def as_dict(self) -> dict[str, Any]:
        return {"method": self.method, "level": self.level, "observations": self.observations,
                "violations": self.violations, "expected": self.expected, "rate": self.rate,
                "kupiec": self.kupiec.as_dict(), "christoffersen": self.christoffersen.as_dict(),
                "conditional": self.conditional.as_dict(), "passed": self.passed}


@dataclass(frozen=True)
class BacktestResult:
    """Rows per (method, level), and the forecasts behind them.

    ``var``: ``[num_forecast_days, 2·len(levels)]`` positive VaR, columns
    ``(method, level)``; ``realised``: the returns of those days.
    """

    spec: VolSpec
    window: int
    refit_every: int
    rows: tuple[BacktestRow, ...]
    var: pd.DataFrame = field(repr=False)
    realised: pd.Series = field(repr=False)

    @property
    def start(self) -> str:
        return str(pd.Timestamp(self.realised.index[0]).date())

    @property
    def end(self) -> str:
        return str(pd.Timestamp(self.realised.index[-1]).date())

    def table(self) -> pd.DataFrame:
        """The rows as a frame (one row per method and level)."""
        return pd.DataFrame([{
            "method": r.method, "level": r.level, "observations": r.observations,
            "violations": r.violations, "expected": r.expected,
            "kupiec_lr": r.kupiec.statistic, "kupiec_p": r.kupiec.p_value,
            "christoffersen_lr": r.christoffersen.statistic,
            "christoffersen_p": r.christoffersen.p_value,
            "conditional_p": r.conditional.p_value, "passed": r.passed} for r in self.rows])

    def as_dict(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "window": self.window,
                "refit_every": self.refit_every, "spec": self.spec.model_dump(),
                "rows": [r.as_dict() for r in self.rows]}


def _row(method: Method, level: float, realised: np.ndarray, var: np.ndarray) -> BacktestRow:
    hits = realised < -var
    return BacktestRow(method=method, level=level, observations=hits.size,
                       violations=int(hits.sum()),
                       kupiec=kupiec_pof(int(hits.sum()), hits.size, level),
                       christoffersen=christoffersen_independence(hits),
                       conditional=conditional_coverage(hits, level))


def var_backtest(returns: pd.Series, *, levels: Sequence[float] = (0.95, 0.99),
                 window: int = 1000, refit_every: int = 20, spec: VolSpec | None = None,
                 progress: Callable[[int, int], None] | None = None) -> BacktestResult:
    """Rolling one-day VaR backtest of the fitted model and of historical simulation.

    ``returns``: ``[num_days]`` decimal daily log returns indexed by date, oldest first, at
    least ``window + 1`` of them. Each day after the first ``window`` is forecast from the
    days before it only. ``progress(done, total)`` reports model refits. Raises
    ``ValueError`` for non-finite returns, too short a history, ``window < 100``,
    ``refit_every < 1`` or a level outside (0, 1).
    """
    spec = spec or VolSpec()
    r = _validate(returns, levels, window)
    g = garch_var(r, levels=levels, window=window, refit_every=refit_every, spec=spec,
                  progress=progress)
    h = historical_var(r, levels=levels, window=window)
    realised = r.iloc[window:]
    x = realised.to_numpy()
    cols = _columns(levels)
    forecasts: tuple[tuple[Method, pd.DataFrame], ...] = (("garch", g), ("historical", h))
    rows = tuple(_row(m, lv, x, f[c].to_numpy())
                 for m, f in forecasts for lv, c in zip(levels, cols, strict=True))
    var = pd.concat({"garch": g, "historical": h}, axis=1)
    return BacktestResult(spec=spec, window=window, refit_every=refit_every, rows=rows,
                          var=var, realised=realised)
