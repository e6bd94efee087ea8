"""The one run pipeline: a validated run request in, a persisted run out.

``contagion simulate``, the API's run workers and ``contagion demo`` all run a scenario through
:func:`execute_run`; they only turn their own arguments into a :class:`RunRequest`. The steps:

1. read the snapshot (a snapshot directory, a store by URI, or a snapshot the caller holds);
   ``proxy_asset``, when given, replaces the scenario's ``proxy``;
2. for a Monte Carlo scenario, read the closes at the scenario's ``frequency`` (daily or
   hourly) of each ``ASSET=FILE`` price history, and of each ``prices/ASSET.csv`` of a
   snapshot directory not given on the request, keep the last ``history_days`` days of their
   union and fit on them the market model with the scenario's own ``volatility`` spec (model,
   innovation distribution, mean), every fit guarded
   (:func:`simulate.market.volatility.fit_volatility`); a history of an asset the snapshot
   holds as a stablecoin fits a peg with depeg jumps instead
   (:func:`simulate.market.peg.fit_peg_model`); a mapping with ``beta: estimate`` takes the
   least-squares beta of the asset's returns on its factor's where both have one;
3. compile the snapshot and run the cascade (:func:`simulate.cascade.run.run_cascade`): every
   asset moves by a stated rule (:mod:`simulate.cascade.scenario`), an asset of a Monte Carlo
   run with no history and no mapping is refused;
4. record what was used (the snapshot source; how each asset moved; each price file with its
   SHA-256 and its missing values and periods, the window fitted on, the volatility model and
   per asset its fitted parameters and guards, pegs and betas) in the result's ``inputs``
   and, given ``out``, save it.

Everything a request names reaches the run or is refused: price histories for a scenario that
draws nothing, ``paths`` or ``seed`` for a one-path scenario, rounds below the scenario's steps
(:func:`simulate.cascade.run.run_problems`) are errors, never silently dropped.

>>> PriceHistory.parse("ETH=eth.csv")
PriceHistory(asset='ETH', path=PosixPath('eth.csv'))
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, Self

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from graph.errors import ContagionError
from graph.export import SystemArrays, compile_system
from graph.snapshot import Snapshot
from graph.store import open_store
from graph.vocab import AssetKind
from simulate.cascade.params import MAX_ROUNDS, CascadeParams
from simulate.cascade.run import RunResult, run_cascade, run_problems
from simulate.cascade.scenario import resolve_asset
from simulate.market import MarketModel, VolSpec, fit_market_model
from simulate.market.peg import fit_peg_model
from simulate.market.surface import load_surface
from simulate.prices import Frequency, log_returns, periods_per_day, read_closes
from simulate.scenarios import AssetMapping, MonteCarloScenario, Scenario, ScenarioError

__all__ = [
    "PipelineError",
    "PriceHistory",
    "RunRequest",
    "StageProgress",
    "SurfaceFile",
    "execute_run",
    "fit_market",
    "parse_price_histories",
]

#: fewest overlapping returns an estimated beta is fitted on
MIN_OVERLAP = 30

#: ``progress(stage, done, total)``: the step under way ("reading the snapshot", "fitting the
#: market model", "simulating") and, while simulating, paths done out of the run's paths.
StageProgress = Callable[[str, int, int], None]


class PipelineError(ContagionError, ValueError):
    """A run request that cannot be executed (the message says which input and why)."""


class PriceHistory(BaseModel):
    """One price history for the market model: the asset it prices and the CSV file
    (any layout :func:`simulate.prices.read_daily_closes` reads)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    asset: str = Field(min_length=1)
    path: Path

    @classmethod
    def parse(cls, item: str) -> PriceHistory:
        """``ASSET=FILE`` (as the command line and ``contagion serve --prices`` take it)."""
        asset, path = _asset_file(item, "a price history", "ASSET")
        return cls(asset=asset, path=path)


