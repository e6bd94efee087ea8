"""Parameters of the cascade model that are not data (docs/architecture.md §4)."""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

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

    - ``oracles``: ``"modelled"`` values every lending position's collateral and debt by its
      asset's oracle (feed deviation and heartbeat, TWAP window, exchange rate, fixed price;
      :mod:`simulate.cascade.oracles`); ``"market"`` values them at market prices, for
      comparison. Fire sales, bad debt and option margin are at market either way.
    - ``round_seconds``: the length of a round after the scenario's last exogenous step, in
      seconds (a round that reads step ``s`` sits at ``elapsed_days[s]``); it clocks feed
      heartbeats and TWAP windows. Default 60: five 12-second Ethereum blocks, so that
      ``impact_recovery = 0.5`` is a one-minute half-life of transient impact, and the
      default 24 rounds (24 minutes) fall inside one feed heartbeat (3,600 s) and just short
      of one 30-minute TWAP window.

    Liquidators and dealers (:mod:`simulate.cascade.liquidators`; docs/architecture.md §4.3,
    §4.4, §4.6):

    - ``liquidator_profit_check``: a liquidation happens only when the liquidator's profit is
      positive: the seized collateral valued at its average sale price after its own sale's
      impact, minus the repaid debt at its average purchase price after its own purchase's
      impact, minus ``liquidator_gas_usd``. Off: every position below ``HF = 1`` is liquidated.
    - ``liquidator_gas_usd``: the gas cost of one liquidation, USD. Default 20: about 500,000
      gas (a flash-loan liquidation: ``liquidationCall`` plus the swaps) × 20 gwei × 2,000 USD
      per ETH. Read only by the profit check (a non-zero value with the check off is refused).
    - ``liquidation_capacity``: one liquidation trades at most this multiple of each route
      asset's 2% depth (the tokens whose sale moves its price 2%) in a round; a larger one is
      taken in pieces, one per round. ``None``: no limit. Default 1.
    - ``debt_impact``: the liquidator buys the repaid debt asset through its liquidity, which
      moves its price up (a short squeeze); buys and sales of one asset net within a round.
      Off: the debt is bought at its price, moving nothing.
    - ``dealer_buyback``: the dealer hedge flow is the signed change in delta: a dealer whose
      delta fell buys back (off: only rises are traded, sold).
    - ``dealer_unwind``: a margin-called dealer's hedge (the underlying it holds against its
      book, ``-Δ`` at its last hedge) is closed into the market.
    - ``underwater_bad_debt``: at the end of a path, every open lending position whose
      collateral is worth less than its debt at the final prices adds the shortfall to its
      pool's bad debt (left unliquidated because it did not pay, or not yet finished).

    :meth:`frictionless` gives the model without these (perfect liquidators, dealers that only
    sell), which reproduces results from before they existed.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    rounds: int = Field(default=24, ge=1, le=MAX_ROUNDS)
    depeg_threshold: float = Field(default=0.05, gt=0.0, lt=1.0)
    dealer_hedging: bool = True
    hedge_tolerance_usd: float = Field(default=10_000.0, ge=0.0)
    impact_recovery: float = Field(default=0.5, ge=0.0, lt=1.0)
    oracles: Literal["modelled", "market"] = "modelled"
    round_seconds: float = Field(default=60.0, gt=0.0, le=86_400.0)
    liquidator_profit_check: bool = True
    liquidator_gas_usd: float = Field(default=20.0, ge=0.0, allow_inf_nan=False)
    liquidation_capacity: float | None = Field(default=1.0, gt=0.0, allow_inf_nan=False)
    debt_impact: bool = True
    dealer_buyback: bool = True
    dealer_unwind: bool = True
    underwater_bad_debt: bool = True

    @model_validator(mode="after")
    def _gas_is_read(self) -> Self:
        if self.liquidator_gas_usd > 0 and not self.liquidator_profit_check:
            raise ValueError(f"liquidator_gas_usd is read only by the profit check: set it to 0 "
                             f"or liquidator_profit_check to true "
                             f"(got {self.liquidator_gas_usd})")
        return self

    @classmethod
    def frictionless(cls, **overrides: Any) -> CascadeParams:
        """Perfect liquidators and one-way dealers: no profit check or gas, no capacity
        limit, no debt-side impact, no buy-backs or unwinds, no end-of-path bad debt
        (``overrides`` set any field)."""
        base: dict[str, Any] = {
            "liquidator_profit_check": False, "liquidator_gas_usd": 0.0,
            "liquidation_capacity": None, "debt_impact": False, "dealer_buyback": False,
            "dealer_unwind": False, "underwater_bad_debt": False}
        return cls(**{**base, **overrides})
