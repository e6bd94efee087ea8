"""What made each node fail: the cause record both kernels keep, and the causal chains the
metrics count (docs/architecture.md §4.7).

Every failed protocol and asset of a path gets a cause code and a source node, chosen when it
first fails from the components of its loss at that moment, the largest one (ties within a
relative 1e-9 go to the earliest candidate, so rounding in sums cannot change the answer):

- an **asset** judged on ``stress = x_rel · I · β_issuer`` (``mechanics.asset_stress``;
  ``x_rel`` its exogenous move against its peg target, or against USD for a stablecoin without
  one, 1 for any other asset) fails by the smallest factor: :data:`SHOCK` (the scenario's own
  move: a scenario input, shown as a shock, not a failure), :data:`ISSUER` (its issuer's
  backing; source: the issuer protocol) or :data:`FIRE_SALE` (its own fire-sale impact);
- a **protocol** whose ``bad debt + cross-deposit losses`` first exceeds its reserve fails by
  the largest of: bad debt from liquidations attributed to one asset (:data:`BAD_DEBT`;
  source: that asset), bad debt from margin closeouts attributed to one underlying
  (:data:`MARGIN`), the loss on its deposits in one protocol (:data:`CROSS_DEPOSIT`; source:
  that protocol). A liquidation's bad debt is attributed to the position's asset whose move
  cost the most since the snapshot (collateral value lost, or debt value gained); a closeout's
  to the underlying of its largest short leg (by notional at snapshot prices).

:data:`ORACLE` is reserved for bad debt caused by an oracle move (not recorded yet).

The record is ``[n, P]`` / ``[n, A]`` codes (int8, :data:`NONE` where the node did not fail)
and sources (int16: an asset index for ``BAD_DEBT``/``MARGIN``, a protocol index for
``ISSUER``/``CROSS_DEPOSIT``, -1 otherwise). A chain follows sources back while the source
failed before the node (in the same round an asset before a protocol, prices being read before
liquidations; a protocol's cross-deposit loss from one failing in the same round, the backing
fixed point being solved at once), so chains are causal; a chain stops where it would repeat.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from simulate.cascade.mechanics import backing, cross_loss
from simulate.cascade.system import CascadeSystem

__all__ = [
    "BAD_DEBT",
    "CAUSE_NAMES",
    "CROSS_DEPOSIT",
    "FIRE_SALE",
    "ISSUER",
    "MARGIN",
    "NONE",
    "ORACLE",
    "SHOCK",
    "CauseRecord",
    "asset_causes",
    "bad_debt_sources",
    "causal_chains",
    "margin_sources",
    "protocol_causes",
]

NONE, SHOCK, FIRE_SALE, ISSUER, BAD_DEBT, MARGIN, CROSS_DEPOSIT, ORACLE = range(8)
#: short names of the cause codes, as the metrics write them
CAUSE_NAMES = ("unrecorded", "shock", "fire sale", "issuer", "bad debt", "margin",
               "cross-deposit", "oracle")
_TIE = 1e-9


def _first_max(cand: np.ndarray) -> np.ndarray:
    """Index of the first entry of the last axis within ``_TIE`` (relative) of its max."""
    top = cand.max(axis=-1, keepdims=True)
    return np.argmax(cand >= top - _TIE * np.abs(top), axis=-1)


def asset_causes(cs: CascadeSystem, x: np.ndarray, imp: np.ndarray, beta: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """``(code, source) [..., A]`` of an asset failing at exogenous multipliers ``x``,
    fire-sale multipliers ``imp [..., A]`` and backing ``beta [..., P]`` (module docstring)."""
    peg, iss = cs.peg_target, cs.issuer
    target = np.where(peg >= 0, peg, 0)
    exo = np.where(peg >= 0, x / x[..., target], np.where(cs.stable, x, 1.0))
    back = np.where(iss >= 0, beta[..., np.maximum(iss, 0)], 1.0)
    # largest log-loss = smallest factor; order of preference on ties: shock, issuer, sale
    k = _first_max(-np.stack(np.broadcast_arrays(exo, back, imp), axis=-1))
    code = np.array([SHOCK, ISSUER, FIRE_SALE], dtype=np.int8)[k]
    src = np.where(k == 1, iss, -1).astype(np.int16)
    return code, src


def bad_debt_sources(cs: CascadeSystem, li: np.ndarray, kc: np.ndarray, kd: np.ndarray,
                     p: np.ndarray) -> np.ndarray:
    """The asset ``[k]`` each liquidated lending position ``li [k]`` (open shares ``kc``,
    ``kd [k]`` before the liquidation, prices ``p [k, A]``) owes its bad debt to: the one
    whose move cost the most, ``c·k_c·(p0 - p)`` of a collateral or ``d·k_d·(p - p0)`` of a
    debt asset."""
    rows = np.arange(len(li))[:, None]
    ca, da = cs.cm_asset[li], cs.dm_asset[li]
    lost = cs.cm_amount[li] * kc[:, None] * (cs.price0[ca] - p[rows, ca])
    gained = cs.dm_amount[li] * kd[:, None] * (p[rows, da] - cs.price0[da])
    cand = np.concatenate([np.where(cs.cm_amount[li] > 0, lost, -np.inf),
                           np.where(cs.dm_amount[li] > 0, gained, -np.inf)], axis=1)
    return np.concatenate([ca, da], axis=1)[np.arange(len(li)), _first_max(cand)]


def margin_sources(cs: CascadeSystem, j: np.ndarray) -> np.ndarray:
    """The underlying ``[k]`` of the largest short leg (notional at snapshot prices; the
    largest leg without shorts) of each margin position ``j [k]``."""
    out = np.zeros(len(j), dtype=np.int64)
    for r, jj in enumerate(np.asarray(j).tolist()):
        legs = np.arange(cs.leg_ptr[jj], cs.leg_ptr[jj + 1])
        notional = cs.leg_size[legs] * cs.price0[cs.leg_asset[legs]]
        short = cs.leg_sign[legs] < 0
        w = np.where(short, notional, -np.inf) if short.any() else notional
        out[r] = cs.leg_asset[legs[_first_max(w)]]
    return out


def protocol_causes(cs: CascadeSystem, bad_src: np.ndarray, beta: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray]:
    """``(code, source) [..., P]`` of a protocol failing with bad debt ``bad_src [..., P, 2A]``
    by source (liquidations through asset ``a`` at ``a``, margin closeouts on underlying ``a``
    at ``A + a``) and backing ``beta [..., P]`` (its cross-deposit losses by protocol)."""
    a_n = cs.num_assets
    xl = cs.cross * (1.0 - beta)[..., None, :]  # [..., P, P]: k's loss on deposits in j
    k = _first_max(np.concatenate([bad_src, xl], axis=-1))
    code = np.where(k < a_n, BAD_DEBT, np.where(k < 2 * a_n, MARGIN, CROSS_DEPOSIT))
    src = np.where(k < a_n, k, np.where(k < 2 * a_n, k - a_n, k - 2 * a_n))
    return code.astype(np.int8), src.astype(np.int16)


def _how(code: int, src: str) -> str:
    return {SHOCK: "scenario shock", FIRE_SALE: "fire sale", ISSUER: f"issuer {src} under-backed",
            BAD_DEBT: f"bad debt on {src}", MARGIN: f"margin calls on {src}",
            CROSS_DEPOSIT: f"loss on deposits in {src}",
            ORACLE: f"oracle move of {src}"}.get(code, "cause not recorded")


def _chains_of_path(fail_p: np.ndarray, fail_a: np.ndarray, cause_p: np.ndarray,
                    src_p: np.ndarray, cause_a: np.ndarray, src_a: np.ndarray,
                    protocol_ids: np.ndarray, asset_ids: np.ndarray
                    ) -> set[tuple[tuple[str, str, str], ...]]:
    """The causal chains of one path (root first), one ending at each failed node that is no
    other failure's cause. A step is ``(node, kind, how)``."""
    p_n = len(protocol_ids)
    # node index: protocols 0..P-1, assets P..P+A-1; (round, phase) orders causes in time
    when = {}
    for k in np.flatnonzero(fail_p >= 0):
        when[int(k)] = (int(fail_p[k]), 1)
    for a in np.flatnonzero(fail_a >= 0):
        when[p_n + int(a)] = (int(fail_a[a]), 0)

    def name(v: int) -> str:
        return str(protocol_ids[v]) if v < p_n else str(asset_ids[v - p_n])

    def parent(v: int) -> tuple[int | None, str, str]:
        """(failed cause node or None, how v failed, a shock step for a cause that did not
        fail first)."""
        code = int(cause_p[v]) if v < p_n else int(cause_a[v - p_n])
        s = int(src_p[v]) if v < p_n else int(src_a[v - p_n])
        if s < 0:
            return None, _how(code, ""), ""
        on_asset = code in (BAD_DEBT, MARGIN, ORACLE)
        u = p_n + s if on_asset else s
        how = _how(code, name(u))
        # a cross-deposit loss arrives in the round its source fails (one fixed point)
        if u in when and (when[u] < when[v] or (code == CROSS_DEPOSIT and when[u] == when[v])):
            return u, how, ""
        return None, how, name(u) if on_asset else ""

    def chain(leaf: int) -> tuple[tuple[str, str, str], ...]:
        steps: list[tuple[str, str, str]] = []
        seen: set[int] = set()
        v: int | None = leaf
        while v is not None and v not in seen:
            seen.add(v)
            covered.add(v)
            u, how, moved = parent(v)
            code = int(cause_p[v]) if v < p_n else int(cause_a[v - p_n])
            kind = "protocol" if v < p_n else ("shock" if code == SHOCK else "asset")
            steps.append((name(v), kind, how))
            if moved:
                steps.append((moved, "shock", "scenario move"))
            v = u
        return tuple(reversed(steps))

    caused = {u for v in when if (u := parent(v)[0]) is not None}
    covered: set[int] = set()
    chains = [chain(v) for v in sorted(when) if v not in caused]
    chains += [chain(v) for v in sorted(when) if v not in covered]  # cycles of same-round losses
    return {c for c in chains if any(kind != "shock" for _, kind, _ in c)}


