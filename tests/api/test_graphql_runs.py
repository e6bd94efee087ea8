"""Scenario runs over real HTTP and websockets, on both stores: launching (each role, invalid
input with its field errors, the paths limit), progress to completion over the
``scenarioProgress`` subscription with the metrics equal to an in-process ``run_cascade`` of
the same spec, cancelling (the worker process is gone), listing and paging, comparing, a run
outliving its client, and a restarted server listing the runs of its predecessor.

Monte Carlo runs fit the market model on the real BTC and ETH daily closes of
``data/market`` (see ``data/README.md``), as ``contagion simulate --prices`` does.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
import websockets
from apiserver import ApiServer, serve_backend, start_server
from helpers import MARKET_DATA, tiny_snapshot
from websockets.sync.client import ClientConnection, connect

from api.keys import KeyStore
from api.runs import RunRecord, RunStatus
from api.settings import ApiSettings
from graph.export import compile_system
from graph.store import MemoryStore
from simulate.cascade import CascadeParams
from simulate.cascade.run import RunResult, run_cascade
from simulate.market import fit_market_model
from simulate.pipeline import PriceHistory, RunRequest, execute_run
from simulate.prices import read_closes
from simulate.scenarios import load_scenario, scenario_from_dict

DATA = MARKET_DATA / "prices_daily"
PRICES = (PriceHistory(asset="BTC", path=DATA / "btc-usd-max_erickfm.csv"),
          PriceHistory(asset="ETH", path=DATA / "eth-usd-max_erickfm.csv"))
HISTORY_DAYS = 1460
MAX_PATHS = 2_000_000

SHOCK = {"kind": "fixed-shock", "name": "eth-35-steth-90", "shocks": {"ETH": -0.35},
         "depegs": {"stETH": 0.90}}

RUN = """mutation($input: RunScenarioInput!) { runScenario(input: $input) {
  __typename
  ... on ScenarioQueued { run { id status progress paths seed rounds launchedBy
                                scenario { name kind } } }
  ... on InvalidScenario { errors { field message } } } }"""

RUN_FIELDS = """id status progress message error paths seed rounds launchedBy createdAt startedAt
  finishedAt scenario { name }"""

METRICS = """metrics { paths codeVersion
  badDebt { mean meanSe pPositive max tail { level var varSe cvar cvarSe } }
  liquidated { mean meanSe pPositive max tail { level var varSe cvar cvarSe } }
  protocols: failures(nodeType: PROTOCOL, top: 10) { nodeId probability se }
  pools: failures(nodeType: POOL) { nodeId probability se }
  assets: failures(nodeType: ASSET) { nodeId probability se }
  positions: failures(nodeType: POSITION, top: 3) { nodeId probability se }
  failing(nodeType: POSITION) { failing of }
  contagionPaths(top: 5) { path count probability }
  badDebtByProtocol { nodeId value } }"""

GET = "query($id: ID!) { scenarioRun(id: $id) { " + RUN_FIELDS + " " + METRICS + " } }"

CANCEL = """mutation($id: ID!) { cancelScenario(id: $id) { __typename
  ... on ScenarioCancelled { run { id status error progress } }
  ... on RunNotCancellable { message run { id status } } } }"""

PROGRESS = "subscription($id: ID!) { scenarioProgress(id: $id) { id status progress message } }"


@pytest.fixture(scope="module", params=["memory", "neo4j"])
def runs_api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
             key_file: tuple[KeyStore, dict[str, str]]) -> Iterator[ApiServer]:
    """A server with the price histories, room for long runs, and no practical rate limit."""
    assert all(h.path.is_file() for h in PRICES), f"real price data missing in {DATA}"
    yield from serve_backend(request, tmp_path_factory, key_file, tiny_snapshot(), ApiSettings(
        prices=PRICES, history_days=HISTORY_DAYS, max_run_paths=MAX_PATHS,
        rate_limit=10_000, rate_burst=10_000))


@pytest.fixture(scope="module")
def market() -> Any:
    """The market model fitted on the server's histories, written out by hand: the last
    ``HISTORY_DAYS`` dates of the union of both assets' daily closes."""
    series = {h.asset: read_closes(h.path, h.asset).series for h in PRICES}
    return fit_market_model(pd.concat(series, axis=1).sort_index().iloc[-HISTORY_DAYS:])


