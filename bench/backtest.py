"""VaR backtest figures on the real price series: every method, every series, one table.

Runs :func:`simulate.backtest.var_backtest` (what ``contagion backtest`` runs) on the daily
series of ``data/market/prices_daily`` (BTC, ETH) and the hourly series of
``data/market/prices_hourly`` (WETH, WBTC, stETH, USDC, USDT, DAI, LUSD, FRAX; or
``CONTAGION_DATA``), with the default window (``max(100, min(1000, n // 2))`` of the ``n``
returns used) and the four methods on the same out-of-sample periods: historical simulation,
RiskMetrics EWMA-normal, GARCH(1,1)-normal and the project's model (GJR-GARCH(1,1)-skewed-t).
Per series, method and level it prints the breaches against the expected number, the Kupiec,
Christoffersen and conditional-coverage verdicts at 5%, the pinball loss (basis points) and
the rejected refits. ``--last N`` uses at most the last ``N`` returns of each series (a
series with fewer uses all of them; the table shows how many were used). A series the
backtest refuses is a line saying why. ``--jobs`` runs series in parallel processes (the
numbers do not depend on it).

    python bench/backtest.py [--last N] [--refit-every 20] [--series BTC,WETH] [--jobs 1]
                             [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from graph.errors import ContagionError
from simulate.backtest import METHOD_LABELS, var_backtest
from simulate.prices import Frequency, log_returns, read_closes

__all__ = ["SERIES", "main", "run_series"]

ROOT = Path(__file__).resolve().parents[1]

#: (asset, frequency, file under the data directory)
SERIES: tuple[tuple[str, Frequency, str], ...] = (
    ("BTC", "daily", "prices_daily/btc-usd-max_erickfm.csv"),
    ("ETH", "daily", "prices_daily/eth-usd-max_erickfm.csv"),
    *((a, "hourly", f"prices_hourly/{a}_usd.csv")
      for a in ("WETH", "WBTC", "stETH", "USDC", "USDT", "DAI", "LUSD", "FRAX")),
)


def run_series(asset: str, frequency: Frequency, path: str, last: int | None,
               refit_every: int) -> dict[str, Any]:
    """One series' backtest as a JSON-ready dict (``error`` instead of rows when refused)."""
    t0 = time.perf_counter()
    closes = read_closes(path, asset, frequency)
    returns = log_returns(closes.series, frequency)
    available = len(returns)
    if last is not None:
        returns = returns.iloc[-last:]
    doc: dict[str, Any] = {"asset": asset, "prices": path, "series": closes.summary(),
                           "returns_available": available}
    try:
        res = var_backtest(returns, frequency=frequency, refit_every=refit_every, asset=asset)
    except (ContagionError, ValueError) as e:
        return {**doc, "error": str(e).splitlines()[0], "seconds": time.perf_counter() - t0}
    return {**doc, **res.as_dict(), "seconds": round(time.perf_counter() - t0, 1)}


def _verdict(test: dict[str, Any] | None) -> Text:
    if test is None:
        return Text("—")
    return Text("pass", style="green") if test["passed"] else Text("fail", style="red")


def _table(docs: list[dict[str, Any]], title: str) -> Table:
    t = Table(title=title, show_edge=False)
    for c in ("series", "freq", "returns", "window", "OOS", "method", "level",
              "breaches / exp.", "Kupiec", "Christoffersen", "cond. cov.", "pinball (bp)",
              "rejected refits"):
        left = c in ("series", "freq", "method", "Kupiec", "Christoffersen", "cond. cov.")
        t.add_column(c, justify="left" if left else "right")
    for d in docs:
        if "error" in d:
            t.add_row(d["asset"], d["series"]["frequency"], f"{d['returns_available']:,}",
                      "", "", Text(f"refused: {d['error']}", style="red"))
            continue
        first = True
        labels = {**METHOD_LABELS,
                  "model": f"model ({d['spec']['model']} {d['spec']['dist']})"}
        for r in d["rows"]:
            fitted = r["method"] in ("garch-normal", "model")
            t.add_row(
                d["asset"] if first else "", d["frequency"] if first else "",
                f"{d['returns']:,}" if first else "", f"{d['window']:,}" if first else "",
                f"{d['out_of_sample']:,}" if first else "", labels[r["method"]],
                f"{r['level']:.0%}",
                f"{r['violations']:,} / {r['expected']:,.1f}"
                + (f" ({r['observations']:,} periods)"
                   if r["observations"] != d["out_of_sample"] else ""),
                _verdict(r["kupiec"]), _verdict(r["christoffersen"]),
                _verdict(r["conditional"]),
                "—" if r["pinball"] is None else f"{r['pinball'] * 1e4:.4f}",
                f"{r['rejected_refits']:,} / {r['refits']:,}" if fitted else "—")
            first = False
        t.add_section()
    return t


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--last", type=int, default=None,
                    help="use at most the last N returns of each series (default: all)")
    ap.add_argument("--refit-every", type=int, default=20, help="periods between refits")
    ap.add_argument("--series", default=None,
                    help="comma-separated assets to run (default: all ten)")
    ap.add_argument("--jobs", type=int, default=1, help="series run in parallel")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()
    if args.last is not None and args.last < 1:
        ap.error(f"--last must be at least 1 (got {args.last})")
    if args.refit_every < 1:
        ap.error(f"--refit-every must be at least 1 (got {args.refit_every})")
    if args.jobs < 1:
        ap.error(f"--jobs must be at least 1 (got {args.jobs})")
    data = Path(os.environ.get("CONTAGION_DATA", ROOT / "data" / "market"))
    chosen = SERIES
    if args.series is not None:
        names = [s.strip() for s in args.series.split(",") if s.strip()]
        unknown = sorted(set(names) - {a for a, _, _ in SERIES})
        if unknown or not names:
            ap.error(f"--series must name some of {', '.join(a for a, _, _ in SERIES)} "
                     f"(got {args.series!r})")
        chosen = tuple(s for s in SERIES if s[0] in names)
    missing = [str(data / f) for _, _, f in chosen if not (data / f).is_file()]
    if missing:
        ap.error(f"price data missing: {', '.join(missing)} (see data/README.md)")
    console = Console(stderr=True)
    jobs = [(a, fr, str(data / f), args.last, args.refit_every) for a, fr, f in chosen]
    t0 = time.perf_counter()
    docs: list[dict[str, Any]] = []
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for d in pool.map(run_series, *zip(*jobs, strict=True)):
            console.print(f"{d['asset']}: {d['seconds']:.0f} s", highlight=False)
            docs.append(d)
    wall = time.perf_counter() - t0
    settings = {"last": args.last, "refit_every": args.refit_every, "jobs": args.jobs,
                "wall_s": round(wall, 1)}
    if args.json:
        print(json.dumps({"settings": settings, "series": docs}, indent=1))
        return
    last = f"at most the last {args.last:,} returns" if args.last else "all returns"
    title = (f"one-period VaR backtests ({last}; default window; refit every "
             f"{args.refit_every} periods; pass = p-value ≥ 5%)")
    Console(width=180).print(_table(docs, title))
    for d in docs:
        for m, msgs in d.get("rejections", {}).items():
            if msgs:
                print(f"{d['asset']} {METHOD_LABELS[m]}: {len(msgs)} refits rejected, e.g. "
                      f"{msgs[0]}")
    print(f"wall time {wall:.0f} s")


if __name__ == "__main__":
    main()
