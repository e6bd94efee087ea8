"""The ingest tests' chain: contracts compiled with solc-js, a Hardhat node, a scripted history.

Everything is real: ``scripts/compile-contracts.js`` compiles ``contracts/*.sol`` with the
pinned ``solc`` npm package, ``hardhat node`` (npm, pinned) runs on a free port of 127.0.0.1,
and web3.py deploys the contracts and sends the transactions of :func:`play_history`. The
expected state after each stage (:data:`STAGES`) is written out by hand from the history.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from web3 import Web3

__all__ = ["ROOT", "Chain", "compile_contracts", "hardhat_node", "play_history"]

ROOT = Path(__file__).resolve().parents[2]
CONTRACTS = Path(__file__).resolve().parent / "contracts"
BUILD = ROOT / "build" / "test-contracts"
MAX = 2**256 - 1


def _need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise RuntimeError(f"'{tool}' is not on PATH: the ingest tests need Node.js 20 and npm "
                           "(scripts/bootstrap installs the npm packages)")
    return path


def compile_contracts() -> dict[str, dict[str, Any]]:
    """ABI and bytecode of every test contract (compiled once per source change)."""
    digest = hashlib.sha256()
    for f in sorted(CONTRACTS.glob("*.sol")):
        digest.update(f.name.encode() + f.read_bytes())
    out = BUILD / f"{digest.hexdigest()[:16]}.json"
    if not out.exists():
        node = _need("node")
        if not (ROOT / "node_modules" / "solc").is_dir():
            raise RuntimeError("node_modules/solc is missing: run scripts/bootstrap (npm ci)")
        subprocess.run([node, str(ROOT / "scripts" / "compile-contracts.js"), str(CONTRACTS),
                        str(out)], check=True, cwd=ROOT, capture_output=True, text=True)
    return dict(json.loads(out.read_text())["contracts"])


def _free_port(start: int = 8545) -> int:
    for port in range(start, start + 500):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 8545-9044")


@contextmanager
def hardhat_node(log: Path) -> Iterator[str]:
    """A Hardhat 2 node on a free port of 127.0.0.1; yields its URL and stops it after."""
    node = _need("node")
    cli = ROOT / "node_modules" / "hardhat" / "internal" / "cli" / "cli.js"
    if not cli.exists():
        raise RuntimeError("node_modules/hardhat is missing: run scripts/bootstrap (npm ci)")
    env = {**os.environ, "HARDHAT_DISABLE_TELEMETRY_PROMPT": "true"}
    for _ in range(5):
        port = _free_port()
        with log.open("w") as out:
            proc = subprocess.Popen(
                [node, str(cli), "--config", str(Path(__file__).parent / "hardhat.config.js"),
                 "node", "--hostname", "127.0.0.1", "--port", str(port)],
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                r = requests.post(url, json={"jsonrpc": "2.0", "id": 1,
                                             "method": "eth_chainId", "params": []}, timeout=2)
                if r.ok and r.json().get("result") == hex(31337):
                    break
            except requests.RequestException:
                pass
            time.sleep(0.25)
        else:
            proc.kill()
            proc.wait()
            if "EADDRINUSE" in log.read_text():
                continue  # another process took the port meanwhile
            raise RuntimeError(f"hardhat node did not start:\n{log.read_text()[-2000:]}")
        try:
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return
    raise RuntimeError("hardhat node: every port tried was taken")


@dataclass
class Chain:
    """The deployed contracts, the actors and the block at the end of each stage."""

    url: str
    w3: Web3
    contracts: dict[str, dict[str, Any]]
    addr: dict[str, str] = field(default_factory=dict)
    actors: dict[str, str] = field(default_factory=dict)
    blocks: dict[str, int] = field(default_factory=dict)
    head: int = 0

    def deploy(self, name: str, *args: Any) -> str:
        c = self.contracts[name]
        h = self.w3.eth.contract(abi=c["abi"], bytecode=c["bytecode"]).constructor(
            *args).transact({"from": self.actors["admin"]})
        receipt = self.w3.eth.wait_for_transaction_receipt(h)
        assert receipt["status"] == 1, name
        return str(receipt["contractAddress"])

    def at(self, name: str, address: str) -> Any:
        return self.w3.eth.contract(address=address, abi=self.contracts[name]["abi"])

    def send(self, sender: str, fn: Any) -> int:
        """Send ``fn`` from actor ``sender``; the block it was mined in."""
        h = fn.transact({"from": self.actors[sender]})
        receipt = self.w3.eth.wait_for_transaction_receipt(h)
        assert receipt["status"] == 1, fn
        return int(receipt["blockNumber"])


def _units(amount: float | int | str, decimals: int) -> int:
    from decimal import Decimal

    return int(Decimal(str(amount)) * 10**decimals)


TOKENS = {"WETH": 18, "USDC": 6, "WBTC": 8}


def play_history(url: str) -> Chain:
    """Deploy and play the scripted history (see STAGES in test_chain.py for the states)."""
    w3 = Web3(Web3.HTTPProvider(url))
    names = ["admin", "erin", "alice", "bob", "carol", "dave", "frank"]
    ch = Chain(url, w3, compile_contracts())
    ch.actors = {n: str(a) for n, a in zip(names, w3.eth.accounts, strict=False)}
    # tokens, feeds (8 decimals, USD), the pool and its reserve tokens, the pair
    for sym, dec in TOKENS.items():
        ch.addr[sym] = ch.deploy("TestERC20", f"Test {sym}", sym, dec)
    for sym, price in (("WETH", 2000), ("USDC", 1), ("WBTC", 30000)):
        ch.addr[f"feed:{sym}"] = ch.deploy("TestPriceFeed", 8, f"{sym} / USD", price * 10**8)
    ch.addr["pool"] = ch.deploy("TestPool")
    pool = ch.at("TestPool", ch.addr["pool"])
    params = {  # ltv, liquidation threshold, bonus (bp), borrowing, borrow cap, supply cap
        "WETH": (8000, 8250, 10500, True, 1000, 5000),
        "USDC": (7700, 8000, 10450, True, 1_000_000, 2_000_000),
        "WBTC": (7000, 7500, 10650, False, 0, 100),
    }
    for sym, (ltv, lt, bonus, borrowing, bcap, scap) in params.items():
        dec = TOKENS[sym]
        a = ch.deploy("TestAToken", f"Aave Test {sym}", f"aTest{sym}", dec, ch.addr[sym],
                      ch.addr["pool"])
        debts = []
        for kind in ("stable", "variable"):
            d = ch.deploy("TestERC20", f"Test {kind} debt {sym}", f"{kind[0]}Debt{sym}", dec)
            ch.send("admin", ch.at("TestERC20", d).functions.setMinter(ch.addr["pool"]))
            debts.append(d)
        ch.addr[f"a{sym}"] = a
        ch.send("admin", pool.functions.initReserve(ch.addr[sym], a, debts[0], debts[1],
                                                    ch.addr[f"feed:{sym}"]))
        ch.send("admin", pool.functions.configureReserve(ch.addr[sym], ltv, lt, bonus, dec,
                                                         borrowing))
        ch.send("admin", pool.functions.setCaps(ch.addr[sym], bcap, scap))
    t0, t1 = sorted([ch.addr["WETH"], ch.addr["USDC"]], key=lambda x: int(x, 16))
    ch.addr["pair"] = ch.deploy("TestPair", t0, t1)
    pair = ch.at("TestPair", ch.addr["pair"])
    token = {s: ch.at("TestERC20", ch.addr[s]) for s in TOKENS}
    for who in names:
        for sym, amount in (("WETH", 1000), ("USDC", 2_000_000), ("WBTC", 10)):
            ch.send("admin", token[sym].functions.mint(ch.actors[who],
                                                       _units(amount, TOKENS[sym])))
            ch.send(who, token[sym].functions.approve(ch.addr["pool"], MAX))

    def supply(who: str, sym: str, amount: float) -> int:
        return ch.send(who, pool.functions.supply(ch.addr[sym], _units(amount, TOKENS[sym]),
                                                  ch.actors[who], 0))

    def borrow(who: str, sym: str, amount: float) -> int:
        return ch.send(who, pool.functions.borrow(ch.addr[sym], _units(amount, TOKENS[sym]), 2,
                                                  0, ch.actors[who]))

    def repay(who: str, sym: str, amount: float | None) -> int:
        raw = MAX if amount is None else _units(amount, TOKENS[sym])
        return ch.send(who, pool.functions.repay(ch.addr[sym], raw, 2, ch.actors[who]))

    def swap(who: str, sym_in: str, amount_in: float, sym_out: str, amount_out: float) -> int:
        ch.send(who, token[sym_in].functions.transfer(ch.addr["pair"],
                                                      _units(amount_in, TOKENS[sym_in])))
        out = _units(amount_out, TOKENS[sym_out])
        outs = (out, 0) if ch.addr[sym_out] == t0 else (0, out)
        return ch.send(who, pair.functions.swap(*outs, ch.actors[who], b""))

    def price(sym: str, usd: float) -> int:
        return ch.send("admin", ch.at("TestPriceFeed", ch.addr[f"feed:{sym}"]).functions
                       .setAnswer(_units(usd, 8)))

    ch.blocks["deployed"] = w3.eth.block_number
    # stage 1: liquidity, three borrowers, the pair seeded
    supply("erin", "USDC", 500_000)
    supply("erin", "WETH", 100)
    supply("alice", "WETH", 10)
    borrow("alice", "USDC", 10_000)
    supply("bob", "WETH", 5)
    borrow("bob", "USDC", 7_000)
    supply("carol", "WBTC", 1)
    borrow("carol", "WETH", 5)
    ch.send("admin", token["WETH"].functions.transfer(ch.addr["pair"], _units(100, 18)))
    ch.send("admin", token["USDC"].functions.transfer(ch.addr["pair"], _units(200_000, 6)))
    ch.blocks["s1"] = ch.send("admin", pair.functions.mint(ch.actors["admin"]))
    # stage 2: a partial repay, a swap, ETH falls to 1,500, carol repays all, dave supplies
    repay("alice", "USDC", 4_000)
    swap("erin", "WETH", 10, "USDC", 18_000)
    price("WETH", 1500)
    repay("carol", "WETH", None)
    ch.blocks["s2"] = supply("dave", "USDC", 2_000)
    # stage 3: bob liquidated twice (once taking aTokens), alice closes, a swap back, BTC falls
    ch.send("dave", pool.functions.liquidationCall(ch.addr["WETH"], ch.addr["USDC"],
                                                   ch.actors["bob"], _units(3_500, 6), False))
    ch.send("frank", pool.functions.liquidationCall(ch.addr["WETH"], ch.addr["USDC"],
                                                    ch.actors["bob"], _units(1_000, 6), True))
    repay("alice", "USDC", None)
    ch.send("alice", pool.functions.withdraw(ch.addr["WETH"], MAX, ch.actors["alice"]))
    swap("erin", "USDC", 20_000, "WETH", 10.5)
    ch.blocks["s3"] = price("WBTC", 25_000)
    # a long quiet tail, so that a scan has many chunks to read
    # (evm_mine, not hardhat_mine: Hardhat serves no state at blocks hardhat_mine reserves)
    requests.post(url, json=[{"jsonrpc": "2.0", "id": i, "method": "evm_mine", "params": []}
                             for i in range(400)], timeout=120).raise_for_status()
    ch.head = w3.eth.block_number
    return ch
