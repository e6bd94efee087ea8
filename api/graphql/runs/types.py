"""GraphQL types of scenario runs: the run, its metrics and a comparison of two runs."""

from __future__ import annotations

import asyncio
import enum
import math
from datetime import datetime
from typing import Annotated, Any

import strawberry
from strawberry.scalars import JSON

from api.gateway import client_error
from api.graphql.context import Info
from api.graphql.scenarios.types import (
    InvalidScenario,
    Scenario,
    ScenarioInput,
    scenario_type,
)
from api.runs import RunRecord, RunStatus

__all__ = [
    "CancelScenarioResult",
    "ContagionPathShare",
    "FailureCount",
    "LossDistribution",
    "MetricDiff",
    "NodeChange",
    "NodeFailure",
    "RunComparison",
    "RunMetrics",
    "RunNodeType",
    "RunNotCancellable",
    "RunScenarioInput",
    "RunScenarioResult",
    "ScenarioCancelled",
    "ScenarioQueued",
    "ScenarioRun",
    "TailRisk",
    "comparison_type",
    "run_type",
]

strawberry.enum(RunStatus, description="Where a run is: queued, running, or finished "
                                       "(succeeded, failed, cancelled).")

MAX_TOP = 100


@strawberry.enum(description="The node types a run reports failure probabilities of.")
class RunNodeType(enum.Enum):
    PROTOCOL = "protocol"
    POOL = "pool"
    ASSET = "asset"
    ACCOUNT = "account"
    POSITION = "position"


@strawberry.type(description="Value at risk and expected shortfall at one level, each with "
                             "its Monte Carlo standard error (USD).")
class TailRisk:
    level: float
    var: float
    var_se: float
    cvar: float
    cvar_se: float


@strawberry.type(description="The distribution of a loss over a run's paths (USD).")
class LossDistribution:
    mean: float
    mean_se: float
    p_positive: float = strawberry.field(description="Share of paths with a loss above 0.")
    max: float
    tail: list[TailRisk] = strawberry.field(description="VaR and CVaR per level "
                                                        "(0.95, 0.99).")


def _loss(d: dict[str, Any]) -> LossDistribution:
    tail = [TailRisk(level=float(k), var=v["var"], var_se=v["var_se"], cvar=v["cvar"],
                     cvar_se=v["cvar_se"]) for k, v in d.items() if isinstance(v, dict)]
    return LossDistribution(mean=d["mean"], mean_se=d["mean_se"], p_positive=d["p_positive"],
                            max=d["max"], tail=sorted(tail, key=lambda t: t.level))


@strawberry.type(description="How likely a node is to fail in a run: the share of paths in "
                             "which it fails and the binomial standard error.")
class NodeFailure:
    node_id: str
    probability: float
    se: float


@strawberry.type(description="How many nodes of a type failed on at least one path, of all.")
class FailureCount:
    failing: int
    of: int


@strawberry.type(description="A sequence of failing protocols and assets (first four, in "
                             "the order they failed) and the share of paths that follow it.")
class ContagionPathShare:
    path: list[str]
    count: int
    probability: float


@strawberry.type(description="A value per node id.")
class NodeChange:
    node_id: str
    value: float


def _check_top(top: int) -> None:
    if not 0 <= top <= MAX_TOP:
        raise client_error(f"'top' must be between 0 and {MAX_TOP} (got {top})",
                           "BAD_USER_INPUT")


@strawberry.type(description="The risk metrics of a succeeded run.")
class RunMetrics:
    doc: strawberry.Private[dict[str, Any]]

    @strawberry.field(description="Paths simulated.")
    def paths(self) -> int:
        return int(self.doc["metrics"]["paths"])

    @strawberry.field(description="Bad debt (sum over pools) per path.")
    def bad_debt(self) -> LossDistribution:
        return _loss(self.doc["metrics"]["bad_debt_usd"])

    @strawberry.field(description="Value liquidated (collateral seized, all rounds) per path.")
    def liquidated(self) -> LossDistribution:
        return _loss(self.doc["metrics"]["liquidated_usd"])

    @strawberry.field(description="The nodes of a type most likely to fail, most likely "
                                  "first (ties by id). Accounts and positions: among the 20 "
                                  "that failed most often.")
    def failures(self, node_type: RunNodeType, top: int = 10) -> list[NodeFailure]:
        _check_top(top)
        fp = self.doc["metrics"]["failure_probability"][node_type.value]
        n = self.doc["metrics"]["paths"]
        if "top" in fp:  # accounts and positions: the most frequent only
            rows = [(k, p, math.sqrt(p * (1 - p) / n)) for k, p in fp["top"].items()]
        else:
            rows = [(k, v["p"], v["se"]) for k, v in fp.items()]
        rows.sort(key=lambda r: (-r[1], r[0]))
        return [NodeFailure(node_id=k, probability=p, se=se) for k, p, se in rows[:top]]

    @strawberry.field(description="How many nodes of a type failed on at least one path.")
    def failing(self, node_type: RunNodeType) -> FailureCount:
        fp = self.doc["metrics"]["failure_probability"][node_type.value]
        if "top" in fp:
            return FailureCount(failing=fp["failing"], of=fp["of"])
        return FailureCount(failing=sum(1 for v in fp.values() if v["p"] > 0), of=len(fp))

    @strawberry.field(description="The most frequent contagion paths, most frequent first.")
    def contagion_paths(self, top: int = 10) -> list[ContagionPathShare]:
        _check_top(top)
        return [ContagionPathShare(path=p["path"], count=p["count"],
                                   probability=p["probability"])
                for p in self.doc["metrics"]["contagion_paths"][:top]]

    @strawberry.field(description="Mean bad debt per protocol (USD).")
    def bad_debt_by_protocol(self) -> list[NodeChange]:
        return [NodeChange(node_id=k, value=v)
                for k, v in self.doc["metrics"]["bad_debt_by_protocol_usd"].items()]

    @strawberry.field(description="Seconds the simulation took.")
    def seconds(self) -> float:
        return float(self.doc["seconds"])

    @strawberry.field(description="The simulator's version (package and source digest).")
    def code_version(self) -> str:
        return str(self.doc["code_version"])

    @strawberry.field(description="The manifest of the snapshot the run simulated.")
    def snapshot(self) -> JSON:
        return self.doc["snapshot"]

    @strawberry.field(description="Every metric as JSON (the form `contagion simulate "
                                  "--json` prints).")
    def all(self) -> JSON:
        return self.doc["metrics"]


