"""Export of an ecosystem to the fragility graph: shapes, ranges, edges, normalisation."""

from __future__ import annotations

import numpy as np
import pytest

from gnn.features import (
    DROP_BINS,
    EDGE_TYPES,
    FEATURE_NAMES,
    NODE_TYPES,
    Normalizer,
    build_graph,
    feature_spec,
)
from gnn.labels import ShockFamily
from graph.export import compile_system
from ingest.generate import GeneratorConfig, generate_ecosystem


@pytest.fixture(scope="module")
def system():  # type: ignore[no-untyped-def]
    return compile_system(generate_ecosystem(400, seed=5,
                                             config=GeneratorConfig(liquidity_scale=4e-4)))


def test_shapes_ids_and_edges(system) -> None:  # type: ignore[no-untyped-def]
    g = build_graph(system, ShockFamily().volatility(system))
    counts = {"protocol": len(system.protocol_ids), "pool": len(system.pool_ids),
              "asset": len(system.asset_ids), "oracle": len(system.oracle_ids),
              "account": len(system.account_ids)}
    for t in NODE_TYPES:
        assert g.x[t].shape == (counts[t], len(FEATURE_NAMES[t]))
        assert g.x[t].dtype == np.float32
        assert list(g.ids[t]) == [str(i) for i in getattr(system, f"{t}_ids")]
    assert set(g.edges) == set(EDGE_TYPES)
    for (s, r, d), ei in g.edges.items():
        assert ei.shape[0] == 2 and ei.dtype == np.int64
        assert g.usd[s, r, d].shape == (ei.shape[1],)
        if ei.shape[1]:
            assert ei[0].min() >= 0 and ei[0].max() < counts[s], (s, r, d)
            assert ei[1].min() >= 0 and ei[1].max() < counts[d], (s, r, d)
            assert (g.usd[s, r, d] >= 0).all()
    # every account reaches a pool; every pool has its protocol; positions are folded in
    assert len(np.unique(g.edges["account", "borrows_in", "pool"][0])) == counts["account"]
    assert g.edges["protocol", "operates", "pool"].shape[1] == counts["pool"]
    assert (g.edges["pool", "rev_operates", "protocol"]
            == g.edges["protocol", "operates", "pool"][::-1]).all()
    data = g.to_hetero()
    data.validate()
    assert data["account"].x.shape == (counts["account"], len(FEATURE_NAMES["account"]))


def test_feature_ranges(system) -> None:  # type: ignore[no-untyped-def]
    g = build_graph(system, ShockFamily().volatility(system))
    bins = len(DROP_BINS) - 1
    for t in NODE_TYPES:
        x = g.x[t]
        names = FEATURE_NAMES[t]
        assert np.isfinite(x).all(), t
        kinds = [i for i, n in enumerate(names) if n.startswith("kind=")]
        assert (x[:, kinds].sum(axis=1) == 1).all(), t  # one kind per node
        for i, n in enumerate(names):
            if n.startswith(("log_h_",)):
                assert (x[:, i] <= 3.0).all(), n
            elif n.startswith("log_"):
                assert (x[:, i] >= 0).all(), (t, n)
            if n in ("utilisation", "debt_hhi", "top_position_share", "collateral_asset_hhi",
                     "max_pool_debt_share", "has_issuer", "pegged", "reads_pool"):
                assert ((x[:, i] >= 0) & (x[:, i] <= 1 + 1e-6)).all(), (t, n)
        hist = [i for i, n in enumerate(names) if n.startswith("drop_")]
        if hist:
            assert len(hist) == bins
            sums = x[:, hist].sum(axis=1)
            assert np.allclose(sums[sums > 0], 1.0, atol=1e-5), t
    # the account with the lowest health has a liquidation drop in the first bins
    acc = g.x["account"]
    hmin = FEATURE_NAMES["account"].index("log_h_min")
    worst = int(np.argmin(acc[:, hmin]))
    assert acc[worst, FEATURE_NAMES["account"].index("log_debt_usd")] > 0
    # the volatility forecast: ETH moves, USDC (almost) does not
    vol = g.x["asset"][:, FEATURE_NAMES["asset"].index("volatility")]
    sym = list(system.asset_symbols)
    assert vol[sym.index("ETH")] > 0.05
    assert vol[sym.index("USDC")] < vol[sym.index("ETH")] / 3


def test_normaliser_fits_and_clips(system) -> None:  # type: ignore[no-untyped-def]
    g = build_graph(system, ShockFamily().volatility(system))
    norm = Normalizer.fit([g])
    for t in NODE_TYPES:
        z = norm.apply(t, g.x[t])
        assert np.isfinite(z).all() and (np.abs(z) <= norm.clip).all()
        if len(z) > 1:
            varying = g.x[t].std(axis=0) > 1e-6
            assert np.allclose(z.mean(axis=0)[varying], 0.0, atol=0.2), t
    back = Normalizer.from_state(norm.state())
    for t in NODE_TYPES:
        assert np.array_equal(back.apply(t, g.x[t]), norm.apply(t, g.x[t]))


def test_feature_spec_lists_every_type() -> None:
    spec = feature_spec()
    assert list(spec) == list(NODE_TYPES)
    assert all(len(set(v)) == len(v) for v in spec.values())


def test_volatility_must_match_assets(system) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=r"volatility must be \[num_assets\]"):
        build_graph(system, np.zeros(3))
