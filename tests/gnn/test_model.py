"""The fragility model: training ranks fragile nodes first, save -> load, the shipped model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import TINY

from gnn.dataset import Sample
from gnn.features import LABELLED_TYPES, feature_spec
from gnn.model import FragilityModel, ModelError, load_model
from gnn.train import TrainConfig, fit
from graph.export import compile_system, health_factors
from graph.snapshot import Snapshot
from ingest.generate import GeneratorConfig, generate_ecosystem


def _with_two_borrowers() -> Snapshot:
    """A generated ecosystem plus two hand-built Aave accounts with the same 10 WETH of
    collateral: ``fragile`` borrowed USDC up to a health factor of 1.01, ``safe`` borrowed
    1,000 USDC (health factor about 13.6)."""
    snap = generate_ecosystem(250, seed=21, config=GeneratorConfig(liquidity_scale=2.5e-4))
    t = {k: v.copy() for k, v in snap.tables.items()}
    lt = t["pool_collateral"].set_index(["pool", "asset"]).loc[("aave-v3:main", "WETH"),
                                                               "liquidation_threshold"]
    price = t["assets"].set_index("id").loc["WETH", "price"]
    coll = 10.0
    fragile_debt = coll * price * lt / 1.01
    t["accounts"] = pd.concat([t["accounts"], pd.DataFrame(
        {"id": ["hand:fragile", "hand:safe"], "kind": ["user", "user"]})], ignore_index=True)
    t["positions"] = pd.concat([t["positions"], pd.DataFrame(
        {"id": ["hand:pos:fragile", "hand:pos:safe"], "account": ["hand:fragile", "hand:safe"],
         "pool": ["aave-v3:main", "aave-v3:main"]})], ignore_index=True)
    t["position_collateral"] = pd.concat([t["position_collateral"], pd.DataFrame(
        {"position": ["hand:pos:fragile", "hand:pos:safe"], "asset": ["WETH", "WETH"],
         "amount": [coll, coll]})], ignore_index=True)
    t["position_debt"] = pd.concat([t["position_debt"], pd.DataFrame(
        {"position": ["hand:pos:fragile", "hand:pos:safe"], "asset": ["USDC", "USDC"],
         "amount": [fragile_debt, 1000.0]})], ignore_index=True)
    return Snapshot.from_tables(t, snap.manifest)


def test_tiny_model_ranks_a_fragile_account_above_a_safe_one(tiny_model: FragilityModel
                                                            ) -> None:
    system = compile_system(_with_two_borrowers())
    hf = dict(zip(system.position_ids, health_factors(system), strict=True))
    assert hf["hand:pos:fragile"] == pytest.approx(1.01)
    assert hf["hand:pos:safe"] > 10
    scores = tiny_model.score(system)["account"]
    assert scores["hand:fragile"] > scores["hand:safe"] + 0.2
    ranked = sorted(scores, key=lambda k: -scores[k])
    assert ranked.index("hand:fragile") < len(ranked) // 4
    assert ranked.index("hand:safe") > len(ranked) // 2


def test_tiny_model_ranks_held_out_nodes(tiny_model: FragilityModel, tiny_set: list[Sample]
                                         ) -> None:
    from scipy.stats import spearmanr

    from gnn.dataset import build_dataset

    held = build_dataset(TINY.eval_data)
    rhos = []
    for s in held:
        p = tiny_model.predict(tiny_model.data(s.graph))
        y = np.concatenate([s.labels[t] for t in LABELLED_TYPES])
        q = np.concatenate([p[t] for t in LABELLED_TYPES])
        rhos.append(spearmanr(y, q).statistic)
    assert np.mean(rhos) > 0.6


def test_save_then_load_gives_identical_scores(tiny_model: FragilityModel,
                                               tiny_set: list[Sample], tmp_path: Path) -> None:
    tiny_model.metrics = {"note": "test"}
    path = tiny_model.save(tmp_path / "m.pt")
    back = load_model(path)
    assert back.features == feature_spec()
    assert back.metrics == {"note": "test"}
    assert back.config == tiny_model.config
    for s in tiny_set[:3]:
        a = tiny_model.predict(tiny_model.data(s.graph))
        b = back.predict(back.data(s.graph))
        for t in LABELLED_TYPES:
            assert np.array_equal(a[t], b[t]), t
    # the file holds only plain tensors and strings
    doc = torch.load(path, weights_only=True)
    assert set(doc) == {"format", "state_dict", "normalizer", "json"}


def test_load_rejects_a_model_of_other_features(tiny_model: FragilityModel, tmp_path: Path
                                                ) -> None:
    tiny_model.features = {**feature_spec(), "pool": ["something_else"]}
    try:
        path = tiny_model.save(tmp_path / "stale.pt")
    finally:
        tiny_model.features = feature_spec()
    with pytest.raises(ModelError, match=r"features differ .* node types \['pool'\]"):
        load_model(path)
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(ModelError, match="not a readable fragility model"):
        load_model(tmp_path / "junk.pt")


def test_shipped_default_model_loads_and_matches_the_feature_code() -> None:
    model = load_model()  # checks the feature spec against the current code
    assert model.features == feature_spec()
    assert model.net.cfg.layers >= 3
    m = model.metrics["methods"]
    assert set(m) == {"gnn", "debtrank", "pagerank", "gbdt"}
    assert model.metrics["ecosystems"] >= 50
    system = compile_system(_with_two_borrowers())
    scores = model.score(system)["account"]
    assert scores["hand:fragile"] > scores["hand:safe"]
    assert TrainConfig.model_validate(model.config) == TrainConfig()


def test_training_is_reproducible(tiny_set: list[Sample]) -> None:
    cfg = TINY.model_copy(update={"epochs": 2})
    a, b = fit(tiny_set[:3], cfg), fit(tiny_set[:3], cfg)
    for k, v in a.net.state_dict().items():
        assert torch.equal(v, b.net.state_dict()[k]), k
