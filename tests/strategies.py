"""Hypothesis strategies for valid snapshots with arbitrary ids, floats and structure."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from graph.snapshot import Manifest, Snapshot
from graph.vocab import (
    AccountKind,
    AssetKind,
    OptionKind,
    OptionSide,
    OracleKind,
    PoolKind,
    ProtocolKind,
)

__all__ = ["snapshots"]

# Any text but lone surrogates (not representable in UTF-8, so in no file or database).
_text = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=10)


def _amount() -> st.SearchStrategy[float]:
    return st.one_of(st.just(0.0), st.floats(1e-12, 1e15, allow_nan=False),
                     st.floats(0, 1e300, allow_nan=False, allow_infinity=False))


def _pos() -> st.SearchStrategy[float]:
    return st.floats(1e-9, 1e12, allow_nan=False, allow_infinity=False)


@st.composite
def snapshots(draw: st.DrawFn, max_positions: int = 5) -> Snapshot:
    n = {"p": draw(st.integers(1, 3)), "o": draw(st.integers(0, 2)),
         "a": draw(st.integers(1, 4)), "m": draw(st.integers(1, 3)),
         "u": draw(st.integers(0, 3))}
    n["x"] = draw(st.integers(0, max_positions)) if n["u"] else 0
    total = sum(n.values())
    ids = draw(st.lists(_text, min_size=total, max_size=total, unique=True))
    it = iter(ids)
    protos = [next(it) for _ in range(n["p"])]
    oracles = [next(it) for _ in range(n["o"])]
    assets = [next(it) for _ in range(n["a"])]
    pools = [next(it) for _ in range(n["m"])]
    accounts = [next(it) for _ in range(n["u"])]
    positions = [next(it) for _ in range(n["x"])]
    maybe = lambda xs: st.none() | st.sampled_from(xs) if xs else st.none()  # noqa: E731

    rec: dict[str, list[dict[str, Any]]] = {k: [] for k in (
        "protocols", "oracles", "assets", "pools", "accounts", "positions", "pool_collateral",
        "pool_lends", "pool_holdings", "protocol_deposits", "position_collateral",
        "position_debt", "position_options")}
    for p in protos:
        rec["protocols"].append({
            "id": p, "name": draw(_text), "kind": draw(st.sampled_from(list(ProtocolKind))),
            "close_factor": draw(st.floats(1e-6, 1.0)),
            "full_close_threshold": draw(st.floats(0.0, 1.0)), "reserve_usd": draw(_amount())})
    for o in oracles:
        rec["oracles"].append({"id": o, "kind": draw(st.sampled_from(list(OracleKind))),
                               "reads": draw(maybe(pools))})
    for a in assets:
        rec["assets"].append({
            "id": a, "symbol": draw(_text), "kind": draw(st.sampled_from(list(AssetKind))),
            "price": draw(_pos()), "decimals": draw(st.integers(0, 36)),
            "market_depth_usd": draw(_amount()), "issuer": draw(maybe(protos)),
            "pegged_to": draw(maybe([x for x in assets if x != a])),
            "oracle": draw(maybe(oracles))})
    for m in pools:
        rec["pools"].append({
            "id": m, "protocol": draw(st.sampled_from(protos)),
            "kind": draw(st.sampled_from(list(PoolKind))),
            "fee": draw(st.none() | st.floats(0.0, 0.5)),
            "amplification": draw(st.none() | _pos()),
            "maintenance_margin": draw(st.none() | st.floats(1e-6, 1.0)),
            "liquidation_penalty": draw(st.none() | st.floats(0.0, 0.5))})
    accepted: dict[str, list[str]] = {m: [] for m in pools}
    lent: dict[str, list[str]] = {m: [] for m in pools}
    for m in pools:
        for a in draw(st.lists(st.sampled_from(assets), unique=True)):
            lt = draw(st.floats(1e-6, 1.0))
            rec["pool_collateral"].append({
                "pool": m, "asset": a, "ltv": draw(st.floats(0.0, lt)),
                "liquidation_threshold": lt, "liquidation_bonus": draw(st.floats(0.0, 0.5))})
            accepted[m].append(a)
        for a in draw(st.lists(st.sampled_from(assets), unique=True)):
            supplied = draw(_amount())
            rec["pool_lends"].append({"pool": m, "asset": a, "supplied": supplied,
                                      "borrowed": draw(st.floats(0.0, supplied))})
            lent[m].append(a)
        for a in draw(st.lists(st.sampled_from(assets), unique=True)):
            rec["pool_holdings"].append({"pool": m, "asset": a, "amount": draw(_amount())})
    for p in protos:
        for m in draw(st.lists(st.sampled_from(pools), unique=True, max_size=2)):
            rec["protocol_deposits"].append({"protocol": p, "pool": m,
                                             "amount_usd": draw(_amount())})
    for u in accounts:
        rec["accounts"].append({"id": u, "kind": draw(st.sampled_from(list(AccountKind)))})
    for x in positions:
        m = draw(st.sampled_from(pools))
        rec["positions"].append({"id": x, "account": draw(st.sampled_from(accounts)),
                                 "pool": m})
        for a in draw(st.lists(st.sampled_from(accepted[m]), unique=True)
                      if accepted[m] else st.just([])):
            rec["position_collateral"].append({"position": x, "asset": a,
                                               "amount": draw(_amount())})
        for a in draw(st.lists(st.sampled_from(lent[m]), unique=True)
                      if lent[m] else st.just([])):
            rec["position_debt"].append({"position": x, "asset": a, "amount": draw(_amount())})
        legs = draw(st.lists(st.tuples(st.sampled_from(assets),
                                       st.sampled_from(list(OptionKind)), _pos(),
                                       st.integers(0, 2**62)),
                             max_size=3, unique=True))
        for a, kind, strike, expiry in legs:
            rec["position_options"].append({
                "position": x, "asset": a, "kind": kind,
                "side": draw(st.sampled_from(list(OptionSide))), "strike": strike,
                "expiry": expiry, "size": draw(_pos()),
                "implied_vol": draw(st.none() | st.floats(1e-3, 10.0))})
    manifest = Manifest(name=draw(_text), block=draw(st.none() | st.integers(0, 2**40)),
                        source="hypothesis")
    return Snapshot.from_records(rec, manifest)
