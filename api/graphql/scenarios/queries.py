"""Root query fields of the scenario domain."""

from __future__ import annotations

import functools

import strawberry

from api.graphql.scenarios.types import Scenario, scenario_type
from simulate.scenarios import list_scenarios

__all__ = ["ScenarioQueries", "library"]


@functools.cache
def library() -> dict[str, Scenario]:
    """The scenario library, validated once per process (it ships with the package)."""
    return {s.name: scenario_type(s) for s in list_scenarios()}


@strawberry.type
class ScenarioQueries:
    @strawberry.field(description="The scenario library, by name.")
    def scenarios(self) -> list[Scenario]:
        return list(library().values())

    @strawberry.field(description="One library scenario by name; null if there is none.")
    def scenario(self, name: str) -> Scenario | None:
        return library().get(name)
