"""A peg model fitted from a pegged asset's price history (stablecoins, LSTs, receipt tokens).

:class:`~simulate.market.shocks.PegModel` prices a pegged asset as ``peg · (1 - d_t)`` with

    1 - d_t = (1 - d_{t-1}·(1 - ρ)) · Π_k (1 - D_k),   N_t ~ Poisson(λ) events D_k per step

(``ρ`` the recovery per step, ``D_k ~ Beta(a, b)`` the depeg sizes). :func:`fit_peg_model`
estimates ``λ``, ``(a, b)`` and ``ρ`` from closes ``p_0 … p_n``, per period of the series (the
frequency is implicit: a model fitted on hourly closes is a model per hour and must drive an
hourly simulation):

1. **Depeg** ``d_t = max(0, 1 - p_t / peg)`` (a price above the peg is no depeg).
2. **Transitions**: the pairs ``(t-1, t)`` one period apart. With a ``DatetimeIndex`` the period
   is the most common spacing of the index and a pair spanning a missing period is skipped
   (counted in ``PegFit.skipped``); with any other index every consecutive pair counts.
3. **Events**: transitions where ``d_t - d_{t-1} > threshold``. **Intensity**
   ``λ̂ = events / transitions`` (for ``λ ≪ 1`` the Poisson rate; the model's
   ``P(N ≥ 1) = 1 - e^{-λ}`` differs from ``λ`` by ``λ²/2``). Only depegs larger than the
   threshold are seen, so ``λ̂`` is the rate of those, and the sizes below are sizes given an
   event larger than the threshold.
4. **Recovery** from the transitions without an event whose ``d_{t-1} > threshold``:
   ``ρ̂ = clip(1 - median(d_t / d_{t-1}), 0, 1)`` (the model gives ``d_t / d_{t-1} = 1 - ρ``
   exactly between events). Fewer than :data:`MIN_RECOVERY_PERIODS` such transitions: the
   prior's recovery, flagged.
5. **Sizes**: each event's size is the model's step solved for ``D`` given ``ρ̂``:
   ``D_t = 1 - (1 - d_t) / (1 - (1 - ρ̂)·d_{t-1})`` (``= d_t`` after a period at the peg).
   With at least ``min_size_events`` events, method of moments: ``m`` the mean and ``s²`` the
   sample variance (``n - 1``) of the ``D_t``, ``c = m(1-m)/s² - 1``, ``a = m·c``,
   ``b = (1-m)·c`` (valid when ``0 < s² < m(1-m)``). With fewer events (or an invalid moment
   fit), the events' mean with the prior's concentration ``a + b``: ``a = m·(a₀ + b₀)``,
   ``b = (1-m)·(a₀ + b₀)``; with no event, the prior ``Beta(a₀, b₀)``. Either is flagged
   (``PegFit.sizes_fitted`` false, a line in ``PegFit.notes``).

The **prior** is :data:`PRIOR`, the project's default :class:`PegModel`: sizes
``Beta(1, 30)`` (mean 0.032), recovery 0.2 per step.

Hand-solved (peg 1, threshold 0.02, ``min_size_events=2``), closes one period apart:

    t   0     1     2     3     4      5       6     7     8     9     10    11
    p   1.00  1.00  0.90  0.95  0.975  0.9875  1.00  1.01  0.80  0.88  1.00  1.00
    d   0     0     0.1   0.05  0.025  0.0125  0     0     0.2   0.12  0     0

- events (rise of ``d`` above 0.02): ``t = 2`` (+0.1) and ``t = 8`` (+0.2); 11 transitions,
  so ``λ̂ = 2/11 ≈ 0.1818``;
- recovery: transitions without an event with ``d_{t-1} > 0.02``: ``t = 3, 4, 5, 9, 10``
  with ratios ``0.05/0.1, 0.025/0.05, 0.0125/0.025, 0.12/0.2, 0/0.12`` ``= 0.5, 0.5, 0.5,
  0.6, 0``; median 0.5, so ``ρ̂ = 0.5`` (``t = 6``: ``d_5 = 0.0125`` is below the threshold);
- sizes: both events follow a period at the peg, so ``D = 0.1, 0.2``; ``m = 0.15``,
  ``s² = 0.005``, ``c = 0.1275 / 0.005 - 1 = 24.5``, ``a = 3.675``, ``b = 20.825``;
- largest depeg 0.2 at ``t = 8``.

>>> import pandas as pd
>>> p = pd.Series([1.0, 1.0, 0.9, 0.95, 0.975, 0.9875, 1.0, 1.01, 0.8, 0.88, 1.0, 1.0])
>>> fit = fit_peg_model(p, asset="X", threshold=0.02, min_size_events=2)
>>> fit.events, round(fit.model.intensity, 4), round(fit.model.recovery, 6)
(2, 0.1818, 0.5)
>>> [round(v, 3) for v in fit.model.size_params], round(fit.largest_depeg, 12)
([3.675, 20.825], 0.2)
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from graph.errors import ContagionError
from simulate.market.shocks import PegModel

__all__ = [
    "DEFAULT_THRESHOLD",
    "MIN_OBSERVATIONS",
    "MIN_RECOVERY_PERIODS",
    "MIN_SIZE_EVENTS",
    "PRIOR",
    "PegFit",
    "PegFitError",
    "fit_peg_model",
]

#: smallest one-period rise of the depeg that counts as an event: about 7 standard deviations
#: of hourly CoinGecko stablecoin noise (about 0.3% per hour); USDC, DAI and USDT hourly
#: 2021-01 .. 2023-02 (``data/market/prices_hourly``) give 5-8 events in about 18,800 hours,
#: against 130-190 at 0.005
DEFAULT_THRESHOLD = 0.02
#: fewest closes a peg fit accepts
MIN_OBSERVATIONS = 10
#: fewest events whose sizes are fitted by the method of moments (fewer: see the module doc)
MIN_SIZE_EVENTS = 5
#: fewest recovery transitions the recovery is estimated from (fewer: the prior's)
MIN_RECOVERY_PERIODS = 3
#: the prior of what the data cannot tell: the project's default peg model
PRIOR = PegModel()


class PegFitError(ContagionError, ValueError):
    """A price history a peg model cannot be fitted from (the message names the asset and
    the input)."""


class PegFit(BaseModel):
    """A fitted :class:`PegModel` and how it was obtained (see the module doc)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    asset: str
    model: PegModel
    #: closes in the series
    observations: int
    #: pairs of closes one period apart (the periods the intensity is per)
    transitions: int
    #: pairs of consecutive closes not one period apart (skipped)
    skipped: int
    #: the period (ISO 8601 duration) of a time-indexed series, None for any other index
    period: str | None
    threshold: float
    #: depeg events found (one-period rises of the depeg above ``threshold``)
    events: int
    #: when each event happened (index labels), oldest first
    event_times: list[str]
    #: each event's size ``D`` given the fitted recovery
    event_sizes: list[float]
    #: largest depeg ``max d_t`` and when
    largest_depeg: float
    largest_depeg_at: str
    #: transitions the recovery was estimated from
    recovery_periods: int
    #: how each parameter was obtained: ``intensity``, ``sizes``, ``recovery``
    estimators: dict[str, str]
    #: the sizes are a moment fit of the events (False: a prior was used, see ``notes``)
    sizes_fitted: bool
    #: the recovery is estimated (False: the prior's, see ``notes``)
    recovery_fitted: bool
    #: what was not fitted from the data and what is used instead, one line each
    notes: list[str]


