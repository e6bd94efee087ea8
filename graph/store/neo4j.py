"""The production store on Neo4j, through the official ``neo4j`` driver.

Every label has a uniqueness constraint on ``id`` (created on first use). A write applies the
difference between the stored and the new snapshot inside one transaction, as batched
``UNWIND $rows … MERGE`` statements. Cypher text is assembled only from the schema's own
labels, relationship types and property names (:mod:`graph.schema`); every value, id included,
travels as a parameter.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterator
from typing import Any, LiteralString, cast

import neo4j
import pandas as pd
from neo4j import GraphDatabase, ManagedTransaction

from graph.errors import StoreError
from graph.schema import NODE_TABLES, TABLES, TableSpec
from graph.snapshot import Manifest, Snapshot
from graph.store.base import (
    ALL_LABELS,
    ALL_RELS,
    ContagionPath,
    GraphStore,
    Neighbour,
    NodeNotFound,
    NodeView,
    PositionHealth,
    StoreStats,
    Subgraph,
    check_hops,
    health_factor,
    in_health_range,
    sort_key_hf,
)
from graph.store.diff import SnapshotDiff
from graph.store.records import neighbour_order
from graph.vocab import DEPENDENCY_RELS, NodeLabel, RelType

__all__ = ["Neo4jStore"]

_META = "SnapshotMeta"
_DEP_TYPES = "|".join(str(r) for r in DEPENDENCY_RELS)


def _q(text: str) -> LiteralString:
    """Mark Cypher assembled from schema names (never from data) as a query string."""
    return cast(LiteralString, text)


def _label_of(spec: TableSpec, column: str) -> str:
    ref = spec.column(column).ref
    assert ref is not None
    return str(TABLES[ref].label)


def _value(v: Any) -> Any:
    """A DataFrame cell as a Bolt parameter: None for null, plain Python scalars."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    if hasattr(v, "item"):
        v = v.item()
        return None if isinstance(v, float) and math.isnan(v) else v
    return v


def _rows(df: pd.DataFrame, columns: list[str]) -> list[dict[str, Any]]:
    if df.empty:
        return []
    sub = df[columns].astype(object)
    return [{c: _value(v) for c, v in zip(columns, vals, strict=True)}
            for vals in sub.itertuples(index=False, name=None)]


