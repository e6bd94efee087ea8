"""Types of the fragility domain."""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

import strawberry

from api.graphql.context import Info
from api.graphql.graph.types import Node, node_from_record
from graph.store import ScoreSet
from graph.vocab import NodeLabel

if TYPE_CHECKING:
    from gnn.explain import Explanation

__all__ = ["FeatureAttribution", "FragilityExplanation", "FragilityNodeType", "FragilityScore",
           "NeighbourAttribution", "ScoreSetInfo", "explanation_type"]


@strawberry.enum(description="The node types the fragility model scores.")
class FragilityNodeType(enum.Enum):
    PROTOCOL = "protocol"
    POOL = "pool"
    ASSET = "asset"
    ACCOUNT = "account"

    @property
    def label(self) -> NodeLabel:
        return NodeLabel(self.value.capitalize())


@strawberry.type(description="A node of the explained node's receptive field: its share of "
                             "the attribution (0 to 1) and signed contribution to the logit.")
class NeighbourAttribution:
    node_id: strawberry.ID
    node_type: str
    hops: int
    weight: float
    contribution: float


@strawberry.type(description="A feature of the explained node: raw value and signed "
                             "attribution to the logit.")
class FeatureAttribution:
    name: str
    value: float
    attribution: float


@strawberry.type(description="Why the model scores a node as it does: its top contributing "
                             "neighbours and features (integrated gradients).")
class FragilityExplanation:
    node_id: strawberry.ID
    node_type: str
    score: float
    method: str
    summary: str
    neighbours: list[NeighbourAttribution]
    features: list[FeatureAttribution]


def explanation_type(ex: Explanation) -> FragilityExplanation:
    return FragilityExplanation(
        node_id=strawberry.ID(ex.node_id), node_type=ex.node_type, score=ex.score,
        method=ex.method, summary=ex.summary(),
        neighbours=[NeighbourAttribution(node_id=strawberry.ID(n.id), node_type=n.type,
                                         hops=n.hops, weight=n.weight,
                                         contribution=n.contribution) for n in ex.neighbours],
        features=[FeatureAttribution(name=f.name, value=f.value, attribution=f.attribution)
                  for f in ex.features])


@strawberry.type(description="A node's fragility score (the model's predicted probability "
                             "that it fails under the label shock family).")
class FragilityScore:
    node_id: strawberry.ID
    node_type: FragilityNodeType
    score: float

    @strawberry.field(description="The node itself.")
    async def node(self, info: Info) -> Node | None:
        record = await info.context.loaders.any_node.load(str(self.node_id))
        return None if record is None else node_from_record(record)


@strawberry.type(description="A set of scores held by the store.")
class ScoreSetInfo:
    name: str
    model: str
    written: str
    count: int

    @staticmethod
    def of(s: ScoreSet) -> ScoreSetInfo:
        return ScoreSetInfo(name=s.name, model=s.model, written=s.written, count=s.count)
