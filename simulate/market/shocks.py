"""Joint return shocks: per-asset volatility filters joined by bootstrap or a t-copula.

A :class:`MarketModel` holds, for each asset, either a fitted volatility model
(:class:`~simulate.market.volatility.FittedVolatility` with the return history it was fitted on)
or a :class:`PegModel` (stablecoins, LSTs, receipt tokens: a peg plus depeg jumps, not GARCH on
noise), an optional :class:`JumpSpec` (compound-Poisson jumps added to the log returns) and a
fitted :class:`TCopula`.

:func:`simulate_returns` produces decimal log returns shaped ``[num_paths, num_steps,
num_assets]`` in three stages, each on its own child of ``numpy.random.SeedSequence(seed)``:

1. **Standardised innovations** ``z`` ``[num_paths, num_steps, num_assets]``
   (:func:`draw_innovations`, or the caller's own draws):

   - ``"fhs"`` (filtered historical simulation; Barone-Adesi et al. 1999): row indices into the
     dates on which every volatility-modelled asset has a standardised residual are drawn
     uniformly with replacement, the same date for every asset, so the cross-sectional
     dependence of the residuals is kept without being modelled.
   - ``"t-copula"``: ``x ~ t_ν(0, R)`` with ``R`` and ``ν`` fitted to the residuals,
     ``u = F_ν(x)`` per margin, ``z = G_a⁻¹(u)`` through each asset's fitted innovation
     distribution (skewed-t by default).

   With ``antithetic=True`` paths ``num_paths/2 ..`` use exactly ``-z`` of paths ``0 ..``.
2. **Volatility filter**: each asset's ``z[:, :, a]`` is passed as the ``rng`` of arch's
   ``forecast(method="simulation")`` from the end of its fit sample, so arch turns the
   innovations into returns ``r_t = μ + σ_t z_t`` with ``σ_t`` following the fitted recursion
   (GJR-GARCH, GARCH or EGARCH).
3. **Jumps and pegs**: compound-Poisson log jumps ``Σ_{k≤N} J_k``, ``N ~ Poisson(λ)`` per step,
   are added to the chosen assets; pegged assets follow ``p_t = peg · (1 - d_t)`` with
   ``1 - d_t = (1 - d_{t-1}(1 - ρ)) · Π_k (1 - D_k)`` (``ρ``: recovery per step, ``D_k``: depeg
   jump sizes in (0, 1)), reported as ``log(p_t / p_{t-1})`` in the same array.

Antithetic pairs negate the innovations only: jumps and depegs are drawn for every path
independently. With skewed innovations the pair ``(z, -z)`` is symmetric by construction, so
antithetic sampling trades the innovation skew for variance reduction; leave it off when the
skew matters more than the noise.

Example:
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> dates = pd.date_range("2020-01-01", periods=400, freq="D")
    >>> prices = pd.DataFrame({"ETH": 1000 * np.exp(np.cumsum(0.03 * rng.standard_t(5, 400))),
    ...                        "USDC": np.ones(400)}, index=dates)
    >>> model = fit_market_model(prices, pegged={"USDC": PegModel(intensity=0.01)})
    >>> simulate_returns(model, num_paths=8, num_steps=5, seed=1).shape
    (8, 5, 2)

References: Barone-Adesi, Giannopoulos & Vosper (1999) filtered historical simulation;
Demarta & McNeil (2005) the t copula; Merton (1976) jump diffusion.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Literal, Self

import numpy as np
import pandas as pd
from arch.univariate import Normal, SkewStudent, StudentsT
from arch.univariate.base import ARCHModelFixedResult
from arch.univariate.distribution import Distribution
from pydantic import BaseModel, ConfigDict, PrivateAttr, field_validator, model_validator
from scipy import special, stats

from graph.errors import ContagionError
from simulate.market.volatility import (
    SCALE,
    FittedVolatility,
    VolSpec,
    fit_volatility,
    persistence_bound,
)
from simulate.prices import Frequency, log_returns, periods_per_day

__all__ = [
    "JumpSpec",
    "MarketModel",
    "MarketModelError",
    "PegModel",
    "ShockMethod",
    "TCopula",
    "draw_innovations",
    "fit_market_model",
    "fit_t_copula",
    "simulate_returns",
]

ShockMethod = Literal["fhs", "t-copula"]

#: degrees of freedom tried by the t-copula profile likelihood
DOF_GRID: tuple[float, ...] = (2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 15.0, 20.0, 30.0, 50.0, 100.0)


_DISTRIBUTIONS: dict[str, type[Distribution]] = {
    "skewt": SkewStudent, "t": StudentsT, "normal": Normal}


class MarketModelError(ContagionError, ValueError):
    """A market model, its inputs or a simulation request that cannot be used."""


def _finite(name: str, v: float) -> float:
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite (got {v})")
    return v


class JumpSpec(BaseModel):
    """Compound-Poisson jumps in log price: per step ``N ~ Poisson(intensity)`` jumps, each of
    log size ``J ~ Normal(mean, std)``, so the step adds ``N·mean + sqrt(N)·std·ε``.

    ``assets``: which assets jump (``None``: every asset not pegged). ``common``: one jump count
    per path and step shared by all those assets (a market-wide shock), sizes still drawn per
    asset; otherwise counts are independent across assets.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    intensity: float  # expected jumps per step
    mean: float = -0.05
    std: float = 0.05
    common: bool = True
    assets: tuple[str, ...] | None = None

    @field_validator("intensity")
    @classmethod
    def _intensity(cls, v: float) -> float:
        if not (math.isfinite(v) and v >= 0):
            raise ValueError(f"jump intensity must be a finite rate >= 0 per step (got {v})")
        return v

    @field_validator("mean")
    @classmethod
    def _mean(cls, v: float) -> float:
        return _finite("jump mean log size", v)

    @field_validator("std")
    @classmethod
    def _std(cls, v: float) -> float:
        if not (math.isfinite(v) and v >= 0):
            raise ValueError(f"jump std of log size must be >= 0 (got {v})")
        return v


