"""The reference cascade kernel: one path at a time, one position at a time, written to be read.

A round (docs/architecture.md §4), for each path:

1. prices ``p = p0 · X · E`` (:mod:`simulate.cascade.mechanics`), and the oracle prices
   ``p̂ = p0 · o`` the lending protocols see (:mod:`simulate.cascade.oracles`);
2. every open lending position with ``HF = Σ c·p̂·LT / Σ d·p̂ < 1`` is liquidated (all of
   this step at ``p̂``; what is seized and the bad debt are then valued at ``p``): the close
   factor ``cf`` is the protocol's (``1`` below its ``full_close_threshold``); the liquidator
   repays ``cf`` of every debt and seizes the same fraction ``φ`` of every collateral asset,
   worth ``repaid · (1 + LB)`` with ``LB`` the collateral-value-weighted liquidation bonus.
   When the collateral is worth less than that, all of it is seized, the liquidator repays
   ``collateral / (1 + LB)`` and the rest of the debt is **bad debt** of the pool;
3. every open margin position (option legs in an options or perp pool) is marked to market —
   Black–Scholes at the shocked spot and implied vol (the leg's, or its underlying's surface
   at the leg's strike and expiry against the shocked spot; ``mechanics.leg_vols``) — and
   when its equity (collateral plus long marks minus short marks) is below the maintenance
   margin (``mm`` × short notional) it is closed: shorts bought back at mark × (1 + penalty),
   longs sold at mark, the cost paid from its collateral (sold), any excess bad debt of the
   venue;
4. dealers' option books are re-hedged (smile-consistent delta on a surface, Black–Scholes
   delta otherwise): where a move raised a dealer's delta in an underlying, it sells that
   much of it (traded when the round's hedge flow is worth at least
   ``hedge_tolerance_usd``);
5. everything sold goes into the route asset's reserve (fire-sale impact for the next round;
   ``impact_recovery`` of the earlier pressure has been absorbed meanwhile);
   bad debt beyond a protocol's reserve lowers its backing (issuer depeg for the next round).

The path stops when a round after the last exogenous step is quiet (nothing liquidated, no
hedge traded). The fast kernel (:mod:`simulate.cascade.fast`) must give the same results.
"""

from __future__ import annotations

import numpy as np

from graph.export import health_factor
from simulate.cascade.causes import CauseRecord
from simulate.cascade.liquidators import (
    liquidator_piece,
    net_impact,
    underwater_shortfall,
    update_pressure,
)
from simulate.cascade.mechanics import (
    asset_stress,
    endogenous,
    leg_vols,
    liquidation,
    margin_closeout,
    route_sales,
)
from simulate.cascade.oracles import OracleBook, oracle_book, settle_at_market
from simulate.cascade.params import CascadeParams
from simulate.cascade.paths import PathResults, Shocks
from simulate.cascade.system import CascadeSystem
from simulate.formulas.black_scholes import bs_price, smile_delta

__all__ = ["run_reference"]


def _lending(cs: CascadeSystem, i: int, p: np.ndarray, kc: float, kd: float,
             po: np.ndarray | None = None) -> tuple[bool, float, float, float, float]:
    """Liquidate lending position ``i`` (scales ``kc`` of its collateral and ``kd`` of its
    debt still open) if its health factor at oracle prices ``po`` (default: ``p``) is below 1,
    as the protocol computes it at ``po``; the seized collateral and the bad debt are valued at
    market prices ``p`` (``oracles.settle_at_market``). Returns (liquidated, phi, cf,
    seized_usd, bad_usd)."""
    q = p if po is None else po
    cv = w = lbv = 0.0
    for e in range(cs.c_ptr[i], cs.c_ptr[i + 1]):
        v = (cs.c_amount[e] * kc) * q[cs.c_asset[e]]
        cv += v
        w += v * cs.c_lt[e]
        lbv += v * cs.c_lb[e]
    dv = 0.0
    for e in range(cs.d_ptr[i], cs.d_ptr[i + 1]):
        dv += (cs.d_amount[e] * kd) * q[cs.d_asset[e]]
    if not (dv > 0 and w < dv):  # HF = w / dv >= 1
        return False, 0.0, 0.0, 0.0, 0.0
    k = cs.pool_protocol[cs.lend_pool[i]]
    phi, cf, seized, _, bad = liquidation(cv, lbv, dv, health_factor(w, dv),
                                          cs.close_factor[k], cs.full_close_threshold[k])
    if q is not p:
        cv_m = sum((cs.c_amount[e] * kc) * p[cs.c_asset[e]]
                   for e in range(cs.c_ptr[i], cs.c_ptr[i + 1]))
        dv_m = sum((cs.d_amount[e] * kd) * p[cs.d_asset[e]]
                   for e in range(cs.d_ptr[i], cs.d_ptr[i + 1]))
        seized, bad = settle_at_market(phi, bad, np.float64(dv), np.float64(cv_m),
                                       np.float64(dv_m))
    return True, float(phi), float(cf), float(seized), float(bad)


