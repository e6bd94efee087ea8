"""The training set: generated ecosystems labelled by the cascade simulator, cached on disk.

Ecosystem ``i`` of a :class:`DatasetConfig` draws everything from
``numpy.random.SeedSequence([seed, i])``: its generator configuration (size, position sizes,
leverage mixture, share of debt-free positions, utilisation, reserves, liquidity scale,
protocol shares, dealers, cross-holdings switched on or off), the generator seed and the label
seed. The same config therefore always gives the same ecosystems and the same labels.

The cache (``cache_dir/<key>/``, ``key`` a digest of the config and of the code that computes
graphs, features and labels) holds one ``.npz`` per ecosystem and ``manifest.json`` with the
config, each ecosystem's generator configuration and seeds, the code version and a digest of
every label array. A cache written by other code is never read: the key changes with it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from gnn.features import EDGE_TYPES, LABELLED_TYPES, NODE_TYPES, FeatureGraph, build_graph
from gnn.labels import ShockFamily, failure_probabilities
from graph.export import SystemArrays, compile_system
from ingest.generate import GeneratorConfig, ProtocolShares, generate_ecosystem

__all__ = ["DatasetConfig", "Sample", "build_dataset", "code_digest", "default_cache_dir",
           "ecosystem_config", "make_sample"]


class DatasetConfig(BaseModel):
    """How many ecosystems, how big, and how they are labelled."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    count: int = Field(default=400, ge=1, le=100_000)
    seed: int = Field(default=20230901, ge=0)
    min_positions: int = Field(default=150, ge=100)
    max_positions: int = Field(default=2500, ge=100)
    paths: int = Field(default=512, ge=8, le=100_000)
    family: ShockFamily = ShockFamily()

    @model_validator(mode="after")
    def _sizes(self) -> DatasetConfig:
        if self.min_positions > self.max_positions:
            raise ValueError(f"min_positions must be <= max_positions ({self.max_positions}) "
                             f"(got {self.min_positions})")
        return self


@dataclass(frozen=True, eq=False)
class Sample:
    """One labelled ecosystem: its graph and ``labels[t]`` ``[n_t]`` for the labelled types."""

    graph: FeatureGraph
    labels: dict[str, np.ndarray]


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/contagion/gnn`` (``~/.cache/contagion/gnn``)."""
    import os

    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "contagion" / "gnn"


def code_digest() -> str:
    """Digest of the code behind graphs, features and labels: the generator (with its risk
    parameters) and the export (with the schema and vocabulary they read), the cascade, the
    formulas, clearing, scenario models and market pieces it reads, and the feature, label
    and dataset modules."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    files = [*(root / "graph" / f for f in ("export.py", "schema.py", "snapshot.py", "vocab.py")),
             *(root / "ingest" / f for f in ("generate.py", "data/risk_params.csv")),
             *sorted((root / "simulate" / "cascade").glob("*.py")),
             *sorted((root / "simulate" / "formulas").glob("*.py")),
             root / "simulate" / "clearing.py",
             *sorted((root / "simulate" / "market").glob("*.py")),
             root / "simulate" / "scenarios" / "models.py",
             *(root / "gnn" / f for f in ("features.py", "labels.py", "dataset.py"))]
    for f in files:
        h.update(f.relative_to(root).as_posix().encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def ecosystem_config(cfg: DatasetConfig, index: int) -> tuple[int, GeneratorConfig, int, int]:
    """(positions, generator config, generator seed, label seed) of ecosystem ``index``."""
    rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, index]))
    positions = int(np.exp(rng.uniform(np.log(cfg.min_positions), np.log(cfg.max_positions))))
    receipt, lp, deposits = (bool(v) for v in rng.random(3) < 0.8)
    w = rng.dirichlet([5.0, 1.5, 2.0, 1.0, 2.0])
    if not (receipt or lp):
        w[3] = 0.0
    w = w / w.sum()
    deribit = float(w[4])
    shares = ProtocolShares(aave_v3=float(w[0]), compound_v3=float(w[1]), maker=float(w[2]),
                            isolend=float(w[3]),
                            deribit=float(1.0 - w[0] - w[1] - w[2] - w[3]))
    u_lo = float(rng.uniform(0.2, 0.7))
    near = float(rng.uniform(0.0, 0.15))
    gen = GeneratorConfig(
        shares=shares,
        position_usd_sigma=float(rng.uniform(1.5, 2.8)),
        no_debt_share=float(rng.uniform(0.05, 0.4)),
        hf_near_share=near,
        hf_core_median=float(rng.uniform(1.1, 1.7)),
        hf_core_sigma=float(rng.uniform(0.3, 0.8)),
        hf_tail_share=float(rng.uniform(0.1, min(0.4, 1.0 - near))),
        utilisation_min=u_lo,
        utilisation_max=float(rng.uniform(u_lo + 0.05, 0.95)),
        reserve_ratio=float(rng.uniform(0.005, 0.08)),
        liquidity_scale=positions / 1e6 * float(np.exp(rng.normal(0.0, 1.0))),
        dealers=int(rng.integers(0, 9)) if deribit > 0 else 0,
        receipt_collateral=receipt, lp_collateral=lp, protocol_deposits=deposits,
    )
    gen_seed, label_seed = (int(v) for v in rng.integers(0, 2**31 - 1, size=2))
    return positions, gen, gen_seed, label_seed


