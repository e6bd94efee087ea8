"""Mutations of the admin domain: ingesting files into the served store (admin only).

``ingest(path)`` reads a snapshot directory, a directory of input files or one file (as
``contagion ingest files`` does) from under the server's ``ingest_root`` and writes it to the
served store. A path outside the root, a file the reader rejects (named with its row and
field) or a snapshot that does not validate is data (``IngestFailed``); the store is
unchanged then, as every store write is atomic.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import strawberry

from api.gateway import client_error
from api.graphql.admin.types import Ingested, IngestFailed, IngestResult, LabelCount
from api.graphql.context import Info
from api.graphql.permissions import IsAdmin
from graph.errors import IngestError, SnapshotValidationError
from graph.store import GraphStore, WriteSummary

__all__ = ["AdminMutations", "resolve_ingest_path"]


def resolve_ingest_path(root: Path, path: str) -> Path | IngestFailed:
    """``path`` (relative to ``root``) as an absolute path inside ``root``, or why not."""
    base = root.resolve()
    if not path or Path(path).is_absolute():
        return IngestFailed(message=f"path must be relative to the server's ingest root "
                                    f"(got {path!r})", source=None, row=None, field="path")
    full = (base / path).resolve()
    if full != base and base not in full.parents:
        return IngestFailed(message=f"path must stay inside the server's ingest root "
                                    f"(got {path!r})", source=None, row=None, field="path")
    return full


def _counts(d: dict[str, int]) -> list[LabelCount]:
    return [LabelCount(name=k, count=v) for k, v in d.items() if v]


def _ingest(store: GraphStore, full: Path) -> tuple[str, WriteSummary]:
    from ingest import ingest_files

    snapshot = ingest_files(full)
    return snapshot.manifest.name, store.write_snapshot(snapshot)


@strawberry.type
class AdminMutations:
    @strawberry.mutation(permission_classes=[IsAdmin],
                         description="Ingest a snapshot directory, a directory of input files "
                                     "or one file (a path under the server's ingest root) into "
                                     "the served store; needs the admin role. Runs launched "
                                     "afterwards simulate the new snapshot.")
    async def ingest(self, info: Info, path: str) -> IngestResult:
        root = info.context.settings.ingest_root
        if root is None:
            raise client_error("ingest is disabled on this server (start it with "
                               "--ingest-root DIR)", "FORBIDDEN")
        full = resolve_ingest_path(root, path)
        if isinstance(full, IngestFailed):
            return full
        try:
            name, summary = await asyncio.to_thread(_ingest, info.context.gateway.store, full)
            info.context.fragility.invalidate()
        except IngestError as e:
            # names relative to the root: the server's own directories stay its own
            base = f"{root.resolve()}/"
            source = None if e.source is None else e.source.replace(base, "")
            row = None if e.row is None else str(e.row)
            return IngestFailed(message=str(e).replace(base, ""), source=source, row=row,
                                field=e.field)
        except SnapshotValidationError as e:
            return IngestFailed(message=str(e).splitlines()[0], source=None, row=None,
                                field=None)
        return Ingested(snapshot=name, changed=summary.changed, added=_counts(summary.added),
                        updated=_counts(summary.updated), removed=_counts(summary.removed))
