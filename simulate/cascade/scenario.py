"""Scenario specs → exogenous inputs of the cascade (:class:`Shocks`) for a system's assets.

Which move each asset of the snapshot gets (scenario keys are asset ids or symbols;
:func:`asset_moves` resolves them and the run record lists the result per asset):

1. an asset the scenario (or its market model) moves itself gets its own move;
2. otherwise an asset with a peg target follows its target (WETH moves with ETH, wstETH with
   stETH), times the scenario's depeg of it, if any;
3. otherwise a stablecoin stays at its snapshot price, times its depeg, if any;
4. otherwise an asset in the scenario's ``mappings`` moves as its factor to the power of its
   ``beta`` (a multiplier ``m`` becomes ``m**beta``);
5. otherwise the asset moves with the scenario's ``proxy``, if it names one;
6. otherwise it stays at its snapshot price: allowed for fixed shocks and replays (what is
   not named is not shocked; the record says so), refused for a Monte Carlo run (every asset
   that is not pegged or a stablecoin needs a price history or a mapping).

Depegs and shocks are relative to the snapshot's prices (a depeg of 0.93 puts stETH at 0.93
of its snapshot price relative to ETH). Implied volatility multipliers follow the same rules
(pegged and mapped assets take their target's, without the beta). In Monte Carlo scenarios,
implied vol rises in both tails with the cumulative return ``R``: ``min(exp(down·max(-R, 0) +
up·max(R, 0)), max_multiplier)`` (:class:`~simulate.market.implied_vol.IVModel`'s response).

Fixed shocks are one path applied at once (no time passes); a historical replay with a daily
path is one path of ``len(path)`` daily steps; a Monte Carlo scenario draws ``paths`` paths of
``steps`` steps from the fitted market model, shard by shard from spawned seeds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from graph.export import SystemArrays
from graph.vocab import AssetKind
from simulate.cascade.oracles import compile_oracles, push_multipliers
from simulate.cascade.paths import Shocks
from simulate.market.implied_vol import IVModel, iv_response
from simulate.market.shocks import MarketModel, simulate_returns
from simulate.scenarios.models import (
    FixedShockScenario,
    HistoricalReplay,
    MonteCarloScenario,
    ScenarioError,
)

__all__ = ["AnyScenario", "Move", "asset_moves", "fixed_shocks", "market_assets",
           "monte_carlo_shocks", "resolve_asset", "scenario_moves"]

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


@dataclass(frozen=True)
class Move:
    """How one asset moves in a run: ``kind`` by the rules of the module doc, ``source`` the
    asset index it follows (peg target, mapping factor or proxy; -1 otherwise), ``beta`` the
    power of a mapping."""

    kind: Literal["own", "pegged", "stable", "mapped", "proxy", "unshocked"]
    source: int = -1
    beta: float = 1.0

    def describe(self, system: SystemArrays) -> str:
        """The move in words, as the run record states it."""
        src = system.asset_ids[self.source] if self.source >= 0 else ""
        return {"own": "own move", "pegged": f"follows its peg target {src}",
                "stable": "stablecoin: held at its snapshot price (times its depeg, if any)",
                "mapped": f"beta {self.beta:g} to {src} (scenario mapping)",
                "proxy": f"moves as {src} (scenario proxy)",
                "unshocked": "not moved by the scenario: held at its snapshot price"}[self.kind]


def asset_moves(system: SystemArrays, scenario: AnyScenario, own: set[int]) -> list[Move]:
    """The :class:`Move` of every asset of ``system`` when the assets ``own`` have their own
    moves (rules of the module doc). Raises :class:`ScenarioError` for a mapping or proxy
    that is not an asset of the snapshot, a beta still to be estimated, or a Monte Carlo
    scenario that leaves an asset unmoved."""
    a_n = len(system.asset_ids)
    is_stable = system.asset_kind == list(AssetKind).index(AssetKind.STABLE)
    proxy = (None if scenario.proxy is None
             else resolve_asset(system, scenario.proxy, what="proxy asset"))
    mapped: dict[int, tuple[int, float]] = {}
    for key, m in scenario.mappings.items():
        if m.beta == "estimate":
            raise ScenarioError(f"mappings.{key}.beta is 'estimate': a Monte Carlo run "
                                f"estimates it from {key}'s price history (give one) before "
                                f"simulating")
        mapped[resolve_asset(system, key, what=f"mappings.{key}")] = (
            resolve_asset(system, m.factor, what=f"mappings.{key}.factor"), float(m.beta))
    out: list[Move] = []
    for a in range(a_n):
        if a in own:
            out.append(Move("own"))
        elif system.pegged_to[a] >= 0:
            out.append(Move("pegged", int(system.pegged_to[a])))
        elif is_stable[a]:
            out.append(Move("stable"))
        elif a in mapped:
            out.append(Move("mapped", *mapped[a]))
        elif proxy is not None and proxy != a:
            out.append(Move("proxy", proxy))
        else:
            out.append(Move("unshocked"))
    if isinstance(scenario, MonteCarloScenario):
        bare = [str(system.asset_ids[a]) for a, m in enumerate(out) if m.kind == "unshocked"]
        if bare:
            raise ScenarioError(
                f"assets {', '.join(bare)} have no price history and no mapping: give their "
                f"price histories, map them (the scenario's mappings) or name a proxy (the "
                f"scenario's proxy, --proxy-asset)")
    return out


def _expand(moves: list[Move], own: dict[int, np.ndarray], depeg: dict[int, np.ndarray],
            shape: tuple[int, ...], *, beta: bool) -> np.ndarray:
    """``[..., A]`` multipliers: ``own[a]`` where given, else by ``moves``; ``beta``: mapped
    assets take their factor's multiplier to the power beta (prices), else as it is (vols)."""
    a_n = len(moves)
    out: list[np.ndarray | None] = [None] * a_n

    def get(a: int, depth: int = 0) -> np.ndarray:
        if depth > a_n:
            raise ScenarioError("asset pegs and mappings form a cycle")
        got = out[a]
        if got is not None:
            return got
        mv = moves[a]
        if a in own:
            m = own[a]
        elif mv.kind in ("pegged", "proxy", "mapped"):
            m = get(mv.source, depth + 1)
            if mv.kind == "mapped" and beta and mv.beta != 1.0:
                m = m ** mv.beta
        else:
            m = np.ones(shape)
        if a in depeg and a not in own:
            m = m * depeg[a]
        out[a] = m
        return m

    return np.stack([get(a) for a in range(a_n)], axis=-1)


