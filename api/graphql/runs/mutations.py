"""Mutations of the runs domain: launch a run, cancel one.

``runScenario`` validates its input as ``validateScenario`` does, then checks what this
server can run (a Monte Carlo scenario needs the server's price histories; paths up to
``max_run_paths``; rounds at least the scenario's steps) and queues the run. Every problem
is data: ``InvalidScenario`` with one error per field.
"""

from __future__ import annotations

import strawberry

from api.gateway import client_error
from api.graphql.context import Info
from api.graphql.permissions import IsAnalyst
from api.graphql.runs.types import (
    CancelScenarioResult,
    RunNotCancellable,
    RunScenarioInput,
    RunScenarioResult,
    ScenarioCancelled,
    ScenarioQueued,
    run_type,
)
from api.graphql.scenarios.mutations import check_scenario
from api.graphql.scenarios.types import FieldError, InvalidScenario
from api.keys import Role
from api.runs import RunNotFound
from simulate.cascade.run import run_problems
from simulate.scenarios import MonteCarloScenario, scenario_from_dict

__all__ = ["RunMutations"]

def _available(info: Info) -> None:
    why = info.context.runs.unavailable
    if why is not None:
        raise client_error(why, "UNAVAILABLE")


@strawberry.type
class RunMutations:
    @strawberry.mutation(permission_classes=[IsAnalyst],
                         description="Queue a scenario run (a library name or a spec, as "
                                     "validateScenario takes it); needs the analyst role. "
                                     "The run executes in a worker process: follow it with "
                                     "scenarioRun or the scenarioProgress subscription.")
    def run_scenario(self, info: Info, input: RunScenarioInput) -> RunScenarioResult:
        _available(info)
        checked = check_scenario(input.scenario)
        if isinstance(checked, InvalidScenario):
            for e in checked.errors:
                e.field = "scenario" + (f".{e.field}" if e.field else "")
            return checked
        sc = scenario_from_dict(checked.scenario.spec)
        settings = info.context.settings
        mc = isinstance(sc, MonteCarloScenario)
        # the run's own rules (paths and seed for Monte Carlo only, antithetic paths even,
        # rounds from the scenario's steps up), as every run pipeline checks them
        errors = [FieldError(field=f, message=m) for f, m in run_problems(
            sc, paths=input.paths, seed=input.seed, rounds=input.rounds)]
        if mc and not settings.prices:
            errors.append(FieldError(field="scenario.kind", message=(
                "this server has no price histories to fit the market model on, so it cannot "
                "run Monte Carlo scenarios (start it with --prices ASSET=FILE)")))
        paths = (input.paths if input.paths is not None
                 else sc.paths if isinstance(sc, MonteCarloScenario) else 1)
        if mc and not 1 <= paths <= settings.max_run_paths:
            errors.insert(0, FieldError(field="paths" if input.paths is not None
                                     else "scenario.paths", message=(
                f"paths must be between 1 and {settings.max_run_paths} on this server "
                f"(got {paths})")))
        seed = input.seed if input.seed is not None else (
            sc.seed if isinstance(sc, MonteCarloScenario) else 0)
        if errors:
            return InvalidScenario(errors=errors)
        rec = info.context.runs.submit(sc, paths=paths, seed=seed if mc else 0,
                                       rounds=input.rounds,
                                       launched_by=info.context.principal.id)
        return ScenarioQueued(run=run_type(rec))

    @strawberry.mutation(permission_classes=[IsAnalyst],
                         description="Cancel a queued or running run; needs the analyst "
                                     "role, and an analyst may cancel only the runs of its "
                                     "own key. Returns once the run's worker has stopped.")
    async def cancel_scenario(self, info: Info, id: strawberry.ID) -> CancelScenarioResult:
        _available(info)
        runs, me = info.context.runs, info.context.principal
        try:
            rec = runs.require(str(id))
        except RunNotFound as e:
            raise client_error(str(e), "NOT_FOUND") from None
        if rec.launched_by != me.id and not me.role.allows(Role.ADMIN):
            raise client_error(f"run {rec.id} was launched by another API key; only that key "
                               "or an admin may cancel it", "FORBIDDEN")
        rec, cancelled = await runs.cancel(rec.id)
        if not cancelled:
            return RunNotCancellable(run=run_type(rec), message=(
                f"run {rec.id} has already finished ({rec.status}); only queued or running "
                "runs can be cancelled"))
        return ScenarioCancelled(run=run_type(rec))