def _batches(rows: list[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    for i in range(0, len(rows), size):
        yield rows[i:i + size]


class Neo4jStore(GraphStore):
    """Store on a Neo4j 5 server. ``auth`` defaults to NEO4J_USER / NEO4J_PASSWORD (no auth
    when unset)."""

    def __init__(self, uri: str, *, auth: tuple[str, str] | None = None,
                 database: str | None = None, batch_size: int = 10_000) -> None:
        if auth is None and os.environ.get("NEO4J_USER"):
            auth = (os.environ["NEO4J_USER"], os.environ.get("NEO4J_PASSWORD", ""))
        self.uri = uri
        self.database = database
        self.batch_size = batch_size
        self._tick: Callable[[int], None] = lambda n: None
        try:
            self._driver = GraphDatabase.driver(uri, auth=auth)
            self._driver.verify_connectivity()
        except (neo4j.exceptions.Neo4jError, neo4j.exceptions.DriverError, ValueError) as e:
            raise StoreError(f"cannot reach Neo4j at {uri}: {e} (start a local server with "
                             f"`scripts/neo4j-server start`)") from e
        self._ensure_schema()

    # ------------------------------------------------------------------ plumbing
    def _session(self) -> neo4j.Session:
        return self._driver.session(database=self.database)

    def _run(self, query: str, **params: Any) -> list[dict[str, Any]]:
        with self._session() as s:
            return [r.data() for r in s.run(_q(query), params)]

    def _ensure_schema(self) -> None:
        with self._session() as s:
            for label in [*ALL_LABELS, _META]:
                key = "key" if label == _META else "id"
                s.run(_q(f"CREATE CONSTRAINT {label.lower()}_{key} IF NOT EXISTS "
                         f"FOR (n:{label}) REQUIRE n.{key} IS UNIQUE")).consume()
            s.run("CALL db.awaitIndexes(300)").consume()

    def server_version(self) -> str:
        rec = self._run("CALL dbms.components() YIELD name, versions, edition "
                        "RETURN name, versions[0] AS version, edition")
        return f"{rec[0]['name']} {rec[0]['version']} {rec[0]['edition']}"

    def close(self) -> None:
        self._driver.close()

    # ------------------------------------------------------------------ writes
    def _apply(self, diff: SnapshotDiff, snapshot: Snapshot, tick: Callable[[int], None]
               ) -> None:
        self._tick = tick
        with self._session() as s, s.begin_transaction() as tx:
            self._apply_tx(tx, diff, snapshot)
            tx.commit()

    def _batched(self, tx: neo4j.Transaction, query: str, rows: list[dict[str, Any]]) -> None:
        for batch in _batches(rows, self.batch_size):
            tx.run(_q(query), rows=batch).consume()
            self._tick(len(batch))

    def _apply_tx(self, tx: neo4j.Transaction, diff: SnapshotDiff, snapshot: Snapshot) -> None:
        # 1. relationships of removed edge rows, 2. removed nodes (with their relationships)
        for name, ch in diff.tables.items():
            spec = TABLES[name]
            if spec.is_node or ch.removed.empty:
                continue
            match = " AND ".join(f"r.{k} = row.{k}" for k in spec.rel_key) or "true"
            self._batched(tx, f"UNWIND $rows AS row "
                              f"MATCH (s:{_label_of(spec, spec.src or '')} {{id: row.{spec.src}}})"
                              f"-[r:{spec.rel}]->(d:{_label_of(spec, spec.dst or '')} "
                              f"{{id: row.{spec.dst}}}) WHERE {match} DELETE r",
                          _rows(ch.removed, list(spec.key)))
        for name in NODE_TABLES:
            spec = TABLES[name]
            self._batched(tx, f"UNWIND $rows AS row MATCH (n:{spec.label} {{id: row.id}}) "
                              f"DETACH DELETE n", _rows(diff.tables[name].removed, ["id"]))
        # 3. nodes added or updated (a null property removes it)
        for name in NODE_TABLES:
            spec = TABLES[name]
            ch = diff.tables[name]
            props = [c.name for c in spec.property_columns()]
            sets = ", ".join(f"n.{c} = row.{c}" for c in props if c != "id")
            for df in (ch.added, ch.updated):
                self._batched(tx, f"UNWIND $rows AS row MERGE (n:{spec.label} {{id: row.id}})"
                                  + (f" SET {sets}" if sets else ""), _rows(df, props))
            # foreign keys of updated rows are re-linked
            for fk in spec.fk_columns():
                arrow = f"-[r:{fk.rel}]->()" if fk.rel_out else f"<-[r:{fk.rel}]-()"
                self._batched(tx, f"UNWIND $rows AS row MATCH (n:{spec.label} {{id: row.id}})"
                                  f"{arrow} DELETE r", _rows(ch.updated, ["id"]))
        # 4. foreign-key relationships of added and updated nodes
        for name in NODE_TABLES:
            spec = TABLES[name]
            ch = diff.tables[name]
            for fk in spec.fk_columns():
                other = TABLES[str(fk.ref)].label
                pattern = "(n)-[:{t}]->(m)" if fk.rel_out else "(m)-[:{t}]->(n)"
                q = (f"UNWIND $rows AS row MATCH (n:{spec.label} {{id: row.id}}) "
                     f"MATCH (m:{other} {{id: row.{fk.name}}}) "
                     f"MERGE {pattern.format(t=fk.rel)}")
                for df in (ch.added, ch.updated):
                    self._batched(tx, q, _rows(df.loc[df[fk.name].notna()], ["id", fk.name]))
        # 5. relationships of edge tables, added or updated
        for name, ch in diff.tables.items():
            spec = TABLES[name]
            if spec.is_node:
                continue
            keyprops = ", ".join(f"{k}: row.{k}" for k in spec.rel_key)
            props = [c.name for c in spec.property_columns() if c.name not in spec.rel_key]
            sets = ", ".join(f"r.{c} = row.{c}" for c in props)
            q = (f"UNWIND $rows AS row "
                 f"MATCH (s:{_label_of(spec, spec.src or '')} {{id: row.{spec.src}}}) "
                 f"MATCH (d:{_label_of(spec, spec.dst or '')} {{id: row.{spec.dst}}}) "
                 f"MERGE (s)-[r:{spec.rel}{' {' + keyprops + '}' if keyprops else ''}]->(d)"
                 + (f" SET {sets}" if sets else ""))
            for df in (ch.added, ch.updated):
                self._batched(tx, q, _rows(df, list(spec.column_names)))
        if diff.manifest_changed:
            tx.run(_q(f"MERGE (m:{_META} {{key: 'current'}}) SET m.manifest = $doc"),
                   doc=snapshot.manifest.model_dump_json()).consume()

    def clear(self) -> None:
        with self._session() as s:
            s.run("MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS"
                  ).consume()

    # ------------------------------------------------------------------ reads
    def read_snapshot(self) -> Snapshot:
        with self._session() as s:
            frames, manifest = s.execute_read(self._read_tx)
        return Snapshot.from_tables(frames, manifest)

    @staticmethod
    def _read_tx(tx: ManagedTransaction) -> tuple[dict[str, pd.DataFrame], Manifest | None]:
        def df(query: str, columns: list[str]) -> pd.DataFrame:
            res = tx.run(_q(query))
            return pd.DataFrame(res.values(), columns=columns, dtype=object)

        frames: dict[str, pd.DataFrame] = {}
        for name, spec in TABLES.items():
            if spec.is_node:
                props = [c.name for c in spec.property_columns()]
                out = df(f"MATCH (n:{spec.label}) RETURN "
                         + ", ".join(f"n.{c}" for c in props), props)
                for fk in spec.fk_columns():
                    other = TABLES[str(fk.ref)].label
                    pattern = (f"(n:{spec.label})-[:{fk.rel}]->(m:{other})" if fk.rel_out
                               else f"(m:{other})-[:{fk.rel}]->(n:{spec.label})")
                    links = df(f"MATCH {pattern} RETURN n.id, m.id", ["id", fk.name])
                    out[fk.name] = out["id"].map(links.set_index("id")[fk.name])
                frames[name] = out
            else:
                cols = list(spec.column_names)
                props = [c.name for c in spec.property_columns()]
                frames[name] = df(
                    f"MATCH (s:{_label_of(spec, spec.src or '')})-[r:{spec.rel}]->"
                    f"(d:{_label_of(spec, spec.dst or '')}) RETURN s.id, d.id, "
                    + ", ".join(f"r.{c}" for c in props),
                    [str(spec.src), str(spec.dst), *props],
                )[cols]
        rec = tx.run(_q(f"MATCH (m:{_META} {{key: 'current'}}) RETURN m.manifest")).single()
        manifest = Manifest.model_validate(json.loads(rec[0])) if rec else None
        return frames, manifest

    def _find(self, node_id: str) -> str:
        union = " UNION ALL ".join(
            f"MATCH (n:{lab} {{id: $id}}) RETURN '{lab}' AS label" for lab in ALL_LABELS)
        rows = self._run(f"CALL () {{ {union} }} RETURN label", id=node_id)
        if not rows:
            raise NodeNotFound(f"no node with id {node_id!r}")
        return str(rows[0]["label"])

    def node(self, node_id: str, *, neighbour_limit: int = 1000) -> NodeView:
        label = self._find(node_id)
        q = (f"MATCH (n:{label} {{id: $id}}) "
             "CALL (n) { MATCH (n)-[r]->(m) RETURN r, 'out' AS dir, m "
             "UNION ALL MATCH (n)<-[r]-(m) RETURN r, 'in' AS dir, m } "
             "RETURN type(r) AS rel, dir, m.id AS other, labels(m)[0] AS label, "
             "properties(r) AS props "
             "ORDER BY rel, dir, other, r.kind, r.strike, r.expiry LIMIT $limit")
        rows = self._run(q, id=node_id, limit=neighbour_limit)
        neigh = sorted(rows, key=lambda r: neighbour_order(r["rel"], r["dir"], r["other"],
                                                           r["props"]))
        head = self._run(f"MATCH (n:{label} {{id: $id}}) RETURN properties(n) AS p, "
                         "COUNT { (n)--() } AS degree", id=node_id)[0]
        return NodeView(
            node_id, label, dict(head["p"]),
            [Neighbour(r["rel"], r["dir"], r["other"], r["label"],
                       tuple(sorted(r["props"].items()))) for r in neigh],
            int(head["degree"]),
        )

    def dependencies(self, protocol_id: str, depth: int) -> Subgraph:
        check_hops("depth", depth)
        if self._find(protocol_id) != NodeLabel.PROTOCOL:
            raise NodeNotFound(f"{protocol_id!r} is not a protocol")
        nodes = {protocol_id: str(NodeLabel.PROTOCOL)}
        frontier = {protocol_id: str(NodeLabel.PROTOCOL)}
        rels: set[tuple[str, str, str]] = set()
        for _ in range(depth):
            nxt: dict[str, str] = {}
            for label in sorted(set(frontier.values())):
                ids = [i for i, lab in frontier.items() if lab == label]
                for r in self._run(f"UNWIND $ids AS id MATCH (s:{label} {{id: id}})"
                                   f"-[r:{_DEP_TYPES}]->(d) RETURN s.id AS s, type(r) AS t, "
                                   f"d.id AS d, labels(d)[0] AS label", ids=ids):
                    rels.add((r["s"], r["t"], r["d"]))
                    if r["d"] not in nodes:
                        nodes[r["d"]] = nxt[r["d"]] = r["label"]
            frontier = nxt
        return Subgraph(dict(sorted(nodes.items())), sorted(rels))

    def contagion_paths(self, source: str, target: str, max_hops: int, *,
                        limit: int = 100) -> list[ContagionPath]:
        check_hops("max_hops", max_hops, low=1)
        ls, lt = self._find(source), self._find(target)
        if source == target:
            return []
        q = (f"MATCH (t:{lt} {{id: $target}}), (s:{ls} {{id: $source}}) "
             f"MATCH p = (t)-[*1..{int(max_hops)}]->(s) "
             "WHERE all(i IN range(0, length(p) - 1) WHERE NOT nodes(p)[i] IN nodes(p)[i+1..]) "
             "RETURN [n IN nodes(p) | n.id] AS nodes, [r IN relationships(p) | type(r)] AS rels")
        found = {ContagionPath(tuple(reversed(r["nodes"])), tuple(reversed(r["rels"])))
                 for r in self._run(q, source=source, target=target)}
        return sorted(found, key=lambda p: (p.hops, p.nodes, p.rels))[:limit]

    def positions(self, pool_id: str, *, min_health: float | None = None,
                  max_health: float | None = None) -> list[PositionHealth]:
        if self._find(pool_id) != NodeLabel.POOL:
            raise NodeNotFound(f"{pool_id!r} is not a pool")
        q = (f"MATCH (pool:Pool {{id: $pool}})<-[:{RelType.IN}]-(p:Position) "
             f"OPTIONAL MATCH (acc:Account)-[:{RelType.OWNS}]->(p) "
             "CALL (p, pool) { "
             f"  OPTIONAL MATCH (p)-[c:{RelType.COLLATERAL}]->(x:Asset) "
             f"  OPTIONAL MATCH (pool)-[ac:{RelType.ACCEPTS_COLLATERAL}]->(x) "
             "  RETURN sum(c.amount * x.price * coalesce(ac.liquidation_threshold, 0.0)) AS w } "
             "CALL (p) { "
             f"  OPTIONAL MATCH (p)-[d:{RelType.DEBT}]->(y:Asset) "
             "  RETURN sum(d.amount * y.price) AS debt } "
             "WITH p, acc, w, debt WHERE "
             "  ($max IS NULL OR (debt > 0 AND w / debt < $max)) AND "
             "  ($min IS NULL OR debt <= 0 OR w / debt >= $min) "
             "RETURN p.id AS id, acc.id AS account, w, debt")
        out = [PositionHealth(r["id"], r["account"] or "", health_factor(r["w"], r["debt"]))
               for r in self._run(q, pool=pool_id, min=min_health, max=max_health)]
        return sorted((p for p in out if in_health_range(p.health_factor, min_health,
                                                         max_health)), key=sort_key_hf)

    def stats(self) -> StoreStats:
        labels = {lab: int(self._run(f"MATCH (n:{lab}) RETURN count(n) AS c")[0]["c"])
                  for lab in ALL_LABELS}
        rels = {t: int(self._run(f"MATCH ()-[r:{t}]->() RETURN count(r) AS c")[0]["c"])
                for t in ALL_RELS}
        return StoreStats(labels, rels)