def _margin(cs: CascadeSystem, j: int, p: np.ndarray, vol_mult: np.ndarray, days: float
            ) -> tuple[bool, float, float, float]:
    """Margin check of margin position ``j``. Returns (called, phi, seized_usd, bad_usd)."""
    cv = 0.0
    for e in range(cs.oc_ptr[j], cs.oc_ptr[j + 1]):
        cv += cs.oc_amount[e] * p[cs.oc_asset[e]]
    marks = short_notional = shorts = longs = 0.0
    for leg in range(cs.leg_ptr[j], cs.leg_ptr[j + 1]):
        u = cs.leg_asset[leg]
        tau, vol, _ = leg_vols(cs, np.array([leg]), p, vol_mult, days)
        mark = float(bs_price(p[u], cs.leg_strike[leg], tau[0], vol[0], cs.leg_call[leg]))
        value = cs.leg_size[leg] * mark
        marks += cs.leg_sign[leg] * value
        if cs.leg_sign[leg] < 0:
            short_notional += cs.leg_size[leg] * p[u]
            shorts += value
        else:
            longs += value
    if not cv + marks < cs.opt_mm[j] * short_notional:
        return False, 0.0, 0.0, 0.0
    phi, seized, bad = margin_closeout(cv, shorts, longs, cs.opt_penalty[j])
    return True, float(phi), float(seized), float(bad)


def _dealer_delta(cs: CascadeSystem, open_margin: np.ndarray, p: np.ndarray,
                  vol_mult: np.ndarray, days: float) -> np.ndarray:
    """Net delta ``[A]`` (units of each underlying) of the open dealer books."""
    delta = np.zeros(cs.num_assets)
    for j in np.flatnonzero(cs.opt_dealer & open_margin):
        for leg in range(cs.leg_ptr[j], cs.leg_ptr[j + 1]):
            u = cs.leg_asset[leg]
            tau, vol, slope = leg_vols(cs, np.array([leg]), p, vol_mult, days)
            d = float(smile_delta(p[u], cs.leg_strike[leg], tau[0], vol[0], cs.leg_call[leg],
                                  slope[0]))
            delta[u] += cs.leg_sign[leg] * cs.leg_size[leg] * d
    return delta


def _piece(cs: CascadeSystem, params: CascadeParams, i: int, net: np.ndarray, p: np.ndarray,
           phi: float, cf: float, bad: float, kc: float, kd: float, tokens: np.ndarray
           ) -> float:
    """Share ``q`` of lending position ``i``'s liquidation ``(phi, cf, bad)`` that a liquidator
    takes this round (:func:`simulate.cascade.liquidators.liquidator_piece`; 0: none), with the
    seized collateral (sold) and, with ``debt_impact``, the repaid debt (bought) added to
    ``tokens``. The repaid share of the debt is ``cf - bad / dv``."""
    coll = np.zeros(cs.num_assets)
    for e in range(cs.c_ptr[i], cs.c_ptr[i + 1]):
        coll[cs.c_asset[e]] += phi * (cs.c_amount[e] * kc)
    owed = np.zeros(cs.num_assets)
    for e in range(cs.d_ptr[i], cs.d_ptr[i + 1]):
        owed[cs.d_asset[e]] += cs.d_amount[e] * kd
    dv = float(owed @ p)
    rho = cf - bad / dv if dv > 0 else 0.0
    q = float(liquidator_piece(cs, params, net, p, coll, rho * owed))
    if q > 0.0:
        tokens += q * coll
        if params.debt_impact:
            tokens -= (q * rho) * owed
    return q


