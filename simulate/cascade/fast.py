"""The fast cascade kernel: the model of :mod:`simulate.cascade.reference`, vectorised over
paths, that touches only the positions a path's prices can reach.

**Who can be liquidated at these prices is a search.** Lending positions are grouped by
(pool, collateral asset set, debt asset set) and sorted by their health factor at snapshot
prices ``HF0``. With ``s = p / p0`` a path's relative prices, every position ``i`` of group
``g`` has ``HF_i(s) ≥ HF0_i · min_{a ∈ C_g} s_a / max_{b ∈ D_g} s_b``, so only the positions
with ``HF0 < τ_g = max_D s / min_C s`` can be below 1 (``s`` the oracle prices relative to the
snapshot, :mod:`simulate.cascade.oracles`: positions are judged at them): a prefix of the
group, found by one
``searchsorted`` over all groups at once (keys ``g + HF0 / (1 + HF0)``). For single-collateral
single-debt groups the bound is exact. Positions past every prefix a path reaches are never
looked at (pruned); those inside enter the path's *watch table* once and are evaluated
exactly — with their own scales of collateral and debt left after partial liquidations — in
every round until closed.

**Margin positions are pruned by a corner bound**: for the active paths of a chunk, equity is
bounded below and the margin requirement above by marking shorts at the highest spot/vol the
chunk reaches (puts at the lowest spot), longs at the least favourable, collateral at the
lowest prices; only positions that fail the bound are marked path by path. Paths are sorted by
severity before chunking, so a chunk's corners are tight.

The bound holds with surfaces too: a contract's vol differs by path (it moves with the spot),
so the corners take each contract's highest and lowest vol over the chunk's paths (a mark rises
with the vol, and a call's with the spot, a put's as it falls, at any fixed vol).

Marks use each distinct contract once per path (``[paths, contracts]``), legs gather from it.
All arithmetic per position is the reference's, in the same order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from graph.export import health_factor
from simulate.cascade.causes import CauseRecord
from simulate.cascade.liquidators import (
    lending_pieces,
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
from simulate.cascade.oracles import oracle_book, settle_at_market
from simulate.cascade.params import CascadeParams
from simulate.cascade.paths import PathResults, Shocks
from simulate.cascade.system import CascadeSystem
from simulate.formulas.black_scholes import bs_price, smile_delta

__all__ = ["run_fast"]

_SEARCH_SLACK = 1e-9  # relative widening of the search bound (float safety; exact check after)


def _expand(starts: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For ranges ``[starts[i], starts[i] + counts[i])``: (owner of each element, element)."""
    total = int(counts.sum())
    owner = np.repeat(np.arange(len(counts)), counts)
    offs = np.cumsum(counts) - counts
    return owner, starts[owner] + (np.arange(total) - offs[owner])


@dataclass
class _Table:
    """Watched (path, lending position) pairs of a chunk, open ones only."""

    path: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    pos: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    kc: np.ndarray = field(default_factory=lambda: np.zeros(0))
    kd: np.ndarray = field(default_factory=lambda: np.zeros(0))
    hit: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    floor: np.ndarray = field(default_factory=lambda: np.zeros(0))  # HF lower bound

    def append(self, path: np.ndarray, pos: np.ndarray) -> None:
        n = len(path)
        self.path = np.concatenate([self.path, path])
        self.pos = np.concatenate([self.pos, pos])
        self.kc = np.concatenate([self.kc, np.ones(n)])
        self.kd = np.concatenate([self.kd, np.ones(n)])
        self.hit = np.concatenate([self.hit, np.zeros(n, dtype=bool)])
        self.floor = np.concatenate([self.floor, np.full(n, -np.inf)])

    def keep(self, mask: np.ndarray) -> None:
        for k in ("path", "pos", "kc", "kd", "hit", "floor"):
            setattr(self, k, getattr(self, k)[mask])


