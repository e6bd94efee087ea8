"""Latency and throughput of the GraphQL API under a mixed read workload, on both stores.

For each store (the embedded one, then Neo4j) it generates an ecosystem, loads it, starts
``contagion serve`` on 127.0.0.1 at a free port, and sends requests at a fixed rate (open
loop: a request's latency counts from the moment it was due, so a server that falls behind
is charged for the queue) for a fixed time, after a short warm-up. The mix, by weight:

- 30  a page of 20 positions of a random pool below health factor 1.2, with health factor,
      account, pool and protocol, collateral and debt with their assets;
- 20  ``node(id)`` of a random position, pool or asset, with a few typed fields;
- 15  a page of pools of a random protocol with their collateral terms and assets;
- 10  ``dependencies`` of a random protocol to depth 2;
- 10  ``contagionPaths`` from a random asset to a random protocol within 3 hops;
- 10  a page of 50 assets with issuer and oracle;
-  5  the scenario library.

An error is a non-200 reply, a reply with GraphQL errors, or a request that failed. The
server runs with a per-key rate limit far above the target rate (the bench measures the
server, not the limiter). Every request goes to 127.0.0.1 and the run stops by itself.

    python bench/api_load.py [--positions 20000] [--rate 200] [--duration 20]
                             [--neo4j bolt://127.0.0.1:7687] [--stores memory,neo4j]
                             [--workers 1,2] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import numpy as np
from rich.console import Console
from rich.table import Table

from graph.snapshot import Snapshot
from graph.store import open_store
from ingest.generate import generate_ecosystem

ROOT = Path(__file__).resolve().parents[1]

POSITIONS = """query($pool: ID!) { positions(pool: $pool, healthFactorBelow: 1.2, first: 20) {
  edges { node { id healthFactor account { id } pool { id protocol { name } }
    collateral { amount asset { symbol price } } debt { amount asset { symbol } } } }
  pageInfo { hasNextPage endCursor } } }"""
NODE = """query($id: ID!) { node(id: $id) { id __typename
  ... on Position { healthFactor pool { id } }
  ... on Pool { kind protocol { name } }
  ... on Asset { symbol price issuer { name } } } }"""
POOLS = """query($p: ID!) { pools(protocol: $p, first: 20) { edges { node { id kind
  collateral { ltv liquidationThreshold asset { symbol } } } } } }"""
DEPENDENCIES = """query($p: ID!) { dependencies(protocol: $p, depth: 2) { nodes { id }
  relationships { source type target } } }"""
PATHS = """query($a: ID!, $p: ID!) { contagionPaths(from: $a, to: $p, maxHops: 3, limit: 10) {
  hops nodeIds relationships } }"""
ASSETS = """{ assets(first: 50) { edges { node { id symbol price issuer { id } oracle { id } } }
  } }"""
SCENARIOS = "{ scenarios { name kind description } }"

MIX = [(30, "positions"), (20, "node"), (15, "pools"), (10, "dependencies"), (10, "paths"),
       (10, "assets"), (5, "scenarios")]


def _requests(snap: Snapshot, n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` request bodies drawn from the mix."""
    rng = random.Random(seed)
    t = snap.tables
    pools = list(t["pools"].loc[t["pools"]["kind"] == "lending", "id"])
    protocols = list(t["protocols"]["id"])
    assets = list(t["assets"]["id"])
    nodes = list(t["positions"]["id"]) + list(t["pools"]["id"]) + assets
    kinds = [k for w, k in MIX for _ in range(w)]
    out = []
    for _ in range(n):
        kind = rng.choice(kinds)
        if kind == "positions":
            body = {"query": POSITIONS, "variables": {"pool": rng.choice(pools)}}
        elif kind == "node":
            body = {"query": NODE, "variables": {"id": rng.choice(nodes)}}
        elif kind == "pools":
            body = {"query": POOLS, "variables": {"p": rng.choice(protocols)}}
        elif kind == "dependencies":
            body = {"query": DEPENDENCIES, "variables": {"p": rng.choice(protocols)}}
        elif kind == "paths":
            body = {"query": PATHS, "variables": {"a": rng.choice(assets),
                                                  "p": rng.choice(protocols)}}
        elif kind == "assets":
            body = {"query": ASSETS}
        else:
            body = {"query": SCENARIOS}
        out.append(body)
    return out


def _start_server(uri: str, keys: Path, workers: int = 1
                  ) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "serve", "--store", uri, "--port", "0", "--keys",
         str(keys), "--rate-limit", "1000000", "--rate-burst", "1000000", "--log-level",
         "warning", "--workers", str(workers), "--runs-dir", str(keys.parent / "runs")],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stderr is not None
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if "serving http://" in line:
            url = line.split()[1]
            # with several processes the port listens before they have started: wait until
            # one answers (the warm-up then covers the others)
            health = url.removesuffix("/graphql") + "/healthz"
            while time.monotonic() < deadline:
                try:
                    if httpx.get(health, timeout=60).status_code == 200:
                        return proc, url
                except httpx.TransportError:
                    time.sleep(0.2)
            break
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise RuntimeError(f"contagion serve did not start for {uri}")


