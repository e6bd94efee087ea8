"""The settings of the GraphQL server: limits, timeouts and CORS, each with its default.

The defaults are what ``contagion serve`` runs with unless a flag says otherwise; the README's
*GraphQL API* section lists them.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from graph.store.base import MAX_LIST_LIMIT
from simulate.pipeline import PriceHistory

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
    - ``cors_origins``: origins a browser may call the API from (none by default);
    - ``runs_dir``: where scenario runs are kept (:mod:`api.runs`);
      ``max_concurrent_runs``: runs executing at once (each in a worker process; the others
      wait, first in first out); ``max_run_paths``: the most Monte Carlo paths one run may ask
      for;
    - ``prices``: ``ASSET=FILE`` daily price histories the market model of Monte Carlo runs
      is fitted on (the last ``history_days`` days); without them Monte Carlo scenarios are
      refused;
    - ``workers``: processes serving the API (``contagion serve --workers``); with more than
      one, scenario runs are listed but not launched, cancelled or watched (:mod:`api.runs`);
    - ``ingest_root``: the directory the admin-only ``ingest`` mutation may read files from
      (None: ingest through the API is disabled);
    - ``model_path``: the fragility model explanations and ``rescore`` use (None: the
      shipped default).
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
    runs_dir: Path = Path("contagion-runs")
    max_concurrent_runs: int = Field(default=1, ge=1, le=64)
    max_run_paths: int = Field(default=100_000, ge=1, le=100_000_000)
    prices: tuple[PriceHistory, ...] = ()
    history_days: int = Field(default=1460, ge=30)
    ingest_root: Path | None = None
    model_path: Path | None = None
    workers: int = Field(default=1, ge=1, le=64)

    @model_validator(mode="after")
    def _pages(self) -> ApiSettings:
        if self.default_page_size > self.max_page_size:
            raise ValueError(f"default_page_size must be <= max_page_size {self.max_page_size} "
                             f"(got {self.default_page_size})")
        for h in self.prices:
            if not h.path.is_file():
                raise ValueError(f"prices must be ASSET=FILE with an existing file "
                                 f"(got {h.asset}={h.path})")
        return self