class PegModel(BaseModel):
    """A pegged asset: ``price = peg · (1 - depeg)``, the depeg driven by jumps.

    Per step, ``N ~ Poisson(intensity)`` depeg events each take a fraction ``D`` off the price
    (``size_dist="beta"``: ``D ~ Beta(a, b)`` with ``size_params = (a, b)``;
    ``"lognormal"``: ``D = min(exp(Normal(μ, σ)), max_depeg)`` with ``size_params = (μ, σ)``),
    and between events the depeg recovers a fraction ``recovery`` of itself per step. The price
    never exceeds the peg. The starting depeg is the last observed discount (``MarketModel
    .last_prices``), or 0.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    peg: float = 1.0
    intensity: float = 0.002  # expected depeg events per step
    size_dist: Literal["beta", "lognormal"] = "beta"
    size_params: tuple[float, float] = (1.0, 30.0)
    recovery: float = 0.2
    max_depeg: float = 0.99

    @field_validator("peg")
    @classmethod
    def _peg(cls, v: float) -> float:
        if not (math.isfinite(v) and v > 0):
            raise ValueError(f"peg must be a positive price (got {v})")
        return v

    @field_validator("intensity")
    @classmethod
    def _intensity(cls, v: float) -> float:
        if not (math.isfinite(v) and v >= 0):
            raise ValueError(f"depeg intensity must be a finite rate >= 0 per step (got {v})")
        return v

    @field_validator("recovery")
    @classmethod
    def _recovery(cls, v: float) -> float:
        if not (0.0 <= v <= 1.0):
            raise ValueError(f"depeg recovery per step must be in [0, 1] (got {v})")
        return v

    @field_validator("max_depeg")
    @classmethod
    def _max_depeg(cls, v: float) -> float:
        if not (0.0 < v < 1.0):
            raise ValueError(f"max_depeg must be in (0, 1) (got {v})")
        return v

    @model_validator(mode="after")
    def _sizes(self) -> Self:
        p, q = self.size_params
        if self.size_dist == "beta" and not (p > 0 and q > 0 and math.isfinite(p + q)):
            raise ValueError(f"beta depeg sizes need a > 0 and b > 0 (got a={p}, b={q})")
        if self.size_dist == "lognormal" and not (math.isfinite(p) and q > 0
                                                  and math.isfinite(q)):
            raise ValueError(f"lognormal depeg sizes need finite mu and sigma > 0 "
                             f"(got mu={p}, sigma={q})")
        return self


class TCopula(BaseModel):
    """A t copula over the volatility-modelled assets: correlation ``R`` (``[n, n]``, unit
    diagonal, positive semi-definite) and degrees of freedom ``ν > 2``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    assets: tuple[str, ...]
    correlation: list[list[float]]
    dof: float

    @model_validator(mode="after")
    def _check(self) -> Self:
        n = len(self.assets)
        r = np.asarray(self.correlation, dtype=float)
        if r.shape != (n, n):
            raise ValueError(f"copula correlation must be [{n}, {n}] for {n} assets "
                             f"(got {list(r.shape)})")
        if not np.all(np.isfinite(r)) or not np.allclose(r, r.T, atol=1e-10):
            raise ValueError("copula correlation must be finite and symmetric")
        if not np.allclose(np.diag(r), 1.0, atol=1e-10):
            raise ValueError("copula correlation must have a unit diagonal")
        if n and np.linalg.eigvalsh(r).min() < -1e-8:
            raise ValueError("copula correlation must be positive semi-definite "
                             f"(smallest eigenvalue {np.linalg.eigvalsh(r).min():.3g})")
        if not (math.isfinite(self.dof) and self.dof > 2):
            raise ValueError(f"copula degrees of freedom must be > 2 (got {self.dof})")
        return self

    def matrix(self) -> np.ndarray:
        """``R`` as an array ``[n, n]``."""
        return np.asarray(self.correlation, dtype=float)


