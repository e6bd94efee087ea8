"""Closing prices from a CSV file, in any of three layouts (detected by the columns), at a
daily or an hourly frequency.

- **price history** (the project's layout): ``timestamp, asset, close``, one row per asset and
  time; ``timestamp`` is ISO 8601 or Unix epoch (seconds, or milliseconds above 10¹¹).
- **CoinGecko daily export**: ``date, price[, market_cap, total_volume]``, one asset per file
  (the asset is whatever the caller names).
- **CoinGecko hourly**: ``symbol, timestamp`` (Unix milliseconds), ``USD_price``.

Every layout becomes one series of closes: the last price of each UTC day (``daily``) or UTC
hour (``hourly``), indexed by the period's start, oldest first. A row whose price cell is
empty is a *missing value*: it is dropped and counted; a price that is present but not
positive and finite is an error naming the file, the column and the time. A period between
the first and the last with no price is a *missing period*, counted too; :func:`log_returns`
never spans one (the return across a gap is not a one-period return), so a model fitted on
the returns sees only one-period moves.

>>> import pandas as pd
>>> t = pd.DatetimeIndex(["2024-01-01 00:10", "2024-01-01 00:50", "2024-01-01 02:05"])
>>> c = closes(t, [100.0, 101.0, 99.0], "x.csv", "hourly")
>>> c.series.tolist(), c.missing_periods
([101.0, 99.0], 1)
>>> log_returns(c.series, "hourly").size  # 00:00 → 02:00 spans the missing 01:00
0
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from graph.errors import ContagionError

__all__ = [
    "FREQUENCIES",
    "Closes",
    "Frequency",
    "PriceFormatError",
    "closes",
    "log_returns",
    "periods_per_day",
    "read_closes",
]

Frequency = Literal["daily", "hourly"]

#: the frequencies a price series can be read at, and their period
FREQUENCIES: dict[str, str] = {"daily": "D", "hourly": "h"}

_LAYOUTS = {
    "price history": ("timestamp", "asset", "close"),
    "CoinGecko daily": ("date", "price"),
    "CoinGecko hourly": ("symbol", "timestamp", "USD_price"),
}


class PriceFormatError(ContagionError, ValueError):
    """A price file that is not one of the known layouts or holds bad values."""


def periods_per_day(frequency: Frequency) -> int:
    """Periods of ``frequency`` in a day (1 daily, 24 hourly)."""
    if frequency not in FREQUENCIES:
        raise PriceFormatError(f"frequency must be one of {', '.join(FREQUENCIES)} "
                               f"(got {frequency!r})")
    return 24 if frequency == "hourly" else 1


@dataclass(frozen=True)
class Closes:
    """One asset's closes at ``frequency``, with what was missing from the file."""

    series: pd.Series
    frequency: Frequency
    #: rows whose price cell was empty (dropped)
    missing_values: int
    #: periods between the first and the last close that have no price
    missing_periods: int

    def summary(self) -> dict[str, Any]:
        """What a run record states about the series."""
        s = self.series
        return {"frequency": self.frequency, "closes": int(s.size),
                "first": s.index[0].isoformat(), "last": s.index[-1].isoformat(),
                "missing_values": self.missing_values,
                "missing_periods": self.missing_periods}


def _times(values: pd.Series, where: str) -> pd.DatetimeIndex:
    try:
        if pd.api.types.is_numeric_dtype(values):
            v = values.astype(float)
            unit: Literal["ms", "s"] = "ms" if bool((v.abs() > 1e11).any()) else "s"
            out = pd.to_datetime(v, unit=unit, utc=True)
        else:
            out = pd.to_datetime(values.astype(str).str.replace(" UTC", "", regex=False),
                                 utc=True, format="ISO8601")
    except (ValueError, TypeError, OverflowError) as e:
        raise PriceFormatError(f"{where}: unreadable time ({e})") from None
    return pd.DatetimeIndex(out).tz_localize(None)


