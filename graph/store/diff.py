"""What writing a snapshot over another changes: added, updated and removed rows per table.

Both stores write by applying the difference between what they hold and the new snapshot, so
that re-writing the same snapshot is a no-op and a later snapshot touches only what changed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from graph.schema import TABLES
from graph.snapshot import Snapshot

__all__ = ["SnapshotDiff", "TableChanges", "diff_snapshots"]


@dataclass(frozen=True)
class TableChanges:
    """Rows of one table to add, to update (new values) and to remove (full old rows)."""

    added: pd.DataFrame
    updated: pd.DataFrame
    removed: pd.DataFrame

    @property
    def empty(self) -> bool:
        return self.added.empty and self.updated.empty and self.removed.empty


@dataclass(frozen=True)
class SnapshotDiff:
    """Changes per table, plus whether the manifest changed."""

    tables: Mapping[str, TableChanges]
    manifest_changed: bool = False
    counts: dict[str, dict[str, int]] = field(init=False)

    def __post_init__(self) -> None:
        counts = {
            k: {n: len(getattr(c, k)) for n, c in self.tables.items()}
            for k in ("added", "updated", "removed")
        }
        object.__setattr__(self, "counts", counts)

    @property
    def empty(self) -> bool:
        return not self.manifest_changed and all(c.empty for c in self.tables.values())


def _same(a: pd.Series, b: pd.Series) -> np.ndarray:
    eq = (a.to_numpy() == b.to_numpy()) | (a.isna().to_numpy() & b.isna().to_numpy())
    return np.asarray(eq, dtype=bool)


def _table_changes(name: str, old: pd.DataFrame, new: pd.DataFrame) -> TableChanges:
    spec = TABLES[name]
    key = list(spec.key)
    if old.empty or new.empty:
        return TableChanges(added=new, updated=new.iloc[:0], removed=old)
    m = old.merge(new, on=key, how="outer", suffixes=("_old", ""), indicator=True, sort=False)
    values = [c for c in spec.column_names if c not in key]
    both = (m["_merge"] == "both").to_numpy()
    changed = np.zeros(len(m), dtype=bool)
    for c in values:
        changed |= ~_same(m[f"{c}_old"], m[c])
    cols = list(spec.column_names)
    new_rows = m.loc[(m["_merge"] == "right_only").to_numpy(), cols]
    upd_rows = m.loc[both & changed, cols]
    gone = m.loc[(m["_merge"] == "left_only").to_numpy(), key + [f"{c}_old" for c in values]]
    gone = gone.rename(columns={f"{c}_old": c for c in values})[cols]
    return TableChanges(
        added=new_rows.reset_index(drop=True),
        updated=upd_rows.reset_index(drop=True),
        removed=gone.reset_index(drop=True),
    )


def diff_snapshots(old: Snapshot, new: Snapshot) -> SnapshotDiff:
    """The changes that turn ``old`` into ``new`` (rows matched by each table's key)."""
    return SnapshotDiff(
        tables={n: _table_changes(n, old[n], new[n]) for n in TABLES},
        manifest_changed=old.manifest != new.manifest,
    )
