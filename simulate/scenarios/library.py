"""The named scenario library (YAML files shipped with the package) and scenario files.

``load_scenario("march-2023")`` reads a library entry; ``load_scenario("my.yaml")`` (or
``.json``) reads a file. Library files are ``simulate/scenarios/<name>.yaml`` and each file's
``name`` must equal its file name.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from simulate.scenarios.models import (
    FixedShockScenario,
    HistoricalReplay,
    MonteCarloScenario,
    ScenarioError,
    scenario_from_dict,
)

__all__ = ["library_names", "list_scenarios", "load_scenario"]

_SUFFIXES = (".yaml", ".yml", ".json")

AnyScenario = MonteCarloScenario | FixedShockScenario | HistoricalReplay


def _parse(text: str, origin: str, *, as_json: bool) -> Any:
    try:
        return json.loads(text) if as_json else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ScenarioError(f"{origin}: not valid {'JSON' if as_json else 'YAML'} ({first})"
                            ) from None


def library_names() -> list[str]:
    """Names of the scenarios shipped with the package, sorted."""
    root = resources.files("simulate.scenarios")
    return sorted(p.name[: -len(".yaml")] for p in root.iterdir() if p.name.endswith(".yaml"))


def _from_library(name: str) -> AnyScenario:
    text = resources.files("simulate.scenarios").joinpath(f"{name}.yaml").read_text("utf-8")
    scenario = scenario_from_dict(_parse(text, f"{name}.yaml", as_json=False),
                                  origin=f"{name}.yaml")
    if scenario.name != name:
        raise ScenarioError(f"{name}.yaml: name must equal the file name (got {scenario.name!r})")
    return scenario


def load_scenario(path_or_name: str | Path) -> AnyScenario:
    """A scenario from a ``.yaml``/``.yml``/``.json`` file or from the library by name.

    Raises :class:`ScenarioError` for an unknown name, an unreadable or invalid file.
    """
    text_name = str(path_or_name)
    path = Path(path_or_name)
    if isinstance(path_or_name, Path) or path.suffix.lower() in _SUFFIXES or path.exists():
        if not path.is_file():
            raise ScenarioError(f"{path}: no such scenario file")
        origin = str(path)
        data = _parse(path.read_text("utf-8"), origin, as_json=path.suffix.lower() == ".json")
        return scenario_from_dict(data, origin=origin)
    names = library_names()
    if text_name not in names:
        raise ScenarioError(f"unknown scenario {text_name!r} (library: {', '.join(names)}); "
                            "or pass a .yaml or .json file")
    return _from_library(text_name)


def list_scenarios() -> list[AnyScenario]:
    """Every library scenario, validated, sorted by name."""
    return [_from_library(n) for n in library_names()]
