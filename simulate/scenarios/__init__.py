"""Scenario specs (Monte Carlo, fixed shocks, historical replays) and the named library."""

from simulate.scenarios.library import library_names, list_scenarios, load_scenario
from simulate.scenarios.models import (
    AssetMapping,
    FixedShockScenario,
    HistoricalReplay,
    MonteCarloScenario,
    ReplayDay,
    ReplayDepeg,
    ReplayShock,
    ReplayVolatility,
    Scenario,
    ScenarioError,
    ScenarioProblem,
    scenario_from_dict,
)

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
    "library_names",
    "list_scenarios",
    "load_scenario",
    "scenario_from_dict",
]