class SurfaceFile(BaseModel):
    """An implied-volatility surface for the options on ``underlying`` (an asset id or
    symbol of the snapshot): a JSON file written by ``contagion surface``
    (:func:`simulate.market.surface.load_surface` reads it)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    underlying: str = Field(min_length=1)
    path: Path

    @classmethod
    def parse(cls, item: str) -> SurfaceFile:
        """``UNDERLYING=FILE``, as ``contagion simulate --surface`` takes it.

        >>> SurfaceFile.parse("BTC=btc-surface.json").underlying
        'BTC'
        """
        underlying, path = _asset_file(item, "a surface", "UNDERLYING")
        return cls(underlying=underlying, path=path)


def _asset_file(item: str, what: str, key: str) -> tuple[str, Path]:
    name, sep, file = item.partition("=")
    if not sep or not name.strip() or not file.strip():
        raise PipelineError(f"{what} must look like {key}=FILE (got {item!r})")
    return name.strip(), Path(file.strip())


def parse_price_histories(items: Sequence[str]) -> tuple[PriceHistory, ...]:
    """Every ``ASSET=FILE`` of ``items``; an asset given twice is an error.

    >>> [h.asset for h in parse_price_histories(["ETH=eth.csv", "BTC=btc.csv"])]
    ['ETH', 'BTC']
    >>> parse_price_histories(["ETH=a.csv", "ETH=b.csv"])
    Traceback (most recent call last):
    ...
    simulate.pipeline.PipelineError: price history for 'ETH' given twice (a.csv, b.csv)
    """
    out: dict[str, PriceHistory] = {}
    for item in items:
        h = PriceHistory.parse(item)
        if h.asset in out:
            raise PipelineError(f"price history for {h.asset!r} given twice "
                                f"({out[h.asset].path}, {h.path})")
        out[h.asset] = h
    return tuple(out.values())


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _beta(asset: str, factor: str, r_a: pd.Series, r_f: pd.Series) -> dict[str, Any]:
    """Least-squares beta of ``r_a`` on ``r_f`` where both have a return."""
    both = pd.concat({"a": r_a, "f": r_f}, axis=1).dropna()
    if len(both) < MIN_OVERLAP:
        raise PipelineError(f"mappings.{asset}.beta: estimating it needs at least "
                            f"{MIN_OVERLAP} returns where {asset}'s history overlaps "
                            f"{factor}'s (got {len(both)})")
    a, f = both["a"].to_numpy(), both["f"].to_numpy()
    var_f = float(np.var(f))
    if var_f == 0.0:
        raise PipelineError(f"mappings.{asset}.beta: {factor}'s returns do not vary")
    beta = float(np.cov(a, f, bias=True)[0, 1] / var_f)
    resid = a - beta * f
    r2 = 1.0 - float(np.var(resid)) / float(np.var(a)) if np.var(a) > 0 else 0.0
    return {"factor": factor, "beta": beta, "returns": len(both), "r2": r2,
            "residual_sd": float(np.std(resid)),
            "from": both.index[0].isoformat(), "to": both.index[-1].isoformat()}


def fit_market(prices: Sequence[PriceHistory], history_days: int,
               volatility: VolSpec | None = None, *, frequency: Frequency = "daily",
               pegged: Collection[str] = (),
               estimate: Mapping[str, str] | None = None,
               ) -> tuple[MarketModel, dict[str, Any]]:
    """The market model with ``volatility`` (default :class:`VolSpec`'s) fitted at
    ``frequency`` on the last ``history_days`` days of the union of the histories' closes,
    and the record of what was fitted.

    ``pegged``: assets modelled as a peg with depeg jumps fitted on their history
    (:func:`simulate.market.peg.fit_peg_model`) instead of a volatility model (stablecoins).
    ``estimate[a] = f``: asset ``a``'s history is not modelled itself; it estimates the beta
    of ``a`` to the modelled asset ``f`` (``record["betas"][a]``).

    The record: per file its asset, path, SHA-256 and what it held (closes, missing values
    and periods); the window (first and last period, periods); the volatility model and, per
    asset, its fitted parameters (arch's names, returns in percent), observations,
    log-likelihood and the fit's guards (persistence, bound applied); per pegged asset its
    fitted peg model; per estimated beta its value and fit.
    """
    if not prices:
        raise PipelineError("fitting the market model needs at least one price history "
                            "(ASSET=FILE)")
    if history_days < 2:
        raise PipelineError(f"history_days must be at least 2 (got {history_days})")
    estimate = dict(estimate or {})
    read = {h.asset: read_closes(h.path, h.asset, frequency) for h in prices}
    for a, f in estimate.items():
        if a not in read:
            raise PipelineError(f"mappings.{a}.beta is 'estimate': it needs a price history "
                                f"of {a} (ASSET=FILE)")
        if f not in read or f in estimate:
            raise PipelineError(f"mappings.{a}.factor: the beta is estimated against a "
                                f"modelled asset with a price history ({f!r} has none)")
    periods = history_days * periods_per_day(frequency)
    modelled = {a: c.series for a, c in read.items() if a not in estimate}
    frame = pd.concat(modelled, axis=1, sort=True).sort_index().iloc[-periods:]
    record: dict[str, Any] = {
        "prices": [{"asset": h.asset, "path": str(h.path), "sha256": _sha256(h.path),
                    **read[h.asset].summary()} for h in prices],
        "frequency": frequency,
        "history_days": history_days,
        "fitted_from": frame.index[0].isoformat(),
        "fitted_to": frame.index[-1].isoformat(),
        "periods": len(frame),
    }
    pegs = {}
    for a in pegged:
        if a in modelled:
            pegs[a] = fit_peg_model(frame[a].dropna(), asset=a)
    market = fit_market_model(frame, volatility, {a: p.model for a, p in pegs.items()},
                              frequency=frequency)
    record["volatility"] = (volatility or VolSpec()).model_dump(mode="json")
    record["fitted"] = {a: {"params": v.params, "nobs": v.nobs,
                            "loglikelihood": v.loglikelihood,
                            "diagnostics": (None if v.diagnostics is None
                                            else v.diagnostics.model_dump(mode="json"))}
                        for a, v in market.volatility.items()}
    if pegs:
        record["pegged"] = {a: p.model_dump(mode="json") for a, p in pegs.items()}
    if estimate:
        returns = {a: log_returns(c.series, frequency) for a, c in read.items()}
        start = frame.index[0]
        record["betas"] = {a: _beta(a, f, returns[a].loc[start:], returns[f].loc[start:])
                           for a, f in estimate.items()}
    return market, record


class RunRequest(BaseModel):
    """One scenario run, validated: where the snapshot comes from, the scenario, the Monte
    Carlo settings (``paths`` and ``seed`` default to the scenario's), the market model's
    price histories, ``proxy_asset``, which replaces the scenario's ``proxy`` (the run
    record's scenario shows the one used), and implied-volatility ``surfaces`` (each option on
    their underlyings is marked at its own strike and expiry).

    The snapshot comes from exactly one of ``store`` (a store URI), ``snapshot_dir`` (a
    snapshot directory) or the ``snapshot`` handed to :func:`execute_run`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    scenario: Scenario
    store: str | None = None
    snapshot_dir: Path | None = None
    paths: int | None = None
    seed: int | None = None
    rounds: int = Field(default=24, ge=1, le=MAX_ROUNDS)
    prices: tuple[PriceHistory, ...] = ()
    history_days: int = Field(default=1460, ge=2)
    proxy_asset: str | None = Field(default=None, min_length=1)
    surfaces: tuple[SurfaceFile, ...] = ()
    shard_paths: int = Field(default=1000, gt=0)
    kernel: Literal["fast", "reference"] = "fast"
    ray_address: str | None = None

    @model_validator(mode="after")
    def _runnable(self) -> Self:
        if self.store is not None and self.snapshot_dir is not None:
            raise ValueError("give one snapshot source: store or snapshot_dir, not both")
        problems = run_problems(self.scenario, paths=self.paths, seed=self.seed,
                                rounds=self.rounds, shard_paths=self.shard_paths)
        mc = isinstance(self.scenario, MonteCarloScenario)
        if mc and not self.prices:
            problems.append(("prices", f"scenario {self.scenario.name!r} is Monte Carlo: "
                                       f"the market model needs price histories (ASSET=FILE)"))
        if not mc and self.prices:
            problems.append(("prices", f"price histories apply to Monte Carlo scenarios "
                                       f"only ({self.scenario.name!r} is "
                                       f"{self.scenario.kind}, which draws no returns)"))
        seen = [s.underlying for s in self.surfaces]
        twice = sorted({u for u in seen if seen.count(u) > 1})
        if twice:
            problems.append(("surfaces", f"surface for {twice[0]!r} given twice"))
        if problems:
            raise ValueError("; ".join(m for _, m in problems))
        return self

    @property
    def run_paths(self) -> int:
        """The paths the run executes (the scenario's unless given; one without draws)."""
        if isinstance(self.scenario, MonteCarloScenario):
            return self.paths or self.scenario.paths
        return 1

    @property
    def run_seed(self) -> int:
        """The seed the run draws from (the scenario's unless given; 0 without draws)."""
        if isinstance(self.scenario, MonteCarloScenario):
            return self.scenario.seed if self.seed is None else self.seed
        return 0


def _snapshot_prices(directory: Path | None, given: Sequence[PriceHistory]
                     ) -> tuple[PriceHistory, ...]:
    """The price files of a snapshot directory's ``prices/`` folder (``ASSET.csv``), for the
    assets not given on the request."""
    folder = None if directory is None else directory / "prices"
    if folder is None or not folder.is_dir():
        return ()
    have = {h.asset for h in given}
    return tuple(PriceHistory(asset=f.stem, path=f) for f in sorted(folder.glob("*.csv"))
                 if f.stem not in have)


def _stablecoins(system: SystemArrays, prices: Sequence[PriceHistory]) -> list[str]:
    """The histories' assets the snapshot holds as stablecoins (modelled as pegs)."""
    stable = list(AssetKind).index(AssetKind.STABLE)
    out = []
    for h in prices:
        try:
            a = resolve_asset(system, h.asset)
        except ScenarioError:
            continue  # not held by the snapshot: modelled as the history says
        if system.asset_kind[a] == stable:
            out.append(h.asset)
    return out


def execute_run(request: RunRequest, *, snapshot: Snapshot | None = None,
                out: str | Path | None = None,
                progress: StageProgress | None = None) -> RunResult:
    """Run ``request`` (see the module doc); ``snapshot`` when the request names no source.

    ``out`` saves the result there (:meth:`RunResult.save`). ``progress`` is told each step
    and, while simulating, the paths done; an exception it raises stops the run (how a
    worker cancels).
    """
    given = [x is not None for x in (request.store, request.snapshot_dir, snapshot)]
    if sum(given) != 1:
        raise PipelineError("a run needs exactly one snapshot source: a store URI, a "
                            "snapshot directory, or a snapshot in hand")
    total = request.run_paths

    def stage(name: str) -> None:
        if progress is not None:
            progress(name, 0, total)

    stage("reading the snapshot")
    if request.store is not None:
        with open_store(request.store) as s:
            snapshot = s.read_snapshot()
        source: dict[str, Any] = {"store": request.store}
    elif request.snapshot_dir is not None:
        snapshot = Snapshot.load(request.snapshot_dir)
        source = {"snapshot_dir": str(request.snapshot_dir)}
    else:
        source = {"snapshot": "given"}
    assert snapshot is not None
    system = compile_system(snapshot)
    scenario = request.scenario
    if request.proxy_asset is not None:
        scenario = scenario.model_copy(update={"proxy": request.proxy_asset})
    market, fitted = None, None
    if isinstance(scenario, MonteCarloScenario):
        stage("fitting the market model")
        prices = (*request.prices, *_snapshot_prices(request.snapshot_dir, request.prices))
        estimate = {k: m.factor for k, m in scenario.mappings.items() if m.beta == "estimate"}
        market, fitted = fit_market(prices, request.history_days, scenario.volatility,
                                    frequency=scenario.frequency,
                                    pegged=_stablecoins(system, prices), estimate=estimate)
        if estimate:
            scenario = scenario.model_copy(update={"mappings": {
                k: AssetMapping(factor=m.factor, beta=fitted["betas"][k]["beta"])
                if m.beta == "estimate" else m for k, m in scenario.mappings.items()}})
    surfaces = {s.underlying: load_surface(s.path) for s in request.surfaces}
    stage("simulating")
    result = run_cascade(
        system, scenario, snapshot=snapshot.manifest.model_dump(mode="json"),
        market=market, paths=request.paths, seed=request.seed,
        params=CascadeParams(rounds=request.rounds), shard_paths=request.shard_paths,
        kernel=request.kernel, ray_address=request.ray_address,
        progress=None if progress is None else lambda d, t: progress("simulating", d, t),
        surfaces=surfaces or None)
    result.inputs.update(source)
    if request.surfaces:
        result.inputs["surfaces"] = [{"underlying": s.underlying, "path": str(s.path),
                                      "sha256": _sha256(s.path)} for s in request.surfaces]
    if fitted is not None:
        result.inputs["market"] = fitted
    if out is not None:
        result.save(out)
    return result
