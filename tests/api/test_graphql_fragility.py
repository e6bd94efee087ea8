"""The fragility domain over real HTTP, on both stores: rescore (admin only) writes the model's
scores into the served store, fragility ranks them exactly as the model scores in-process,
explain returns the model's explanation, and the errors say what is wrong."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from apiserver import ApiServer, serve_backend

from api.keys import KeyStore
from api.settings import ApiSettings
from gnn.dataset import DatasetConfig, build_dataset
from gnn.explain import explain_node
from gnn.model import FragilityModel, NetConfig
from gnn.train import TrainConfig, fit
from graph.export import compile_system
from graph.snapshot import Snapshot
from ingest.generate import generate_ecosystem

SMALL = TrainConfig(
    data=DatasetConfig(count=4, seed=31, min_positions=120, max_positions=200, paths=16),
    eval_data=DatasetConfig(count=1, seed=32, min_positions=120, max_positions=200, paths=16),
    net=NetConfig(hidden=8, layers=3), epochs=3, batch_graphs=2, pairs=64, seed=5,
    evaluate=False)

RANK = "{ fragility(top: 7) { nodeId nodeType score node { __typename id } } }"
EXPLAIN = ("query($id: ID!) { explain(nodeId: $id, top: 4) { nodeId nodeType score method "
           "summary neighbours { nodeId nodeType hops weight contribution } "
           "features { name value attribution } } }")


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[FragilityModel, Path]:
    model = fit(build_dataset(SMALL.data), SMALL)
    return model, model.save(tmp_path_factory.mktemp("model") / "small.pt")


@pytest.fixture(scope="module")
def snapshot() -> Snapshot:
    return generate_ecosystem(300, 4)


@pytest.fixture(scope="module", params=["memory", "neo4j"])
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
        key_file: tuple[KeyStore, dict[str, str]], model_file: tuple[FragilityModel, Path],
        snapshot: Snapshot) -> Iterator[ApiServer]:
    yield from serve_backend(request, tmp_path_factory, key_file, snapshot,
                             ApiSettings(model_path=model_file[1]))


def test_rescore_needs_admin_and_fragility_ranks_as_the_model(
        api: ApiServer, model_file: tuple[FragilityModel, Path], snapshot: Snapshot) -> None:
    model = model_file[0]
    for role in ("viewer", "analyst"):
        msg, code = api.gql("mutation { rescore { count } }", role=role).error
        assert code == "FORBIDDEN" and "needs the admin role" in msg
    # before any scores: a clear answer naming what the store has
    assert api.gql(RANK).error == ("no scores named 'fragility' (the store has: none)",
                                   "NOT_FOUND")
    done = api.gql("mutation { rescore { name model count written } }", role="admin").data
    system = compile_system(snapshot)
    expected = model.score(system)
    n = sum(len(v) for v in expected.values())
    assert done["rescore"]["name"] == "fragility"
    assert done["rescore"]["count"] == n
    assert done["rescore"]["model"].startswith("small.pt sha256:")
    ranked = sorted(((v, k, t) for t, by in expected.items() for k, v in by.items()),
                    key=lambda r: (-r[0], r[1]))
    got = api.gql(RANK).data["fragility"]
    assert [(r["nodeId"], r["nodeType"].lower()) for r in got] == [(k, t) for _, k, t in
                                                                  ranked[:7]]
    for r, (v, _, _) in zip(got, ranked, strict=False):
        assert r["score"] == pytest.approx(v, rel=1e-12)
        assert r["node"]["id"] == r["nodeId"]
    pools = api.gql("{ fragility(top: 100, nodeType: POOL) { nodeId score } }").data
    assert {r["nodeId"] for r in pools["fragility"]} == set(expected["pool"])
    sets = api.gql("{ scoreSets { name count } }").data["scoreSets"]
    assert sets == [{"name": "fragility", "count": n}]


def test_explain_is_the_models_explanation(api: ApiServer,
                                           model_file: tuple[FragilityModel, Path],
                                           snapshot: Snapshot) -> None:
    model = model_file[0]
    api.gql("mutation { rescore { count } }", role="admin")
    top = api.gql(RANK).data["fragility"][0]
    ex = api.gql(EXPLAIN, {"id": top["nodeId"]}).data["explain"]
    want = explain_node(model, compile_system(snapshot), top["nodeId"], top=4)
    assert ex["nodeId"] == top["nodeId"] and ex["nodeType"] == want.node_type
    assert ex["score"] == pytest.approx(top["score"], rel=1e-9)
    assert [n["nodeId"] for n in ex["neighbours"]] == [n.id for n in want.neighbours]
    assert [f["name"] for f in ex["features"]] == [f.name for f in want.features]
    assert len(ex["features"]) == 4 and len(ex["neighbours"]) <= 4
    assert all(0 <= n["weight"] <= 1 for n in ex["neighbours"])
    assert ex["summary"] == want.summary()


def test_fragility_errors(api: ApiServer) -> None:
    api.gql("mutation { rescore { count } }", role="admin")
    assert api.gql("{ fragility(top: 0) { score } }").error == (
        "'top' must be between 1 and 100 (got 0)", "BAD_USER_INPUT")
    assert api.gql('{ fragility(scores: "other") { score } }').error == (
        "no scores named 'other' (the store has: fragility)", "NOT_FOUND")
    msg, code = api.gql(EXPLAIN, {"id": "nope"}).error
    assert code == "NOT_FOUND" and "'nope'" in msg
    msg, code = api.gql(EXPLAIN, {"id": "oracle:ETH"}).error
    assert code == "BAD_USER_INPUT"
    assert msg.startswith("'oracle:ETH' is a oracle: only protocol, pool, asset, account")
    msg, code = api.gql('mutation { rescore(scores: "Bad-Name") { count } }',
                        role="admin").error
    assert code == "BAD_USER_INPUT" and "Bad-Name" in msg
