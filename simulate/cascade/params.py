"""Parameters of the cascade model that are not data (docs/architecture.md §4)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["MAX_ROUNDS", "CascadeParams"]

#: Upper bound on a run's cascade rounds per path.
MAX_ROUNDS = 10_000


class CascadeParams(BaseModel):
    """Knobs of one cascade run.

    - ``rounds``: at most this many rounds per path (a round is one block window: prices are
      read, liquidations and margin calls happen, the seized collateral is sold; the next round
      sees the new prices). Exogenous steps are applied one per round from round 0, so
      ``rounds`` must be at least the scenario's number of steps.
    - ``depeg_threshold``: an asset *fails* when its price falls more than this fraction below
      its reference (its peg target, or USD for a stablecoin without one, or, for any other
      asset, its exogenous path: i.e. cascade-driven losses only).
    - ``dealer_hedging``: dealers (accounts of kind ``dealer``) delta-hedge their option books
      each round; when a move raises their delta they sell the underlying into the fall.
    - ``hedge_tolerance_usd``: a round whose only activity is a dealer hedge flow worth less
      than this (in total) is quiet: the flow is not traded and, once the exogenous steps are
      exhausted, the cascade stops.
    - ``impact_recovery``: the share of the outstanding fire-sale pressure the market absorbs
      between rounds (order books refill, arbitrage brings outside liquidity): each round the
      tokens counted against an asset's reserve shrink by this fraction before the round's
      sales are added — the transient impact of Obizhaeva & Wang (2013), *Optimal trading
      strategy and supply/demand dynamics*, J. Financial Markets 16(1). 0 makes impact
      permanent.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    rounds: int = Field(default=24, ge=1, le=MAX_ROUNDS)
    depeg_threshold: float = Field(default=0.05, gt=0.0, lt=1.0)
    dealer_hedging: bool = True
    hedge_tolerance_usd: float = Field(default=10_000.0, ge=0.0)
    impact_recovery: float = Field(default=0.5, ge=0.0, lt=1.0)
