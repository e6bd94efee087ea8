"""The ingest CLI as a real process: killed mid-run (SIGKILL) and re-run, it leaves the same
store as an uninterrupted run, on both stores; its summary table and one-line errors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from test_chain import write_config
from testchain import ROOT, Chain

from graph.store import GraphStore, MemoryStore, open_store
from ingest.checkpoint import Checkpoint

NEO4J_URI = os.environ.get("NEO4J_URI", "bolt://127.0.0.1:7687")  # as tests/conftest.py


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "api.cli", *args]


def store_uri(store: GraphStore) -> str:
    return store.uri if isinstance(store, MemoryStore) else NEO4J_URI


def read(uri: str):  # type: ignore[no-untyped-def]
    with open_store(uri) as s:
        return s.read_snapshot()


def start(args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def kill_when(proc: subprocess.Popen[str], ck: Path, ready: object, timeout: float = 180
              ) -> Checkpoint | None:
    """SIGKILL ``proc`` as soon as its checkpoint satisfies ``ready``; the checkpoint then."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        c = Checkpoint.load(ck)
        if c is not None and ready(c):  # type: ignore[operator]
            proc.send_signal(signal.SIGKILL)
            proc.communicate()
            return c
        time.sleep(0.002)
    proc.communicate()
    return None


def test_killed_chain_ingest_resumes_to_the_same_store(chain: Chain, tmp_path: Path,
                                                       store: GraphStore) -> None:
    uri = store_uri(store)
    head = chain.head
    common = {"block": head, "chunk_blocks": 2}
    # the uninterrupted run
    (tmp_path / "reference").mkdir()
    ref_cfg = write_config(chain, tmp_path / "reference", **common)
    r = subprocess.run(cli("ingest", "chain", "--rpc", chain.url, "--config", str(ref_cfg),
                           "--store", uri), cwd=ROOT, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr
    reference = read(uri)
    assert reference.num_rows("positions") == 5
    store.clear()
    # killed during the log scan...
    (tmp_path / "killed").mkdir()
    cfg = write_config(chain, tmp_path / "killed", **common)
    ck = tmp_path / "killed" / "testchain.checkpoint.json"
    args = cli("ingest", "chain", "--rpc", chain.url, "--config", str(cfg), "--store", uri)
    proc = start(args)
    seen = kill_when(proc, ck, lambda c: 1 <= c.scanned_to < head - 50)
    assert proc.returncode == -signal.SIGKILL and seen is not None
    partial = Checkpoint.load(ck)
    assert partial is not None and partial.scanned_to < head
    # ... then again once the scan is complete (reading the state or writing the store) ...
    proc = start(args)
    kill_when(proc, ck, lambda c: c.scanned_to == head)
    assert proc.returncode in (0, -signal.SIGKILL)
    # ... and run to the end: the same store, nothing lost or duplicated
    r = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    final = read(uri)
    assert final.equals(reference), final.describe_difference(reference)
    # and once more: nothing to scan, nothing to change
    r = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "no new blocks to scan" in r.stderr
    assert read(uri).equals(reference)


def test_cli_summary_and_errors(chain: Chain, tmp_path: Path) -> None:
    cfg = write_config(chain, tmp_path, block=chain.blocks["s2"])
    uri = f"memory:{tmp_path / 'store.zip'}"
    r = subprocess.run(cli("ingest", "chain", "--rpc", chain.url, "--config", str(cfg),
                           "--store", uri), cwd=ROOT, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr
    row = next(line for line in r.stdout.splitlines() if line.strip().startswith("Position"))
    assert row.replace("│", " ").split()[1:] == ["5", "0", "0"]
    assert f"block {chain.blocks['s2']}: 5 positions of 5 known users" in r.stderr
    # a bad --block, an unreachable node: one line each
    r = subprocess.run(cli("ingest", "chain", "--config", str(cfg), "--store", uri,
                           "--block", "soon"), cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 1
    assert r.stderr.strip() == "error: --block must be a block number or 'latest' (got 'soon')"
    bad = tmp_path / "in"
    bad.mkdir()
    (bad / "assets.csv").write_text("asset,price\nWETH,-3\n")
    r = subprocess.run(cli("ingest", "files", str(bad), "--store", uri), cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 1
    assert r.stderr.strip() == (f"error: {bad / 'assets.csv'}, row 1, field 'price': must be "
                                "> 0 (got -3.0)")
    assert read(uri).num_rows("positions") == 5  # untouched
