"""The embedded store: a networkx ``MultiDiGraph`` in process, persisted to one file.

Nodes carry a ``label`` attribute and their properties; relationships are keyed by their type
(plus key properties for option legs) and carry a ``type`` attribute and their properties. The
file is a ZIP archive holding the snapshot directory format of :mod:`graph.snapshot` and
``scores.json`` (the score sets); it is rewritten through a temporary file and an atomic
rename after every write.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import zipfile
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import networkx as nx
import pandas as pd

from graph.errors import StoreError
from graph.export import health_factor
from graph.schema import NODE_TABLES, TABLES, table_for_label
from graph.snapshot import Snapshot
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
from graph.store.diff import SnapshotDiff, diff_snapshots
from graph.store.records import edge_key, fk_columns, neighbour_order, props_records
from graph.vocab import DEPENDENCY_RELS, NodeLabel, RelType

__all__ = ["MemoryStore"]

_SCORES = "scores.json"

_DEPENDENCY = {str(r) for r in DEPENDENCY_RELS}


class _ReadIndex:
    """What listings need and the graph does not index: sorted ids per label, and the health
    factors of positions worked out so far. Valid until the next write."""

    def __init__(self, graph: nx.MultiDiGraph) -> None:
        by_label: dict[str, list[str]] = defaultdict(list)
        for n, lab in graph.nodes(data="label"):
            by_label[lab].append(n)
        self.ids = {lab: sorted(v) for lab, v in by_label.items()}
        self.health: dict[str, float] = {}


class MemoryStore(GraphStore):
    """In-process store; ``path=None`` keeps it in memory only.

    A ``path`` that does not exist is a new, empty store whose file the first write creates;
    with ``create=False`` it must exist (reading a store that is not there raises
    :class:`~graph.errors.StoreError` naming it, instead of showing an empty graph).

    >>> store = MemoryStore()
    >>> store.stats().labels["Position"]
    0
    >>> MemoryStore("no/such/store.zip", create=False)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    graph.errors.StoreError: store file memory:no/such/store.zip does not exist (...)
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *,
                 create: bool = True) -> None:
        self.path = Path(path) if path is not None else None
        self.uri = f"memory:{self.path}" if self.path else "memory:"
        if self.path is not None and not create and not self.path.exists():
            raise StoreError(f"store file {self.uri} does not exist (`contagion load` or "
                             "`contagion ingest` creates it)")
        self.graph: nx.MultiDiGraph = nx.MultiDiGraph()
        self._index: _ReadIndex | None = None
        self._index_lock = threading.Lock()
        self._scores: dict[str, dict[str, float]] = {}
        self._score_sets: dict[str, ScoreSet] = {}
        if self.path is not None and self.path.exists():
            self._load()

    # ------------------------------------------------------------------ persistence
    def _load(self) -> None:
        assert self.path is not None
        try:
            with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(self.path) as zf:
                names = zf.namelist()
                zf.extractall(tmp, [n for n in names if n != _SCORES])
                snap = Snapshot.load(tmp)
                doc = json.loads(zf.read(_SCORES)) if _SCORES in names else {}
        except (zipfile.BadZipFile, OSError, ValueError) as e:
            raise StoreError(f"{self.path}: not a contagion memory store file ({e})") from e
        self._rebuild(snap)
        self._scores = {k: dict(v["scores"]) for k, v in doc.items()}
        self._score_sets = {k: ScoreSet(k, v["model"], v["written"], len(v["scores"]))
                            for k, v in doc.items()}

    def _rebuild(self, snapshot: Snapshot) -> None:
        """Make the graph exactly ``snapshot``, from scratch."""
        self.graph = nx.MultiDiGraph()
        self._apply_graph(diff_snapshots(Snapshot.empty(), snapshot))
        self.graph.graph["manifest"] = snapshot.manifest

    def _scores_json(self, scores: dict[str, dict[str, float]],
                     sets: dict[str, ScoreSet]) -> bytes:
        return json.dumps({k: {"model": sets[k].model, "written": sets[k].written,
                               "scores": scores[k]} for k in sorted(scores)}).encode()

    def _persist(self, snapshot: Snapshot | None, scores: bytes) -> None:
        """Rewrite the file: ``snapshot`` (``None``: keep the file's snapshot members) and the
        score sets ``scores`` (JSON)."""
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmpname = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        os.close(fd)
        try:
            with tempfile.TemporaryDirectory() as tmp, \
                    zipfile.ZipFile(tmpname, "w", zipfile.ZIP_STORED) as zf:
                if snapshot is not None:
                    d = snapshot.save(Path(tmp) / "snapshot")
                    for f in sorted(d.iterdir()):
                        zf.write(f, f.name)
                elif self.path.exists():
                    with zipfile.ZipFile(self.path) as old:
                        for info in old.infolist():
                            if info.filename != _SCORES:
                                zf.writestr(info, old.read(info))
                else:
                    d = Snapshot.empty().save(Path(tmp) / "snapshot")
                    for f in sorted(d.iterdir()):
                        zf.write(f, f.name)
                zf.writestr(_SCORES, scores)
            os.replace(tmpname, self.path)
        except BaseException:
            Path(tmpname).unlink(missing_ok=True)
            raise

    # ------------------------------------------------------------------ writes
    def _apply(self, diff: SnapshotDiff, snapshot: Snapshot, tick: Callable[[int], None]
               ) -> None:
        # Scores of nodes the snapshot no longer has go with them.
        ids = {str(i) for n in NODE_TABLES for i in snapshot.tables[n]["id"]}
        scores = {k: {i: v for i, v in sc.items() if i in ids} for k, sc in self._scores.items()}
        sets = {k: ScoreSet(k, m.model, m.written, len(scores[k]))
                for k, m in self._score_sets.items()}
        # Persist first: if the file cannot be written, the in-memory graph is untouched.
        self._persist(snapshot, self._scores_json(scores, sets))
        self._scores, self._score_sets = scores, sets
        try:
            self._apply_graph(diff, tick)
        except BaseException:
            # Interrupted mid-way: rebuild the graph from the snapshot just persisted.
            self._rebuild(snapshot)
            raise
        self.graph.graph["manifest"] = snapshot.manifest

    def _apply_graph(self, diff: SnapshotDiff, tick: Callable[[int], None] = lambda n: None
                     ) -> None:
        self._index = None
        g = self.graph
        for name, ch in diff.tables.items():
            spec = TABLES[name]
            if spec.is_node or ch.removed.empty:
                continue
            cols = list(spec.column_names)
            for row in props_records(ch.removed, cols):
                k = edge_key(spec, row)
                if g.has_edge(row[spec.src], row[spec.dst], k):
                    g.remove_edge(row[spec.src], row[spec.dst], k)
        for name in NODE_TABLES:
            g.remove_nodes_from(diff.tables[name].removed["id"].tolist())
        tick(sum(len(c.removed) for c in diff.tables.values()))
        for name in NODE_TABLES:
            spec = TABLES[name]
            ch = diff.tables[name]
            props = [c.name for c in spec.property_columns()]
            fks = spec.fk_columns()
            g.add_nodes_from(
                (r["id"], {"label": str(spec.label), **r})
                for r in props_records(ch.added, props)
            )
            for r in props_records(ch.updated, props):
                attrs = g.nodes[r["id"]]
                for c in props:
                    attrs.pop(c, None)
                attrs.update(r)
                for fk in fks:
                    rel = str(fk.rel)
                    edges = (g.out_edges(r["id"], keys=True) if fk.rel_out
                             else g.in_edges(r["id"], keys=True))
                    for u, v, k in [e for e in edges if e[2] == rel]:
                        g.remove_edge(u, v, k)
            tick(len(ch.added) + len(ch.updated))
        for name in NODE_TABLES:
            spec = TABLES[name]
            ch = diff.tables[name]
            for fk in spec.fk_columns():
                rel = str(fk.rel)
                for df in (ch.added, ch.updated):
                    sub = df.loc[df[fk.name].notna(), ["id", fk.name]]
                    pairs = zip(sub["id"].tolist(), sub[fk.name].tolist(), strict=True)
                    g.add_edges_from(
                        ((a, b, rel, {"type": rel}) if fk.rel_out else (b, a, rel, {"type": rel}))
                        for a, b in pairs
                    )
        for name, ch in diff.tables.items():
            spec = TABLES[name]
            if spec.is_node:
                continue
            rel = str(spec.rel)
            props = [c.name for c in spec.property_columns()]
            cols = [str(spec.src), str(spec.dst), *props]
            for df in (ch.added, ch.updated):
                edges = []
                for r in props_records(df, cols):
                    s, d = r.pop(spec.src), r.pop(spec.dst)
                    edges.append((s, d, edge_key(spec, r), {"type": rel, **r}))
                for s, d, k, _ in edges:
                    if g.has_edge(s, d, k):
                        g.edges[s, d, k].clear()
                g.add_edges_from(edges)
                tick(len(edges))

    def clear(self) -> None:
        self._index = None
        self.graph = nx.MultiDiGraph()
        self._scores, self._score_sets = {}, {}
        if self.path is not None:
            self.path.unlink(missing_ok=True)

    # ------------------------------------------------------------------ reads
    def read_snapshot(self) -> Snapshot:
        g = self.graph
        rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
        by_label = {str(TABLES[n].label): n for n in NODE_TABLES}
        fk_values: dict[str, dict[str, dict[str, str]]] = defaultdict(lambda: defaultdict(dict))
        fks = fk_columns()
        for _n, attrs in g.nodes(data=True):
            rows[by_label[attrs["label"]]].append({k: v for k, v in attrs.items() if k != "label"})
        edge_tables = {str(s.rel): s for s in TABLES.values() if not s.is_node}
        for u, v, d in g.edges(data=True):
            t = d["type"]
            if t in fks:
                table, col, out = fks[t]
                node, other = (u, v) if out else (v, u)
                fk_values[table][col][node] = other
            else:
                spec = edge_tables[t]
                rows[spec.name].append({spec.src: u, spec.dst: v, **{
                    k: x for k, x in d.items() if k != "type"}})
        frames = {}
        for name, spec in TABLES.items():
            df = pd.DataFrame(rows.get(name, []), columns=list(spec.column_names), dtype=object)
            for col, mapping in fk_values[name].items():
                df[col] = df["id"].map(mapping)
            frames[name] = df
        return Snapshot.from_tables(frames, g.graph.get("manifest"))

    def _label(self, node_id: str) -> str:
        if node_id not in self.graph:
            raise NodeNotFound(f"no node with id {node_id!r}")
        return str(self.graph.nodes[node_id]["label"])

    def node(self, node_id: str, *, neighbour_limit: int = 1000) -> NodeView:
        label = self._label(node_id)
        g = self.graph
        found = []
        for direction, edges in (("out", g.out_edges(node_id, data=True)),
                                 ("in", g.in_edges(node_id, data=True))):
            for u, v, d in edges:
                other = v if direction == "out" else u
                props = {k: x for k, x in d.items() if k != "type"}
                found.append((neighbour_order(d["type"], direction, other, props),
                              Neighbour(d["type"], direction, other, g.nodes[other]["label"],
                                        tuple(sorted(props.items())))))
        found.sort(key=lambda x: x[0])
        props = {k: v for k, v in g.nodes[node_id].items() if k != "label"}
        for name, sc in sorted(self._scores.items()):
            if node_id in sc:
                props[score_property(name)] = sc[node_id]
        return NodeView(node_id, label, props, [n for _, n in found[:neighbour_limit]],
                        len(found))

    def dependencies(self, protocol_id: str, depth: int) -> Subgraph:
        check_hops("depth", depth)
        if self._label(protocol_id) != NodeLabel.PROTOCOL:
            raise NodeNotFound(f"{protocol_id!r} is not a protocol")
        g = self.graph
        dist = {protocol_id: 0}
        frontier = [protocol_id]
        rels: set[tuple[str, str, str]] = set()
        for hop in range(depth):
            nxt = []
            for u in frontier:
                for _, v, d in g.out_edges(u, data=True):
                    if d["type"] not in _DEPENDENCY:
                        continue
                    rels.add((u, d["type"], v))
                    if v not in dist:
                        dist[v] = hop + 1
                        nxt.append(v)
            frontier = nxt
        nodes = {n: str(g.nodes[n]["label"]) for n in sorted(dist)}
        return Subgraph(nodes, sorted(rels))

    def contagion_paths(self, source: str, target: str, max_hops: int, *,
                        limit: int = 100) -> list[ContagionPath]:
        check_hops("max_hops", max_hops, low=1)
        self._label(source)
        self._label(target)
        if source == target:
            return []
        g = self.graph
        found = set()
        for path in nx.all_simple_edge_paths(g, target, source, cutoff=max_hops):
            nodes = [path[0][0], *(e[1] for e in path)]
            rels = [g.edges[e]["type"] for e in path]
            found.add(ContagionPath(tuple(reversed(nodes)), tuple(reversed(rels))))
        return sorted(found, key=lambda p: (p.hops, p.nodes, p.rels))[:limit]

    def _pool_thresholds(self, pool_id: str) -> dict[str, float]:
        return {v: d["liquidation_threshold"]
                for _, v, d in self.graph.out_edges(pool_id, data=True)
                if d["type"] == RelType.ACCEPTS_COLLATERAL}

    def _health(self, pos: str, lt: dict[str, float]) -> float:
        """HF of position ``pos`` given its pool's liquidation thresholds ``lt``."""
        g = self.graph
        weighted = debt = 0.0
        for _, a, e in g.out_edges(pos, data=True):
            if e["type"] == RelType.COLLATERAL:
                weighted += e["amount"] * g.nodes[a]["price"] * lt.get(a, 0.0)
            elif e["type"] == RelType.DEBT:
                debt += e["amount"] * g.nodes[a]["price"]
        return health_factor(weighted, debt)

    def positions(self, pool_id: str, *, min_health: float | None = None,
                  max_health: float | None = None) -> list[PositionHealth]:
        if self._label(pool_id) != NodeLabel.POOL:
            raise NodeNotFound(f"{pool_id!r} is not a pool")
        g = self.graph
        lt = self._pool_thresholds(pool_id)
        out = []
        for pos, _, d in g.in_edges(pool_id, data=True):
            if d["type"] != RelType.IN:
                continue
            account = ""
            for acc, _, e in g.in_edges(pos, data=True):
                if e["type"] == RelType.OWNS:
                    account = acc
            hf = self._health(pos, lt)
            if in_health_range(hf, min_health, max_health):
                out.append(PositionHealth(pos, account, hf))
        return sorted(out, key=sort_key_hf)

    def stats(self) -> StoreStats:
        labels = dict.fromkeys(ALL_LABELS, 0)
        rels = dict.fromkeys(ALL_RELS, 0)
        for _, lab in self.graph.nodes(data="label"):
            labels[lab] += 1
        for _, _, t in self.graph.edges(data="type"):
            rels[t] += 1
        return StoreStats(labels, rels)

    # ------------------------------------------------------------------ batch reads
    def _read_index(self) -> _ReadIndex:
        index = self._index
        if index is None:
            with self._index_lock:
                index = self._index
                if index is None:
                    index = self._index = _ReadIndex(self.graph)
        return index

    def _out(self, node: str, rel: str) -> str | None:
        """The node at the end of ``node``'s one outgoing ``rel`` relationship, if any."""
        return next((v for _, v, k in self.graph.out_edges(node, keys=True) if k == rel), None)

    def _record(self, node: str) -> NodeRecord:
        g = self.graph
        attrs = g.nodes[node]
        spec = table_for_label(attrs["label"])
        fks: dict[str, str | None] = {}
        for fk in spec.fk_columns():
            rel = str(fk.rel)
            edges = (((v, k) for _, v, k in g.out_edges(node, keys=True)) if fk.rel_out
                     else ((u, k) for u, _, k in g.in_edges(node, keys=True)))
            fks[fk.name] = next((other for other, k in edges if k == rel), None)
        return record_from(attrs["label"], attrs, fks)

    def _position_health(self, index: _ReadIndex, pos: str) -> float:
        hf = index.health.get(pos)
        if hf is None:
            pool = self._out(pos, RelType.IN)
            hf = index.health[pos] = self._health(
                pos, self._pool_thresholds(pool) if pool is not None else {})
        return hf

    def nodes(self, ids: Sequence[str], *, label: NodeLabel | str | None = None
              ) -> dict[str, NodeRecord]:
        want = None if label is None else str(check_label(label))
        g = self.graph
        return {i: self._record(i) for i in dict.fromkeys(ids)
                if i in g and (want is None or g.nodes[i]["label"] == want)}

    def _sources(self, node: str, rels: Iterable[str]) -> set[str]:
        g = self.graph
        if node not in g:
            return set()
        keys = set(rels)
        return {u for u, _, k in g.in_edges(node, keys=True) if k in keys}

    def _targets(self, node: str, rels: Iterable[str]) -> set[str]:
        g = self.graph
        if node not in g:
            return set()
        keys = set(rels)
        return {v for _, v, k in g.out_edges(node, keys=True) if k in keys}

    def _candidates(self, label: NodeLabel, where: NodeFilter) -> set[str] | None:
        """A superset of the matching nodes, from the relationships of a node a condition
        names (None when no condition narrows the listing this way)."""
        R = RelType
        if label == NodeLabel.POSITION:
            if where.pool is not None:
                return self._sources(where.pool, [R.IN])
            if where.account is not None:
                return self._targets(where.account, [R.OWNS])
            if where.protocol is not None:
                return {p for pool in self._targets(where.protocol, [R.OPERATES])
                        for p in self._sources(pool, [R.IN])}
            if where.asset is not None:
                return self._sources(where.asset, [R.COLLATERAL, R.DEBT])
        elif label == NodeLabel.POOL:
            if where.protocol is not None:
                return self._targets(where.protocol, [R.OPERATES])
            if where.asset is not None:
                return self._sources(where.asset, [R.ACCEPTS_COLLATERAL, R.LENDS])
        elif label == NodeLabel.ASSET and where.protocol is not None:
            return self._sources(where.protocol, [R.ISSUED_BY])
        elif label == NodeLabel.ORACLE and where.pool is not None:
            return self._sources(where.pool, [R.READS])
        return None

    def _matches(self, index: _ReadIndex, label: NodeLabel, where: NodeFilter, node: str
                 ) -> bool:
        g, R = self.graph, RelType
        if where.kind is not None and g.nodes[node].get("kind") != where.kind:
            return False
        if label == NodeLabel.POSITION:
            pool = self._out(node, R.IN)
            if where.pool is not None and pool != where.pool:
                return False
            if where.account is not None and not g.has_edge(where.account, node, R.OWNS):
                return False
            if where.protocol is not None and (
                    pool is None or not g.has_edge(where.protocol, pool, R.OPERATES)):
                return False
            if where.asset is not None and not (g.has_edge(node, where.asset, R.COLLATERAL)
                                                or g.has_edge(node, where.asset, R.DEBT)):
                return False
            if where.min_health is not None or where.max_health is not None:
                return in_health_range(self._position_health(index, node), where.min_health,
                                       where.max_health)
        elif label == NodeLabel.POOL:
            if where.protocol is not None and not g.has_edge(where.protocol, node, R.OPERATES):
                return False
            if where.asset is not None and not (
                    g.has_edge(node, where.asset, R.ACCEPTS_COLLATERAL)
                    or g.has_edge(node, where.asset, R.LENDS)):
                return False
        elif label == NodeLabel.ASSET:
            if where.protocol is not None and not g.has_edge(node, where.protocol, R.ISSUED_BY):
                return False
        elif label == NodeLabel.ORACLE and where.pool is not None:
            return bool(g.has_edge(node, where.pool, R.READS))
        return True

    def list_nodes(self, label: NodeLabel | str, *, where: NodeFilter | None = None,
                   after: str | None = None, before: str | None = None, limit: int = 100,
                   descending: bool = False) -> list[NodeRecord]:
        lab, cond = check_listing(label, where, limit)
        index = self._read_index()
        candidates = self._candidates(lab, cond)
        if candidates is None:
            ids = index.ids.get(str(lab), [])
        else:
            ids = sorted(c for c in candidates if self.graph.nodes[c]["label"] == lab)
        lo = 0 if after is None else bisect_right(ids, after)
        hi = len(ids) if before is None else bisect_left(ids, before)
        out: list[NodeRecord] = []
        if limit == 0:
            return out
        for i in (range(hi - 1, lo - 1, -1) if descending else range(lo, hi)):
            if self._matches(index, lab, cond, ids[i]):
                out.append(self._record(ids[i]))
                if len(out) == limit:
                    break
        return out

    def relationships(self, ids: Sequence[str], rels: Sequence[RelType | str],
                      direction: str = "out") -> dict[str, list[Neighbour]]:
        relationship_side(tuple(rels), direction)
        g = self.graph
        types = {str(r) for r in rels}
        out: dict[str, list[Neighbour]] = {}
        for node in dict.fromkeys(ids):
            found = []
            if node in g:
                edges = (((v, d) for _, v, d in g.out_edges(node, data=True)) if direction == "out"
                         else ((u, d) for u, _, d in g.in_edges(node, data=True)))
                for other, d in edges:
                    if d["type"] in types:
                        props = {k: x for k, x in d.items() if k != "type"}
                        found.append((neighbour_order(d["type"], direction, other, props),
                                      Neighbour(d["type"], direction, other,
                                                g.nodes[other]["label"],
                                                tuple(sorted(props.items())))))
            found.sort(key=lambda x: x[0])
            out[node] = [n for _, n in found]
        return out

    def health_factors(self, ids: Sequence[str]) -> dict[str, float]:
        index = self._read_index()
        g = self.graph
        return {i: self._position_health(index, i) for i in dict.fromkeys(ids)
                if i in g and g.nodes[i]["label"] == NodeLabel.POSITION}

    # ------------------------------------------------------------------ scores
    def write_scores(self, name: str, scores: Mapping[str, float], *, model: str) -> ScoreSet:
        values = check_scores(name, scores, model)
        missing = [k for k in values if k not in self.graph]
        if missing:
            raise unknown_ids_error(missing, name)
        info = ScoreSet(name, model, datetime.now(UTC).isoformat(), len(values))
        new_scores = {**self._scores, name: values}
        new_sets = {**self._score_sets, name: info}
        self._persist(None, self._scores_json(new_scores, new_sets))
        self._scores, self._score_sets = new_scores, new_sets
        return info

    def scores(self, name: str, *, ids: Sequence[str] | None = None,
               label: NodeLabel | str | None = None) -> dict[str, float]:
        score_property(name)
        if name not in self._scores:
            raise KeyError(f"no scores named {name!r} (the store has: "
                           f"{', '.join(sorted(self._scores)) or 'none'})")
        sc = self._scores[name]
        keys = sorted(sc) if ids is None else [i for i in ids if i in sc]
        if label is not None:
            lab = str(check_label(label))
            keys = [k for k in keys if self.graph.nodes[k]["label"] == lab]
        return {k: sc[k] for k in keys}

    def score_sets(self) -> list[ScoreSet]:
        return [self._score_sets[k] for k in sorted(self._score_sets)]
