"""Training labels: per-node failure probabilities from the cascade simulator under a family of
seeded random joint shocks.

The scenario family (:class:`ShockFamily`) needs no market model. Each path draws, from the
path's seed:

- an ETH move ``-D`` with ``D = max_drop · Beta(a, b)`` (a one-day fall; the default has a
  median near 20% and a 5% tail beyond 45%), BTC's move ``-D · U(btc_low, btc_high)``;
- with probability ``depeg_prob`` an ETH liquid-staking depeg: stETH (and the other LSTs
  independently, at half the size) trade at ``1 - U(0, max_depeg)`` of their peg;
- with probability ``stable_depeg_prob`` one stablecoin (drawn uniformly among USDC, USDT,
  DAI, LUSD present) trades at ``1 - U(0, max_stable_depeg)``;
- implied volatility of ETH and BTC times ``1 + iv_slope · D``.

Everything else follows :func:`simulate.cascade.scenario.fixed_shocks`'s rules (pegged assets
follow their target, other tokens move as ETH: the family's scenarios name it as their proxy).
The paths run through the fast cascade kernel with :class:`~simulate.cascade.CascadeParams`
defaults. Labels (the module doc of :mod:`simulate.cascade.metrics` defines failure per node
type): protocol, pool and asset
failure probabilities and, per account, the share of paths in which one of its positions was
liquidated or margin-called. Oracles have no label.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from graph.export import SystemArrays
from simulate.cascade import CascadeParams, Shocks, compile_cascade, fixed_shocks, run_fast
from simulate.cascade.paths import PathResults
from simulate.scenarios.models import FixedShockScenario

__all__ = ["ShockFamily", "draw_shocks", "failure_probabilities", "probabilities"]

_LSTS = ("stETH", "rETH", "cbETH")
_STABLES = ("USDC", "USDT", "DAI", "LUSD")


class ShockFamily(BaseModel):
    """The random joint shocks behind the labels (module doc)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_drop: float = Field(default=0.7, gt=0.0, lt=1.0)
    drop_a: float = Field(default=2.0, gt=0.0)
    drop_b: float = Field(default=4.5, gt=0.0)
    btc_low: float = Field(default=0.4, ge=0.0)
    btc_high: float = Field(default=1.0, ge=0.0)
    depeg_prob: float = Field(default=0.3, ge=0.0, le=1.0)
    max_depeg: float = Field(default=0.15, ge=0.0, lt=1.0)
    stable_depeg_prob: float = Field(default=0.05, ge=0.0, le=1.0)
    max_stable_depeg: float = Field(default=0.15, ge=0.0, lt=1.0)
    iv_slope: float = Field(default=2.0, ge=0.0)

    def scenarios(self, symbols: set[str], paths: int, seed: int) -> list[FixedShockScenario]:
        """``paths`` fixed-shock scenarios, one per path, from ``seed``."""
        rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5A0C]))
        out = []
        stables = [x for x in _STABLES if x in symbols]
        for _ in range(paths):
            d = self.max_drop * rng.beta(self.drop_a, self.drop_b)
            btc = d * rng.uniform(self.btc_low, self.btc_high)
            depegs: dict[str, float] = {}
            u_lst, u_size = rng.random(), rng.uniform(0.0, self.max_depeg, size=len(_LSTS))
            if u_lst < self.depeg_prob:
                for k, name in enumerate(_LSTS):
                    if name in symbols:
                        depegs[name] = 1.0 - u_size[k] * (1.0 if k == 0 else 0.5)
            u_st, pick = rng.random(), rng.integers(0, max(len(stables), 1))
            st_size = rng.uniform(0.0, self.max_stable_depeg)
            if u_st < self.stable_depeg_prob and stables:
                depegs[stables[int(pick)]] = 1.0 - st_size
            shocks = {k: v for k, v in (("ETH", -d), ("BTC", -btc)) if k in symbols}
            ivs = {k: 1.0 + self.iv_slope * v for k, v in (("ETH", d), ("BTC", btc))
                   if k in symbols}
            depegs = {k: max(v, 1e-6) for k, v in depegs.items() if v < 1.0}
            if not shocks:
                raise ValueError(f"the shock family moves ETH and BTC: the ecosystem has "
                                 f"neither (symbols: {sorted(symbols)[:12]})")
            out.append(FixedShockScenario(name="gnn-family", shocks=shocks,
                                          iv_multipliers=ivs, depegs=depegs, proxy="ETH"))
        return out

    def volatility(self, system: SystemArrays, *, paths: int = 256, seed: int = 0
                   ) -> np.ndarray:
        """The volatility forecast ``[A]``: standard deviation of each asset's log price move
        over ``paths`` draws of the family (a fixed seed: a feature, not a label)."""
        shocks = draw_shocks(system, self, paths, seed)
        return np.log(shocks.price[:, 0, :]).std(axis=0)


def draw_shocks(system: SystemArrays, family: ShockFamily, paths: int, seed: int) -> Shocks:
    """``[paths, 1, A]`` shocks of ``family`` for ``system``'s assets from ``seed``."""
    symbols = {str(x) for x in system.asset_symbols}
    parts = [fixed_shocks(sc, system) for sc in family.scenarios(symbols, paths, seed)]
    return Shocks(np.concatenate([p.price for p in parts]), np.concatenate([p.iv for p in parts]),
                  parts[0].elapsed_days)


def failure_probabilities(system: SystemArrays, family: ShockFamily, paths: int, seed: int
                          ) -> dict[str, np.ndarray]:
    """Monte Carlo failure probability per node of each labelled type (``[n_t]`` float64 for
    ``protocol``, ``pool``, ``asset``, ``account``) over ``paths`` paths of ``family``."""
    res = run_fast(compile_cascade(system), draw_shocks(system, family, paths, seed),
                   CascadeParams())
    return probabilities(res)


def probabilities(res: PathResults) -> dict[str, np.ndarray]:
    """The per-node failure probabilities of a run's path results."""
    n = res.num_paths
    return {"protocol": (res.fail_protocol >= 0).mean(axis=0),
            "pool": (res.fail_pool >= 0).mean(axis=0),
            "asset": (res.fail_asset >= 0).mean(axis=0),
            "account": res.account_failures / n}
