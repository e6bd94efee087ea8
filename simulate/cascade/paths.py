"""What goes into a kernel (:class:`Shocks`) and what comes out (:class:`PathResults`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["PathResults", "Shocks"]


@dataclass(frozen=True, eq=False)
class Shocks:
    """Exogenous inputs of ``n`` paths over ``S`` steps for ``A`` system assets.

    ``price``: price multiplier relative to the snapshot, ``[n, S, A]``, > 0 (step ``s`` is
    the cumulative move up to the end of step ``s``); ``iv``: implied-volatility multiplier,
    ``[n, S, A]``, > 0; ``elapsed_days``: time since the snapshot at the end of each step
    ``[S]``. Round ``t`` of the cascade sees step ``min(t, S - 1)``.
    """

    price: np.ndarray
    iv: np.ndarray
    elapsed_days: np.ndarray

    def __post_init__(self) -> None:
        if self.price.ndim != 3:
            raise ValueError(f"price must be [num_paths, num_steps, num_assets] (got "
                             f"{list(self.price.shape)})")
        if self.iv.shape != self.price.shape:
            raise ValueError(f"iv must have the shape of price {list(self.price.shape)} "
                             f"(got {list(self.iv.shape)})")
        if self.elapsed_days.shape != (self.price.shape[1],):
            raise ValueError(f"elapsed_days must be [num_steps] = [{self.price.shape[1]}] "
                             f"(got {list(self.elapsed_days.shape)})")
        for name in ("price", "iv"):
            v = getattr(self, name)
            if not (np.isfinite(v).all() and (v > 0).all()):
                raise ValueError(f"{name} multipliers must be finite and > 0")

    @property
    def num_paths(self) -> int:
        return int(self.price.shape[0])

    @property
    def num_steps(self) -> int:
        return int(self.price.shape[1])

    def take(self, rows: np.ndarray | slice) -> Shocks:
        """The paths ``rows`` (in that order)."""
        return Shocks(self.price[rows], self.iv[rows], self.elapsed_days)


@dataclass(frozen=True, eq=False)
class PathResults:
    """Per-path outcomes of ``n`` paths (shapes for ``R`` rounds, ``P`` protocols, ``M``
    pools, ``A`` assets, ``N`` positions, ``U`` accounts).

    - ``bad_debt_pool [n, M]``: bad debt left in each pool at the end (USD at the prices of
      the round it arose);
    - ``liquidated_usd [n, R]``: collateral seized per round (USD);
    - ``rounds [n]``: rounds to stability (one past the last round in which anything was
      liquidated or hedged; ``R`` if the path was still moving at the horizon);
    - ``price_rel [n, R + 1, A]``: prices relative to the snapshot at the start of each round,
      then after the last round (float32);
    - ``fail_protocol [n, P]``, ``fail_pool [n, M]``, ``fail_asset [n, A]``: the round in which
      each node first failed, -1 if it did not;
    - ``position_failures [N]``, ``account_failures [U]``: number of paths in which each
      position was liquidated (margin-called) / each account had a position liquidated.
    """

    bad_debt_pool: np.ndarray
    liquidated_usd: np.ndarray
    rounds: np.ndarray
    price_rel: np.ndarray
    fail_protocol: np.ndarray
    fail_pool: np.ndarray
    fail_asset: np.ndarray
    position_failures: np.ndarray
    account_failures: np.ndarray

    @property
    def num_paths(self) -> int:
        return int(self.rounds.shape[0])

    @staticmethod
    def concat(parts: list[PathResults]) -> PathResults:
        """The paths of ``parts`` one after the other; failure counts summed."""
        if not parts:
            raise ValueError("nothing to concatenate")
        cat = {k: np.concatenate([getattr(p, k) for p in parts])
               for k in ("bad_debt_pool", "liquidated_usd", "rounds", "price_rel",
                         "fail_protocol", "fail_pool", "fail_asset")}
        return PathResults(
            **cat,
            position_failures=np.sum([p.position_failures for p in parts], axis=0),
            account_failures=np.sum([p.account_failures for p in parts], axis=0),
        )

    def take(self, rows: np.ndarray) -> PathResults:
        """Reorder the per-path arrays (failure counts are order-free and kept)."""
        return PathResults(
            self.bad_debt_pool[rows], self.liquidated_usd[rows], self.rounds[rows],
            self.price_rel[rows], self.fail_protocol[rows], self.fail_pool[rows],
            self.fail_asset[rows], self.position_failures, self.account_failures)
