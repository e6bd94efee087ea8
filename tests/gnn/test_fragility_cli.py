"""``contagion train`` / ``score`` / ``explain`` as real processes on a memory store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from graph.store import MemoryStore
from ingest.generate import GeneratorConfig, generate_ecosystem

ROOT = Path(__file__).resolve().parents[2]
TINY_CONFIG = {
    "data": {"count": 4, "seed": 1, "min_positions": 100, "max_positions": 200, "paths": 16},
    "eval_data": {"count": 2, "seed": 2, "min_positions": 100, "max_positions": 200,
                  "paths": 16},
    "net": {"hidden": 8, "layers": 3},
    "epochs": 2,
}


def contagion(*args: str) -> subprocess.CompletedProcess[str]:
    # one OpenMP thread: the GBDT baseline's threads spin badly on a busy two-core machine
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "api.cli", *args], capture_output=True,
                          text=True, timeout=600, cwd=ROOT, env=env)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("train")
    (d / "tiny.yaml").write_text(yaml.safe_dump(TINY_CONFIG))
    r = contagion("train", "--config", str(d / "tiny.yaml"), "--out", str(d / "m.pt"),
                  "--no-cache")
    assert r.returncode == 0, r.stderr
    for method in ("gnn", "debtrank", "pagerank", "gbdt"):
        assert f" {method} " in r.stdout, r.stdout
    assert "model written to" in r.stdout
    return d / "m.pt"


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("store") / "eco.zip"
    MemoryStore(p).write_snapshot(generate_ecosystem(
        300, seed=8, config=GeneratorConfig(liquidity_scale=3e-4)))
    return p


def test_score_writes_scores_into_the_store(trained: Path, store_path: Path) -> None:
    r = contagion("score", "--store", f"memory:{store_path}", "--model", str(trained),
                  "--top", "5", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["name"] == "fragility" and len(doc["top"]) == 5
    assert doc["model"].startswith("m.pt sha256:")
    store = MemoryStore(store_path)
    system = store.export_arrays()
    n = (len(system.protocol_ids) + len(system.pool_ids) + len(system.asset_ids)
         + len(system.account_ids))
    scores = store.scores("fragility")
    assert doc["nodes"] == n == len(scores)
    assert all(0.0 <= v <= 1.0 for v in scores.values())
    top = doc["top"][0]
    assert scores[top["id"]] == pytest.approx(top["score"])
    assert max(scores.values()) == pytest.approx(top["score"])
    assert set(store.scores("fragility", label="Account")) == set(system.account_ids)
    assert store.node(top["id"]).properties["score_fragility"] == pytest.approx(top["score"])


def test_explain_prints_data_and_summary(trained: Path, store_path: Path) -> None:
    r = contagion("explain", "aave-v3:main", "--store", f"memory:{store_path}", "--model",
                  str(trained), "--top", "3", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["node_id"] == "aave-v3:main" and doc["node_type"] == "pool"
    assert len(doc["neighbours"]) == 3 and len(doc["features"]) == 3
    assert 0.0 <= doc["score"] <= 1.0


def test_errors_are_one_line(trained: Path, store_path: Path, tmp_path: Path) -> None:
    r = contagion("explain", "nobody", "--store", f"memory:{store_path}", "--model",
                  str(trained))
    assert r.returncode == 1
    assert r.stderr.strip().endswith("error: no node with id 'nobody' in the ecosystem")
    assert "Traceback" not in r.stderr
    (tmp_path / "bad.yaml").write_text("epochs: 0\n")
    r = contagion("train", "--config", str(tmp_path / "bad.yaml"), "--no-cache")
    assert r.returncode == 1
    assert "bad.yaml: epochs: input should be greater than or equal to 1" in r.stderr
    r = contagion("score", "--store", f"memory:{tmp_path / 'empty.zip'}", "--model",
                  str(tmp_path / "x.pt"))
    assert r.returncode == 1 and "not a readable fragility model" in r.stderr
