"""The command line, run as a real process: exit codes, output and error lines."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import NEO4J_URI
from helpers import MARKET_DATA, tiny_snapshot

from graph.snapshot import Snapshot
from graph.store import open_store


def contagion(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "api.cli", *args], capture_output=True,
                          text=True, timeout=600, cwd=Path(__file__).resolve().parents[2])


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gen") / "snap"
    r = contagion("generate", "--positions", "500", "--seed", "3", "--out", str(out))
    assert r.returncode == 0, r.stderr
    return out


def test_generate_is_deterministic(generated: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    assert contagion("generate", "--positions", "500", "--seed", "3", "--out",
                     str(again)).returncode == 0
    for f in sorted(generated.iterdir()):
        assert f.read_bytes() == (again / f.name).read_bytes(), f.name
    other = tmp_path / "other"
    contagion("generate", "--positions", "500", "--seed", "4", "--out", str(other))
    assert (other / "positions.parquet").read_bytes() != (generated / "positions.parquet"
                                                          ).read_bytes()


def test_validate_accepts_a_good_snapshot(generated: Path) -> None:
    r = contagion("validate", str(generated))
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"valid: {generated}")
    assert "positions 500" in r.stdout


def test_validate_lists_problems_without_traceback(tmp_path: Path) -> None:
    snap = tiny_snapshot()
    d = snap.save(tmp_path / "bad")
    t = snap["pool_collateral"].copy()
    t.loc[t["asset"] == "ETH", "liquidation_threshold"] = 1.3
    t.to_parquet(d / "pool_collateral.parquet", index=False)
    r = contagion("validate", str(d))
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    assert ("'liquidation_threshold' must be in (0, 1] (got 1.3) for pool_collateral "
            "aave:main/ETH") in r.stderr


def test_errors_are_one_line(tmp_path: Path) -> None:
    r = contagion("validate", str(tmp_path / "missing"))
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'missing'}: not a snapshot directory (no manifest.json)"]
    r = contagion("stats", "--store", "sqlite:x")
    assert r.returncode == 1
    assert r.stderr.strip() == ("error: store URI must be memory:PATH or bolt://HOST:PORT / "
                                "neo4j://HOST:PORT (got 'sqlite:x')")
    r = contagion("stats", "--store", "bolt://127.0.0.1:1")
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1
    assert r.stderr.startswith("error: cannot reach Neo4j at bolt://127.0.0.1:1")


@pytest.mark.parametrize("args", [
    ["stats"],
    ["explain", "aave-v3:main"],
    ["score", "--name", "x"],
    ["simulate", "--scenario", "eth-35-steth-93"],
])
def test_a_missing_store_file_is_an_error_for_readers(tmp_path: Path, args: list[str]) -> None:
    path = tmp_path / "typo.zip"
    r = contagion(*args, "--store", f"memory:{path}")
    assert r.returncode == 1, r.stdout
    assert r.stderr.strip().splitlines()[-1] == (
        f"error: store file memory:{path} does not exist (`contagion load` or `contagion "
        "ingest` creates it)")
    assert not path.exists()


@pytest.mark.parametrize(("args", "line"), [
    (["stats", "--store", "memory:", "--bogus"],
     "error: no such option: --bogus (see contagion stats --help)"),
    (["stats"], "error: missing option '--store' (see contagion stats --help)"),
    (["validate"], "error: missing argument 'path' (see contagion validate --help)"),
    (["stats", "--store"],
     "error: option '--store' requires an argument (see contagion stats --help)"),
    (["ingest", "chain", "--store", "memory:", "--config"],
     "error: option '--config' requires an argument (see contagion ingest chain --help)"),
    (["generate", "--positions", "many", "--seed", "1", "--out", "x"],
     r"error: invalid value for '--positions': .*\binteger\b.* \(see contagion generate "
     r"--help\)"),
    (["frobnicate"], "error: no such command 'frobnicate' (see contagion --help)"),
    (["apikey", "frobnicate"], "error: no such command 'frobnicate' (see contagion apikey "
                               "--help)"),
])
def test_usage_errors_are_one_line(args: list[str], line: str) -> None:
    r = contagion(*args)
    assert r.returncode == 2
    assert r.stdout == ""
    (got,) = r.stderr.strip().splitlines()
    assert got == line or re.fullmatch(line, got), got


def test_help_still_works() -> None:
    for args in (["--help"], ["stats", "--help"], ["ingest", "chain", "--help"]):
        r = contagion(*args)
        assert r.returncode == 0, r.stderr
        assert "Usage: contagion" in r.stdout and r.stderr == ""


def _stats(store: str) -> dict[str, dict[str, int]]:
    r = contagion("stats", "--store", store, "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.mark.parametrize("backend", ["memory", "neo4j"])
def test_load_then_stats_and_reload_is_idempotent(generated: Path, tmp_path: Path,
                                                  backend: str,
                                                  request: pytest.FixtureRequest) -> None:
    if backend == "neo4j":
        request.getfixturevalue("neo4j_store").clear()
    store = f"memory:{tmp_path / 'store.zip'}" if backend == "memory" else NEO4J_URI
    snap = Snapshot.load(generated)
    r = contagion("load", str(generated), "--store", store)
    assert r.returncode == 0, r.stderr
    stats = _stats(store)
    assert stats["labels"]["Position"] == 500
    assert stats["labels"]["Account"] == snap.num_rows("accounts")
    assert stats["relationships"]["COLLATERAL"] == snap.num_rows("position_collateral")
    assert stats["relationships"]["OWNS"] == 500
    again = contagion("load", str(generated), "--store", store)
    assert again.returncode == 0
    assert _stats(store) == stats
    # the summary table of the second load shows nothing added, updated or removed
    position_row = next(x for x in again.stdout.splitlines() if x.strip().startswith("Position"))
    assert position_row.replace("│", " ").split()[1:] == ["0", "0", "0"]


PRICES = MARKET_DATA / "prices_daily"


def test_simulate_saves_a_run_and_compare_reads_two(generated: Path, tmp_path: Path) -> None:
    mc = tmp_path / "mc.json"
    r = contagion("simulate", "--snapshot", str(generated), "--scenario", "gjr-tcopula-1d",
                  "--paths", "400", "--seed", "5", "--shard-paths", "200",
                  "--prices", f"ETH={PRICES / 'eth-usd-max_erickfm.csv'}",
                  "--prices", f"BTC={PRICES / 'btc-usd-max_erickfm.csv'}",
                  "--out", str(mc), "--json")
    assert r.returncode == 0, r.stderr
    metrics = json.loads(r.stdout)
    assert metrics["paths"] == 400
    saved = json.loads(mc.read_text())
    assert saved["metrics"] == metrics and saved["spec"]["seed"] == 5
    assert saved["spec"]["scenario"]["name"] == "gjr-tcopula-1d"
    assert saved["code_version"].startswith("0.1.0+") and mc.with_suffix(".npz").exists()

    fixed = tmp_path / "fixed.json"
    r = contagion("simulate", "--snapshot", str(generated), "--scenario", "eth-35-steth-93",
                  "--out", str(fixed))
    assert r.returncode == 0, r.stderr
    assert "losses of the stress path" in r.stdout and "VaR" not in r.stdout
    r = contagion("compare", str(mc), str(fixed), "--json")
    assert r.returncode == 0, r.stderr
    diff = json.loads(r.stdout)
    assert diff["inputs_differ"]["scenario"] and not diff["inputs_differ"]["snapshot"]
    fixed_bad = json.loads(fixed.read_text())["metrics"]["bad_debt_usd"]["mean"]
    assert diff["metrics"]["bad_debt_usd.mean"]["diff"] == pytest.approx(
        fixed_bad - metrics["bad_debt_usd"]["mean"])


@pytest.mark.parametrize(("args", "message"), [
    (["--scenario", "gjr-tcopula-1d"], "give exactly one of --snapshot DIR or --store URI"),
    (["--scenario", "nope", "--snapshot", "data/sample"], r"unknown scenario 'nope' \(library: "),
    (["--scenario", "gjr-tcopula-1d", "--snapshot", "data/sample"],
     "needs price histories|give price histories with --prices"),
    (["--scenario", "gjr-tcopula-1d", "--snapshot", "data/sample", "--prices", "ETH"],
     r"--prices: a price history must look like ASSET=FILE \(got 'ETH'\)"),
    (["--scenario", "gjr-tcopula-1d", "--snapshot", "data/sample", "--prices", "ETH=a.csv",
      "--prices", "ETH=b.csv"], r"--prices: price history for 'ETH' given twice \(a.csv, b.csv\)"),
    # inputs a one-path scenario would not use are refused, not dropped
    (["--scenario", "eth-35-steth-93", "--snapshot", "data/sample", "--prices", "ETH=a.csv"],
     r"price histories apply to Monte Carlo scenarios only \('eth-35-steth-93' is fixed-shock"),
    (["--scenario", "eth-35-steth-93", "--snapshot", "data/sample", "--paths", "100"],
     r"paths applies to Monte Carlo scenarios only \(fixed-shock scenarios are one path\) "
     r"\(got 100\)"),
    (["--scenario", "march-2020", "--snapshot", "data/sample", "--rounds", "5"],
     r"rounds must be between the scenario's steps \(10\) and 10000 \(got 5\)"),
])
def test_simulate_errors_are_one_line(args: list[str], message: str) -> None:
    r = contagion("simulate", *args)
    assert r.returncode == 1
    assert r.stderr.startswith("error: ") and len(r.stderr.strip().splitlines()) == 1
    assert re.search(message, r.stderr), r.stderr


def test_demo_end_to_end(tmp_path: Path) -> None:
    r = contagion("demo", "--positions", "2000", "--paths", "200", "--out", str(tmp_path),
                  "--prices", f"BTC={PRICES / 'btc-usd-max_erickfm.csv'}",
                  "--prices", f"ETH={PRICES / 'eth-usd-max_erickfm.csv'}")
    assert r.returncode == 0, r.stderr
    # two of each scored type, each with the reason its explanation gives
    table = r.stdout[r.stdout.index("most fragile nodes of each type"):]
    rows = re.findall(r"^ (\S+)\s+│ (protocol|pool|asset|account)\s+│ (0\.\d{3}|1\.000) │ (.+)$",
                      table, flags=re.M)
    assert [t for _, t, _, _ in rows] == ["protocol"] * 2 + ["pool"] * 2 + ["asset"] * 2 + [
        "account"] * 2
    assert all(why.strip() for *_, why in rows)
    for name, paths in (("eth-35-steth-93", 1), ("gjr-fhs-10d", 200)):
        run = json.loads((tmp_path / "runs" / f"{name}.json").read_text())
        assert run["spec"]["paths"] == paths
        assert f"{name} ({paths:,} path" in r.stdout
    page = (tmp_path / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 5
    assert {p.name for p in tmp_path.glob("*.png")} == {
        "loss_distribution.png", "liquidations_by_round.png", "price_fan.png",
        "fragility_ranking.png", "dependency_graph.png"}
    # the store holds the ecosystem and a fragility score for every scored node
    with open_store(f"memory:{tmp_path / 'store.zip'}") as store:
        labels = store.stats().labels
        (scores,) = store.score_sets()
        assert labels["Position"] == 2000
        assert scores.name == "fragility" and scores.count == sum(
            labels[k] for k in ("Protocol", "Pool", "Asset", "Account"))
        fragile = table.split("\n")[3].split("│")[0].strip()
        assert store.scores("fragility", ids=[fragile])[fragile] == pytest.approx(
            float(rows[0][2]), abs=5e-4)


def test_demo_needs_price_histories(tmp_path: Path) -> None:
    r = contagion("demo", "--out", str(tmp_path))
    assert r.returncode == 1
    assert r.stderr.strip().startswith("error: the demo fits the market model on daily price "
                                       "histories: give --prices ASSET=FILE")


def test_demo_serve_prints_a_working_explorer_address(tmp_path: Path) -> None:
    import httpx

    proc = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "demo", "--positions", "1000", "--paths", "50",
         "--out", str(tmp_path), "--serve", "--port", "0",
         "--prices", f"BTC={PRICES / 'btc-usd-max_erickfm.csv'}",
         "--prices", f"ETH={PRICES / 'eth-usd-max_erickfm.csv'}"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        cwd=Path(__file__).resolve().parents[2])
    try:
        assert proc.stdout is not None
        line = ""
        for line in proc.stdout:  # the server prints its address once it listens
            if line.startswith("explorer: "):
                break
        m = re.fullmatch(r"explorer: (http://127\.0\.0\.1:\d+)/explore#key=(\S+)\n", line)
        assert m, line
        base, key = m.groups()
        assert httpx.get(f"{base}/explore").status_code == 200
        r = httpx.post(f"{base}/graphql", headers={"authorization": f"Bearer {key}"},
                       json={"query": "{ me { role } fragility(top: 1) { nodeId } }"})
        assert r.json()["data"]["me"] == {"role": "ADMIN"}
        assert len(r.json()["data"]["fragility"]) == 1
    finally:
        proc.terminate()
        proc.wait(timeout=30)