def causal_chains(fail_protocol: np.ndarray, fail_asset: np.ndarray,
                  protocol_cause: np.ndarray, protocol_cause_src: np.ndarray,
                  asset_cause: np.ndarray, asset_cause_src: np.ndarray, *,
                  protocol_ids: np.ndarray, asset_ids: np.ndarray, top: int
                  ) -> list[dict[str, Any]]:
    """The ``top`` most frequent causal chains over ``n`` paths (arrays ``[n, P]``,
    ``[n, A]``), most frequent first (ties by the chain), whole: ``path`` (node ids, root
    first), ``steps`` (``node``, ``kind``: protocol, asset (failed), or shock: a scenario
    input, an asset past the threshold by the scenario's own move or one whose move caused a
    loss without failing; ``how``), ``count`` (paths in which it happened) and
    ``probability``. A scenario input that caused no failure is no chain."""
    n = len(fail_protocol)
    counts: Counter[tuple[tuple[str, str, str], ...]] = Counter()
    for i in range(n):
        counts.update(_chains_of_path(fail_protocol[i], fail_asset[i], protocol_cause[i],
                                      protocol_cause_src[i], asset_cause[i],
                                      asset_cause_src[i], protocol_ids, asset_ids))
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    return [{"path": [s[0] for s in chain],
             "steps": [{"node": s[0], "kind": s[1], "how": s[2]} for s in chain],
             "count": c, "probability": c / n} for chain, c in ranked]