class MarketModel(BaseModel):
    """The fitted market model of ``assets`` (the column order of every simulated array).

    - ``volatility[a]``: fitted volatility of each asset that is not pegged;
    - ``returns[a]``: the decimal log returns it was fitted on (arch filters from their end);
    - ``pegged[a]``: peg model of each pegged asset;
    - ``jumps``: optional compound-Poisson jumps; ``copula``: t copula of the residuals;
    - ``last_prices[a]``: last observed USD price (pegged assets start at its discount).

    Serialisable with ``model_dump_json`` / ``model_validate_json``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    assets: tuple[str, ...]
    volatility: dict[str, FittedVolatility] = {}
    returns: dict[str, list[float]] = {}
    pegged: dict[str, PegModel] = {}
    jumps: JumpSpec | None = None
    copula: TCopula | None = None
    last_prices: dict[str, float] = {}

    # caches, each remembering the fitted volatility objects it was built from
    _fixed: dict[str, tuple[FittedVolatility, ARCHModelFixedResult]] = PrivateAttr(
        default_factory=dict)
    _joint: tuple[tuple[FittedVolatility, ...], np.ndarray, np.ndarray] | None = PrivateAttr(
        default=None)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MarketModel):
            return NotImplemented
        return self.__dict__ == other.__dict__  # fields only: caches do not count

    __hash__ = None  # type: ignore[assignment]

    @model_validator(mode="after")
    def _check(self) -> Self:
        if not self.assets:
            raise ValueError("a market model needs at least one asset")
        if len(set(self.assets)) != len(self.assets):
            dup = sorted({a for a in self.assets if self.assets.count(a) > 1})
            raise ValueError(f"assets must be unique (repeated: {dup})")
        both = sorted(set(self.volatility) & set(self.pegged))
        if both:
            raise ValueError(f"assets {both} are both volatility-modelled and pegged")
        for a in self.assets:
            if a not in self.volatility and a not in self.pegged:
                raise ValueError(f"asset {a!r} has neither a fitted volatility nor a peg model")
        extra = sorted((set(self.volatility) | set(self.pegged)) - set(self.assets))
        if extra:
            raise ValueError(f"models given for assets not in the market: {extra}")
        for a, v in self.volatility.items():
            r = self.returns.get(a)
            if r is None:
                raise ValueError(f"asset {a!r} needs the returns its volatility was fitted on")
            if len(r) != v.nobs or len(v.std_resid) != v.nobs or len(v.dates) != v.nobs:
                raise ValueError(f"volatility of {a!r} was fitted on {v.nobs} returns "
                                 f"(got {len(r)} returns, {len(v.std_resid)} residuals, "
                                 f"{len(v.dates)} dates)")
        if self.jumps is not None and self.jumps.assets is not None:
            bad = sorted(set(self.jumps.assets) - set(self.volatility))
            if bad:
                raise ValueError(f"jump assets must be volatility-modelled assets of the "
                                 f"market (got {bad})")
        if self.copula is not None and set(self.copula.assets) != set(self.vol_assets):
            raise ValueError(f"copula assets {sorted(self.copula.assets)} differ from the "
                             f"volatility-modelled assets {sorted(self.vol_assets)}")
        for a, p in self.last_prices.items():
            if not (math.isfinite(p) and p > 0):
                raise ValueError(f"last price of {a!r} must be positive (got {p})")
        if self.vol_assets and len(self.joint_dates) == 0:
            raise ValueError("the volatility-modelled assets share no date with a residual; "
                             "filtered historical simulation needs overlapping histories")
        return self

    @property
    def num_assets(self) -> int:
        return len(self.assets)

    @property
    def vol_assets(self) -> tuple[str, ...]:
        """Volatility-modelled assets, in ``assets`` order."""
        return tuple(a for a in self.assets if a in self.volatility)

    @property
    def joint_dates(self) -> list[str]:
        """Dates on which every volatility-modelled asset has a standardised residual."""
        return list(self._joint_residuals()[0]) if self.vol_assets else []

    def joint_residuals(self) -> np.ndarray:
        """Standardised residuals on :attr:`joint_dates`, ``[num_dates, num_vol_assets]``."""
        return self._joint_residuals()[1]

    def _joint_residuals(self) -> tuple[np.ndarray, np.ndarray]:
        key = tuple(self.volatility[a] for a in self.vol_assets)
        if self._joint is None or len(key) != len(self._joint[0]) or any(
                x is not y for x, y in zip(key, self._joint[0], strict=True)):
            frames = {a: pd.Series(self.volatility[a].std_resid, index=self.volatility[a].dates)
                      for a in self.vol_assets}
            joined = pd.DataFrame(frames).dropna()
            self._joint = (key, joined.index.to_numpy(dtype=str),
                           np.ascontiguousarray(joined.to_numpy(dtype=float)))
        return self._joint[1], self._joint[2]

    def fixed_result(self, asset: str) -> ARCHModelFixedResult:
        """arch's result for ``asset`` with its fitted parameters fixed, on its history."""
        vol = self.volatility[asset]
        cached = self._fixed.get(asset)
        if cached is None or cached[0] is not vol:
            r = pd.Series(self.returns[asset], index=pd.Index(vol.dates))
            cached = self._fixed[asset] = (vol, vol.result(r))
        return cached[1]


