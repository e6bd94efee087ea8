"""The scenario vocabulary: one validated spec shared by the CLI and the API
(docs/architecture.md §4.1).

Three kinds, told apart by the field ``kind``:

- :class:`MonteCarloScenario` (``monte-carlo``): joint returns drawn from the fitted market model
  (per-asset volatility :class:`~simulate.market.volatility.VolSpec`, joined by filtered
  historical simulation or a t-copula) over ``horizon_days`` in ``steps`` steps, ``paths``
  paths from ``seed``, optionally antithetic.
- :class:`FixedShockScenario` (``fixed-shock``): given per-asset price shocks (a fraction:
  ``-0.35`` is a 35% fall), implied-volatility multipliers and depegs (price relative to the
  peg, in ``(0, 1]``).
- :class:`HistoricalReplay` (``historical``): a dated episode with peak-to-trough shocks,
  worst depegs and volatility multipliers, each with its source, and the day-by-day path
  where the data gives one. :meth:`HistoricalReplay.as_fixed_shock` is its worst point as a
  fixed shock.

Every model is frozen and rejects unknown fields. Validation messages name the field in
domain language (``"shocks.ETH must be > -1 (got -1.2)"``); :func:`scenario_from_dict` turns
pydantic's errors into one :class:`ScenarioError` listing them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from graph.errors import ContagionError
from simulate.market.volatility import VolSpec

__all__ = [
    "AssetMapping",
    "FixedShockScenario",
    "HistoricalReplay",
    "MonteCarloScenario",
    "ReplayDay",
    "ReplayDepeg",
    "ReplayShock",
    "ReplayVolatility",
    "Scenario",
    "ScenarioError",
    "ScenarioProblem",
    "scenario_from_dict",
]

_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")


@dataclass(frozen=True)
class ScenarioProblem:
    """One problem of a scenario spec: the field it concerns as a path into the spec
    (``shocks.ETH``, ``path[2].date``; empty for the spec as a whole) and the message."""

    field: str
    message: str


class ScenarioError(ContagionError, ValueError):
    """A scenario spec that is malformed, invalid or not found; ``problems`` lists each
    problem with its field."""

    def __init__(self, message: str, problems: Sequence[ScenarioProblem] = ()) -> None:
        super().__init__(message)
        self.problems = list(problems) or [ScenarioProblem("", message)]


# --- shared checks -----------------------------------------------------------------------------


def _check_name(v: str) -> str:
    if not _NAME.match(v):
        raise ValueError(f"name must be lowercase letters, digits and '-' (got {v!r})")
    return v


def _check_shock(field: str, v: float) -> float:
    if not math.isfinite(v) or v <= -1:
        raise ValueError(f"{field} must be > -1 (got {v})")
    return v


def _check_multiplier(field: str, v: float) -> float:
    if not math.isfinite(v) or v <= 0:
        raise ValueError(f"{field} must be > 0 (got {v})")
    return v


def _check_depeg(field: str, v: float) -> float:
    if not math.isfinite(v) or not 0 < v <= 1:
        raise ValueError(f"{field} must be in (0, 1] (got {v})")
    return v


def _check_assets(field: str, d: dict[str, Any]) -> None:
    for k in d:
        if not k or k != k.strip():
            raise ValueError(f"{field} has an empty or padded asset symbol ({k!r})")


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _Named(_Spec):
    name: str
    description: str = ""

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return _check_name(v)


# --- Monte Carlo -------------------------------------------------------------------------------


class AssetMapping(_Spec):
    """How an asset the scenario does not move itself moves: ``beta`` times the log move of
    ``factor`` (an asset id or symbol of the snapshot): a price multiplier ``m`` of the factor
    becomes ``m**beta``. ``beta: estimate`` (Monte Carlo runs only) estimates it by least
    squares on the returns where the asset's own price history overlaps the factor's; the
    run record states the estimate."""

    factor: str = Field(min_length=1)
    beta: float | Literal["estimate"] = 1.0

    @field_validator("beta")
    @classmethod
    def _beta(cls, v: float | str) -> float | str:
        if isinstance(v, float | int) and not math.isfinite(v):
            raise ValueError(f"beta must be finite (got {v})")
        return v


class _Moves(_Named):
    """What every scenario kind says about the assets it does not move itself.

    ``mappings[a]``: asset ``a`` moves as its factor does, to the power ``beta``
    (:class:`AssetMapping`); ``proxy``: every other asset that needs a move (not moved by the
    scenario or its market model, not pegged to an asset that moves, not a stablecoin) moves
    as this asset. Neither is assumed: without them such assets stay at their snapshot
    prices in fixed shocks and replays (the run record lists them), and a Monte Carlo run is
    refused.
    """

    proxy: str | None = None
    mappings: dict[str, AssetMapping] = {}

    @field_validator("proxy")
    @classmethod
    def _proxy(cls, v: str | None) -> str | None:
        if v is not None and (not v or v != v.strip()):
            raise ValueError(f"proxy must be an asset id or symbol (got {v!r})")
        return v

    @field_validator("mappings")
    @classmethod
    def _mappings(cls, d: dict[str, AssetMapping]) -> dict[str, AssetMapping]:
        _check_assets("mappings", d)
        for k, m in d.items():
            if m.factor == k:
                raise ValueError(f"mappings.{k}.factor: an asset cannot follow itself")
        return d


class MonteCarloScenario(_Moves):
    """Joint returns from the fitted market model.

    The market model is fitted on returns at ``frequency`` (``daily`` or ``hourly``) and
    ``horizon_days`` is split into ``steps`` equal steps of :attr:`periods_per_step` periods
    each, a whole number: the simulation draws every period's return per path and asset from
    ``seed``, through the fitted model period by period, and a step carries the sum of its
    periods' log returns (``[paths, steps, num_assets]``). ``antithetic`` pairs each draw
    with its mirror (so ``paths`` must be even). ``assets`` restricts the simulated assets
    (empty: every asset with a price history).
    """

    kind: Literal["monte-carlo"] = "monte-carlo"
    volatility: VolSpec = VolSpec()
    joint: Literal["fhs", "t-copula"] = "fhs"
    frequency: Literal["daily", "hourly"] = "daily"
    horizon_days: float = Field(gt=0, le=3650)
    steps: int = Field(gt=0, le=100_000)
    paths: int = Field(gt=0, le=100_000_000)
    seed: int = Field(ge=0)
    antithetic: bool = False
    assets: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _pairs(self) -> MonteCarloScenario:
        if self.antithetic and self.paths % 2:
            raise ValueError(f"paths must be even when antithetic is true (got {self.paths})")
        per_day = 24 if self.frequency == "hourly" else 1
        per_step = self.horizon_days * per_day / self.steps
        if per_step < 1 or abs(per_step - round(per_step)) > 1e-9:
            unit = "hours" if per_day == 24 else "days"
            raise ValueError(
                f"horizon_days must make a whole number of {unit} per step, at least one (the "
                f"market model is fitted on {self.frequency} returns) (got horizon_days "
                f"{self.horizon_days:g} in {self.steps} steps: {per_step:.4g} {unit} a step)")
        return self

    @property
    def periods_per_step(self) -> int:
        """The periods (days or hours, by ``frequency``) of returns each step carries."""
        per_day = 24 if self.frequency == "hourly" else 1
        return round(self.horizon_days * per_day / self.steps)


# --- fixed shocks ------------------------------------------------------------------------------


class FixedShockScenario(_Moves):
    """Shocks applied at once.

    ``shocks[a]``: price change of asset ``a`` as a fraction, > -1 (``-0.35``: down 35%).
    ``iv_multipliers[a]``: implied volatility of options on ``a`` is multiplied by this, > 0.
    ``depegs[a]``: price of ``a`` relative to its peg, in (0, 1] (``0.93``: stETH at 0.93 ETH).
    ``oracle_pushes[a]``: an attacker holds the price of the pool that ``a``'s TWAP oracle
    reads at ``(1 + value)`` times the market from the first round, > -1 and not 0 (``0.5``:
    up 50%); the market price does not move, the cost is computed from the pool's reserves
    (``simulate.cascade.oracles.push_cost``) and reported in the run's inputs.
    """

    kind: Literal["fixed-shock"] = "fixed-shock"
    shocks: dict[str, float] = {}
    iv_multipliers: dict[str, float] = {}
    depegs: dict[str, float] = {}
    oracle_pushes: dict[str, float] = {}

    @field_validator("shocks")
    @classmethod
    def _shocks(cls, d: dict[str, float]) -> dict[str, float]:
        _check_assets("shocks", d)
        return {k: _check_shock(f"shocks.{k}", v) for k, v in d.items()}

    @field_validator("iv_multipliers")
    @classmethod
    def _ivs(cls, d: dict[str, float]) -> dict[str, float]:
        _check_assets("iv_multipliers", d)
        return {k: _check_multiplier(f"iv_multipliers.{k}", v) for k, v in d.items()}

    @field_validator("depegs")
    @classmethod
    def _depegs(cls, d: dict[str, float]) -> dict[str, float]:
        _check_assets("depegs", d)
        return {k: _check_depeg(f"depegs.{k}", v) for k, v in d.items()}

    @field_validator("oracle_pushes")
    @classmethod
    def _pushes(cls, d: dict[str, float]) -> dict[str, float]:
        _check_assets("oracle_pushes", d)
        for k, v in d.items():
            _check_shock(f"oracle_pushes.{k}", v)
            if v == 0:
                raise ValueError(f"oracle_pushes.{k} must not be 0 (got {v})")
        return d

    @model_validator(mode="after")
    def _something(self) -> FixedShockScenario:
        if not (self.shocks or self.iv_multipliers or self.depegs or self.oracle_pushes):
            raise ValueError("a fixed-shock scenario needs at least one of shocks, "
                             "iv_multipliers, depegs, oracle_pushes")
        both = sorted(set(self.mappings) & set(self.shocks))
        if both:
            raise ValueError(f"mappings.{both[0]}: {both[0]} is shocked by the scenario itself")
        return self


# --- historical replays ------------------------------------------------------------------------


class ReplayShock(_Spec):
    """A peak-to-trough price move: ``value = p(trough) / p(peak) - 1`` (> -1)."""

    value: float
    peak: date
    trough: date
    source: str
    note: str = ""


class ReplayDepeg(_Spec):
    """The lowest price relative to the peg, in (0, 1], reached on ``low``."""

    value: float
    low: date
    source: str
    note: str = ""


class ReplayVolatility(_Spec):
    """An implied-volatility multiplier: ``value = IV(high) / IV(base)`` (> 0)."""

    value: float
    base: date
    high: date
    source: str
    note: str = ""


class ReplayDay(_Spec):
    """One day of a replay path.

    ``shocks[a]``: price of ``a`` on ``date`` relative to the replay's ``start``, minus 1.
    ``depegs[a]``: the day's lowest price of ``a`` relative to its peg.
    """

    date: date
    shocks: dict[str, float] = {}
    depegs: dict[str, float] = {}


class HistoricalReplay(_Moves):
    """A dated stress episode replayed from data, every magnitude with its source.

    ``sources`` maps a short key to a citation; each magnitude's ``source`` must be one of the
    keys. ``path`` is the day-by-day move from ``start`` (empty if no daily data).
    """

    kind: Literal["historical"] = "historical"
    start: date
    end: date
    shocks: dict[str, ReplayShock] = {}
    depegs: dict[str, ReplayDepeg] = {}
    iv_multipliers: dict[str, ReplayVolatility] = {}
    path: tuple[ReplayDay, ...] = ()
    sources: dict[str, str]

    @model_validator(mode="after")
    def _consistent(self) -> HistoricalReplay:
        if self.end <= self.start:
            raise ValueError(f"end must be after start (got start {self.start}, end {self.end})")
        if not (self.shocks or self.depegs or self.iv_multipliers):
            raise ValueError("a historical replay needs at least one of shocks, depegs, "
                             "iv_multipliers")
        known = ", ".join(sorted(self.sources)) or "none"

        def within(field: str, d: date) -> None:
            if not self.start <= d <= self.end:
                raise ValueError(f"{field} must be within {self.start} .. {self.end} (got {d})")

        def cited(field: str, key: str) -> None:
            if key not in self.sources:
                raise ValueError(f"{field}.source must be a key of sources ({known}) "
                                 f"(got {key!r})")

        for a, s in self.shocks.items():
            _check_shock(f"shocks.{a}.value", s.value)
            within(f"shocks.{a}.peak", s.peak)
            within(f"shocks.{a}.trough", s.trough)
            if s.trough < s.peak:
                raise ValueError(f"shocks.{a}.trough must not precede peak "
                                 f"(got peak {s.peak}, trough {s.trough})")
            cited(f"shocks.{a}", s.source)
        for a, p in self.depegs.items():
            _check_depeg(f"depegs.{a}.value", p.value)
            within(f"depegs.{a}.low", p.low)
            cited(f"depegs.{a}", p.source)
        for a, v in self.iv_multipliers.items():
            _check_multiplier(f"iv_multipliers.{a}.value", v.value)
            within(f"iv_multipliers.{a}.base", v.base)
            within(f"iv_multipliers.{a}.high", v.high)
            cited(f"iv_multipliers.{a}", v.source)
        previous: date | None = None
        for i, day in enumerate(self.path):
            within(f"path[{i}].date", day.date)
            if previous is not None and day.date <= previous:
                raise ValueError(f"path[{i}].date must be after {previous} (got {day.date})")
            previous = day.date
            for a, x in day.shocks.items():
                _check_shock(f"path[{i}].shocks.{a}", x)
            for a, x in day.depegs.items():
                _check_depeg(f"path[{i}].depegs.{a}", x)
        return self

    def as_fixed_shock(self) -> FixedShockScenario:
        """The episode's worst point (peak-to-trough shocks, lowest depegs, IV multipliers)."""
        return FixedShockScenario(
            name=self.name, description=self.description,
            shocks={a: s.value for a, s in self.shocks.items()},
            iv_multipliers={a: v.value for a, v in self.iv_multipliers.items()},
            depegs={a: p.value for a, p in self.depegs.items()},
            proxy=self.proxy, mappings=self.mappings,
        )


