"""Write throughput of the two graph stores: nodes + relationships per second.

Generates an ecosystem, writes it into an empty in-process store and an empty Neo4j store, and
prints entities (nodes + relationships) per second for each. The baseline, measured in the same
run on the same snapshot, is writing it as Parquet files (``Snapshot.save``); ratios against
it make runs on a shared, noisy machine comparable.

    python bench/store_write.py [--positions 1000000] [--seed 1] [--neo4j bolt://127.0.0.1:7687]
                                [--json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from graph.store import GraphStore, MemoryStore
from graph.store.neo4j import Neo4jStore
from ingest.generate import generate_ecosystem


def _timed_write(store: GraphStore, snap) -> tuple[float, int]:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    store.write_snapshot(snap)
    seconds = time.perf_counter() - t0
    st = store.stats()
    return seconds, sum(st.labels.values()) + sum(st.relationships.values())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--positions", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--neo4j", default="bolt://127.0.0.1:7687")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()
    console = Console(stderr=True)

    with console.status(f"generating {args.positions:,} positions"):
        snap = generate_ecosystem(args.positions, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        snap.save(Path(tmp) / "s")
        parquet_s = time.perf_counter() - t0

    with console.status("writing to the memory store"):
        mem = MemoryStore()
        mem_s, entities = _timed_write(mem, snap)
        del mem
    with console.status(f"writing to Neo4j at {args.neo4j}"), Neo4jStore(args.neo4j) as neo:
        neo.clear()
        neo_s, neo_entities = _timed_write(neo, snap)
        version = neo.server_version()
        neo.clear()
    if neo_entities != entities:
        raise SystemExit(f"stores disagree: memory {entities} entities, Neo4j {neo_entities}")

    result = {
        "positions": args.positions,
        "entities": entities,
        "memory_seconds": round(mem_s, 2),
        "neo4j_seconds": round(neo_s, 2),
        "parquet_seconds": round(parquet_s, 2),
        "memory_per_s": round(entities / mem_s),
        "neo4j_per_s": round(entities / neo_s),
        "neo4j_version": version,
    }
    if args.json:
        print(json.dumps(result))
        return
    t = Table(title=f"store write: {args.positions:,} positions, {entities:,} nodes + "
                    f"relationships ({version})")
    for c in ("target", "seconds", "entities/s", "× parquet time"):
        t.add_column(c, justify="left" if c == "target" else "right")
    t.add_row("parquet files (baseline)", f"{parquet_s:.2f}", f"{entities / parquet_s:,.0f}",
              "1.0")
    t.add_row("memory store", f"{mem_s:.2f}", f"{entities / mem_s:,.0f}",
              f"{mem_s / parquet_s:.1f}")
    t.add_row("neo4j store", f"{neo_s:.2f}", f"{entities / neo_s:,.0f}",
              f"{neo_s / parquet_s:.1f}")
    Console().print(t)


if __name__ == "__main__":
    main()
