"""A cascade run: shards of paths (in-process or as Ray tasks), merged results, metrics, and
the persisted record (inputs, seed, code version, metrics, per-path arrays) that can be reloaded
and compared.

Determinism: Monte Carlo paths are drawn shard by shard, shard ``k`` from the ``k``-th child of
``numpy.random.SeedSequence(seed)`` (``spawn``); the shard size is part of the run's spec. A
shard's results depend on nothing else, so the same spec gives the same numbers in-process and
on any Ray cluster.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from graph.errors import ContagionError
from graph.export import SystemArrays
from graph.versions import numeric_stack
from simulate.cascade.fast import run_fast
from simulate.cascade.mechanics import surface_response
from simulate.cascade.metrics import LEVELS, summarize
from simulate.cascade.oracles import compile_oracles, oracle_inputs, push_cost
from simulate.cascade.params import MAX_ROUNDS, CascadeParams
from simulate.cascade.paths import PathResults
from simulate.cascade.reference import run_reference
from simulate.cascade.scenario import (
    AnyScenario,
    fixed_shocks,
    monte_carlo_shocks,
    resolve_asset,
    scenario_moves,
)
from simulate.cascade.system import CascadeSystem, compile_cascade
from simulate.market.shocks import MarketModel
from simulate.market.surface import IVSurface
from simulate.scenarios.models import (
    FixedShockScenario,
    HistoricalReplay,
    MonteCarloScenario,
    Scenario,
)

__all__ = ["RunError", "RunResult", "RunSpec", "code_version", "compare_runs",
           "implied_vol_inputs", "run_cascade", "run_problems", "scenario_steps",
           "valuation_inputs"]

_SCENARIO: TypeAdapter[AnyScenario] = TypeAdapter(Scenario)
#: format 2 added ``environment`` and ``inputs`` (format 1 files load with both empty)
_FORMAT = 2
_READABLE = (1, 2)
#: per-path arrays added within format 2 (cause record, snapshot-priced liquidations,
#: cross-deposit losses): older files load without them
_ADDED_FIELDS = ("liquidated_snapshot_usd", "cross_loss_protocol", "protocol_cause",
                 "protocol_cause_src", "asset_cause", "asset_cause_src")


class RunError(ContagionError, ValueError):
    """A run that cannot be started, read or compared."""


class RunSpec(BaseModel):
    """Everything that determines a run's numbers besides the snapshot and the market model.

    ``paths`` and ``seed`` default to the scenario's (Monte Carlo) or to one deterministic path
    (fixed shocks, replays); ``shard_paths`` paths are drawn per seed stream and Ray task.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    scenario: Scenario
    paths: int = Field(gt=0, le=100_000_000)
    seed: int = Field(ge=0)
    params: CascadeParams = CascadeParams()
    shard_paths: int = Field(default=1000, gt=0)
    kernel: Literal["fast", "reference"] = "fast"


def code_version() -> str:
    """The package version and a digest of the simulator's and compiler's sources."""
    root = Path(__file__).resolve().parents[2]
    h = hashlib.sha256()
    files = [*sorted((root / "simulate").rglob("*.py")), root / "graph" / "export.py"]
    for f in files:
        h.update(f.relative_to(root).as_posix().encode())
        h.update(f.read_bytes())
    try:
        version = metadata.version("defi-contagion")
    except metadata.PackageNotFoundError:
        version = "unknown"
    return f"{version}+{h.hexdigest()[:12]}"


def _shard_sizes(spec: RunSpec) -> list[int]:
    k = math.ceil(spec.paths / spec.shard_paths)
    return [min(spec.shard_paths, spec.paths - i * spec.shard_paths) for i in range(k)]


def _shard(cs: CascadeSystem, spec: RunSpec, market: MarketModel | None, size: int,
           seed: np.random.SeedSequence | None,
           progress: Callable[[int], None] | None = None) -> PathResults:
    """One shard: its draws, then the kernel. Pure function of its arguments (``progress``
    only reports)."""
    sc = spec.scenario
    if isinstance(sc, MonteCarloScenario):
        assert market is not None and seed is not None
        shocks = surface_response(cs, monte_carlo_shocks(sc, market, cs.arrays, size, seed))
    else:
        shocks = fixed_shocks(sc, cs.arrays)
    if spec.kernel == "reference":
        res = run_reference(cs, shocks, spec.params)
        if progress is not None:
            progress(shocks.num_paths)
        return res
    return run_fast(cs, shocks, spec.params, progress=progress)


