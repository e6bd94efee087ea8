"""File ingestors: snapshot directories, tables of markets and positions, Aave v3 subgraph JSON,
price history and options chains.

:func:`ingest_files` takes a directory (or one file) and recognises its files by name:

=========================  ===================================================================
``manifest.json``          the directory is a snapshot (:meth:`Snapshot.load`); read as is
``assets.csv|parquet``     ``asset``; optional ``symbol``, ``price`` (USD > 0), ``decimals``
                           (0-77, default 18), ``kind`` (default ``token``),
                           ``market_depth_usd`` (default 0), ``pegged_to``
``markets.csv|parquet``    one row per pool and asset: ``protocol``, ``pool``, ``asset``;
                           ``ltv``, ``liquidation_threshold``, ``liquidation_bonus`` (all three
                           or none: collateral), ``supplied``, ``borrowed`` (lent; token units)
``positions.csv|parquet``  one row per account, pool and asset: ``account``, ``pool``,
                           ``asset``, ``collateral``, ``debt`` (token units >= 0, empty = 0)
``prices.csv``             price history ``timestamp, asset, close``: each asset's price is its
                           last close at or before the snapshot time
``options.csv``            options chain ``instrument, underlying, kind, strike, expiry,
                           mark_iv, open_interest`` (optional ``venue``, ``side``)
``*.json``                 Aave v3 subgraph ``reserves`` and ``userReserves``
=========================  ===================================================================

Every row is checked before anything is built: the first bad value raises
:class:`~graph.errors.IngestError` naming the file, the 1-based data row (the header is not
counted; a JSON path for JSON) and the field, with what was expected and what was found. The
assembled snapshot is then validated as a whole, so a store is never written from a rejected
file. Columns, units and the mapping onto the schema are documented in the README (*Ingest*).
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from graph.errors import IngestError
from graph.schema import TABLES
from graph.snapshot import STR_DTYPE, Manifest, Snapshot
from graph.vocab import AccountKind, AssetKind, OptionSide, PoolKind, ProtocolKind

__all__ = ["TABLE_FILES", "ingest_files", "read_options_chain", "read_price_history",
           "read_table_file"]

Kind = Literal["str", "float", "int", "time"]
_EPOCH = pd.Timestamp(0, tz="UTC")


@dataclass(frozen=True)
class _Col:
    """A column of an input file: its type, whether it must be there (``column``) and whether
    a cell may be empty (``empty``), its range and allowed values."""

    name: str
    kind: Kind
    column: bool = True
    empty: bool = False
    low: float | None = None
    low_open: bool = False
    high: float | None = None
    high_open: bool = False
    choices: tuple[str, ...] | None = None

    def range_text(self) -> str:
        lo, hi = self.low, self.high
        if hi is None:
            return f"{'>' if self.low_open else '>='} {lo:g}"
        if lo is None:
            return f"{'<' if self.high_open else '<='} {hi:g}"
        return (f"in {'(' if self.low_open else '['}{lo:g}, {hi:g}"
                f"{')' if self.high_open else ']'}")


def _opt(name: str, kind: Kind, **kw: Any) -> _Col:
    return _Col(name, kind, column=False, empty=True, **kw)


_ASSET_KINDS = tuple(k.value for k in AssetKind)

#: The columns of each table file (see the module docstring and the README).
TABLE_FILES: dict[str, tuple[_Col, ...]] = {
    "assets": (
        _Col("asset", "str"), _opt("symbol", "str"),
        _opt("price", "float", low=0.0, low_open=True),
        _opt("decimals", "int", low=0, high=77), _opt("kind", "str", choices=_ASSET_KINDS),
        _opt("market_depth_usd", "float", low=0.0), _opt("pegged_to", "str"),
    ),
    "markets": (
        _Col("protocol", "str"), _Col("pool", "str"), _Col("asset", "str"),
        _opt("ltv", "float", low=0.0, high=1.0),
        _opt("liquidation_threshold", "float", low=0.0, low_open=True, high=1.0),
        _opt("liquidation_bonus", "float", low=0.0, high=0.5),
        _opt("supplied", "float", low=0.0), _opt("borrowed", "float", low=0.0),
    ),
    "positions": (
        _Col("account", "str"), _Col("pool", "str"), _Col("asset", "str"),
        _Col("collateral", "float", empty=True, low=0.0),
        _Col("debt", "float", empty=True, low=0.0),
    ),
    "prices": (
        _Col("timestamp", "time"), _Col("asset", "str"),
        _Col("close", "float", low=0.0, low_open=True),
    ),
    "options": (
        _Col("instrument", "str"), _Col("underlying", "str"),
        _Col("kind", "str", choices=("call", "put", "c", "p")),
        _Col("strike", "float", low=0.0, low_open=True), _Col("expiry", "time"),
        _Col("mark_iv", "float", low=0.0, low_open=True, high=10.0),
        _Col("open_interest", "float", low=0.0),
        _opt("venue", "str"), _opt("side", "str", choices=("long", "short")),
    ),
}


# --------------------------------------------------------------------------- reading


def _py(v: Any) -> Any:
    """A numpy scalar as the Python value it holds (for messages)."""
    return v.item() if isinstance(v, np.generic) else v


def _fail(path: Path, row: int | str | None, field: str | None, message: str) -> IngestError:
    return IngestError(message, source=str(path), row=row, field=field)


def _read_csv(path: Path, cols: Sequence[_Col]) -> pa.Table:
    try:
        with path.open(newline="") as f:
            header = next(csv.reader(f), None)
    except (OSError, UnicodeDecodeError) as e:
        raise _fail(path, None, None, f"unreadable ({e})") from e
    if not header:
        raise _fail(path, "header", None, "empty file (expected a header line: "
                    + ", ".join(c.name for c in cols) + ")")
    header = [h.strip() for h in header]
    _check_header(path, header, cols)
    bad: list[pacsv.InvalidRow] = []

    def invalid(row: pacsv.InvalidRow) -> str:
        bad.append(row)
        return "skip"

    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(column_names=header, skip_rows=1, use_threads=False),
            parse_options=pacsv.ParseOptions(invalid_row_handler=invalid),
            convert_options=pacsv.ConvertOptions(
                column_types={h: pa.string() for h in header}, strings_can_be_null=False,
                quoted_strings_can_be_null=False))
    except (pa.ArrowInvalid, UnicodeDecodeError) as e:
        first = str(e).splitlines()[0]
        raise _fail(path, None, None, f"not a readable CSV file ({first})") from e
    if bad:
        r = bad[0]
        row = (r.number - 1) if r.number is not None else "?"
        if r.actual_columns < r.expected_columns:
            raise _fail(path, row, header[r.actual_columns],
                        f"missing: the row has {r.actual_columns} of {r.expected_columns} "
                        f"values (truncated or malformed: {r.text[:60]!r})")
        raise _fail(path, row, None, f"malformed row: {r.actual_columns} values for "
                    f"{r.expected_columns} columns ({', '.join(header)})")
    return table


def _check_header(path: Path, names: Sequence[str], cols: Sequence[_Col]) -> None:
    known = [c.name for c in cols]
    seen: set[str] = set()
    for n in names:
        if n in seen:
            raise _fail(path, "header", n, "duplicate column")
        seen.add(n)
        if n not in known:
            raise _fail(path, "header", n, f"unknown column (expected: {', '.join(known)})")
    for c in cols:
        if c.column and c.name not in seen:
            raise _fail(path, "header", c.name, "missing column (required: "
                        + ", ".join(x.name for x in cols if x.column) + ")")


def _read_parquet(path: Path, cols: Sequence[_Col]) -> pa.Table:
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as e:
        first = str(e).splitlines()[0]
        raise _fail(path, None, None, f"not a readable Parquet file (truncated?): {first}"
                    ) from e
    _check_header(path, table.column_names, cols)
    return table


def _as_series(col: pa.ChunkedArray) -> pd.Series:
    return col.to_pandas()


def _convert(path: Path, c: _Col, values: pd.Series, arrow_type: pa.DataType
             ) -> tuple[pd.Series, int | None, str]:
    """Typed values (NaN/None for empty), and the first bad row (0-based) with a message."""
    is_str = pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type)
    if is_str:
        text = values.astype(object)
        empty = text.isna().to_numpy() | (text.astype(str).str.strip() == "").to_numpy()
    else:
        empty = values.isna().to_numpy()
    if c.kind == "str":
        if not is_str and not pa.types.is_null(arrow_type):
            i = int(np.flatnonzero(~empty)[0]) if (~empty).any() else None
            return values, i, f"must be text (got {arrow_type} values)"
        out = values.astype(object).where(~empty, None).astype(STR_DTYPE)
        return out, None, ""
    if c.kind == "time":
        if is_str or pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type):
            num = pd.to_numeric(values, errors="coerce") if is_str else values.astype(float)
            numeric = num.notna().to_numpy()
            secs = np.where(np.abs(num.to_numpy(dtype=float, na_value=np.nan)) > 1e11,
                            num.to_numpy(dtype=float, na_value=np.nan) / 1000,
                            num.to_numpy(dtype=float, na_value=np.nan))
            parsed = pd.Series(np.full(len(values), np.nan))
            parsed[numeric] = secs[numeric]
            if is_str and (~numeric & ~empty).any():
                iso = pd.to_datetime(values.where(~numeric & ~empty), utc=True,
                                     format="ISO8601", errors="coerce")
                ok = iso.notna().to_numpy()
                parsed[ok] = ((iso[ok] - _EPOCH) / pd.Timedelta(seconds=1)).to_numpy()
            bad = ~empty & parsed.isna().to_numpy()
        elif pa.types.is_timestamp(arrow_type) or pa.types.is_date(arrow_type):
            parsed = pd.Series((pd.to_datetime(values, utc=True) - _EPOCH)
                               / pd.Timedelta(seconds=1))
            parsed[empty] = np.nan
            bad = np.zeros(len(values), dtype=bool)
        else:
            return values, 0, f"must be a time (got {arrow_type} values)"
        i = int(np.flatnonzero(bad)[0]) if bad.any() else None
        return parsed, i, (f"must be ISO 8601 or Unix seconds (got {_py(values.iloc[i])!r})"
                           if i is not None else "")
    # numbers
    if is_str:
        num = pd.to_numeric(values.where(~empty), errors="coerce")
    elif pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type) or \
            pa.types.is_decimal(arrow_type) or pa.types.is_null(arrow_type):
        num = values.astype(float)
    else:
        i = int(np.flatnonzero(~empty)[0]) if (~empty).any() else 0
        return values, i, f"must be a number (got {arrow_type} values)"
    arr = num.to_numpy(dtype=float, na_value=np.nan)
    bad = ~empty & np.isnan(arr)
    what = "a number"
    if c.kind == "int":
        with np.errstate(invalid="ignore"):
            bad |= ~empty & ~np.isnan(arr) & (arr != np.floor(arr))
        what = "an integer"
    bad |= ~empty & np.isinf(arr)
    i = int(np.flatnonzero(bad)[0]) if bad.any() else None
    return pd.Series(arr), i, (f"must be {what} (got {_py(values.iloc[i])!r})" if i is not None
                               else "")


def read_table_file(path: str | Path, kind: str) -> pd.DataFrame:
    """Read and check one input table (``kind`` is a key of :data:`TABLE_FILES`).

    Returns typed columns (strings, float64 numbers, times as float Unix seconds; NaN or
    None for empty cells; absent optional columns all empty). Raises
    :class:`~graph.errors.IngestError` at the first bad row, naming file, row and field.
    """
    p = Path(path)
    cols = TABLE_FILES[kind]
    table = _read_parquet(p, cols) if p.suffix.lower() == ".parquet" else _read_csv(p, cols)
    first: tuple[int, int, str, str] | None = None  # row, column order, field, message
    out: dict[str, pd.Series] = {}
    n = table.num_rows
    for order, c in enumerate(cols):
        if c.name not in table.column_names:
            out[c.name] = (pd.Series([None] * n, dtype=STR_DTYPE) if c.kind == "str"
                           else pd.Series(np.full(n, np.nan)))
            continue
        raw = _as_series(table.column(c.name))
        values, bad, msg = _convert(p, c, raw, table.schema.field(c.name).type)
        candidates = []
        if bad is not None:
            candidates.append((bad, msg))
        empty = values.isna().to_numpy()
        if not c.empty and empty.any():
            candidates.append((int(np.flatnonzero(empty)[0]), "is required (got an empty "
                                                               "value)"))
        if c.kind in ("float", "int") and (c.low is not None or c.high is not None):
            arr = values.to_numpy(dtype=float, na_value=np.nan)
            with np.errstate(invalid="ignore"):
                out_of = np.zeros(n, dtype=bool)
                if c.low is not None:
                    out_of |= (arr <= c.low) if c.low_open else (arr < c.low)
                if c.high is not None:
                    out_of |= (arr >= c.high) if c.high_open else (arr > c.high)
            if out_of.any():
                i = int(np.flatnonzero(out_of)[0])
                candidates.append((i, f"must be {c.range_text()} (got {float(arr[i])!r})"))
        if c.choices is not None:
            low = values.astype(object).map(lambda v: v.strip().lower() if isinstance(v, str)
                                            else v)
            wrong = (~empty) & ~low.isin(list(c.choices)).to_numpy()
            if wrong.any():
                i = int(np.flatnonzero(wrong)[0])
                candidates.append((i, f"must be one of {', '.join(c.choices)} "
                                      f"(got {_py(values.iloc[i])!r})"))
            values = low.astype(STR_DTYPE)
        for i, msg in candidates:
            if first is None or (i, order) < first[:2]:
                first = (i, order, c.name, msg)
        out[c.name] = values.reset_index(drop=True)
    if first is not None:
        raise _fail(p, first[0] + 1, first[2], first[3])
    return pd.DataFrame(out)


def _first_dup(df: pd.DataFrame, keys: list[str]) -> int | None:
    dup = df.duplicated(keys, keep="first").to_numpy()
    return int(np.flatnonzero(dup)[0]) if dup.any() else None


def _unknown(path: Path, df: pd.DataFrame, column: str, known: Iterable[str], what: str,
             where: str) -> None:
    col = df[column].astype(object)
    ok = col.isna().to_numpy() | col.isin(list(known)).to_numpy()
    if not ok.all():
        i = int(np.flatnonzero(~ok)[0])
        raise _fail(path, i + 1, column, f"unknown {what} {_py(col.iloc[i])!r} (not in {where})")


# --------------------------------------------------------------------------- sources


def read_price_history(path: str | Path) -> pd.DataFrame:
    """A price history CSV (``timestamp, asset, close``; ISO 8601 or Unix seconds, close in
    USD > 0) as columns ``time`` (Unix seconds), ``asset``, ``close``, sorted by time."""
    df = read_table_file(path, "prices")
    return pd.DataFrame({"time": df["timestamp"], "asset": df["asset"],
                         "close": df["close"]}).sort_values(["asset", "time"], kind="stable",
                                                            ignore_index=True)


def read_options_chain(path: str | Path, assets: Iterable[str]) -> dict[str, pd.DataFrame]:
    """Snapshot tables for an options chain (see :func:`ingest_files`); ``assets`` are the
    known asset ids (an unknown underlying is an error naming its row)."""
    p = Path(path)
    df = read_table_file(p, "options")
    _unknown(p, df, "underlying", assets, "asset", "the assets of this ingest")
    venue = df["venue"].astype(object).where(df["venue"].notna(), "options").astype(str)
    side = df["side"].astype(object).where(df["side"].notna(), OptionSide.SHORT).astype(str)
    kind = df["kind"].astype(str).map({"c": "call", "p": "put", "call": "call", "put": "put"})
    keep = (df["open_interest"] > 0).to_numpy()  # no open interest: no leg
    pool = venue + ":options"
    legs = pd.DataFrame({"position": pool + "/dealers", "asset": df["underlying"], "kind": kind,
                         "side": side, "strike": df["strike"],
                         "expiry": np.floor(df["expiry"]).astype("int64"),
                         "size": df["open_interest"], "implied_vol": df["mark_iv"]})
    dup = _first_dup(legs.assign(keep=keep), ["position", "asset", "kind", "strike", "expiry",
                                              "keep"])
    if dup is not None and keep[dup]:
        raise _fail(p, dup + 1, "instrument", "duplicate contract (same venue, underlying, "
                    "kind, strike and expiry as an earlier row)")
    legs = legs.loc[keep].reset_index(drop=True)
    venues = sorted(set(venue))
    return {
        "protocols": pd.DataFrame([{"id": v, "name": v, "kind": ProtocolKind.OPTIONS,
                                    "close_factor": 1.0, "full_close_threshold": 1.0,
                                    "reserve_usd": 0.0} for v in venues]),
        "pools": pd.DataFrame([{"id": f"{v}:options", "protocol": v, "kind": PoolKind.OPTIONS}
                               for v in venues]),
        "accounts": pd.DataFrame([{"id": f"{v}:dealers", "kind": AccountKind.DEALER}
                                  for v in venues]),
        "positions": pd.DataFrame([{"id": f"{v}:options/dealers", "account": f"{v}:dealers",
                                    "pool": f"{v}:options"} for v in venues]),
        "position_options": legs,
    }


def _tables_source(files: Mapping[str, Path], prices: pd.DataFrame | None, as_of: float
                   ) -> dict[str, pd.DataFrame]:
    out: dict[str, pd.DataFrame] = {}
    assets_path = files.get("assets")
    if assets_path is None:
        raise IngestError("tables need an assets file (assets.csv or assets.parquet) beside "
                          f"{', '.join(p.name for p in files.values())}")
    a = read_table_file(assets_path, "assets")
    dup = _first_dup(a, ["asset"])
    if dup is not None:
        raise _fail(assets_path, dup + 1, "asset", f"duplicate asset {a['asset'].iloc[dup]!r}")
    price = a["price"].to_numpy(dtype=float, na_value=np.nan)
    if prices is not None:
        last = _prices_at(prices, as_of)
        from_history = a["asset"].astype(object).map(last).to_numpy(dtype=float,
                                                                      na_value=np.nan)
        price = np.where(np.isnan(from_history), price, from_history)
    if np.isnan(price).any():
        i = int(np.flatnonzero(np.isnan(price))[0])
        raise _fail(assets_path, i + 1, "price", f"asset {_py(a['asset'].iloc[i])!r} has no price "
                    "(give one here, or a close at or before the snapshot time in prices.csv)")
    out["assets"] = pd.DataFrame({
        "id": a["asset"], "symbol": a["symbol"].fillna(a["asset"]),
        "kind": a["kind"].fillna(AssetKind.TOKEN.value), "price": price,
        "decimals": a["decimals"].fillna(18).astype("int64"),
        "market_depth_usd": a["market_depth_usd"].fillna(0.0), "pegged_to": a["pegged_to"]})
    asset_ids = set(a["asset"].astype(str))
    mp = files.get("markets")
    pos_path = files.get("positions")
    if mp is None:
        if pos_path is not None:
            raise IngestError(f"{pos_path.name} needs a markets file (markets.csv or "
                              "markets.parquet) naming its pools")
        return out
    m = read_table_file(mp, "markets")
    _unknown(mp, m, "asset", asset_ids, "asset", assets_path.name)
    dup = _first_dup(m, ["pool", "asset"])
    if dup is not None:
        raise _fail(mp, dup + 1, "asset", f"duplicate market: pool {m['pool'].iloc[dup]!r} "
                    "already lists this asset")
    proto = m.groupby("pool", sort=False)["protocol"].transform("first")
    if (proto != m["protocol"]).any():
        i = int(np.flatnonzero((proto != m["protocol"]).to_numpy())[0])
        raise _fail(mp, i + 1, "protocol", f"pool {_py(m['pool'].iloc[i])!r} belongs to "
                    f"protocol {_py(proto.iloc[i])!r} in an earlier row "
                    f"(got {_py(m['protocol'].iloc[i])!r})")
    risk = m[["ltv", "liquidation_threshold", "liquidation_bonus"]].notna()
    partial = (risk.any(axis=1) & ~risk.all(axis=1)).to_numpy()
    if partial.any():
        i = int(np.flatnonzero(partial)[0])
        missing = next(c for c in risk.columns if not risk[c].iloc[i])
        raise _fail(mp, i + 1, missing, "collateral needs ltv, liquidation_threshold and "
                    "liquidation_bonus together (this one is empty)")
    over = (m["ltv"] > m["liquidation_threshold"]).to_numpy()
    if over.any():
        i = int(np.flatnonzero(over)[0])
        raise _fail(mp, i + 1, "ltv", f"must be <= liquidation_threshold "
                    f"({_py(m['liquidation_threshold'].iloc[i])!r}) "
                    f"(got {_py(m['ltv'].iloc[i])!r})")
    lent = m["supplied"].notna() | m["borrowed"].notna()
    supplied, borrowed = m["supplied"].fillna(0.0), m["borrowed"].fillna(0.0)
    over = (lent & (borrowed > supplied)).to_numpy()
    if over.any():
        i = int(np.flatnonzero(over)[0])
        raise _fail(mp, i + 1, "borrowed", f"must be <= supplied ({_py(supplied.iloc[i])!r}) "
                    f"(got {_py(borrowed.iloc[i])!r})")
    protocols = m["protocol"].drop_duplicates()
    out["protocols"] = pd.DataFrame({"id": protocols, "name": protocols,
                                     "kind": ProtocolKind.LENDING.value, "close_factor": 0.5,
                                     "full_close_threshold": 0.95, "reserve_usd": 0.0})
    pools = m.drop_duplicates("pool")
    out["pools"] = pd.DataFrame({"id": pools["pool"], "protocol": pools["protocol"],
                                 "kind": PoolKind.LENDING.value})
    coll = m.loc[risk.all(axis=1)]
    out["pool_collateral"] = pd.DataFrame({
        "pool": coll["pool"], "asset": coll["asset"], "ltv": coll["ltv"],
        "liquidation_threshold": coll["liquidation_threshold"],
        "liquidation_bonus": coll["liquidation_bonus"]})
    out["pool_lends"] = pd.DataFrame({"pool": m["pool"][lent], "asset": m["asset"][lent],
                                      "supplied": supplied[lent], "borrowed": borrowed[lent]})
    if pos_path is not None:
        out.update(_positions(pos_path, read_table_file(pos_path, "positions"), asset_ids,
                              set(m["pool"].astype(str)), out["pool_collateral"],
                              out["pool_lends"], mp.name))
    return out


def _positions(path: Path, p: pd.DataFrame, assets: set[str], pools: set[str],
               coll: pd.DataFrame, lends: pd.DataFrame, markets: str
               ) -> dict[str, pd.DataFrame]:
    _unknown(path, p, "pool", pools, "pool", markets)
    _unknown(path, p, "asset", assets, "asset", "the assets file")
    dup = _first_dup(p, ["account", "pool", "asset"])
    if dup is not None:
        raise _fail(path, dup + 1, "asset", "duplicate row: this account already has a row "
                    "for this pool and asset")
    c, d = p["collateral"].fillna(0.0), p["debt"].fillna(0.0)
    keys = pd.MultiIndex.from_arrays([p["pool"].astype(object), p["asset"].astype(object)])
    for amount, allowed, field, verb in ((c, coll, "collateral", "accept it as collateral"),
                                         (d, lends, "debt", "lend it")):
        ok = keys.isin(pd.MultiIndex.from_frame(allowed[["pool", "asset"]].astype(object)))
        bad = (amount > 0).to_numpy() & ~ok
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise _fail(path, i + 1, field, f"pool {_py(p['pool'].iloc[i])!r} does not {verb} "
                        f"(asset {_py(p['asset'].iloc[i])!r} in {markets})")
    live = ((c > 0) | (d > 0)).to_numpy()
    pos_id = (p["pool"].astype(str) + "/" + p["account"].astype(str)).astype(STR_DTYPE)
    positions = pd.DataFrame({"id": pos_id, "account": p["account"], "pool": p["pool"]}
                             )[live].drop_duplicates("id")
    accounts = positions["account"].drop_duplicates()
    has_c, has_d = (c > 0).to_numpy(), (d > 0).to_numpy()
    return {
        "accounts": pd.DataFrame({"id": accounts, "kind": AccountKind.USER.value}),
        "positions": positions,
        "position_collateral": pd.DataFrame({"position": pos_id[has_c],
                                             "asset": p["asset"][has_c], "amount": c[has_c]}),
        "position_debt": pd.DataFrame({"position": pos_id[has_d], "asset": p["asset"][has_d],
                                       "amount": d[has_d]}),
    }


def _prices_at(prices: pd.DataFrame, as_of: float) -> dict[str, float]:
    upto = prices.loc[prices["time"] <= as_of]
    return {str(k): float(v) for k, v in upto.groupby("asset")["close"].last().items()}


# --------------------------------------------------------------------------- subgraph


class _Json:
    """A JSON document with paths for error messages (``data.userReserves[3].user.id``)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, where: str, message: str) -> IngestError:
        return IngestError(message, source=str(self.path), row=where)

    def get(self, obj: Any, key: str, where: str, *, required: bool = True) -> Any:
        if not isinstance(obj, dict):
            raise self.fail(where, f"expected an object (got {type(obj).__name__})")
        if key not in obj or obj[key] is None:
            if required:
                raise self.fail(f"{where}.{key}", "missing")
            return None
        return obj[key]

    def units(self, obj: Any, key: str, where: str, *, required: bool = True) -> int | None:
        """A subgraph BigInt (a string of digits) as a non-negative integer."""
        v = self.get(obj, key, where, required=required)
        if v is None:
            return None
        try:
            n = int(str(v), 10) if not isinstance(v, bool | float) else None
        except ValueError:
            n = None
        if n is None:
            raise self.fail(f"{where}.{key}", f"must be an integer amount in base units "
                            f"(got {v!r})")
        if n < 0:
            raise self.fail(f"{where}.{key}", f"must be >= 0 (got {v!r})")
        return n


