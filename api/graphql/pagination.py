"""Relay-style cursor connections over the store's keyset listings.

A connection lists nodes of one label ordered by id. ``first`` (default
``ApiSettings.default_page_size``) with ``after`` pages forward, ``last`` with ``before``
pages backward; both are capped at ``ApiSettings.max_page_size``. A cursor is opaque (the
label and id, base64url-encoded) and pages are keyset pages: a page asks the store for one
node more than it shows, to tell whether another page follows, and a node added or removed
between two requests never shifts the pages around it. ``hasNextPage`` is exact when paging
forward and ``hasPreviousPage`` when paging backward; the other is false, as the Relay
specification allows when it cannot be known at no cost.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Generic, TypeVar

import strawberry

from api.gateway import client_error
from api.graphql.context import Info
from graph.store import NodeFilter, NodeRecord
from graph.vocab import NodeLabel

__all__ = ["Connection", "Edge", "PageInfo", "decode_cursor", "encode_cursor", "paginate"]

T = TypeVar("T")


@strawberry.type(description="Where a page sits in its connection.")
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type(description="A node of a page and the cursor that points at it.")
class Edge(Generic[T]):
    cursor: str
    node: T


@strawberry.type(description="One page of a listing ordered by id.")
class Connection(Generic[T]):
    edges: list[Edge[T]]
    page_info: PageInfo


def encode_cursor(label: str, node_id: str) -> str:
    return base64.urlsafe_b64encode(f"{label}:{node_id}".encode()).decode("ascii")


def decode_cursor(name: str, cursor: str, label: str) -> str:
    """The node id in ``cursor`` (argument ``name``), which must come from a ``label``
    connection."""
    shown = cursor if len(cursor) <= 40 else cursor[:40] + "..."
    try:
        text = base64.urlsafe_b64decode(cursor.encode("ascii")).decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError):
        raise client_error(f"'{name}' must be a cursor returned by this connection "
                           f"(got {shown!r})", "BAD_USER_INPUT") from None
    kind, sep, node_id = text.partition(":")
    if not sep or kind not in set(NodeLabel):
        raise client_error(f"'{name}' must be a cursor returned by this connection "
                           f"(got {shown!r})", "BAD_USER_INPUT")
    if kind != label:
        raise client_error(f"'{name}' must be a cursor of a {label} connection "
                           f"(got a {kind} cursor)", "BAD_USER_INPUT")
    return node_id


async def paginate(info: Info, label: NodeLabel, where: NodeFilter, make: Callable[[NodeRecord], T],
                   *, first: int | None, after: str | None, last: int | None,
                   before: str | None) -> Connection[T]:
    """One page of the ``label`` nodes matching ``where``, each turned into its GraphQL type
    by ``make``."""
    settings = info.context.settings
    if first is not None and last is not None:
        raise client_error("pass 'first' (forward) or 'last' (backward), not both",
                           "BAD_USER_INPUT")
    for name, n in (("first", first), ("last", last)):
        if n is not None and not 0 <= n <= settings.max_page_size:
            raise client_error(f"'{name}' must be between 0 and {settings.max_page_size} "
                               f"(got {n})", "BAD_USER_INPUT")
    after_id = None if after is None else decode_cursor("after", after, label)
    before_id = None if before is None else decode_cursor("before", before, label)
    backward = last is not None
    size = last if last is not None else (
        first if first is not None else settings.default_page_size)
    records = await info.context.gateway.list_nodes(
        label, where=where, after=after_id, before=before_id, limit=size + 1,
        descending=backward)
    more = len(records) > size
    records = records[:size]
    if backward:
        records.reverse()
    info.context.loaders.prime(records)
    edges = [Edge(cursor=encode_cursor(label, r.id), node=make(r)) for r in records]
    return Connection(edges=edges, page_info=PageInfo(
        has_next_page=more and not backward, has_previous_page=more and backward,
        start_cursor=edges[0].cursor if edges else None,
        end_cursor=edges[-1].cursor if edges else None))
