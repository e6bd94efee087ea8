"""Implied-vol surface accuracy on the Deribit BTC chain of 2020-05-14, and the spot-vol fit.

RMSE in vol points against ``mark_iv`` over one out-of-the-money quote per (expiry, strike)
(:func:`simulate.market.surface.surface_quotes`), for:

- **SVI surface** (:func:`~simulate.market.surface.fit_surface`, spread-weighted);
- **quadratic, as built**: :func:`~simulate.market.implied_vol.iv_model_from_chain`'s one
  smile (the nearest expiry at least 7 days out, near-the-money window), read at every quote's
  ``k = ln(K/F)`` whatever its expiry (what the old model could offer the cascade);
- **quadratic per expiry**: :func:`~simulate.market.implied_vol.fit_smile` on each expiry's
  quotes (open interest + 1 weights), every strike: the quadratic given the same data as SVI.

Two samples: **in-sample** (fitted on every quote, scored on every quote) and **hold-out**
(the chain has one day only: per expiry, every other strike in strike order, starting with the
second, is held back; the models are fitted on the rest of the chain and scored on the held-back
quotes). Both fits of a row run here on the same data; nothing is timed. Also printed: the
spot-vol regression of DVOL on BTC returns (:func:`~simulate.market.surface.fit_spot_vol`).

    python bench/surface.py [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from simulate.market.implied_vol import deribit_chain, fit_smile, iv_model_from_chain, smile
from simulate.market.surface import fit_spot_vol, fit_surface, read_vol_index, surface_quotes
from simulate.prices import read_closes

DATA = Path(os.environ.get("CONTAGION_DATA", Path(__file__).resolve().parents[1] / "data"))
CHAIN = DATA / "market" / "deribit" / "btc_options_chain_2020-05-14.csv"
DVOL = DATA / "market" / "deribit" / "dvol_btc_daily_kalyar197.csv"
BTC = DATA / "market" / "prices_daily" / "btc-usd-max_erickfm.csv"


def _rmse(err: np.ndarray) -> float:
    return float(np.sqrt(np.mean(err ** 2))) * 100.0


def _quadratic_per_expiry(train: pd.DataFrame, test: pd.DataFrame, chain: pd.DataFrame
                          ) -> np.ndarray:
    oi = chain.set_index("instrument")["open_interest"]
    out = np.full(len(test), np.nan)
    for e, g in train.groupby("expiry"):
        atm, skew, curv = fit_smile(g["k"].to_numpy(), g["mark_iv"].to_numpy(),
                                    oi.loc[g["instrument"]].to_numpy() + 1.0)
        sel = (test["expiry"] == e).to_numpy()
        out[sel] = smile(atm, test["k"].to_numpy()[sel], skew=skew, curvature=curv)
    return out


def _scores(train_chain: pd.DataFrame, test: pd.DataFrame, chain: pd.DataFrame
            ) -> dict[str, dict[str, float]]:
    train = surface_quotes(train_chain)
    surf = fit_surface(train_chain)
    quad = iv_model_from_chain(train_chain).smiles["BTC"]
    k, mark = test["k"].to_numpy(), test["mark_iv"].to_numpy()
    two = (np.isfinite(test["bid_iv"]) & np.isfinite(test["ask_iv"])).to_numpy()
    fits = {"SVI surface": surf.vol(k, test["tau"].to_numpy()),
            "quadratic, as built": smile(quad.atm, k, skew=quad.skew,
                                         curvature=quad.curvature),
            "quadratic per expiry": _quadratic_per_expiry(train, test, chain)}
    out = {}
    for name, fit in fits.items():
        err = fit - mark
        out[name] = {"all": _rmse(err), "two_sided": _rmse(err[two]),
                     "max_abs": float(np.abs(err).max()) * 100.0,
                     "week_plus": _rmse(err[(test["tau"] * 365 >= 7).to_numpy()])}
    out["_points"] = {"all": float(len(test)), "two_sided": float(two.sum())}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    chain = deribit_chain(pd.read_csv(CHAIN))
    quotes = surface_quotes(chain)
    in_sample = _scores(chain, quotes, chain)
    held = np.zeros(len(quotes), dtype=bool)
    for _, g in quotes.groupby("expiry"):
        held[g.index[1::2]] = True
    held_strikes = set(zip(quotes["expiry"][held], quotes["strike"][held], strict=True))
    keep = [(e, s) not in held_strikes
            for e, s in zip(chain["expiry"], chain["strike"], strict=True)]
    hold_out = _scores(chain[keep], quotes[held].reset_index(drop=True), chain)
    surf = fit_surface(chain)
    dyn = fit_spot_vol(read_vol_index(DVOL), read_closes(BTC, "BTC").series)
    result = {"in_sample": in_sample, "hold_out": hold_out,
              "slices": [{"expiry": s.label, "days": s.tau * 365, "quotes": s.quotes,
                          "rmse_vol_points": s.rmse * 100} for s in surf.slices],
              "checks": surf.checks.model_dump() if surf.checks else None,
              "spot_vol": dyn.model_dump()}
    if args.json:
        print(json.dumps(result, indent=1, default=str))
        return
    con = Console()
    for title, sc in (("in-sample", in_sample), ("hold-out (every other strike)", hold_out)):
        pts = sc["_points"]
        t = Table(title=f"RMSE vs mark_iv, vol points: {title} "
                        f"({pts['all']:.0f} quotes, {pts['two_sided']:.0f} two-sided)")
        for c in ("model", "all quotes", "two-sided quotes", "expiries >= 7 days", "max |err|"):
            t.add_column(c, justify="right" if c != "model" else "left")
        for name, r in sc.items():
            if name.startswith("_"):
                continue
            t.add_row(name, f"{r['all']:.2f}", f"{r['two_sided']:.2f}", f"{r['week_plus']:.2f}",
                      f"{r['max_abs']:.1f}")
        con.print(t)
    t = Table(title="SVI slices (in-sample)")
    for c in ("expiry", "days", "quotes", "RMSE (vol pts)"):
        t.add_column(c, justify="right")
    for s in result["slices"]:
        t.add_row(s["expiry"], f"{s['days']:.2f}", str(s["quotes"]), f"{s['rmse_vol_points']:.2f}")
    con.print(t)
    ch = surf.checks
    if ch is not None:
        con.print(f"butterfly: min g = {ch.butterfly_min_g:.4f} ({ch.butterfly_at}, k = "
                  f"{ch.butterfly_k:.2f}); calendar: min Δw = {ch.calendar_min_dw:.2e} "
                  f"({ch.calendar_at}, k = {ch.calendar_k:.2f}) on {ch.points} points of "
                  f"[{ch.k_min:g}, {ch.k_max:g}]")
    se = (dyn.down_se or math.nan, dyn.up_se or math.nan)
    con.print(f"spot-vol (DVOL vs BTC, {dyn.observations} days {dyn.first}..{dyn.last}): "
              f"down = {dyn.down:.3f} ± {se[0]:.3f}, up = {dyn.up:.3f} ± {se[1]:.3f}, "
              f"intercept = {dyn.intercept:.4f}, R² = {dyn.r_squared:.3f}")


if __name__ == "__main__":
    main()