def _subgraph(path: Path, assets_known: set[str], prices: pd.DataFrame | None
              ) -> tuple[dict[str, pd.DataFrame], int | None, float | None]:
    j = _Json(path)
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise IngestError(f"not valid JSON (truncated?): {e.msg} at line {e.lineno} column "
                          f"{e.colno}", source=str(path)) from e
    root, base = (doc["data"], "data") if isinstance(doc, dict) and "data" in doc else (doc, "$")
    reserves = j.get(root, "reserves", base)
    users = j.get(root, "userReserves", base)
    for name, v in (("reserves", reserves), ("userReserves", users)):
        if not isinstance(v, list):
            raise j.fail(f"{base}.{name}", f"expected a list (got {type(v).__name__})")
    meta = root.get("_meta") if isinstance(root, dict) else None
    block = ts = None
    if isinstance(meta, dict) and isinstance(meta.get("block"), dict):
        block = j.units(meta["block"], "number", f"{base}._meta.block", required=False)
        t = j.units(meta["block"], "timestamp", f"{base}._meta.block", required=False)
        ts = float(t) if t is not None else None
    rec: dict[str, list[dict[str, Any]]] = {k: [] for k in (
        "protocols", "pools", "assets", "pool_collateral", "pool_lends", "pool_holdings",
        "accounts", "positions", "position_collateral", "position_debt")}
    by_id: dict[str, tuple[str, str, int, bool]] = {}  # reserve id/address -> pool, asset...
    assets_here: dict[str, int] = {}
    hist = _prices_at(prices, ts if ts is not None else np.inf) if prices is not None else {}
    for i, r in enumerate(reserves):
        w = f"{base}.reserves[{i}]"
        symbol = str(j.get(r, "symbol", w))
        dec = j.units(r, "decimals", w)
        assert dec is not None
        pool_obj = j.get(r, "pool", w, required=False)
        pool_addr = str(j.get(pool_obj, "id", f"{w}.pool")) if pool_obj is not None else "main"
        pool = f"aave-v3:{pool_addr}"
        ltv, lt, bonus = (j.units(r, k, w) for k in ("baseLTVasCollateral",
                                                     "reserveLiquidationThreshold",
                                                     "reserveLiquidationBonus"))
        assert ltv is not None and lt is not None and bonus is not None
        if lt > 10_000 or ltv > lt:
            raise j.fail(f"{w}.baseLTVasCollateral", f"ltv {ltv} and liquidation threshold "
                         f"{lt} (basis points) must satisfy ltv <= threshold <= 10000")
        supplied = j.units(r, "totalATokenSupply", w) or 0
        borrowed = (j.units(r, "totalCurrentVariableDebt", w) or 0) + (
            j.units(r, "totalPrincipalStableDebt", w, required=False) or 0)
        price_obj = j.get(r, "price", w, required=False)
        if symbol in hist:
            price = hist[symbol]
        elif price_obj is not None:
            raw = j.units(price_obj, "priceInEth", f"{w}.price")
            assert raw is not None
            price = raw / 10**8
            if price <= 0:
                raise j.fail(f"{w}.price.priceInEth", "must be > 0 (got 0)")
        else:
            raise j.fail(f"{w}.price", f"missing: no price for {symbol} (give price.priceInEth "
                         "in USD with 8 decimals, or a close in prices.csv)")
        if symbol in assets_here and assets_here[symbol] != dec:
            raise j.fail(f"{w}.decimals", f"{symbol} has {assets_here[symbol]} decimals in an "
                         f"earlier reserve (got {dec})")
        if symbol not in assets_here:
            assets_here[symbol] = dec
            if symbol not in assets_known:
                rec["assets"].append({"id": symbol, "symbol": symbol, "kind": AssetKind.TOKEN,
                                      "price": price, "decimals": dec, "market_depth_usd": 0.0})
        if not any(p["id"] == pool for p in rec["pools"]):
            rec["pools"].append({"id": pool, "protocol": "aave-v3", "kind": PoolKind.LENDING})
        if lt > 0 and j.get(r, "usageAsCollateralEnabled", w, required=False) is not False:
            rec["pool_collateral"].append({"pool": pool, "asset": symbol, "ltv": ltv / 10_000,
                                           "liquidation_threshold": lt / 10_000,
                                           "liquidation_bonus": max(0, bonus - 10_000) / 10_000})
        rec["pool_lends"].append({"pool": pool, "asset": symbol,
                                  "supplied": max(supplied, borrowed) / 10**dec,
                                  "borrowed": borrowed / 10**dec})
        accepted = lt > 0
        for key in ("id", "underlyingAsset"):
            v = r.get(key) if isinstance(r, dict) else None
            if v is not None:
                by_id[f"{pool}|{str(v).lower()}" if key == "underlyingAsset" else str(v).lower()
                      ] = (pool, symbol, dec, accepted)
    if rec["pools"]:
        rec["protocols"].append({"id": "aave-v3", "name": "Aave v3", "kind": "lending",
                                 "close_factor": 0.5, "full_close_threshold": 0.95,
                                 "reserve_usd": 0.0})
    coll: dict[tuple[str, str], dict[str, float]] = {}
    debt: dict[tuple[str, str], dict[str, float]] = {}
    seen: set[tuple[str, str, str]] = set()
    for i, u in enumerate(users):
        w = f"{base}.userReserves[{i}]"
        user = str(j.get(j.get(u, "user", w), "id", f"{w}.user"))
        res = j.get(u, "reserve", w)
        rid = j.get(res, "id", f"{w}.reserve", required=False)
        hit = by_id.get(str(rid).lower()) if rid is not None else None
        if hit is None:
            und = j.get(res, "underlyingAsset", f"{w}.reserve", required=False)
            hits = [v for k, v in by_id.items() if und is not None
                    and k.endswith(f"|{str(und).lower()}")]
            hit = hits[0] if len(hits) == 1 else None
        if hit is None:
            raise j.fail(f"{w}.reserve", f"unknown reserve {rid!r} (not in {base}.reserves)")
        pool, symbol, dec, accepted = hit
        if (pool, user, symbol) in seen:
            raise j.fail(w, f"duplicate userReserve for user {user} and reserve {symbol}")
        seen.add((pool, user, symbol))
        a_bal = j.units(u, "currentATokenBalance", w) or 0
        d_bal = (j.units(u, "currentVariableDebt", w) or 0) + (
            j.units(u, "currentStableDebt", w, required=False) or 0)
        flag = j.get(u, "usageAsCollateralEnabledOnUser", w)
        if not isinstance(flag, bool):
            raise j.fail(f"{w}.usageAsCollateralEnabledOnUser", f"must be true or false "
                         f"(got {flag!r})")
        if flag and accepted and a_bal > 0:
            coll.setdefault((pool, user), {})[symbol] = a_bal / 10**dec
        if d_bal > 0:
            debt.setdefault((pool, user), {})[symbol] = d_bal / 10**dec
    for pool, user in sorted(set(coll) | set(debt)):
        pos = f"{pool}/{user}"
        rec["positions"].append({"id": pos, "account": user, "pool": pool})
        for table, amounts in (("position_collateral", coll), ("position_debt", debt)):
            for sym, v in sorted(amounts.get((pool, user), {}).items()):
                rec[table].append({"position": pos, "asset": sym, "amount": v})
    rec["accounts"] = [{"id": a, "kind": "user"} for a in sorted({p["account"] for p in
                                                                  rec["positions"]})]
    return ({k: pd.DataFrame(v, columns=list(TABLES[k].column_names)) for k, v in rec.items()},
            block, ts)


