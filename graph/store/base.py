"""The contract every graph store fulfils, and the plain data types its queries return.

The same contract suite (``tests/graph/test_store_contract.py``) runs against every backend, so
callers never need to know which one they hold.
"""

from __future__ import annotations

import math
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from graph.errors import ContagionError
from graph.export import SystemArrays, compile_system
from graph.schema import TABLES, rel_endpoints, table_for_label
from graph.snapshot import Snapshot
from graph.store.diff import SnapshotDiff, diff_snapshots
from graph.vocab import NodeLabel, RelType

__all__ = [
    "FILTERS_BY_LABEL",
    "MAX_LIST_LIMIT",
    "MAX_PATH_HOPS",
    "ContagionPath",
    "GraphStore",
    "Neighbour",
    "NodeFilter",
    "NodeNotFound",
    "NodeRecord",
    "NodeView",
    "PositionHealth",
    "Progress",
    "ScoreSet",
    "StoreStats",
    "Subgraph",
    "WriteSummary",
]

#: ``progress(done, total)``: rows written so far out of the rows a write changes.
Progress = Callable[[int, int], None]

#: Upper bound on ``max_hops`` for path enumeration (paths grow exponentially with length).
MAX_PATH_HOPS = 8

#: Upper bound on ``limit`` of :meth:`GraphStore.list_nodes` (one page of a listing).
MAX_LIST_LIMIT = 10_000


class NodeNotFound(ContagionError, KeyError):
    """No node has the requested id."""

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True, order=True)
class Neighbour:
    """A relationship of a node: its type, whether it points ``out`` of or ``in`` to the node,
    the node at its other end, and its properties."""

    rel: str
    direction: str
    id: str
    label: str
    properties: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class NodeView:
    """A node, its properties, and its first ``len(neighbours)`` of ``degree`` relationships
    (ordered by relationship type, direction, neighbour id and key properties)."""

    id: str
    label: str
    properties: dict[str, Any]
    neighbours: list[Neighbour]
    degree: int


@dataclass(frozen=True)
class Subgraph:
    """Nodes (id → label) and relationships ``(source id, type, target id)``, sorted."""

    nodes: dict[str, str]
    relationships: list[tuple[str, str, str]]


@dataclass(frozen=True, order=True)
class ContagionPath:
    """How a shock at ``nodes[0]`` reaches ``nodes[-1]``: ``nodes[i+1]`` depends on
    ``nodes[i]`` through a relationship of type ``rels[i]`` (which points from ``nodes[i+1]``
    to ``nodes[i]`` in the graph)."""

    nodes: tuple[str, ...]
    rels: tuple[str, ...]

    @property
    def hops(self) -> int:
        return len(self.rels)


@dataclass(frozen=True)
class PositionHealth:
    """A position of a pool with its health factor ``Σ c·p·LT / Σ d·p`` (inf without debt;
    :func:`graph.export.health_factor`)."""

    id: str
    account: str
    health_factor: float


@dataclass(frozen=True)
class ScoreSet:
    """A named set of node scores written by :meth:`GraphStore.write_scores`: the model that
    produced them, when they were written (ISO 8601, UTC) and how many nodes carry them."""

    name: str
    model: str
    written: str
    count: int


_SCORE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


def score_property(name: str) -> str:
    """The node property holding the scores ``name`` (``score_<name>``); checks the name."""
    if not isinstance(name, str) or not _SCORE_NAME.match(name):
        raise ValueError(f"score name must be 1 to 40 lower-case letters, digits or '_', "
                         f"starting with a letter (got {name!r})")
    return f"score_{name}"


def check_scores(name: str, scores: Mapping[str, float], model: str) -> dict[str, float]:
    """Validated ``{node id: finite float}`` of a score write."""
    score_property(name)
    if not isinstance(model, str) or not model.strip():
        raise ValueError(f"model must be a non-empty string naming what produced the scores "
                         f"(got {model!r})")
    out: dict[str, float] = {}
    for k, v in scores.items():
        if not isinstance(k, str):
            raise ValueError(f"score node ids must be strings (got {k!r})")
        try:
            f = float(v)
        except (TypeError, ValueError):
            raise ValueError(f"score of {k!r} must be a number (got {v!r})") from None
        if not math.isfinite(f):
            raise ValueError(f"score of {k!r} must be finite (got {f})")
        out[k] = f
    return out


