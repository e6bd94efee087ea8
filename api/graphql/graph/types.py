"""GraphQL types of the graph domain (docs/architecture.md §3), built from the store's node records.

Every node type implements ``Node`` (ids are unique across every kind of node). Related nodes
resolve through the request's DataLoaders (:mod:`api.graphql.loaders`), never one store call
per object. Values come from the store as they are: health factors are computed by the store
(``graph/``), and the API only renders them (an infinite one, without debt, as null).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import strawberry
from strawberry import Private

from api.graphql.context import Info
from api.graphql.pagination import Connection, paginate
from graph.store import Neighbour, NodeFilter, NodeRecord
from graph.vocab import (
    AccountKind,
    AssetKind,
    NodeLabel,
    OptionKind,
    OptionSide,
    OracleKind,
    PoolKind,
    ProtocolKind,
    RelType,
)

__all__ = [
    "Account",
    "Asset",
    "CollateralTerms",
    "ContagionPath",
    "Count",
    "DependencyGraph",
    "Deposit",
    "GraphStats",
    "LendingTerms",
    "Node",
    "OptionLeg",
    "Oracle",
    "Pool",
    "Position",
    "Protocol",
    "Relationship",
    "TokenAmount",
    "load_node",
    "node_from_record",
]

# The vocabulary's enumerations are the schema's enumerations.
for _enum in (ProtocolKind, AssetKind, PoolKind, OracleKind, AccountKind, OptionKind,
              OptionSide, RelType, NodeLabel):
    strawberry.enum(_enum)

N = TypeVar("N")

_POOL_TERMS = (RelType.ACCEPTS_COLLATERAL, RelType.LENDS, RelType.HOLDS)
_LEGS = (RelType.COLLATERAL, RelType.DEBT, RelType.OPTION)


@strawberry.interface(description="A node of the graph; ids are unique across every kind.")
class Node:
    id: strawberry.ID


def node_from_record(record: NodeRecord) -> Node:
    """The GraphQL object of a store record."""
    return _TYPES[NodeLabel(record.label)].from_record(record)


async def load_node(info: Info, label: NodeLabel, node_id: str) -> Any:
    """The node ``node_id`` of ``label`` as its GraphQL object, or None."""
    record = await info.context.loaders.node(label).load(node_id)
    return None if record is None else node_from_record(record)


async def _load_many(info: Info, label: NodeLabel, ids: Sequence[str]) -> list[Any]:
    records = await info.context.loaders.node(label).load_many(list(ids))
    return [node_from_record(r) for r in records if r is not None]


async def _rels(info: Info, node_id: str, rels: tuple[RelType, ...], direction: str = "out"
                ) -> list[Neighbour]:
    return await info.context.loaders.rels(rels, direction).load(node_id)


def _props(n: Neighbour) -> dict[str, Any]:
    return dict(n.properties)


# -- values on relationships ----------------------------------------------------------------


@strawberry.type(description="An amount of an asset, in token units.")
class TokenAmount:
    asset_id: Private[str]
    amount: float

    @strawberry.field
    async def asset(self, info: Info) -> Asset:
        return await load_node(info, NodeLabel.ASSET, self.asset_id)


@strawberry.type(description="An asset a pool accepts as collateral, with its risk parameters "
                             "(ltv <= liquidationThreshold; liquidationBonus 0.05 = 5% extra "
                             "to liquidators).")
class CollateralTerms:
    asset_id: Private[str]
    ltv: float
    liquidation_threshold: float
    liquidation_bonus: float

    @strawberry.field
    async def asset(self, info: Info) -> Asset:
        return await load_node(info, NodeLabel.ASSET, self.asset_id)


@strawberry.type(description="An asset a pool lends: supplied and borrowed totals in token "
                             "units.")
class LendingTerms:
    asset_id: Private[str]
    supplied: float
    borrowed: float

    @strawberry.field
    async def asset(self, info: Info) -> Asset:
        return await load_node(info, NodeLabel.ASSET, self.asset_id)


@strawberry.type(description="Backing or treasury a protocol keeps in another protocol's pool.")
class Deposit:
    pool_id: Private[str]
    amount_usd: float

    @strawberry.field
    async def pool(self, info: Info) -> Pool:
        return await load_node(info, NodeLabel.POOL, self.pool_id)


@strawberry.type(description="A European option leg on an underlying asset; size in units of "
                             "the underlying, impliedVol annualised (null when not given).")
class OptionLeg:
    asset_id: Private[str]
    kind: OptionKind
    side: OptionSide
    strike: float
    expiry: datetime
    size: float
    implied_vol: float | None

    @strawberry.field
    async def asset(self, info: Info) -> Asset:
        return await load_node(info, NodeLabel.ASSET, self.asset_id)


# -- nodes ----------------------------------------------------------------------------------


@strawberry.type(description="A protocol. closeFactor: share of a position's debt one "
                             "liquidation may repay; below health factor fullCloseThreshold it "
                             "may repay all. reserveUsd absorbs bad debt first.")
class Protocol(Node):
    name: str
    kind: ProtocolKind
    close_factor: float
    full_close_threshold: float
    reserve_usd: float

    @classmethod
    def from_record(cls, r: NodeRecord) -> Protocol:
        row = r.row
        return cls(id=strawberry.ID(r.id), name=row["name"], kind=ProtocolKind(row["kind"]),
                   close_factor=row["close_factor"],
                   full_close_threshold=row["full_close_threshold"],
                   reserve_usd=row["reserve_usd"])

    @strawberry.field(description="The pools the protocol operates.")
    async def pools(self, info: Info) -> list[Pool]:
        rels = await _rels(info, self.id, (RelType.OPERATES,))
        return await _load_many(info, NodeLabel.POOL, [n.id for n in rels])

    @strawberry.field(description="Tokens the protocol issues (receipts, LSTs, stablecoins).")
    async def issued_assets(self, info: Info) -> list[Asset]:
        rels = await _rels(info, self.id, (RelType.ISSUED_BY,), "in")
        return await _load_many(info, NodeLabel.ASSET, [n.id for n in rels])

    @strawberry.field(description="What the protocol keeps in other protocols' pools.")
    async def deposits(self, info: Info) -> list[Deposit]:
        rels = await _rels(info, self.id, (RelType.DEPOSITS_IN,))
        return [Deposit(pool_id=n.id, amount_usd=_props(n)["amount_usd"]) for n in rels]


@strawberry.type(description="A token; price in USD, marketDepthUsd the order-book depth within "
                             "2% of mid.")
class Asset(Node):
    symbol: str
    kind: AssetKind
    price: float
    decimals: int
    market_depth_usd: float
    issuer_id: Private[str | None]
    pegged_to_id: Private[str | None]
    oracle_id: Private[str | None]

    @classmethod
    def from_record(cls, r: NodeRecord) -> Asset:
        row = r.row
        return cls(id=strawberry.ID(r.id), symbol=row["symbol"], kind=AssetKind(row["kind"]),
                   price=row["price"], decimals=row["decimals"],
                   market_depth_usd=row["market_depth_usd"], issuer_id=row["issuer"],
                   pegged_to_id=row["pegged_to"], oracle_id=row["oracle"])

    @strawberry.field(description="The protocol that issues it, if any.")
    async def issuer(self, info: Info) -> Protocol | None:
        if self.issuer_id is None:
            return None
        return await load_node(info, NodeLabel.PROTOCOL, self.issuer_id)

    @strawberry.field(description="The asset it is pegged to, if any.")
    async def pegged_to(self, info: Info) -> Asset | None:
        if self.pegged_to_id is None:
            return None
        return await load_node(info, NodeLabel.ASSET, self.pegged_to_id)

    @strawberry.field(description="The oracle that prices it, if any.")
    async def oracle(self, info: Info) -> Oracle | None:
        if self.oracle_id is None:
            return None
        return await load_node(info, NodeLabel.ORACLE, self.oracle_id)


@strawberry.type(description="A lending market, CDP vault type, AMM pool, options margin pool "
                             "or vault, with its risk parameters.")
class Pool(Node):
    kind: PoolKind
    fee: float | None
    amplification: float | None
    maintenance_margin: float | None
    liquidation_penalty: float | None
    protocol_id: Private[str]

    @classmethod
    def from_record(cls, r: NodeRecord) -> Pool:
        row = r.row
        return cls(id=strawberry.ID(r.id), kind=PoolKind(row["kind"]), fee=row["fee"],
                   amplification=row["amplification"],
                   maintenance_margin=row["maintenance_margin"],
                   liquidation_penalty=row["liquidation_penalty"], protocol_id=row["protocol"])

    @strawberry.field(description="The protocol that operates the pool.")
    async def protocol(self, info: Info) -> Protocol:
        return await load_node(info, NodeLabel.PROTOCOL, self.protocol_id)

    @strawberry.field(description="Assets accepted as collateral, with their risk parameters.")
    async def collateral(self, info: Info) -> list[CollateralTerms]:
        return [CollateralTerms(asset_id=n.id, ltv=p["ltv"],
                                liquidation_threshold=p["liquidation_threshold"],
                                liquidation_bonus=p["liquidation_bonus"])
                for n in await _rels(info, self.id, _POOL_TERMS)
                if n.rel == RelType.ACCEPTS_COLLATERAL for p in (_props(n),)]

    @strawberry.field(description="Assets lent (or minted, for a CDP).")
    async def lends(self, info: Info) -> list[LendingTerms]:
        return [LendingTerms(asset_id=n.id, supplied=p["supplied"], borrowed=p["borrowed"])
                for n in await _rels(info, self.id, _POOL_TERMS)
                if n.rel == RelType.LENDS for p in (_props(n),)]

    @strawberry.field(description="Token balances (AMM reserves, staked underlying).")
    async def holdings(self, info: Info) -> list[TokenAmount]:
        return [TokenAmount(asset_id=n.id, amount=_props(n)["amount"])
                for n in await _rels(info, self.id, _POOL_TERMS) if n.rel == RelType.HOLDS]

    @strawberry.field(description="Positions in the pool, by id; healthFactorBelow keeps those "
                                  "with HF < the value, healthFactorAtLeast those with HF >= it.")
    async def positions(self, info: Info, health_factor_below: float | None = None,
                        health_factor_at_least: float | None = None, first: int | None = None,
                        after: str | None = None, last: int | None = None,
                        before: str | None = None) -> Connection[Position]:
        where = NodeFilter(pool=self.id, max_health=health_factor_below,
                           min_health=health_factor_at_least)
        return await paginate(info, NodeLabel.POSITION, where, Position.from_record,
                              first=first, after=after, last=last, before=before)


@strawberry.type(description="A price source; reads is the pool a TWAP or exchange-rate oracle "
                             "reads.")
class Oracle(Node):
    kind: OracleKind
    reads_id: Private[str | None]

    @classmethod
    def from_record(cls, r: NodeRecord) -> Oracle:
        return cls(id=strawberry.ID(r.id), kind=OracleKind(r.row["kind"]),
                   reads_id=r.row["reads"])

    @strawberry.field(description="The pool the oracle reads, if any.")
    async def reads(self, info: Info) -> Pool | None:
        if self.reads_id is None:
            return None
        return await load_node(info, NodeLabel.POOL, self.reads_id)

    @strawberry.field(description="The assets it prices.")
    async def assets(self, info: Info) -> list[Asset]:
        rels = await _rels(info, self.id, (RelType.PRICED_BY,), "in")
        return await _load_many(info, NodeLabel.ASSET, [n.id for n in rels])


@strawberry.type(description="An address holding positions.")
class Account(Node):
    kind: AccountKind

    @classmethod
    def from_record(cls, r: NodeRecord) -> Account:
        return cls(id=strawberry.ID(r.id), kind=AccountKind(r.row["kind"]))

    @strawberry.field(description="The account's positions, by id.")
    async def positions(self, info: Info, first: int | None = None, after: str | None = None,
                        last: int | None = None, before: str | None = None
                        ) -> Connection[Position]:
        return await paginate(info, NodeLabel.POSITION, NodeFilter(account=self.id),
                              Position.from_record, first=first, after=after, last=last,
                              before=before)


@strawberry.type(description="An account's position in one pool: collateral, debt and option "
                             "legs.")
class Position(Node):
    account_id: Private[str]
    pool_id: Private[str]

    @classmethod
    def from_record(cls, r: NodeRecord) -> Position:
        return cls(id=strawberry.ID(r.id), account_id=r.row["account"], pool_id=r.row["pool"])

    @strawberry.field
    async def account(self, info: Info) -> Account:
        return await load_node(info, NodeLabel.ACCOUNT, self.account_id)

    @strawberry.field
    async def pool(self, info: Info) -> Pool:
        return await load_node(info, NodeLabel.POOL, self.pool_id)

    @strawberry.field(description="Σ collateral × price × liquidation threshold / Σ debt × "
                                  "price at the snapshot's prices; null without debt "
                                  "(infinite). Below 1 the position can be liquidated.")
    async def health_factor(self, info: Info) -> float | None:
        hf = await info.context.loaders.health.load(self.id)
        return None if hf is None or math.isinf(hf) else hf

    @strawberry.field
    async def collateral(self, info: Info) -> list[TokenAmount]:
        return [TokenAmount(asset_id=n.id, amount=_props(n)["amount"])
                for n in await _rels(info, self.id, _LEGS) if n.rel == RelType.COLLATERAL]

    @strawberry.field
    async def debt(self, info: Info) -> list[TokenAmount]:
        return [TokenAmount(asset_id=n.id, amount=_props(n)["amount"])
                for n in await _rels(info, self.id, _LEGS) if n.rel == RelType.DEBT]

    @strawberry.field
    async def options(self, info: Info) -> list[OptionLeg]:
        return [OptionLeg(asset_id=n.id, kind=OptionKind(p["kind"]), side=OptionSide(p["side"]),
                          strike=p["strike"],
                          expiry=datetime.fromtimestamp(p["expiry"], tz=UTC), size=p["size"],
                          implied_vol=p.get("implied_vol"))
                for n in await _rels(info, self.id, _LEGS) if n.rel == RelType.OPTION
                for p in (_props(n),)]


_TYPES: dict[NodeLabel, Any] = {
    NodeLabel.PROTOCOL: Protocol, NodeLabel.ASSET: Asset, NodeLabel.POOL: Pool,
    NodeLabel.ORACLE: Oracle, NodeLabel.ACCOUNT: Account, NodeLabel.POSITION: Position,
}


# -- query results --------------------------------------------------------------------------


@strawberry.type(description="A relationship: source depends on target through type.")
class Relationship:
    source: strawberry.ID
    type: RelType
    target: strawberry.ID


@strawberry.type(description="Protocols, pools, assets and oracles and the dependency "
                             "relationships between them.")
class SystemGraph:
    labels: Private[dict[str, str]]
    relationships: list[Relationship]

    @strawberry.field(description="The nodes, by id.")
    async def nodes(self, info: Info) -> list[Node]:
        by_label: dict[str, list[str]] = {}
        for node_id, label in self.labels.items():
            by_label.setdefault(label, []).append(node_id)
        loaded = await asyncio.gather(*(info.context.loaders.node(NodeLabel(lab)).load_many(ids)
                                        for lab, ids in by_label.items()))
        found = {r.id: r for records in loaded for r in records if r is not None}
        return [node_from_record(found[i]) for i in self.labels if i in found]


@strawberry.type(description="What a protocol depends on within depth hops.")
class DependencyGraph(SystemGraph):
    protocol: strawberry.ID
    depth: int


@strawberry.type(description="How a shock at nodes[0] reaches the last node: each node "
                             "depends on the one before through the relationship between them.")
class ContagionPath:
    hops: int
    node_ids: list[strawberry.ID]
    relationships: list[RelType]

    @strawberry.field
    async def nodes(self, info: Info) -> list[Node]:
        records = await info.context.loaders.any_node.load_many(list(self.node_ids))
        return [node_from_record(r) for r in records if r is not None]


@strawberry.type
class Count:
    name: str
    count: int


@strawberry.type(description="Counts per node label and relationship type.")
class GraphStats:
    labels: list[Count]
    relationships: list[Count]