class CauseRecord:
    """The cause record of ``n`` paths (rows) and what both kernels add to a run besides it:
    collateral seized at snapshot prices per round and each protocol's cross-deposit loss.
    The kernels call it at the same points of a round with the same arguments (one row at a
    time in the reference, the chunk's rows in the fast kernel)."""

    def __init__(self, cs: CascadeSystem, n: int, rounds: int):
        p_n, a_n = cs.num_protocols, cs.num_assets
        self.cs = cs
        self.bad_src = np.zeros((n, p_n, 2 * a_n))
        self.protocol_cause = np.zeros((n, p_n), dtype=np.int8)
        self.protocol_cause_src = np.full((n, p_n), -1, dtype=np.int16)
        self.asset_cause = np.zeros((n, a_n), dtype=np.int8)
        self.asset_cause_src = np.full((n, a_n), -1, dtype=np.int16)
        self.liquidated_snapshot_usd = np.zeros((n, rounds))
        self.cross_loss_protocol = np.zeros((n, p_n))
        owner = np.repeat(np.arange(len(cs.lend_pos)), np.diff(cs.c_ptr))
        self.c_value0 = np.bincount(owner, weights=cs.c_amount * cs.price0[cs.c_asset],
                                    minlength=len(cs.lend_pos))
        owner = np.repeat(np.arange(len(cs.opt_pos)), np.diff(cs.oc_ptr))
        self.oc_value0 = np.bincount(owner, weights=cs.oc_amount * cs.price0[cs.oc_asset],
                                     minlength=len(cs.opt_pos))

    def assets(self, rows: np.ndarray, below: np.ndarray, x: np.ndarray, imp: np.ndarray,
               beta: np.ndarray) -> None:
        """Rows' assets ``below [k, A]`` the depeg threshold at exogenous ``x``, fire-sale
        ``imp [k, A]`` and backing ``beta [k, P]``: record the first failure's cause."""
        new = below & (self.asset_cause[rows] == NONE)
        if not new.any():
            return
        code, src = asset_causes(self.cs, x, imp, beta)
        self.asset_cause[rows] = np.where(new, code, self.asset_cause[rows])
        self.asset_cause_src[rows] = np.where(new, src, self.asset_cause_src[rows])

    def lending(self, rows: np.ndarray, t: int, li: np.ndarray, kc: np.ndarray,
                kd: np.ndarray, p: np.ndarray, phi: np.ndarray, bad: np.ndarray) -> None:
        """Liquidations of lending positions ``li [k]`` on rows ``rows [k]`` in round ``t``
        (open shares before it, market prices ``p [k, A]``, fraction seized, bad debt)."""
        np.add.at(self.liquidated_snapshot_usd[:, t], rows, phi * kc * self.c_value0[li])
        b = bad > 0
        if b.any():
            src = bad_debt_sources(self.cs, li[b], kc[b], kd[b], p[b])
            proto = self.cs.pool_protocol[self.cs.lend_pool[li[b]]]
            np.add.at(self.bad_src, (rows[b], proto, src), bad[b])

    def margin(self, rows: np.ndarray, t: int, j: np.ndarray, phi: np.ndarray,
               bad: np.ndarray) -> None:
        """Closeouts of margin positions ``j [k]`` on rows ``rows [k]`` in round ``t``."""
        np.add.at(self.liquidated_snapshot_usd[:, t], rows, phi * self.oc_value0[j])
        b = bad > 0
        if b.any():
            cs = self.cs
            proto = cs.pool_protocol[cs.arrays.position_pool[cs.opt_pos[j[b]]]]
            np.add.at(self.bad_src, (rows[b], proto, cs.num_assets + margin_sources(cs, j[b])),
                      bad[b])

    def underwater(self, rows: np.ndarray, li: np.ndarray, kc: np.ndarray, kd: np.ndarray,
                   p: np.ndarray, paths: np.ndarray, fail_protocol: np.ndarray,
                   beta: np.ndarray) -> None:
        """End of the path: attribute the shortfall of open lending positions ``li [k]`` (rows
        ``rows [k]``, open shares, final prices ``p [k, A]``) like a liquidation's bad debt,
        then give every protocol of rows ``paths [m]`` failed by then (``fail_protocol [m,
        P]``) but without a cause its cause (backing ``beta [m, P]``)."""
        from simulate.cascade.liquidators import underwater_shortfall

        cs, r = self.cs, np.arange(len(li))[:, None]
        cv = (cs.cm_amount[li] * kc[:, None] * p[r, cs.cm_asset[li]]).sum(axis=1)
        dv = (cs.dm_amount[li] * kd[:, None] * p[r, cs.dm_asset[li]]).sum(axis=1)
        short = np.asarray(underwater_shortfall(cv, dv), dtype=float)
        b = short > 0
        if b.any():
            src = bad_debt_sources(cs, li[b], kc[b], kd[b], p[b])
            np.add.at(self.bad_src, (rows[b], cs.pool_protocol[cs.lend_pool[li[b]]], src),
                      short[b])
        new = (fail_protocol >= 0) & (self.protocol_cause[paths] == NONE)
        if new.any():
            code, src2 = protocol_causes(cs, self.bad_src[paths], beta)
            self.protocol_cause[paths] = np.where(new, code, self.protocol_cause[paths])
            self.protocol_cause_src[paths] = np.where(new, src2,
                                                      self.protocol_cause_src[paths])

    def settle(self, rows: np.ndarray, debt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Backing ``β [k, P]`` of the rows' protocols with bad debt ``debt [k, P]``, and which
        of them are failed (``bad debt + cross-deposit losses > reserve``), recording the
        cause of each first failure and the cross-deposit losses."""
        cs = self.cs
        beta = backing(cs, debt)
        xl = cross_loss(cs, beta)
        failed = debt + xl > cs.reserve_usd
        self.cross_loss_protocol[rows] = xl
        new = failed & (self.protocol_cause[rows] == NONE)
        if new.any():
            code, src = protocol_causes(cs, self.bad_src[rows], beta)
            self.protocol_cause[rows] = np.where(new, code, self.protocol_cause[rows])
            self.protocol_cause_src[rows] = np.where(new, src, self.protocol_cause_src[rows])
        return beta, failed

    def results(self) -> dict[str, np.ndarray]:
        """The arrays :class:`~simulate.cascade.paths.PathResults` takes from the record."""
        return {k: getattr(self, k) for k in (
            "liquidated_snapshot_usd", "cross_loss_protocol", "protocol_cause",
            "protocol_cause_src", "asset_cause", "asset_cause_src")}
