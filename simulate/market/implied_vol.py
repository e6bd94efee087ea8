"""Implied volatility under a shock: an ATM level per underlying that rises in both tails,
and a quadratic smile in log-moneyness.

The ATM level and smile of each underlying come from an options chain when one is ingested
(:func:`iv_model_from_chain`), else from the GARCH forecast (:func:`iv_model_from_market`,
:func:`atm_from_volatility`), annualised with 365 days (crypto trades every day).

Under a shock the ATM level moves with the cumulative log return ``R`` of the underlying::

    iv(R) = atm · min(exp(down · max(-R, 0) + up · max(R, 0)), max_multiplier)

with ``down > 0`` and ``up > 0``: crypto implied vol rises on large moves in **either**
direction (rallies too), more on the way down (``down > up`` by default). The defaults are
round numbers read off history: in March 2020 BTC fell about 40% (``R ≈ -0.5``) in two days
while its 30-day implied vol roughly doubled (``down ≈ ln 2 / 0.5 ≈ 1.4``); sharp rallies lift
implied vol by about half as much per unit of return (``up = 0.7``). The smile around the
shocked ATM level is ``iv(k) = atm + skew·k + curvature·k²`` in ``k = ln(K / F)``.

Example:
    >>> model = IVModel(smiles={"BTC": IVSmile(underlying="BTC", atm=0.8, skew=-0.1,
    ...                                        curvature=0.5, tenor_days=30)})
    >>> float(shocked_iv(model, np.array([[-0.5]]))[0, 0]) > 0.8
    True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal, Self

import numpy as np
import pandas as pd
from arch.univariate.distribution import Distribution
from numpy.typing import ArrayLike
from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from graph.errors import ContagionError
from simulate.market.shocks import MarketModel
from simulate.market.volatility import SCALE, FittedVolatility

__all__ = [
    "CHAIN_COLUMNS",
    "IVModel",
    "IVModelError",
    "IVSmile",
    "atm_from_volatility",
    "deribit_chain",
    "fit_smile",
    "iv_model_from_chain",
    "iv_model_from_market",
    "iv_response",
    "shocked_iv",
    "smile",
]

#: columns of an options chain (``mark_iv`` decimal, ``expiry`` and ``as_of`` UTC timestamps,
#: ``underlying_price`` the forward of that expiry, ``kind`` "call" or "put")
CHAIN_COLUMNS = ("instrument", "underlying", "kind", "strike", "expiry", "mark_iv",
                 "open_interest", "underlying_price")

DAYS_PER_YEAR = 365.0
#: no smile goes below this implied vol (a quadratic can cross zero far in the wings)
IV_FLOOR = 0.01


class IVModelError(ContagionError, ValueError):
    """An options chain or IV model that cannot be used."""


class IVSmile(BaseModel):
    """The smile of one underlying at one tenor: ``iv(k) = atm + skew·k + curvature·k²``,
    ``k = ln(K / F)``, implied vols annualised decimals."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    underlying: str
    atm: float
    skew: float = 0.0
    curvature: float = 0.0
    tenor_days: float = 30.0
    source: Literal["chain", "garch"] = "chain"

    @field_validator("atm")
    @classmethod
    def _atm(cls, v: float) -> float:
        if not (math.isfinite(v) and 0 < v < 10):
            raise ValueError(f"ATM implied vol must be an annualised decimal in (0, 10) "
                             f"(got {v})")
        return v

    @field_validator("tenor_days")
    @classmethod
    def _tenor(cls, v: float) -> float:
        if not (math.isfinite(v) and v > 0):
            raise ValueError(f"tenor_days must be > 0 (got {v})")
        return v

    @field_validator("skew", "curvature")
    @classmethod
    def _finite(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError(f"smile coefficients must be finite (got {v})")
        return v


class IVModel(BaseModel):
    """ATM implied vol and smile per underlying, and how ATM vol responds to returns.

    ``down`` / ``up``: log-IV change per unit of negative / positive log return (both > 0);
    ``max_multiplier``: cap on ``iv / atm`` (> 1).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    smiles: dict[str, IVSmile]
    down: float = 1.4
    up: float = 0.7
    max_multiplier: float = 4.0

    @model_validator(mode="after")
    def _check(self) -> Self:
        if not self.smiles:
            raise ValueError("an IV model needs at least one underlying")
        for k, s in self.smiles.items():
            if s.underlying != k:
                raise ValueError(f"smile keyed {k!r} is for underlying {s.underlying!r}")
        for name in ("down", "up"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"{name!r} IV response must be > 0 so implied vol rises in "
                                 f"both tails (got {v})")
        if not (math.isfinite(self.max_multiplier) and self.max_multiplier > 1):
            raise ValueError(f"max_multiplier must be > 1 (got {self.max_multiplier})")
        return self

    @property
    def underlyings(self) -> tuple[str, ...]:
        return tuple(self.smiles)

    def atm(self) -> np.ndarray:
        """Unshocked ATM vols ``[num_underlyings]`` in :attr:`underlyings` order."""
        return np.array([s.atm for s in self.smiles.values()])


def smile(atm: ArrayLike, log_moneyness: ArrayLike, *, skew: ArrayLike = 0.0,
          curvature: ArrayLike = 0.0) -> np.ndarray:
    """``max(atm + skew·k + curvature·k², IV_FLOOR)`` with NumPy broadcasting.

    ``atm`` e.g. ``[num_paths, num_steps, num_assets, 1]`` (from :func:`shocked_iv`) against
    ``log_moneyness`` ``[num_strikes]`` gives ``[num_paths, num_steps, num_assets, num_strikes]``.
    """
    k = np.asarray(log_moneyness, dtype=float)
    iv = (np.asarray(atm, dtype=float) + np.asarray(skew, dtype=float) * k
          + np.asarray(curvature, dtype=float) * k * k)
    return np.maximum(iv, IV_FLOOR)


def shocked_iv(model: IVModel, returns: ArrayLike, *, assets: Sequence[str] | None = None,
               cumulative: bool = True) -> np.ndarray:
    """Shocked ATM implied vol, the shape of ``returns``.

    ``returns``: decimal log returns ``[num_paths, num_steps, num_assets]`` or
    ``[num_paths, num_assets]``; ``assets`` names the last axis (default: ``model
    .underlyings``). With ``cumulative`` and a step axis, step ``t`` uses the return since the
    start, ``R_t = Σ_{s≤t} r_s``; otherwise each return as given. Every asset must have a smile.
    """
    r = np.asarray(returns, dtype=float)
    if r.ndim not in (2, 3):
        raise IVModelError(f"returns must be [num_paths, num_steps, num_assets] or "
                           f"[num_paths, num_assets] (got {list(r.shape)})")
    names = tuple(assets) if assets is not None else model.underlyings
    if r.shape[-1] != len(names):
        raise IVModelError(f"returns have {r.shape[-1]} assets on the last axis, "
                           f"names given for {len(names)}")
    missing = [a for a in names if a not in model.smiles]
    if missing:
        raise IVModelError(f"no implied vol for {missing} (have {list(model.underlyings)})")
    if not np.isfinite(r).all():
        raise IVModelError("returns must be finite")
    if cumulative and r.ndim == 3:
        r = np.cumsum(r, axis=1)
    atm = np.array([model.smiles[a].atm for a in names])
    return atm * iv_response(r, down=model.down, up=model.up,
                             max_multiplier=model.max_multiplier)


def iv_response(returns: ArrayLike, *, down: float, up: float, max_multiplier: float
                ) -> np.ndarray:
    """The ATM implied-vol multiplier after a cumulative log return ``R`` (any shape):
    ``min(exp(down·max(-R, 0) + up·max(R, 0)), max_multiplier)``.

    >>> round(float(iv_response(-0.5, down=1.4, up=0.7, max_multiplier=4.0)), 6)  # e^0.7
    2.013753
    """
    r = np.asarray(returns, dtype=float)
    return np.minimum(np.exp(down * np.maximum(-r, 0.0) + up * np.maximum(r, 0.0)),
                      max_multiplier)


# --- from an options chain ----------------------------------------------------------------------


def deribit_chain(raw: pd.DataFrame) -> pd.DataFrame:
    """A Deribit ``get_book_summary`` / instrument dump as a chain with :data:`CHAIN_COLUMNS`
    plus ``as_of``: ``instrument_name`` → instrument (underlying = its first dash field),
    ``option_type`` → kind, ``expiration_timestamp`` / ``timestamp`` (ms) → expiry / as_of,
    ``mark_iv`` percent → decimal; ``bid_iv`` / ``ask_iv`` (percent, 0 = no quote) become
    decimals with NaN for no quote, and ``index_price`` is kept, when the dump has them."""
    need = ("instrument_name", "option_type", "strike", "expiration_timestamp", "mark_iv",
            "open_interest", "underlying_price", "timestamp")
    missing = [c for c in need if c not in raw.columns]
    if missing:
        raise IVModelError(f"Deribit chain lacks columns {missing}")
    inst = raw["instrument_name"].astype(str)
    quotes = {side: (pd.to_numeric(raw[side], errors="coerce") / 100.0).where(
        lambda q: q > 0) for side in ("bid_iv", "ask_iv") if side in raw.columns}
    return pd.DataFrame({
        "instrument": inst,
        "underlying": inst.str.split("-").str[0],
        "kind": raw["option_type"].astype(str).str.lower(),
        "strike": raw["strike"].astype(float),
        "expiry": pd.to_datetime(raw["expiration_timestamp"], unit="ms"),
        "mark_iv": raw["mark_iv"].astype(float) / 100.0,
        "open_interest": raw["open_interest"].astype(float),
        "underlying_price": raw["underlying_price"].astype(float),
        "as_of": pd.to_datetime(raw["timestamp"], unit="ms"),
        **quotes,
        **({"index_price": raw["index_price"].astype(float)} if "index_price" in raw.columns
           else {}),
    })


def fit_smile(log_moneyness: ArrayLike, iv: ArrayLike, weights: ArrayLike
              ) -> tuple[float, float, float]:
    """Weighted least squares ``iv ≈ atm + skew·k + curvature·k²``: ``(atm, skew,
    curvature)``. ``weights`` multiply squared residuals (e.g. open interest + 1)."""
    k = np.asarray(log_moneyness, dtype=float)
    y = np.asarray(iv, dtype=float)
    w = np.asarray(weights, dtype=float)
    if not (k.shape == y.shape == w.shape and k.ndim == 1):
        raise IVModelError(f"log_moneyness, iv and weights must be 1-D of one length "
                           f"(got {k.shape}, {y.shape}, {w.shape})")
    if len(np.unique(k)) < 3:
        raise IVModelError(f"a smile fit needs at least 3 distinct strikes (got "
                           f"{len(np.unique(k))})")
    curvature, skew, atm = np.polyfit(k, y, 2, w=np.sqrt(np.maximum(w, 0.0)))
    return float(atm), float(skew), float(curvature)


def _check_chain(chain: pd.DataFrame, as_of: pd.Timestamp | None) -> pd.DataFrame:
    missing = [c for c in CHAIN_COLUMNS if c not in chain.columns]
    if missing:
        raise IVModelError(f"options chain lacks columns {missing} (expected "
                           f"{list(CHAIN_COLUMNS)}; deribit_chain converts Deribit's layout)")
    c = chain.copy()
    for col in ("strike", "mark_iv", "open_interest", "underlying_price"):
        c[col] = pd.to_numeric(c[col], errors="coerce")
    bad = c[~((c["strike"] > 0) & (c["underlying_price"] > 0) & (c["mark_iv"] > 0)
              & (c["open_interest"] >= 0))]
    if len(bad):
        row = bad.iloc[0]
        raise IVModelError(f"option {row['instrument']} needs positive strike, forward and "
                           f"mark_iv and open_interest >= 0 (got strike {row['strike']}, "
                           f"forward {row['underlying_price']}, mark_iv {row['mark_iv']}, "
                           f"open_interest {row['open_interest']})")
    if float(c["mark_iv"].median()) > 5:
        raise IVModelError(f"mark_iv must be a decimal (median {c['mark_iv'].median():.1f} "
                           f"looks like percent)")
    kinds = set(c["kind"].astype(str).str.lower())
    if not kinds <= {"call", "put"}:
        raise IVModelError(f"kind must be 'call' or 'put' (got {sorted(kinds)})")
    c["kind"] = c["kind"].astype(str).str.lower()
    c["expiry"] = pd.to_datetime(c["expiry"])
    if as_of is None:
        if "as_of" not in c.columns:
            raise IVModelError("give as_of, or an 'as_of' column, to measure time to expiry")
        as_of = pd.Timestamp(pd.to_datetime(c["as_of"]).max())
    c["tenor_days"] = (c["expiry"] - as_of) / pd.Timedelta(days=1)
    return c


def iv_model_from_chain(chain: pd.DataFrame, *, as_of: pd.Timestamp | None = None,
                        min_days: float = 7.0, max_std_moneyness: float = 1.5,
                        down: float = 1.4, up: float = 0.7) -> IVModel:
    """ATM level, skew and curvature per underlying from an options chain.

    For each underlying the nearest expiry at least ``min_days`` away is used (shorter ones are
    dominated by the last hours' noise). Out-of-the-money options only (puts below the forward,
    calls above) within ``|ln(K/F)| <= max_std_moneyness · iv₀ · sqrt(T / 365)`` (``iv₀``: the
    mark of the strike nearest the forward; a quadratic describes the smile near the money, not
    the far wings), fitted by :func:`fit_smile` with weights ``open_interest + 1``. Skew and
    curvature belong to that tenor: they shrink roughly like ``1 / sqrt(T)`` at longer ones.
    """
    if not (max_std_moneyness > 0):
        raise IVModelError(f"max_std_moneyness must be > 0 (got {max_std_moneyness})")
    c = _check_chain(chain, as_of)
    smiles: dict[str, IVSmile] = {}
    for und, g in c.groupby("underlying", sort=True):
        live = g[g["tenor_days"] >= min_days]
        if live.empty:
            raise IVModelError(f"no {und} expiry at least {min_days} days out "
                               f"(longest {g['tenor_days'].max():.2f})")
        tenor = float(live["tenor_days"].min())
        e = live[live["tenor_days"] == tenor]
        k = np.log(e["strike"].to_numpy(dtype=float) / e["underlying_price"].to_numpy(dtype=float))
        kind = e["kind"].to_numpy(dtype=str)
        otm = np.where(k < 0, kind == "put", kind == "call") | (k == 0)
        iv0 = float(e["mark_iv"].to_numpy()[np.argmin(np.abs(k))])
        use = otm & (np.abs(k) <= max_std_moneyness * iv0 * math.sqrt(tenor / DAYS_PER_YEAR))
        atm, skew, curv = fit_smile(k[use], e["mark_iv"].to_numpy()[use],
                                    e["open_interest"].to_numpy()[use] + 1.0)
        smiles[str(und)] = IVSmile(underlying=str(und), atm=atm, skew=skew, curvature=curv,
                                   tenor_days=tenor, source="chain")
    return IVModel(smiles=smiles, down=down, up=up)


# --- from the GARCH forecast --------------------------------------------------------------------


def atm_from_volatility(vol: FittedVolatility) -> float:
    """The one-step conditional volatility annualised with 365 days (no history needed)."""
    return vol.next_volatility * math.sqrt(DAYS_PER_YEAR)


def iv_model_from_market(market: MarketModel, *, chain: pd.DataFrame | None = None,
                         horizon_days: int = 30, skew: float = 0.0, curvature: float = 0.0,
                         down: float = 1.4, up: float = 0.7, min_days: float = 7.0
                         ) -> IVModel:
    """IV per volatility-modelled asset: from ``chain`` where it lists the asset, else
    ``sqrt(365 · mean_{h ≤ horizon_days} E[σ²_{T+h}])`` from arch's forecast (analytic for
    GARCH / GJR-GARCH, simulated with a fixed seed for EGARCH) and the given smile."""
    if horizon_days < 1:
        raise IVModelError(f"horizon_days must be >= 1 (got {horizon_days})")
    smiles: dict[str, IVSmile] = {}
    if chain is not None:
        fitted = iv_model_from_chain(chain, down=down, up=up, min_days=min_days)
        smiles.update({a: s for a, s in fitted.smiles.items() if a in market.volatility})
    for a in market.vol_assets:
        if a in smiles:
            continue
        res = market.fixed_result(a)
        if market.volatility[a].spec.model == "egarch":  # no analytic multi-step forecast
            dist = res.model.distribution
            params = [market.volatility[a].params[n] for n in dist.parameter_names()] or None
            gen = np.random.default_rng(0)

            def draws(size: int | tuple[int, ...], dist: Distribution = dist,
                      params: list[float] | None = params,
                      gen: np.random.Generator = gen) -> np.ndarray:
                return np.asarray(dist.ppf(gen.random(size), params), dtype=float)

            fc = res.forecast(horizon=horizon_days, method="simulation", simulations=2000,
                              rng=draws, reindex=False)
        else:
            fc = res.forecast(horizon=horizon_days, method="analytic", reindex=False)
        var = float(np.mean(fc.variance.to_numpy()[-1]))
        atm = math.sqrt(var * DAYS_PER_YEAR) / SCALE
        smiles[a] = IVSmile(underlying=a, atm=atm, skew=skew, curvature=curvature,
                            tenor_days=float(horizon_days), source="garch")
    return IVModel(smiles=smiles, down=down, up=up)

