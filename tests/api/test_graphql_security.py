"""Authentication, roles, limits, masked errors and CORS, over real HTTP on both stores."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

import httpx
import neo4j
import pytest
from apiserver import NEO4J_URI, ApiServer, serve_backend
from helpers import tiny_snapshot

from api.keys import KeyStore
from api.settings import ApiSettings

ORIGIN = "https://risk.example"


@pytest.fixture(scope="module", params=["memory", "neo4j"])
def strict(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
           key_file: tuple[KeyStore, dict[str, str]]) -> Iterator[ApiServer]:
    """A server whose keys get 3 requests (the bucket refills one per 1000 s), with CORS open
    to one origin."""
    yield from serve_backend(request, tmp_path_factory, key_file, tiny_snapshot(), ApiSettings(
        rate_limit=0.001, rate_burst=3, cors_origins=(ORIGIN,)))


# -- authentication -------------------------------------------------------------------------


def test_requests_without_a_valid_key_are_refused(api: ApiServer) -> None:
    q = {"query": "{ me { role } }"}
    cases = [
        ({}, "missing API key: send the header 'Authorization: Bearer <key>'"),
        ({"authorization": "Basic dXNlcjpwdw=="},
         "the Authorization header must be 'Bearer <key>' (got a 'Basic' header)"),
        ({"authorization": "Bearer ctg_00000000_" + "A" * 43},
         "invalid API key (unknown, revoked or malformed)"),
        ({"authorization": "Bearer " + api.tokens["admin"][:-1]},
         "invalid API key (unknown, revoked or malformed)"),
    ]
    for headers, message in cases:
        r = api.client.post("/graphql", json=q, headers=headers)
        assert r.status_code == 401
        body = r.json()
        assert body["errors"][0]["message"] == message
        assert body["errors"][0]["extensions"] == {"code": "UNAUTHENTICATED",
                                                   "requestId": r.headers["x-request-id"]}
        assert r.headers["www-authenticate"] == 'Bearer realm="contagion"'


def test_a_revoked_key_is_refused_at_once(api: ApiServer) -> None:
    key, token = api.keys.create("short-lived", "viewer")
    assert api.gql("{ me { name } }", token=token).data == {"me": {"name": "short-lived"}}
    api.keys.revoke(key.id)
    r = api.gql("{ me { name } }", token=token)
    assert r.status == 401 and r.error == ("invalid API key (unknown, revoked or malformed)",
                                           "UNAUTHENTICATED")


def test_health_needs_no_key(api: ApiServer) -> None:
    r = api.client.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


def test_only_post_is_served(api: ApiServer) -> None:
    r = api.client.get("/graphql", params={"query": "{ me { role } }"},
                       headers={"authorization": f"Bearer {api.tokens['viewer']}"})
    assert r.status_code == 405
    r = api.client.post("/graphql", content=b"{not json",
                        headers={"authorization": f"Bearer {api.tokens['viewer']}",
                                 "content-type": "application/json"})
    assert r.status_code == 400 and r.text == "Unable to parse request body as JSON"


# -- roles ------------------------------------------------------------------------------------


VALIDATE = 'mutation { validateScenario(input: {library: "march-2020"}) { __typename } }'


@pytest.mark.parametrize("role", ["viewer", "analyst", "admin"])
def test_roles(api: ApiServer, role: str) -> None:
    assert api.gql("{ me { role } positions(first: 1) { edges { node { id } } } }",
                   role=role).data == {"me": {"role": role.upper()},
                                       "positions": {"edges": [{"node": {"id": "p1"}}]}}
    mutation = api.gql(VALIDATE, role=role)
    if role == "viewer":
        assert mutation.error == ("Mutation.validateScenario needs the analyst role or higher "
                                  "(this API key has viewer)", "FORBIDDEN")
        assert mutation.body["data"] is None
    else:
        assert mutation.data == {"validateScenario": {"__typename": "ValidScenario"}}
    keys = api.gql("{ apiKeys { name role } }", role=role)
    if role == "admin":
        listed = {(k["name"], k["role"]) for k in keys.data["apiKeys"]}
        assert {("test viewer", "VIEWER"), ("test analyst", "ANALYST"),
                ("test admin", "ADMIN")} <= listed
    else:
        assert keys.error == (f"Query.apiKeys needs the admin role or higher (this API key "
                              f"has {role})", "FORBIDDEN")


# -- limits -----------------------------------------------------------------------------------


def test_depth_limit(api: ApiServer) -> None:
    # depth counts nesting below the root field: pools 0, edges 1, node 2, ..., id 11
    deep = ("{ pools { edges { node { protocol { pools { protocol { pools { protocol { pools "
            "{ protocol { pools { id } } } } } } } } } } } }")
    r = api.gql(deep)
    assert r.status == 200
    assert r.error == ("'anonymous' exceeds maximum operation depth of 10", None)
    ok = ("{ pools { edges { node { protocol { pools { protocol { pools { protocol { pools "
          "{ protocol { id } } } } } } } } } } }")
    assert api.gql(ok).data["pools"]["edges"][0]["node"]["protocol"]["pools"]


def test_alias_limit(api: ApiServer) -> None:
    many = "{ " + " ".join(f"a{i}: me {{ role }}" for i in range(16)) + " }"
    assert api.gql(many).error == ("16 aliases found. Allowed: 15", None)
    fifteen = "{ " + " ".join(f"a{i}: me {{ role }}" for i in range(15)) + " }"
    assert len(api.gql(fifteen).data) == 15


def test_token_limit(api: ApiServer) -> None:
    huge = "{ me { " + " ".join(["role"] * 2000) + " } }"
    assert api.gql(huge).error == (
        "Syntax Error: Document contains more than 2000 tokens. Parsing aborted.", None)


def test_cost_limit(api: ApiServer) -> None:
    # pools 1 + 100 pools x (edges 1 + node 1 + positions 1 + 100 x (edges 1 + node 1 + pool 1))
    q = ("{ pools(first: 100) { edges { node { positions(first: 100) { edges { node { id "
         "pool { id } } } } } } } }")
    r = api.gql(q)
    assert r.error == ("query cost 30301 exceeds the limit of 5000 (each object field costs 1, "
                       "times the page size of every connection around it; ask for smaller "
                       "pages or fewer nested connections)", "COST_LIMIT")
    assert r.body["data"] is None and r.body["extensions"]["storeCalls"] == 0
    # variables count as much as literals
    qv = ("query($n: Int) { pools(first: $n) { edges { node { positions(first: $n) { edges { "
          "node { id pool { id } } } } } } } }")
    assert api.gql(qv, {"n": 100}).error[1] == "COST_LIMIT"
    small = api.gql(qv, {"n": 5})
    assert small.body["extensions"]["cost"] == 1 + 5 * (3 + 5 * 3)
    assert small.data["pools"]["edges"]


def test_body_size_limit(api: ApiServer) -> None:
    r = api.post({"query": "{ me { role } }", "padding": "x" * 70_000})
    assert r.status_code == 413
    assert r.json()["errors"][0]["message"] == "request body must be at most 65536 bytes (got more)"
    assert r.json()["errors"][0]["extensions"]["code"] == "BODY_TOO_LARGE"


def test_rate_limit_per_key(strict: ApiServer) -> None:
    key, token = strict.keys.create(f"burst {strict.backend}", "viewer")
    for _ in range(3):
        assert strict.gql("{ me { name } }", token=token).status == 200
    r = strict.gql("{ me { name } }", token=token)
    assert r.status == 429
    message, code = r.error
    assert code == "RATE_LIMITED"
    assert re.fullmatch(rf"rate limit of 0\.001 requests/s \(burst 3\) exceeded for API key "
                        rf"{key.id}; retry in \d+\.\d\d s", message), message
    assert r.headers["retry-after"] == "1000"
    # another key has its own bucket
    _, other = strict.keys.create(f"other {strict.backend}", "viewer")
    assert strict.gql("{ me { name } }", token=other).data == {
        "me": {"name": f"other {strict.backend}"}}


# -- masked errors ----------------------------------------------------------------------------


def _corrupt(api: ApiServer, add: bool) -> None:
    """A node that bypassed validation (an asset of an unknown kind), written behind the
    store's back."""
    if api.backend == "memory":
        g = api.store.graph  # type: ignore[attr-defined]
        if add:
            g.add_node("ghost", label="Asset", id="ghost", symbol="G", kind="bogus", price=1.0,
                       decimals=1, market_depth_usd=0.0)
        else:
            g.remove_node("ghost")
        return
    with neo4j.GraphDatabase.driver(NEO4J_URI) as driver:
        if add:
            driver.execute_query("CREATE (:Asset {id: 'ghost', symbol: 'G', kind: 'bogus', "
                                 "price: 1.0, decimals: 1, market_depth_usd: 0.0})")
        else:
            driver.execute_query("MATCH (n:Asset {id: 'ghost'}) DELETE n")