class _Chunk:
    """The state of a chunk of paths and one round's work on it."""

    def __init__(self, cs: CascadeSystem, shocks: Shocks, params: CascadeParams):
        n, a_n = shocks.num_paths, cs.num_assets
        self.cs, self.shocks, self.params = cs, shocks, params
        r = params.rounds
        self.sold = np.zeros((n, a_n))
        self.beta = np.ones((n, cs.num_protocols))
        self.bad_pool = np.zeros((n, cs.num_pools))
        self.liq = np.zeros((n, r))
        self.rel = np.zeros((n, r + 1, a_n))
        self.f_proto = np.full((n, cs.num_protocols), -1, dtype=np.int64)
        self.f_pool = np.full((n, cs.num_pools), -1, dtype=np.int64)
        self.f_asset = np.full((n, a_n), -1, dtype=np.int64)
        self.last_active = np.full(n, -1, dtype=np.int64)
        self.hedge_p = np.tile(cs.price0, (n, 1))
        self.hedge_v = np.ones((n, a_n))
        self.hedge_days = np.zeros(n)
        self.table = _Table()
        self.k_prev = np.tile(cs.group_start[:-1], (n, 1))
        self.open_margin = np.ones((n, len(cs.opt_pos)), dtype=bool)
        self.events: list[np.ndarray] = []  # (chunk path, position) of first liquidations
        self.pool_to_proto = np.zeros((cs.num_pools, cs.num_protocols))
        self.pool_to_proto[np.arange(cs.num_pools), cs.pool_protocol] = 1.0
        self.c_empty = np.diff(cs.group_c_ptr) == 0
        self.gc_starts = np.minimum(cs.group_c_ptr[:-1], max(len(cs.group_c_asset) - 1, 0))
        self.gd_starts = cs.group_d_ptr[:-1]
        self.leg_owner = np.repeat(np.arange(len(cs.opt_pos)), np.diff(cs.leg_ptr))
        self.oc_owner = np.repeat(np.arange(len(cs.opt_pos)), np.diff(cs.oc_ptr))
        self.dealers = np.flatnonzero(cs.opt_dealer)
        self.called = np.zeros((n, len(cs.opt_pos)), dtype=bool)  # margin-called this round
        self.end_round = np.full(n, r - 1, dtype=np.int64)  # a path's last round
        self.causes = CauseRecord(cs, n, r)
        self.book = oracle_book(cs, shocks, params, n)
        self.orel_prev = np.ones((n, a_n))  # last round's oracle prices relative to p0

    # --- prices -------------------------------------------------------------------------------

    def prices(self, act: np.ndarray, t: int) -> tuple[np.ndarray, np.ndarray]:
        cs, steps = self.cs, self.shocks.num_steps
        x = self.shocks.price[act, min(t, steps - 1)]
        imp = net_impact(cs, self.sold[act])
        e = endogenous(cs, imp, self.beta[act])
        stress = asset_stress(cs, x, e)
        f = self.f_asset[act]
        below = stress < 1.0 - self.params.depeg_threshold
        f[below & (f < 0)] = t
        self.f_asset[act] = f
        self.causes.assets(act, below, x, imp, self.beta[act])
        return cs.price0 * x * e, x * e

    # --- lending -------------------------------------------------------------------------------

    def _spread(self, rel: np.ndarray) -> np.ndarray:
        """``max_D rel / min_C rel`` per path and group ``[n, G]`` (inf without collateral):
        ``HF(rel) >= HF(1) / spread`` for every position of the group."""
        cs = self.cs
        if len(cs.group_c_asset):
            cmin = np.minimum.reduceat(rel[:, cs.group_c_asset], self.gc_starts, axis=1)
        else:
            cmin = np.zeros((len(rel), cs.num_groups))
        cmin = np.where(self.c_empty, 0.0, cmin)
        dmax = np.maximum.reduceat(rel[:, cs.group_d_asset], self.gd_starts, axis=1)
        with np.errstate(divide="ignore"):
            return np.where(cmin > 0, dmax / np.where(cmin > 0, cmin, 1.0), np.inf)

    def _search(self, act: np.ndarray, rel: np.ndarray) -> None:
        """Add to the watch table every position newly inside its group's reachable prefix."""
        cs = self.cs
        if cs.num_groups == 0:
            return
        tau = self._spread(rel) * (1.0 + _SEARCH_SLACK)
        u = np.where(np.isfinite(tau), tau / (1.0 + tau), 1.0)
        query = np.arange(cs.num_groups) + u
        k = np.searchsorted(cs.keys, query, side="left")
        k = np.minimum(k, cs.group_start[1:])
        prev = self.k_prev[act]
        new = np.maximum(k - prev, 0)
        rows, groups = np.nonzero(new)
        if len(rows):
            owner, idx = _expand(prev[rows, groups], new[rows, groups])
            self.table.append(act[rows][owner], cs.order[idx])
            self.k_prev[act] = np.maximum(prev, k)

    def _lower_floors(self, act: np.ndarray, rel: np.ndarray, t: int) -> None:
        """Carry every watched position's health-factor floor from last round's prices to
        this round's: ``HF(now) >= HF(then) / spread(now / then)``."""
        tb, cs = self.table, self.cs
        if t == 0 or not len(tb.path):
            return
        spread = np.full((len(self.liq), cs.num_groups), np.inf)
        with np.errstate(divide="ignore", invalid="ignore"):
            spread[act] = self._spread(rel / self.orel_prev[act])
        tb.floor = tb.floor / spread[tb.path, cs.lend_group[tb.pos]]

    def lending(self, act: np.ndarray, on: np.ndarray, t: int, p_full: np.ndarray,
                tokens: np.ndarray, bad_new: np.ndarray, hit_path: np.ndarray,
                po_full: np.ndarray | None = None) -> None:
        """Liquidate the watched positions below ``HF = 1`` at oracle prices ``po_full``
        (default: the market's ``p_full``); seized value and bad debt at market."""
        cs, tb, a_n, m_n = self.cs, self.table, self.cs.num_assets, self.cs.num_pools
        q_full = p_full if po_full is None else po_full
        sel = np.flatnonzero(on[tb.path] & (tb.floor < 1.0 + _SEARCH_SLACK))
        if not len(sel):
            return
        li, path = tb.pos[sel], tb.path[sel]
        kc, kd = tb.kc[sel], tb.kd[sel]
        ca, base = cs.cm_asset[li], (path * a_n)[:, None]
        p_flat = q_full.ravel()
        v = (cs.cm_amount[li] * kc[:, None]) * p_flat[base + ca]
        cv = v.sum(axis=1)
        w = (v * cs.cm_lt[li]).sum(axis=1)
        lbv = (v * cs.cm_lb[li]).sum(axis=1)
        dv = ((cs.dm_amount[li] * kd[:, None]) * p_flat[base + cs.dm_asset[li]]).sum(axis=1)
        hit = (dv > 0) & (w < dv)
        hf = health_factor(w, dv)
        tb.floor[sel] = hf
        if not hit.any():
            return
        h = np.flatnonzero(hit)
        cvh, dvh = cv[h], dv[h]
        proto = cs.pool_protocol[cs.lend_pool[li[h]]]
        phi, cf, seized, _, bad = liquidation(cvh, lbv[h], dvh, hf[h],
                                              cs.close_factor[proto],
                                              cs.full_close_threshold[proto])
        if q_full is not p_full:
            m_flat, bh = p_full.ravel(), base[h]
            cv_m = ((cs.cm_amount[li[h]] * kc[h, None]) * m_flat[bh + ca[h]]).sum(axis=1)
            dv_m = ((cs.dm_amount[li[h]] * kd[h, None])
                    * m_flat[bh + cs.dm_asset[li[h]]]).sum(axis=1)
            seized, bad = settle_at_market(phi, bad, dvh, cv_m, dv_m)
        q, coll, repay = lending_pieces(cs, self.params, self.sold[path[h]], p_full[path[h]],
                                        li[h], kc[h], kd[h], phi, cf, bad)
        go = q > 0.0
        h, q, coll, repay = h[go], q[go], coll[go], repay[go]
        phi, cf, seized, bad = q * phi[go], q * cf[go], q * seized[go], q * bad[go]
        if self.params.debt_impact:
            np.subtract.at(tokens, path[h], q[:, None] * repay)
        closed = cf >= 1.0
        ph = path[h]
        self.causes.lending(ph, t, li[h], kc[h], kd[h], p_full[ph], phi, bad)
        taken = phi[:, None] * (cs.cm_amount[li[h]] * kc[h, None])
        tokens += np.bincount((ph[:, None] * a_n + ca[h]).ravel(), weights=taken.ravel(),
                              minlength=tokens.size).reshape(tokens.shape)
        self.liq[:, t] += np.bincount(ph, weights=seized, minlength=len(self.liq))
        bad_new += np.bincount(ph * m_n + cs.lend_pool[li[h]], weights=bad,
                               minlength=bad_new.size).reshape(bad_new.shape)
        hit_path[ph] = True
        idx = sel[h]
        first = ~tb.hit[idx]
        self.events.append(np.stack([ph[first], cs.lend_pos[li[h][first]]]))
        tb.hit[idx] = True
        tb.kc[idx] = kc[h] * (1.0 - phi)
        tb.kd[idx] = kd[h] * (1.0 - cf)
        with np.errstate(divide="ignore", invalid="ignore"):
            tb.floor[idx] = np.where(closed, np.inf, hf[h] * (1.0 - phi) / (1.0 - cf))
        keep = np.ones(len(tb.path), dtype=bool)
        keep[idx[closed]] = False
        tb.keep(keep)

    # --- margin -------------------------------------------------------------------------------

    def _marks(self, spot: np.ndarray, vol: np.ndarray, tau: np.ndarray) -> np.ndarray:
        """Per-unit marks ``[n, I]`` of every distinct contract at spots ``[n, A]``, vols
        ``[n, I]`` and times to expiry ``[I]`` (:meth:`_vols`)."""
        cs = self.cs
        legs = cs.inst_leg
        return bs_price(spot[:, cs.leg_asset[legs]], cs.leg_strike[legs], tau, vol,
                        cs.leg_call[legs])

    def _vols(self, p: np.ndarray, vm: np.ndarray, days: float
              ) -> tuple[np.ndarray, np.ndarray]:
        """``(τ [I], σ [n, I])`` of every distinct contract (``mechanics.leg_vols``)."""
        tau, vol, _ = leg_vols(self.cs, self.cs.inst_leg, p, vm, days)
        return tau, vol

    def _candidates(self, p: np.ndarray, vol: np.ndarray, tau: np.ndarray) -> np.ndarray:
        """Margin positions that the corner bound cannot clear for these paths."""
        cs = self.cs
        lo, hi = p.min(axis=0, keepdims=True), p.max(axis=0, keepdims=True)
        vlo, vhi = vol.min(axis=0, keepdims=True), vol.max(axis=0, keepdims=True)
        inst_call = cs.leg_call[cs.inst_leg]
        # shorts: calls worst at high spot, puts at low spot, both at high vol
        short_ub = np.where(inst_call, self._marks(hi, vhi, tau)[0],
                            self._marks(lo, vhi, tau)[0])
        long_lb = np.where(inst_call, self._marks(lo, vlo, tau)[0],
                           self._marks(hi, vlo, tau)[0])
        short = cs.leg_sign < 0
        mark = np.where(short, -short_ub[cs.leg_instrument], long_lb[cs.leg_instrument])
        n_o = len(cs.opt_pos)
        legs_value = np.bincount(self.leg_owner, weights=cs.leg_size * mark, minlength=n_o)
        notional = np.bincount(self.leg_owner, weights=np.where(
            short, cs.leg_size * hi[0, cs.leg_asset], 0.0), minlength=n_o)
        cv = np.bincount(self.oc_owner, weights=cs.oc_amount * lo[0, cs.oc_asset],
                         minlength=n_o)
        eq, req = cv + legs_value, cs.opt_mm * notional
        slack = 1e-9 * (np.abs(cv) + np.abs(legs_value) + req + 1.0)
        return np.flatnonzero(eq - req < slack)

    def margin(self, act: np.ndarray, t: int, p: np.ndarray, vm: np.ndarray, days: float,
               tokens: np.ndarray, bad_new: np.ndarray, hit_path: np.ndarray) -> None:
        cs, a_n, m_n = self.cs, self.cs.num_assets, self.cs.num_pools
        if not len(cs.opt_pos):
            return
        tau, vol = self._vols(p, vm, days)
        cand = self._candidates(p, vol, tau)
        if not len(cand):
            return
        marks = self._marks(p, vol, tau)  # [n_act, I]
        excess = cs.excess[cand] @ np.concatenate([p, marks], axis=1).T  # [cand, n_act]
        called_pairs = (excess.T < 0) & self.open_margin[np.ix_(act, cand)]
        rows, cols = np.nonzero(called_pairs)
        if not len(rows):
            return
        j = cand[cols]
        n_e = len(j)
        lw, leg = _expand(cs.leg_ptr[j], cs.leg_ptr[j + 1] - cs.leg_ptr[j])
        value = cs.leg_size[leg] * marks[rows[lw], cs.leg_instrument[leg]]
        short = cs.leg_sign[leg] < 0
        shorts = np.bincount(lw, weights=np.where(short, value, 0.0), minlength=n_e)
        longs = np.bincount(lw, weights=np.where(short, 0.0, value), minlength=n_e)
        cw, ce = _expand(cs.oc_ptr[j], cs.oc_ptr[j + 1] - cs.oc_ptr[j])
        cv = np.bincount(cw, weights=cs.oc_amount[ce] * p[rows[cw], cs.oc_asset[ce]],
                         minlength=n_e)
        phi, seized, bad = margin_closeout(cv, shorts, longs, cs.opt_penalty[j])
        path = act[rows]
        self.causes.margin(path, t, j, phi, bad)
        tokens += np.bincount(path[cw] * a_n + cs.oc_asset[ce],
                              weights=phi[cw] * cs.oc_amount[ce],
                              minlength=tokens.size).reshape(tokens.shape)
        self.liq[:, t] += np.bincount(path, weights=seized, minlength=len(self.liq))
        pool = cs.arrays.position_pool[cs.opt_pos[j]]
        bad_new += np.bincount(path * m_n + pool, weights=bad,
                               minlength=bad_new.size).reshape(bad_new.shape)
        hit_path[path] = True
        self.open_margin[path, j] = False
        self.called[path, j] = True
        self.events.append(np.stack([path, cs.opt_pos[j]]))

    def _dealer_delta(self, act: np.ndarray, p: np.ndarray, vm: np.ndarray,
                      days: np.ndarray, include: np.ndarray | None = None) -> np.ndarray:
        """Net delta ``[len(act), A]`` of the dealer books open (or in ``include [n, NO]``)."""
        cs = self.cs
        out = np.zeros((len(act), cs.num_assets))
        books = self.open_margin if include is None else include
        for j in self.dealers:
            open_ = books[act, j]
            for leg in range(cs.leg_ptr[j], cs.leg_ptr[j + 1]):
                u = cs.leg_asset[leg]
                tau, vol, slope = leg_vols(cs, np.array([leg]), p, vm, days)
                d = smile_delta(p[:, u], cs.leg_strike[leg], tau[:, 0], vol[:, 0],
                                cs.leg_call[leg], slope[:, 0])
                out[:, u] += np.where(open_, cs.leg_sign[leg] * cs.leg_size[leg] * d, 0.0)
        return out

    def hedge(self, act: np.ndarray, p: np.ndarray, vm: np.ndarray, days: float,
              tokens: np.ndarray, hit_path: np.ndarray) -> None:
        if not (self.params.dealer_hedging and len(self.dealers)):
            return
        called, self.called[act] = self.called.copy(), False
        if self.params.dealer_unwind and called[act].any():  # close the called dealers' hedges
            tokens[act] -= self._dealer_delta(act, self.hedge_p[act], self.hedge_v[act],
                                              self.hedge_days[act], called)
        now = self._dealer_delta(act, p, vm, np.full(len(act), days))
        then = self._dealer_delta(act, self.hedge_p[act], self.hedge_v[act],
                                  self.hedge_days[act])
        flow = now - then
        if not self.params.dealer_buyback:
            flow = np.maximum(flow, 0.0)
        trade = (flow != 0).any(axis=1) & ((np.abs(flow) * p).sum(axis=1)
                                           >= self.params.hedge_tolerance_usd)
        if not trade.any():
            return
        rows = np.flatnonzero(trade)
        tokens[act[rows]] += flow[rows]
        self.hedge_p[act[rows]] = p[rows]
        self.hedge_v[act[rows]] = vm[rows]
        self.hedge_days[act[rows]] = days
        hit_path[act[rows]] = True

    # --- driver --------------------------------------------------------------------------------

    def run(self) -> PathResults:
        cs, params, shocks = self.cs, self.params, self.shocks
        n, steps = shocks.num_paths, shocks.num_steps
        a_n = cs.num_assets
        done = np.zeros(n, dtype=bool)
        for t in range(params.rounds):
            act = np.flatnonzero(~done)
            if not len(act):
                break
            s = min(t, steps - 1)
            p, rel = self.prices(act, t)
            self.rel[act, t] = rel
            vm, days = shocks.iv[act, s], float(shocks.elapsed_days[s])
            on = np.zeros(n, dtype=bool)
            on[act] = True
            p_full = np.zeros((n, a_n))
            p_full[act] = p
            tokens = np.zeros((n, a_n))
            bad_new = np.zeros((n, cs.num_pools))
            hit_path = np.zeros(n, dtype=bool)
            o = self.book.read(act, t, rel, self.beta[act])
            po_full = p_full
            if params.oracles != "market":
                po_full = np.zeros((n, a_n))
                po_full[act] = cs.price0 * o
            self._lower_floors(act, o, t)
            self._search(act, o)
            self.orel_prev[act] = o
            self.lending(act, on, t, p_full, tokens, bad_new, hit_path, po_full)
            self.margin(act, t, p, vm, days, tokens, bad_new, hit_path)
            self.hedge(act, p, vm, days, tokens, hit_path)
            self.sold[act] = update_pressure(cs, self.sold[act], route_sales(cs, tokens[act], p),
                                             params.impact_recovery)
            self.bad_pool[act] = self.bad_pool[act] + bad_new[act]
            debt = self.bad_pool[act] @ self.pool_to_proto
            self.beta[act], failed = self.causes.settle(act, debt)
            fp = self.f_pool[act]
            fp[(self.bad_pool[act] > 0) & (fp < 0)] = t
            self.f_pool[act] = fp
            fk = self.f_proto[act]
            fk[failed & (fk < 0)] = t
            self.f_proto[act] = fk
            self.last_active[act[hit_path[act]]] = t
            quiet = (act[~hit_path[act] & ~self.book.pending(act)] if t >= steps - 1
                     else act[:0])  # nothing happened and the oracles have caught up
            done[quiet] = True
            self.end_round[quiet] = t
            self.rel[quiet, t + 1:] = self.rel[quiet, t][:, None, :]
        rest = np.flatnonzero(~done)
        if len(rest):
            _, self.rel[rest, params.rounds] = self.prices(rest, params.rounds)
        if params.underwater_bad_debt:
            self._underwater()
            tb = self.table
            self.causes.underwater(tb.path, tb.pos, tb.kc, tb.kd,
                                   (cs.price0 * self.rel[:, -1])[tb.path], np.arange(n),
                                   self.f_proto, self.beta)
        return self._results()

    def _underwater(self) -> None:
        """At the end of each path: the shortfall ``max(dv - cv, 0)`` of every open lending
        position at the final market prices is bad debt of its pool (failure marks in the
        path's last round). Every position below ``HF = 1`` at those prices is watched once the
        search has run at them (``cv < dv`` implies ``HF < 1``)."""
        cs, tb, n = self.cs, self.table, len(self.liq)
        rel = self.rel[:, -1]
        self._search(np.arange(n), rel)
        if not len(tb.path):
            return
        p = (cs.price0 * rel)[tb.path]
        rows = np.arange(len(tb.path))[:, None]
        cv = ((cs.cm_amount[tb.pos] * tb.kc[:, None]) * p[rows, cs.cm_asset[tb.pos]]).sum(axis=1)
        dv = ((cs.dm_amount[tb.pos] * tb.kd[:, None]) * p[rows, cs.dm_asset[tb.pos]]).sum(axis=1)
        short = underwater_shortfall(cv, dv)
        m_n = cs.num_pools
        self.bad_pool += np.bincount(tb.path * m_n + cs.lend_pool[tb.pos], weights=short,
                                     minlength=n * m_n).reshape(n, m_n)
        debt = self.bad_pool @ self.pool_to_proto
        end = np.broadcast_to(self.end_round[:, None], self.f_pool.shape)
        self.f_pool = np.where((self.bad_pool > 0) & (self.f_pool < 0), end, self.f_pool)
        end = np.broadcast_to(self.end_round[:, None], self.f_proto.shape)
        self.f_proto = np.where((debt > cs.reserve_usd) & (self.f_proto < 0), end, self.f_proto)

    def _results(self) -> PathResults:
        cs = self.cs
        n_pos, n_acct = cs.arrays.num_positions, len(cs.arrays.account_ids)
        ev = np.concatenate(self.events, axis=1) if self.events else np.zeros((2, 0), np.int64)
        pos_fail = np.bincount(ev[1], minlength=n_pos).astype(np.int64)
        hit = np.zeros((len(self.liq), n_acct), dtype=bool)
        hit[ev[0], cs.arrays.position_account[ev[1]]] = True
        acct_fail = hit.sum(axis=0, dtype=np.int64)
        return PathResults(
            bad_debt_pool=self.bad_pool,
            liquidated_usd=self.liq,
            rounds=self.last_active + 1,
            price_rel=self.rel.astype(np.float32),
            fail_protocol=self.f_proto.astype(np.int16),
            fail_pool=self.f_pool.astype(np.int16),
            fail_asset=self.f_asset.astype(np.int16),
            position_failures=pos_fail,
            account_failures=acct_fail,
            **self.causes.results(),
        )