def make_sample(system: SystemArrays, family: ShockFamily, paths: int, label_seed: int
                ) -> Sample:
    """Graph and labels of one ecosystem."""
    graph = build_graph(system, family.volatility(system))
    return Sample(graph, failure_probabilities(system, family, paths, label_seed))


def _key(cfg: DatasetConfig) -> str:
    doc = json.dumps({"config": cfg.model_dump(mode="json"), "code": code_digest()},
                     sort_keys=True)
    return hashlib.sha256(doc.encode()).hexdigest()[:16]


def _save(path: Path, s: Sample) -> None:
    arrays: dict[str, np.ndarray] = {}
    for t in NODE_TYPES:
        arrays[f"x.{t}"] = s.graph.x[t]
        arrays[f"ids.{t}"] = s.graph.ids[t].astype(str)
    for et in EDGE_TYPES:
        arrays["e." + "|".join(et)] = s.graph.edges[et]
        arrays["w." + "|".join(et)] = s.graph.usd[et]
    for t in LABELLED_TYPES:
        arrays[f"y.{t}"] = s.labels[t]
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **arrays)  # type: ignore[arg-type]
    tmp.replace(path)


def _load(path: Path) -> Sample:
    with np.load(path) as z:
        x = {t: z[f"x.{t}"] for t in NODE_TYPES}
        ids = {t: z[f"ids.{t}"] for t in NODE_TYPES}
        edges = {et: z["e." + "|".join(et)] for et in EDGE_TYPES}
        usd = {et: z["w." + "|".join(et)] for et in EDGE_TYPES}
        y = {t: z[f"y.{t}"] for t in LABELLED_TYPES}
    return Sample(FeatureGraph(x, ids, edges, usd), y)


def _digest(labels: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for t in LABELLED_TYPES:
        h.update(np.ascontiguousarray(labels[t], dtype=np.float64).tobytes())
    return h.hexdigest()[:16]


def build_dataset(cfg: DatasetConfig, *, cache_dir: Path | None = None,
                  progress: Callable[[int, int], None] | None = None) -> list[Sample]:
    """The ``cfg.count`` labelled ecosystems of ``cfg``, read from ``cache_dir`` where cached
    (``None``: no cache). ``progress(done, total)`` is called per ecosystem."""
    folder = None if cache_dir is None else Path(cache_dir) / _key(cfg)
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
    out: list[Sample] = []
    entries = []
    for i in range(cfg.count):
        positions, gen, gen_seed, label_seed = ecosystem_config(cfg, i)
        f = None if folder is None else folder / f"eco-{i:05d}.npz"
        if f is not None and f.exists():
            s = _load(f)
        else:
            system = compile_system(generate_ecosystem(positions, gen_seed, gen))
            s = make_sample(system, cfg.family, cfg.paths, label_seed)
            if f is not None:
                _save(f, s)
        out.append(s)
        entries.append({"index": i, "positions": positions, "generator_seed": gen_seed,
                        "label_seed": label_seed, "generator": gen.model_dump(mode="json"),
                        "labels_sha256": _digest(s.labels)})
        if progress is not None:
            progress(i + 1, cfg.count)
    if folder is not None:
        manifest = {"config": cfg.model_dump(mode="json"), "code": code_digest(),
                    "ecosystems": entries}
        (folder / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return out
