"""The Monte Carlo cascade (docs/architecture.md §4): a reference kernel, a fast kernel that
equals it, the scenario inputs and the compiled system both read."""

from simulate.cascade.fast import run_fast
from simulate.cascade.params import CascadeParams
from simulate.cascade.paths import PathResults, Shocks
from simulate.cascade.reference import run_reference
from simulate.cascade.scenario import fixed_shocks, monte_carlo_shocks, resolve_asset
from simulate.cascade.system import CascadeSystem, compile_cascade

__all__ = [
    "CascadeParams",
    "CascadeSystem",
    "PathResults",
    "Shocks",
    "compile_cascade",
    "fixed_shocks",
    "monte_carlo_shocks",
    "resolve_asset",
    "run_fast",
    "run_reference",
]