# --- fitting ------------------------------------------------------------------------------------


def _nearest_correlation(r: np.ndarray) -> np.ndarray:
    """Clip negative eigenvalues and restore the unit diagonal (a PSD correlation)."""
    w, v = np.linalg.eigh((r + r.T) / 2)
    fixed = (v * np.clip(w, 1e-8, None)) @ v.T
    d = np.sqrt(np.diag(fixed))
    out = fixed / np.outer(d, d)
    np.fill_diagonal(out, 1.0)
    return out


def fit_t_copula(residuals: np.ndarray, assets: tuple[str, ...] | list[str],
                 dof_grid: tuple[float, ...] = DOF_GRID) -> TCopula:
    """Fit a t copula to standardised residuals ``[num_dates, num_assets]``.

    ``R_ij = sin(π τ_ij / 2)`` from Kendall's τ (made positive semi-definite), then ``ν`` maximises
    the copula log-likelihood of the pseudo-observations ``u = rank / (n + 1)`` over ``dof_grid``.
    """
    x = np.asarray(residuals, dtype=float)
    n_obs, n = x.shape if x.ndim == 2 else (0, 0)
    if n != len(assets):
        raise MarketModelError(f"residuals must be [num_dates, {len(assets)}] "
                               f"(got {list(x.shape)})")
    if n_obs < 30:
        raise MarketModelError(f"a t-copula fit needs at least 30 joint dates (got {n_obs})")
    r = np.eye(n)
    for i in range(n):
        for j in range(i + 1, n):
            tau = stats.kendalltau(x[:, i], x[:, j]).statistic
            r[i, j] = r[j, i] = math.sin(math.pi * float(tau) / 2)
    r = _nearest_correlation(r)
    u = (stats.rankdata(x, axis=0) / (n_obs + 1)).clip(1e-10, 1 - 1e-10)
    best, best_ll = dof_grid[0], -math.inf
    for nu in dof_grid:
        q = stats.t.ppf(u, nu)
        ll = float(stats.multivariate_t.logpdf(q, shape=r, df=nu).sum()
                   - stats.t.logpdf(q, nu).sum())
        if ll > best_ll:
            best, best_ll = nu, ll
    return TCopula(assets=tuple(assets), correlation=r.tolist(), dof=best)


