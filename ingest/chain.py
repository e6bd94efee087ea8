"""The on-chain ingestor: Aave-v3-style pools, Uniswap-v2-style pairs, Chainlink-style feeds.

:func:`ingest_chain` reads, at one block, everything the configuration names and returns a
validated :class:`~graph.snapshot.Snapshot`:

1. **Scan** (incremental): the lending pools' ``Supply``/``Borrow``/``Repay``/``Withdraw``/
   ``LiquidationCall`` events name the users (``onBehalfOf`` of a supply or borrow, ``user``
   of a repay, withdrawal or liquidation, and the liquidator when it takes aTokens); the
   pairs' ``Sync`` events give their latest reserves. Logs are read in chunks from the
   checkpoint (or ``start_block``) to the ingested block, and the checkpoint is saved after
   every chunk (:mod:`ingest.checkpoint`).
2. **Read** (``eth_call`` at the block, batched): each pool's ``getReservesList()``, each
   reserve's ``getReserveData`` (token addresses, bit position) and ``getConfiguration``
   (bitmap, :func:`decode_reserve_configuration`); each token's ``symbol()``, ``decimals()``
   and the ``totalSupply()`` of its aToken and debt tokens and the underlying's
   ``balanceOf(aToken)``; each feed's ``decimals()`` and ``latestRoundData()``; each pair's
   ``token0()``, ``token1()``, ``getReserves()``; each user's ``getUserConfiguration`` and,
   for the reserves it flags, ``balanceOf`` of the aToken (collateral) and debt tokens.
3. **Map** onto the schema (README, *Ingest*): pool ``<protocol>:<pool address>``, asset id
   the token's symbol (or the config's ``id``), account the user's checksum address,
   position ``<pool id>/<user>``; amounts ``raw / 10**decimals`` (the token's own decimals),
   ratios from basis points (``ltv 8250 → 0.825``, bonus ``10500 → 0.05``), prices
   ``answer / 10**feed decimals`` USD.

Blocks closer to the head than ``confirmations`` are never read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from web3 import Web3
from web3.contract import Contract

from graph.errors import IngestError
from graph.snapshot import Manifest, Snapshot
from graph.vocab import AccountKind, OracleKind, PoolKind, ProtocolKind
from ingest.abi import AAVE_V3_POOL, CHAINLINK_FEED, ERC20, UNISWAP_V2_PAIR
from ingest.checkpoint import Checkpoint, SyncState, config_key
from ingest.config import ChainConfig
from ingest.rpc import Call, Rpc

__all__ = [
    "ChainResult",
    "ReserveConfiguration",
    "decode_reserve_configuration",
    "ingest_chain",
    "to_units",
]

#: ``progress(stage, done, total)``; stage is ``"scan"`` (blocks) or ``"read"`` (calls).
ChainProgress = Callable[[str, int, int], None]

_ZERO = "0x0000000000000000000000000000000000000000"
_POOL_EVENTS = ("Supply", "Borrow", "Repay", "Withdraw", "LiquidationCall")
_CAP_MASK = (1 << 36) - 1


def to_units(raw: int, decimals: int) -> float:
    """``raw / 10**decimals`` as the nearest float64 (exact integer division, then one
    rounding: ``to_units(1_500_000, 6) == 1.5``)."""
    return raw / 10**decimals


class ReserveConfiguration(NamedTuple):
    """The fields of an Aave v3 ``ReserveConfigurationMap`` bitmap: ltv, liquidation
    threshold and bonus in basis points (the bonus includes 100%: 10500 = 5% bonus), caps in
    whole tokens (0 = none)."""

    ltv: int
    liquidation_threshold: int
    liquidation_bonus: int
    decimals: int
    active: bool
    frozen: bool
    borrowing_enabled: bool
    paused: bool
    borrow_cap: int
    supply_cap: int


def decode_reserve_configuration(data: int) -> ReserveConfiguration:
    """Unpack the bitmap as v3's ``ReserveConfiguration`` library lays it out: bits 0-15 ltv,
    16-31 liquidation threshold, 32-47 liquidation bonus, 48-55 decimals, 56 active,
    57 frozen, 58 borrowing enabled, 60 paused, 80-115 borrow cap, 116-151 supply cap.

    >>> decode_reserve_configuration(8000 | 8250 << 16 | 10500 << 32 | 18 << 48).ltv
    8000
    """
    return ReserveConfiguration(
        ltv=data & 0xFFFF,
        liquidation_threshold=(data >> 16) & 0xFFFF,
        liquidation_bonus=(data >> 32) & 0xFFFF,
        decimals=(data >> 48) & 0xFF,
        active=bool((data >> 56) & 1),
        frozen=bool((data >> 57) & 1),
        borrowing_enabled=bool((data >> 58) & 1),
        paused=bool((data >> 60) & 1),
        borrow_cap=(data >> 80) & _CAP_MASK,
        supply_cap=(data >> 116) & _CAP_MASK,
    )


@dataclass(frozen=True)
class ChainResult:
    """A snapshot read from the chain, and what the run did to get it."""

    snapshot: Snapshot
    block: int
    scanned: tuple[int, int] | None  # the blocks whose logs this run read, if any
    users: int  # users known from events (with or without a position at the block)
    retries: int  # requests retried after a rate limit, timeout or connection error
    splits: int  # log ranges halved at the node's request


def _out_type(p: dict[str, Any]) -> str:
    t = str(p["type"])
    if t.startswith("tuple"):
        return "(" + ",".join(_out_type(c) for c in p["components"]) + ")" + t[len("tuple"):]
    return t


_ABIS = {"pool": AAVE_V3_POOL, "pair": UNISWAP_V2_PAIR, "feed": CHAINLINK_FEED,
         "erc20": ERC20}


class _Reader:
    """Builds :class:`~ingest.rpc.Call` objects from the ABIs."""

    def __init__(self, w3: Web3) -> None:
        self.contracts: dict[str, type[Contract]] = {
            name: w3.eth.contract(abi=abi) for name, abi in _ABIS.items()}

    def call(self, kind: str, to: str, fn: str, *args: Any, raw: bool = False) -> Call:
        fn_abi = next(e for e in _ABIS[kind] if e["type"] == "function" and e["name"] == fn)
        outputs = None if raw else tuple(_out_type(o) for o in fn_abi["outputs"])
        return Call(to, self.contracts[kind].encode_abi(fn, args=list(args)), outputs)

    def event_topics(self) -> dict[str, tuple[str, str]]:
        """topic0 → (contract kind, event name)."""
        out = {}
        for kind, names in (("pool", _POOL_EVENTS), ("pair", ("Sync",))):
            for name in names:
                ev = self.contracts[kind].events[name]()
                out[str(Web3.keccak(text=ev.signature).to_0x_hex())] = (kind, name)
        return out


def _symbol(raw: bytes | None, address: str) -> str:
    """``symbol()`` as a string, also from tokens that return ``bytes32`` (MKR, SAI)."""
    if raw:
        try:
            return str(Web3().codec.decode(["string"], raw)[0])
        except Exception:  # any decoding failure means "try bytes32"
            if len(raw) == 32:
                return raw.rstrip(b"\0").decode("utf-8", "replace")
    raise IngestError(f"token {address} has no readable symbol()")


def _target_block(cfg: ChainConfig, block: int | str | None, head: int) -> int:
    want = cfg.block if block is None else block
    safe = head - cfg.confirmations
    if want == "latest":
        if safe < cfg.start_block:
            raise IngestError(f"the head {head} less {cfg.confirmations} confirmations is "
                              f"before start_block {cfg.start_block}: nothing to read yet")
        return safe
    n = int(want)
    if n > safe:
        raise IngestError(f"block {n} has {max(0, head - n)} confirmations (head {head}); "
                          f"{cfg.confirmations} are required")
    if n < cfg.start_block:
        raise IngestError(f"block {n} is before start_block {cfg.start_block}")
    return n


def ingest_chain(config: ChainConfig, *, rpc_url: str | None = None,
                 block: int | str | None = None, progress: ChainProgress | None = None,
                 on_retry: Callable[[str], None] | None = None) -> ChainResult:
    """Read the contracts of ``config`` at ``block`` (default: the config's ``block``) and
    return the snapshot, continuing the event scan from the checkpoint. ``on_retry`` is told
    of every retried request as it happens (default: a warning of the ``ingest.rpc`` logger).

    Raises :class:`~graph.errors.IngestError` (an unreachable endpoint: ``cannot reach the RPC
    endpoint …``, within seconds; a node failing after retries, a block too close to the
    head, a token without a price, inconsistent state) and
    :class:`~graph.errors.SnapshotValidationError` if the chain's data breaks a schema rule.
    """
    url = rpc_url or config.rpc
    if not url:
        raise IngestError("no RPC URL: pass --rpc or set 'rpc' in the config")
    if not config.lending and not config.amm:
        raise IngestError("nothing to ingest: the config lists no 'lending' pools and no "
                          "'amm' pairs")
    tick = progress or (lambda stage, done, total: None)
    rpc = Rpc(url, timeout=config.timeout_seconds, max_retries=config.max_retries,
              backoff=config.backoff_seconds, batch_size=config.batch_size,
              connect_timeout=config.connect_timeout_seconds,
              connect_retries=config.connect_retries, on_retry=on_retry)
    reader = _Reader(rpc.w3)
    chain_id = rpc.connect()
    head = rpc.head()
    target = _target_block(config, block, head)
    pools = [p.pool for p in config.lending]
    pairs = [p.pair for p in config.amm]

    ck = _resume(config, rpc, chain_id, head, config_key(chain_id, config.start_block,
                                                          pools, pairs))
    scanned = _scan(config, rpc, reader, ck, target, tick)
    state = _read_state(config, rpc, reader, ck, target, tick)
    return ChainResult(snapshot=_snapshot(config, chain_id, target, state, ck),
                       block=target, scanned=scanned,
                       users=sum(len(u) for u in ck.users.values()),
                       retries=rpc.retries, splits=rpc.splits)


# --------------------------------------------------------------------------- scan


def _resume(cfg: ChainConfig, rpc: Rpc, chain_id: int, head: int, key: str) -> Checkpoint:
    path = cfg.checkpoint
    ck = Checkpoint.load(path) if path is not None else None
    if ck is None or ck.key != key:
        return Checkpoint.fresh(key, chain_id, cfg.start_block)
    # Blocks past the confirmed head, or a different hash: a reorg reached what was scanned
    # (or the confirmations grew); scan again from the start.
    if ck.scanned_to >= cfg.start_block and (
            ck.scanned_to > head - cfg.confirmations
            or rpc.block(ck.scanned_to)[0] != ck.scanned_hash):
        return Checkpoint.fresh(key, chain_id, cfg.start_block)
    return ck


def _scan(cfg: ChainConfig, rpc: Rpc, reader: _Reader, ck: Checkpoint, target: int,
          tick: ChainProgress) -> tuple[int, int] | None:
    first = ck.scanned_to + 1
    if first > target:
        return None
    topics = reader.event_topics()
    pool_events = {name: reader.contracts["pool"].events[name]() for name in _POOL_EVENTS}
    sync = reader.contracts["pair"].events["Sync"]()
    users = {p: set(ck.users.get(p, [])) for p in (x.pool for x in cfg.lending)}
    addresses = [p.pool for p in cfg.lending] + [p.pair for p in cfg.amm]
    total = target - first + 1
    tick("scan", 0, total)
    for last, logs in rpc.logs(addresses, list(topics), first, target, cfg.chunk_blocks):
        for log in logs:
            kind, name = topics[log["topics"][0].to_0x_hex()]
            addr = str(log["address"])
            if kind == "pool" and addr in users:
                args = pool_events[name].process_log(log)["args"]
                if name in ("Supply", "Borrow"):
                    users[addr].add(str(args["onBehalfOf"]))
                else:
                    users[addr].add(str(args["user"]))
                if name == "LiquidationCall" and args["receiveAToken"]:
                    users[addr].add(str(args["liquidator"]))
            elif kind == "pair":
                args = sync.process_log(log)["args"]
                ck.last_sync[addr] = SyncState(block=int(log["blockNumber"]),
                                               log_index=int(log["logIndex"]),
                                               reserve0=int(args["reserve0"]),
                                               reserve1=int(args["reserve1"]))
        ck.users = {p: sorted(u) for p, u in users.items()}
        ck.scanned_to = last
        ck.scanned_hash = rpc.block(last)[0]
        if cfg.checkpoint is not None:
            ck.save(cfg.checkpoint)
        tick("scan", last - first + 1, total)
    return first, target


# --------------------------------------------------------------------------- read


@dataclass
class _Reserve:
    asset: str
    conf: ReserveConfiguration
    bit: int
    a_token: str
    stable_debt: str
    variable_debt: str
    supplied: int = 0
    borrowed: int = 0
    liquidity: int = 0


@dataclass
class _State:
    timestamp: int
    reserves: dict[str, list[_Reserve]]  # pool -> reserves
    tokens: dict[str, tuple[str, int]]  # address -> (symbol, decimals)
    prices: dict[str, tuple[float, int, int]]  # token -> (price, round id, updated at)
    pairs: dict[str, tuple[str, str, int, int]]  # pair -> token0, token1, reserve0, reserve1
    balances: dict[str, dict[str, tuple[dict[str, int], dict[str, int]]]]
    # pool -> user -> ({token: collateral raw}, {token: debt raw})


class _Calls:
    """Calls collected with a key each, then run together (batched) at one block."""

    def __init__(self, rpc: Rpc, block: int, tick: ChainProgress) -> None:
        self.rpc, self.block, self.tick = rpc, block, tick
        self.done = 0

    def run(self, items: list[tuple[Any, Call, str]]) -> list[tuple[Any, Any]]:
        """``(key, call, what)`` → ``(key, decoded result)``; ``what`` names the call in the
        error raised when it returns nothing."""
        out: list[tuple[Any, Any]] = []
        step = self.rpc.batch_size * 10
        for i in range(0, len(items), step):
            part = items[i:i + step]
            results = self.rpc.calls([c for _, c, _ in part], self.block)
            for (key, _, what), res in zip(part, results, strict=True):
                if res is None:
                    raise IngestError(f"{what} returned nothing at block {self.block} (no "
                                      "contract there, or not the expected interface)")
                out.append((key, res))
            self.done += len(part)
            self.tick("read", self.done, self.done + len(items) - i - len(part))
        return out


def _read_state(cfg: ChainConfig, rpc: Rpc, reader: _Reader, ck: Checkpoint, block: int,
                tick: ChainProgress) -> _State:
    calls = _Calls(rpc, block, tick)
    _, timestamp = rpc.block(block)
    call = reader.call
    # 1. reserves lists, pair tokens and reserves
    items: list[tuple[Any, Call, str]] = []
    for p in cfg.lending:
        items.append((("list", p.pool), call("pool", p.pool, "getReservesList"),
                      f"getReservesList() of pool {p.pool}"))
    for q in cfg.amm:
        for fn in ("token0", "token1", "getReserves"):
            items.append(((fn, q.pair), call("pair", q.pair, fn), f"{fn}() of pair {q.pair}"))
    first = dict(calls.run(items))
    reserve_lists = {p.pool: [str(Web3.to_checksum_address(a))
                              for a in first[("list", p.pool)][0]] for p in cfg.lending}
    # 2. per reserve: data and configuration
    items = []
    for pool, assets in reserve_lists.items():
        for a in assets:
            for fn in ("getReserveData", "getConfiguration"):
                items.append(((fn, pool, a), call("pool", pool, fn, a),
                              f"{fn}({a}) of pool {pool}"))
    second = dict(calls.run(items))
    reserves: dict[str, list[_Reserve]] = {}
    for pool, assets in reserve_lists.items():
        reserves[pool] = []
        for a in assets:
            data = second[("getReserveData", pool, a)][0]
            conf = second[("getConfiguration", pool, a)][0]
            reserves[pool].append(_Reserve(
                asset=a, conf=decode_reserve_configuration(int(conf[0])), bit=int(data[7]),
                a_token=str(Web3.to_checksum_address(data[8])),
                stable_debt=str(Web3.to_checksum_address(data[9])),
                variable_debt=str(Web3.to_checksum_address(data[10]))))
    pair_tokens = {q.pair: (str(Web3.to_checksum_address(first[("token0", q.pair)][0])),
                            str(Web3.to_checksum_address(first[("token1", q.pair)][0])))
                   for q in cfg.amm}
    # 3. tokens, totals, prices
    tokens = sorted({r.asset for rs in reserves.values() for r in rs}
                    | {t for pair in pair_tokens.values() for t in pair})
    items = []
    for t in tokens:
        items.append((("symbol", t), call("erc20", t, "symbol", raw=True), f"symbol() of {t}"))
        items.append((("decimals", t), call("erc20", t, "decimals"), f"decimals() of {t}"))
        ac = cfg.assets.get(t)
        if ac is not None and ac.feed is not None:
            items.append((("feed-decimals", t), call("feed", ac.feed, "decimals"),
                          f"decimals() of feed {ac.feed}"))
            items.append((("round", t), call("feed", ac.feed, "latestRoundData"),
                          f"latestRoundData() of feed {ac.feed}"))
    for pool, rs in reserves.items():
        for r in rs:
            items.append((("supplied", pool, r.asset), call("erc20", r.a_token, "totalSupply"),
                          f"totalSupply() of {r.a_token}"))
            for debt_token in (r.variable_debt, r.stable_debt):
                if debt_token != _ZERO:
                    items.append((("borrowed", pool, r.asset),
                                  call("erc20", debt_token, "totalSupply"),
                                  f"totalSupply() of {debt_token}"))
            items.append((("liquidity", pool, r.asset),
                          call("erc20", r.asset, "balanceOf", r.a_token),
                          f"balanceOf({r.a_token}) of {r.asset}"))
    third: dict[Any, Any] = {}
    for key, res in calls.run(items):
        if key[0] == "borrowed":  # variable plus stable debt
            third[key] = third.get(key, 0) + int(res[0])
        else:
            third[key] = res
    meta = {t: (_symbol(third[("symbol", t)], t), int(third[("decimals", t)][0]))
            for t in tokens}
    for pool, rs in reserves.items():
        for r in rs:
            r.supplied = int(third[("supplied", pool, r.asset)][0])
            r.borrowed = int(third.get(("borrowed", pool, r.asset), 0))
            r.liquidity = int(third[("liquidity", pool, r.asset)][0])
    prices: dict[str, tuple[float, int, int]] = {}
    for t in tokens:
        if ("round", t) not in third:
            continue
        rnd = third[("round", t)]
        answer = int(rnd[1])
        if answer <= 0:
            raise IngestError(f"feed {cfg.assets[t].feed} for {meta[t][0]} answered {answer} "
                              f"at block {block} (a price must be positive)")
        prices[t] = (to_units(answer, int(third[("feed-decimals", t)][0])), int(rnd[0]),
                     int(rnd[3]))
    # 4. users: configuration bitmaps, then the balances they flag
    items = [(("conf", p.pool, u), call("pool", p.pool, "getUserConfiguration", u),
              f"getUserConfiguration({u}) of pool {p.pool}")
             for p in cfg.lending for u in ck.users.get(p.pool, [])]
    user_conf = dict(calls.run(items))
    items = []
    for p in cfg.lending:
        for u in ck.users.get(p.pool, []):
            bits = int(user_conf[("conf", p.pool, u)][0][0])
            for r in reserves[p.pool]:
                if (bits >> (2 * r.bit + 1)) & 1:
                    items.append((("coll", p.pool, u, r.asset),
                                  call("erc20", r.a_token, "balanceOf", u),
                                  f"balanceOf({u}) of {r.a_token}"))
                if (bits >> (2 * r.bit)) & 1:
                    for debt_token in (r.variable_debt, r.stable_debt):
                        if debt_token != _ZERO:
                            items.append((("debt", p.pool, u, r.asset),
                                          call("erc20", debt_token, "balanceOf", u),
                                          f"balanceOf({u}) of {debt_token}"))
    balances: dict[str, dict[str, tuple[dict[str, int], dict[str, int]]]] = {
        p.pool: {u: ({}, {}) for u in ck.users.get(p.pool, [])} for p in cfg.lending}
    for (side, pool, u, a), res in calls.run(items):
        into = balances[pool][u][0 if side == "coll" else 1]
        into[a] = into.get(a, 0) + int(res[0])
    pair_state = {}
    for q in cfg.amm:
        res = first[("getReserves", q.pair)]
        r0, r1 = int(res[0]), int(res[1])
        last = ck.last_sync.get(q.pair)
        if last is not None and last.block <= block <= ck.scanned_to and \
                (last.reserve0, last.reserve1) != (r0, r1):
            raise IngestError(f"pair {q.pair}: getReserves() at block {block} is ({r0}, {r1}) "
                              f"but its last Sync (block {last.block}) said "
                              f"({last.reserve0}, {last.reserve1}): the node is inconsistent")
        pair_state[q.pair] = (*pair_tokens[q.pair], r0, r1)
    return _State(timestamp=timestamp, reserves=reserves, tokens=meta, prices=prices,
                  pairs=pair_state, balances=balances)


# --------------------------------------------------------------------------- map


def _asset_ids(cfg: ChainConfig, state: _State) -> dict[str, str]:
    ids: dict[str, str] = {}
    seen: dict[str, str] = {}
    for t, (symbol, _) in sorted(state.tokens.items()):
        ac = cfg.assets.get(t)
        if ac is None or (ac.feed is None and ac.price is None):
            raise IngestError(f"token {t} ({symbol}) has no price: give it a 'feed' or a "
                              f"'price' under 'assets' in the config", field=f"assets.{t}")
        if ac.feed is not None and ac.price is not None:
            raise IngestError(f"token {t} ({symbol}) has both a 'feed' and a 'price': give one",
                              field=f"assets.{t}")
        aid = ac.id or symbol
        if aid in seen:
            raise IngestError(f"tokens {seen[aid]} and {t} would both be asset {aid!r}: give "
                              f"one an 'id' under 'assets' in the config", field=f"assets.{t}")
        seen[aid] = t
        ids[t] = aid
    return ids


def _snapshot(cfg: ChainConfig, chain_id: int, block: int, state: _State,
              ck: Checkpoint) -> Snapshot:
    ids = _asset_ids(cfg, state)
    rec: dict[str, list[dict[str, Any]]] = {k: [] for k in (
        "protocols", "oracles", "assets", "pools", "accounts", "positions", "pool_collateral",
        "pool_lends", "pool_holdings", "position_collateral", "position_debt")}
    protocols: dict[str, dict[str, Any]] = {}
    for t, aid in ids.items():
        ac = cfg.assets[t]
        symbol, decimals = state.tokens[t]
        if ac.feed is not None:
            oracle, kind, price = f"chainlink:{ac.feed}", OracleKind.FEED, state.prices[t][0]
        else:
            assert ac.price is not None
            oracle, kind, price = f"fixed:{aid}", OracleKind.FIXED, ac.price
        rec["oracles"].append({"id": oracle, "kind": kind})
        rec["assets"].append({"id": aid, "symbol": symbol, "kind": ac.kind, "price": price,
                              "decimals": decimals, "market_depth_usd": ac.market_depth_usd,
                              "issuer": ac.issuer, "pegged_to": ac.pegged_to,
                              "oracle": oracle})
    reserve_params: dict[str, dict[str, Any]] = {}
    for lp in cfg.lending:
        pool_id = f"{lp.protocol}:{lp.pool}"
        protocols.setdefault(lp.protocol, {
            "id": lp.protocol, "name": lp.protocol_name, "kind": ProtocolKind.LENDING,
            "close_factor": lp.close_factor, "full_close_threshold": lp.full_close_threshold,
            "reserve_usd": lp.reserve_usd})
        rec["pools"].append({"id": pool_id, "protocol": lp.protocol, "kind": PoolKind.LENDING})
        params: dict[str, Any] = {}
        for r in state.reserves[lp.pool]:
            aid, dec = ids[r.asset], state.tokens[r.asset][1]
            c = r.conf
            params[aid] = {"address": r.asset, "borrow_cap": c.borrow_cap,
                           "supply_cap": c.supply_cap, "active": c.active, "frozen": c.frozen,
                           "paused": c.paused, "borrowing_enabled": c.borrowing_enabled}
            if c.liquidation_threshold > 0:
                rec["pool_collateral"].append({
                    "pool": pool_id, "asset": aid, "ltv": c.ltv / 10_000,
                    "liquidation_threshold": c.liquidation_threshold / 10_000,
                    "liquidation_bonus": max(0, c.liquidation_bonus - 10_000) / 10_000})
            # a minted reserve (debt without supply, e.g. GHO) is recorded as fully used
            rec["pool_lends"].append({"pool": pool_id, "asset": aid,
                                      "supplied": to_units(max(r.supplied, r.borrowed), dec),
                                      "borrowed": to_units(r.borrowed, dec)})
            rec["pool_holdings"].append({"pool": pool_id, "asset": aid,
                                         "amount": to_units(r.liquidity, dec)})
        reserve_params[pool_id] = params
        accepted = {r.asset for r in state.reserves[lp.pool] if r.conf.liquidation_threshold}
        for user, (coll, debt) in sorted(state.balances[lp.pool].items()):
            coll = {a: v for a, v in coll.items() if v > 0 and a in accepted}
            debt = {a: v for a, v in debt.items() if v > 0}
            if not coll and not debt:
                continue  # closed (or never opened at this block)
            pos = f"{pool_id}/{user}"
            rec["positions"].append({"id": pos, "account": user, "pool": pool_id})
            for table, amounts in (("position_collateral", coll), ("position_debt", debt)):
                for a, v in sorted(amounts.items()):
                    rec[table].append({"position": pos, "asset": ids[a],
                                       "amount": to_units(v, state.tokens[a][1])})
    for pc in cfg.amm:
        pool_id = f"{pc.protocol}:{pc.pair}"
        protocols.setdefault(pc.protocol, {
            "id": pc.protocol, "name": pc.protocol_name, "kind": ProtocolKind.DEX,
            "close_factor": 1.0, "full_close_threshold": 1.0, "reserve_usd": 0.0})
        rec["pools"].append({"id": pool_id, "protocol": pc.protocol, "kind": PoolKind.AMM,
                             "fee": pc.fee})
        t0, t1, r0, r1 = state.pairs[pc.pair]
        for t, raw in ((t0, r0), (t1, r1)):
            rec["pool_holdings"].append({"pool": pool_id, "asset": ids[t],
                                         "amount": to_units(raw, state.tokens[t][1])})
    accounts = sorted({p["account"] for p in rec["positions"]})
    rec["accounts"] = [{"id": a, "kind": AccountKind.USER} for a in accounts]
    rec["protocols"] = list(protocols.values())
    manifest = Manifest(
        name=cfg.name, chain=cfg.chain, block=block,
        as_of=datetime.fromtimestamp(state.timestamp, UTC), source=f"chain:{chain_id}",
        params={"chain_id": chain_id, "start_block": cfg.start_block,
                "confirmations": cfg.confirmations, "reserves": reserve_params,
                "feeds": {ids[t]: {"address": cfg.assets[t].feed, "round_id": p[1],
                                   "updated_at": p[2]} for t, p in sorted(state.prices.items())}},
    )
    return Snapshot.from_records(rec, manifest)

