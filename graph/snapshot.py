"""The validated ecosystem snapshot and its on-disk format.

A :class:`Snapshot` is the ecosystem at one block or time: the tables of :mod:`graph.schema`
held as pandas DataFrames in a canonical form (canonical column dtypes, rows sorted by key), so
that two snapshots with the same content compare equal and serialise to the same bytes. Tables
are columnar rather than lists of objects because snapshots reach millions of positions; the
checks are vectorised and still name the record, the field and the value of every problem.

On disk a snapshot is a directory::

    manifest.json          schema version, name, chain, block, as-of time, source, parameters,
                           and the row count of every table
    protocols.parquet      one Parquet file per table of graph.schema.TABLES, with the columns
    assets.parquet         and types listed there (strings, float64, int64; null = missing)
    ...

Writing goes to a staging directory beside the target which is then swapped in, so a reader
never sees a half-written snapshot.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field, field_validator

from graph.errors import Problem, SnapshotFormatError, SnapshotValidationError
from graph.schema import NODE_TABLES, SCHEMA_VERSION, TABLES, Column, TableSpec

__all__ = ["STR_DTYPE", "Manifest", "Snapshot", "validate_tables"]

STR_DTYPE = pd.StringDtype(storage="pyarrow", na_value=np.nan)
_ARROW_TYPES = {"str": pa.string(), "float": pa.float64(), "int": pa.int64()}


class Manifest(BaseModel):
    """What a snapshot is: which ecosystem, at which block and time, from which source."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: int = SCHEMA_VERSION
    name: str = "snapshot"
    chain: str = "ethereum"
    block: int | None = Field(default=None, ge=0)
    as_of: datetime = datetime(2023, 9, 1, tzinfo=UTC)
    source: str = "manual"
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("as_of")
    @classmethod
    def _utc(cls, v: datetime) -> datetime:
        if v.tzinfo is None:
            raise ValueError("'as_of' must carry a time zone (got a naive datetime)")
        return v.astimezone(UTC)


# --------------------------------------------------------------------------- normalisation


def _record_labels(spec: TableSpec, df: pd.DataFrame) -> pd.Series:
    """A readable key per row: ``WETH`` for node tables, ``aave-v3:main/WETH`` for edges."""
    parts = [df[k].astype(object).where(df[k].notna(), "?").astype(str) for k in spec.key]
    out = parts[0]
    for p in parts[1:]:
        out = out + "/" + p
    return out


def _isin(s: pd.Series, values: pd.Index) -> np.ndarray:
    """``s.isin(values)`` through Arrow (pandas converts Arrow strings to objects for isin)."""
    arr = pa.array(s.astype(STR_DTYPE).array) if s.dtype != STR_DTYPE else pa.array(s.array)
    vals = pa.array(pd.Series(values, dtype=STR_DTYPE).array)
    return np.asarray(pc.is_in(arr, value_set=vals).to_numpy(zero_copy_only=False), dtype=bool)


def _fmt(value: object) -> str:
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, float | np.floating):
        return repr(float(value))
    return str(value)