def fit_market_model(prices: pd.DataFrame, spec: VolSpec | None = None,
                     pegged: Mapping[str, PegModel] | None = None, *,
                     jumps: JumpSpec | None = None, frequency: Frequency = "daily"
                     ) -> MarketModel:
    """Fit the market model of every column of ``prices`` (periods × assets, USD).

    Columns named in ``pegged`` get that peg model; every other column gets ``spec``'s
    volatility fitted (guarded: :func:`~simulate.market.volatility.fit_volatility`) on its
    one-period log returns at ``frequency`` (:func:`simulate.prices.log_returns`: NaNs dropped
    per asset, no return across a missing period, at least 100 returns). The t copula is
    fitted on the standardised residuals of the periods all those assets share.
    """
    if not isinstance(prices, pd.DataFrame) or prices.shape[1] == 0:
        raise MarketModelError("prices must be a DataFrame with one column per asset")
    pegged = dict(pegged or {})
    assets = tuple(str(c) for c in prices.columns)
    missing = sorted(set(pegged) - set(assets))
    if missing:
        raise MarketModelError(f"pegged assets {missing} have no price column")
    vols: dict[str, FittedVolatility] = {}
    rets: dict[str, list[float]] = {}
    last: dict[str, float] = {}
    for a in assets:
        p = pd.Series(prices[a], dtype=float).dropna()
        if len(p) == 0:
            raise MarketModelError(f"asset {a!r} has no prices")
        if (p <= 0).any() or not np.isfinite(p.to_numpy()).all():
            raise MarketModelError(f"prices of {a!r} must be positive and finite")
        last[a] = float(p.iloc[-1])
        if a in pegged:
            continue
        r = log_returns(p, frequency)
        vols[a] = fit_volatility(r, spec, asset=a,
                                 max_persistence=persistence_bound(periods_per_day(frequency)))
        rets[a] = [float(v) for v in r.to_numpy()]
    try:
        model = MarketModel(assets=assets, volatility=vols, returns=rets, pegged=pegged,
                            jumps=jumps, last_prices=last)
        if not model.vol_assets:
            return model
        copula = fit_t_copula(model.joint_residuals(), model.vol_assets)
        return MarketModel(assets=assets, volatility=vols, returns=rets, pegged=pegged,
                           jumps=jumps, last_prices=last, copula=copula)
    except ValueError as e:
        if isinstance(e, MarketModelError):
            raise
        raise MarketModelError(str(e)) from None


# --- simulation ---------------------------------------------------------------------------------


def _streams(seed: int | np.random.SeedSequence) -> list[np.random.Generator]:
    """Generators for innovations, jumps and pegs, independent of each other."""
    ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    # the children ss.spawn(3) would give a fresh ss, without advancing the caller's ss
    return [np.random.default_rng(np.random.SeedSequence(ss.entropy, pool_size=ss.pool_size,
                                                         spawn_key=(*ss.spawn_key, i)))
            for i in range(3)]


def _check_request(model: MarketModel, num_paths: int, num_steps: int, method: str,
                   antithetic: bool) -> None:
    if not isinstance(model, MarketModel):
        raise MarketModelError(f"model must be a MarketModel (got {type(model).__name__})")
    if num_paths < 1 or num_steps < 1:
        raise MarketModelError(f"num_paths and num_steps must be >= 1 "
                               f"(got {num_paths}, {num_steps})")
    if method not in ("fhs", "t-copula"):
        raise MarketModelError(f"method must be 'fhs' or 't-copula' (got {method!r})")
    if antithetic and num_paths % 2:
        raise MarketModelError(f"antithetic sampling needs an even num_paths (got {num_paths})")
    if method == "t-copula" and model.vol_assets and model.copula is None:
        raise MarketModelError("method 't-copula' needs a fitted copula (fit_market_model "
                               "fits one)")