def _ray_shards(address: str, cs: CascadeSystem, spec: RunSpec, market: MarketModel | None,
                sizes: list[int], seeds: list[np.random.SeedSequence],
                progress: Callable[[int], None] | None) -> list[PathResults]:
    import ray

    if not ray.is_initialized():
        if address == "local":
            ray.init(include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=address, log_to_driver=False)
    task = ray.remote(_shard)
    cs_ref = ray.put(cs)
    refs = [task.remote(cs_ref, spec, market, n, s) for n, s in zip(sizes, seeds, strict=True)]
    pending = list(refs)
    while pending:
        ready, pending = ray.wait(pending, num_returns=1)
        if progress is not None:
            for r in ready:
                progress(sizes[refs.index(r)])
    return list(ray.get(refs))


@dataclass(frozen=True, eq=False)
class RunResult:
    """A finished run: its spec, what it ran on, the per-path results and the metrics."""

    spec: RunSpec
    snapshot: dict[str, Any]  # the snapshot's manifest (name, chain, block, as_of, ...)
    code_version: str
    created: str
    seconds: float
    paths: PathResults
    ids: dict[str, np.ndarray]  # protocol, pool, asset, position, account ids
    metrics: dict[str, Any]
    #: versions of the numeric stack that computed it (:func:`graph.versions.numeric_stack`)
    environment: dict[str, str] = field(default_factory=numeric_stack)
    #: what the run read besides the spec (snapshot source, price files and the dates fitted
    #: on), as recorded by :func:`simulate.pipeline.execute_run`
    inputs: dict[str, Any] = field(default_factory=dict)

    def save(self, path: str | Path) -> Path:
        """Write ``path`` (JSON: spec, inputs, metrics) and ``path`` with suffix ``.npz`` (the
        per-path arrays and ids); returns the JSON path."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        arrays = {f"paths.{k}": getattr(self.paths, k) for k in PathResults.__dataclass_fields__}
        arrays.update({f"ids.{k}": v.astype(str) for k, v in self.ids.items()})
        tmp = p.with_suffix(".tmp.npz")
        np.savez_compressed(tmp, **arrays)
        tmp.replace(p.with_suffix(".npz"))
        doc = {"format": _FORMAT, "spec": self.spec.model_dump(mode="json"),
               "snapshot": self.snapshot, "code_version": self.code_version,
               "created": self.created, "seconds": self.seconds, "metrics": self.metrics,
               "environment": self.environment, "inputs": self.inputs,
               "arrays": p.with_suffix(".npz").name}
        tmpj = p.with_suffix(".tmp.json")
        tmpj.write_text(json.dumps(doc, indent=1))
        tmpj.replace(p)
        return p

    @staticmethod
    def load(path: str | Path) -> RunResult:
        """Read a run written by :meth:`save`."""
        p = Path(path)
        try:
            doc = json.loads(p.read_text())
            if doc.get("format") not in _READABLE:
                raise RunError(f"{p}: unknown run format {doc.get('format')!r} "
                               f"(expected one of {', '.join(map(str, _READABLE))})")
            with np.load(p.parent / doc["arrays"]) as z:
                # fields a run saved by an earlier version lacks are filled in as not recorded
                fields = {k: z[f"paths.{k}"] for k in PathResults.__dataclass_fields__
                          if f"paths.{k}" in z.files or k not in _ADDED_FIELDS}
                ids = {k[4:]: z[k].astype(object) for k in z.files if k.startswith("ids.")}
        except (OSError, KeyError, ValueError) as e:
            if isinstance(e, RunError):
                raise
            raise RunError(f"{p}: not a readable run ({type(e).__name__}: {e})") from None
        return RunResult(spec=RunSpec.model_validate(doc["spec"]), snapshot=doc["snapshot"],
                         code_version=doc["code_version"], created=doc["created"],
                         seconds=doc["seconds"], paths=PathResults(**fields), ids=ids,
                         metrics=doc["metrics"], environment=doc.get("environment", {}),
                         inputs=doc.get("inputs", {}))


def scenario_steps(scenario: AnyScenario) -> int:
    """How many rounds a scenario's shocks take: a Monte Carlo scenario's ``steps``, a
    replay's days (at least one), one for fixed shocks."""
    if isinstance(scenario, MonteCarloScenario):
        return scenario.steps
    if isinstance(scenario, HistoricalReplay):
        return len(scenario.path) or 1
    return 1


