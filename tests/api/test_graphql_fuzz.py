"""Schema fuzzing against a running server on both stores: queries and mutations generated
from the SDL (hypothesis-graphql), sent over HTTP with an admin key. Whatever they ask, the
server answers 200 with data or client errors: never a 5xx, never an internal error."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import graphql
import pytest
from apiserver import ApiServer, serve_backend
from helpers import tiny_snapshot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import Mode, mutations, nodes, queries

from api.graphql.schema import SDL_PATH
from api.keys import KeyStore
from api.settings import ApiSettings

SDL = SDL_PATH.read_text("utf-8")

_NAMES = st.sampled_from(["kind", "name", "shocks", "depegs", "iv_multipliers", "paths",
                          "steps", "seed", "horizon_days", "antithetic", "start", "end",
                          "sources", "path", "ETH", "stETH"]) | st.from_regex(
    r"\A[_A-Za-z][_0-9A-Za-z]{0,8}\Z")
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12)
    | st.sampled_from(["monte-carlo", "fixed-shock", "historical", "2022-06-01"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_NAMES, inner, max_size=5),
    max_leaves=12)


def _literal(value: Any) -> graphql.ValueNode:
    """A JSON value as a GraphQL literal."""
    if value is None:
        return nodes.Null
    if isinstance(value, bool):
        return nodes.Boolean(value)
    if isinstance(value, int):
        return nodes.Int(value)
    if isinstance(value, float):
        return nodes.Float(value)
    if isinstance(value, str):
        return nodes.String(value)
    if isinstance(value, list):
        return nodes.List([_literal(v) for v in value])
    return nodes.Object([graphql.ObjectFieldNode(name=graphql.NameNode(value=k),
                                                 value=_literal(v)) for k, v in value.items()])


SCALARS = {"JSON": _JSON.map(_literal)}
OPERATIONS = queries(SDL, custom_scalars=SCALARS) | mutations(SDL, custom_scalars=SCALARS)
INVALID = (queries(SDL, custom_scalars=SCALARS, mode=Mode.NEGATIVE)
           | mutations(SDL, custom_scalars=SCALARS, mode=Mode.NEGATIVE))


@pytest.fixture(scope="module", params=["memory", "neo4j"])
def fuzz(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
         key_file: tuple[KeyStore, dict[str, str]]) -> Iterator[ApiServer]:
    yield from serve_backend(request, tmp_path_factory, key_file, tiny_snapshot(),
                             ApiSettings(rate_limit=10_000, rate_burst=10_000))


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(operation=OPERATIONS)
def test_generated_operations_never_fail_the_server(fuzz: ApiServer, operation: str) -> None:
    r = fuzz.post({"query": operation}, role="admin")
    assert r.status_code == 200, (operation, r.status_code, r.text)
    body = r.json()
    assert "data" in body or body.get("errors"), body
    codes = [(e.get("extensions") or {}).get("code") for e in body.get("errors") or []]
    assert "INTERNAL_ERROR" not in codes, (operation, body)


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(operation=INVALID)
def test_invalid_operations_are_refused_cleanly(fuzz: ApiServer, operation: str) -> None:
    """Operations with one schema violation each (a wrong argument type, a missing required
    argument, an unknown enum value) are refused with errors, never a 5xx."""
    r = fuzz.post({"query": operation}, role="admin")
    assert r.status_code == 200, (operation, r.status_code, r.text)
    body = r.json()
    assert body.get("errors"), (operation, body)
    codes = [(e.get("extensions") or {}).get("code") for e in body["errors"]]
    assert "INTERNAL_ERROR" not in codes, (operation, body)