def _innovation_dist(vol: FittedVolatility) -> tuple[Distribution, np.ndarray | None]:
    """arch's distribution object of ``vol`` and its parameters (None for the normal)."""
    dist = _DISTRIBUTIONS[vol.spec.dist]()
    names = dist.parameter_names()
    return dist, (np.array([vol.params[n] for n in names]) if names else None)


def _draw(model: MarketModel, num_paths: int, num_steps: int, rng: np.random.Generator,
          method: ShockMethod) -> np.ndarray:
    """Kernel: innovations ``[num_paths, num_steps, num_vol_assets]``."""
    k = len(model.vol_assets)
    if k == 0:
        return np.zeros((num_paths, num_steps, 0))
    if method == "fhs":
        resid = model.joint_residuals()
        rows = rng.integers(0, resid.shape[0], size=(num_paths, num_steps))
        return resid[rows]
    assert model.copula is not None
    cop = model.copula
    order = [cop.assets.index(a) for a in model.vol_assets]
    corr = cop.matrix()[np.ix_(order, order)]
    chol = np.linalg.cholesky(corr + 1e-12 * np.eye(k))
    g = rng.standard_normal((num_paths, num_steps, k)) @ chol.T
    w = rng.chisquare(cop.dof, size=(num_paths, num_steps, 1)) / cop.dof
    u = special.stdtr(cop.dof, g / np.sqrt(w)).clip(1e-12, 1 - 1e-12)  # t_ν cdf
    z = np.empty_like(u)
    for j, a in enumerate(model.vol_assets):
        dist, params = _innovation_dist(model.volatility[a])
        z[:, :, j] = np.asarray(dist.ppf(u[:, :, j], params), dtype=float)
    return z


def draw_innovations(model: MarketModel, num_paths: int, num_steps: int,
                     seed: int | np.random.SeedSequence, *, method: ShockMethod = "fhs",
                     antithetic: bool = False) -> np.ndarray:
    """The standardised innovations :func:`simulate_returns` filters, before any volatility.

    Returns ``[num_paths, num_steps, num_assets]`` (columns of pegged assets are 0: they are
    driven by depeg jumps). With ``antithetic`` the second half of the paths is exactly the
    negative of the first half. Drawn from the first child of ``SeedSequence(seed)``.
    """
    _check_request(model, num_paths, num_steps, method, antithetic)
    rng = _streams(seed)[0]
    half = num_paths // 2 if antithetic else num_paths
    z = _draw(model, half, num_steps, rng, method)
    if antithetic:
        z = np.concatenate([z, -z], axis=0)
    out = np.zeros((num_paths, num_steps, model.num_assets))
    cols = [model.assets.index(a) for a in model.vol_assets]
    out[:, :, cols] = z
    return out


def _filter(model: MarketModel, asset: str, z: np.ndarray) -> np.ndarray:
    """arch's simulation forecast driven by ``z`` ``[num_paths, num_steps]``: decimal returns."""
    num_paths, num_steps = z.shape

    def rng(size: int | tuple[int, ...]) -> np.ndarray:
        if tuple(np.atleast_1d(size)) != (num_paths, num_steps):
            raise MarketModelError(f"arch asked for innovations of shape {size} "
                                   f"(have {list(z.shape)})")
        return z

    fc = model.fixed_result(asset).forecast(horizon=num_steps, method="simulation",
                                            simulations=num_paths, rng=rng, reindex=False)
    values = fc.simulations.values
    assert values is not None
    return np.asarray(values[-1], dtype=np.float64) / SCALE


def _jumps(spec: JumpSpec, assets: tuple[str, ...], num_paths: int, num_steps: int,
           rng: np.random.Generator) -> np.ndarray:
    """Compound-Poisson log jumps ``[num_paths, num_steps, len(assets)]``."""
    k = len(assets)
    shape = (num_paths, num_steps, 1 if spec.common else k)
    n = rng.poisson(spec.intensity, size=shape).astype(float)
    n = np.broadcast_to(n, (num_paths, num_steps, k))
    eps = rng.standard_normal((num_paths, num_steps, k))
    return n * spec.mean + np.sqrt(n) * spec.std * eps


