"""The GraphQL schema: one subpackage per domain (``graph``, ``scenarios``, ``admin``), each
with its ``types`` and ``queries`` (and ``mutations``); shared here are the per-request
context, permissions, limits, DataLoaders, pagination and error handling."""

from api.graphql.schema import build_schema, schema_sdl

__all__ = ["build_schema", "schema_sdl"]
