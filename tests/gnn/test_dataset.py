"""The labelled dataset: exact regeneration from its seeds, the cache and its manifest."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from gnn.dataset import DatasetConfig, build_dataset, ecosystem_config
from gnn.features import EDGE_TYPES, LABELLED_TYPES, NODE_TYPES
from gnn.labels import ShockFamily, draw_shocks, failure_probabilities
from graph.export import compile_system
from ingest.generate import generate_ecosystem

CFG = DatasetConfig(count=2, seed=5, min_positions=100, max_positions=200, paths=16)


def test_regenerating_gives_identical_labels_and_features(tmp_path: Path) -> None:
    a = build_dataset(CFG)
    b = build_dataset(CFG, cache_dir=tmp_path)  # computed afresh, then cached
    c = build_dataset(CFG, cache_dir=tmp_path)  # read from the cache
    for x, y, z in zip(a, b, c, strict=True):
        for t in LABELLED_TYPES:
            assert np.array_equal(x.labels[t], y.labels[t])
            assert np.array_equal(x.labels[t], z.labels[t])
        for t in NODE_TYPES:
            assert np.array_equal(x.graph.x[t], z.graph.x[t])
            assert list(x.graph.ids[t]) == list(z.graph.ids[t])
        for et in EDGE_TYPES:
            assert np.array_equal(x.graph.edges[et], z.graph.edges[et])
            assert np.array_equal(x.graph.usd[et], z.graph.usd[et])
    (folder,) = list(tmp_path.iterdir())
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["config"] == CFG.model_dump(mode="json")
    assert [e["index"] for e in manifest["ecosystems"]] == [0, 1]
    positions, gen, gen_seed, label_seed = ecosystem_config(CFG, 1)
    e1 = manifest["ecosystems"][1]
    assert (e1["positions"], e1["generator_seed"], e1["label_seed"]) == (
        positions, gen_seed, label_seed)
    # the manifest alone regenerates the labels
    system = compile_system(generate_ecosystem(positions, gen_seed, gen))
    y = failure_probabilities(system, CFG.family, CFG.paths, label_seed)
    for t in LABELLED_TYPES:
        assert np.array_equal(y[t], a[1].labels[t])


def test_ecosystems_vary_and_labels_are_probabilities() -> None:
    s = build_dataset(CFG)
    cfgs = [ecosystem_config(CFG, i) for i in range(2)]
    assert cfgs[0][1] != cfgs[1][1]
    for x in s:
        for t in LABELLED_TYPES:
            v = x.labels[t]
            assert v.shape == (len(x.graph.ids[t]),)
            assert ((v >= 0) & (v <= 1)).all()
            assert np.allclose(v * CFG.paths, np.round(v * CFG.paths))  # shares of 16 paths
        assert x.labels["account"].max() > 0


def test_shock_family_draws_are_seeded_and_bounded() -> None:
    system = compile_system(generate_ecosystem(150, seed=1))
    fam = ShockFamily()
    a, b = draw_shocks(system, fam, 64, 9), draw_shocks(system, fam, 64, 9)
    assert np.array_equal(a.price, b.price)
    assert not np.array_equal(a.price, draw_shocks(system, fam, 64, 10).price)
    eth = list(system.asset_symbols).index("ETH")
    drop = 1.0 - a.price[:, 0, eth]
    assert ((drop > 0) & (drop < fam.max_drop)).all()
    usdt = list(system.asset_symbols).index("USDT")
    assert (a.price[:, 0, usdt] <= 1.0).all()


def test_config_checks_sizes() -> None:
    with pytest.raises(ValueError, match="min_positions must be <= max_positions"):
        DatasetConfig(min_positions=500, max_positions=200)
