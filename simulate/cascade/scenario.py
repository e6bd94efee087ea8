"""Scenario specs → exogenous inputs of the cascade (:class:`Shocks`) for a system's assets.

Which move each asset of the snapshot gets (scenario keys are asset ids or symbols):

1. an asset the scenario (or the market model) moves itself gets its own move;
2. otherwise an asset with a peg target follows its target (WETH moves with ETH, wstETH with
   stETH), times the scenario's depeg of it, if any;
3. otherwise a stablecoin stays at its snapshot price, times its depeg, if any;
4. otherwise the asset moves with ``params.proxy_asset`` (ETH by default) or stays put.

Depegs and shocks are relative to the snapshot's prices (a depeg of 0.93 puts stETH at 0.93
of its snapshot price relative to ETH). Implied volatility multipliers follow the same rules
(pegged assets take their target's). In Monte Carlo scenarios, implied vol rises in both tails
with the cumulative return ``R``: ``min(exp(down·max(-R, 0) + up·max(R, 0)), max_multiplier)``
(:class:`~simulate.market.implied_vol.IVModel`'s response).

Fixed shocks are one path applied at once (no time passes); a historical replay with a daily
path is one path of ``len(path)`` daily steps; a Monte Carlo scenario draws ``paths`` paths of
``steps`` steps from the fitted market model, shard by shard from spawned seeds.
"""

from __future__ import annotations

import numpy as np

from graph.export import SystemArrays
from graph.vocab import AssetKind
from simulate.cascade.params import CascadeParams
from simulate.cascade.paths import Shocks
from simulate.market.implied_vol import IVModel
from simulate.market.shocks import MarketModel, simulate_returns
from simulate.scenarios.models import (
    FixedShockScenario,
    HistoricalReplay,
    MonteCarloScenario,
    ScenarioError,
)

__all__ = ["AnyScenario", "fixed_shocks", "monte_carlo_shocks", "resolve_asset"]

AnyScenario = MonteCarloScenario | FixedShockScenario | HistoricalReplay

_IV = IVModel.model_fields


def resolve_asset(system: SystemArrays, key: str, *, what: str = "scenario asset") -> int:
    """Index of the asset with id ``key``, else the one asset with symbol ``key``."""
    ids = list(system.asset_ids)
    if key in ids:
        return ids.index(key)
    hits = np.flatnonzero(system.asset_symbols == key)
    if len(hits) == 1:
        return int(hits[0])
    if len(hits) > 1:
        raise ScenarioError(f"{what} {key!r} is ambiguous: assets "
                            f"{sorted(system.asset_ids[hits])} have that symbol")
    raise ScenarioError(f"{what} {key!r} is not an asset of the snapshot "
                        f"(ids: {', '.join(sorted(ids)[:12])}{' ...' if len(ids) > 12 else ''})")


def _expand(system: SystemArrays, own: dict[int, np.ndarray], depeg: dict[int, np.ndarray],
            proxy: int | None, shape: tuple[int, ...]) -> np.ndarray:
    """``[..., A]`` multipliers from the assets' own moves by the rules of the module doc."""
    a_n = len(system.asset_ids)
    out: list[np.ndarray | None] = [None] * a_n
    is_stable = system.asset_kind == list(AssetKind).index(AssetKind.STABLE)

    def get(a: int, depth: int = 0) -> np.ndarray:
        if depth > a_n:
            raise ScenarioError("asset pegs form a cycle")
        got = out[a]
        if got is not None:
            return got
        if a in own:
            m = own[a]
        elif system.pegged_to[a] >= 0:
            m = get(int(system.pegged_to[a]), depth + 1)
        elif is_stable[a] or proxy is None or proxy == a:
            m = np.ones(shape)
        else:
            m = get(proxy, depth + 1)
        if a in depeg and a not in own:
            m = m * depeg[a]
        out[a] = m
        return m

    return np.stack([get(a) for a in range(a_n)], axis=-1)


