"""The replay magnitudes recomputed from the real data in ``data/market`` (see ``data/README.md``).

Definitions (the same as the library's ``sources`` state):

- peak-to-trough shock of a daily series on ``[start, end]``: trough = the lowest price in the
  window, peak = the highest price on or before the trough, ``value = trough / peak - 1``;
- path shock on day d: ``p(d) / p(start) - 1`` with CoinGecko's 00:00 UTC daily snapshot;
- depeg: lowest price relative to the peg in the window (stETH/ETH pairs each hourly stETH price
  with the WETH price nearest in time, within an hour; USDC uses the 15-minute bars' low);
  path depeg on day d: that day's lowest;
- IV multiplier: highest Deribit BTC DVOL daily close on ``[base, end]`` / the close on ``base``.
"""

from __future__ import annotations

from datetime import date

import pandas as pd
from helpers import MARKET_DATA

__all__ = ["DATA", "daily", "daily_low", "depeg_low", "dvol", "hourly", "iv_multiplier",
           "peak_to_trough", "steth_eth", "usdc_15min"]

DATA = MARKET_DATA


def daily(asset: str) -> pd.Series:
    """CoinGecko daily USD price of ``btc`` or ``eth``, indexed by date."""
    d = pd.read_csv(DATA / "prices_daily" / f"{asset.lower()}-usd-max_erickfm.csv")
    return pd.Series(d["price"].to_numpy(), index=pd.to_datetime(d["date"].str[:10]))


def hourly(symbol: str) -> pd.Series:
    d = pd.read_csv(DATA / "prices_hourly" / f"{symbol}_usd.csv")
    idx = pd.to_datetime(d["timestamp"], unit="ms", utc=True).dt.tz_localize(None)
    return pd.Series(d["USD_price"].to_numpy(), index=idx).sort_index()


def steth_eth() -> pd.Series:
    """Hourly stETH price in ETH."""
    st = hourly("stETH").rename("st").to_frame()
    eth = hourly("WETH").rename("eth").to_frame()
    j = pd.merge_asof(st, eth, left_index=True, right_index=True, direction="nearest",
                      tolerance=pd.Timedelta("1h")).dropna()
    return j["st"] / j["eth"]


def usdc_15min() -> pd.Series:
    """USDC 15-minute lows through the March 2023 depeg."""
    d = pd.read_csv(DATA / "depeg" / "usdc_15min_2023-03-09_to_03-19_stablesafe.csv")
    idx = pd.to_datetime(d["dt"], utc=True).dt.tz_localize(None)
    return pd.Series(d["low"].to_numpy(), index=idx).sort_index()


def dvol() -> pd.Series:
    d = pd.read_csv(DATA / "deribit" / "dvol_btc_daily_kalyar197.csv")
    return pd.Series(d["dvol_close"].to_numpy(), index=pd.to_datetime(d["date_utc"]))


def _window(s: pd.Series, start: date, end: date) -> pd.Series:
    return s[(s.index >= pd.Timestamp(start)) & (s.index < pd.Timestamp(end) + pd.Timedelta("1D"))]


def peak_to_trough(s: pd.Series, start: date, end: date) -> tuple[float, date, date]:
    w = _window(s, start, end)
    trough = w.idxmin()
    peak = w[:trough].idxmax()
    return float(w[trough] / w[peak] - 1), peak.date(), trough.date()


def depeg_low(s: pd.Series, start: date, end: date) -> tuple[float, date]:
    w = _window(s, start, end)
    return float(w.min()), w.idxmin().date()


def daily_low(s: pd.Series, start: date, end: date) -> pd.Series:
    """The lowest value of each day in the window."""
    w = _window(s, start, end)
    return w.groupby(w.index.normalize()).min()


def iv_multiplier(s: pd.Series, base: date, end: date) -> tuple[float, date]:
    """Highest close on ``[base, end]`` over the close on ``base``, and the day of the high."""
    w = _window(s, base, end)
    return float(w.max() / w[pd.Timestamp(base)]), w.idxmax().date()
