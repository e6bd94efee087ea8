"""Risk metrics of a cascade run, from its :class:`PathResults` (docs/architecture.md §4.8).

Failure, per node type (the probability is the share of paths in which it happens; its
standard error the binomial ``sqrt(p (1 - p) / n)``):

- **position**: liquidated (lending) or margin-called (options/perp) at least once;
- **account**: at least one of its positions failed;
- **pool**: bad debt arose in it;
- **protocol**: its bad debt exceeded its reserve (``reserve_usd``), so depositors lose;
- **asset**: its price fell more than ``depeg_threshold`` below its reference (peg target,
  USD for an unpegged stablecoin, its exogenous path for anything else).

Loss distributions: bad debt (sum over pools) and liquidated value (collateral seized, all
rounds) per path; VaR and CVaR (expected shortfall) with Monte Carlo standard errors from
:func:`simulate.risk.tail_risk`. The marginal contribution of each protocol is its Euler
share of the bad-debt CVaR (:func:`simulate.risk.euler_contributions`): the contributions
sum to the CVaR. Contagion paths: the failed protocols and assets of a path in the order they
failed (ties in a round by protocol before asset, then id), first four, counted over paths.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from simulate.cascade.paths import PathResults
from simulate.risk import euler_contributions, tail_risk

__all__ = ["LEVELS", "summarize"]

LEVELS = (0.95, 0.99)
_PATH_LENGTH = 4


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


def _contagion_paths(res: PathResults, protocol_ids: np.ndarray, asset_ids: np.ndarray,
                     top: int) -> list[dict[str, Any]]:
    names = np.concatenate([protocol_ids, asset_ids]).astype(str)
    fail = np.concatenate([res.fail_protocol, res.fail_asset], axis=1).astype(np.int64)
    kind = np.concatenate([np.zeros(len(protocol_ids)), np.ones(len(asset_ids))])
    counts: Counter[tuple[str, ...]] = Counter()
    for row in fail:
        hit = np.flatnonzero(row >= 0)
        if not len(hit):
            continue
        order = sorted(hit, key=lambda j: (row[j], kind[j], names[j]))[:_PATH_LENGTH]
        counts[tuple(names[j] for j in order)] += 1
    n = res.num_paths
    return [{"path": list(k), "count": c, "probability": c / n}
            for k, c in counts.most_common(top)]


def summarize(res: PathResults, *, protocol_ids: np.ndarray, pool_ids: np.ndarray,
              asset_ids: np.ndarray, pool_protocol: np.ndarray, position_ids: np.ndarray,
              account_ids: np.ndarray, top_paths: int = 10) -> dict[str, Any]:
    """The metrics of a run as plain JSON-ready data (see the module docstring)."""
    n = res.num_paths
    by_proto = np.zeros((n, len(protocol_ids)))
    np.add.at(by_proto.T, pool_protocol, res.bad_debt_pool.T)
    bad = res.bad_debt_pool.sum(axis=1)
    liq = res.liquidated_usd.sum(axis=1)
    return {
        "paths": n,
        "bad_debt_usd": _dist(bad),
        "liquidated_usd": _dist(liq),
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
            "protocol": _probs(res.fail_protocol, protocol_ids),
            "pool": _probs(res.fail_pool, pool_ids),
            "asset": _probs(res.fail_asset, asset_ids),
            "account": _top(res.account_failures, account_ids, n),
            "position": _top(res.position_failures, position_ids, n),
        },
        "contagion_paths": _contagion_paths(res, protocol_ids, asset_ids, top_paths),
    }
