"""The DataLoaders of one request.

They are created with the request's context and dropped with it, so their caches never serve
one client's data to another or outlive a store write. Each batches every key asked for in
the same tick of the event loop into one store call (:class:`api.gateway.StoreGateway`):

- :meth:`Loaders.node`: node records of one label by id (``GraphStore.nodes``);
- :attr:`Loaders.any_node`: node records of any label by id;
- :meth:`Loaders.rels`: the relationships of given types and direction of each node
  (``GraphStore.relationships``);
- :attr:`Loaders.health`: health factors of positions (``GraphStore.health_factors``).

Because resolvers of one level of a result are resolved together, a page of N positions with
their accounts, pools, protocols, collateral and debt assets and health factors costs the
same number of store calls for any N: one for the page, then one per loader the selection
uses (see the README's *GraphQL API* section and ``tests/api``).
"""

from __future__ import annotations

from collections.abc import Iterable

from strawberry.dataloader import DataLoader

from api.gateway import StoreGateway
from graph.store import Neighbour, NodeRecord
from graph.vocab import NodeLabel, RelType

__all__ = ["Loaders"]

RelKey = tuple[tuple[RelType, ...], str]


class Loaders:
    """Per-request DataLoaders over ``gateway``."""

    def __init__(self, gateway: StoreGateway) -> None:
        self._gateway = gateway
        self._nodes: dict[NodeLabel, DataLoader[str, NodeRecord | None]] = {}
        self._rels: dict[RelKey, DataLoader[str, list[Neighbour]]] = {}
        self.any_node: DataLoader[str, NodeRecord | None] = DataLoader(load_fn=self._any)
        self.health: DataLoader[str, float | None] = DataLoader(load_fn=self._health)

    async def _any(self, ids: list[str]) -> list[NodeRecord | None]:
        found = await self._gateway.nodes(ids)
        return [found.get(i) for i in ids]

    async def _health(self, ids: list[str]) -> list[float | None]:
        found = await self._gateway.health_factors(ids)
        return [found.get(i) for i in ids]

    def node(self, label: NodeLabel) -> DataLoader[str, NodeRecord | None]:
        """Records of nodes with ``label`` by id (None for an id that is not one)."""
        loader = self._nodes.get(label)
        if loader is None:
            gateway = self._gateway

            async def load(ids: list[str]) -> list[NodeRecord | None]:
                found = await gateway.nodes(ids, label)
                return [found.get(i) for i in ids]

            loader = self._nodes[label] = DataLoader(load_fn=load)
        return loader

    def rels(self, rels: tuple[RelType, ...], direction: str = "out"
             ) -> DataLoader[str, list[Neighbour]]:
        """Relationships of types ``rels`` leaving (``out``) or entering (``in``) a node."""
        key = (rels, direction)
        loader = self._rels.get(key)
        if loader is None:
            gateway = self._gateway

            async def load(ids: list[str]) -> list[list[Neighbour]]:
                found = await gateway.relationships(ids, rels, direction)
                return [found.get(i, []) for i in ids]

            loader = self._rels[key] = DataLoader(load_fn=load)
        return loader

    def prime(self, records: Iterable[NodeRecord]) -> None:
        """Cache records a listing returned, so resolving them again costs no store call."""
        for r in records:
            self.node(NodeLabel(r.label)).prime(r.id, r)
            self.any_node.prime(r.id, r)