def run_problems(scenario: AnyScenario, *, paths: int | None, seed: int | None, rounds: int,
                 shard_paths: int = 1000) -> list[tuple[str, str]]:
    """Everything wrong with running ``scenario`` with these settings, as ``(field,
    message)`` pairs (empty when it can run); ``paths`` and ``seed`` are ``None`` when not
    given (then the scenario's own apply).

    >>> from simulate.scenarios import load_scenario
    >>> sc = load_scenario("eth-35-steth-93")
    >>> for field, message in run_problems(sc, paths=100, seed=None, rounds=24):
    ...     print(f"{field}: {message}")  # doctest: +ELLIPSIS
    paths: paths applies to Monte Carlo scenarios only (fixed-shock scenarios are one path) ...
    """
    out: list[tuple[str, str]] = []
    if not isinstance(scenario, MonteCarloScenario):
        if paths is not None:
            out.append(("paths", f"paths applies to Monte Carlo scenarios only "
                                 f"({scenario.kind} scenarios are one path) (got {paths})"))
        if seed is not None:
            out.append(("seed", f"seed applies to Monte Carlo scenarios only "
                                f"({scenario.kind} scenarios draw nothing) (got {seed})"))
    else:
        n = scenario.paths if paths is None else paths
        if n < 1:
            out.append(("paths", f"paths must be at least 1 (got {n})"))
        elif scenario.antithetic and n % 2:
            out.append(("paths", f"paths must be even when the scenario is antithetic "
                                 f"(got {n})"))
        if scenario.antithetic and shard_paths % 2:
            out.append(("shard_paths", f"shard_paths must be even for an antithetic scenario "
                                       f"(got {shard_paths})"))
        if seed is not None and seed < 0:
            out.append(("seed", f"seed must be >= 0 (got {seed})"))
    if shard_paths < 1:
        out.append(("shard_paths", f"shard_paths must be at least 1 (got {shard_paths})"))
    steps = scenario_steps(scenario)
    if not steps <= rounds <= MAX_ROUNDS:
        out.append(("rounds", f"rounds must be between the scenario's steps ({steps}) and "
                              f"{MAX_ROUNDS} (got {rounds})"))
    return out


def run_cascade(system: SystemArrays | CascadeSystem, scenario: AnyScenario, *,
                snapshot: dict[str, Any] | None = None, market: MarketModel | None = None,
                paths: int | None = None, seed: int | None = None,
                params: CascadeParams | None = None, shard_paths: int = 1000,
                kernel: Literal["fast", "reference"] = "fast", ray_address: str | None = None,
                progress: Callable[[int, int], None] | None = None,
                surfaces: Mapping[str, IVSurface] | None = None) -> RunResult:
    """Run ``scenario`` on ``system``.

    Monte Carlo scenarios need ``market`` (the fitted model) and use the scenario's ``paths``
    and ``seed`` unless given; fixed shocks and replays are one path. ``ray_address``
    (``"local"`` starts a local cluster) runs the shards as Ray tasks. ``progress(done,
    total)`` is called as paths finish.
    """
    params = params or CascadeParams()
    problems = run_problems(scenario, paths=paths, seed=seed, rounds=params.rounds,
                            shard_paths=shard_paths)
    if isinstance(scenario, MonteCarloScenario) and market is None:
        problems.insert(0, ("market", f"scenario {scenario.name!r} is Monte Carlo: it needs a "
                                      f"fitted market model (price histories)"))
    if problems:
        raise RunError(problems[0][1])
    if surfaces and isinstance(system, CascadeSystem):
        raise RunError("give surfaces to compile_cascade when passing a compiled system")
    cs = system if isinstance(system, CascadeSystem) else compile_cascade(system, surfaces)
    moves = scenario_moves(cs.arrays, scenario, market)  # refuses unmapped assets up front
    if isinstance(scenario, MonteCarloScenario):
        n, s = paths or scenario.paths, scenario.seed if seed is None else seed
    else:
        n, s = 1, 0
    spec = RunSpec(scenario=scenario, paths=n, seed=s, params=params,
                   shard_paths=min(shard_paths, n), kernel=kernel)
    sizes = _shard_sizes(spec)
    seeds = np.random.SeedSequence(spec.seed).spawn(len(sizes))
    done = 0

    def tick(k: int) -> None:
        nonlocal done
        done += k
        if progress is not None:
            progress(done, spec.paths)

    start = datetime.now(UTC)
    if ray_address is not None and len(sizes) > 1:
        parts = _ray_shards(ray_address, cs, spec, market, sizes, seeds, tick)
    else:
        parts = []
        for size, ss in zip(sizes, seeds, strict=True):
            parts.append(_shard(cs, spec, market, size, ss, tick))
    res = PathResults.concat(parts)
    seconds = (datetime.now(UTC) - start).total_seconds()
    a = cs.arrays
    ids = {"protocol": a.protocol_ids, "pool": a.pool_ids, "asset": a.asset_ids,
           "position": a.position_ids, "account": a.account_ids}
    metrics = summarize(res, protocol_ids=a.protocol_ids, pool_ids=a.pool_ids,
                        asset_ids=a.asset_ids, pool_protocol=a.pool_protocol,
                        position_ids=a.position_ids, account_ids=a.account_ids,
                        reserve_usd=a.reserve_usd)
    return RunResult(spec=spec, snapshot=snapshot or {}, code_version=code_version(),
                     created=start.isoformat(), seconds=seconds, paths=res, ids=ids,
                     metrics=metrics, inputs={"moves": moves,
                                              "implied_vol": implied_vol_inputs(cs),
                                              **valuation_inputs(cs, scenario, params)})