def unknown_ids_error(missing: Sequence[str], name: str) -> NodeNotFound:
    shown = ", ".join(repr(m) for m in sorted(missing)[:5])
    more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
    return NodeNotFound(f"scores {name!r} not written: no node with id {shown}{more}")


@dataclass(frozen=True)
class NodeRecord:
    """A node as its snapshot row: ``row`` maps every column of the node's table
    (:mod:`graph.schema`) to its value, a foreign key to the referenced node's id, None where
    null."""

    label: str
    row: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.row["id"])


@dataclass(frozen=True)
class NodeFilter:
    """Conditions on the nodes of a listing (:meth:`GraphStore.list_nodes`); every condition
    given must hold, and each applies to the labels listed in :data:`FILTERS_BY_LABEL`.

    - ``kind``: the node's ``kind`` (protocols, assets, pools, oracles, accounts);
    - ``protocol``: a pool it operates, an asset it issues, a position in a pool it operates;
    - ``pool``: a position in the pool, an oracle that reads it;
    - ``account``: a position the account owns;
    - ``asset``: a pool that accepts it as collateral or lends it, a position holding it as
      collateral or owing it;
    - ``min_health`` / ``max_health``: a position with ``min_health <= HF < max_health`` (the
      health factor of :meth:`GraphStore.positions`; infinite without debt).
    """

    kind: str | None = None
    protocol: str | None = None
    pool: str | None = None
    account: str | None = None
    asset: str | None = None
    min_health: float | None = None
    max_health: float | None = None

    def given(self) -> list[str]:
        """Names of the conditions that are set."""
        return [k for k, v in self.__dict__.items() if v is not None]


#: Which :class:`NodeFilter` conditions apply to the nodes of each label.
FILTERS_BY_LABEL: dict[str, frozenset[str]] = {
    NodeLabel.PROTOCOL: frozenset({"kind"}),
    NodeLabel.ASSET: frozenset({"kind", "protocol"}),
    NodeLabel.POOL: frozenset({"kind", "protocol", "asset"}),
    NodeLabel.ORACLE: frozenset({"kind", "pool"}),
    NodeLabel.ACCOUNT: frozenset({"kind"}),
    NodeLabel.POSITION: frozenset({"protocol", "pool", "account", "asset", "min_health",
                                   "max_health"}),
}


@dataclass(frozen=True)
class StoreStats:
    """Counts per node label and per relationship type (every label and type, zeros too)."""

    labels: dict[str, int]
    relationships: dict[str, int]

    def as_dict(self) -> dict[str, dict[str, int]]:
        return {"labels": self.labels, "relationships": self.relationships}


@dataclass(frozen=True)
class WriteSummary:
    """What a write changed, per node label / relationship type (the graph name of a table)."""

    added: dict[str, int] = field(default_factory=dict)
    updated: dict[str, int] = field(default_factory=dict)
    removed: dict[str, int] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return any(v for d in (self.added, self.updated, self.removed) for v in d.values())

    @classmethod
    def from_diff(cls, diff: SnapshotDiff) -> WriteSummary:
        def graph_name(table: str) -> str:
            spec = TABLES[table]
            return str(spec.label if spec.is_node else spec.rel)

        return cls(**{
            kind: {graph_name(t): n for t, n in per_table.items()}
            for kind, per_table in diff.counts.items()
        })


def sort_key_hf(p: PositionHealth) -> tuple[float, str]:
    return (p.health_factor, p.id)


def check_hops(name: str, value: int, *, low: int = 0) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= MAX_PATH_HOPS:
        raise ValueError(f"'{name}' must be an integer in [{low}, {MAX_PATH_HOPS}] (got {value!r})")
    return value


def in_health_range(hf: float, min_health: float | None, max_health: float | None) -> bool:
    """``min_health <= hf < max_health`` with open ends where a bound is None."""
    if min_health is not None and not hf >= min_health:
        return False
    return max_health is None or hf < max_health


def check_label(label: NodeLabel | str) -> NodeLabel:
    try:
        return NodeLabel(label)
    except ValueError:
        raise ValueError(f"'label' must be one of {', '.join(NodeLabel)} (got {label!r})"
                         ) from None