def closes(times: pd.DatetimeIndex, prices: Any, where: str,
           frequency: Frequency = "daily") -> Closes:
    """The last price of each UTC period of ``frequency``; ``where`` names the source in
    errors. Empty (NaN) prices are dropped and counted; any other price must be positive
    and finite."""
    step = FREQUENCIES.get(frequency)
    if step is None:
        periods_per_day(frequency)  # raises the message
    p = np.asarray(prices, dtype=float)
    empty = np.isnan(p)
    bad = ~empty & (~np.isfinite(p) | (p <= 0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise PriceFormatError(f"{where} must be positive and finite "
                               f"(got {p[i]} on {times[i]})")
    s = pd.Series(p[~empty], index=pd.DatetimeIndex(times)[~empty]).sort_index()
    if s.empty:
        raise PriceFormatError(f"{where} has no prices")
    out = s.groupby(pd.DatetimeIndex(s.index).floor(step)).last()
    out.index.name = "date" if frequency == "daily" else "hour"
    span = pd.date_range(out.index[0], out.index[-1], freq=step)
    return Closes(out, frequency, missing_values=int(empty.sum()),
                  missing_periods=int(len(span) - len(out)))


def read_closes(path: str | Path, asset: str, frequency: Frequency = "daily") -> Closes:
    """Closes of ``asset`` from ``path`` at ``frequency`` (layout detected from the columns).

    Raises :class:`PriceFormatError` naming the file and column when the layout is unknown,
    the asset has no rows, or a price is not positive.
    """
    path = Path(path)
    try:
        df = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise PriceFormatError(f"{path}: not a readable CSV ({first})") from None
    except OSError as e:
        raise PriceFormatError(f"{path}: cannot read ({e.strerror or e})") from None
    cols = set(df.columns)
    layout = next((k for k, need in _LAYOUTS.items() if set(need) <= cols), None)
    if layout is None:
        expected = "; ".join(f"{k}: {', '.join(v)}" for k, v in _LAYOUTS.items())
        raise PriceFormatError(f"{path}: unknown price layout (columns: "
                               f"{', '.join(map(str, df.columns))}; expected {expected})")
    if layout == "CoinGecko daily":
        times, price_col = _times(df["date"], f"{path} column 'date'"), "price"
    else:
        key, price_col = ("asset", "close") if layout == "price history" else (
            "symbol", "USD_price")
        match = df[key].astype(str).str.casefold() == asset.casefold()
        if not match.any():
            found = ", ".join(sorted(df[key].astype(str).unique())[:10])
            raise PriceFormatError(f"{path}: no rows for asset {asset!r} in column {key!r} "
                                   f"(found: {found})")
        df = df[match]
        times = _times(df["timestamp"], f"{path} column 'timestamp'")
    try:
        values = pd.to_numeric(df[price_col], errors="raise")
    except (ValueError, TypeError):
        bad = pd.to_numeric(df[price_col], errors="coerce").isna() & df[price_col].notna()
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise PriceFormatError(f"{path} column {price_col!r}: not a number "
                               f"({df[price_col].iloc[row]!r} on {times[row]})") from None
    out = closes(times, values.to_numpy(dtype=float), f"{path} column {price_col!r}",
                 frequency)
    out.series.name = asset
    return out


def log_returns(series: pd.Series, frequency: Frequency = "daily") -> pd.Series:
    """Log returns ``ln(p_t / p_{t-1})`` between closes one period of ``frequency`` apart
    (a return across a missing period is dropped), indexed by the later period."""
    step = pd.Timedelta(1, unit="D" if periods_per_day(frequency) == 1 else "h")
    if not isinstance(series.index, pd.DatetimeIndex):
        raise PriceFormatError(f"returns of {series.name or 'a price series'} need a time "
                               f"index (got {type(series.index).__name__})")
    idx = series.index
    r = pd.Series(np.log(series.to_numpy(dtype=float)), index=idx).diff()
    adjacent = np.r_[False, (idx[1:] - idx[:-1]) == step]
    out = r[adjacent]
    out.name = series.name
    return out