def valuation_inputs(cs: CascadeSystem, scenario: AnyScenario, params: CascadeParams
                     ) -> dict[str, Any]:
    """``oracles``: how lending positions were valued (``params.oracles``, the round length,
    each asset's oracle and parameters); ``oracle_pushes`` (a fixed shock that pushes oracles):
    per pushed asset its pool and the attacker's cost (``oracles.push_cost``)."""
    orc = cs.oracles if cs.oracles is not None else compile_oracles(cs.arrays)
    out: dict[str, Any] = {"oracles": oracle_inputs(cs.arrays, orc, params.oracles,
                                                     params.round_seconds)}
    if isinstance(scenario, FixedShockScenario) and scenario.oracle_pushes:
        out["oracle_pushes"] = {
            k: push_cost(cs.arrays, orc, resolve_asset(cs.arrays, k), v).as_dict()
            for k, v in sorted(scenario.oracle_pushes.items())}
    return out


def implied_vol_inputs(cs: CascadeSystem) -> dict[str, Any]:
    """Per underlying with option legs, what its legs were marked at: ``{"source":
    "stored"}`` (each leg's implied vol times the IV multiplier) or ``{"source": "surface",
    ...}`` with the surface's date, expiries, weighting, checks and spot-vol dynamics."""
    out: dict[str, Any] = {}
    surf = {str(cs.arrays.asset_ids[a]): s
            for s, a in zip(cs.surfaces, cs.surface_asset, strict=True)}
    for asset, source in sorted(cs.iv_source.items()):
        if source == "stored":
            out[asset] = {"source": "stored"}
            continue
        s = surf[asset]
        out[asset] = {"source": "surface", "underlying": s.underlying,
                      "as_of": s.as_of.isoformat(), "spot": s.spot,
                      "expiries": [sl.label for sl in s.slices], "weighting": s.weighting,
                      "checks": s.checks.model_dump() if s.checks else None,
                      "dynamics": s.dynamics.model_dump()}
    return out


def _diff(a: dict[str, Any], b: dict[str, Any], key: str) -> float:
    return float(b[key] - a[key])


def compare_runs(a: RunResult, b: RunResult) -> dict[str, Any]:
    """Headline metrics of ``b`` minus ``a``, each with a z-score (difference over the
    combined Monte Carlo standard error; ``None`` where both errors are zero), failure
    probability changes per protocol and asset, and which inputs differ."""
    out: dict[str, Any] = {"inputs_differ": {
        "scenario": a.spec.scenario != b.spec.scenario,
        "seed": a.spec.seed != b.spec.seed,
        "paths": a.spec.paths != b.spec.paths,
        "params": a.spec.params != b.spec.params,
        "snapshot": a.snapshot != b.snapshot,
        "code_version": a.code_version != b.code_version,
        "environment": a.environment != b.environment,
        "inputs": a.inputs != b.inputs,
    }}
    rows: dict[str, Any] = {}
    for loss in ("bad_debt_usd", "liquidated_usd"):
        ma, mb = a.metrics[loss], b.metrics[loss]
        for level in LEVELS:
            la, lb = ma[f"{level:g}"], mb[f"{level:g}"]
            for stat in ("var", "cvar"):
                se = math.hypot(la[f"{stat}_se"], lb[f"{stat}_se"])
                d = _diff(la, lb, stat)
                rows[f"{loss}.{stat}.{level:g}"] = {
                    "a": la[stat], "b": lb[stat], "diff": d, "z": d / se if se > 0 else None}
        se = math.hypot(ma["mean_se"], mb["mean_se"])
        d = _diff(ma, mb, "mean")
        rows[f"{loss}.mean"] = {"a": ma["mean"], "b": mb["mean"], "diff": d,
                                "z": d / se if se > 0 else None}
    out["metrics"] = rows
    for kind in ("protocol", "asset"):
        fa = a.metrics["failure_probability"][kind]
        fb = b.metrics["failure_probability"][kind]
        out[f"{kind}_failure_change"] = {
            k: fb.get(k, {"p": 0.0})["p"] - fa.get(k, {"p": 0.0})["p"]
            for k in sorted(set(fa) | set(fb))}
    return out
