"""On-chain ingest against a real Hardhat node: exact amounts at several blocks, incremental
and idempotent writes on both stores, checkpoints, confirmations, rate limits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from testchain import Chain

from graph.errors import IngestError
from graph.snapshot import Snapshot
from graph.store import GraphStore
from ingest import ChainConfig, ingest_chain, load_chain_config
from ingest.checkpoint import Checkpoint

# The state the scripted history (testchain.play_history) implies at the end of each stage,
# in token units: {user: ({collateral}, {debt})}, pool totals (supplied, borrowed), the
# reserves' liquidity (underlying held by the aToken), the pair's reserves and the prices.
POSITIONS: dict[str, dict[str, tuple[dict[str, float], dict[str, float]]]] = {
    "s1": {
        "erin": ({"USDC": 500_000, "WETH": 100}, {}),
        "alice": ({"WETH": 10}, {"USDC": 10_000}),
        "bob": ({"WETH": 5}, {"USDC": 7_000}),
        "carol": ({"WBTC": 1}, {"WETH": 5}),
    },
    "s2": {
        "erin": ({"USDC": 500_000, "WETH": 100}, {}),
        "alice": ({"WETH": 10}, {"USDC": 6_000}),  # repaid 4,000
        "bob": ({"WETH": 5}, {"USDC": 7_000}),
        "carol": ({"WBTC": 1}, {}),  # repaid all
        "dave": ({"USDC": 2_000}, {}),
    },
    "s3": {
        "erin": ({"USDC": 500_000, "WETH": 100}, {}),
        # liquidated for 3,500 USDC (2.45 WETH = 3,500 / 1,500 × 1.05) and for 1,000 USDC
        # (0.7 WETH, taken as aWETH by frank); alice repaid and withdrew everything
        "bob": ({"WETH": 1.85}, {"USDC": 2_500}),
        "carol": ({"WBTC": 1}, {}),
        "dave": ({"USDC": 2_000}, {}),
        "frank": ({"WETH": 0.7}, {}),
    },
}
LENDS = {
    "s1": {"WETH": (115, 5), "USDC": (500_000, 17_000), "WBTC": (1, 0)},
    "s2": {"WETH": (115, 0), "USDC": (502_000, 13_000), "WBTC": (1, 0)},
    "s3": {"WETH": (102.55, 0), "USDC": (502_000, 2_500), "WBTC": (1, 0)},
}
LIQUIDITY = {
    "s1": {"WETH": 110, "USDC": 483_000, "WBTC": 1},
    "s2": {"WETH": 115, "USDC": 489_000, "WBTC": 1},
    "s3": {"WETH": 102.55, "USDC": 499_500, "WBTC": 1},
}
PAIR = {
    "s1": {"WETH": 100, "USDC": 200_000},
    "s2": {"WETH": 110, "USDC": 182_000},  # 10 WETH in, 18,000 USDC out
    "s3": {"WETH": 99.5, "USDC": 202_000},  # 20,000 USDC in, 10.5 WETH out
}
PRICES = {
    "s1": {"WETH": 2000.0, "USDC": 1.0, "WBTC": 30000.0},
    "s2": {"WETH": 1500.0, "USDC": 1.0, "WBTC": 30000.0},
    "s3": {"WETH": 1500.0, "USDC": 1.0, "WBTC": 25000.0},
}
KINDS = {"WETH": "wrapped", "USDC": "stable", "WBTC": "wrapped"}
DECIMALS = {"WETH": 18, "USDC": 6, "WBTC": 8}
COLLATERAL = {"WETH": (0.8, 0.825, 0.05), "USDC": (0.77, 0.8, 0.045),
              "WBTC": (0.7, 0.75, 0.065)}


def expected(ch: Chain, stage: str) -> Snapshot:
    pool = f"aave-v3:{ch.addr['pool']}"
    pair = f"uniswap-v2:{ch.addr['pair']}"
    rec: dict[str, list[dict[str, Any]]] = {
        "protocols": [
            {"id": "aave-v3", "name": "Aave v3", "kind": "lending", "close_factor": 0.5,
             "full_close_threshold": 0.95, "reserve_usd": 0.0},
            {"id": "uniswap-v2", "name": "Uniswap v2", "kind": "dex", "close_factor": 1.0,
             "full_close_threshold": 1.0, "reserve_usd": 0.0}],
        "pools": [{"id": pool, "protocol": "aave-v3", "kind": "lending"},
                  {"id": pair, "protocol": "uniswap-v2", "kind": "amm", "fee": 0.003}],
        "oracles": [{"id": f"chainlink:{ch.addr['feed:' + s]}", "kind": "feed"}
                    for s in DECIMALS],
        "assets": [{"id": s, "symbol": s, "kind": KINDS[s], "price": PRICES[stage][s],
                    "decimals": d, "market_depth_usd": 0.0,
                    "oracle": f"chainlink:{ch.addr['feed:' + s]}"}
                   for s, d in DECIMALS.items()],
        "pool_collateral": [{"pool": pool, "asset": s, "ltv": ltv, "liquidation_threshold": lt,
                             "liquidation_bonus": b} for s, (ltv, lt, b) in COLLATERAL.items()],
        "pool_lends": [{"pool": pool, "asset": s, "supplied": float(sup),
                        "borrowed": float(bor)} for s, (sup, bor) in LENDS[stage].items()],
        "pool_holdings": [{"pool": pool, "asset": s, "amount": float(v)}
                          for s, v in LIQUIDITY[stage].items()]
        + [{"pool": pair, "asset": s, "amount": float(v)} for s, v in PAIR[stage].items()],
        "accounts": [], "positions": [], "position_collateral": [], "position_debt": [],
    }
    for who, (coll, debt) in POSITIONS[stage].items():
        user = ch.actors[who]
        pos = f"{pool}/{user}"
        rec["accounts"].append({"id": user, "kind": "user"})
        rec["positions"].append({"id": pos, "account": user, "pool": pool})
        for table, amounts in (("position_collateral", coll), ("position_debt", debt)):
            rec[table] += [{"position": pos, "asset": a, "amount": float(v)}
                           for a, v in amounts.items()]
    return Snapshot.from_records(rec)


def write_config(ch: Chain, tmp: Path, name: str = "testchain", **extra: Any) -> Path:
    doc: dict[str, Any] = {
        "name": name,
        "start_block": 1,
        "confirmations": 0,
        "chunk_blocks": 7,
        "backoff_seconds": 0.01,
        "lending": [{"pool": ch.addr["pool"]}],
        "amm": [{"pair": ch.addr["pair"].lower()}],
        "assets": {ch.addr[s]: {"kind": KINDS[s], "feed": ch.addr[f"feed:{s}"]}
                   for s in DECIMALS},
    }
    doc.update(extra)
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def load(ch: Chain, tmp: Path, **extra: Any) -> ChainConfig:
    return load_chain_config(write_config(ch, tmp, **extra))


def check(ch: Chain, snap: Snapshot, stage: str, block: int | None = None) -> None:
    want = expected(ch, stage)
    assert snap.equals(want, check_manifest=False), snap.describe_difference(
        want.with_manifest(snap.manifest))
    assert snap.manifest.block == (ch.blocks[stage] if block is None else block)


@pytest.mark.parametrize("stage", ["s1", "s2", "s3"])
def test_snapshot_at_each_stage_is_exact(chain: Chain, tmp_path: Path, stage: str) -> None:
    res = ingest_chain(load(chain, tmp_path, block=chain.blocks[stage]), rpc_url=chain.url)
    check(chain, res.snapshot, stage)
    assert res.scanned == (1, chain.blocks[stage])
    # caps and flags come from the configuration bitmap packed by the pool contract
    reserves = res.snapshot.manifest.params["reserves"][f"aave-v3:{chain.addr['pool']}"]
    assert reserves["WETH"] | {"address": None} == {
        "address": None, "borrow_cap": 1000, "supply_cap": 5000, "active": True,
        "frozen": False, "paused": False, "borrowing_enabled": True}
    assert (reserves["WBTC"]["borrowing_enabled"], reserves["WBTC"]["supply_cap"]) == (False, 100)
    assert res.snapshot.manifest.as_of.timestamp() == chain.w3.eth.get_block(
        chain.blocks[stage])["timestamp"]


def test_incremental_ingest_updates_and_removes(chain: Chain, tmp_path: Path,
                                                store: GraphStore) -> None:
    cfg_path = write_config(chain, tmp_path)
    summaries = []
    for stage in ("s1", "s2", "s3"):
        cfg = load_chain_config(cfg_path).model_copy(update={"block": chain.blocks[stage]})
        res = ingest_chain(cfg, rpc_url=chain.url)
        # the scan continued from the checkpoint: each run read only the new blocks
        prev = {"s1": 0, "s2": chain.blocks["s1"], "s3": chain.blocks["s2"]}[stage]
        assert res.scanned == (prev + 1, chain.blocks[stage])
        summaries.append(store.write_snapshot(res.snapshot))
        check(chain, store.read_snapshot(), stage)
    s1, s2, s3 = summaries
    assert s1.added["Position"] == 4 and s1.added["COLLATERAL"] == 5
    # s2: dave opens; alice's and carol's debt change (carol's is removed), ETH's price moves
    assert (s2.added["Position"], s2.updated["Position"], s2.removed["Position"]) == (1, 0, 0)
    assert (s2.updated["DEBT"], s2.removed["DEBT"]) == (1, 1)
    assert s2.updated["Asset"] == 1
    # s3: alice closes (position, account and both edges removed), frank opens
    assert (s3.added["Position"], s3.removed["Position"]) == (1, 1)
    assert (s3.removed["Account"], s3.removed["COLLATERAL"], s3.removed["DEBT"]) == (1, 1, 1)
    # re-ingesting the same block changes nothing
    cfg = load_chain_config(cfg_path).model_copy(update={"block": chain.blocks["s3"]})
    again = ingest_chain(cfg, rpc_url=chain.url)
    assert again.scanned is None
    assert not store.write_snapshot(again.snapshot).changed
    # an earlier block after a later one: the users known from the later scan are read at the
    # earlier block, and the store goes back exactly
    cfg = load_chain_config(cfg_path).model_copy(update={"block": chain.blocks["s1"]})
    store.write_snapshot(ingest_chain(cfg, rpc_url=chain.url).snapshot)
    check(chain, store.read_snapshot(), "s1")


def test_checkpoint_file_records_scan(chain: Chain, tmp_path: Path) -> None:
    cfg = load(chain, tmp_path, block=chain.blocks["s2"])
    ingest_chain(cfg, rpc_url=chain.url)
    assert cfg.checkpoint == tmp_path / "testchain.checkpoint.json"
    ck = Checkpoint.load(cfg.checkpoint)
    assert ck is not None and ck.scanned_to == chain.blocks["s2"]
    assert ck.scanned_hash == chain.w3.eth.get_block(chain.blocks["s2"])["hash"].to_0x_hex()
    assert ck.users[chain.addr["pool"]] == sorted(
        chain.actors[w] for w in ("erin", "alice", "bob", "carol", "dave"))
    assert ck.last_sync[chain.addr["pair"]].reserve0 in (110 * 10**18, 182_000 * 10**6)
    # a checkpoint whose block hash no longer matches the chain (a reorg) is scanned again
    ck.scanned_hash = "0x" + "00" * 32
    ck.save(cfg.checkpoint)
    res = ingest_chain(cfg, rpc_url=chain.url)
    assert res.scanned == (1, chain.blocks["s2"])
    check(chain, res.snapshot, "s2")


def test_confirmations(chain: Chain, tmp_path: Path) -> None:
    head = chain.w3.eth.block_number
    res = ingest_chain(load(chain, tmp_path, confirmations=12), rpc_url=chain.url)
    assert res.block == head - 12
    check(chain, res.snapshot, "s3", block=head - 12)  # nothing happened after s3
    with pytest.raises(IngestError, match=rf"block {head - 3} has 3 confirmations \(head "
                                          rf"{head}\); 12 are required"):
        ingest_chain(load(chain, tmp_path, confirmations=12, block=head - 3),
                     rpc_url=chain.url)


def test_config_errors_name_the_key(chain: Chain, tmp_path: Path) -> None:
    path = write_config(chain, tmp_path, confirmations=-1)
    with pytest.raises(IngestError, match=r"testchain.yaml, field 'confirmations': .*"
                                          r"greater than or equal to 0 \(got -1\)"):
        load_chain_config(path)
    path = write_config(chain, tmp_path, lending=[{"pool": "0x1234"}])
    with pytest.raises(IngestError, match=r"field 'lending.0.pool': .*20-byte hex address"):
        load_chain_config(path)
    cfg = load(chain, tmp_path, block=chain.blocks["s1"])
    del_usdc = {k: v for k, v in cfg.assets.items() if k != chain.addr["USDC"]}
    with pytest.raises(IngestError, match=rf"token {chain.addr['USDC']} \(USDC\) has no price"):
        ingest_chain(cfg.model_copy(update={"assets": del_usdc}), rpc_url=chain.url)
