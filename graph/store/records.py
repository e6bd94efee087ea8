"""How snapshot rows become node and relationship properties, shared by both stores."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

from graph.schema import TABLES, TableSpec

__all__ = ["edge_key", "fk_columns", "neighbour_order", "props_records", "rel_key_of"]


def _clean(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    return v


def props_records(df: pd.DataFrame, columns: list[str]) -> Iterator[dict[str, Any]]:
    """Rows of ``df`` as property dicts with null (NaN/None) values left out."""
    if df.empty:
        return
    sub = df[columns]
    arrays = [sub[c].to_numpy(dtype=object) for c in columns]
    nulls = [sub[c].isna().to_numpy() for c in columns]
    for i in range(len(sub)):
        yield {c: _clean(a[i]) for c, a, n in zip(columns, arrays, nulls, strict=True) if not n[i]}


def edge_key(spec: TableSpec, row: dict[str, Any]) -> str:
    """The multigraph key of one relationship: its type, plus its key properties if any."""
    if not spec.rel_key:
        return str(spec.rel)
    return "|".join([str(spec.rel), *(repr(row[k]) for k in spec.rel_key)])


_REL_KEYS = {str(t.rel): t.rel_key for t in TABLES.values() if t.rel is not None}


def rel_key_of(rel: str, props: dict[str, Any]) -> tuple[Any, ...]:
    """The key properties of a relationship of type ``rel`` (for ordering neighbours)."""
    return tuple(props.get(k) for k in _REL_KEYS.get(rel, ()))


def neighbour_order(rel: str, direction: str, other: str, props: dict[str, Any]
                    ) -> tuple[Any, ...]:
    """Sort key of a node's relationships: type, direction, neighbour id, key properties."""
    return (rel, direction, other, *rel_key_of(rel, props))


def fk_columns() -> dict[str, tuple[str, str, bool]]:
    """Relationship type → (node table, column, rel_out) for every foreign-key column."""
    out = {}
    for name, spec in TABLES.items():
        for c in spec.fk_columns():
            out[str(c.rel)] = (name, c.name, c.rel_out)
    return out
