"""`contagion apikey` and `contagion serve`, run as real processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from apiserver import NEO4J_URI
from helpers import tiny_snapshot

from graph.store import GraphStore, MemoryStore

ROOT = Path(__file__).resolve().parents[2]


def contagion(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "api.cli", *args], capture_output=True,
                          text=True, timeout=300, cwd=ROOT)


def test_apikey_create_list_revoke(tmp_path: Path) -> None:
    keys = tmp_path / "keys.json"
    r = contagion("apikey", "create", "--role", "analyst", "--name", "risk team", "--keys",
                  str(keys))
    assert r.returncode == 0, r.stderr
    token = r.stdout.strip()
    assert token.startswith("ctg_") and len(token) == 56
    key_id = token.split("_")[1]
    assert r.stderr.strip() == (f"created API key {key_id} (analyst) for 'risk team' in {keys}; "
                                "it is shown only now:")
    stored = keys.read_text()
    assert token.split("_", 2)[2] not in stored and '"sha256"' in stored
    assert oct(keys.stat().st_mode & 0o777) == "0o600"
    listed = json.loads(contagion("apikey", "list", "--keys", str(keys), "--json").stdout)
    assert [(k["id"], k["name"], k["role"]) for k in listed] == [(key_id, "risk team",
                                                                  "analyst")]
    assert contagion("apikey", "revoke", key_id, "--keys", str(keys)).returncode == 0
    assert json.loads(contagion("apikey", "list", "--keys", str(keys), "--json").stdout) == []


def test_apikey_and_serve_errors_are_one_line(tmp_path: Path) -> None:
    keys = tmp_path / "keys.json"
    cases = [
        (("apikey", "create", "--role", "boss", "--keys", str(keys)),
         "error: role must be one of viewer, analyst, admin (got 'boss')"),
        (("apikey", "revoke", "zzz", "--keys", str(keys)),
         f"error: no key with id 'zzz' in {keys}"),
        (("serve", "--store", "memory:", "--keys", str(keys)),
         f"error: no API keys in {keys}: create one with `contagion apikey create --role admin "
         f"--keys {keys}`"),
        (("serve", "--store", "memory:", "--keys", str(keys), "--rate-limit", "0"),
         "error: --rate-limit: input should be greater than 0 (got 0.0)"),
        (("serve", "--store", "memory:", "--keys", str(keys), "--prices", "ETH=/nope.csv"),
         "error: --prices must be ASSET=FILE with an existing file (got ETH=/nope.csv)"),
        (("serve", "--store", "memory:", "--keys", str(keys), "--prices", "ETH"),
         "error: --prices: a price history must look like ASSET=FILE (got 'ETH')"),
        (("serve", "--store", "memory:", "--keys", str(keys), "--max-concurrent-runs", "0"),
         "error: --max-concurrent-runs: input should be greater than or equal to 1 (got 0)"),
    ]
    for args, line in cases:
        r = contagion(*args)
        assert r.returncode == 1
        assert r.stderr.strip().splitlines() == [line]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_refuses_a_missing_store_file(tmp_path: Path, workers: str) -> None:
    """A store file that is not there is an error at startup, not an empty graph served."""
    keys = tmp_path / "keys.json"
    assert contagion("apikey", "create", "--role", "admin", "--keys", str(keys)).returncode == 0
    store = tmp_path / "typo.zip"
    r = contagion("serve", "--store", f"memory:{store}", "--keys", str(keys), "--port", "0",
                  "--workers", workers, "--runs-dir", str(tmp_path / "runs"))
    assert r.returncode == 1
    # the error alone: nothing claims to be serving first
    assert r.stderr.strip().splitlines() == [
        f"error: store file memory:{store} does not exist (`contagion load` or `contagion "
        "ingest` creates it)"]
    assert not store.exists()


@pytest.fixture(params=["memory", "neo4j"])
def store_uri(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "memory":
        path = tmp_path / "store.zip"
        MemoryStore(path).write_snapshot(tiny_snapshot())
        yield f"memory:{path}"
    else:
        neo: GraphStore = request.getfixturevalue("neo4j_store")
        neo.clear()
        neo.write_snapshot(tiny_snapshot())
        yield NEO4J_URI


def test_serve_answers_over_http_until_stopped(store_uri: str, tmp_path: Path) -> None:
    keys = tmp_path / "keys.json"
    token = contagion("apikey", "create", "--role", "viewer", "--keys", str(keys)).stdout.strip()
    analyst = contagion("apikey", "create", "--role", "analyst", "--keys", str(keys)
                        ).stdout.strip()
    runs = tmp_path / "runs"
    proc = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "serve", "--store", store_uri, "--port", "0",
         "--keys", str(keys), "--runs-dir", str(runs)], cwd=ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + 120
        line = ""
        while "serving http://" not in line:
            line = proc.stderr.readline()
            assert line or proc.poll() is None, "contagion serve exited"
            assert time.monotonic() < deadline, "contagion serve did not start"
        url = line.split()[1]
        assert url.startswith("http://127.0.0.1:") and url.endswith("/graphql")
        assert f"(store {store_uri}, keys {keys})" in line
        deadline = time.monotonic() + 60
        while True:
            try:
                r = httpx.post(url, json={"query": "{ positions(healthFactorBelow: 1.0) "
                                                   "{ edges { node { id } } } }"},
                               headers={"authorization": f"Bearer {token}"})
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert r.status_code == 200
        assert r.json()["data"] == {"positions": {"edges": [{"node": {"id": "p2"}}]}}
        assert httpx.post(url, json={"query": "{ me { id } }"}).status_code == 401
        # a scenario run, executed by the server's worker process and kept in --runs-dir
        r = httpx.post(url, json={"query": 'mutation { runScenario(input: {scenario: {spec: '
                                           '{kind: "fixed-shock", name: "eth-down", shocks: '
                                           '{ETH: -0.4}}}}) { ... on ScenarioQueued { run { '
                                           'id } } } }'},
                       headers={"authorization": f"Bearer {analyst}"})
        run_id = r.json()["data"]["runScenario"]["run"]["id"]
        deadline = time.monotonic() + 120
        while True:
            got = httpx.post(url, json={"query": f'{{ scenarioRun(id: "{run_id}") {{ status '
                                                 'metrics { paths } } }'},
                             headers={"authorization": f"Bearer {token}"}).json()["data"]
            if got["scenarioRun"]["status"] not in ("QUEUED", "RUNNING"):
                break
            assert time.monotonic() < deadline, "the run did not finish"
            time.sleep(0.2)
        assert got == {"scenarioRun": {"status": "SUCCEEDED", "metrics": {"paths": 1}}}
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    # uvicorn shuts down gracefully, then re-raises the signal it caught
    assert proc.returncode in (0, -signal.SIGTERM), err
    assert "Application shutdown complete." in err
    assert "Traceback" not in err
    assert sorted(p.name for p in (runs / run_id).iterdir()) == ["result.json", "result.npz",
                                                                 "run.json"]


def test_serve_with_several_processes(tmp_path: Path) -> None:
    """--workers 2: two processes share the port, each with its own store; runs are listed,
    not launched (they would need one queue)."""
    store = tmp_path / "store.zip"
    MemoryStore(store).write_snapshot(tiny_snapshot())
    keys = tmp_path / "keys.json"
    token = contagion("apikey", "create", "--role", "analyst", "--keys", str(keys)
                      ).stdout.strip()
    proc = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "serve", "--store", f"memory:{store}", "--port", "0",
         "--keys", str(keys), "--workers", "2", "--runs-dir", str(tmp_path / "runs")],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert proc.stderr is not None
        line = ""
        while "serving http://" not in line:
            line = proc.stderr.readline()
            assert line or proc.poll() is None, "contagion serve exited"
        url = line.split()[1]
        assert "2 processes; scenario runs in" in line
        auth = {"authorization": f"Bearer {token}"}
        deadline = time.monotonic() + 120
        while True:
            try:
                # the port listens before the processes have imported the package
                r = httpx.post(url, json={"query": "{ protocols { edges { node { id } } } }"},
                               headers=auth, timeout=120)
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        assert r.json()["data"]["protocols"]["edges"][0] == {"node": {"id": "aave"}}
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        assert len(children) >= 2  # the two server processes
        r = httpx.post(url, json={"query": 'mutation { runScenario(input: {scenario: {library: '
                                           '"march-2020"}}) { __typename } }'}, headers=auth)
        assert r.json()["errors"][0]["message"] == (
            "this server runs 2 processes (--workers 2), which cannot share a run queue; "
            "scenario runs are launched, cancelled and watched on a server with --workers 1")
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "died" not in err