def _period(index: pd.Index) -> tuple[np.ndarray, str | None]:
    """Which consecutive pairs are one period apart ``[n - 1]``, and the period."""
    if not isinstance(index, pd.DatetimeIndex):
        return np.ones(len(index) - 1, dtype=bool), None
    gaps = index[1:] - index[:-1]
    period = pd.Series(gaps).mode().iloc[0]
    return np.asarray(gaps == period), pd.Timedelta(period).isoformat()


def _beta_moments(sizes: np.ndarray) -> tuple[float, float] | None:
    """Method-of-moments ``(a, b)`` of sizes in (0, 1), or None when the moments admit none."""
    m = float(sizes.mean())
    s2 = float(sizes.var(ddof=1))
    if not (0.0 < s2 < m * (1.0 - m)):
        return None
    c = m * (1.0 - m) / s2 - 1.0
    return m * c, (1.0 - m) * c


def _check(closes: pd.Series, peg: float, threshold: float, asset: str,
           min_size_events: int) -> np.ndarray:
    where = f"peg fit of {asset!r}"
    if not isinstance(closes, pd.Series):
        raise PegFitError(f"{where}: closes must be a pandas Series (got "
                          f"{type(closes).__name__})")
    if not (isinstance(peg, int | float) and math.isfinite(peg) and peg > 0):
        raise PegFitError(f"{where}: peg must be a positive price (got {peg})")
    if not (isinstance(threshold, int | float) and 0.0 < threshold < 1.0):
        raise PegFitError(f"{where}: threshold must be a depeg in (0, 1) (got {threshold})")
    if not (isinstance(min_size_events, int) and min_size_events >= 2):
        raise PegFitError(f"{where}: min_size_events must be an integer >= 2 (the sample "
                          f"variance needs two sizes) (got {min_size_events})")
    if len(closes) < MIN_OBSERVATIONS:
        raise PegFitError(f"{where} needs at least {MIN_OBSERVATIONS} closes (got "
                          f"{len(closes)})")
    try:
        p = closes.to_numpy(dtype=float)
    except (TypeError, ValueError):
        raise PegFitError(f"{where}: closes must be numbers") from None
    bad = ~np.isfinite(p) | (p <= 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise PegFitError(f"{where}: closes must be positive and finite (got {p[i]} at "
                          f"{closes.index[i]}; drop missing values first)")
    idx = closes.index
    if isinstance(idx, pd.DatetimeIndex) and not (idx.is_monotonic_increasing and idx.is_unique):
        raise PegFitError(f"{where}: closes must be in time order with one close per time")
    return p


def fit_peg_model(closes: pd.Series, *, peg: float = 1.0,
                  threshold: float = DEFAULT_THRESHOLD, asset: str,
                  min_size_events: int = MIN_SIZE_EVENTS) -> PegFit:
    """Fit a :class:`PegModel` (Beta sizes) to ``closes`` ``[n]`` of a pegged asset, oldest
    first, per period of the series (estimators in the module doc).

    ``peg``: the price the asset is pegged to (in the closes' unit); ``threshold``: the
    smallest one-period rise of the depeg counted as an event; ``asset``: named in errors and
    the result; ``min_size_events``: fewest events the sizes are fitted from.

    Raises :class:`PegFitError` for fewer than :data:`MIN_OBSERVATIONS` closes, a close that is
    not positive and finite, a time index out of order, no two closes one period apart, or a
    ``peg`` / ``threshold`` / ``min_size_events`` out of range.
    """
    p = _check(closes, peg, threshold, asset, min_size_events)
    d = np.maximum(0.0, 1.0 - p / peg)
    adjacent, period = _period(closes.index)
    transitions = int(adjacent.sum())
    if transitions == 0:
        raise PegFitError(f"peg fit of {asset!r}: no two closes are one period apart")
    prev, cur = d[:-1], d[1:]
    event = adjacent & (cur - prev > threshold)
    k = int(event.sum())
    events = f"{k} depeg event{'' if k == 1 else 's'}"
    notes: list[str] = []
    intensity = k / transitions
    if k == 0:
        notes.append(f"no depeg event above {threshold:g} in {transitions} periods: intensity "
                     f"0 (the 95% upper bound is {3 / transitions:.3g} per period)")

    calm = adjacent & ~event & (prev > threshold)
    n_rec = int(calm.sum())
    recovery_fitted = n_rec >= MIN_RECOVERY_PERIODS
    if recovery_fitted:
        recovery = float(np.clip(1.0 - np.median(cur[calm] / prev[calm]), 0.0, 1.0))
        rec_how = (f"1 - median(d_t / d_t-1) over {n_rec} periods without an event from a "
                   f"depeg above {threshold:g}, clipped to [0, 1]")
    else:
        recovery = PRIOR.recovery
        rec_how = f"prior {PRIOR.recovery:g} per period"
        notes.append(f"recovery: {n_rec} periods recovering from a depeg above {threshold:g} "
                     f"(fewer than {MIN_RECOVERY_PERIODS}): the prior {PRIOR.recovery:g} per "
                     f"period is used, not fitted")

    sizes = 1.0 - (1.0 - cur[event]) / (1.0 - (1.0 - recovery) * prev[event])
    a0, b0 = PRIOR.size_params
    fitted = _beta_moments(sizes) if k >= min_size_events else None
    if fitted is not None:
        size_params = fitted
        size_how = f"method of moments on the sizes of {events}"
    elif k == 0:
        size_params = (a0, b0)
        size_how = f"prior Beta({a0:g}, {b0:g})"
        notes.append(f"sizes: no depeg event: the prior Beta({a0:g}, {b0:g}) (mean "
                     f"{a0 / (a0 + b0):.3g}) is used, not fitted")
    else:
        m = float(sizes.mean())
        size_params = (m * (a0 + b0), (1.0 - m) * (a0 + b0))
        why = (f"{events} (fewer than {min_size_events})" if k < min_size_events
               else f"the {k} event sizes admit no moment fit (variance {sizes.var(ddof=1):.3g}"
                    f", mean {m:.3g})")
        size_how = f"mean of the sizes of {events}, prior concentration a + b = {a0 + b0:g}"
        notes.append(f"sizes: {why}: Beta with their mean {m:.3g} and the prior's "
                     f"concentration a + b = {a0 + b0:g} (Beta({size_params[0]:.4g}, "
                     f"{size_params[1]:.4g})) is used, not a fit")

    model = PegModel(peg=float(peg), intensity=intensity, size_dist="beta",
                     size_params=(float(size_params[0]), float(size_params[1])),
                     recovery=recovery)
    labels = [str(t) for t in closes.index]
    worst = int(np.argmax(d))
    how = {"intensity": f"{events} / {transitions} periods", "sizes": size_how,
           "recovery": rec_how}
    return PegFit(
        asset=asset, model=model, observations=len(p), transitions=transitions,
        skipped=len(p) - 1 - transitions, period=period, threshold=float(threshold),
        events=k, event_times=[labels[i + 1] for i in np.flatnonzero(event)],
        event_sizes=[float(s) for s in sizes], largest_depeg=float(d[worst]),
        largest_depeg_at=labels[worst], recovery_periods=n_rec, estimators=how,
        sizes_fitted=fitted is not None, recovery_fitted=recovery_fitted, notes=notes)
