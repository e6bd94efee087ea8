"""The prices a lending protocol sees: each asset's oracle, round by round
(docs/architecture.md §4.2).

A lending position is valued by the oracle of each of its assets (``assets.oracle``), as a
price relative to the snapshot, ``o = p̂ / p0`` (``m = X·E`` is the market's, §4.2). Time: round
``t`` happens at ``T_t = 86400·elapsed_days[s] + (t − s)·round_seconds`` seconds after the
snapshot, ``s = min(t, S − 1)`` (:func:`round_times`): the rounds that read exogenous step ``s``
sit at the end of that step, the rounds after the last step are block windows of
``CascadeParams.round_seconds`` each.

- ``feed`` (Chainlink-style): reports the market price ``m`` when it has moved more than the
  deviation threshold ``δ`` from the last report ``r``, ``|m / r − 1| > δ``, or when
  ``T − T_last ≥ heartbeat``; otherwise the protocol keeps seeing ``r``. At the snapshot
  ``r = 1``, ``T_last = 0`` (the feed has just reported).
- ``twap``: ``(1/W)·∫_{T−W}^{T} q(τ) dτ`` of the price ``q`` of the pool it reads, piecewise
  constant: ``q_k`` on ``[T_k, T_{k+1})``, the snapshot price (1) before ``T_0``. The round's own
  price has no weight yet (a TWAP reads the accumulator up to the previous block), so a TWAP
  sees round ``t``'s price from round ``t + 1`` on. ``W = 0``: the spot price ``q_t``. The
  pool's price of the asset is its market price ``m`` (one virtual reserve per route asset,
  §4.4) times the scenario's oracle push (:func:`push_cost`), which moves this pool only.
- ``exchange_rate``: the token's redemption rate times its underlying's oracle: redeem down
  the ``pegged_to`` chain while the asset is issued by a protocol, each hop at the issuer's
  backing ratio ``β`` (§4.5), and value the first asset without an issuer by its own oracle:
  wstETH → stETH → ETH gives ``o = β_lido · β_lido · o_ETH`` (the market's ``E`` composes
  ``β`` the same way), so a market discount of stETH does not move it (Aave v3's wstETH
  adapter). The snapshot's price ratio is the exchange rate at the snapshot. A token without a
  peg target is valued at ``β_issuer · p0``.
- ``fixed``: ``o = 1`` (the snapshot price) always.
- no oracle: the market price, ``o = m``.

Defaults for a parameter the snapshot leaves null: ``δ = 0.005`` and ``heartbeat = 3600 s``
(Chainlink ETH/USD on Ethereum mainnet), ``W = 1800 s`` (a 30-minute TWAP, as Compound's
anchored view and most Uniswap v3 oracles of lending markets use). ``CascadeParams.oracles =
"market"`` values every asset at ``m`` instead.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from graph.export import SystemArrays
from graph.vocab import OracleKind, PoolKind

if TYPE_CHECKING:
    from simulate.cascade.params import CascadeParams
    from simulate.cascade.paths import Shocks
    from simulate.cascade.system import CascadeSystem

__all__ = [
    "BLOCK_SECONDS",
    "DEFAULT_DEVIATION",
    "DEFAULT_HEARTBEAT_SECONDS",
    "DEFAULT_TWAP_WINDOW_SECONDS",
    "OracleArrays",
    "OracleBook",
    "PushCost",
    "compile_oracles",
    "oracle_book",
    "oracle_inputs",
    "push_cost",
    "push_multipliers",
    "round_times",
    "settle_at_market",
]

#: Chainlink ETH/USD on Ethereum mainnet: 0.5% deviation threshold, one-hour heartbeat.
DEFAULT_DEVIATION = 0.005
DEFAULT_HEARTBEAT_SECONDS = 3600.0
#: A 30-minute time-weighted average.
DEFAULT_TWAP_WINDOW_SECONDS = 1800.0
#: Ethereum's slot time: an attacker re-pushes a pool once per block.
BLOCK_SECONDS = 12.0

_KINDS = list(OracleKind)
FEED, TWAP, EXCHANGE, FIXED = (_KINDS.index(k) for k in (
    OracleKind.FEED, OracleKind.TWAP, OracleKind.EXCHANGE_RATE, OracleKind.FIXED))
MARKET = -1  # no oracle: valued at market
_AMM = list(PoolKind).index(PoolKind.AMM)
_LAG = 1e-6  # a feed or TWAP this close (relative) to its source has caught up


@dataclass(frozen=True, eq=False)
class OracleArrays:
    """Per asset ``[A]``: its oracle's kind code (``graph.vocab.OracleKind`` order, -1: none),
    deviation threshold, heartbeat and TWAP window (seconds; defaults filled in), and for
    exchange-rate assets (``rate_assets``, underlyings first) the protocols whose backing
    multiplies the rate (``rate_issuers[j]``) and the asset valued by its own oracle at the end
    of the chain (``rate_base[j]``, -1: none)."""

    kind: np.ndarray
    deviation: np.ndarray
    heartbeat: np.ndarray
    window: np.ndarray
    rate_assets: np.ndarray
    rate_issuers: tuple[np.ndarray, ...]
    rate_base: np.ndarray

    @property
    def feeds(self) -> np.ndarray:
        return np.flatnonzero(self.kind == FEED)

    @property
    def twaps(self) -> np.ndarray:
        return np.flatnonzero(self.kind == TWAP)


def _param(values: np.ndarray, default: float) -> np.ndarray:
    return np.where(np.isnan(values), default, values)


def compile_oracles(s: SystemArrays) -> OracleArrays:
    """The oracle of every asset of ``s`` with its parameters (defaults where null); a
    parameter set on an oracle of a kind that does not read it is refused."""
    o_n = len(s.oracle_ids)
    dev = s.oracle_deviation if len(s.oracle_deviation) == o_n else np.full(o_n, np.nan)
    hb = s.oracle_heartbeat if len(s.oracle_heartbeat) == o_n else np.full(o_n, np.nan)
    win = s.oracle_window if len(s.oracle_window) == o_n else np.full(o_n, np.nan)
    for j in range(o_n):
        kind = _KINDS[s.oracle_kind[j]]
        for name, v, reads in (("deviation_threshold", dev[j], FEED),
                               ("heartbeat_seconds", hb[j], FEED),
                               ("twap_window_seconds", win[j], TWAP)):
            if not np.isnan(v) and s.oracle_kind[j] != reads:
                raise ValueError(f"oracle {s.oracle_ids[j]}: '{name}' applies to "
                                 f"{_KINDS[reads].value} oracles only (kind {kind.value})")
    a_n = len(s.asset_ids)
    has = s.asset_oracle >= 0
    at = np.maximum(s.asset_oracle, 0)
    kind = np.where(has, s.oracle_kind[at] if o_n else 0, MARKET).astype(np.int64)
    deviation = np.where(has, _param(dev, DEFAULT_DEVIATION)[at] if o_n else 0.0, np.nan)
    heartbeat = np.where(has, _param(hb, DEFAULT_HEARTBEAT_SECONDS)[at] if o_n else 0.0,
                         np.nan)
    window = np.where(has, _param(win, DEFAULT_TWAP_WINDOW_SECONDS)[at] if o_n else 0.0,
                      np.nan)
    issuers: dict[int, np.ndarray] = {}
    base = np.full(a_n, -1, dtype=np.int64)
    for a in np.flatnonzero(kind == EXCHANGE):
        chain = [int(s.issuer[a])] if s.issuer[a] >= 0 else []
        b, seen = int(s.pegged_to[a]), 0
        while b >= 0 and s.issuer[b] >= 0 and s.pegged_to[b] >= 0:
            chain.append(int(s.issuer[b]))
            b = int(s.pegged_to[b])
            seen += 1
            if seen > a_n:
                raise ValueError(f"asset pegs form a cycle through {s.asset_ids[a]}")
        issuers[int(a)] = np.array(chain, dtype=np.int64)
        base[a] = b
    depth = np.zeros(a_n, dtype=np.int64)  # rates whose base is itself priced by a rate
    for r in issuers:
        c, d = int(base[r]), 0
        while c >= 0 and kind[c] == EXCHANGE and d <= a_n:
            c, d = int(base[c]), d + 1
        depth[r] = d
    rate = np.flatnonzero(kind == EXCHANGE)
    rate = rate[np.argsort(depth[rate], kind="stable")]
    return OracleArrays(kind=kind, deviation=deviation, heartbeat=heartbeat, window=window,
                        rate_assets=rate.astype(np.int64),
                        rate_issuers=tuple(issuers[int(a)] for a in rate),
                        rate_base=base[rate])


def round_times(elapsed_days: np.ndarray, rounds: int, round_seconds: float) -> np.ndarray:
    """``T_t`` (seconds after the snapshot) of rounds ``0 … rounds`` ``[rounds + 1]``:
    ``86400·elapsed_days[min(t, S − 1)] + max(t − S + 1, 0)·round_seconds``."""
    steps = len(elapsed_days)
    t = np.arange(rounds + 1)
    s = np.minimum(t, steps - 1)
    return 86400.0 * np.asarray(elapsed_days, dtype=float)[s] + (t - s) * round_seconds


class OracleBook:
    """The oracle state of ``n`` paths (feeds' last reports, TWAP accumulators) and the
    relative oracle prices ``o [k, A]`` it gives each round (module docstring).

    ``push [A]``: the multiplier of each pool price a TWAP reads (the scenario's oracle pushes,
    1 elsewhere). ``mode``: ``"modelled"`` or ``"market"`` (``o = m``)."""

    def __init__(self, orc: OracleArrays, n: int, times: np.ndarray, mode: str,
                 push: np.ndarray | None = None):
        a_n = len(orc.kind)
        self.orc, self.times, self.market = orc, times, mode == "market"
        self.feeds, self.twaps = orc.feeds, orc.twaps
        self.ref = np.ones((n, len(self.feeds)))
        self.last = np.zeros((n, len(self.feeds)))
        r = len(times)
        self.q = np.ones((n, r, len(self.twaps)))
        self.cum = np.zeros((n, r, len(self.twaps)))
        self.push = (np.ones(a_n) if push is None else push)[self.twaps]
        self.lag = np.zeros(n, dtype=bool)  # some feed or TWAP differs from its source

    def pending(self, rows: np.ndarray) -> np.ndarray:
        """``[k]``: whether, at the last read, some feed's report or TWAP differed from the
        price it follows by more than ``1e-6`` (relative): the prices the protocols see are
        still to move, so the path is not stable yet."""
        return self.lag[rows]

    def read(self, rows: np.ndarray, t: int, m: np.ndarray, beta: np.ndarray) -> np.ndarray:
        """Relative oracle prices ``[k, A]`` in round ``t`` of paths ``rows [k]`` at market
        ``m = X·E [k, A]`` and backing ``beta [k, P]``; ``m`` itself in market mode. Called
        once per round and path, rounds in order."""
        if self.market:
            return m
        orc, tt = self.orc, self.times
        o = m.copy()
        f = self.feeds
        if len(f):
            ref, last = self.ref[rows], self.last[rows]
            with np.errstate(divide="ignore", invalid="ignore"):
                moved = np.abs(m[:, f] / ref - 1.0) > orc.deviation[f]
            upd = moved | (tt[t] - last >= orc.heartbeat[f])
            self.ref[rows] = ref = np.where(upd, m[:, f], ref)
            self.last[rows] = np.where(upd, tt[t], last)
            o[:, f] = ref
            lag = (np.abs(ref - m[:, f]) > _LAG * np.abs(m[:, f])).any(axis=1)
        else:
            lag = np.zeros(len(rows), dtype=bool)
        w = self.twaps
        if len(w):
            q = m[:, w] * self.push
            if t > 0:
                self.cum[rows, t] = (self.cum[rows, t - 1]
                                     + self.q[rows, t - 1] * (tt[t] - tt[t - 1]))
            self.q[rows, t] = q
            for j, a in enumerate(w):
                o[:, a] = self._twap(rows, t, j, float(orc.window[a]), q[:, j])
            lag |= (np.abs(o[:, w] - q) > _LAG * np.abs(q)).any(axis=1)
        self.lag[rows] = lag
        o[:, orc.kind == FIXED] = 1.0
        for a, iss, b in zip(orc.rate_assets, orc.rate_issuers, orc.rate_base, strict=True):
            r = np.prod(beta[:, iss], axis=1) if len(iss) else np.ones(len(rows))
            o[:, a] = r * o[:, b] if b >= 0 else r
        return o

    def _twap(self, rows: np.ndarray, t: int, j: int, window: float, q: np.ndarray
              ) -> np.ndarray:
        if window <= 0:
            return q
        tt = self.times
        start = tt[t] - window
        cum = self.cum[rows, t, j]
        if start <= tt[0]:
            return ((tt[0] - start) + cum) / window
        k = int(np.searchsorted(tt[:t + 1], start, side="right")) - 1
        before = self.cum[rows, k, j] + self.q[rows, k, j] * (start - tt[k])
        return (cum - before) / window


def oracle_book(cs: CascadeSystem, shocks: Shocks, params: CascadeParams, n: int
                ) -> OracleBook:
    """The :class:`OracleBook` of ``n`` paths of ``shocks`` under ``params`` (both kernels)."""
    orc = cs.oracles if cs.oracles is not None else compile_oracles(cs.arrays)
    times = round_times(shocks.elapsed_days, params.rounds, params.round_seconds)
    return OracleBook(orc, n, times, params.oracles, shocks.oracle_push)


def settle_at_market(phi: ArrayLike, bad: ArrayLike, dv_oracle: ArrayLike,
                     cv_market: ArrayLike, dv_market: ArrayLike
                     ) -> tuple[np.ndarray, np.ndarray]:
    """``(seized, bad)`` in USD at market of liquidations the protocol computed at oracle
    prices: the seized share ``φ`` of the collateral at market, ``seized = φ·cv_m``, and the
    unpaid share of the debt at market, ``bad = (bad̂ / dv̂)·dv_m`` (``bad̂ = dv̂ − repaid̂``)."""
    phi, bad, dv_o, cv_m, dv_m = (np.asarray(v, dtype=float)
                                  for v in (phi, bad, dv_oracle, cv_market, dv_market))
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(bad > 0, bad / np.where(dv_o > 0, dv_o, 1.0), 0.0)
    return phi * cv_m, share * dv_m


@dataclass(frozen=True)
class PushCost:
    """The cost of holding a constant-product pool's price of ``asset`` at ``(1 + fraction)``
    its market price: ``capital_usd`` trades it there once, ``loss_per_block_usd`` is what each
    re-push loses to the arbitrageur who trades it back, over ``blocks`` blocks (a TWAP's whole
    window, one for a spot read)."""

    asset: str
    pool: str
    fraction: float
    reserve_usd: float
    fee: float
    capital_usd: float
    loss_per_block_usd: float
    blocks: int
    cost_usd: float

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def push_cost(s: SystemArrays, orc: OracleArrays, asset: int, fraction: float, *,
              field: str = "oracle_pushes") -> PushCost:
    """The cost of pushing the TWAP (or spot, window 0) oracle of ``asset`` by ``fraction``.

    The pool it reads is constant product, ``x·y = k``, with ``x`` tokens of the asset and
    ``y = x·p0`` USD on the other side (snapshot reserves, ``SystemArrays.holdings``). Moving the
    pool's price by ``q = 1 + fraction`` takes ``x' = x/√q``: buying (``q > 1``) costs
    ``y·(√q − 1)``, selling (``q < 1``) ``x·(1/√q − 1)`` tokens, worth ``y·(1/√q − 1)``
    (``capital``). Trading back at the market price loses ``y·(q^{1/4} − q^{−1/4})²`` plus the
    pool's fee on the capital, and an arbitrageur does it each block, so holding the TWAP at
    the pushed price costs that per block over ``⌈W / 12 s⌉`` blocks (1 for a spot read).
    Raises ``ValueError`` naming ``field`` for an asset that is not priced by a TWAP oracle
    reading a constant-product AMM pool that holds it."""
    sym = f"{field}.{s.asset_symbols[asset]}"
    if orc.kind[asset] != TWAP:
        what = "no oracle" if orc.kind[asset] == MARKET else \
            f"a {_KINDS[orc.kind[asset]].value} oracle"
        raise ValueError(f"{sym}: {s.asset_ids[asset]} is priced by {what}; only a TWAP "
                         f"oracle reading a pool can be pushed by trading")
    if not (math.isfinite(fraction) and fraction > -1.0 and fraction != 0.0):
        raise ValueError(f"{sym} must be > -1 and not 0 (got {fraction})")
    m = int(s.oracle_pool[asset])
    if m < 0:
        raise ValueError(f"{sym}: the TWAP oracle of {s.asset_ids[asset]} reads no pool")
    pool = str(s.pool_ids[m])
    x = float(s.holdings[[m]].toarray()[0, asset])
    if s.pool_kind[m] != _AMM or not math.isnan(s.amplification[m]) or x <= 0 \
            or s.holdings[[m]].nnz < 2:
        raise ValueError(f"{sym}: pool {pool} is not a constant-product AMM pool holding "
                         f"{s.asset_ids[asset]} and another coin")
    y = x * float(s.price[asset])
    q = 1.0 + fraction
    fee = float(np.nan_to_num(s.pool_fee[m], nan=0.0))
    capital = y * (math.sqrt(q) - 1.0) if q > 1.0 else y * (1.0 / math.sqrt(q) - 1.0)
    loss = y * (q ** 0.25 - q ** -0.25) ** 2 + fee * capital
    window = float(orc.window[asset])
    blocks = max(math.ceil(window / BLOCK_SECONDS), 1)
    return PushCost(asset=str(s.asset_ids[asset]), pool=pool, fraction=fraction,
                    reserve_usd=y, fee=fee, capital_usd=capital, loss_per_block_usd=loss,
                    blocks=blocks, cost_usd=loss * blocks)


def push_multipliers(s: SystemArrays, orc: OracleArrays, pushes: Mapping[int, float]
                     ) -> np.ndarray:
    """``[A]`` multipliers ``1 + fraction`` of the pushed assets' pool prices (1 elsewhere),
    each checked by :func:`push_cost`."""
    out = np.ones(len(s.asset_ids))
    for a, f in pushes.items():
        push_cost(s, orc, a, f)
        out[a] = 1.0 + f
    return out


def oracle_inputs(s: SystemArrays, orc: OracleArrays, mode: str, round_seconds: float
                  ) -> dict[str, Any]:
    """What the run record states about valuation: the mode, the round length and each
    asset's oracle with the parameters used."""
    assets: dict[str, str] = {}
    for a, aid in enumerate(s.asset_ids):
        k = int(orc.kind[a])
        if k == MARKET:
            assets[str(aid)] = "market (no oracle)"
        elif k == FEED:
            assets[str(aid)] = (f"feed: deviation {orc.deviation[a]:g}, heartbeat "
                                f"{orc.heartbeat[a]:g} s")
        elif k == TWAP:
            assets[str(aid)] = f"twap: window {orc.window[a]:g} s"
        else:
            assets[str(aid)] = _KINDS[k].value
    return {"valuation": mode, "round_seconds": round_seconds, "assets": assets}
