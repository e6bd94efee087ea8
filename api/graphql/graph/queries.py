"""Root query fields of the graph domain."""

from __future__ import annotations

from typing import Annotated

import strawberry

from api.gateway import client_error
from api.graphql.context import Info
from api.graphql.graph.types import (
    Account,
    Asset,
    ContagionPath,
    Count,
    DependencyGraph,
    GraphStats,
    Node,
    Oracle,
    Pool,
    Position,
    Protocol,
    Relationship,
    SystemGraph,
    node_from_record,
)
from api.graphql.pagination import Connection, paginate
from graph.store import NodeFilter, Subgraph
from graph.vocab import (
    AccountKind,
    AssetKind,
    NodeLabel,
    OracleKind,
    PoolKind,
    ProtocolKind,
    RelType,
)

__all__ = ["GraphQueries"]


def _relationships(sub: Subgraph) -> list[Relationship]:
    return [Relationship(source=strawberry.ID(s), type=RelType(t), target=strawberry.ID(d))
            for s, t, d in sub.relationships]

First = Annotated[int | None, strawberry.argument(
    description="Page forward: at most this many nodes (default and cap: see the API docs).")]
After = Annotated[str | None, strawberry.argument(
    description="Page forward from this cursor (endCursor of the previous page).")]
Last = Annotated[int | None, strawberry.argument(
    description="Page backward: at most this many nodes, the last ones before 'before'.")]
Before = Annotated[str | None, strawberry.argument(
    description="Page backward from this cursor (startCursor of the next page).")]
HealthBelow = Annotated[float | None, strawberry.argument(
    description="Only positions with health factor < this (1.0: liquidatable now).")]
HealthAtLeast = Annotated[float | None, strawberry.argument(
    description="Only positions with health factor >= this (no debt counts as infinite).")]


def _value(kind: object) -> str | None:
    return None if kind is None else str(kind)


