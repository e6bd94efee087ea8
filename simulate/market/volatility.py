"""Per-asset conditional volatility, fitted with ``arch``.

The default is GJR-GARCH(1,1) with Hansen's skewed-t innovations (fat tails and a leverage
effect, as crypto returns show); GARCH(1,1) and EGARCH(1,1,1) are configuration choices, as are
Student-t and normal innovations. Returns are fitted in percent (arch's optimiser is best
conditioned there); every public value is in decimal log returns.

A :class:`FittedVolatility` keeps the estimated parameters, the standardised residuals and the
last conditional variance, so it is reloadable from JSON and usable without the price history
(filtered historical simulation bootstraps its residuals).

Every fit is guarded (:func:`fit_volatility`), and what the guards did is kept in the fit's
:class:`FitDiagnostics`:

- **degenerate series** are refused with a :class:`VolatilityFitError`: fewer than
  :data:`MIN_RETURNS` returns, non-finite values, no variation, or more than
  :data:`MAX_ZERO_SHARE` of the returns exactly zero (a pegged or stale price: model it as a
  peg with depeg jumps, not as GARCH on its noise);
- **convergence**: arch's optimiser must report success; a fit that does not converge is
  retried once with a larger iteration budget, then refused;
- **parameter sanity**: every parameter finite, the mean at most one sample standard
  deviation per period in size, the next-period variance finite and positive;
- **near-integrated persistence**: the persistence ``P`` (``α + γ/2 + β`` for GARCH and
  GJR-GARCH, arch's stationarity measure; ``β`` for EGARCH) of the unconstrained fit is kept
  when at most :data:`MAX_PERSISTENCE`; above it the model is refit by maximum likelihood under
  the constraint ``P ≤ MAX_PERSISTENCE`` (a bounded-persistence refit: with ``P = 1`` the
  variance has no long-run level and year-long simulations drift to absurd volatility; at 0.99
  a variance shock has a half-life of ``ln 0.5 / ln 0.99 ≈ 69`` days). An hourly model is
  bounded at ``0.99^(1/24) ≈ 0.99958`` per hour, the same 69-day half-life
  (:func:`persistence_bound`). The diagnostics
  keep both persistences and say that the bound was applied.

References: Glosten, Jagannathan & Runkle (1993); Hansen (1994) skewed-t; Nelson (1991) EGARCH.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from arch import arch_model
from arch.univariate import EGARCH, GARCH
from arch.univariate.base import ARCHModel, ARCHModelFixedResult, ARCHModelResult
from arch.utility.exceptions import StartingValueWarning
from pydantic import BaseModel, ConfigDict, Field

from graph.errors import ContagionError

__all__ = [
    "MAX_PERSISTENCE",
    "MAX_ZERO_SHARE",
    "MIN_RETURNS",
    "SCALE",
    "FitDiagnostics",
    "FittedVolatility",
    "VolSpec",
    "VolatilityFitError",
    "arch_model_for",
    "fit_volatility",
    "persistence",
    "persistence_bound",
]

#: returns are fitted in percent
SCALE = 100.0
#: fewest returns a volatility fit accepts
MIN_RETURNS = 100
#: largest share of exactly-zero returns a volatility fit accepts
MAX_ZERO_SHARE = 0.5
#: largest persistence of a daily model (above it: a bounded-persistence refit); a model of
#: ``k`` periods a day is bounded at ``MAX_PERSISTENCE ** (1 / k)``, the same decay per day
MAX_PERSISTENCE = 0.99


class VolatilityFitError(ContagionError, ValueError):
    """A return series no volatility model should be fitted on, or a fit that failed its
    checks (the message names the asset and the check)."""


class VolSpec(BaseModel):
    """Which volatility model: ``model`` (gjr-garch, garch, egarch), innovation ``dist``
    (skewt, t, normal) and ``mean`` (constant or zero)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: Literal["gjr-garch", "garch", "egarch"] = "gjr-garch"
    dist: Literal["skewt", "t", "normal"] = "skewt"
    mean: Literal["constant", "zero"] = "constant"


def arch_model_for(returns_pct: pd.Series | np.ndarray, spec: VolSpec) -> ARCHModel:
    """The arch model of ``spec`` on returns in percent."""
    o = 0 if spec.model == "garch" else 1
    vol: Literal["GARCH", "EGARCH"] = "EGARCH" if spec.model == "egarch" else "GARCH"
    return arch_model(returns_pct, mean=spec.mean, vol=vol, p=1, o=o, q=1, dist=spec.dist,
                      rescale=False)


