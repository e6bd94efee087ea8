"""An arbitrage-checked implied-volatility surface per underlying, and how it moves with the
spot (docs/architecture.md §4.1, §4.6).

**Slices.** Each expiry ``j`` (``τ_j`` years from ``as_of``, forward ``F_j`` = the median
``underlying_price`` of its rows) is one raw SVI smile in total implied variance ``w = σ²·τ``
of log-forward-moneyness ``k = ln(K / F_j)`` (:func:`simulate.formulas.svi
.svi_total_variance`). One quote per strike: the out-of-the-money option (puts below the
forward, calls at or above it). The fit is weighted least squares on total variance,
:func:`scipy.optimize.minimize` (SLSQP), with the residual of quote ``i`` divided by its
delta-method width ``2·σ_i·τ·e_i``: ``e_i`` the bid–ask spread in vol (``weighting="spread"``;
a missing side counts as twice the slice's widest spread, spreads below half a vol point as
half a vol point), or ``e_i ∝ 1 / vega_i`` (``weighting="vega"``, residuals in price terms).
Constraints: ``b ≥ 0``, ``|ρ| < 1``, ``s > 0``, ``a + b·s·√(1 - ρ²) ≥ 0`` (no negative
variance), ``b·(1 ± ρ) ≤ 2`` (Lee's wing bound), ``g(k) ≥ 0`` on the grid (no butterfly
arbitrage) and, fitting from the shortest expiry up, ``w_j(k) ≥ w_{j-1}(k)`` on the grid (no
calendar arbitrage). The wings are linear in total variance, so the vol grows like
``√(|k|)`` far from the money instead of a quadratic's ``k²``.

**Maturity.** Between two expiries the surface is linear in total variance at fixed ``k``:
``w(k, τ) = w_j(k) + (w_{j+1}(k) - w_j(k))·(τ - τ_j)/(τ_{j+1} - τ_j)``, which keeps the
calendar condition; before the first expiry and after the last the implied vol of that slice
is kept (``w = w_1·τ/τ_1``, ``w = w_N·τ/τ_N``). :attr:`IVSurface.checks` reports the smallest
``g`` on a fine grid over every slice and every midpoint between two slices, and the smallest
``w_{j+1} - w_j``.

**Under a spot move** (sticky moneyness): with the spot moved from ``S_0`` to ``S``
(``R = ln(S / S_0)``) the option of strike ``K`` and time ``τ`` is marked at
``σ(K, τ; S) = M(R)·σ_0(ln(K / S), τ)``: the fitted smile read at the moneyness against the
shocked spot (zero rates: the forward is the spot), its whole level scaled by the ATM response
``M(R) = min(exp(down·max(-R, 0) + up·max(R, 0)), max_multiplier)``
(:func:`simulate.market.implied_vol.iv_response`) with ``down``/``up`` fitted from a vol index
against the underlying's returns (:func:`fit_spot_vol`). Its spot slope, for the
smile-consistent delta, is ``∂σ/∂S = (M/S)·(σ_0·∂ln M/∂R - ∂σ_0/∂k)``.

>>> sl = SVISlice(expiry="2020-06-26T08:00", tau=0.118, forward=9360.0, a=0.05, b=0.08,
...               rho=-0.3, m=0.0, s=0.2)
>>> round(float(sl.total_variance(0.0)), 6)  # a + b·s
0.066
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Literal, Self

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from scipy.optimize import minimize

from simulate.formulas.black_scholes import bs_vega
from simulate.formulas.svi import butterfly_g, svi_derivatives
from simulate.market.implied_vol import (
    CHAIN_COLUMNS,
    DAYS_PER_YEAR,
    IVModel,
    IVModelError,
    iv_response,
)
from simulate.prices import log_returns

__all__ = [
    "IVSurface",
    "SVISlice",
    "SpotVolDynamics",
    "SurfaceChecks",
    "SurfaceError",
    "fit_spot_vol",
    "fit_surface",
    "load_surface",
    "read_vol_index",
    "surface_quotes",
]

_IV = IVModel.model_fields
#: the log-moneyness grid the constraints hold on (and a 5x finer one for the checks)
K_GRID = (-3.0, 3.0, 121)
_MIN_SPREAD = 0.005  # half a vol point
_TOL_G = -1e-6  # g below this is butterfly arbitrage (SLSQP meets constraints to ~1e-9)
_TOL_CAL = -1e-9  # total variance may fall by at most this between expiries


class SurfaceError(IVModelError):
    """A chain that cannot be fitted, a surface that does not validate, or a vol-index fit
    that cannot be made."""


def _label(expiry: datetime) -> str:
    return expiry.strftime("%Y-%m-%dT%H:%M")


class SVISlice(BaseModel):
    """One expiry's raw SVI smile ``w(k) = a + b·(ρ·(k - m) + √((k - m)² + s²))`` in total
    variance, ``k = ln(K / forward)``; ``tau`` years to ``expiry``. ``quotes``, ``k_min``,
    ``k_max`` and ``rmse`` (in-sample, vol as a decimal against the marks) describe the fit."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    expiry: datetime
    tau: float
    forward: float
    a: float
    b: float
    rho: float
    m: float
    s: float
    quotes: int = 0
    k_min: float = 0.0
    k_max: float = 0.0
    rmse: float = 0.0

    @model_validator(mode="after")
    def _check(self) -> Self:
        where = f"SVI slice {_label(self.expiry)}"
        for name in ("tau", "forward", "a", "b", "rho", "m", "s", "k_min", "k_max", "rmse"):
            v = getattr(self, name)
            if not math.isfinite(v):
                raise ValueError(f"{where}: {name!r} must be finite (got {v})")
        checks = [("tau", self.tau > 0, "> 0"), ("forward", self.forward > 0, "> 0"),
                  ("b", self.b >= 0, ">= 0"), ("rho", abs(self.rho) < 1, "in (-1, 1)"),
                  ("s", self.s > 0, "> 0")]
        for name, ok, want in checks:
            if not ok:
                raise ValueError(f"{where}: {name!r} must be {want} "
                                 f"(got {getattr(self, name)})")
        floor = self.a + self.b * self.s * math.sqrt(1.0 - self.rho ** 2)
        if floor < -1e-12:
            raise ValueError(f"{where}: minimum total variance a + b·s·√(1-ρ²) must be >= 0 "
                             f"(got {floor:.3g})")
        wing = self.b * (1.0 + abs(self.rho))
        if wing > 2.0 + 1e-9:
            raise ValueError(f"{where}: wing slope b·(1+|ρ|) must be <= 2 (Lee) "
                             f"(got {wing:.4g})")
        return self

    @property
    def label(self) -> str:
        return _label(self.expiry)

    def derivatives(self, k: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(w, w', w'')`` at log-moneyness ``k [...]``."""
        return svi_derivatives(k, self.a, self.b, self.rho, self.m, self.s)

    def total_variance(self, k: ArrayLike) -> np.ndarray:
        """``w(k)`` at log-moneyness ``k [...]``."""
        return self.derivatives(k)[0]

    def vol(self, k: ArrayLike) -> np.ndarray:
        """Implied vol ``√(w(k) / τ)`` at ``k [...]``."""
        return np.sqrt(np.maximum(self.total_variance(k), 0.0) / self.tau)


class SpotVolDynamics(BaseModel):
    """How the ATM implied vol moves with the underlying's cumulative log return ``R``:
    ``M(R) = min(exp(down·max(-R, 0) + up·max(R, 0)), max_multiplier)``.

    ``source`` "default": :class:`~simulate.market.implied_vol.IVModel`'s round numbers;
    "fitted": the OLS of :func:`fit_spot_vol` (``Δ ln vol = c + down·max(-r, 0) +
    up·max(r, 0)``), with its standard errors, ``intercept``, ``r_squared``, ``observations``
    and the first and last day fitted.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    down: float = _IV["down"].default
    up: float = _IV["up"].default
    max_multiplier: float = _IV["max_multiplier"].default
    source: Literal["default", "fitted"] = "default"
    down_se: float | None = None
    up_se: float | None = None
    intercept: float | None = None
    intercept_se: float | None = None
    r_squared: float | None = None
    observations: int = 0
    first: str | None = None
    last: str | None = None

    @model_validator(mode="after")
    def _check(self) -> Self:
        for name in ("down", "up"):
            v = getattr(self, name)
            if not math.isfinite(v):
                raise ValueError(f"spot-vol dynamics: {name!r} must be finite (got {v})")
        if not (math.isfinite(self.max_multiplier) and self.max_multiplier > 1):
            raise ValueError(f"spot-vol dynamics: 'max_multiplier' must be > 1 "
                             f"(got {self.max_multiplier})")
        return self

    def multiplier(self, returns: ArrayLike) -> np.ndarray:
        """``M(R)`` for cumulative log returns ``R [...]``."""
        return iv_response(returns, down=self.down, up=self.up,
                           max_multiplier=self.max_multiplier)

    def log_slope(self, returns: ArrayLike) -> np.ndarray:
        """``∂ln M/∂R [...]``: ``-down`` below 0, ``up`` above, their mean ``(up - down)/2``
        at ``R = 0`` (the kink: the best linear response to a small move either way), 0 where
        ``M`` is capped."""
        r = np.asarray(returns, dtype=float)
        slope = np.where(r < 0, -self.down, np.where(r > 0, self.up,
                                                     0.5 * (self.up - self.down)))
        capped = (self.down * np.maximum(-r, 0.0) + self.up * np.maximum(r, 0.0)
                  >= math.log(self.max_multiplier))
        return np.where(capped, 0.0, slope)


class SurfaceChecks(BaseModel):
    """No-arbitrage checks of a surface on ``points`` log-moneyness values in
    ``[k_min, k_max]``: the smallest butterfly factor ``g`` over every slice and every midpoint
    in maturity between two (``butterfly_at``: which, and the ``k``), and the smallest rise of
    total variance from one expiry to the next (``calendar_at``; ``inf`` with one expiry)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    k_min: float
    k_max: float
    points: int
    butterfly_min_g: float
    butterfly_at: str
    butterfly_k: float
    calendar_min_dw: float
    calendar_at: str
    calendar_k: float

    @property
    def passed(self) -> bool:
        return self.butterfly_min_g >= _TOL_G and self.calendar_min_dw >= _TOL_CAL


class IVSurface(BaseModel):
    """The implied-vol surface of ``underlying`` on ``as_of`` (module docstring): SVI slices in
    increasing maturity, interpolated linearly in total variance at fixed ``k``; ``spot``: the
    index price the surface was read at; ``dynamics``: how it moves with the spot."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    underlying: str
    as_of: datetime
    spot: float
    slices: tuple[SVISlice, ...]
    dynamics: SpotVolDynamics = SpotVolDynamics()
    weighting: Literal["spread", "vega"] = "spread"
    checks: SurfaceChecks | None = None

    @model_validator(mode="after")
    def _check(self) -> Self:
        if not self.slices:
            raise ValueError(f"surface {self.underlying}: needs at least one SVI slice")
        if not (math.isfinite(self.spot) and self.spot > 0):
            raise ValueError(f"surface {self.underlying}: 'spot' must be > 0 (got {self.spot})")
        for x, y in zip(self.slices, self.slices[1:], strict=False):
            if not y.tau > x.tau:
                raise ValueError(f"surface {self.underlying}: slices must be in increasing "
                                 f"maturity ({y.label} at {y.tau:.6g} after {x.label} at "
                                 f"{x.tau:.6g})")
        return self

    @property
    def taus(self) -> np.ndarray:
        return np.array([s.tau for s in self.slices])

    def _rate(self, k: ArrayLike, tau: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """Variance rate ``v = w/τ`` and ``∂v/∂k`` at ``k``, ``tau`` (broadcast ``[...]``)."""
        kk, tt = np.broadcast_arrays(np.asarray(k, dtype=float), np.asarray(tau, dtype=float))
        taus = self.taus
        n = len(taus)
        parts = [s.derivatives(kk) for s in self.slices]
        w = np.stack([p[0] for p in parts], axis=-1)  # [..., N]
        w1 = np.stack([p[1] for p in parts], axis=-1)
        if n == 1:
            return w[..., 0] / taus[0], w1[..., 0] / taus[0]
        hi = np.clip(np.searchsorted(taus, tt, side="right"), 1, n - 1)
        lo = hi - 1
        t_lo, t_hi = taus[lo], taus[hi]
        theta = np.clip((tt - t_lo) / (t_hi - t_lo), 0.0, 1.0)

        def pick(x: np.ndarray, j: np.ndarray) -> np.ndarray:
            return np.take_along_axis(x, j[..., None], axis=-1)[..., 0]

        wi = pick(w, lo) + (pick(w, hi) - pick(w, lo)) * theta
        wi1 = pick(w1, lo) + (pick(w1, hi) - pick(w1, lo)) * theta
        with np.errstate(divide="ignore", invalid="ignore"):
            v = np.where(tt <= taus[0], w[..., 0] / taus[0],
                         np.where(tt >= taus[-1], w[..., -1] / taus[-1],
                                  wi / np.where(tt > 0, tt, 1.0)))
            v1 = np.where(tt <= taus[0], w1[..., 0] / taus[0],
                          np.where(tt >= taus[-1], w1[..., -1] / taus[-1],
                                   wi1 / np.where(tt > 0, tt, 1.0)))
        return v, v1

    def total_variance(self, k: ArrayLike, tau: ArrayLike) -> np.ndarray:
        """``w(k, τ)`` (``k = ln(K/F)``, ``τ`` years; broadcast ``[...]``)."""
        v, _ = self._rate(k, tau)
        return v * np.asarray(tau, dtype=float)

    def vol(self, k: ArrayLike, tau: ArrayLike) -> np.ndarray:
        """Implied vol ``σ_0(k, τ)`` of the fitted surface (broadcast ``[...]``)."""
        return self.vol_and_k_slope(k, tau)[0]

    def vol_and_k_slope(self, k: ArrayLike, tau: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """``(σ_0, ∂σ_0/∂k)`` at ``k``, ``tau`` (broadcast ``[...]``)."""
        v, v1 = self._rate(k, tau)
        sig = np.sqrt(np.maximum(v, 0.0))
        with np.errstate(divide="ignore", invalid="ignore"):
            slope = np.where(sig > 0, v1 / (2.0 * np.where(sig > 0, sig, 1.0)), 0.0)
        return sig, slope

    def vol_and_spot_slope(self, strike: ArrayLike, tau: ArrayLike, spot: ArrayLike,
                           reference_spot: ArrayLike, multiplier: ArrayLike | None = None,
                           ) -> tuple[np.ndarray, np.ndarray]:
        """The vol the option ``(strike, tau)`` is marked at with the spot at ``spot`` and
        ``∂σ/∂S`` (module docstring: ``σ = M·σ_0(ln(K/S), τ)``, ``R = ln(S / reference_spot)``);
        ``multiplier`` is ``M`` when given (a scenario's IV multiplier), else ``dynamics
        .multiplier(R)``. Broadcast ``[...]``; a zero spot gives ``σ_0`` at ``k = 0`` and
        slope 0."""
        s = np.asarray(spot, dtype=float)
        live = s > 0
        s_ = np.where(live, s, 1.0)
        r = np.log(s_ / np.asarray(reference_spot, dtype=float))
        mult = self.dynamics.multiplier(r) if multiplier is None else np.asarray(
            multiplier, dtype=float)
        k = np.where(live, np.log(np.asarray(strike, dtype=float) / s_), 0.0)
        sig0, dk = self.vol_and_k_slope(k, tau)
        slope = np.where(live, mult / s_ * (sig0 * self.dynamics.log_slope(r) - dk), 0.0)
        return mult * sig0, slope


def load_surface(path: str | Path) -> IVSurface:
    """A surface saved as JSON (``IVSurface.model_dump_json``); :class:`SurfaceError` on one
    line naming the file and the first problem."""
    p = Path(path)
    try:
        return IVSurface.model_validate_json(p.read_text())
    except OSError as e:
        raise SurfaceError(f"{p}: cannot read ({e.strerror or e})") from None
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        msg = str(first["msg"]).removeprefix("Value error, ")
        raise SurfaceError(f"{p}: {where + ': ' if where else ''}{msg}") from None


# --- fitting ----------------------------------------------------------------------------------


def surface_quotes(chain: pd.DataFrame, *, underlying: str | None = None,
                   as_of: pd.Timestamp | None = None, min_days: float = 0.0) -> pd.DataFrame:
    """One quote per (expiry, strike) of one underlying: the out-of-the-money option's
    ``mark_iv`` (and ``bid_iv`` / ``ask_iv`` when the chain has them, NaN for no quote), with
    ``tau`` (years), ``forward`` (the expiry's median ``underlying_price``), ``k = ln(K/F)``
    and ``w = mark_iv²·tau``; sorted by expiry and strike.

    ``chain`` has :data:`~simulate.market.implied_vol.CHAIN_COLUMNS` (``deribit_chain``
    converts Deribit's layout) and ``as_of`` unless given. Expired rows are an error naming
    the instrument; expiries fewer than ``min_days`` away are left out.
    """
    missing = [c for c in CHAIN_COLUMNS if c not in chain.columns]
    if missing:
        raise SurfaceError(f"options chain lacks columns {missing} (expected "
                           f"{list(CHAIN_COLUMNS)}; deribit_chain converts Deribit's layout)")
    unds = sorted(chain["underlying"].astype(str).unique())
    if underlying is None:
        if len(unds) != 1:
            raise SurfaceError(f"the chain lists underlyings {unds}: name one")
        underlying = unds[0]
    c = chain[chain["underlying"].astype(str) == underlying].copy()
    if c.empty:
        raise SurfaceError(f"the chain has no options on {underlying!r} (has {unds})")
    for col in ("strike", "mark_iv", "underlying_price"):
        c[col] = pd.to_numeric(c[col], errors="coerce")
        bad = c[~(np.isfinite(c[col]) & (c[col] > 0))]
        if len(bad):
            raise SurfaceError(f"option {bad['instrument'].iloc[0]}: {col!r} must be > 0 "
                               f"(got {bad[col].iloc[0]})")
    if float(c["mark_iv"].median()) > 5:
        raise SurfaceError(f"mark_iv must be a decimal (median {c['mark_iv'].median():.1f} "
                           f"looks like percent)")
    c["kind"] = c["kind"].astype(str).str.lower()
    kinds = set(c["kind"])
    if not kinds <= {"call", "put"}:
        raise SurfaceError(f"kind must be 'call' or 'put' (got {sorted(kinds)})")
    c["expiry"] = pd.to_datetime(c["expiry"])
    if as_of is None:
        if "as_of" not in c.columns:
            raise SurfaceError("give as_of, or an 'as_of' column, to measure time to expiry")
        as_of = pd.Timestamp(pd.to_datetime(c["as_of"]).max())
    c["tau"] = (c["expiry"] - as_of) / pd.Timedelta(days=DAYS_PER_YEAR)
    expired = c[c["tau"] <= 0]
    if len(expired):
        raise SurfaceError(f"option {expired['instrument'].iloc[0]} expired "
                           f"{expired['expiry'].iloc[0]} before as_of {as_of}")
    c = c[c["tau"] * DAYS_PER_YEAR >= min_days]
    if c.empty:
        raise SurfaceError(f"no {underlying} expiry at least {min_days} days out")
    for side in ("bid_iv", "ask_iv"):
        c[side] = (pd.to_numeric(c[side], errors="coerce") if side in c.columns
                   else np.nan)
    c["forward"] = c.groupby("expiry")["underlying_price"].transform("median")
    c["k"] = np.log(c["strike"] / c["forward"])
    otm = np.where(c["k"] < 0, c["kind"] == "put", c["kind"] == "call")
    q = c[otm].sort_values(["expiry", "strike"], kind="stable")
    q = q.drop_duplicates(["expiry", "strike"], keep="first")
    q = q.assign(w=q["mark_iv"] ** 2 * q["tau"])
    cols = ["instrument", "underlying", "kind", "expiry", "strike", "tau", "forward", "k",
            "mark_iv", "bid_iv", "ask_iv", "w"]
    return q[cols].reset_index(drop=True)


def _widths(q: pd.DataFrame, weighting: str) -> np.ndarray:
    """Per quote, the vol error its residual is divided by (module docstring)."""
    if weighting == "vega":
        vega = bs_vega(q["forward"].to_numpy(), q["strike"].to_numpy(), q["tau"].to_numpy(),
                       q["mark_iv"].to_numpy())
        vega = np.maximum(vega, 1e-12 * max(float(vega.max()), 1e-300))
        return np.asarray(vega.max() / vega, dtype=float)
    spread = (q["ask_iv"] - q["bid_iv"]).to_numpy(dtype=float)
    ok = np.isfinite(spread) & (spread > 0)
    widest = float(spread[ok].max()) if ok.any() else 0.1
    return np.where(ok, np.maximum(spread, _MIN_SPREAD), 2.0 * widest)


def _starts(k: np.ndarray, v: np.ndarray) -> list[np.ndarray]:
    """Deterministic starting points ``(a', b', ρ, m, s)`` in variance-rate units."""
    vmin = float(v.min())
    out = []
    for rho in (-0.6, -0.2, 0.2):
        for m in (float(k[np.argmin(v)]), 0.0):
            for s in (0.1, 0.4):
                b = max(float(np.ptp(v)) / max(float(np.ptp(k)), 0.05), 0.1)
                out.append(np.array([max(vmin - b * s, 0.0), b, rho, m, s]))
    return out


def _fit_slice(expiry: datetime, q: pd.DataFrame, weighting: str, grid: np.ndarray,
               prev: SVISlice | None) -> SVISlice:
    """SLSQP fit of one expiry (module docstring), in variance-rate units
    ``(a', b') = (a, b)/τ`` so that every expiry's parameters are of order one."""
    tau = float(q["tau"].iloc[0])
    k = q["k"].to_numpy(dtype=float)
    iv = q["mark_iv"].to_numpy(dtype=float)
    w_mkt = iv * iv * tau
    width = 2.0 * iv * tau * _widths(q, weighting)
    label = _label(expiry)
    if len(np.unique(k)) < 5:
        raise SurfaceError(f"expiry {label}: an SVI fit needs at least 5 strikes "
                           f"(got {len(np.unique(k))})")
    w_prev = prev.total_variance(grid) if prev is not None else None

    def unpack(x: np.ndarray) -> tuple[float, float, float, float, float]:
        return x[0] * tau, x[1] * tau, x[2], x[3], x[4]

    def objective(x: np.ndarray) -> float:
        a, b, rho, m, s = unpack(x)
        w, _, _ = svi_derivatives(k, a, b, rho, m, s)
        return float(np.sum(((w - w_mkt) / width) ** 2))

    def constraints(x: np.ndarray) -> np.ndarray:
        a, b, rho, m, s = unpack(x)
        w, w1, w2 = svi_derivatives(grid, a, b, rho, m, s)
        parts = [np.array([2.0 - b * (1.0 + rho), 2.0 - b * (1.0 - rho),
                           (a + b * s * math.sqrt(max(1.0 - rho * rho, 0.0))) / tau]),
                 np.maximum(butterfly_g(grid, w, w1, w2), -1e3)]
        if w_prev is not None:
            parts.append((w - w_prev) / tau)
        return np.concatenate(parts)

    v = w_mkt / tau
    lo_m, hi_m = float(k.min()) - 1.0, float(k.max()) + 1.0
    bounds = [(-10.0 * float(v.max()), 10.0 * float(v.max())), (0.0, 2.0 / tau),
              (-0.999, 0.999), (lo_m, hi_m), (1e-3, 3.0)]
    best: tuple[float, np.ndarray] | None = None
    for x0 in _starts(k, v):
        x0 = np.array([min(max(x, lo), hi) for x, (lo, hi) in zip(x0, bounds, strict=True)])
        res = minimize(objective, x0, method="SLSQP", bounds=bounds,
                       constraints=[{"type": "ineq", "fun": constraints}],
                       options={"maxiter": 500, "ftol": 1e-12})
        if not np.isfinite(res.fun) or constraints(res.x).min() < -1e-7:
            continue
        if best is None or res.fun < best[0]:
            best = (float(res.fun), res.x)
    if best is None:
        raise SurfaceError(f"expiry {label}: no SVI fit meets the no-arbitrage constraints")
    a, b, rho, m, s = unpack(best[1])
    b = min(b, 2.0 / (1.0 + abs(rho)))
    fitted = np.sqrt(np.maximum(svi_derivatives(k, a, b, rho, m, s)[0], 0.0) / tau)
    return SVISlice(expiry=expiry, tau=tau, forward=float(q["forward"].iloc[0]), a=a, b=b,
                    rho=rho, m=m, s=s, quotes=len(q), k_min=float(k.min()),
                    k_max=float(k.max()), rmse=float(np.sqrt(np.mean((fitted - iv) ** 2))))


def _checks(slices: Sequence[SVISlice], k_min: float, k_max: float, points: int
            ) -> SurfaceChecks:
    grid = np.linspace(k_min, k_max, points)
    g_best = (math.inf, "", 0.0)
    parts = [s.derivatives(grid) for s in slices]
    cands = [(s.label, p) for s, p in zip(slices, parts, strict=True)]
    for i in range(len(slices) - 1):  # the midpoint in maturity: linear in total variance
        mid = tuple(0.5 * (x + y) for x, y in zip(parts[i], parts[i + 1], strict=True))
        cands.append((f"between {slices[i].label} and {slices[i + 1].label}", mid))
    for name, (w, w1, w2) in cands:
        g = butterfly_g(grid, w, w1, w2)
        j = int(np.argmin(g))
        if g[j] < g_best[0]:
            g_best = (float(g[j]), name, float(grid[j]))
    c_best = (math.inf, "", 0.0)
    for i in range(len(slices) - 1):
        dw = parts[i + 1][0] - parts[i][0]
        j = int(np.argmin(dw))
        if dw[j] < c_best[0]:
            c_best = (float(dw[j]), f"{slices[i].label} to {slices[i + 1].label}",
                      float(grid[j]))
    return SurfaceChecks(k_min=k_min, k_max=k_max, points=points, butterfly_min_g=g_best[0],
                         butterfly_at=g_best[1], butterfly_k=g_best[2],
                         calendar_min_dw=c_best[0], calendar_at=c_best[1] or "one expiry",
                         calendar_k=c_best[2])


def fit_surface(chain: pd.DataFrame, *, underlying: str | None = None,
                as_of: pd.Timestamp | None = None,
                weighting: Literal["spread", "vega"] = "spread",
                dynamics: SpotVolDynamics | None = None, min_days: float = 0.0,
                spot: float | None = None) -> IVSurface:
    """The SVI surface of one underlying from its whole chain (module docstring).

    ``chain`` as for :func:`surface_quotes`; ``spot`` defaults to the median ``index_price``
    when the chain has one, else the forward of the nearest expiry; ``dynamics`` to
    :class:`SpotVolDynamics` ``()`` (the default response). Raises :class:`SurfaceError` when
    an expiry has fewer than 5 strikes or no fit meets the constraints, or when the fitted
    surface fails its checks.
    """
    if weighting not in ("spread", "vega"):
        raise SurfaceError(f"weighting must be 'spread' or 'vega' (got {weighting!r})")
    q = surface_quotes(chain, underlying=underlying, as_of=as_of, min_days=min_days)
    if weighting == "spread" and not np.isfinite(q["bid_iv"]).any() and not np.isfinite(
            q["ask_iv"]).any():
        raise SurfaceError("spread weighting needs bid_iv / ask_iv columns (use "
                           "weighting='vega')")
    grid = np.linspace(*K_GRID[:2], K_GRID[2])
    slices: list[SVISlice] = []
    for expiry, g in q.groupby("expiry", sort=True):
        slices.append(_fit_slice(pd.Timestamp(str(expiry)).to_pydatetime(), g, weighting, grid,
                                 slices[-1] if slices else None))
    checks = _checks(slices, K_GRID[0], K_GRID[1], 5 * (K_GRID[2] - 1) + 1)
    if not checks.passed:
        raise SurfaceError(f"surface {q['underlying'].iloc[0]} fails its no-arbitrage checks "
                           f"(g {checks.butterfly_min_g:.3g} at {checks.butterfly_at}, "
                           f"calendar {checks.calendar_min_dw:.3g} at {checks.calendar_at})")
    if spot is None:
        idx = chain.get("index_price")
        spot = (float(pd.to_numeric(idx, errors="coerce").median()) if idx is not None
                else slices[0].forward)
    if as_of is None:
        as_of = pd.Timestamp(pd.to_datetime(chain["as_of"]).max())
    return IVSurface(underlying=str(q["underlying"].iloc[0]),
                     as_of=pd.Timestamp(as_of).to_pydatetime(), spot=float(spot),
                     slices=tuple(slices), dynamics=dynamics or SpotVolDynamics(),
                     weighting=weighting, checks=checks)


# --- spot-vol dynamics ------------------------------------------------------------------------


def read_vol_index(path: str | Path) -> pd.Series:
    """Daily closes of a vol index (Deribit's DVOL export: ``date_utc, timestamp_ms,
    dvol_close``, percent) as decimals indexed by the instant of the close: the candle of day
    ``d`` closes at ``d + 1`` 00:00 UTC, the instant a CoinGecko daily price dated ``d + 1``
    was taken, so :func:`fit_spot_vol` pairs each vol move with the return over the same day.
    """
    p = Path(path)
    try:
        df = pd.read_csv(p)
    except OSError as e:
        raise SurfaceError(f"{p}: cannot read ({e.strerror or e})") from None
    need = ("date_utc", "dvol_close")
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise SurfaceError(f"{p}: vol index lacks columns {missing} (expected {list(need)})")
    v = pd.to_numeric(df["dvol_close"], errors="coerce").to_numpy(dtype=float)
    bad = ~(np.isfinite(v) & (v > 0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise SurfaceError(f"{p} column 'dvol_close': must be > 0 (got "
                           f"{df['dvol_close'].astype(str).iloc[i]} on {df['date_utc'].iloc[i]})")
    idx = pd.DatetimeIndex(pd.to_datetime(df["date_utc"])) + pd.Timedelta(days=1)
    return pd.Series(v / 100.0, index=idx, name="vol").sort_index()


def fit_spot_vol(vol_index: pd.Series, closes: pd.Series, *,
                 max_multiplier: float = _IV["max_multiplier"].default,
                 min_observations: int = 30) -> SpotVolDynamics:
    """OLS of the daily change in log ATM vol on the underlying's daily log return split by
    sign, on the days both series have a one-day move (:func:`simulate.prices.log_returns` of
    each, joined on the date)::

        Δ ln vol_t = c + down·max(-r_t, 0) + up·max(r_t, 0) + ε_t

    with classical standard errors ``√(σ̂²·diag((XᵀX)⁻¹))``, ``σ̂² = SSR / (n - 3)``, and
    ``R² = 1 - SSR / SST``. ``vol_index`` and ``closes``: positive daily series indexed by
    the instant observed (:func:`read_vol_index`, :func:`simulate.prices.read_closes`).
    The intercept (vol's drift on a flat day) is recorded but not part of ``M(R)``.
    """
    dv = log_returns(vol_index.astype(float)).rename("dv")
    r = log_returns(closes.astype(float)).rename("r")
    j = pd.concat([dv, r], axis=1, join="inner").dropna()
    n = len(j)
    if n < min_observations:
        raise SurfaceError(f"spot-vol fit needs at least {min_observations} days where both "
                           f"series move one day (got {n})")
    x = j["r"].to_numpy()
    if not ((x < 0).any() and (x > 0).any()):
        raise SurfaceError("spot-vol fit needs both up and down days")
    design = np.column_stack([np.ones(n), np.maximum(-x, 0.0), np.maximum(x, 0.0)])
    y = j["dv"].to_numpy()
    beta, *_ = np.linalg.lstsq(design, y, rcond=None)
    resid = y - design @ beta
    ssr = float(resid @ resid)
    sst = float(((y - y.mean()) ** 2).sum())
    cov = ssr / (n - 3) * np.linalg.inv(design.T @ design)
    se = np.sqrt(np.diag(cov))
    return SpotVolDynamics(down=float(beta[1]), up=float(beta[2]),
                           max_multiplier=max_multiplier, source="fitted",
                           down_se=float(se[1]), up_se=float(se[2]),
                           intercept=float(beta[0]), intercept_se=float(se[0]),
                           r_squared=1.0 - ssr / sst if sst > 0 else 0.0, observations=n,
                           first=pd.Timestamp(j.index[0]).date().isoformat(),
                           last=pd.Timestamp(j.index[-1]).date().isoformat())