def _underwater(cs: CascadeSystem, p: np.ndarray, kc: np.ndarray, kd: np.ndarray,
                open_lend: np.ndarray, bad_pool: np.ndarray, f_pool: np.ndarray,
                f_proto: np.ndarray, t: int) -> None:
    """At the end of the path: the shortfall ``max(dv - cv, 0)`` of every open lending position
    at the final prices ``p`` is bad debt of its pool (failure marks in round ``t``)."""
    for i in np.flatnonzero(open_lend):
        cv = sum((cs.c_amount[e] * kc[i]) * p[cs.c_asset[e]]
                 for e in range(cs.c_ptr[i], cs.c_ptr[i + 1]))
        dv = sum((cs.d_amount[e] * kd[i]) * p[cs.d_asset[e]]
                 for e in range(cs.d_ptr[i], cs.d_ptr[i + 1]))
        bad_pool[cs.lend_pool[i]] += float(underwater_shortfall(cv, dv))
    debt = np.bincount(cs.pool_protocol, weights=bad_pool, minlength=cs.num_protocols)
    f_pool[(bad_pool > 0) & (f_pool < 0)] = t
    f_proto[(debt > cs.reserve_usd) & (f_proto < 0)] = t


def _path(cs: CascadeSystem, price: np.ndarray, iv: np.ndarray, elapsed: np.ndarray,
          params: CascadeParams, pos_fail: np.ndarray, acct_fail: np.ndarray,
          book: OracleBook | None = None, causes: CauseRecord | None = None, k: int = 0,
          ) -> tuple[np.ndarray, np.ndarray, int, np.ndarray, np.ndarray, np.ndarray,
                     np.ndarray]:
    a_n, m_n, p_n = cs.num_assets, cs.num_pools, cs.num_protocols
    rounds_max, steps = params.rounds, price.shape[0]
    nl, no = len(cs.lend_pos), len(cs.opt_pos)
    kc, kd = np.ones(nl), np.ones(nl)
    open_lend, open_margin = np.ones(nl, dtype=bool), np.ones(no, dtype=bool)
    liquidated_pos: set[int] = set()
    sold = np.zeros(a_n)
    beta = np.ones(p_n)
    bad_pool = np.zeros(m_n)
    liq = np.zeros(rounds_max)
    rel = np.zeros((rounds_max + 1, a_n))
    f_proto = np.full(p_n, -1)
    f_pool = np.full(m_n, -1)
    f_asset = np.full(a_n, -1)
    hedge_p, hedge_v, hedge_days = cs.price0.copy(), np.ones(a_n), 0.0
    last_active, t = -1, 0
    stopped = False
    if book is None:
        book = oracle_book(cs, Shocks(price[None], iv[None], elapsed), params, 1)
    one = np.zeros(1, dtype=np.int64)
    causes = CauseRecord(cs, 1, rounds_max) if causes is None else causes
    row = np.array([k])

    def prices(t: int) -> tuple[np.ndarray, np.ndarray]:
        x = price[min(t, steps - 1)]
        imp = net_impact(cs, sold)
        e = endogenous(cs, imp, beta)
        stress = asset_stress(cs, x, e)
        below = stress < 1.0 - params.depeg_threshold
        failing = below & (f_asset < 0)
        f_asset[failing] = t
        causes.assets(row, below[None], x[None], imp[None], beta[None])
        return cs.price0 * x * e, x * e

    for t in range(rounds_max):
        s = min(t, steps - 1)
        p, rel[t] = prices(t)
        o = book.read(one, t, rel[t][None], beta[None])[0]
        po = p if params.oracles == "market" else cs.price0 * o
        vm, days = iv[s], float(elapsed[s])
        tokens = np.zeros(a_n)
        bad_new = np.zeros(m_n)
        called = np.zeros(no, dtype=bool)
        active = False
        for i in range(nl):
            if not open_lend[i]:
                continue
            hit, phi, cf, seized, bad = _lending(cs, i, p, kc[i], kd[i], po)
            if not hit:
                continue
            q = _piece(cs, params, i, sold, p, phi, cf, bad, kc[i], kd[i], tokens)
            if q <= 0.0:
                continue
            active = True
            liq[t] += q * seized
            bad_new[cs.lend_pool[i]] += q * bad
            causes.lending(row, t, np.array([i]), kc[i:i + 1], kd[i:i + 1], p[None],
                           np.array([q * phi]), np.array([q * bad]))
            kc[i] *= 1.0 - q * phi
            kd[i] *= 1.0 - q * cf
            if q * cf >= 1.0:
                open_lend[i] = False
            liquidated_pos.add(int(cs.lend_pos[i]))
        for j in range(no):
            if not open_margin[j]:
                continue
            hit, phi, seized, bad = _margin(cs, j, p, vm, days)
            if not hit:
                continue
            active = True
            for e in range(cs.oc_ptr[j], cs.oc_ptr[j + 1]):
                tokens[cs.oc_asset[e]] += phi * cs.oc_amount[e]
            liq[t] += seized
            bad_new[cs.arrays.position_pool[cs.opt_pos[j]]] += bad
            causes.margin(row, t, np.array([j]), np.array([phi]), np.array([bad]))
            open_margin[j] = False
            called[j] = True
            liquidated_pos.add(int(cs.opt_pos[j]))
        if params.dealer_hedging and cs.opt_dealer.any():
            if params.dealer_unwind and called.any():  # close the called dealers' hedges
                tokens -= _dealer_delta(cs, called, hedge_p, hedge_v, hedge_days)
            flow = (_dealer_delta(cs, open_margin, p, vm, days)
                    - _dealer_delta(cs, open_margin, hedge_p, hedge_v, hedge_days))
            if not params.dealer_buyback:
                flow = np.maximum(flow, 0.0)
            if flow.any() and float(np.abs(flow) @ p) >= params.hedge_tolerance_usd:
                tokens += flow
                hedge_p, hedge_v, hedge_days = p, vm, days
                active = True
        sold = update_pressure(cs, sold, route_sales(cs, tokens, p), params.impact_recovery)
        bad_pool = bad_pool + bad_new
        debt = np.bincount(cs.pool_protocol, weights=bad_pool, minlength=p_n)
        beta, failed = (v[0] for v in causes.settle(row, debt[None]))
        f_pool[(bad_pool > 0) & (f_pool < 0)] = t
        f_proto[failed & (f_proto < 0)] = t
        if active:
            last_active = t
        elif t >= steps - 1 and not book.pending(one)[0]:  # oracles caught up too
            stopped = True
            break
    if stopped:
        rel[t + 1:] = rel[t]
    else:
        _, rel[rounds_max] = prices(rounds_max)
    if params.underwater_bad_debt:
        _underwater(cs, cs.price0 * rel[rounds_max], kc, kd, open_lend, bad_pool, f_pool,
                    f_proto, t)
        op = np.flatnonzero(open_lend)
        causes.underwater(np.full(len(op), k), op, kc[op], kd[op],
                          np.tile(cs.price0 * rel[rounds_max], (len(op), 1)), row,
                          f_proto[None], beta[None])
    for i in liquidated_pos:
        pos_fail[i] += 1
    accounts = {int(cs.arrays.position_account[i]) for i in liquidated_pos}
    for u in accounts:
        acct_fail[u] += 1
    return bad_pool, liq, last_active + 1, rel, f_proto, f_pool, f_asset


