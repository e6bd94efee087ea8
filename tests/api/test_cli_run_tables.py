"""The run tables of the command line: single-path stresses without distribution columns,
protocols with losses absorbed by their reserve, scenario shocks, causal contagion chains."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from api.cli import _failure_table, _paths_table, _risk_table

ROOT = Path(__file__).resolve().parents[2]


def _text(t: Table) -> str:
    con = Console(width=240, record=True)
    con.print(t)
    return con.export_text()


def _loss(mean: float) -> dict[str, Any]:
    tail = {"var": mean, "var_se": 1.0, "cvar": mean, "cvar_se": 1.0}
    return {"mean": mean, "mean_se": 2.0, "p_positive": 1.0, "max": mean,
            "0.95": tail, "0.99": tail}


def _metrics(paths: int) -> dict[str, Any]:
    return {
        "paths": paths,
        "bad_debt_usd": _loss(2_200_000.0),
        "liquidated_usd": _loss(9_000_000.0),
        "liquidated_snapshot_usd": _loss(13_000_000.0),
        "marginal_contribution_usd": {"0.99": {"lend": 2_200_000.0}},
        "failure_probability": {
            "protocol": {"lend": {"p": 0.0, "se": 0.0, "reserve_usd": 3_000_000.0,
                                  "bad_debt_usd": 2_200_000.0, "cross_loss_usd": 0.0,
                                  "max_loss_usd": 2_200_000.0}},
            "asset": {"stETH": {"p": 0.0, "se": 0.0, "p_shock": 1.0}}},
        "contagion_paths": [{
            "path": ["ETH", "lend", "rcpt"], "count": paths, "probability": 1.0,
            "steps": [{"node": "ETH", "kind": "shock", "how": "scenario move"},
                      {"node": "lend", "kind": "protocol", "how": "bad debt on ETH"},
                      {"node": "rcpt", "kind": "asset", "how": "issuer lend under-backed"}]}],
    }


def test_a_single_path_reports_amounts_without_distribution_columns() -> None:
    one = _text(_risk_table(_metrics(1)))
    assert "losses of the stress path" in one
    assert not re.search(r"VaR|CVaR|±|P\(> 0\)", one)
    assert re.search(r"liquidated \(execution prices\)\s+│\s+9,000,000", one)
    assert re.search(r"liquidated \(snapshot prices\)\s+│\s+13,000,000", one)
    many = _text(_risk_table(_metrics(400)))
    assert "VaR 99%" in many and "2,200,000 ± 2" in many


def test_bad_debt_below_the_reserve_says_so_with_both_numbers() -> None:
    """P(failure) 0 with 2.2M of bad debt: the row shows the reserve (3M) and why."""
    text = _text(_failure_table(_metrics(1)))
    assert re.search(r"lend\s+│ protocol │\s+no │\s+3,000,000 │\s+2,200,000 │", text)
    assert "bad debt + cross-deposit loss 2,200,000 ≤ reserve 3,000,000: absorbed" in text
    assert "CVaR" not in text  # one path: no tail share
    assert re.search(r"stETH\s+│ shock\s+│\s+yes │.*scenario input past the threshold, not a "
                     r"failure", text)
    mc = _text(_failure_table(_metrics(400)))
    assert "0.00%" in mc and "at most 2,200,000 ≤ reserve 3,000,000" in mc


def test_contagion_paths_are_chains_of_causes() -> None:
    text = _text(_paths_table(_metrics(1)))
    assert ("ETH (scenario move) → lend (bad debt on ETH) → rcpt (issuer lend under-backed)"
            in text)
    assert "share" not in text
    assert "100.00%" in _text(_paths_table(_metrics(400)))
    # a run saved before causes were recorded: the node ids alone
    old = _metrics(400)
    del old["contagion_paths"][0]["steps"]
    assert "ETH → lend → rcpt" in _text(_paths_table(old))


def test_stress_of_the_sample_ecosystem_prints_causes_and_shocks() -> None:
    """The sample snapshot under eth-35-steth-93: one path, so no VaR; stETH at 0.93 is the
    scenario's input (a shock); every contagion chain starts from a scenario move."""
    r = subprocess.run([sys.executable, "-m", "api.cli", "simulate", "--scenario",
                        "eth-35-steth-93", "--snapshot", "data/sample"], capture_output=True,
                       text=True, timeout=600, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "losses of the stress path" in out and "VaR" not in out and "±" not in out
    assert "liquidated (snapshot prices)" in out
    assert re.search(r"stETH\s+│ shock\s+│\s+yes", out)
    chains = re.findall(r"^ (\S+ \(scenario move\) → .*?)\s*$", out, flags=re.M)
    assert chains and all("(" in c.split(" → ")[-1] for c in chains)