def check_listing(label: NodeLabel | str, where: NodeFilter | None, limit: int
                  ) -> tuple[NodeLabel, NodeFilter]:
    """Validate the arguments of :meth:`GraphStore.list_nodes`."""
    lab = check_label(label)
    where = where or NodeFilter()
    allowed = FILTERS_BY_LABEL[lab]
    for name in where.given():
        if name not in allowed:
            applies = sorted(str(k) for k, v in FILTERS_BY_LABEL.items() if name in v)
            raise ValueError(f"filter '{name}' applies to {', '.join(applies)} "
                             f"(got it for {lab})")
    if not isinstance(limit, int) or isinstance(limit, bool) or not 0 <= limit <= MAX_LIST_LIMIT:
        raise ValueError(f"'limit' must be an integer in [0, {MAX_LIST_LIMIT}] (got {limit!r})")
    return lab, where


def relationship_side(rels: tuple[RelType | str, ...], direction: str) -> NodeLabel:
    """The label of the nodes whose ``direction`` relationships of types ``rels`` are asked
    for (every type must have the same label at that end)."""
    if direction not in ("out", "in"):
        raise ValueError(f"'direction' must be 'out' or 'in' (got {direction!r})")
    if not rels:
        raise ValueError("'rels' must name at least one relationship type (got none)")
    sides = set()
    for r in rels:
        try:
            src, dst = rel_endpoints(RelType(r))
        except ValueError:
            raise ValueError(f"'rels' must be relationship types ({', '.join(RelType)}) "
                             f"(got {r!r})") from None
        sides.add(src if direction == "out" else dst)
    if len(sides) > 1:
        raise ValueError(f"'rels' must share the label at their {direction!r} end "
                         f"(got {', '.join(sorted(sides))})")
    return sides.pop()


def record_from(label: str, props: dict[str, Any], fks: dict[str, Any]) -> NodeRecord:
    """A :class:`NodeRecord` from stored properties and foreign-key ids."""
    spec = table_for_label(label)
    row = {c: (fks.get(c) if c in fks else props.get(c)) for c in spec.column_names}
    return NodeRecord(label, row)