def _severity(cs: CascadeSystem, shocks: Shocks) -> np.ndarray:
    """Exposure-weighted log price move at the last step (most negative = most severe)."""
    weight = np.bincount(cs.c_asset, weights=cs.c_amount * cs.price0[cs.c_asset],
                         minlength=cs.num_assets).astype(float)  # int64 when empty
    weight += np.bincount(cs.leg_asset, weights=cs.leg_size * cs.price0[cs.leg_asset],
                          minlength=cs.num_assets)
    return np.log(shocks.price[:, -1, :]) @ weight


def run_fast(cs: CascadeSystem, shocks: Shocks, params: CascadeParams, *,
             chunk_paths: int = 128, progress: Callable[[int], None] | None = None,
             ) -> PathResults:
    """Run every path of ``shocks``; results in the paths' order. ``progress(k)`` is called
    with the number of paths finished after each chunk."""
    if params.rounds < shocks.num_steps:
        raise ValueError(f"rounds must be at least the scenario's steps ({shocks.num_steps}) "
                         f"(got {params.rounds})")
    if chunk_paths < 1:
        raise ValueError(f"chunk_paths must be >= 1 (got {chunk_paths})")
    order = np.argsort(_severity(cs, shocks), kind="stable")
    parts = []
    for lo in range(0, shocks.num_paths, chunk_paths):
        rows = order[lo:lo + chunk_paths]
        parts.append(_Chunk(cs, shocks.take(rows), params).run())
        if progress is not None:
            progress(len(rows))
    res = PathResults.concat(parts)
    inverse = np.empty_like(order)
    inverse[order] = np.arange(len(order))
    return res.take(inverse)