def persistence_bound(periods_per_day: int) -> float:
    """The largest persistence kept for a model of ``periods_per_day`` periods a day:
    ``MAX_PERSISTENCE ** (1 / periods_per_day)``, the same decay per day at any frequency.

    >>> round(persistence_bound(24), 6)
    0.999581
    """
    if periods_per_day < 1:
        raise VolatilityFitError(f"periods_per_day must be >= 1 (got {periods_per_day})")
    return MAX_PERSISTENCE ** (1.0 / periods_per_day)


def persistence(spec: VolSpec, params: dict[str, float]) -> float:
    """The persistence of fitted ``params`` (arch's names): ``α + γ/2 + β`` for GARCH and
    GJR-GARCH, ``β`` for EGARCH.

    >>> persistence(VolSpec(), {"alpha[1]": 0.05, "gamma[1]": 0.1, "beta[1]": 0.9})
    1.0
    """
    beta = params["beta[1]"]
    if spec.model == "egarch":
        return beta
    return params["alpha[1]"] + 0.5 * params.get("gamma[1]", 0.0) + beta


class _Bounded:
    """Mixin: arch's volatility process with the persistence constrained to ``cap``."""

    cap: float = MAX_PERSISTENCE

    def constraints(self) -> tuple[np.ndarray, np.ndarray]:
        a, b = super().constraints()  # type: ignore[misc]
        p, o = self.p, self.o  # type: ignore[attr-defined]
        row = np.zeros((1, a.shape[1]))
        if isinstance(self, EGARCH):
            row[0, p + o + 1:] = -1.0
        else:
            row[0, 1:] = -1.0
            row[0, p + 1:p + o + 1] = -0.5
        return np.vstack([a, row]), np.r_[b, -self.cap]


class _BoundedGARCH(_Bounded, GARCH):
    pass


class _BoundedEGARCH(_Bounded, EGARCH):
    pass


