"""The production store on Neo4j, through the official ``neo4j`` driver.

Every label has a uniqueness constraint on ``id`` (created on first use). A write applies the
difference between the stored and the new snapshot as batched ``UNWIND`` statements over
parallel parameter lists: ``MERGE`` for updated rows, ``CREATE`` for rows the difference proves
absent (a quarter faster than ``MERGE``; node uniqueness is still enforced by the constraints),
and ``DELETE`` for removed ones, so re-writing the same snapshot runs no statement at all.
Cypher text is assembled only from the schema's own labels, relationship types and property
names (:mod:`graph.schema`); every value, id included, travels as a parameter.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, LiteralString, cast

import neo4j
import pandas as pd
from neo4j import GraphDatabase, ManagedTransaction

from graph.errors import StoreError, StoreTimeout
from graph.export import health_factor
from graph.schema import NODE_TABLES, TABLES, TableSpec, table_for_label
from graph.snapshot import Manifest, Snapshot
from graph.store.base import (
    ALL_LABELS,
    ALL_RELS,
    ContagionPath,
    GraphStore,
    Neighbour,
    NodeFilter,
    NodeNotFound,
    NodeRecord,
    NodeView,
    PositionHealth,
    ScoreSet,
    StoreStats,
    Subgraph,
    check_hops,
    check_label,
    check_listing,
    check_scores,
    in_health_range,
    record_from,
    relationship_side,
    score_property,
    sort_key_hf,
    unknown_ids_error,
)
from graph.store.diff import SnapshotDiff
from graph.store.records import neighbour_order
from graph.vocab import DEPENDENCY_RELS, NodeLabel, RelType

__all__ = ["Neo4jStore"]

_META = "SnapshotMeta"
_SCORE_META = "ScoreSetMeta"  # one node per score set: name, model, written
_SCORE_BATCH = 20_000
_DEP_TYPES = "|".join(str(r) for r in DEPENDENCY_RELS)


def _q(text: str) -> LiteralString:
    """Mark Cypher assembled from schema names (never from data) as a query string."""
    return cast(LiteralString, text)


def _label_of(spec: TableSpec, column: str) -> str:
    ref = spec.column(column).ref
    assert ref is not None
    return str(TABLES[ref].label)


def _columns(df: pd.DataFrame, columns: list[str]) -> dict[str, list[Any]]:
    """Columns of ``df`` as parameter lists (None for null): parallel lists pack far faster
    than one map per row."""
    out = {}
    for c in columns:
        col = df[c]
        values = col.astype(object).tolist()
        if col.isna().any():
            values = [None if m else v for v, m in zip(values, col.isna().tolist(), strict=True)]
        out[c] = values
    return out


def _record_return(label: str) -> str:
    """Return items of a node ``n`` with ``label``: its label, properties and foreign keys."""
    fks = []
    for fk in table_for_label(label).fk_columns():
        other = TABLES[str(fk.ref)].label
        arrow = f"-[:{fk.rel}]->" if fk.rel_out else f"<-[:{fk.rel}]-"
        fks.append(f"{fk.name}: COLLECT {{ MATCH (n){arrow}(m:{other}) RETURN m.id }}[0]")
    return f"'{label}' AS label, properties(n) AS p, {{{', '.join(fks)}}} AS fk"


#: Weighted collateral ``w = Σ c·p·LT`` and debt value ``debt = Σ d·p`` of a position ``n``:
#: the two sums of the health factor. The ratio is :func:`graph.export.health_factor`
#: (``w / debt``, inf without debt), applied in Python to what a query returns; Cypher divides
#: only in :data:`_HEALTH_RANGE`, where a filter has to run before ``LIMIT``.
_HEALTH = (f"CALL (n) {{ OPTIONAL MATCH (n)-[:{RelType.IN}]->(pool:Pool) "
           f"OPTIONAL MATCH (n)-[c:{RelType.COLLATERAL}]->(x:Asset) "
           f"OPTIONAL MATCH (pool)-[ac:{RelType.ACCEPTS_COLLATERAL}]->(x) "
           "RETURN sum(c.amount * x.price * coalesce(ac.liquidation_threshold, 0.0)) AS w } "
           f"CALL (n) {{ OPTIONAL MATCH (n)-[d:{RelType.DEBT}]->(y:Asset) "
           "RETURN sum(d.amount * y.price) AS debt } ")

#: ``$min <= HF < $max`` (either bound may be null) on the ``w`` and ``debt`` of
#: :data:`_HEALTH`, with :func:`graph.export.health_factor`'s convention (HF = inf when
#: ``debt <= 0``; the same IEEE division as the Python ratio).
_HEALTH_RANGE = ("($max IS NULL OR (debt > 0 AND w / debt < $max)) AND "
                 "($min IS NULL OR debt <= 0 OR w / debt >= $min) ")

#: Cypher of each listing condition, per label (values are the parameters of the same name)
_CONDITIONS: dict[str, dict[str, str]] = {
    NodeLabel.PROTOCOL: {"kind": "n.kind = $kind"},
    NodeLabel.ASSET: {
        "kind": "n.kind = $kind",
        "protocol": f"EXISTS {{ (n)-[:{RelType.ISSUED_BY}]->(:Protocol {{id: $protocol}}) }}",
    },
    NodeLabel.POOL: {
        "kind": "n.kind = $kind",
        "protocol": f"EXISTS {{ (n)<-[:{RelType.OPERATES}]-(:Protocol {{id: $protocol}}) }}",
        "asset": (f"EXISTS {{ (n)-[:{RelType.ACCEPTS_COLLATERAL}|{RelType.LENDS}]->"
                  "(:Asset {id: $asset}) }"),
    },
    NodeLabel.ORACLE: {
        "kind": "n.kind = $kind",
        "pool": f"EXISTS {{ (n)-[:{RelType.READS}]->(:Pool {{id: $pool}}) }}",
    },
    NodeLabel.ACCOUNT: {"kind": "n.kind = $kind"},
    NodeLabel.POSITION: {
        "pool": f"EXISTS {{ (n)-[:{RelType.IN}]->(:Pool {{id: $pool}}) }}",
        "account": f"EXISTS {{ (n)<-[:{RelType.OWNS}]-(:Account {{id: $account}}) }}",
        "protocol": (f"EXISTS {{ (n)-[:{RelType.IN}]->(:Pool)<-[:{RelType.OPERATES}]-"
                     "(:Protocol {id: $protocol}) }"),
        "asset": (f"EXISTS {{ (n)-[:{RelType.COLLATERAL}|{RelType.DEBT}]->"
                  "(:Asset {id: $asset}) }"),
    },
}


def _unwind(first: str) -> str:
    return f"UNWIND range(0, size(${first}) - 1) AS i "


#: one statement of a write: Cypher over parallel column lists, the frame and its columns
Statement = tuple[str, pd.DataFrame, list[str]]


class Neo4jStore(GraphStore):
    """Store on a Neo4j 5 server. ``auth`` defaults to NEO4J_USER / NEO4J_PASSWORD (no auth
    when unset).

    A write of up to ``transaction_rows`` rows is one transaction. A larger one (a first load
    of millions of positions) commits every ``batch_size`` rows: while it runs the store is
    marked as being written, and :meth:`read_snapshot` refuses to return the partial state;
    writing the snapshot again completes an interrupted write.
    """

    def __init__(self, uri: str, *, auth: tuple[str, str] | None = None,
                 database: str | None = None, batch_size: int = 10_000,
                 transaction_rows: int = 200_000, query_timeout: float | None = None) -> None:
        if auth is None and os.environ.get("NEO4J_USER"):
            auth = (os.environ["NEO4J_USER"], os.environ.get("NEO4J_PASSWORD", ""))
        self.uri = uri
        self.database = database
        self.batch_size = batch_size
        self.transaction_rows = transaction_rows
        #: seconds a read query may run on the server before it is stopped (None: no limit)
        self.query_timeout = query_timeout
        try:
            self._driver = GraphDatabase.driver(uri, auth=auth,
                                                notifications_min_severity="OFF")
            self._driver.verify_connectivity()
        except (neo4j.exceptions.Neo4jError, neo4j.exceptions.DriverError, ValueError) as e:
            raise StoreError(f"cannot reach Neo4j at {uri}: {e} (start a local server with "
                             f"`scripts/neo4j-server start`)") from e
        self._ensure_schema()

    # ------------------------------------------------------------------ plumbing
    def _session(self) -> neo4j.Session:
        return self._driver.session(database=self.database)

    def _run(self, query: str, **params: Any) -> list[dict[str, Any]]:
        timeout = self.query_timeout
        q = neo4j.Query(_q(query), timeout=None if timeout is None else max(timeout, 0.001))
        try:
            with self._session() as s:
                return [r.data() for r in s.run(q, params)]
        except neo4j.exceptions.ClientError as e:
            if "TransactionTimedOut" in (e.code or ""):
                raise StoreTimeout(f"{self.uri}: query stopped by the server after its "
                                   f"{timeout:g} s timeout") from e
            raise

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
        statements = [st for st in self._statements(diff) if not st[1].empty]
        rows = sum(len(st[1]) for st in statements)
        manifest = snapshot.manifest.model_dump_json()
        meta = f"MERGE (m:{_META} {{key: 'current'}}) "
        with self._session() as s:
            if rows <= self.transaction_rows:
                with s.begin_transaction() as tx:
                    for q, params in self._batches(statements):
                        tx.run(_q(q), params).consume()
                        tick(len(next(iter(params.values()))))
                    tx.run(_q(meta + "SET m.manifest = $doc REMOVE m.write_pending"),
                           doc=manifest).consume()
                    tx.commit()
                return
            # Too large for one transaction: mark the store as being written, commit batch by
            # batch, and clear the mark with the manifest. A reader that finds the mark raises
            # instead of returning a half-written snapshot; re-running the write completes it.
            def run(query: str, **params: Any) -> None:
                s.execute_write(lambda tx: tx.run(_q(query), params).consume())

            run(meta + "SET m.write_pending = true")
            for q, params in self._batches(statements):
                run(q, **params)
                tick(len(next(iter(params.values()))))
            run(meta + "SET m.manifest = $doc REMOVE m.write_pending", doc=manifest)

    def _batches(self, statements: list[Statement]) -> Iterator[tuple[str, dict[str, Any]]]:
        for q, df, cols in statements:
            for i in range(0, len(df), self.batch_size):
                yield q, _columns(df.iloc[i:i + self.batch_size], cols)

    def _statements(self, diff: SnapshotDiff) -> Iterator[Statement]:
        """The Cypher of a write, in an order that never references a missing node."""
        # 1. relationships of removed edge rows, 2. removed nodes (with their relationships)
        for name, ch in diff.tables.items():
            spec = TABLES[name]
            if spec.is_node:
                continue
            match = " AND ".join(f"r.{k} = ${k}[i]" for k in spec.rel_key) or "true"
            yield (_unwind(str(spec.src))
                   + f"MATCH (s:{_label_of(spec, str(spec.src))} {{id: ${spec.src}[i]}})"
                   f"-[r:{spec.rel}]->(d:{_label_of(spec, str(spec.dst))} {{id: ${spec.dst}[i]}}) "
                   f"WHERE {match} DELETE r", ch.removed, list(spec.key))
        for name in NODE_TABLES:
            spec = TABLES[name]
            yield (_unwind("id") + f"MATCH (n:{spec.label} {{id: $id[i]}}) DETACH DELETE n",
                   diff.tables[name].removed, ["id"])
        # 3. nodes added or updated (a null property removes it); foreign keys of updated
        #    rows are unlinked, to be linked again in 4.
        for name in NODE_TABLES:
            spec = TABLES[name]
            ch = diff.tables[name]
            props = [c.name for c in spec.property_columns()]
            sets = ", ".join(f"n.{c} = ${c}[i]" for c in props if c != "id")
            for verb, df in (("CREATE", ch.added), ("MERGE", ch.updated)):
                yield (_unwind("id") + f"{verb} (n:{spec.label} {{id: $id[i]}})"
                       + (f" SET {sets}" if sets else ""), df, props)
            for fk in spec.fk_columns():
                arrow = f"-[r:{fk.rel}]->()" if fk.rel_out else f"<-[r:{fk.rel}]-()"
                yield (_unwind("id") + f"MATCH (n:{spec.label} {{id: $id[i]}}){arrow} DELETE r",
                       ch.updated, ["id"])
        # 4. foreign-key relationships of added and updated nodes
        for name in NODE_TABLES:
            spec = TABLES[name]
            ch = diff.tables[name]
            for fk in spec.fk_columns():
                other = TABLES[str(fk.ref)].label
                pattern = "(n)-[:{t}]->(m)" if fk.rel_out else "(m)-[:{t}]->(n)"
                q = (_unwind("id") + f"MATCH (n:{spec.label} {{id: $id[i]}}) "
                     f"MATCH (m:{other} {{id: ${fk.name}[i]}}) "
                     f"VERB {pattern.format(t=fk.rel)}")
                for verb, df in (("CREATE", ch.added), ("MERGE", ch.updated)):
                    yield (q.replace("VERB", verb), df.loc[df[fk.name].notna()],
                           ["id", fk.name])
        # 5. relationships of edge tables, added or updated
        for name, ch in diff.tables.items():
            spec = TABLES[name]
            if spec.is_node:
                continue
            keyprops = ", ".join(f"{k}: ${k}[i]" for k in spec.rel_key)
            props = [c.name for c in spec.property_columns() if c.name not in spec.rel_key]
            sets = ", ".join(f"r.{c} = ${c}[i]" for c in props)
            for verb, df in (("CREATE", ch.added), ("MERGE", ch.updated)):
                yield (_unwind(str(spec.src))
                       + f"MATCH (s:{_label_of(spec, str(spec.src))} {{id: ${spec.src}[i]}}) "
                       f"MATCH (d:{_label_of(spec, str(spec.dst))} {{id: ${spec.dst}[i]}}) "
                       f"{verb} (s)-[r:{spec.rel}"
                       f"{' {' + keyprops + '}' if keyprops else ''}]->(d)"
                       + (f" SET {sets}" if sets else ""), df, list(spec.column_names))

    def clear(self) -> None:
        # Relationships first: deleting a hub node with all its relationships at once would
        # need them all in one transaction's memory.
        with self._session() as s:
            s.run("MATCH ()-[r]->() CALL (r) { DELETE r } IN TRANSACTIONS OF 50000 ROWS"
                  ).consume()
            s.run("MATCH (n) CALL (n) { DELETE n } IN TRANSACTIONS OF 50000 ROWS").consume()

    # ------------------------------------------------------------------ reads
    def read_snapshot(self) -> Snapshot:
        snapshot, pending = self._current()
        if pending:
            raise StoreError(f"{self.uri}: a write to this store was interrupted and is "
                             "incomplete; write the snapshot again to complete it")
        return snapshot

    def _current(self) -> tuple[Snapshot, bool]:
        with self._session() as s:
            frames, manifest, pending = s.execute_read(self._read_tx)
        return Snapshot.from_tables(frames, manifest), pending

    @staticmethod
    def _read_tx(tx: ManagedTransaction
                 ) -> tuple[dict[str, pd.DataFrame], Manifest | None, bool]:
        def df(query: str, columns: list[str]) -> pd.DataFrame:
            # one record holding every row as a list: far fewer Bolt messages than a record
            # per row; collect() of lists keeps nulls in place.
            match, values = query.split(" RETURN ")
            rows = tx.run(_q(f"{match} RETURN collect([{values}])")).single(strict=True)[0]
            return pd.DataFrame(rows, columns=columns, dtype=object)

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
                    f"MATCH (s:{_label_of(spec, spec.src)})-[r:{spec.rel}]->"
                    f"(d:{_label_of(spec, spec.dst)}) RETURN s.id, d.id, "
                    + ", ".join(f"r.{c}" for c in props),
                    [str(spec.src), str(spec.dst), *props],
                )[cols]
        rec = tx.run(_q(f"MATCH (m:{_META} {{key: 'current'}}) "
                        "RETURN m.manifest, m.write_pending")).single()
        manifest = Manifest.model_validate(json.loads(rec[0])) if rec and rec[0] else None
        return frames, manifest, bool(rec and rec[1])

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
        q = (f"MATCH (:Pool {{id: $pool}})<-[:{RelType.IN}]-(n:Position) "
             f"OPTIONAL MATCH (acc:Account)-[:{RelType.OWNS}]->(n) " + _HEALTH
             + "WITH n, acc, w, debt WHERE " + _HEALTH_RANGE
             + "RETURN n.id AS id, acc.id AS account, w, debt")
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

    # ------------------------------------------------------------------ batch reads
    @staticmethod
    def _records(rows: list[dict[str, Any]]) -> list[NodeRecord]:
        return [record_from(r["label"], r["p"], r["fk"]) for r in rows]

    def nodes(self, ids: Sequence[str], *, label: NodeLabel | str | None = None
              ) -> dict[str, NodeRecord]:
        labels = ALL_LABELS if label is None else [str(check_label(label))]
        ids = list(dict.fromkeys(ids))
        if not ids:
            return {}
        union = " UNION ALL ".join(f"UNWIND $ids AS id MATCH (n:{lab} {{id: id}}) "
                                   f"RETURN {_record_return(lab)}" for lab in labels)
        rows = self._run(f"CALL () {{ {union} }} RETURN label, p, fk", ids=ids)
        found = {r.id: r for r in self._records(rows)}
        return {i: found[i] for i in ids if i in found}

    def list_nodes(self, label: NodeLabel | str, *, where: NodeFilter | None = None,
                   after: str | None = None, before: str | None = None, limit: int = 100,
                   descending: bool = False) -> list[NodeRecord]:
        lab, cond = check_listing(label, where, limit)
        if limit == 0:
            return []
        conditions = _CONDITIONS[lab]
        parts = [conditions[k] for k in cond.given() if k in conditions]
        if after is not None:
            parts.append("n.id > $after")
        if before is not None:
            parts.append("n.id < $before")
        q = f"MATCH (n:{lab}) " + (f"WHERE {' AND '.join(parts)} " if parts else "")
        if cond.min_health is not None or cond.max_health is not None:
            q += _HEALTH + "WITH n, w, debt WHERE " + _HEALTH_RANGE
        q += (f"WITH n ORDER BY n.id {'DESC' if descending else 'ASC'} LIMIT $limit "
              f"RETURN {_record_return(lab)}")
        params = {k: v for k, v in cond.__dict__.items() if k in conditions}
        rows = self._run(q, **params, min=cond.min_health, max=cond.max_health, after=after,
                         before=before, limit=limit)
        return sorted(self._records(rows), key=lambda r: r.id, reverse=descending)

    def relationships(self, ids: Sequence[str], rels: Sequence[RelType | str],
                      direction: str = "out") -> dict[str, list[Neighbour]]:
        side = relationship_side(tuple(rels), direction)
        ids = list(dict.fromkeys(ids))
        types = "|".join(str(RelType(r)) for r in dict.fromkeys(rels))
        arrow = f"-[r:{types}]->" if direction == "out" else f"<-[r:{types}]-"
        found: dict[str, list[tuple[tuple[Any, ...], Neighbour]]] = {i: [] for i in ids}
        if ids:
            for r in self._run(f"UNWIND $ids AS id MATCH (n:{side} {{id: id}}){arrow}(m) "
                               "RETURN id, type(r) AS rel, m.id AS other, "
                               "labels(m)[0] AS label, properties(r) AS props", ids=ids):
                found[r["id"]].append((
                    neighbour_order(r["rel"], direction, r["other"], r["props"]),
                    Neighbour(r["rel"], direction, r["other"], r["label"],
                              tuple(sorted(r["props"].items())))))
        return {i: [n for _, n in sorted(v, key=lambda x: x[0])] for i, v in found.items()}

    def health_factors(self, ids: Sequence[str]) -> dict[str, float]:
        ids = list(dict.fromkeys(ids))
        if not ids:
            return {}
        rows = self._run("UNWIND $ids AS id MATCH (n:Position {id: id}) " + _HEALTH
                         + "RETURN n.id AS id, w, debt", ids=ids)
        hf = {r["id"]: health_factor(r["w"], r["debt"]) for r in rows}
        return {i: hf[i] for i in ids if i in hf}

    # ------------------------------------------------------------------ scores
    def write_scores(self, name: str, scores: Mapping[str, float], *, model: str) -> ScoreSet:
        key = score_property(name)
        values = check_scores(name, scores, model)
        written = datetime.now(UTC).isoformat()
        ids = list(values)

        def tx_fn(tx: ManagedTransaction) -> None:
            by_label: dict[str, list[str]] = {}
            for lab in ALL_LABELS:
                rec = tx.run(_q(f"UNWIND $ids AS id MATCH (n:{lab} {{id: id}}) "
                                "RETURN collect(id) AS found"), ids=ids).single(strict=True)
                by_label[lab] = list(rec["found"])
            found = {i for v in by_label.values() for i in v}
            missing = [i for i in ids if i not in found]
            if missing:
                raise unknown_ids_error(missing, name)  # the transaction rolls back
            for lab in ALL_LABELS:
                tx.run(_q(f"MATCH (n:{lab}) WHERE n[$key] IS NOT NULL SET n += $gone"),
                       key=key, gone={key: None}).consume()
                got = by_label[lab]
                for k in range(0, len(got), _SCORE_BATCH):
                    rows = [{"id": i, "p": {key: values[i]}} for i in got[k:k + _SCORE_BATCH]]
                    tx.run(_q(f"UNWIND $rows AS r MATCH (n:{lab} {{id: r.id}}) SET n += r.p"),
                           rows=rows).consume()
            tx.run(_q(f"MERGE (m:{_SCORE_META} {{name: $name}}) "
                      "SET m.model = $model, m.written = $written"),
                   name=name, model=model, written=written).consume()

        with self._session() as s:
            s.execute_write(tx_fn)
        return ScoreSet(name, model, written, len(values))

    def _score_labels(self, label: NodeLabel | str | None) -> list[str]:
        return ALL_LABELS if label is None else [str(check_label(label))]

    def scores(self, name: str, *, ids: Sequence[str] | None = None,
               label: NodeLabel | str | None = None) -> dict[str, float]:
        key = score_property(name)
        if not self._run(f"MATCH (m:{_SCORE_META} {{name: $name}}) RETURN m.name AS n",
                         name=name):
            have = [r["n"] for r in self._run(f"MATCH (m:{_SCORE_META}) RETURN m.name AS n "
                                              "ORDER BY n")]
            raise KeyError(f"no scores named {name!r} (the store has: "
                           f"{', '.join(have) or 'none'})")
        out: dict[str, float] = {}
        for lab in self._score_labels(label):
            if ids is None:
                rows = self._run(f"MATCH (n:{lab}) WHERE n[$key] IS NOT NULL "
                                 "RETURN n.id AS id, n[$key] AS v", key=key)
            else:
                rows = self._run(f"UNWIND $ids AS id MATCH (n:{lab} {{id: id}}) "
                                 "WHERE n[$key] IS NOT NULL RETURN n.id AS id, n[$key] AS v",
                                 key=key, ids=list(ids))
            out.update({str(r["id"]): float(r["v"]) for r in rows})
        if ids is None:
            return dict(sorted(out.items()))
        return {i: out[i] for i in ids if i in out}

    def score_sets(self) -> list[ScoreSet]:
        out = []
        for r in self._run(f"MATCH (m:{_SCORE_META}) RETURN m.name AS name, m.model AS model, "
                           "m.written AS written ORDER BY name"):
            key = score_property(r["name"])
            count = sum(int(self._run(f"MATCH (n:{lab}) WHERE n[$key] IS NOT NULL "
                                      "RETURN count(n) AS c", key=key)[0]["c"])
                        for lab in ALL_LABELS)
            out.append(ScoreSet(r["name"], r["model"], r["written"], count))
        return out