class GraphStore(ABC):
    """A graph store holding one ecosystem snapshot; see docs/architecture.md §2.

    Writing a snapshot makes the store hold exactly that snapshot (rows absent from it are
    removed); the write is atomic and re-writing the same snapshot changes nothing.
    """

    uri: str

    # -- writes
    def write_snapshot(self, snapshot: Snapshot, *, progress: Progress | None = None
                       ) -> WriteSummary:
        """Make the store hold ``snapshot``; returns what changed.

        ``progress(done, total)`` is called as rows are written.
        """
        current, incomplete = self._current()
        diff = diff_snapshots(current, snapshot)
        total = sum(sum(c.values()) for c in diff.counts.values())
        done = 0

        def tick(n: int) -> None:
            nonlocal done
            done += n
            if progress is not None:
                progress(min(done, total), total)

        if incomplete or not diff.empty:
            self._apply(diff, snapshot, tick)
        tick(0)
        return WriteSummary.from_diff(diff)

    def _current(self) -> tuple[Snapshot, bool]:
        """What the store holds, as the base of a write, and whether an earlier write was
        interrupted (what it holds is then partial)."""
        return self.read_snapshot(), False

    @abstractmethod
    def _apply(self, diff: SnapshotDiff, snapshot: Snapshot, tick: Callable[[int], None]
               ) -> None:
        """Apply ``diff`` atomically (the store then holds ``snapshot``); ``tick(n)`` after
        each ``n`` rows."""

    @abstractmethod
    def clear(self) -> None:
        """Remove everything."""

    # -- reads
    @abstractmethod
    def read_snapshot(self) -> Snapshot:
        """The snapshot the store holds (an empty one if nothing was written)."""

    @abstractmethod
    def node(self, node_id: str, *, neighbour_limit: int = 1000) -> NodeView:
        """A node with its properties and (up to ``neighbour_limit``) relationships."""

    @abstractmethod
    def dependencies(self, protocol_id: str, depth: int) -> Subgraph:
        """What protocol ``protocol_id`` depends on within ``depth`` hops.

        The nodes reachable from the protocol along outgoing relationships of the types in
        :data:`graph.vocab.DEPENDENCY_RELS` in at most ``depth`` hops, and the relationships
        of those types leaving a node closer than ``depth`` hops.
        """

    def system_graph(self) -> Subgraph:
        """The dependency layer of the whole system: the union of every protocol's
        :meth:`dependencies` as far as they reach (protocols, pools, assets and oracles, and
        the dependency relationships between them)."""
        nodes: dict[str, str] = {}
        rels: set[tuple[str, str, str]] = set()
        after = None
        while page := self.list_nodes(NodeLabel.PROTOCOL, after=after, limit=500):
            for p in page:
                sub = self.dependencies(p.id, MAX_PATH_HOPS)
                nodes.update(sub.nodes)
                rels.update(sub.relationships)
            after = page[-1].id
        return Subgraph(dict(sorted(nodes.items())), sorted(rels))

    @abstractmethod
    def contagion_paths(self, source: str, target: str, max_hops: int, *,
                        limit: int = 100) -> list[ContagionPath]:
        """Simple paths by which a shock at ``source`` reaches ``target``.

        Every path of at most ``max_hops`` relationships from ``target`` to ``source`` along
        "depends on" relationships (any type), with no repeated node, reported from the source;
        sorted by length, then node ids and types; at most ``limit``.
        """

    @abstractmethod
    def positions(self, pool_id: str, *, min_health: float | None = None,
                  max_health: float | None = None) -> list[PositionHealth]:
        """Positions of pool ``pool_id`` with ``min_health <= HF < max_health``, sorted by HF
        then id, at the snapshot's prices and the pool's liquidation thresholds."""

    @abstractmethod
    def stats(self) -> StoreStats:
        """Counts per node label and relationship type."""

    # -- batch reads (one query each, for API DataLoaders)
    @abstractmethod
    def nodes(self, ids: Sequence[str], *, label: NodeLabel | str | None = None
              ) -> dict[str, NodeRecord]:
        """The nodes among ``ids`` that exist (and have ``label``, when given), by id."""

    @abstractmethod
    def list_nodes(self, label: NodeLabel | str, *, where: NodeFilter | None = None,
                   after: str | None = None, before: str | None = None, limit: int = 100,
                   descending: bool = False) -> list[NodeRecord]:
        """Nodes with ``label`` that match ``where``, with ``after < id < before`` (an open
        end where None), ordered by id (descending if ``descending``), at most ``limit``.

        Keyset pagination: the next page starts after the last id of this one.
        """

    @abstractmethod
    def relationships(self, ids: Sequence[str], rels: Sequence[RelType | str],
                      direction: str = "out") -> dict[str, list[Neighbour]]:
        """The relationships of types ``rels`` leaving (``direction="out"``) or entering
        (``"in"``) each node of ``ids``, ordered as in :class:`NodeView`; every id maps to a
        list, empty for a node that has none or does not exist. All the types must have the
        same label at that end (the label of the nodes asked about)."""

    @abstractmethod
    def health_factors(self, ids: Sequence[str]) -> dict[str, float]:
        """The health factor of each position among ``ids`` (as :meth:`positions` computes
        it); ids that are not positions are left out."""

    # -- scores (model outputs kept as node properties ``score_<name>``)
    @abstractmethod
    def write_scores(self, name: str, scores: Mapping[str, float], *, model: str) -> ScoreSet:
        """Store ``scores`` (``{node id: value}``) as the node property ``score_<name>``,
        replacing any earlier set of that name (nodes left out lose it); ``model`` says what
        produced them. All or nothing: an unknown node id raises :class:`NodeNotFound` and
        nothing is written. Scores are dropped with their node when a snapshot write removes
        it."""

    @abstractmethod
    def scores(self, name: str, *, ids: Sequence[str] | None = None,
               label: NodeLabel | str | None = None) -> dict[str, float]:
        """The scores ``name`` as ``{node id: value}``, of the nodes among ``ids`` and/or with
        ``label`` when given (nodes without a score are left out); an unknown ``name`` raises
        :class:`KeyError` naming the sets there are."""

    @abstractmethod
    def score_sets(self) -> list[ScoreSet]:
        """The score sets held, by name."""

    def export_arrays(self) -> SystemArrays:
        """The numeric form of the held snapshot, for the simulator and the GNN."""
        return compile_system(self.read_snapshot())

    # -- lifecycle
    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections and files."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


ALL_LABELS = [str(x) for x in NodeLabel]
ALL_RELS = [str(x) for x in RelType]