def test_internal_errors_are_masked_and_logged(api: ApiServer,
                                               caplog: pytest.LogCaptureFixture) -> None:
    _corrupt(api, True)
    try:
        with caplog.at_level(logging.INFO, logger="contagion.api"):
            r = api.gql('{ node(id: "ghost") { id } ok: node(id: "p1") { id } }')
    finally:
        _corrupt(api, False)
    rid = r.headers["x-request-id"]
    assert r.status == 200
    assert r.error == (f"internal error (request id {rid}); the server log has the details",
                       "INTERNAL_ERROR")
    assert r.body["data"] == {"node": None, "ok": {"id": "p1"}}
    assert r.body["extensions"]["requestId"] == rid
    assert "bogus" not in str(r.body) and "Traceback" not in str(r.body)
    logged = [rec for rec in caplog.records if rec.name == "contagion.api"
              and f"request {rid}: internal error at node" in rec.getMessage()]
    assert len(logged) == 1
    assert logged[0].levelno == logging.ERROR
    assert logged[0].exc_info is not None
    assert "'bogus' is not a valid AssetKind" in str(logged[0].exc_info[1])


# -- CORS -------------------------------------------------------------------------------------


def test_cors(strict: ApiServer) -> None:
    c: httpx.Client = strict.client
    pre = {"access-control-request-method": "POST",
           "access-control-request-headers": "authorization, content-type"}
    ok = c.options("/graphql", headers={"origin": ORIGIN, **pre})
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == ORIGIN
    assert "POST" in ok.headers["access-control-allow-methods"]
    bad = c.options("/graphql", headers={"origin": "https://evil.example", **pre})
    assert bad.status_code == 400 and bad.text == "Disallowed CORS origin"
    _, token = strict.keys.create(f"cors {strict.backend}", "viewer")
    r = c.post("/graphql", json={"query": "{ me { role } }"},
               headers={"origin": ORIGIN, "authorization": f"Bearer {token}"})
    assert r.headers["access-control-allow-origin"] == ORIGIN
    assert "x-request-id" in r.headers["access-control-expose-headers"]
    r = c.post("/graphql", json={"query": "{ me { role } }"},
               headers={"origin": "https://evil.example", "authorization": f"Bearer {token}"})
    assert "access-control-allow-origin" not in r.headers


def test_an_unreadable_key_file_refuses_every_request(strict: ApiServer) -> None:
    """Fail closed: while the key file cannot be read no key is trusted (503, logged), and
    service resumes once it is readable again."""
    path = strict.keys.path
    good = path.read_bytes()
    try:
        path.write_text("{not json")
        r = strict.gql("{ me { role } }", role="admin")
        assert r.status == 503
        assert r.error == ("the server cannot read its API key file; try again later",
                           "UNAVAILABLE")
    finally:
        path.write_bytes(good)
    _, token = strict.keys.create(f"after {strict.backend}", "viewer")
    assert strict.gql("{ me { name } }", token=token).data == {
        "me": {"name": f"after {strict.backend}"}}
