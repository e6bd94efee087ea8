"""The contract every graph store fulfils, and the plain data types its queries return.

The same contract suite (``tests/graph/test_store_contract.py``) runs against every backend, so
callers never need to know which one they hold.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from graph.errors import ContagionError
from graph.export import SystemArrays, compile_system
from graph.schema import TABLES
from graph.snapshot import Snapshot
from graph.store.diff import SnapshotDiff, diff_snapshots
from graph.vocab import NodeLabel, RelType

__all__ = [
    "MAX_PATH_HOPS",
    "ContagionPath",
    "GraphStore",
    "Neighbour",
    "NodeNotFound",
    "NodeView",
    "PositionHealth",
    "Progress",
    "StoreStats",
    "Subgraph",
    "WriteSummary",
]

#: ``progress(done, total)``: rows written so far out of the rows a write changes.
Progress = Callable[[int, int], None]

#: Upper bound on ``max_hops`` for path enumeration (paths grow exponentially with length).
MAX_PATH_HOPS = 8


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
    """A position of a pool with its health factor ``Σ c·p·LT / Σ d·p`` (inf without debt)."""

    id: str
    account: str
    health_factor: float


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


def health_factor(weighted_collateral: float, debt_value: float) -> float:
    return math.inf if debt_value <= 0 else weighted_collateral / debt_value


class GraphStore(ABC):
    """A graph store holding one ecosystem snapshot; see DESIGN.md §2.

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