def _shocked(scenario: FixedShockScenario | HistoricalReplay) -> list[str]:
    """The assets a fixed shock or a replay moves itself."""
    if isinstance(scenario, HistoricalReplay) and scenario.path:
        return sorted({k for d in scenario.path for k in d.shocks})
    return list(scenario.shocks)


def scenario_moves(system: SystemArrays, scenario: AnyScenario,
                   market: MarketModel | None = None) -> dict[str, str]:
    """Asset id → how it moves in a run of ``scenario`` (``market``: a Monte Carlo
    scenario's fitted model), in words (:meth:`Move.describe`), for the run record."""
    if isinstance(scenario, MonteCarloScenario):
        if market is None:
            raise ScenarioError(f"scenario {scenario.name!r} is Monte Carlo: its moves depend "
                                f"on the fitted market model")
        own = set(market_assets(scenario, market, system))
    else:
        own = {resolve_asset(system, k) for k in _shocked(scenario)}
    moves = asset_moves(system, scenario, own)
    return {str(system.asset_ids[a]): m.describe(system) for a, m in enumerate(moves)}


def fixed_shocks(scenario: FixedShockScenario | HistoricalReplay, system: SystemArrays
                 ) -> Shocks:
    """One path: a fixed shock at once, or a replay day by day."""

    def idx(d: dict[str, float]) -> dict[int, float]:
        return {resolve_asset(system, k): v for k, v in d.items()}

    if isinstance(scenario, HistoricalReplay) and scenario.path:
        days = scenario.path
        steps = len(days)
        elapsed = np.array([(d.date - scenario.start).days for d in days], dtype=float)
        keys = _shocked(scenario)
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
    moves = asset_moves(system, scenario, set(own))
    price = _expand(moves, own, depeg, (steps,), beta=True)
    iv = _expand(moves, ivm, {}, (steps,), beta=False)
    push = None
    if isinstance(scenario, FixedShockScenario) and scenario.oracle_pushes:
        push = push_multipliers(system, compile_oracles(system), idx(scenario.oracle_pushes))
    return Shocks(price[None], iv[None], elapsed, push)


def market_assets(scenario: MonteCarloScenario, market: MarketModel, system: SystemArrays
                  ) -> dict[int, int]:
    """Snapshot asset index → market model column of the assets the scenario simulates
    (``scenario.assets``, default all of the market's, that the snapshot holds)."""
    wanted = scenario.assets or market.assets
    out: dict[int, int] = {}
    for j, name in enumerate(market.assets):
        if name not in wanted:
            continue
        try:
            out[resolve_asset(system, name, what="market model asset")] = j
        except ScenarioError:
            continue  # modelled but not held by this ecosystem
    if not out:
        raise ScenarioError(f"none of the market model's assets {list(market.assets)} is an "
                            f"asset of the snapshot")
    return out


def monte_carlo_shocks(scenario: MonteCarloScenario, market: MarketModel, system: SystemArrays,
                       num_paths: int, seed: np.random.SeedSequence) -> Shocks:
    """``num_paths`` paths drawn from ``market`` with ``seed`` (one shard's stream): the
    scenario's horizon simulated period by period through the fitted model, each step
    carrying the sum of its ``periods_per_step`` periods' log returns (so a 10-day step moves
    as ten days do, and ends where ten 1-day steps from the same draws end)."""
    columns = market_assets(scenario, market, system)
    moves = asset_moves(system, scenario, set(columns))
    h = scenario.periods_per_step
    r = simulate_returns(market, num_paths, scenario.steps * h, seed, method=scenario.joint,
                         antithetic=scenario.antithetic)
    if h > 1:
        r = r.reshape(num_paths, scenario.steps, h, r.shape[-1]).sum(axis=2)
    cum = np.cumsum(r, axis=1)
    own_p: dict[int, np.ndarray] = {}
    own_v: dict[int, np.ndarray] = {}
    for a, j in columns.items():
        c = cum[:, :, j]
        own_p[a] = np.exp(c)
        own_v[a] = iv_response(c, down=_IV["down"].default, up=_IV["up"].default,
                               max_multiplier=_IV["max_multiplier"].default)
    shape = (num_paths, scenario.steps)
    elapsed = scenario.horizon_days * np.arange(1, scenario.steps + 1) / scenario.steps
    return Shocks(_expand(moves, own_p, {}, shape, beta=True),
                  _expand(moves, own_v, {}, shape, beta=False), elapsed)
