"""validateScenario over real HTTP on both stores: the validation half of runScenario, with
field-level errors from the same pydantic models as the command line."""

from __future__ import annotations

from typing import Any

import pytest
from apiserver import ApiServer

VALIDATE = """mutation($input: ScenarioInput!) { validateScenario(input: $input) {
  __typename
  ... on ValidScenario { scenario { __typename name kind description spec } }
  ... on InvalidScenario { errors { field message } } } }"""


def _validate(api: ApiServer, value: dict[str, Any]) -> dict[str, Any]:
    return api.gql(VALIDATE, {"input": value}, role="analyst").data[  # type: ignore[no-any-return]
        "validateScenario"]


def test_a_library_scenario_is_valid(api: ApiServer) -> None:
    got = _validate(api, {"library": "march-2023"})
    assert got["__typename"] == "ValidScenario"
    assert (got["scenario"]["name"], got["scenario"]["kind"],
            got["scenario"]["__typename"]) == ("march-2023", "historical", "HistoricalReplay")


def test_a_valid_spec_comes_back_normalised(api: ApiServer) -> None:
    got = _validate(api, {"spec": {"kind": "fixed-shock", "name": "eth-down",
                                   "shocks": {"ETH": -0.4}, "depegs": {"stETH": 0.9}}})
    assert got == {"__typename": "ValidScenario", "scenario": {
        "__typename": "FixedShockScenario", "name": "eth-down", "kind": "fixed-shock",
        "description": "",
        "spec": {"kind": "fixed-shock", "name": "eth-down", "description": "",
                 "shocks": {"ETH": -0.4}, "iv_multipliers": {}, "depegs": {"stETH": 0.9},
                 "proxy": None, "mappings": {}, "oracle_pushes": {}}}}
    mc = _validate(api, {"spec": {"kind": "monte-carlo", "name": "big-seed", "horizon_days": 1,
                                  "steps": 1, "paths": 10, "seed": 2**40}})
    assert mc["scenario"]["spec"]["seed"] == 2**40
    seed = api.gql('mutation { validateScenario(input: {spec: {kind: "monte-carlo", name: "s", '
                   'horizon_days: 1, steps: 1, paths: 10, seed: 123456789012}}) { '
                   '... on ValidScenario { scenario { ... on MonteCarloScenario { seed '
                   'volatility { model dist mean } } } } } }', role="admin").data
    assert seed["validateScenario"]["scenario"] == {
        "seed": "123456789012",
        "volatility": {"model": "gjr-garch", "dist": "skewt", "mean": "constant"}}


@pytest.mark.parametrize(("value", "errors"), [
    ({"spec": {"kind": "fixed-shock", "name": "Bad Name", "shocks": {"ETH": -1.2}, "foo": 1}},
     [{"field": "name", "message": "name must be lowercase letters, digits and '-' "
                                   "(got 'Bad Name')"},
      {"field": "shocks.ETH", "message": "shocks.ETH must be > -1 (got -1.2)"},
      {"field": "foo", "message": "foo is not a scenario field"}]),
    ({"spec": {"kind": "monte-carlo", "name": "x", "horizon_days": 0, "steps": 5, "paths": 3,
               "seed": -1}},
     [{"field": "horizon_days", "message": "horizon_days must be > 0 (got 0)"},
      {"field": "seed", "message": "seed must be >= 0 (got -1)"}]),
    ({"spec": {"kind": "monte-carlo", "name": "x", "horizon_days": 5, "steps": 5, "paths": 3,
               "seed": 1, "antithetic": True}},
     [{"field": "paths", "message": "paths must be even when antithetic is true (got 3)"}]),
    ({"spec": {"kind": "fixed-shock", "name": "x"}},
     [{"field": None, "message": "a fixed-shock scenario needs at least one of shocks, "
                                 "iv_multipliers, depegs, oracle_pushes"}]),
    ({"spec": {"name": "x"}},
     [{"field": "kind", "message": "kind is required (one of monte-carlo, fixed-shock, "
                                   "historical)"}]),
    ({"spec": [1, 2]}, [{"field": None, "message": "a scenario must be a mapping (got list)"}]),
    ({"library": "nope"},
     [{"field": "library", "message": "unknown scenario 'nope' (library: eth-35-steth-93, "
                                      "gjr-fhs-10d, gjr-tcopula-1d, march-2020, march-2023, "
                                      "may-june-2022, nov-2022)"}]),
    # a name is never read as a file
    ({"library": "simulate/scenarios/march-2020.yaml"},
     [{"field": "library", "message": "unknown scenario 'simulate/scenarios/march-2020.yaml' "
                                      "(library: eth-35-steth-93, gjr-fhs-10d, gjr-tcopula-1d, "
                                      "march-2020, march-2023, may-june-2022, nov-2022)"}]),
])
def test_invalid_input_lists_each_field_error(api: ApiServer, value: dict[str, Any],
                                              errors: list[dict[str, Any]]) -> None:
    assert _validate(api, value) == {"__typename": "InvalidScenario", "errors": errors}


def test_input_is_one_of_library_or_spec(api: ApiServer) -> None:
    r = api.gql(VALIDATE, {"input": {"library": "march-2020", "spec": {}}}, role="analyst")
    assert r.errors[0]["message"] == ("OneOf Input Object 'ScenarioInput' must specify exactly "
                                      "one key.")
    assert r.body.get("data") is None