def _proxy(system: SystemArrays, params: CascadeParams) -> int | None:
    if params.proxy_asset is None:
        return None
    return resolve_asset(system, params.proxy_asset, what="proxy asset")


def fixed_shocks(scenario: FixedShockScenario | HistoricalReplay, system: SystemArrays,
                 params: CascadeParams) -> Shocks:
    """One path: a fixed shock at once, or a replay day by day."""
    proxy = _proxy(system, params)

    def idx(d: dict[str, float]) -> dict[int, float]:
        return {resolve_asset(system, k): v for k, v in d.items()}

    if isinstance(scenario, HistoricalReplay) and scenario.path:
        days = scenario.path
        steps = len(days)
        elapsed = np.array([(d.date - scenario.start).days for d in days], dtype=float)
        keys = sorted({k for d in days for k in d.shocks})
        dkeys = sorted({k for d in days for k in d.depegs})
        own = {resolve_asset(system, k): np.array([1.0 + d.shocks.get(k, 0.0) for d in days])
               for k in keys}
        depeg = {resolve_asset(system, k): np.array([d.depegs.get(k, 1.0) for d in days])
                 for k in dkeys}
        ivm = {resolve_asset(system, k): np.full(steps, v.value)
               for k, v in scenario.iv_multipliers.items()}
    else:
        fixed = scenario.as_fixed_shock() if isinstance(scenario, HistoricalReplay) else scenario
        steps = 1
        elapsed = np.zeros(1)
        own = {a: np.array([1.0 + v]) for a, v in idx(fixed.shocks).items()}
        depeg = {a: np.array([v]) for a, v in idx(fixed.depegs).items()}
        ivm = {a: np.array([v]) for a, v in idx(fixed.iv_multipliers).items()}
    price = _expand(system, own, depeg, proxy, (steps,))
    iv = _expand(system, ivm, {}, proxy, (steps,))
    return Shocks(price[None], iv[None], elapsed)


def monte_carlo_shocks(scenario: MonteCarloScenario, market: MarketModel, system: SystemArrays,
                       params: CascadeParams, num_paths: int, seed: np.random.SeedSequence,
                       ) -> Shocks:
    """``num_paths`` paths drawn from ``market`` with ``seed`` (one shard's stream): the
    scenario's ``horizon_days`` daily returns simulated day by day through the fitted model,
    each step carrying the sum of its ``days_per_step`` days' log returns (so a 10-day step
    moves as ten days do, and ends where ten 1-day steps from the same draws end)."""
    h = scenario.days_per_step
    r = simulate_returns(market, num_paths, scenario.steps * h, seed, method=scenario.joint,
                         antithetic=scenario.antithetic)
    if h > 1:
        r = r.reshape(num_paths, scenario.steps, h, r.shape[-1]).sum(axis=2)
    cum = np.cumsum(r, axis=1)
    wanted = scenario.assets or market.assets
    own_p: dict[int, np.ndarray] = {}
    own_v: dict[int, np.ndarray] = {}
    down, up = _IV["down"].default, _IV["up"].default
    cap = _IV["max_multiplier"].default
    for j, name in enumerate(market.assets):
        if name not in wanted:
            continue
        try:
            a = resolve_asset(system, name, what="market model asset")
        except ScenarioError:
            continue  # modelled but not held by this ecosystem
        c = cum[:, :, j]
        own_p[a] = np.exp(c)
        own_v[a] = np.minimum(np.exp(down * np.maximum(-c, 0.0) + up * np.maximum(c, 0.0)), cap)
    if not own_p:
        raise ScenarioError(f"none of the market model's assets {list(market.assets)} is an "
                            f"asset of the snapshot")
    proxy = _proxy(system, params)
    shape = (num_paths, scenario.steps)
    elapsed = scenario.horizon_days * np.arange(1, scenario.steps + 1) / scenario.steps
    return Shocks(_expand(system, own_p, {}, proxy, shape),
                  _expand(system, own_v, {}, proxy, shape), elapsed)