def launch(api: ApiServer, value: dict[str, Any], role: str = "analyst") -> dict[str, Any]:
    got = api.gql(RUN, {"input": value}, role=role).data["runScenario"]
    assert got["__typename"] == "ScenarioQueued", got
    return got["run"]  # type: ignore[no-any-return]


def get(api: ApiServer, run_id: str) -> dict[str, Any]:
    return api.gql(GET, {"id": run_id}).data["scenarioRun"]  # type: ignore[no-any-return]


def wait(api: ApiServer, run_id: str, *, until: frozenset[str] = frozenset(
        {"SUCCEEDED", "FAILED", "CANCELLED"}), timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        run = get(api, run_id)
        if run["status"] in until:
            return run
        assert time.monotonic() < deadline, f"run {run_id} still {run['status']}"
        time.sleep(0.1)


@contextlib.contextmanager
def ws_connect(api: ApiServer, *, token: str | None = None,
               header: str | None = None) -> Iterator[ClientConnection]:
    """A graphql-transport-ws connection, initialised with ``token`` in the payload."""
    url = api.url.replace("http://", "ws://") + "/graphql"
    with connect(url, subprotocols=[websockets.Subprotocol("graphql-transport-ws")],
                 additional_headers={"authorization": header} if header else None,
                 open_timeout=10) as ws:
        payload = {} if token is None else {"authorization": f"Bearer {token}"}
        ws.send(json.dumps({"type": "connection_init", "payload": payload}))
        yield ws


def subscribe(ws: ClientConnection, run_id: str) -> Iterator[dict[str, Any]]:
    """The messages of one scenarioProgress subscription, up to its ``complete``."""
    ack = json.loads(ws.recv(timeout=10))
    assert ack["type"] == "connection_ack", ack
    ws.send(json.dumps({"id": "1", "type": "subscribe",
                        "payload": {"query": PROGRESS, "variables": {"id": run_id}}}))
    while True:
        msg = json.loads(ws.recv(timeout=120))
        yield msg
        if msg["type"] in ("complete", "error"):
            return


def _loss(m: dict[str, Any]) -> dict[str, Any]:
    """A loss distribution of ``RunResult.metrics`` in the API's shape."""
    return {"mean": m["mean"], "meanSe": m["mean_se"], "pPositive": m["p_positive"],
            "max": m["max"], "tail": [
                {"level": float(k), "var": m[k]["var"], "varSe": m[k]["var_se"],
                 "cvar": m[k]["cvar"], "cvarSe": m[k]["cvar_se"]} for k in ("0.95", "0.99")]}


def _failures(fp: dict[str, Any], top: int) -> list[dict[str, Any]]:
    rows = sorted(fp.items(), key=lambda kv: (-kv[1]["p"], kv[0]))[:top]
    return [{"nodeId": k, "probability": v["p"], "se": v["se"]} for k, v in rows]


def assert_metrics_equal(got: dict[str, Any], want: RunResult) -> None:
    m = want.metrics
    assert got["paths"] == m["paths"]
    assert got["badDebt"] == _loss(m["bad_debt_usd"])
    assert got["liquidated"] == _loss(m["liquidated_usd"])
    fp = m["failure_probability"]
    assert got["protocols"] == _failures(fp["protocol"], 10)
    assert got["pools"] == _failures(fp["pool"], 10)
    assert got["assets"] == _failures(fp["asset"], 10)
    assert got["failing"] == {"failing": fp["position"]["failing"], "of": fp["position"]["of"]}
    assert [p["nodeId"] for p in got["positions"]] == list(fp["position"]["top"])[:3]
    assert got["contagionPaths"] == [{k: c[k] for k in ("path", "count", "probability")}
                                     for c in m["contagion_paths"][:5]]
    assert got["badDebtByProtocol"] == [{"nodeId": k, "value": v}
                                        for k, v in m["bad_debt_by_protocol_usd"].items()]
    assert got["codeVersion"] == want.code_version


# -- launching --------------------------------------------------------------------------------


def test_only_analysts_and_admins_launch_or_cancel(runs_api: ApiServer) -> None:
    r = runs_api.gql(RUN, {"input": {"scenario": {"spec": SHOCK}}}, role="viewer")
    assert r.error == ("Mutation.runScenario needs the analyst role or higher (this API key "
                       "has viewer)", "FORBIDDEN")
    assert r.body["data"] is None
    for role in ("analyst", "admin"):
        run = launch(runs_api, {"scenario": {"spec": SHOCK}}, role=role)
        key = runs_api.keys.authenticate(runs_api.tokens[role])
        assert key is not None and run["launchedBy"] == key.id
        assert (run["paths"], run["seed"], run["rounds"]) == (1, "0", 24)
        wait(runs_api, run["id"])
    r = runs_api.gql(CANCEL, {"id": run["id"]}, role="viewer")
    assert r.error == ("Mutation.cancelScenario needs the analyst role or higher (this API "
                       "key has viewer)", "FORBIDDEN")
    # an analyst cancels only its own runs (this one is the admin's)
    r = runs_api.gql(CANCEL, {"id": run["id"]}, role="analyst")
    assert r.error == (f"run {run['id']} was launched by another API key; only that key or an "
                       "admin may cancel it", "FORBIDDEN")
    r = runs_api.gql(CANCEL, {"id": "nope"}, role="admin")
    assert r.error == ("no run has id 'nope'", "NOT_FOUND")


@pytest.mark.parametrize(("value", "errors"), [
    ({"scenario": {"spec": {**SHOCK, "shocks": {"ETH": -1.5}}}},
     [{"field": "scenario.shocks.ETH", "message": "shocks.ETH must be > -1 (got -1.5)"}]),
    ({"scenario": {"library": "nope"}},
     [{"field": "scenario.library", "message": "unknown scenario 'nope' (library: "
       "eth-35-steth-93, gjr-fhs-10d, gjr-tcopula-1d, march-2020, march-2023, may-june-2022, "
       "nov-2022)"}]),
    ({"scenario": {"library": "gjr-tcopula-1d"}, "paths": MAX_PATHS + 1, "seed": -3},
     [{"field": "paths", "message": f"paths must be between 1 and {MAX_PATHS} on this server "
                                    f"(got {MAX_PATHS + 1})"},
      {"field": "seed", "message": "seed must be >= 0 (got -3)"}]),
    ({"scenario": {"library": "gjr-fhs-10d"}, "rounds": 5},
     [{"field": "rounds", "message": "rounds must be between the scenario's steps (10) and "
                                     "10000 (got 5)"}]),
    ({"scenario": {"spec": SHOCK}, "paths": 10},
     [{"field": "paths", "message": "paths applies to Monte Carlo scenarios only (fixed-shock "
                                    "scenarios are one path) (got 10)"}]),
])
def test_invalid_runs_list_each_field_error(runs_api: ApiServer, value: dict[str, Any],
                                            errors: list[dict[str, Any]]) -> None:
    before = len(runs_api.runs.list())
    got = runs_api.gql(RUN, {"input": value}, role="analyst").data["runScenario"]
    assert got == {"__typename": "InvalidScenario", "errors": errors}
    assert len(runs_api.runs.list()) == before  # nothing queued


def test_monte_carlo_needs_the_servers_price_histories(api: ApiServer) -> None:
    got = api.gql(RUN, {"input": {"scenario": {"library": "gjr-tcopula-1d"}, "paths": 10}},
                  role="analyst").data["runScenario"]
    assert got == {"__typename": "InvalidScenario", "errors": [{
        "field": "scenario.kind", "message": "this server has no price histories to fit the "
        "market model on, so it cannot run Monte Carlo scenarios (start it with --prices "
        "ASSET=FILE)"}]}


# -- executing ---------------------------------------------------------------------------------


def test_fixed_shock_progress_over_websocket_and_metrics(runs_api: ApiServer) -> None:
    run = launch(runs_api, {"scenario": {"spec": SHOCK}})
    assert run["status"] in ("QUEUED", "RUNNING") and run["scenario"] == {
        "name": "eth-35-steth-90", "kind": "fixed-shock"}
    with ws_connect(runs_api, token=runs_api.tokens["viewer"]) as ws:
        msgs = list(subscribe(ws, run["id"]))
    assert msgs[-1] == {"id": "1", "type": "complete"}
    states = [m["payload"]["data"]["scenarioProgress"] for m in msgs[:-1]]
    progress = [s["progress"] for s in states]
    assert progress == sorted(progress)
    assert states[-1] == {"id": run["id"], "status": "SUCCEEDED", "progress": 1.0,
                          "message": "succeeded"}
    got = get(runs_api, run["id"])
    assert got["error"] is None and got["startedAt"] <= got["finishedAt"]
    want = run_cascade(compile_system(tiny_snapshot()), scenario_from_dict(SHOCK),
                       params=CascadeParams(rounds=24))
    assert_metrics_equal(got["metrics"], want)
    assert got["metrics"]["badDebt"]["mean"] > 0  # the shock does damage: not a vacuous match


def test_monte_carlo_run_equals_in_process_and_compares(runs_api: ApiServer,
                                                        market: Any) -> None:
    spec = {"scenario": {"library": "gjr-tcopula-1d"}, "paths": 3000, "seed": 11}
    a = launch(runs_api, spec)
    assert (a["paths"], a["seed"]) == (3000, "11")
    with ws_connect(runs_api, token=runs_api.tokens["analyst"]) as ws:
        states = [m["payload"]["data"]["scenarioProgress"]
                  for m in subscribe(ws, a["id"]) if m["type"] == "next"]
    assert states[-1]["status"] == "SUCCEEDED" and states[-1]["progress"] == 1.0
    got = get(runs_api, a["id"])["metrics"]
    want = run_cascade(compile_system(tiny_snapshot()), load_scenario("gjr-tcopula-1d"),
                       market=market, paths=3000, seed=11, params=CascadeParams(rounds=24))
    assert_metrics_equal(got, want)
    assert got["liquidated"]["tail"][0]["var"] > 0

    b = wait(runs_api, launch(runs_api, spec)["id"])
    c = wait(runs_api, launch(runs_api, {**spec, "seed": 12})["id"])
    q = """query($a: ID!, $b: ID!) { compareRuns(a: $a, b: $b) { a { id } b { id }
        inputsDiffer metrics { metric a b diff z } protocolFailureChange { nodeId value }
        assetFailureChange { nodeId value } } }"""
    same = runs_api.gql(q, {"a": a["id"], "b": b["id"]}).data["compareRuns"]
    assert same["inputsDiffer"] == [] and (same["a"]["id"], same["b"]["id"]) == (a["id"],
                                                                                  b["id"])
    assert len(same["metrics"]) == 10
    assert all(r["diff"] == 0.0 and r["a"] == r["b"] for r in same["metrics"])
    assert all(r["value"] == 0.0 for r in same["protocolFailureChange"])
    other = runs_api.gql(q, {"a": a["id"], "b": c["id"]}).data["compareRuns"]
    assert other["inputsDiffer"] == ["seed"]
    mean = next(r for r in other["metrics"] if r["metric"] == "liquidated_usd.mean")
    assert mean["diff"] == pytest.approx(mean["b"] - mean["a"]) and mean["diff"] != 0
    assert mean["z"] is not None
    r = runs_api.gql(q, {"a": a["id"], "b": "nope"})
    assert r.error == ("no run has id 'nope'", "NOT_FOUND")


def test_cancel_stops_the_worker(runs_api: ApiServer) -> None:
    long = launch(runs_api, {"scenario": {"library": "gjr-tcopula-1d"}, "paths": MAX_PATHS})
    queued = launch(runs_api, {"scenario": {"spec": SHOCK}})  # waits: one run at a time
    running = wait(runs_api, long["id"], until=frozenset({"RUNNING"}))
    deadline = time.monotonic() + 60
    while running["progress"] == 0.0:
        assert time.monotonic() < deadline
        time.sleep(0.1)
        running = get(runs_api, long["id"])
    assert get(runs_api, queued["id"])["status"] == "QUEUED"
    pid = runs_api.runs.worker_pid(long["id"])
    assert pid is not None
    os.kill(pid, 0)  # alive

    r = runs_api.gql(CANCEL, {"id": queued["id"]}, role="analyst").data["cancelScenario"]
    assert r == {"__typename": "ScenarioCancelled", "run": {
        "id": queued["id"], "status": "CANCELLED", "progress": 0.0,
        "error": "cancelled by request before it started"}}
    r = runs_api.gql(CANCEL, {"id": long["id"]}, role="analyst").data["cancelScenario"]
    assert r["__typename"] == "ScenarioCancelled"
    assert (r["run"]["status"], r["run"]["error"]) == ("CANCELLED", "cancelled by request")
    assert 0 < r["run"]["progress"] < 1
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # the worker is gone
    assert get(runs_api, long["id"])["metrics"] is None
    again = runs_api.gql(CANCEL, {"id": long["id"]}, role="analyst").data["cancelScenario"]
    assert again == {"__typename": "RunNotCancellable", "run": {
        "id": long["id"], "status": "CANCELLED"}, "message": (
        f"run {long['id']} has already finished (cancelled); only queued or running runs can "
        "be cancelled")}


def test_a_run_outlives_its_clients(runs_api: ApiServer) -> None:
    with httpx.Client(base_url=runs_api.url) as client:
        r = client.post("/graphql", json={"query": RUN, "variables": {"input": {
            "scenario": {"library": "gjr-tcopula-1d"}, "paths": 20_000, "seed": 3}}},
            headers={"authorization": f"Bearer {runs_api.tokens['analyst']}"})
        run_id = r.json()["data"]["runScenario"]["run"]["id"]
    with ws_connect(runs_api, token=runs_api.tokens["analyst"]) as ws:
        first = next(subscribe(ws, run_id))
        assert first["type"] == "next" and first["payload"]["data"]["scenarioProgress"][
            "status"] in ("QUEUED", "RUNNING")
    # the watcher went away mid-run
    done = wait(runs_api, run_id)
    assert (done["status"], done["progress"], done["metrics"]["paths"]) == ("SUCCEEDED", 1.0,
                                                                           20_000)


# -- listing -----------------------------------------------------------------------------------


def test_runs_are_paged_newest_first(runs_api: ApiServer) -> None:
    for _ in range(3):
        wait(runs_api, launch(runs_api, {"scenario": {"spec": SHOCK}})["id"])
    every = [r.id for r in runs_api.runs.list()]
    assert len(every) >= 3 and every == sorted(every, reverse=True)
    q = """query($first: Int, $after: String, $last: Int, $before: String,
                 $status: RunStatus) {
      scenarioRuns(first: $first, after: $after, last: $last, before: $before,
                   status: $status) {
        edges { cursor node { id status } }
        pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }"""

    def page(**v: Any) -> dict[str, Any]:
        return runs_api.gql(q, v).data["scenarioRuns"]  # type: ignore[no-any-return]

    p1 = page(first=2)
    assert [e["node"]["id"] for e in p1["edges"]] == every[:2]
    assert p1["pageInfo"]["hasNextPage"] and not p1["pageInfo"]["hasPreviousPage"]
    p2 = page(first=len(every), after=p1["pageInfo"]["endCursor"])
    assert [e["node"]["id"] for e in p2["edges"]] == every[2:]
    assert not p2["pageInfo"]["hasNextPage"]
    back = page(last=1, before=p2["pageInfo"]["startCursor"])
    assert [e["node"]["id"] for e in back["edges"]] == [every[1]]
    assert back["pageInfo"]["hasPreviousPage"] and not back["pageInfo"]["hasNextPage"]
    assert page(first=0)["edges"] == [] and page(last=0)["edges"] == []
    assert page(first=2, after=p2["pageInfo"]["endCursor"])["edges"] == []
    done = page(first=100, status="SUCCEEDED")
    assert {e["node"]["status"] for e in done["edges"]} == {"SUCCEEDED"}
    assert [e["node"]["id"] for e in done["edges"]] == [
        r.id for r in runs_api.runs.list(RunStatus.SUCCEEDED)]
    for v, message in [
        ({"first": 101}, "'first' must be between 0 and 100 (got 101)"),
        ({"first": 1, "last": 1}, "pass 'first' (forward) or 'last' (backward), not both"),
        ({"after": "bm9wZQ=="}, "'after' must be a cursor returned by scenarioRuns "
                                "(got 'bm9wZQ==')"),
    ]:
        assert runs_api.gql(q, v).error == (message, "BAD_USER_INPUT")
    assert runs_api.gql(GET, {"id": "nope"}).data == {"scenarioRun": None}


def test_top_lists_are_bounded_and_priced(runs_api: ApiServer) -> None:
    run = runs_api.runs.list(RunStatus.SUCCEEDED)[0]
    q = ("query($id: ID!, $top: Int!) { scenarioRun(id: $id) { metrics { "
         "failures(nodeType: POOL, top: $top) { nodeId } } } }")
    r = runs_api.gql(q, {"id": run.id, "top": 101})
    assert r.error == ("'top' must be between 0 and 100 (got 101)", "BAD_USER_INPUT")
    costly = ("{ scenarioRuns(first: 100) { edges { node { metrics { "
              "failures(nodeType: POOL, top: 100) { nodeId } } } } } }")
    r = runs_api.gql(costly)
    assert r.error[1] == "COST_LIMIT" and r.error[0].startswith("query cost 10401 exceeds")


# -- websockets --------------------------------------------------------------------------------


def test_websocket_authentication(runs_api: ApiServer) -> None:
    run_id = runs_api.runs.list()[0].id
    # no key in connection_init: closed with 4403
    with ws_connect(runs_api) as ws, pytest.raises(websockets.ConnectionClosed) as e:
        ws.recv(timeout=10)
    assert e.value.rcvd is not None and e.value.rcvd.code == 4403
    with ws_connect(runs_api, token=runs_api.tokens["viewer"][:-1]) as ws, \
            pytest.raises(websockets.ConnectionClosed) as e:
        ws.recv(timeout=10)
    assert e.value.rcvd is not None and e.value.rcvd.code == 4403
    # a bad Authorization header: the handshake itself is refused
    with pytest.raises(websockets.InvalidStatus) as refused, \
            ws_connect(runs_api, header="Bearer nope"):
        pass
    assert refused.value.response.status_code == 403
    # a good header needs no key in the payload
    with ws_connect(runs_api, header=f"Bearer {runs_api.tokens['viewer']}") as ws:
        msgs = list(subscribe(ws, run_id))
    assert msgs[0]["payload"]["data"]["scenarioProgress"]["id"] == run_id
    # subscribing before connection_init: 4401
    url = runs_api.url.replace("http://", "ws://") + "/graphql"
    with connect(url, subprotocols=[websockets.Subprotocol("graphql-transport-ws")]) as ws:
        ws.send(json.dumps({"id": "1", "type": "subscribe",
                            "payload": {"query": PROGRESS, "variables": {"id": run_id}}}))
        with pytest.raises(websockets.ConnectionClosed) as e:
            ws.recv(timeout=10)
    assert e.value.rcvd is not None and e.value.rcvd.code == 4401
    # an unknown run: an error message, the connection stays usable
    with ws_connect(runs_api, token=runs_api.tokens["viewer"]) as ws:
        msgs = list(subscribe(ws, "nope"))
    assert [m["type"] for m in msgs] == ["next", "complete"]
    assert msgs[0]["payload"]["data"] is None
    assert msgs[0]["payload"]["errors"] == [{"message": "no run has id 'nope'",
                                             "extensions": {"code": "NOT_FOUND"}}]


def test_a_memory_store_without_a_file_hands_its_snapshot_over(
        key_file: tuple[KeyStore, dict[str, str]], tmp_path: Path) -> None:
    """No other process can open such a store: the server reads the snapshot for the
    worker."""
    store = MemoryStore()
    store.write_snapshot(tiny_snapshot())
    server = start_server(store, *key_file, "memory", ApiSettings(runs_dir=tmp_path / "runs"))
    try:
        run = wait(server, launch(server, {"scenario": {"spec": SHOCK}})["id"])
        want = run_cascade(compile_system(tiny_snapshot()), scenario_from_dict(SHOCK))
        assert run["status"] == "SUCCEEDED"
        assert_metrics_equal(run["metrics"], want)
    finally:
        server.stop()


# -- restarting ----------------------------------------------------------------------------------


def test_a_restarted_server_lists_the_runs(runs_api: ApiServer, tmp_path: Path) -> None:
    done = runs_api.runs.list(RunStatus.SUCCEEDED)[0]
    before = get(runs_api, done.id)
    # a run a dead server left running (its record as that server last wrote it)
    orphan = RunRecord.model_validate_json((runs_api.runs.runs_dir / done.id / "run.json")
                                           .read_text()).model_copy(update={
        "id": "20000101T000000000000-abcdef", "status": RunStatus.RUNNING, "progress": 0.5,
        "finished": None, "result": None, "message": "simulating"})
    (runs_api.runs.runs_dir / orphan.id).mkdir()
    (runs_api.runs.runs_dir / orphan.id / "run.json").write_text(orphan.model_dump_json())
    settings = ApiSettings(runs_dir=runs_api.runs.runs_dir, prices=PRICES, rate_limit=10_000,
                           rate_burst=10_000)
    second = start_server(runs_api.store, runs_api.keys, runs_api.tokens, runs_api.backend,
                          settings)
    try:
        after = get(second, done.id)
        assert after == before
        lost = get(second, orphan.id)
        assert (lost["status"], lost["message"], lost["error"]) == (
            "FAILED", "the server stopped before this run finished",
            "the server stopped while this run was running; launch it again (same spec and "
            "seed: same numbers)")
        ids = [e["node"]["id"] for e in second.gql(
            "{ scenarioRuns(first: 100) { edges { node { id } } } }").data[
            "scenarioRuns"]["edges"]]
        assert ids == [r.id for r in runs_api.runs.list()] + [orphan.id]
        # a run the server is executing when it stops: failed, saying so
        busy = launch(second, {"scenario": {"library": "gjr-tcopula-1d"}, "paths": 90_000})
        wait(second, busy["id"], until=frozenset({"RUNNING"}))
    finally:
        second.stop()
    record = RunRecord.model_validate_json(
        (runs_api.runs.runs_dir / busy["id"] / "run.json").read_text())
    assert (record.status, record.message, record.error) == (
        RunStatus.FAILED, "the server stopped during this run", "the server stopped during "
        "this run; launch it again (same spec and seed: same numbers)")


def test_one_pipeline_the_cli_the_api_and_the_library_give_identical_metrics(
        runs_api: ApiServer, tmp_path: Path) -> None:
    """One Monte Carlo spec and seed through the three callers of the run pipeline: the
    library (:func:`simulate.pipeline.execute_run`), ``contagion simulate`` in a process of
    its own, and ``runScenario`` over HTTP into a server's worker. Every metric is equal
    (JSON holds floats exactly), and each run records the price files it was fitted on."""
    lib = execute_run(RunRequest(scenario=load_scenario("gjr-tcopula-1d"), paths=600, seed=5,
                                 prices=PRICES, history_days=HISTORY_DAYS),
                      snapshot=tiny_snapshot())
    want = json.loads(json.dumps(lib.metrics))
    assert want["liquidated_usd"]["mean"] > 0  # the run does something: not a vacuous match

    api_run = wait(runs_api, launch(runs_api, {"scenario": {"library": "gjr-tcopula-1d"},
                                               "paths": 600, "seed": 5})["id"])
    assert api_run["status"] == "SUCCEEDED"
    api_doc = runs_api.runs.result_doc(api_run["id"])

    snap_dir = tmp_path / "snapshot"
    tiny_snapshot().save(snap_dir)
    out = tmp_path / "cli-run.json"
    proc = subprocess.run(
        [sys.executable, "-m", "api.cli", "simulate", "--scenario", "gjr-tcopula-1d",
         "--snapshot", str(snap_dir), "--paths", "600", "--seed", "5",
         "--history-days", str(HISTORY_DAYS), "--out", str(out),
         *(a for h in PRICES for a in ("--prices", f"{h.asset}={h.path}"))],
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    cli = RunResult.load(out)

    assert api_doc["metrics"] == want
    assert cli.metrics == want
    for inputs in (lib.inputs, api_doc["inputs"], cli.inputs):
        assert [p["asset"] for p in inputs["market"]["prices"]] == ["BTC", "ETH"]
        assert inputs["market"]["periods"] == HISTORY_DAYS
    assert cli.inputs["snapshot_dir"] == str(snap_dir)
    assert cli.environment["numpy"] == lib.environment["numpy"] != "not installed"
