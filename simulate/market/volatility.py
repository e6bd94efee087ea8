"""Per-asset conditional volatility, fitted with ``arch``.

The default is GJR-GARCH(1,1) with Hansen's skewed-t innovations (fat tails and a leverage
effect, as crypto returns show); GARCH(1,1) and EGARCH(1,1,1) are configuration choices, as are
Student-t and normal innovations. Returns are fitted in percent (arch's optimiser is best
conditioned there); every public value is in decimal log returns.

A :class:`FittedVolatility` keeps the estimated parameters, the standardised residuals and the
last conditional variance, so it is reloadable from JSON and usable without the price history
(filtered historical simulation bootstraps its residuals).

References: Glosten, Jagannathan & Runkle (1993); Hansen (1994) skewed-t; Nelson (1991) EGARCH.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from arch import arch_model
from arch.univariate.base import ARCHModel, ARCHModelFixedResult
from pydantic import BaseModel, ConfigDict, Field

__all__ = ["SCALE", "FittedVolatility", "VolSpec", "arch_model_for", "fit_volatility"]

#: returns are fitted in percent
SCALE = 100.0


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


def fit_volatility(returns: pd.Series, spec: VolSpec | None = None, *, asset: str = ""
                   ) -> FittedVolatility:
    """Fit ``spec`` (default GJR-GARCH(1,1)-skewed-t) to decimal log ``returns``.

    ``returns`` is a Series indexed by date; NaNs are dropped. Raises ``ValueError`` for
    fewer than 100 observations or non-finite values.
    """
    spec = spec or VolSpec()
    r = pd.Series(returns, dtype=float).dropna()
    if len(r) < 100:
        raise ValueError(f"volatility fit of {asset or 'asset'} needs at least 100 returns "
                         f"(got {len(r)})")
    if not np.isfinite(r.to_numpy()).all():
        raise ValueError(f"returns of {asset or 'asset'} must be finite")
    model = arch_model_for(r * SCALE, spec)
    res = model.fit(disp="off", show_warning=False)
    params: dict[str, Any] = {str(k): float(v) for k, v in res.params.items()}
    fc = res.forecast(horizon=1, reindex=False)
    std = np.asarray(res.resid / res.conditional_volatility, dtype=float)
    index = r.index
    dates = [str(d.date()) if hasattr(d, "date") else str(d) for d in index]
    return FittedVolatility(
        asset=asset, spec=spec, params=params, nobs=int(res.nobs),
        loglikelihood=float(res.loglikelihood), std_resid=[float(x) for x in std],
        dates=dates, next_variance=float(fc.variance.to_numpy()[-1, 0]),
    )
