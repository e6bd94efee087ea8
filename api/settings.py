"""The settings of the GraphQL server: limits, timeouts and CORS, each with its default.

The defaults are what ``contagion serve`` runs with unless a flag says otherwise; the README's
*GraphQL API* section lists them.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from graph.store.base import MAX_LIST_LIMIT

__all__ = ["ApiSettings"]


class ApiSettings(BaseModel):
    """Limits and tunables of one server.

    - ``max_depth``: deepest field nesting of an operation;
    - ``max_aliases``: aliased fields in a document;
    - ``max_tokens``: lexical tokens of a document (bounds parsing work);
    - ``max_cost``: the cost of an operation (see :mod:`api.graphql.limits`);
    - ``max_page_size`` / ``default_page_size``: ``first``/``last`` of a connection;
    - ``rate_limit`` / ``rate_burst``: each API key's token bucket (requests per second,
      bucket size);
    - ``store_timeout_s``: seconds one store query may take; ``store_threads``: store queries
      run at once;
    - ``max_body_bytes``: largest request body;
    - ``cors_origins``: origins a browser may call the API from (none by default).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_depth: int = Field(default=10, ge=1)
    max_aliases: int = Field(default=15, ge=0)
    max_tokens: int = Field(default=2000, ge=10)
    max_cost: int = Field(default=5000, ge=1)
    max_page_size: int = Field(default=100, ge=1, lt=MAX_LIST_LIMIT)
    default_page_size: int = Field(default=20, ge=1)
    max_paths: int = Field(default=100, ge=1)
    rate_limit: float = Field(default=50.0, gt=0)
    rate_burst: int = Field(default=100, ge=1)
    store_timeout_s: float = Field(default=5.0, gt=0)
    store_threads: int = Field(default=8, ge=1)
    max_body_bytes: int = Field(default=65_536, ge=1024)
    cors_origins: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _pages(self) -> ApiSettings:
        if self.default_page_size > self.max_page_size:
            raise ValueError(f"default_page_size must be <= max_page_size {self.max_page_size} "
                             f"(got {self.default_page_size})")
        return self