def run_reference(cs: CascadeSystem, shocks: Shocks, params: CascadeParams) -> PathResults:
    """Run every path of ``shocks`` through the cascade (see the module docstring)."""
    if params.rounds < shocks.num_steps:
        raise ValueError(f"rounds must be at least the scenario's steps ({shocks.num_steps}) "
                         f"(got {params.rounds})")
    n = shocks.num_paths
    pos_fail = np.zeros(cs.arrays.num_positions, dtype=np.int64)
    acct_fail = np.zeros(len(cs.arrays.account_ids), dtype=np.int64)
    causes = CauseRecord(cs, n, params.rounds)
    out = [_path(cs, shocks.price[k], shocks.iv[k], shocks.elapsed_days, params, pos_fail,
                 acct_fail, oracle_book(cs, shocks, params, 1), causes, k) for k in range(n)]
    return PathResults(
        bad_debt_pool=np.array([o[0] for o in out]).reshape(n, cs.num_pools),
        liquidated_usd=np.array([o[1] for o in out]).reshape(n, params.rounds),
        rounds=np.array([o[2] for o in out], dtype=np.int64),
        price_rel=np.array([o[3] for o in out], dtype=np.float32).reshape(
            n, params.rounds + 1, cs.num_assets),
        fail_protocol=np.array([o[4] for o in out], dtype=np.int16).reshape(
            n, cs.num_protocols),
        fail_pool=np.array([o[5] for o in out], dtype=np.int16).reshape(n, cs.num_pools),
        fail_asset=np.array([o[6] for o in out], dtype=np.int16).reshape(n, cs.num_assets),
        position_failures=pos_fail,
        account_failures=acct_fail,
        **causes.results(),
    )