async def _load(url: str, token: str, bodies: list[dict[str, Any]], rate: float,
                warmup: int) -> tuple[list[float], int, float]:
    """Send ``bodies`` at ``rate`` per second; the first ``warmup`` are not measured.
    Returns latencies (s), errors and the measured wall time. (The client is aiohttp: an
    async client whose cost per request stays flat when requests queue up.)"""
    latencies: list[float] = []
    errors = 0
    connector = aiohttp.TCPConnector(limit=256)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout,
                                     headers={"authorization": f"Bearer {token}"}) as session:

        async def one(i: int, due: float) -> None:
            nonlocal errors
            try:
                async with session.post(url, json=bodies[i]) as r:
                    reply = await r.json()
                    ok = r.status == 200 and not reply.get("errors")
            except (aiohttp.ClientError, TimeoutError, ValueError):
                ok = False
            if i >= warmup:
                latencies.append(time.perf_counter() - due)
                errors += not ok

        start = time.perf_counter()
        tasks = []
        for i in range(len(bodies)):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i, due)))
        await asyncio.gather(*tasks)
        wall = time.perf_counter() - (start + warmup / rate)
    return latencies, errors, wall


def run_store(name: str, uri: str, snap: Snapshot, rate: float, duration: float, warmup_s: float,
              seed: int, console: Console, workers: int = 1) -> dict[str, Any]:
    with (console.status(f"loading {snap.num_rows('positions'):,} positions into {uri}"),
          open_store(uri, create=True) as store):
        store.write_snapshot(snap)
    with tempfile.TemporaryDirectory() as tmp:
        from api.keys import KeyStore

        keys = Path(tmp) / "keys.json"
        _, token = KeyStore(keys).create("bench", "viewer")
        proc, url = _start_server(uri, keys, workers)
        try:
            warmup = int(rate * warmup_s)
            bodies = _requests(snap, warmup + int(rate * duration), seed)
            with console.status(f"{name}: {rate:g} requests/s for {duration:g} s "
                                f"(+{warmup_s:g} s warm-up)"):
                lat, errors, wall = asyncio.run(_load(url, token, bodies, rate, warmup))
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
    ms = np.array(lat) * 1000
    return {"requests": len(lat), "rps": round(len(lat) / wall, 1),
            "p50_ms": round(float(np.percentile(ms, 50)), 2),
            "p99_ms": round(float(np.percentile(ms, 99)), 2),
            "max_ms": round(float(ms.max()), 2), "errors": errors}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--positions", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--rate", type=float, default=200.0, help="requests per second")
    ap.add_argument("--duration", type=float, default=20.0, help="measured seconds")
    ap.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds first")
    ap.add_argument("--neo4j", default=os.environ.get("NEO4J_URI", "bolt://127.0.0.1:7687"))
    ap.add_argument("--stores", default="memory,neo4j", help="memory, neo4j or both")
    ap.add_argument("--workers", default="1",
                    help="server processes (contagion serve --workers); a comma-separated "
                         "list measures each")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()
    if not 0 < args.rate <= 2000 or not 0 < args.duration <= 600:
        ap.error("--rate must be in (0, 2000] and --duration in (0, 600]")
    console = Console(stderr=True)
    with console.status(f"generating {args.positions:,} positions"):
        snap = generate_ecosystem(args.positions, args.seed)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        uris = {"memory": f"memory:{Path(tmp) / 'store.zip'}", "neo4j": args.neo4j}
        counts = [int(w) for w in args.workers.split(",")]
        for name in args.stores.split(","):
            for w in counts:
                key = name if len(counts) == 1 else f"{name}, {w} process{'es' * (w > 1)}"
                results[key] = run_store(name, uris[name], snap, args.rate, args.duration,
                                         args.warmup, args.seed, console, w)
    if args.json:
        print(json.dumps(results))
        return
    t = Table(title=f"GraphQL API, mixed reads at {args.rate:g} requests/s for "
                    f"{args.duration:g} s ({args.positions:,} positions)", show_edge=False)
    for c in ("store", "requests", "requests/s", "p50 ms", "p99 ms", "max ms", "errors"):
        t.add_column(c, justify="left" if c == "store" else "right")
    for name, r in results.items():
        t.add_row(name, f"{r['requests']:,}", f"{r['rps']:.1f}", f"{r['p50_ms']:.1f}",
                  f"{r['p99_ms']:.1f}", f"{r['max_ms']:.1f}", str(r["errors"]))
    Console().print(t)


if __name__ == "__main__":
    main()
