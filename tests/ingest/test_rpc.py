"""An RPC endpoint that cannot be reached fails fast, with a message saying so, and every retry
on the way is reported (no chain needed: a closed port and a port that never answers)."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from graph.errors import IngestError
from ingest import ingest_chain, load_chain_config
from ingest.rpc import Rpc

ROOT = Path(__file__).resolve().parents[2]
POOL = "0x87870Bca3F3fD6335C3F4ce8392D69350B4fA4E2"


@pytest.fixture
def closed_port() -> int:
    """A local port nothing listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A local port that accepts connections and never answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield int(s.getsockname()[1])


def config(tmp: Path, **extra: object) -> Path:
    path = tmp / "chain.yaml"
    path.write_text(yaml.safe_dump({"name": "unreachable", "lending": [{"pool": POOL}],
                                    **extra}))
    return path


def test_an_unreachable_endpoint_fails_after_the_connect_retries(closed_port: int) -> None:
    slept: list[float] = []
    told: list[str] = []
    rpc = Rpc(f"http://127.0.0.1:{closed_port}/v2/secret-key", backoff=0.3, sleep=slept.append,
              on_retry=told.append)
    where = f"http://127.0.0.1:{closed_port}"
    with pytest.raises(IngestError, match=rf"^cannot reach the RPC endpoint {where} after 3 "
                                          r"attempts \(connection refused\)$"):
        rpc.connect()
    assert slept == [0.3, 0.6] and rpc.retries == 2
    assert told == [f"eth_chainId at {where}: connection refused; retry 1 of 2 in 0.3 s",
                    f"eth_chainId at {where}: connection refused; retry 2 of 2 in 0.6 s"]
    assert all("secret-key" not in m for m in told)


def test_an_endpoint_that_never_answers_fails_after_the_connect_timeout(
        silent_port: int) -> None:
    rpc = Rpc(f"http://127.0.0.1:{silent_port}", connect_timeout=0.2, connect_retries=0)
    with pytest.raises(IngestError, match=rf"^cannot reach the RPC endpoint "
                                          rf"http://127.0.0.1:{silent_port} after 1 attempt "
                                          r"\(timed out \(ReadTimeout\)\)$"):
        rpc.connect()


def test_the_connect_retries_come_from_the_config(tmp_path: Path, closed_port: int) -> None:
    cfg = load_chain_config(config(tmp_path))
    assert (cfg.connect_retries, cfg.connect_timeout_seconds) == (2, 5.0)
    cfg = load_chain_config(config(tmp_path, connect_retries=0, backoff_seconds=0))
    told: list[str] = []
    with pytest.raises(IngestError, match=r"after 1 attempt \(connection refused\)$"):
        ingest_chain(cfg, rpc_url=f"http://127.0.0.1:{closed_port}", on_retry=told.append)
    assert told == []
    with pytest.raises(IngestError, match=r"field 'connect_retries': .*greater than or equal "
                                          r"to 0 \(got -1\)"):
        load_chain_config(config(tmp_path, connect_retries=-1))


def test_cli_reports_each_retry_then_one_error_line(tmp_path: Path, closed_port: int) -> None:
    cfg = config(tmp_path, connect_retries=1, backoff_seconds=0.01)
    store = tmp_path / "store.zip"
    r = subprocess.run([sys.executable, "-m", "api.cli", "ingest", "chain", "--rpc",
                        f"http://127.0.0.1:{closed_port}", "--config", str(cfg), "--store",
                        f"memory:{store}"], cwd=ROOT, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 1
    where = f"http://127.0.0.1:{closed_port}"
    assert [x for x in r.stderr.splitlines() if x.strip()] == [
        f"retrying: eth_chainId at {where}: connection refused; retry 1 of 1 in 0.0 s",
        f"error: cannot reach the RPC endpoint {where} after 2 attempts (connection refused)"]
    assert "Traceback" not in r.stderr and not store.exists()
