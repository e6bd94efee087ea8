"""What goes into a kernel (:class:`Shocks`) and what comes out (:class:`PathResults`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["PathResults", "Shocks"]


@dataclass(frozen=True, eq=False)
class Shocks:
    """Exogenous inputs of ``n`` paths over ``S`` steps for ``A`` system assets.

    ``price``: price multiplier relative to the snapshot, ``[n, S, A]``, > 0 (step ``s`` is
    the cumulative move up to the end of step ``s``); ``iv``: implied-volatility multiplier,
    ``[n, S, A]``, > 0; ``elapsed_days``: time since the snapshot at the end of each step
    ``[S]``. Round ``t`` of the cascade sees step ``min(t, S - 1)``. ``oracle_push``: the
    multiplier ``[A]`` of the pool price each TWAP oracle reads (a scenario's oracle pushes;
    ``None``: none), the same in every path and round.
    """

    price: np.ndarray
    iv: np.ndarray
    elapsed_days: np.ndarray
    oracle_push: np.ndarray | None = None

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
        if self.oracle_push is not None and not (
                self.oracle_push.shape == (self.price.shape[2],)
                and np.isfinite(self.oracle_push).all() and (self.oracle_push > 0).all()):
            raise ValueError(f"oracle_push must be [num_assets] = [{self.price.shape[2]}] "
                             f"finite multipliers > 0")
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
        return Shocks(self.price[rows], self.iv[rows], self.elapsed_days, self.oracle_push)


_MISSING: np.ndarray = np.zeros(0)  # a field left out (filled in by PathResults.__post_init__)


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
      position was liquidated (margin-called) / each account had a position liquidated;
    - ``liquidated_snapshot_usd [n, R]``: the same seized collateral valued at snapshot
      prices (NaN in runs saved before it was recorded);
    - ``cross_loss_protocol [n, P]``: what each protocol lost on its deposits in other
      protocols at the end (USD);
    - ``protocol_cause``, ``asset_cause`` (``[n, P]``, ``[n, A]``, int8) and
      ``protocol_cause_src``, ``asset_cause_src`` (int16): why each node failed and through
      which node (:mod:`simulate.cascade.causes`; 0 and -1 where it did not fail, and in runs
      saved before causes were recorded).

    The last six may be left out (a run saved by an earlier version): they are filled in as
    "not recorded".
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
    liquidated_snapshot_usd: np.ndarray = field(default_factory=lambda: _MISSING)
    cross_loss_protocol: np.ndarray = field(default_factory=lambda: _MISSING)
    protocol_cause: np.ndarray = field(default_factory=lambda: _MISSING)
    protocol_cause_src: np.ndarray = field(default_factory=lambda: _MISSING)
    asset_cause: np.ndarray = field(default_factory=lambda: _MISSING)
    asset_cause_src: np.ndarray = field(default_factory=lambda: _MISSING)

    def __post_init__(self) -> None:
        fill = {"liquidated_snapshot_usd": (self.liquidated_usd.shape, np.nan, np.float64),
                "cross_loss_protocol": (self.fail_protocol.shape, 0.0, np.float64),
                "protocol_cause": (self.fail_protocol.shape, 0, np.int8),
                "protocol_cause_src": (self.fail_protocol.shape, -1, np.int16),
                "asset_cause": (self.fail_asset.shape, 0, np.int8),
                "asset_cause_src": (self.fail_asset.shape, -1, np.int16)}
        for k, (shape, value, dtype) in fill.items():
            if getattr(self, k) is _MISSING:
                object.__setattr__(self, k, np.full(shape, value, dtype=dtype))

    @property
    def num_paths(self) -> int:
        return int(self.rounds.shape[0])

    @staticmethod
    def concat(parts: list[PathResults]) -> PathResults:
        """The paths of ``parts`` one after the other; failure counts summed."""
        if not parts:
            raise ValueError("nothing to concatenate")
        cat = {k: np.concatenate([getattr(p, k) for p in parts]) for k in _PER_PATH}
        return PathResults(
            **cat,
            position_failures=np.sum([p.position_failures for p in parts], axis=0),
            account_failures=np.sum([p.account_failures for p in parts], axis=0),
        )

    def take(self, rows: np.ndarray) -> PathResults:
        """Reorder the per-path arrays (failure counts are order-free and kept)."""
        return PathResults(position_failures=self.position_failures,
                           account_failures=self.account_failures,
                           **{k: getattr(self, k)[rows] for k in _PER_PATH})


_PER_PATH = ("bad_debt_pool", "liquidated_usd", "rounds", "price_rel", "fail_protocol",
             "fail_pool", "fail_asset", "liquidated_snapshot_usd", "cross_loss_protocol",
             "protocol_cause", "protocol_cause_src", "asset_cause", "asset_cause_src")
