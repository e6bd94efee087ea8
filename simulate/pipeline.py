"""The one run pipeline: a validated run request in, a persisted run out.

``contagion simulate``, the API's run workers and ``contagion demo`` all run a scenario through
:func:`execute_run`; they only turn their own arguments into a :class:`RunRequest`. The steps:

1. read the snapshot (a snapshot directory, a store by URI, or a snapshot the caller holds);
2. for a Monte Carlo scenario, read the daily closes of each ``ASSET=FILE`` price history,
   keep the last ``history_days`` dates of their union and fit on them the market model with
   the scenario's own ``volatility`` spec (model, innovation distribution, mean);
3. compile the snapshot and run the cascade (:func:`simulate.cascade.run.run_cascade`);
4. record what was used (the snapshot source; each price file with its SHA-256, the dates
   fitted on, the volatility model and its fitted parameters per asset) in the result's
   ``inputs`` and, given ``out``, save it.

Everything a request names reaches the run or is refused: price histories for a scenario that
draws nothing, ``paths`` or ``seed`` for a one-path scenario, rounds below the scenario's steps
(:func:`simulate.cascade.run.run_problems`) are errors, never silently dropped.

>>> PriceHistory.parse("ETH=eth.csv")
PriceHistory(asset='ETH', path=PosixPath('eth.csv'))
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal, Self

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from graph.errors import ContagionError
from graph.export import compile_system
from graph.snapshot import Snapshot
from graph.store import open_store
from simulate.cascade.params import MAX_ROUNDS, CascadeParams
from simulate.cascade.run import RunResult, run_cascade, run_problems
from simulate.market import MarketModel, VolSpec, fit_market_model
from simulate.prices import read_daily_closes
from simulate.scenarios import MonteCarloScenario, Scenario

__all__ = [
    "PipelineError",
    "PriceHistory",
    "RunRequest",
    "StageProgress",
    "execute_run",
    "fit_market",
    "parse_price_histories",
]

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
        asset, sep, file = item.partition("=")
        if not sep or not asset.strip() or not file.strip():
            raise PipelineError(f"a price history must look like ASSET=FILE (got {item!r})")
        return cls(asset=asset.strip(), path=Path(file.strip()))


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


def fit_market(prices: Sequence[PriceHistory], history_days: int,
               volatility: VolSpec | None = None) -> tuple[MarketModel, dict[str, Any]]:
    """The market model with ``volatility`` (default :class:`VolSpec`'s) fitted on the last
    ``history_days`` dates of the union of the histories' daily closes, and the record of
    what was fitted: per file its asset, path and SHA-256; the first and last date and the
    number of dates; the volatility model and, per asset, its fitted parameters (arch's
    names, returns in percent), observations and log-likelihood."""
    if not prices:
        raise PipelineError("fitting the market model needs at least one price history "
                            "(ASSET=FILE)")
    if history_days < 2:
        raise PipelineError(f"history_days must be at least 2 (got {history_days})")
    series = {h.asset: read_daily_closes(h.path, h.asset) for h in prices}
    frame = pd.concat(series, axis=1, sort=True).sort_index().iloc[-history_days:]
    record = {
        "prices": [{"asset": h.asset, "path": str(h.path), "sha256": _sha256(h.path)}
                   for h in prices],
        "history_days": history_days,
        "fitted_from": frame.index[0].date().isoformat(),
        "fitted_to": frame.index[-1].date().isoformat(),
        "dates": len(frame),
    }
    market = fit_market_model(frame, volatility)
    record["volatility"] = (volatility or VolSpec()).model_dump(mode="json")
    record["fitted"] = {a: {"params": v.params, "nobs": v.nobs,
                            "loglikelihood": v.loglikelihood}
                        for a, v in market.volatility.items()}
    return market, record


class RunRequest(BaseModel):
    """One scenario run, validated: where the snapshot comes from, the scenario, the Monte
    Carlo settings (``paths`` and ``seed`` default to the scenario's) and the market model's
    price histories.

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
    market, fitted = None, None
    if isinstance(request.scenario, MonteCarloScenario):
        stage("fitting the market model")
        market, fitted = fit_market(request.prices, request.history_days,
                                    request.scenario.volatility)
    system = compile_system(snapshot)
    stage("simulating")
    result = run_cascade(
        system, request.scenario, snapshot=snapshot.manifest.model_dump(mode="json"),
        market=market, paths=request.paths, seed=request.seed,
        params=CascadeParams(rounds=request.rounds), shard_paths=request.shard_paths,
        kernel=request.kernel, ray_address=request.ray_address,
        progress=None if progress is None else lambda d, t: progress("simulating", d, t))
    result.inputs.update(source)
    if fitted is not None:
        result.inputs["market"] = fitted
    if out is not None:
        result.save(out)
    return result