def _depeg_sizes(peg: PegModel, count: int, rng: np.random.Generator) -> np.ndarray:
    p, q = peg.size_params
    d = rng.beta(p, q, size=count) if peg.size_dist == "beta" else np.exp(rng.normal(p, q, count))
    return np.clip(d, 0.0, peg.max_depeg)


def _peg_returns(peg: PegModel, depeg0: float, num_paths: int, num_steps: int,
                 rng: np.random.Generator) -> np.ndarray:
    """Log returns ``[num_paths, num_steps]`` of ``peg · (1 - d_t)``, starting at ``depeg0``."""
    n = rng.poisson(peg.intensity, size=(num_paths, num_steps))
    # multiplicative survival of all events in a step: Π (1 - D_k)
    keep = np.ones((num_paths, num_steps))
    hit = np.flatnonzero(n)
    if hit.size:
        counts = n.ravel()[hit]
        sizes = _depeg_sizes(peg, int(counts.sum()), rng)
        owner = np.repeat(np.arange(hit.size), counts)
        log_keep = np.zeros(hit.size)
        np.add.at(log_keep, owner, np.log1p(-sizes))
        keep.ravel()[hit] = np.exp(log_keep)
    level = np.empty((num_paths, num_steps + 1))  # 1 - d_t
    level[:, 0] = 1.0 - depeg0
    floor = 1.0 - peg.max_depeg
    for t in range(num_steps):
        d_prev = 1.0 - level[:, t]
        level[:, t + 1] = np.maximum((1.0 - d_prev * (1.0 - peg.recovery)) * keep[:, t], floor)
    level = np.minimum(level, 1.0)
    return np.diff(np.log(level), axis=1)


def simulate_returns(model: MarketModel, num_paths: int, num_steps: int,
                     seed: int | np.random.SeedSequence, *, method: ShockMethod = "fhs",
                     antithetic: bool = False, innovations: np.ndarray | None = None
                     ) -> np.ndarray:
    """Joint decimal log returns ``[num_paths, num_steps, num_assets]`` (columns in
    ``model.assets`` order), step ``t`` being the return over step ``t`` from the end of the
    fit sample.

    ``innovations`` ``[num_paths, num_steps, num_assets]``: the caller's standardised draws
    (common random numbers, replays), used instead of :func:`draw_innovations`; its pegged
    columns are ignored. ``seed`` still drives jumps and depegs, so
    ``simulate_returns(m, P, S, s, innovations=draw_innovations(m, P, S, s))`` equals
    ``simulate_returns(m, P, S, s)`` exactly.
    """
    _check_request(model, num_paths, num_steps, method, antithetic)
    _, jump_rng, peg_rng = _streams(seed)
    if innovations is None:
        z = draw_innovations(model, num_paths, num_steps, seed, method=method,
                             antithetic=antithetic)
    else:
        z = np.asarray(innovations, dtype=float)
        want = (num_paths, num_steps, model.num_assets)
        if z.shape != want:
            raise MarketModelError(f"innovations must be [num_paths, num_steps, num_assets] = "
                                   f"{list(want)} (got {list(z.shape)})")
        cols = [model.assets.index(a) for a in model.vol_assets]
        if not np.isfinite(z[:, :, cols]).all():
            raise MarketModelError("innovations must be finite")
    out = np.empty((num_paths, num_steps, model.num_assets))
    for a in model.vol_assets:
        j = model.assets.index(a)
        out[:, :, j] = _filter(model, a, np.ascontiguousarray(z[:, :, j]))
    if model.jumps is not None and model.jumps.intensity > 0 and model.vol_assets:
        jump_assets = model.jumps.assets or model.vol_assets
        cols = [model.assets.index(a) for a in jump_assets]
        out[:, :, cols] += _jumps(model.jumps, tuple(jump_assets), num_paths, num_steps,
                                  jump_rng)
    for a in model.assets:
        peg = model.pegged.get(a)
        if peg is None:
            continue
        last = model.last_prices.get(a, peg.peg)
        depeg0 = min(max(1.0 - last / peg.peg, 0.0), peg.max_depeg)
        out[:, :, model.assets.index(a)] = _peg_returns(peg, depeg0, num_paths, num_steps,
                                                        peg_rng)
    return out