def _coerce(spec: TableSpec, raw: pd.DataFrame, problems: list[Problem]) -> pd.DataFrame:
    """Canonical dtypes and column order; type errors become problems (the row becomes null)."""
    unknown = [c for c in raw.columns if c not in spec.column_names]
    # an optional column may be absent (null throughout): snapshots written before it existed
    missing = [c.name for c in spec.columns if c.required and c.name not in raw.columns]
    if any(c not in raw.columns for c in spec.column_names) and not (unknown or missing):
        raw = raw.reindex(columns=list(spec.column_names))
    if unknown or missing:
        detail = []
        if missing:
            detail.append(f"missing columns {missing}")
        if unknown:
            detail.append(f"unknown columns {unknown}")
        problems.append(
            Problem(spec.name, "(table)", ",".join(missing + unknown),
                    f"expected columns {list(spec.column_names)}: " + "; ".join(detail))
        )
        raw = raw.reindex(columns=list(spec.column_names))
    df = raw.loc[:, list(spec.column_names)].reset_index(drop=True)
    out: dict[str, pd.Series] = {}
    labels: pd.Series | None = None
    conv: pd.Series
    for col in spec.columns:
        s = df[col.name]
        if col.dtype == "str":
            if isinstance(s.dtype, pd.StringDtype):
                out[col.name] = s.astype(STR_DTYPE)
                continue
            bad = s.notna() & ~s.map(lambda v: isinstance(v, str), na_action="ignore").astype(bool)
            conv = s.where(~bad, np.nan).astype(STR_DTYPE)
        else:
            if col.dtype == "float" and s.dtype == np.float64:
                out[col.name] = s
                continue
            if col.dtype == "int" and s.dtype == np.int64:
                out[col.name] = s
                continue
            num = pd.to_numeric(s.astype(object), errors="coerce")
            bad = s.notna() & num.isna()
            if col.dtype == "int":
                frac = num.notna() & (num != np.floor(num.fillna(0)))
                bad |= frac
                num = num.where(~frac)
            conv = num.astype("float64")
        if bad.any():
            labels = _record_labels(spec, df) if labels is None else labels
            kind = {"str": "a string", "float": "a number", "int": "an integer"}[col.dtype]
            for i in np.flatnonzero(bad.to_numpy()):
                problems.append(Problem(spec.name, labels.iloc[i], col.name,
                                        f"'{col.name}' must be {kind} (got {_fmt(s.iloc[i])})"))
        out[col.name] = conv
    res = pd.DataFrame(out)
    for col in spec.columns:
        if col.dtype == "int":
            c = res[col.name]
            res[col.name] = c.astype("int64") if c.notna().all() else c
    return res


