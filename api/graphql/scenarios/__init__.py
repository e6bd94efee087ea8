"""The scenario domain: the scenario library and scenario-spec validation (the runs, their
progress and comparisons join here as the simulator's run API lands)."""

__all__: list[str] = []
