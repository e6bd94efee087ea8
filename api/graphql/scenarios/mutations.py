"""Mutations of the scenario domain.

``validateScenario`` checks a scenario input the way ``runScenario`` will before queueing a
run: a library name, or a spec validated by the same pydantic models as the command line.
A bad input is data (``InvalidScenario`` with one error per field), not a GraphQL error.
"""

from __future__ import annotations

import strawberry

from api.graphql.permissions import IsAnalyst
from api.graphql.scenarios.queries import library
from api.graphql.scenarios.types import (
    FieldError,
    InvalidScenario,
    ScenarioInput,
    ScenarioValidation,
    ValidScenario,
    scenario_type,
)
from simulate.scenarios import ScenarioError, scenario_from_dict

__all__ = ["ScenarioMutations", "check_scenario"]


def check_scenario(value: ScenarioInput) -> ValidScenario | InvalidScenario:
    """The validated scenario of ``value``, or every problem with it."""
    if isinstance(value.library, str):
        known = library()
        if value.library not in known:
            return InvalidScenario(errors=[FieldError(
                field="library", message=f"unknown scenario {value.library!r} (library: "
                                         f"{', '.join(known)})")])
        return ValidScenario(scenario=known[value.library])
    try:
        spec = scenario_from_dict(value.spec)
    except ScenarioError as e:
        return InvalidScenario(errors=[FieldError(field=p.field or None, message=p.message)
                                       for p in e.problems])
    return ValidScenario(scenario=scenario_type(spec))


@strawberry.type
class ScenarioMutations:
    @strawberry.mutation(permission_classes=[IsAnalyst],
                         description="Validate a scenario (a library name or a spec) as "
                                     "runScenario will; needs the analyst role.")
    def validate_scenario(self, input: ScenarioInput) -> ScenarioValidation:
        return check_scenario(input)