@strawberry.type
class GraphQueries:
    @strawberry.field(description="Protocols by id.")
    async def protocols(self, info: Info, kind: ProtocolKind | None = None,
                        first: First = None, after: After = None, last: Last = None,
                        before: Before = None) -> Connection[Protocol]:
        return await paginate(info, NodeLabel.PROTOCOL, NodeFilter(kind=_value(kind)),
                              Protocol.from_record, first=first, after=after, last=last,
                              before=before)

    @strawberry.field(description="Pools by id; protocol: operated by it; asset: accepting it "
                                  "as collateral or lending it.")
    async def pools(self, info: Info, protocol: strawberry.ID | None = None,
                    kind: PoolKind | None = None, asset: strawberry.ID | None = None,
                    first: First = None, after: After = None, last: Last = None,
                    before: Before = None) -> Connection[Pool]:
        where = NodeFilter(kind=_value(kind), protocol=protocol, asset=asset)
        return await paginate(info, NodeLabel.POOL, where, Pool.from_record, first=first,
                              after=after, last=last, before=before)

    @strawberry.field(description="Assets by id; issuer: issued by that protocol.")
    async def assets(self, info: Info, kind: AssetKind | None = None,
                     issuer: strawberry.ID | None = None, first: First = None,
                     after: After = None, last: Last = None, before: Before = None
                     ) -> Connection[Asset]:
        where = NodeFilter(kind=_value(kind), protocol=issuer)
        return await paginate(info, NodeLabel.ASSET, where, Asset.from_record, first=first,
                              after=after, last=last, before=before)

    @strawberry.field(description="Oracles by id; reads: reading that pool.")
    async def oracles(self, info: Info, kind: OracleKind | None = None,
                      reads: strawberry.ID | None = None, first: First = None,
                      after: After = None, last: Last = None, before: Before = None
                      ) -> Connection[Oracle]:
        where = NodeFilter(kind=_value(kind), pool=reads)
        return await paginate(info, NodeLabel.ORACLE, where, Oracle.from_record, first=first,
                              after=after, last=last, before=before)

    @strawberry.field(description="Accounts by id.")
    async def accounts(self, info: Info, kind: AccountKind | None = None, first: First = None,
                       after: After = None, last: Last = None, before: Before = None
                       ) -> Connection[Account]:
        return await paginate(info, NodeLabel.ACCOUNT, NodeFilter(kind=_value(kind)),
                              Account.from_record, first=first, after=after, last=last,
                              before=before)

    @strawberry.field(description="Positions by id; pool: in it; protocol: in a pool it "
                                  "operates; account: owned by it; asset: holding it as "
                                  "collateral or owing it; and by health factor.")
    async def positions(self, info: Info, pool: strawberry.ID | None = None,
                        protocol: strawberry.ID | None = None,
                        account: strawberry.ID | None = None,
                        asset: strawberry.ID | None = None,
                        health_factor_below: HealthBelow = None,
                        health_factor_at_least: HealthAtLeast = None, first: First = None,
                        after: After = None, last: Last = None, before: Before = None
                        ) -> Connection[Position]:
        where = NodeFilter(pool=pool, protocol=protocol, account=account, asset=asset,
                           max_health=health_factor_below, min_health=health_factor_at_least)
        return await paginate(info, NodeLabel.POSITION, where, Position.from_record,
                              first=first, after=after, last=last, before=before)

    @strawberry.field(description="The node with this id, of any kind; null if there is none.")
    async def node(self, info: Info, id: strawberry.ID) -> Node | None:
        record = await info.context.loaders.any_node.load(id)
        return None if record is None else node_from_record(record)

    @strawberry.field(description="The nodes with these ids, in order; null where there is none "
                                  "(at most the page-size cap of ids).")
    async def nodes(self, info: Info, ids: list[strawberry.ID]) -> list[Node | None]:
        cap = info.context.settings.max_page_size
        if len(ids) > cap:
            raise client_error(f"'ids' may hold at most {cap} ids (got {len(ids)})",
                               "BAD_USER_INPUT")
        records = await info.context.loaders.any_node.load_many(list(ids))
        return [None if r is None else node_from_record(r) for r in records]

    @strawberry.field(description="What a protocol depends on within depth hops (0 to 8) along "
                                  "the dependency relationships (never positions or accounts).")
    async def dependencies(self, info: Info, protocol: strawberry.ID, depth: int = 2
                           ) -> DependencyGraph:
        sub = await info.context.gateway.dependencies(protocol, depth)
        return DependencyGraph(protocol=protocol, depth=depth, labels=sub.nodes,
                               relationships=_relationships(sub))

    @strawberry.field(description="The dependency layer of the whole system: every protocol, "
                                  "pool, asset and oracle a protocol depends on, and the "
                                  "dependency relationships between them (positions and "
                                  "accounts aggregated away).")
    async def system_graph(self, info: Info) -> SystemGraph:
        sub = await info.context.gateway.system_graph()
        return SystemGraph(labels=sub.nodes, relationships=_relationships(sub))

    @strawberry.field(description="Paths by which a shock at 'from' reaches 'to' within maxHops "
                                  "(1 to 8) relationships, shortest first; at most limit.")
    async def contagion_paths(
        self, info: Info,
        source: Annotated[strawberry.ID, strawberry.argument(name="from")],
        target: Annotated[strawberry.ID, strawberry.argument(name="to")],
        max_hops: int = 4, limit: int = 20,
    ) -> list[ContagionPath]:
        cap = info.context.settings.max_paths
        if not 1 <= limit <= cap:
            raise client_error(f"'limit' must be between 1 and {cap} (got {limit})",
                               "BAD_USER_INPUT")
        paths = await info.context.gateway.contagion_paths(source, target, max_hops, limit)
        return [ContagionPath(hops=p.hops, node_ids=[strawberry.ID(n) for n in p.nodes],
                              relationships=[RelType(r) for r in p.rels]) for p in paths]

    @strawberry.field(description="Counts per node label and relationship type.")
    async def stats(self, info: Info) -> GraphStats:
        st = await info.context.gateway.stats()
        return GraphStats(labels=[Count(name=k, count=v) for k, v in st.labels.items()],
                          relationships=[Count(name=k, count=v)
                                         for k, v in st.relationships.items()])