Scenario = Annotated[MonteCarloScenario | FixedShockScenario | HistoricalReplay,
                     Field(discriminator="kind")]

_ADAPTER: TypeAdapter[MonteCarloScenario | FixedShockScenario | HistoricalReplay] = (
    TypeAdapter(Scenario))
_KINDS = ("monte-carlo", "fixed-shock", "historical")


def _field(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for p in loc:
        if isinstance(p, int):
            parts.append(f"[{p}]")
        else:
            parts.append(("." if parts else "") + p)
    return "".join(parts) or "scenario"


def _message(e: ErrorDetails) -> str:
    """One pydantic error in the house language, naming the field."""
    loc = e["loc"][1:] if e["loc"] and e["loc"][0] in _KINDS else e["loc"]
    field, kind, ctx, got = _field(loc), e["type"], e.get("ctx", {}), e.get("input")
    if kind == "value_error":
        msg = str(ctx.get("error", e["msg"]))
        return msg if loc == () or msg.startswith(field.split(".")[0]) else f"{field}: {msg}"
    if kind == "missing":
        return f"{field} is required"
    if kind == "extra_forbidden":
        return f"{field} is not a scenario field"
    if kind == "union_tag_not_found":
        return f"kind is required (one of {', '.join(_KINDS)})"
    if kind == "union_tag_invalid":
        return f"kind must be one of {', '.join(_KINDS)} (got {ctx.get('tag')!r})"
    bounds = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<",
              "less_than_equal": "<="}
    if kind in bounds:
        limit = next(iter(ctx.values()))
        return f"{field} must be {bounds[kind]} {limit:g} (got {got})"
    if kind == "literal_error":
        return f"{field} must be one of {ctx.get('expected')} (got {got!r})"
    return f"{field}: {e['msg'].lower()} (got {got!r})"