@strawberry.type(description="A scenario run launched through the API.")
class ScenarioRun:
    rec: strawberry.Private[RunRecord]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(self.rec.id)

    @strawberry.field
    def status(self) -> RunStatus:
        return self.rec.status

    @strawberry.field(description="Share of the paths simulated, 0 to 1.")
    def progress(self) -> float:
        return self.rec.progress

    @strawberry.field(description="What the run is doing (or how it ended).")
    def message(self) -> str:
        return self.rec.message

    @strawberry.field(description="Why the run failed or was cancelled; null otherwise.")
    def error(self) -> str | None:
        return self.rec.error

    @strawberry.field
    def created_at(self) -> datetime:
        return self.rec.created

    @strawberry.field
    def started_at(self) -> datetime | None:
        return self.rec.started

    @strawberry.field
    def finished_at(self) -> datetime | None:
        return self.rec.finished

    @strawberry.field(description="The scenario it runs, as validated.")
    def scenario(self) -> Scenario:
        return scenario_type(self.rec.scenario)

    @strawberry.field(description="Paths simulated (1 for fixed shocks and replays).")
    def paths(self) -> int:
        return self.rec.paths

    @strawberry.field(description="The random seed, in decimal.")
    def seed(self) -> str:
        return str(self.rec.seed)

    @strawberry.field(description="Cascade rounds per path at most.")
    def rounds(self) -> int:
        return self.rec.rounds

    @strawberry.field(description="The id of the API key that launched the run.")
    def launched_by(self) -> str:
        return self.rec.launched_by

    @strawberry.field(description="The metrics, once the run has succeeded; null before.")
    async def metrics(self, info: Info) -> RunMetrics | None:
        if self.rec.status != RunStatus.SUCCEEDED:
            return None
        runs = info.context.runs
        doc = await asyncio.to_thread(runs.result_doc, self.rec.id)
        return RunMetrics(doc=doc)


def run_type(rec: RunRecord) -> ScenarioRun:
    return ScenarioRun(rec=rec)


@strawberry.type(description="One headline metric of two runs: b - a, and the difference "
                             "over its combined Monte Carlo standard error (null when both "
                             "errors are zero).")
class MetricDiff:
    metric: str
    a: float
    b: float
    diff: float
    z: float | None


@strawberry.type(description="Run b against run a: metric differences with z-scores, "
                             "failure probability changes, and which inputs differ.")
class RunComparison:
    a: ScenarioRun
    b: ScenarioRun
    inputs_differ: list[str] = strawberry.field(
        description="The inputs that differ: scenario, seed, paths, params, snapshot, "
                    "code_version, environment, inputs.")
    metrics: list[MetricDiff]
    protocol_failure_change: list[NodeChange]
    asset_failure_change: list[NodeChange]


def comparison_type(a: RunRecord, b: RunRecord, diff: dict[str, Any]) -> RunComparison:
    return RunComparison(
        a=run_type(a), b=run_type(b),
        inputs_differ=[k for k, v in diff["inputs_differ"].items() if v],
        metrics=[MetricDiff(metric=k, a=v["a"], b=v["b"], diff=v["diff"], z=v["z"])
                 for k, v in diff["metrics"].items()],
        protocol_failure_change=[NodeChange(node_id=k, value=v)
                                 for k, v in diff["protocol_failure_change"].items()],
        asset_failure_change=[NodeChange(node_id=k, value=v)
                              for k, v in diff["asset_failure_change"].items()])


# -- inputs and results ---------------------------------------------------------------------


@strawberry.input(description="A run: the scenario (as validateScenario takes it), and "
                              "optionally paths and seed (default: the scenario's) and "
                              "cascade rounds (default 24).")
class RunScenarioInput:
    scenario: ScenarioInput
    paths: int | None = None
    seed: int | None = None
    rounds: int = 24


@strawberry.type(description="The run is queued; follow it with scenarioRun or "
                             "scenarioProgress.")
class ScenarioQueued:
    run: ScenarioRun


RunScenarioResult = Annotated[ScenarioQueued | InvalidScenario,
                              strawberry.union("RunScenarioResult")]


@strawberry.type(description="The run was cancelled; its worker has stopped.")
class ScenarioCancelled:
    run: ScenarioRun


@strawberry.type(description="The run had already finished: nothing to cancel.")
class RunNotCancellable:
    run: ScenarioRun
    message: str


CancelScenarioResult = Annotated[ScenarioCancelled | RunNotCancellable,
                                 strawberry.union("CancelScenarioResult")]
