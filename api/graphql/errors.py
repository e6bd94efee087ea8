"""What clients see of errors, and what the server log keeps.

Expected errors (bad input, unknown nodes, permissions, limits, store timeouts) are raised as
``GraphQLError`` with an ``extensions.code`` and reach the client as they are. Anything else
is a fault of the server: the client gets ``internal error (request id …)`` with
``extensions.code = INTERNAL_ERROR`` and no detail, and the log gets the exception with its
traceback under the same request id.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from graphql import GraphQLError
from strawberry.extensions import MaskErrors, SchemaExtension
from strawberry.types import ExecutionContext

__all__ = ["ContagionSchemaMixin", "MaskInternalErrors", "RequestInfo", "is_internal", "log"]

log = logging.getLogger("contagion.api")


def is_internal(error: GraphQLError) -> bool:
    """Whether ``error`` comes from an exception no code path raised on purpose."""
    return error.original_error is not None and not isinstance(error.original_error,
                                                               GraphQLError)


def _request_id(ec: ExecutionContext | None) -> str:
    return str(getattr(getattr(ec, "context", None), "request_id", "-"))


class MaskInternalErrors(MaskErrors):
    """Replace internal errors by a message that names the request id only."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=is_internal, error_message="internal error")

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        rid = _request_id(self.execution_context)
        return GraphQLError(f"internal error (request id {rid}); the server log has the details",
                            nodes=error.nodes, source=error.source, positions=error.positions,
                            path=error.path, extensions={"code": "INTERNAL_ERROR"})


class RequestInfo(SchemaExtension):
    """Adds ``requestId``, ``storeCalls`` (store queries this operation made) and ``cost``
    to every result's ``extensions``."""

    def on_operation(self) -> Iterator[None]:
        yield

    def get_results(self) -> dict[str, Any]:
        ctx = self.execution_context.context
        return {"requestId": getattr(ctx, "request_id", None),
                "storeCalls": getattr(getattr(ctx, "gateway", None), "calls", 0),
                "cost": getattr(ctx, "cost", 0)}


class ContagionSchemaMixin:
    """Logs each error once, with the request id: internal ones with their traceback."""

    def process_errors(self, errors: list[GraphQLError],
                       execution_context: ExecutionContext | None = None) -> None:
        rid = _request_id(execution_context)
        for e in errors:
            if is_internal(e):
                log.error("request %s: internal error at %s: %s", rid,
                          ".".join(map(str, e.path or [])) or "-", e.message,
                          exc_info=e.original_error)
            else:
                log.info("request %s: %s", rid, e.message)
