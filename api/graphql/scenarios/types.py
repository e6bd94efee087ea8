"""GraphQL types of scenario specs (:mod:`simulate.scenarios`), one per kind.

Each exposes its fields typed, and the whole validated spec as ``spec`` (the JSON document
``contagion scenarios --show NAME`` prints), which is also what ``validateScenario`` accepts.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated, Any

import strawberry
from strawberry.scalars import JSON

from simulate.scenarios import (
    FixedShockScenario,
    HistoricalReplay,
    MonteCarloScenario,
)

__all__ = [
    "AssetValue",
    "FieldError",
    "FixedShock",
    "Historical",
    "InvalidScenario",
    "MonteCarlo",
    "ReplayDay",
    "ReplayDepeg",
    "ReplayShock",
    "ReplayVolatility",
    "Scenario",
    "ScenarioInput",
    "ScenarioValidation",
    "Source",
    "ValidScenario",
    "VolatilityModel",
    "scenario_type",
]

AnySpec = MonteCarloScenario | FixedShockScenario | HistoricalReplay


@strawberry.interface(description="A scenario spec of any kind.")
class Scenario:
    name: str
    kind: str = strawberry.field(description="monte-carlo, fixed-shock or historical")
    description: str
    proxy: str | None = strawberry.field(
        description="The asset that assets with no move of their own move as (null: none; "
                    "the spec's mappings map assets one by one).")
    spec: JSON = strawberry.field(description="The whole validated spec as JSON.")


@strawberry.type(description="A value per asset symbol.")
class AssetValue:
    asset: str
    value: float


def _values(d: dict[str, float]) -> list[AssetValue]:
    return [AssetValue(asset=k, value=v) for k, v in d.items()]


@strawberry.type(description="The per-asset volatility model: model, innovation distribution "
                             "and mean.")
class VolatilityModel:
    model: str
    dist: str
    mean: str


@strawberry.type(name="MonteCarloScenario",
                 description="Joint returns drawn from the fitted market model: paths × steps "
                             "over horizonDays, from seed.")
class MonteCarlo(Scenario):
    volatility: VolatilityModel
    joint: str
    frequency: str = strawberry.field(description="daily or hourly: the returns the market "
                                                  "model is fitted on and simulates")
    horizon_days: float
    steps: int
    paths: int
    seed: str = strawberry.field(description="The random seed, in decimal (it may exceed "
                                             "GraphQL's 32-bit Int).")
    antithetic: bool
    assets: list[str]


@strawberry.type(name="FixedShockScenario",
                 description="Shocks applied at once: price changes (-0.35 = down 35%), "
                             "implied-volatility multipliers and depegs (price / peg).")
class FixedShock(Scenario):
    shocks: list[AssetValue]
    iv_multipliers: list[AssetValue]
    depegs: list[AssetValue]


@strawberry.type(description="A peak-to-trough price move, with its source.")
class ReplayShock:
    asset: str
    value: float
    peak: date
    trough: date
    source: str
    note: str


@strawberry.type(description="The lowest price relative to the peg, with its source.")
class ReplayDepeg:
    asset: str
    value: float
    low: date
    source: str
    note: str


@strawberry.type(description="An implied-volatility multiplier IV(high) / IV(base).")
class ReplayVolatility:
    asset: str
    value: float
    base: date
    high: date
    source: str
    note: str


@strawberry.type(description="One day of a replay path, relative to the replay's start.")
class ReplayDay:
    date: date
    shocks: list[AssetValue]
    depegs: list[AssetValue]


@strawberry.type(description="A citation of a replay's magnitudes.")
class Source:
    key: str
    citation: str


@strawberry.type(name="HistoricalReplay",
                 description="A dated stress episode replayed from data, each magnitude sourced.")
class Historical(Scenario):
    start: date
    end: date
    shocks: list[ReplayShock]
    depegs: list[ReplayDepeg]
    iv_multipliers: list[ReplayVolatility]
    path: list[ReplayDay]
    sources: list[Source]


def scenario_type(s: AnySpec) -> Scenario:
    """The GraphQL object of a validated spec."""
    spec: Any = json.loads(s.model_dump_json())
    common = {"name": s.name, "kind": s.kind, "description": s.description, "spec": spec,
              "proxy": s.proxy}
    if isinstance(s, MonteCarloScenario):
        v = s.volatility
        return MonteCarlo(**common, volatility=VolatilityModel(model=v.model, dist=v.dist,
                                                               mean=v.mean),
                          joint=s.joint, frequency=s.frequency,
                          horizon_days=s.horizon_days, steps=s.steps,
                          paths=s.paths, seed=str(s.seed), antithetic=s.antithetic,
                          assets=list(s.assets))
    if isinstance(s, FixedShockScenario):
        return FixedShock(**common, shocks=_values(s.shocks),
                          iv_multipliers=_values(s.iv_multipliers), depegs=_values(s.depegs))
    return Historical(
        **common, start=s.start, end=s.end,
        shocks=[ReplayShock(asset=a, value=x.value, peak=x.peak, trough=x.trough,
                            source=x.source, note=x.note) for a, x in s.shocks.items()],
        depegs=[ReplayDepeg(asset=a, value=x.value, low=x.low, source=x.source, note=x.note)
                for a, x in s.depegs.items()],
        iv_multipliers=[ReplayVolatility(asset=a, value=x.value, base=x.base, high=x.high,
                                         source=x.source, note=x.note)
                        for a, x in s.iv_multipliers.items()],
        path=[ReplayDay(date=d.date, shocks=_values(d.shocks), depegs=_values(d.depegs))
              for d in s.path],
        sources=[Source(key=k, citation=c) for k, c in s.sources.items()])


# -- validation -----------------------------------------------------------------------------


@strawberry.input(one_of=True,
                  description="A scenario: a library scenario by name, or a spec (the JSON form "
                              "of a scenario file, as the command line reads it).")
class ScenarioInput:
    library: str | None = strawberry.UNSET
    spec: JSON | None = strawberry.UNSET


@strawberry.type(description="One problem of a scenario input: the field as a path into the "
                             "spec (shocks.ETH, path[2].date; 'library' for a name; null for "
                             "the spec as a whole) and what is wrong with it.")
class FieldError:
    field: str | None
    message: str


@strawberry.type(description="The input is a valid scenario; here it is, normalised.")
class ValidScenario:
    scenario: Scenario


@strawberry.type(description="The input is not a valid scenario; every problem is listed.")
class InvalidScenario:
    errors: list[FieldError]


ScenarioValidation = Annotated[ValidScenario | InvalidScenario,
                               strawberry.union("ScenarioValidation")]
