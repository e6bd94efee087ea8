"""Sources → :class:`~graph.snapshot.Snapshot`: the chain (web3) and files.

- :func:`ingest_chain` reads Aave-v3-style lending pools, Uniswap-v2-style pairs, Chainlink-
  style feeds and ERC-20 tokens at one block through a JSON-RPC endpoint, continuing its event
  scan from a checkpoint (:mod:`ingest.chain`, configured by :class:`ChainConfig`).
- :func:`ingest_files` reads a snapshot directory, CSV or Parquet tables of markets and
  positions, Aave v3 subgraph JSON, a price history and an options chain (:mod:`ingest.files`).
- :func:`ingest.generate.generate_ecosystem` generates a seeded synthetic ecosystem.

Either result is written with :meth:`graph.store.GraphStore.write_snapshot`, which applies
only the difference, so re-ingesting the same source changes nothing. Bad input raises
:class:`~graph.errors.IngestError` naming the file, row and field before anything is written.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from graph.errors import IngestError

if TYPE_CHECKING:
    from ingest.chain import ChainResult, ingest_chain
    from ingest.config import ChainConfig, load_chain_config
    from ingest.files import ingest_files, read_price_history

__all__ = ["ChainConfig", "ChainResult", "IngestError", "ingest_chain", "ingest_files",
           "load_chain_config", "read_price_history"]


def __getattr__(name: str) -> Any:
    """The sources load on first use, so that importing one (the generator, say) does not
    import web3 (about a second)."""
    if name in ("ChainResult", "ingest_chain"):
        from ingest import chain as module
    elif name in ("ChainConfig", "load_chain_config"):
        from ingest import config as module  # type: ignore[no-redef]
    elif name in ("ingest_files", "read_price_history"):
        from ingest import files as module  # type: ignore[no-redef]
    else:
        raise AttributeError(f"module 'ingest' has no attribute {name!r}")
    value = getattr(module, name)
    globals()[name] = value
    return value
