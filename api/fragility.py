"""The fragility model as the CLI and the server use it: scoring a store's ecosystem into the
store, and explaining scores.

:func:`score_store` scores every protocol, pool, asset and account of a store and writes the
scores into it as one named score set (node property ``score_<name>``). The server holds one
:class:`FragilityService`: the model is loaded on first use; explanations need the feature
graph of the served ecosystem, built on first use and kept until the store's content changes
through this server (``rescore``, ``ingest``), since building it means reading the whole
snapshot.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from graph.errors import ContagionError
from graph.store import GraphStore, ScoreSet

if TYPE_CHECKING:  # torch and torch_geometric load when the model is first used
    from gnn.explain import Explanation
    from gnn.features import FeatureGraph
    from gnn.model import FragilityModel

__all__ = ["FragilityService", "ScoredStore", "model_name", "reason", "score_store"]

DEFAULT_SCORES = "fragility"


def model_name(path: Path | None) -> str:
    """How a score set names its model: the file name and the start of its SHA-256."""
    from gnn.model import DEFAULT_MODEL

    ref = resources.files("gnn") / "data" / DEFAULT_MODEL if path is None else path
    return f"{ref.name} sha256:{hashlib.sha256(ref.read_bytes()).hexdigest()[:12]}"


def reason(ex: Explanation, *, features: int = 2) -> str:
    """A one-line reason for a score: the features that push it up most and the neighbour
    that contributes most."""
    up = sorted((f for f in ex.features if f.attribution > 0), key=lambda f: -f.attribution)
    parts = [f"{f.name} = {f.value:.3g}" for f in up[:features]]
    near = [n for n in ex.neighbours if n.id != ex.node_id]
    if near:
        parts.append(f"via {near[0].type} {near[0].id} ({near[0].weight:.0%} of the "
                     f"attribution)")
    return "; ".join(parts) or "no single driver"


@dataclass(frozen=True)
class ScoredStore:
    """What :func:`score_store` wrote: the score set, and the scores by node type."""

    info: ScoreSet
    scores: dict[str, dict[str, float]]
    graph: FeatureGraph

    def ranked(self, top: int) -> list[tuple[str, str, float]]:
        """The ``top`` highest scores as ``(node id, node type, score)``, ties by id."""
        rows = [(k, t, v) for t, by in self.scores.items() for k, v in by.items()]
        return sorted(rows, key=lambda r: (-r[2], r[0]))[:top]


def score_store(store: GraphStore, model: FragilityModel, *, name: str = DEFAULT_SCORES,
                model_path: Path | None = None, device: str = "cpu") -> ScoredStore:
    """Score the store's ecosystem and write the scores into it as the set ``name``."""
    system = store.export_arrays()
    if not len(system.protocol_ids):
        raise ContagionError(f"{store.uri}: the store holds no ecosystem (load a snapshot "
                             f"first)")
    graph = model.graph(system)
    p = model.predict(model.data(graph), device=device)
    scores = {t: dict(zip(graph.ids[t].tolist(), v.tolist(), strict=True)) for t, v in p.items()}
    flat = {k: v for by in scores.values() for k, v in by.items()}
    info = store.write_scores(name, flat, model=model_name(model_path))
    return ScoredStore(info, scores, graph)


class FragilityService:
    """One server's fragility model and the feature graph of its store (see the module
    doc). Thread-safe: resolvers call it from the store thread pool."""

    def __init__(self, store: GraphStore, model_path: Path | None = None) -> None:
        self.store = store
        self.model_path = model_path
        self._model: FragilityModel | None = None
        self._graph: FeatureGraph | None = None
        self._lock = threading.Lock()

    def model(self) -> FragilityModel:
        from gnn.model import load_model

        with self._lock:
            if self._model is None:
                self._model = load_model(self.model_path)
            return self._model

    def invalidate(self) -> None:
        """Forget the feature graph: the store's content changed."""
        with self._lock:
            self._graph = None

    def rescore(self, name: str = DEFAULT_SCORES) -> ScoreSet:
        done = score_store(self.store, self.model(), name=name, model_path=self.model_path)
        with self._lock:
            self._graph = done.graph
        return done.info

    def explain(self, node_id: str, *, top: int = 10) -> Explanation:
        from gnn.explain import explain_node

        model = self.model()
        with self._lock:
            graph = self._graph
        if graph is None:
            graph = model.graph(self.store.export_arrays())
            with self._lock:
                self._graph = graph
        return explain_node(model, graph, node_id, top=top)