_SPEC_FIELDS = frozenset(f for m in (MonteCarloScenario, FixedShockScenario, HistoricalReplay)
                         for f in m.model_fields)


def _problem(e: ErrorDetails) -> ScenarioProblem:
    """One pydantic error as a :class:`ScenarioProblem`: the field is the error's location,
    or the longer path its message starts with (``shocks.ETH must be > -1``), or for a check
    of the whole model the field its message names first (``end must be after start``)."""
    message = _message(e)
    loc = e["loc"][1:] if e["loc"] and e["loc"][0] in _KINDS else e["loc"]
    field = _field(loc) if loc else ""
    token = message.split(" ", 1)[0]
    head = re.split(r"[.\[]", token, maxsplit=1)[0]
    if (token.startswith(field) if field else head in _SPEC_FIELDS):
        field = token if (not field or token[len(field):len(field) + 1] in ("", ".", "[")
                          ) else field
    return ScenarioProblem(field, message)


def scenario_from_dict(data: Any, *, origin: str = "") -> (
        MonteCarloScenario | FixedShockScenario | HistoricalReplay):
    """Validate a mapping (parsed YAML or JSON) as a :data:`Scenario`.

    Raises :class:`ScenarioError` with every problem on one line, prefixed by ``origin`` (a
    file name or library name) when given::

        >>> scenario_from_dict({"kind": "fixed-shock", "name": "x", "shocks": {"ETH": -1.2}})
        Traceback (most recent call last):
        ...
        simulate.scenarios.models.ScenarioError: shocks.ETH must be > -1 (got -1.2)
    """
    if not isinstance(data, dict):
        raise ScenarioError(f"{origin + ': ' if origin else ''}a scenario must be a mapping "
                            f"(got {type(data).__name__})")
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as err:
        problems = list(dict.fromkeys(_problem(e) for e in err.errors()))
        msgs = list(dict.fromkeys(p.message for p in problems))
        raise ScenarioError((f"{origin}: " if origin else "") + "; ".join(msgs),
                            problems) from None
