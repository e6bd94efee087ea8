"""File ingest throughput: positions per second from a positions Parquet file into each store.

Writes an input directory (assets, markets and a ``positions.parquet`` of N rows, one position
each: collateral in one asset, and debt for half of them), then times, in the same run:

- reading the Parquet file alone (the baseline the ratios are against);
- ``ingest_files`` (read, check every row, build and validate the snapshot);
- ingest plus ``write_snapshot`` into an empty embedded store, and into an empty Neo4j store.

    python bench/ingest.py [--positions 1000000] [--neo4j bolt://127.0.0.1:7687] [--json]

``--json`` prints one object with ``memory_per_s`` and ``neo4j_per_s`` (positions/s, end to
end from the file).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

# Run as a script, this file's directory comes first on sys.path, and its name would shadow
# the ingest package.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from rich.console import Console
from rich.table import Table

from graph.store import MemoryStore
from graph.store.neo4j import Neo4jStore
from ingest import ingest_files

ASSETS = ["WETH", "USDC", "WBTC", "DAI"]


def write_inputs(d: Path, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    pd.DataFrame({"asset": ASSETS, "price": [2000.0, 1.0, 30000.0, 1.0],
                  "decimals": [18, 6, 8, 18],
                  "kind": ["wrapped", "stable", "wrapped", "stable"]}).to_csv(
        d / "assets.csv", index=False)
    pd.DataFrame({"protocol": "lend", "pool": "lend:main", "asset": ASSETS,
                  "ltv": [0.8, 0.77, 0.7, 0.75], "liquidation_threshold": [0.825, 0.8, 0.75, 0.8],
                  "liquidation_bonus": [0.05, 0.045, 0.065, 0.05],
                  "supplied": 1e12, "borrowed": 1e9}).to_csv(d / "markets.csv", index=False)
    asset = np.array(ASSETS)[rng.integers(0, len(ASSETS), n)]
    coll = np.round(rng.lognormal(3, 1.5, n), 6)
    debt = np.where(rng.random(n) < 0.5, np.round(coll * 0.5, 6), 0.0)
    pd.DataFrame({"account": [f"0x{i:040x}" for i in range(n)], "pool": "lend:main",
                  "asset": asset, "collateral": coll, "debt": debt}).to_parquet(
        d / "positions.parquet", index=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--positions", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--neo4j", default=os.environ.get("NEO4J_URI", "bolt://127.0.0.1:7687"))
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()
    console = Console(stderr=True)
    n = args.positions
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        with console.status(f"writing a {n:,}-row positions.parquet"):
            write_inputs(d, n, args.seed)
        t0 = time.perf_counter()
        pq.read_table(d / "positions.parquet").to_pandas()
        read_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        with console.status("ingest_files"):
            snap = ingest_files(d)
        ingest_s = time.perf_counter() - t0
        assert snap.num_rows("positions") == n
        with console.status("ingest into the memory store"):
            t0 = time.perf_counter()
            MemoryStore().write_snapshot(ingest_files(d))
            mem_s = time.perf_counter() - t0
        with console.status(f"ingest into Neo4j at {args.neo4j}"), Neo4jStore(args.neo4j) as neo:
            neo.clear()
            t0 = time.perf_counter()
            neo.write_snapshot(ingest_files(d))
            neo_s = time.perf_counter() - t0
            count = neo.stats().labels["Position"]
            version = neo.server_version()
            neo.clear()
    if count != n:
        raise SystemExit(f"Neo4j holds {count} positions, expected {n}")
    result = {"positions": n, "parquet_read_seconds": round(read_s, 3),
              "ingest_seconds": round(ingest_s, 2), "memory_seconds": round(mem_s, 2),
              "neo4j_seconds": round(neo_s, 2), "ingest_per_s": round(n / ingest_s),
              "memory_per_s": round(n / mem_s), "neo4j_per_s": round(n / neo_s),
              "neo4j_version": version}
    if args.json:
        print(json.dumps(result))
        return
    t = Table(title=f"file ingest: {n:,} positions from Parquet ({version})")
    for c in ("step", "seconds", "positions/s", "× Parquet read"):
        t.add_column(c, justify="left" if c == "step" else "right")
    for label, s in (("read positions.parquet (baseline)", read_s),
                     ("ingest_files → validated Snapshot", ingest_s),
                     ("ingest + write, memory store", mem_s),
                     ("ingest + write, Neo4j store", neo_s)):
        t.add_row(label, f"{s:.2f}", f"{n / s:,.0f}", f"{s / read_s:.1f}")
    Console().print(t)


if __name__ == "__main__":
    main()
