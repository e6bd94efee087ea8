"""Risk metrics of a cascade run, from its :class:`PathResults` (docs/architecture.md §4.8).

Failure, per node type (the probability is the share of paths in which it happens; its
standard error the binomial ``sqrt(p (1 - p) / n)``):

- **position**: liquidated (lending) or margin-called (options/perp) at least once;
- **account**: at least one of its positions failed;
- **pool**: bad debt arose in it;
- **protocol**: its bad debt plus its losses on deposits in other protocols exceeded its
  reserve (``reserve_usd``), so depositors lose; reported with the reserve, the mean bad debt
  and cross-deposit loss, and the largest loss of a path (a protocol with losses and no
  failure had them below its reserve);
- **asset**: its price fell more than ``depeg_threshold`` below its reference (peg target,
  USD for an unpegged stablecoin, its exogenous path for anything else) for a reason of the
  cascade's (fire sale, issuer); ``p_shock``: the share of paths in which the scenario's own
  move took it past the threshold first (a scenario input, not a failure).

Loss distributions: bad debt (sum over pools) and liquidated value (collateral seized, all
rounds) per path; VaR and CVaR (expected shortfall) with Monte Carlo standard errors from
:func:`simulate.risk.tail_risk`. The marginal contribution of each protocol is its Euler
share of the bad-debt CVaR (:func:`simulate.risk.euler_contributions`): the contributions
sum to the CVaR. Liquidated value is reported at execution prices (the prices of the round
the collateral was seized in) and at snapshot prices. Contagion paths: chains of causes (A
failed because of B, which failed because of C; :mod:`simulate.cascade.causes`), whole,
counted over paths.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from simulate.cascade.causes import SHOCK, causal_chains
from simulate.cascade.paths import PathResults
from simulate.risk import euler_contributions, tail_risk

__all__ = ["LEVELS", "summarize"]

LEVELS = (0.95, 0.99)


def _dist(x: np.ndarray) -> dict[str, Any]:
    n = len(x)
    out: dict[str, Any] = {
        "mean": float(x.mean()),
        "mean_se": float(x.std(ddof=1) / np.sqrt(n)) if n > 1 else 0.0,
        "p_positive": float((x > 0).mean()),
        "max": float(x.max()),
    }
    for level in LEVELS:
        r = tail_risk(x, level)
        out[f"{level:g}"] = {"var": r.var, "var_se": r.var_se, "cvar": r.cvar,
                             "cvar_se": r.cvar_se}
    return out


def _probs(fail: np.ndarray, ids: np.ndarray) -> dict[str, dict[str, float]]:
    n = fail.shape[0]
    p = (fail >= 0).mean(axis=0)
    se = np.sqrt(p * (1 - p) / n)
    return {str(i): {"p": float(a), "se": float(b)} for i, a, b in zip(ids, p, se, strict=True)}


def _top(counts: np.ndarray, ids: np.ndarray, n: int, k: int = 20) -> dict[str, Any]:
    p = counts / n
    top = np.argsort(-p, kind="stable")[:k]
    return {"failing": int((counts > 0).sum()), "of": len(ids),
            "top": {str(ids[i]): float(p[i]) for i in top if p[i] > 0}}


def _protocol_probs(res: PathResults, by_proto: np.ndarray, protocol_ids: np.ndarray,
                    reserve_usd: np.ndarray | None) -> dict[str, dict[str, float | None]]:
    """Per protocol: ``p``, ``se``, and the threshold its losses are judged against
    (``reserve_usd``; ``None`` when not given), mean bad debt and cross-deposit loss, and the
    largest loss (bad debt + cross-deposit loss) of any path."""
    out: dict[str, dict[str, float | None]] = {}
    probs = _probs(res.fail_protocol, protocol_ids)
    loss = by_proto + res.cross_loss_protocol
    for k, key in enumerate(protocol_ids):
        row: dict[str, float | None] = dict(probs[str(key)])
        row["reserve_usd"] = None if reserve_usd is None else float(reserve_usd[k])
        row["bad_debt_usd"] = float(by_proto[:, k].mean())
        row["cross_loss_usd"] = float(res.cross_loss_protocol[:, k].mean())
        row["max_loss_usd"] = float(loss[:, k].max())
        out[str(key)] = row
    return out


def _asset_probs(res: PathResults, asset_ids: np.ndarray) -> dict[str, dict[str, float]]:
    """Per asset: ``p`` (and ``se``) of a failure the cascade caused, ``p_shock`` of the
    scenario's own move past the threshold."""
    n = res.num_paths
    failed = res.fail_asset >= 0
    shock = failed & (res.asset_cause == SHOCK)
    p, ps = (failed & ~shock).mean(axis=0), shock.mean(axis=0)
    se = np.sqrt(p * (1 - p) / n)
    return {str(i): {"p": float(a), "se": float(b), "p_shock": float(c)}
            for i, a, b, c in zip(asset_ids, p, se, ps, strict=True)}


def summarize(res: PathResults, *, protocol_ids: np.ndarray, pool_ids: np.ndarray,
              asset_ids: np.ndarray, pool_protocol: np.ndarray, position_ids: np.ndarray,
              account_ids: np.ndarray, reserve_usd: np.ndarray | None = None,
              top_paths: int = 20) -> dict[str, Any]:
    """The metrics of a run as plain JSON-ready data (see the module docstring);
    ``reserve_usd [P]``: each protocol's failure threshold, reported with its probability."""
    n = res.num_paths
    by_proto = np.zeros((n, len(protocol_ids)))
    np.add.at(by_proto.T, pool_protocol, res.bad_debt_pool.T)
    bad = res.bad_debt_pool.sum(axis=1)
    liq = res.liquidated_usd.sum(axis=1)
    return {
        "paths": n,
        "bad_debt_usd": _dist(bad),
        "liquidated_usd": _dist(liq),
        **({} if np.isnan(res.liquidated_snapshot_usd).any() else {
            "liquidated_snapshot_usd": _dist(res.liquidated_snapshot_usd.sum(axis=1))}),
        "bad_debt_by_protocol_usd": {str(k): float(v)
                                     for k, v in zip(protocol_ids, by_proto.mean(axis=0),
                                                     strict=True)},
        "marginal_contribution_usd": {
            f"{level:g}": {str(k): float(v) for k, v in zip(
                protocol_ids, euler_contributions(by_proto, level), strict=True)}
            for level in LEVELS},
        "liquidated_by_round_usd": [float(v) for v in res.liquidated_usd.mean(axis=0)],
        "rounds_to_stability": {
            "mean": float(res.rounds.mean()), "max": int(res.rounds.max()),
            "histogram": [int(v) for v in np.bincount(res.rounds)]},
        "failure_probability": {
            "protocol": _protocol_probs(res, by_proto, protocol_ids, reserve_usd),
            "pool": _probs(res.fail_pool, pool_ids),
            "asset": _asset_probs(res, asset_ids),
            "account": _top(res.account_failures, account_ids, n),
            "position": _top(res.position_failures, position_ids, n),
        },
        "contagion_paths": causal_chains(
            res.fail_protocol, res.fail_asset, res.protocol_cause, res.protocol_cause_src,
            res.asset_cause, res.asset_cause_src, protocol_ids=protocol_ids,
            asset_ids=asset_ids, top=top_paths),
    }