class FitDiagnostics(BaseModel):
    """What the guards of :func:`fit_volatility` found and did."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: arch's optimiser reported success (after at most one retry)
    converged: bool
    #: fits run (1, or 2 with a convergence retry or a bounded-persistence refit, 3 with both)
    attempts: int = Field(ge=1)
    #: persistence of the kept fit
    persistence: float
    #: persistence of the unconstrained fit
    unconstrained_persistence: float
    #: the persistence bound was applied (the unconstrained fit was above ``max_persistence``)
    bounded: bool
    max_persistence: float
    #: share of the returns that are exactly zero
    zero_share: float = Field(ge=0.0, le=1.0)


class FittedVolatility(BaseModel):
    """A fitted volatility model of one asset (parameters in arch's names, percent units)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    asset: str
    spec: VolSpec
    params: dict[str, float]
    nobs: int = Field(gt=0)
    loglikelihood: float
    #: standardised residuals ``ε_t / σ_t`` of the fit sample, oldest first
    std_resid: list[float]
    #: dates of ``std_resid`` (ISO), for joint resampling across assets
    dates: list[str]
    #: conditional variance (percent²) forecast for the step after the sample
    next_variance: float = Field(gt=0)
    #: the fit's guards (``None`` in files written before fits were guarded)
    diagnostics: FitDiagnostics | None = None

    @property
    def next_volatility(self) -> float:
        """One-step conditional volatility, decimal."""
        return float(np.sqrt(self.next_variance)) / SCALE

    def result(self, returns: pd.Series) -> ARCHModelFixedResult:
        """The arch result with these parameters fixed, on decimal ``returns``."""
        model = arch_model_for(returns * SCALE, self.spec)
        # the mean model's names, then the volatility process's, then the distribution's
        names = (list(model.parameter_names()) + list(model.volatility.parameter_names())
                 + list(model.distribution.parameter_names()))
        return model.fix([self.params[n] for n in names])

    def to_json(self) -> str:
        return self.model_dump_json()

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> FittedVolatility:
        return cls.model_validate(json.loads(Path(path).read_text()))


def _labels(index: pd.Index) -> list[str]:
    """ISO labels of an index: dates when every entry is a midnight, else date and time."""
    if isinstance(index, pd.DatetimeIndex):
        if bool((index == index.normalize()).all()):
            return [d.date().isoformat() for d in index]
        return [d.isoformat() for d in index]
    return [str(d) for d in index]


def _arch_fit(model: ARCHModel, where: str, start: np.ndarray | None = None
              ) -> tuple[ARCHModelResult, int]:
    """arch's fit (from ``start``, or arch's own starting values), retried once from where it
    stopped with a larger iteration budget when it does not converge."""
    with warnings.catch_warnings():
        # arch warns when it replaces starting values it finds unusable; the fit's own checks
        # below decide whether the result is kept
        warnings.simplefilter("ignore", StartingValueWarning)
        res = model.fit(disp="off", show_warning=False, starting_values=start)
        if res.convergence_flag == 0:
            return res, 1
        res = model.fit(disp="off", show_warning=False, options={"maxiter": 2000},
                        starting_values=res.params.to_numpy())
    if res.convergence_flag != 0:
        raise VolatilityFitError(f"volatility fit of {where} did not converge (arch's "
                                 f"optimiser: {res.optimization_result.message})")
    return res, 2


def fit_volatility(returns: pd.Series, spec: VolSpec | None = None, *, asset: str = "",
                   max_persistence: float = MAX_PERSISTENCE) -> FittedVolatility:
    """Fit ``spec`` (default GJR-GARCH(1,1)-skewed-t) to decimal log ``returns``, guarded
    (see the module doc): degenerate series and failed fits raise
    :class:`VolatilityFitError`; persistence above ``max_persistence`` is refit under that
    bound.

    ``returns`` is a Series indexed by date or hour; NaNs are dropped.
    """
    spec = spec or VolSpec()
    where = asset or "asset"
    if not 0.0 < max_persistence < 1.0:
        raise VolatilityFitError(f"max_persistence must be in (0, 1) (got {max_persistence})")
    r = pd.Series(returns, dtype=float).dropna()
    if len(r) < MIN_RETURNS:
        raise VolatilityFitError(f"volatility fit of {where} needs at least {MIN_RETURNS} "
                                 f"returns (got {len(r)})")
    x = r.to_numpy()
    if not np.isfinite(x).all():
        raise VolatilityFitError(f"returns of {where} must be finite")
    zero_share = float(np.mean(x == 0.0))
    if zero_share > MAX_ZERO_SHARE:
        raise VolatilityFitError(
            f"{where}: {zero_share:.0%} of its {len(x)} returns are exactly zero (a pegged or "
            f"stale price); a volatility model on it is meaningless: model it as a pegged asset "
            f"(peg plus depeg jumps)")
    sd = float(np.std(x))
    if sd == 0.0:
        raise VolatilityFitError(f"{where}: its returns do not vary")
    model = arch_model_for(r * SCALE, spec)
    res, attempts = _arch_fit(model, where)
    free = persistence(spec, {str(k): float(v) for k, v in res.params.items()})
    bounded = free > max_persistence
    if bounded:
        capped = (_BoundedEGARCH if spec.model == "egarch" else _BoundedGARCH)(
            p=1, o=0 if spec.model == "garch" else 1, q=1)
        capped.cap = max_persistence
        model.volatility = capped
        # start inside the bound: the unconstrained fit with its persistence scaled below it
        names = list(res.params.index)
        start = res.params.to_numpy(copy=True)
        dyn = [i for i, n in enumerate(names) if n.startswith(("alpha[", "gamma[", "beta["))]
        if spec.model == "egarch":
            dyn = [names.index("beta[1]")]
        start[dyn] *= 0.999 * max_persistence / free
        res, more = _arch_fit(model, f"{where} (persistence bounded at {max_persistence})",
                              start)
        attempts += more
    params: dict[str, Any] = {str(k): float(v) for k, v in res.params.items()}
    if not all(np.isfinite(v) for v in params.values()):
        raise VolatilityFitError(f"volatility fit of {where} gave non-finite parameters "
                                 f"({params})")
    mu = params.get("mu", 0.0) / SCALE
    if abs(mu) > sd:
        raise VolatilityFitError(f"volatility fit of {where} gave a mean of {mu:.3g} per "
                                 f"period, above the returns' standard deviation {sd:.3g}")
    fc = res.forecast(horizon=1, reindex=False)
    next_variance = float(fc.variance.to_numpy()[-1, 0])
    if not (np.isfinite(next_variance) and next_variance > 0):
        raise VolatilityFitError(f"volatility fit of {where} forecasts a variance of "
                                 f"{next_variance}")
    std = np.asarray(res.resid / res.conditional_volatility, dtype=float)
    dates = _labels(r.index)
    return FittedVolatility(
        asset=asset, spec=spec, params=params, nobs=int(res.nobs),
        loglikelihood=float(res.loglikelihood), std_resid=[float(x) for x in std],
        dates=dates, next_variance=next_variance,
        diagnostics=FitDiagnostics(
            converged=True, attempts=attempts, persistence=persistence(spec, params),
            unconstrained_persistence=free, bounded=bounded, max_persistence=max_persistence,
            zero_share=zero_share),
    )
