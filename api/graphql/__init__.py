"""The GraphQL schema (:mod:`api.graphql.schema`): one subpackage per domain (``graph``,
``scenarios``, ``admin``), each with its ``types`` and ``queries`` (and ``mutations``); shared
here are the per-request context, permissions, limits, DataLoaders, pagination and error
handling."""

__all__: list[str] = []