# --------------------------------------------------------------------------- entry point

_TABLE_NAMES = ("assets", "markets", "positions")


def _classify(root: Path) -> dict[str, list[Path]]:
    files = [root] if root.is_file() else sorted(p for p in root.iterdir() if p.is_file())
    found: dict[str, list[Path]] = {}
    for f in files:
        stem, ext = f.stem.lower(), f.suffix.lower()
        if (ext in (".csv", ".parquet") and stem in _TABLE_NAMES) or \
                (ext == ".csv" and stem in ("prices", "options")):
            kind = stem
        elif ext == ".json":
            kind = "subgraph"
        elif ext in (".csv", ".parquet"):
            raise IngestError("unrecognised file name (expected assets, markets, positions "
                              "(.csv or .parquet), prices.csv, options.csv or subgraph .json)",
                              source=str(f))
        else:
            continue
        if kind != "subgraph" and kind in found:
            raise IngestError(f"two {kind} files ({found[kind][0].name} and {f.name})",
                              source=str(root))
        found.setdefault(kind, []).append(f)
    if not found:
        raise IngestError("no input files here (expected a snapshot directory, assets/"
                          "markets/positions tables, prices.csv, options.csv or subgraph JSON)",
                          source=str(root))
    return found


def ingest_files(path: str | Path, *, name: str | None = None, as_of: datetime | None = None,
                 block: int | None = None) -> Snapshot:
    """Read a snapshot directory, or the input files of a directory (or one file), into one
    validated snapshot (see the module docstring for the files and their columns).

    The manifest: ``name`` (default: the directory's name), ``source`` ``files``, ``block``
    (given, or the subgraph's ``_meta.block.number``), ``as_of`` (given; else the subgraph's
    ``_meta.block.timestamp``; else the last time in prices.csv; else the newest file's
    modification time) and, in ``params``, a digest of every file read, so that re-ingesting
    the same files gives the same snapshot.
    """
    root = Path(path)
    if not root.exists():
        raise IngestError("no such file or directory", source=str(root))
    if root.is_dir() and (root / "manifest.json").exists():
        return Snapshot.load(root)
    found = _classify(root)
    single = {k: v[0] for k, v in found.items() if k != "subgraph"}
    prices = read_price_history(single["prices"]) if "prices" in single else None
    when = as_of.timestamp() if as_of is not None else None
    parts: list[dict[str, pd.DataFrame]] = []
    sub_block = sub_ts = None
    table_files = {k: v for k, v in single.items() if k in _TABLE_NAMES}
    if table_files:
        t = when if when is not None else (float(prices["time"].max()) if prices is not None
                                           and len(prices) else np.inf)
        parts.append(_tables_source(table_files, prices, t))
    known = set(parts[0]["assets"]["id"].astype(str)) if parts else set()
    for f in found.get("subgraph", []):
        tables, b, ts = _subgraph(f, known, prices)
        parts.append(tables)
        known |= set(tables["assets"]["id"].astype(str))
        sub_block = sub_block if b is None else b
        sub_ts = sub_ts if ts is None else ts
    if "options" in single:
        parts.append(read_options_chain(single["options"], known))
    if prices is not None and not known:
        raise IngestError("a price history needs assets to price (an assets file or "
                          "subgraph JSON beside it)", source=str(single["prices"]))
    if prices is not None:
        _unknown(single["prices"], prices, "asset", known, "asset",
                 "the assets of this ingest")
    merged: dict[str, pd.DataFrame] = {}
    for table, spec in TABLES.items():
        frames = [p[table] for p in parts if table in p and len(p[table])]
        if frames:
            merged[table] = pd.concat([f.reindex(columns=list(spec.column_names))
                                       for f in frames], ignore_index=True)
    if when is None:
        if sub_ts is not None:
            when = sub_ts
        elif prices is not None and len(prices):
            when = float(prices["time"].max())
        else:
            when = float(int(max(f.stat().st_mtime for v in found.values() for f in v)))
    digests = {str(f.relative_to(root) if root.is_dir() else f.name):
               hashlib.sha256(f.read_bytes()).hexdigest()[:16]
               for v in found.values() for f in v}
    manifest = Manifest(name=name or (root.name if root.is_dir() else root.stem),
                        block=block if block is not None else sub_block,
                        as_of=datetime.fromtimestamp(when, UTC), source="files",
                        params={"files": dict(sorted(digests.items()))})
    return Snapshot.from_tables(merged, manifest)
