"""The progress of an on-chain scan, kept in a JSON file so that a re-run continues.

The checkpoint records, for one configuration (its ``key``: chain id, start block and
contract addresses), the last block whose logs were read (``scanned_to``) with that block's
hash, the users each lending pool's events named up to there, and each pair's latest
``Sync``. It is replaced atomically (written beside, flushed, renamed) after every chunk of
blocks, so a process killed at any point leaves either the previous or the next checkpoint,
never a torn one; the store is written only after the scan, in one transaction.

On a re-run the saved block hash is compared with the chain's: if they differ (a reorg deeper
than the confirmations) or the key differs (another configuration), the scan starts over.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = ["Checkpoint", "SyncState", "config_key"]


class SyncState(BaseModel):
    """The latest ``Sync(reserve0, reserve1)`` of a pair: where it was and what it said."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    block: int
    log_index: int
    reserve0: int
    reserve1: int


class Checkpoint(BaseModel):
    """Scan progress for the configuration identified by ``key``."""

    model_config = ConfigDict(extra="forbid")

    version: int = 1
    key: str
    chain_id: int
    start_block: int
    scanned_to: int  # start_block - 1 until a chunk is read
    scanned_hash: str | None = None
    users: dict[str, list[str]] = Field(default_factory=dict)  # pool address -> users
    last_sync: dict[str, SyncState] = Field(default_factory=dict)  # pair address -> Sync

    @classmethod
    def fresh(cls, key: str, chain_id: int, start_block: int) -> Checkpoint:
        return cls(key=key, chain_id=chain_id, start_block=start_block,
                   scanned_to=start_block - 1)

    @classmethod
    def load(cls, path: Path) -> Checkpoint | None:
        """The checkpoint at ``path``, or None if there is none (or it is unreadable)."""
        try:
            return cls.model_validate(json.loads(path.read_text()))
        except (OSError, ValueError, ValidationError):
            return None

    def save(self, path: Path) -> None:
        """Replace ``path`` atomically with this checkpoint."""
        path.parent.mkdir(parents=True, exist_ok=True)
        doc = self.model_dump(mode="json")
        doc["users"] = {k: sorted(v) for k, v in sorted(doc["users"].items())}
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(doc, f, indent=1, sort_keys=True)
                f.write("\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def config_key(chain_id: int, start_block: int, pools: list[str], pairs: list[str]) -> str:
    """What a checkpoint is valid for: the chain, the first block and the contracts read."""
    doc = json.dumps([chain_id, start_block, sorted(pools), sorted(pairs)])
    return hashlib.sha256(doc.encode()).hexdigest()[:16]
