"""The run report: its files, that the HTML is self-contained and carries the run's own
figures, and the fan-chart quantiles by hand."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import MARKET_DATA

from api.report import FAN_QUANTILES, FragileNode, fan_quantiles, write_report
from graph.export import compile_system
from graph.store import open_store
from graph.store.base import Subgraph
from ingest.generate import generate_ecosystem
from simulate.cascade.run import RunResult, run_cascade
from simulate.market.shocks import fit_market_model
from simulate.prices import read_closes
from simulate.scenarios import load_scenario

DATA = MARKET_DATA / "prices_daily"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunResult, RunResult, Subgraph,
                                                            dict[str, str]]:
    snap = generate_ecosystem(3000, 5)
    system = compile_system(snap)
    closes = pd.concat({a: read_closes(DATA / f, a).series for a, f in (
        ("BTC", "btc-usd-max_erickfm.csv"), ("ETH", "eth-usd-max_erickfm.csv"))}, axis=1)
    market = fit_market_model(closes.dropna().iloc[-1460:])
    mc = run_cascade(system, load_scenario("gjr-fhs-10d"), market=market, paths=400, seed=3,
                     snapshot=snap.manifest.model_dump(mode="json"))
    stress = run_cascade(system, load_scenario("eth-35-steth-93"))
    with open_store(f"memory:{tmp_path_factory.mktemp('store') / 's.zip'}",
                    create=True) as store:
        store.write_snapshot(snap)
        sub = store.dependencies("aave-v3", 3)
    symbols = dict(zip(system.asset_ids, system.asset_symbols, strict=True))
    return mc, stress, sub, symbols


def test_report_is_self_contained_and_carries_the_run_figures(
        tmp_path: Path, runs: tuple[RunResult, RunResult, Subgraph, dict[str, str]]) -> None:
    mc, stress, sub, symbols = runs
    ranking = [FragileNode("aave-v3", "protocol", 0.8, "thin ETH liquidity"),
               FragileNode("lido", "protocol", 0.1)]
    rep = write_report(tmp_path, mc, stress=stress, ranking=ranking, graph=sub,
                       asset_symbols=symbols)
    assert set(rep.images) == {"loss_distribution", "liquidations_by_round", "price_fan",
                               "fragility_ranking", "dependency_graph"}
    page = rep.html.read_text("utf-8")
    embedded = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(embedded) == 5
    # each PNG file is the very image embedded in the page
    files = {p.read_bytes() for p in rep.images.values()}
    assert {base64.b64decode(e) for e in embedded} == files
    assert all(f.startswith(PNG_MAGIC) for f in files)
    # nothing to fetch: no external references of any kind
    assert not re.search(r'(src|href)="(?!data:)', page)
    # the tables hold the run's own numbers
    for run in (mc, stress):
        for level in ("0.95", "0.99"):
            r = run.metrics["bad_debt_usd"][level]
            assert f"<td>${r['var']:,.0f}</td>" in page
            assert f"<td>${r['cvar']:,.0f}</td>" in page
    assert "<td>aave-v3</td><td>protocol</td><td>0.800</td><td>thin ETH liquidity</td>" in page
    assert f"{mc.spec.paths:,} paths, seed 3" in page


def test_report_without_ranking_or_graph(tmp_path: Path, runs: tuple[RunResult, RunResult,
                                                                      Subgraph, dict[str, str]]
                                         ) -> None:
    rep = write_report(tmp_path / "out", runs[1])
    assert set(rep.images) == {"loss_distribution", "liquidations_by_round", "price_fan"}
    assert "Fragility" not in rep.html.read_text("utf-8")


def test_fan_quantiles_by_hand() -> None:
    # five paths, two rounds + start, one asset: quantiles of 1..5 scaled per round
    base = np.arange(1.0, 6.0)
    price_rel = np.stack([base, base * 2, base * 3], axis=1)[:, :, None].astype(np.float32)
    q = fan_quantiles(price_rel, 0)
    assert q.shape == (len(FAN_QUANTILES), 3)
    # linear interpolation between order statistics 1..5: q -> 1 + 4q
    expected = np.array([[1 + 4 * p, 2 * (1 + 4 * p), 3 * (1 + 4 * p)] for p in FAN_QUANTILES])
    np.testing.assert_allclose(q, expected)
