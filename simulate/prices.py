"""Daily closing prices from a CSV file, in any of three layouts (detected by the columns).

- **price history** (the project's layout): ``timestamp, asset, close``, one row per asset and
  time; ``timestamp`` is ISO 8601 or Unix epoch (seconds, or milliseconds above 10¹¹).
- **CoinGecko daily export**: ``date, price[, market_cap, total_volume]``, one asset per file
  (the asset is whatever the caller names).
- **CoinGecko hourly**: ``symbol, timestamp`` (Unix milliseconds), ``USD_price``.

Every layout becomes one series of daily closes (the last price of each UTC day), indexed by
date, oldest first. Errors name the file and the column.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from graph.errors import ContagionError

__all__ = ["PriceFormatError", "daily_closes", "log_returns", "read_daily_closes"]

_LAYOUTS = {
    "price history": ("timestamp", "asset", "close"),
    "CoinGecko daily": ("date", "price"),
    "CoinGecko hourly": ("symbol", "timestamp", "USD_price"),
}


class PriceFormatError(ContagionError, ValueError):
    """A price file that is not one of the known layouts or holds bad values."""


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


def daily_closes(times: pd.DatetimeIndex, prices: np.ndarray, where: str) -> pd.Series:
    """The last price of each UTC day; ``where`` names the source in errors."""
    p = np.asarray(prices, dtype=float)
    bad = ~np.isfinite(p) | (p <= 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise PriceFormatError(f"{where} must be positive and finite "
                               f"(got {p[i]} on {times[i]})")
    s = pd.Series(p, index=times).sort_index()
    closes = s.groupby(pd.DatetimeIndex(s.index).normalize()).last()
    closes.index.name = "date"
    return closes


def read_daily_closes(path: str | Path, asset: str) -> pd.Series:
    """Daily closes of ``asset`` from ``path`` (layout detected from the columns).

    Raises :class:`PriceFormatError` naming the file and column when the layout is unknown,
    the asset has no rows, or a price is not positive.
    """
    path = Path(path)
    try:
        df = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise PriceFormatError(f"{path}: not a readable CSV ({first})") from None
    cols = set(df.columns)
    layout = next((k for k, need in _LAYOUTS.items() if set(need) <= cols), None)
    if layout is None:
        expected = "; ".join(f"{k}: {', '.join(v)}" for k, v in _LAYOUTS.items())
        raise PriceFormatError(f"{path}: unknown price layout (columns: "
                               f"{', '.join(map(str, df.columns))}; expected {expected})")
    if layout == "CoinGecko daily":
        df = df.dropna(subset=["price"])
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
    closes = daily_closes(times, df[price_col].to_numpy(), f"{path} column {price_col!r}")
    closes.name = asset
    return closes


def log_returns(closes: pd.Series) -> pd.Series:
    """Daily log returns ``ln(p_t / p_{t-1})`` between consecutive observations."""
    r = np.log(closes).diff().dropna()
    r.name = closes.name
    return r