def _canonical(spec: TableSpec, df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values(list(spec.key), kind="stable", ignore_index=True)


# --------------------------------------------------------------------------- validation


class _Labels(dict[str, pd.Series]):
    """Record labels per table, computed only for tables that have a problem to report."""

    def __init__(self, tables: Mapping[str, pd.DataFrame]) -> None:
        super().__init__()
        self.tables = tables

    def __missing__(self, name: str) -> pd.Series:
        self[name] = _record_labels(TABLES[name], self.tables[name])
        return self[name]


def _column_problems(spec: TableSpec, col: Column, df: pd.DataFrame, all_labels: _Labels,
                     ids: Mapping[str, pd.Index]) -> Iterable[Problem]:
    s = df[col.name]
    labels = _LazySeries(all_labels, spec.name)
    null = s.isna()
    if col.dtype == "float":
        arr = s.to_numpy(dtype=np.float64, na_value=np.nan)
        nonfinite = ~np.isfinite(arr)
        # For required floats NaN is a problem of its own; for optional floats NaN means null.
        for i in np.flatnonzero(np.isinf(arr)):
            yield Problem(spec.name, labels.iloc[i], col.name,
                          f"'{col.name}' must be a finite number (got {_fmt(arr[i])})")
        if col.required:
            for i in np.flatnonzero(np.isnan(arr)):
                yield Problem(spec.name, labels.iloc[i], col.name,
                              f"'{col.name}' is required and must be a finite number (got nan)")
        null = pd.Series(np.isnan(arr), index=s.index)
        checkable = ~nonfinite
    else:
        if col.required:
            for i in np.flatnonzero(null.to_numpy()):
                yield Problem(spec.name, labels.iloc[i], col.name,
                              f"'{col.name}' is required (got null)")
        checkable = ~null.to_numpy()
    if col.low is not None or col.high is not None:
        arr = s.to_numpy(dtype=np.float64, na_value=np.nan)
        bad = np.zeros(len(arr), dtype=bool)
        with np.errstate(invalid="ignore"):
            if col.low is not None:
                bad |= (arr <= col.low) if col.low_open else (arr < col.low)
            if col.high is not None:
                bad |= (arr >= col.high) if col.high_open else (arr > col.high)
        for i in np.flatnonzero(bad & checkable):
            v = s.iloc[i]
            yield Problem(spec.name, labels.iloc[i], col.name,
                          f"'{col.name}' must be {col.range_text()} (got {_fmt(v)})")
    if col.choices is not None:
        allowed = [c.value for c in col.choices]
        bad = checkable & ~_isin(s, pd.Index(allowed))
        for i in np.flatnonzero(bad):
            yield Problem(spec.name, labels.iloc[i], col.name,
                          f"'{col.name}' must be one of {', '.join(allowed)} "
                          f"(got {_fmt(s.iloc[i])})")
    if col.ref is not None:
        bad = checkable & ~_isin(s, ids[col.ref])
        noun = col.ref.removesuffix("s")
        for i in np.flatnonzero(bad):
            yield Problem(spec.name, labels.iloc[i], col.name,
                          f"'{col.name}' refers to unknown {noun} {_fmt(s.iloc[i])}")


class _LazySeries:
    """``labels.iloc[i]`` of one table without computing the labels unless asked."""

    def __init__(self, labels: _Labels, name: str) -> None:
        self.labels, self.name = labels, name

    @property
    def iloc(self) -> Any:
        return self.labels[self.name].iloc


def _row_rules(tables: Mapping[str, pd.DataFrame], labels: _Labels) -> Iterable[Problem]:
    pc = tables["pool_collateral"]
    for i in np.flatnonzero((pc["ltv"] > pc["liquidation_threshold"]).to_numpy()):
        yield Problem("pool_collateral", labels["pool_collateral"].iloc[i], "ltv",
                      f"'ltv' must be <= 'liquidation_threshold' "
                      f"({_fmt(pc['liquidation_threshold'].iloc[i])}) "
                      f"(got {_fmt(pc['ltv'].iloc[i])})")
    pl = tables["pool_lends"]
    for i in np.flatnonzero((pl["borrowed"] > pl["supplied"]).to_numpy()):
        yield Problem("pool_lends", labels["pool_lends"].iloc[i], "borrowed",
                      f"'borrowed' must be <= 'supplied' ({_fmt(pl['supplied'].iloc[i])}) "
                      f"(got {_fmt(pl['borrowed'].iloc[i])})")
    # A position's collateral must be accepted, and its debt lent, by the position's pool.
    pos_pool = tables["positions"].set_index("id")["pool"]
    for name, allowed, verb in (
        ("position_collateral", pc, "accepted as collateral"),
        ("position_debt", pl, "lent"),
    ):
        t = tables[name]
        if t.empty:
            continue
        pool = t["position"].map(pos_pool)
        pairs = pd.MultiIndex.from_frame(pd.DataFrame({"pool": pool, "asset": t["asset"]}))
        ok = pairs.isin(pd.MultiIndex.from_frame(allowed[["pool", "asset"]])) | pool.isna()
        for i in np.flatnonzero(~np.asarray(ok)):
            yield Problem(name, labels[name].iloc[i], "asset",
                          f"'asset' {_fmt(t['asset'].iloc[i])} is not {verb} by the "
                          f"position's pool {_fmt(pool.iloc[i])}")


def validate_tables(tables: Mapping[str, pd.DataFrame]) -> list[Problem]:
    """Every rule broken by canonical ``tables`` (see :class:`Snapshot` for the rules)."""
    problems: list[Problem] = []
    labels = _Labels(tables)
    # Node ids are unique across all node tables: a relationship endpoint is just an id.
    ids: dict[str, pd.Index] = {}
    for name in NODE_TABLES:
        col = tables[name]["id"]
        ids[name] = pd.Index(col.dropna())
        dup = col.duplicated(keep="first") & col.notna()
        for i in np.flatnonzero(dup.to_numpy()):
            problems.append(Problem(name, labels[name].iloc[i], "id",
                                    f"duplicate 'id' {_fmt(col.iloc[i])}"))
    every = pd.DataFrame({
        "id": pd.concat([tables[n]["id"] for n in NODE_TABLES], ignore_index=True),
        "table": np.repeat(NODE_TABLES, [len(tables[n]) for n in NODE_TABLES]),
    }).dropna().drop_duplicates()
    first = every.drop_duplicates("id", keep="first").set_index("id")["table"]
    for v, name in every.loc[every["id"].duplicated(keep="first")].itertuples(index=False):
        problems.append(Problem(name, v, "id", f"'id' {_fmt(v)} is already the id of "
                                f"a record in {first[v]}"))
    for name, spec in TABLES.items():
        df = tables[name]
        for column in spec.columns:
            problems.extend(_column_problems(spec, column, df, labels, ids))
        if not spec.is_node:
            dup = df.duplicated(list(spec.key), keep="first")
            for i in np.flatnonzero(dup.to_numpy()):
                problems.append(Problem(name, labels[name].iloc[i], ",".join(spec.key),
                                        f"duplicate relationship {'/'.join(spec.key)}"))
    problems.extend(_row_rules(tables, labels))
    return problems


# --------------------------------------------------------------------------- the snapshot


@dataclass(frozen=True, eq=False)
class Snapshot:
    """A validated ecosystem at one block: the tables of :mod:`graph.schema` plus a manifest.

    Construct with :meth:`from_tables` or :meth:`from_records`; both normalise (canonical dtypes,
    rows sorted by key) and validate, raising :class:`~graph.errors.SnapshotValidationError`
    that lists, per problem, the table, the record's key, the field and the offending value.
    The rules: required fields present and of the right type; amounts >= 0; prices finite and
    > 0; ``liquidation_threshold`` in (0, 1], ``ltv`` in [0, liquidation_threshold],
    ``liquidation_bonus`` in [0, 0.5]; enumerations respected; ids unique across node tables;
    no duplicate relationships; every reference to a protocol, pool, asset, oracle, account or
    position resolves (no dangling relationship); a position's collateral is accepted and its
    debt lent by its own pool; ``borrowed <= supplied``.

    >>> snap = Snapshot.empty()
    >>> snap.num_rows("positions")
    0
    """

    manifest: Manifest
    tables: Mapping[str, pd.DataFrame]

    # -- construction
    @classmethod
    def from_tables(cls, tables: Mapping[str, pd.DataFrame | None],
                    manifest: Manifest | None = None) -> Snapshot:
        unknown = sorted(set(tables) - set(TABLES))
        if unknown:
            raise SnapshotValidationError([Problem(n, "(table)", "-", f"unknown table {n!r} "
                                           f"(expected one of {', '.join(TABLES)})")
                                           for n in unknown])
        problems: list[Problem] = []
        canon: dict[str, pd.DataFrame] = {}
        for name, spec in TABLES.items():
            raw = tables.get(name)
            if raw is None:
                raw = pd.DataFrame({c: pd.Series([], dtype=object) for c in spec.column_names})
            canon[name] = _coerce(spec, raw, problems)
        problems.extend(validate_tables(canon))
        if problems:
            raise SnapshotValidationError(problems)
        return cls(manifest or Manifest(),
                   {n: _canonical(TABLES[n], df) for n, df in canon.items()})

    @classmethod
    def from_records(cls, records: Mapping[str, Iterable[Mapping[str, Any]]],
                     manifest: Manifest | None = None) -> Snapshot:
        """Build from rows as mappings; omitted optional fields are null."""
        frames = {}
        for name, rows in records.items():
            spec = TABLES.get(name)
            cols = list(spec.column_names) if spec else None
            frames[name] = pd.DataFrame(list(rows), columns=cols, dtype=object)
        return cls.from_tables(frames, manifest)

    @classmethod
    def empty(cls, manifest: Manifest | None = None) -> Snapshot:
        return cls.from_tables({}, manifest)

    # -- access
    def __getitem__(self, table: str) -> pd.DataFrame:
        return self.tables[table]

    def num_rows(self, table: str) -> int:
        return len(self.tables[table])

    def with_manifest(self, manifest: Manifest) -> Snapshot:
        return Snapshot(manifest, self.tables)

    def equals(self, other: Snapshot, *, check_manifest: bool = True) -> bool:
        """Same content (and manifest, unless ``check_manifest=False``)."""
        if check_manifest and self.manifest != other.manifest:
            return False
        return all(self.tables[n].equals(other.tables[n]) for n in TABLES)

    def describe_difference(self, other: Snapshot) -> str:
        """Which tables differ and a first differing row of each (for test failures)."""
        lines = []
        if self.manifest != other.manifest:
            lines.append(f"manifest: {self.manifest!r} != {other.manifest!r}")
        for n in TABLES:
            a, b = self.tables[n], other.tables[n]
            if a.equals(b):
                continue
            if a.shape != b.shape:
                lines.append(f"{n}: shape {a.shape} != {b.shape}")
                continue
            diff = ~((a == b) | (a.isna() & b.isna())).all(axis=1)
            i = int(np.flatnonzero(diff.to_numpy())[0]) if diff.any() else 0
            lines.append(f"{n}: row {i}: {a.iloc[i].to_dict()} != {b.iloc[i].to_dict()} "
                         f"(dtypes {dict(a.dtypes)} vs {dict(b.dtypes)})")
        return "\n".join(lines) or "equal"

    # -- disk
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write to directory ``path`` (replacing it) through a staging directory and a swap."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            for name, spec in TABLES.items():
                schema = pa.schema([(c.name, _ARROW_TYPES[c.dtype]) for c in spec.columns])
                table = pa.Table.from_pandas(self.tables[name], schema=schema,
                                             preserve_index=False)
                pq.write_table(table.replace_schema_metadata(None), stage / f"{name}.parquet",
                               compression="zstd")
            doc = self.manifest.model_dump(mode="json")
            doc["tables"] = {n: len(df) for n, df in self.tables.items()}
            (stage / "manifest.json").write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
            old = None
            if target.exists():
                old = target.with_name(f".{target.name}.old-{os.getpid()}")
                target.rename(old)
            stage.rename(target)
            if old is not None:
                shutil.rmtree(old)
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)
            raise
        return target

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Snapshot:
        """Read and validate a snapshot directory written by :meth:`save`."""
        root = Path(path)
        mpath = root / "manifest.json"
        if not mpath.is_file():
            raise SnapshotFormatError(f"{root}: not a snapshot directory (no manifest.json)")
        try:
            doc = json.loads(mpath.read_text())
        except json.JSONDecodeError as e:
            raise SnapshotFormatError(f"{mpath}: not valid JSON ({e})") from e
        counts = doc.pop("tables", {})
        if doc.get("schema_version") != SCHEMA_VERSION:
            raise SnapshotFormatError(f"{mpath}: 'schema_version' must be {SCHEMA_VERSION} "
                                      f"(got {doc.get('schema_version')!r})")
        try:
            manifest = Manifest.model_validate(doc)
        except ValueError as e:
            raise SnapshotFormatError(f"{mpath}: invalid manifest: {e}") from e
        frames = {}
        for name in TABLES:
            f = root / f"{name}.parquet"
            if not f.is_file():
                raise SnapshotFormatError(f"{f}: missing table file")
            try:
                frames[name] = pq.read_table(f).to_pandas()
            except (pa.ArrowException, OSError) as e:
                raise SnapshotFormatError(f"{f}: unreadable Parquet ({e})") from e
            if name in counts and counts[name] != len(frames[name]):
                raise SnapshotFormatError(f"{f}: manifest says {counts[name]} rows, file has "
                                          f"{len(frames[name])} (truncated or replaced?)")
        return cls.from_tables(frames, manifest)
