"""The market model: per-asset volatility, joint shocks, implied volatility and the
implied-vol surface (docs/architecture.md §4.1)."""

from simulate.market.implied_vol import (
    IVModel,
    IVModelError,
    IVSmile,
    deribit_chain,
    iv_model_from_chain,
    iv_model_from_market,
    iv_response,
    shocked_iv,
    smile,
)
from simulate.market.shocks import (
    JumpSpec,
    MarketModel,
    MarketModelError,
    PegModel,
    TCopula,
    draw_innovations,
    fit_market_model,
    simulate_returns,
)
from simulate.market.surface import (
    IVSurface,
    SpotVolDynamics,
    SurfaceError,
    SVISlice,
    fit_spot_vol,
    fit_surface,
    load_surface,
)
from simulate.market.volatility import FittedVolatility, VolSpec, fit_volatility

__all__ = [
    "FittedVolatility",
    "IVModel",
    "IVModelError",
    "IVSmile",
    "IVSurface",
    "JumpSpec",
    "MarketModel",
    "MarketModelError",
    "PegModel",
    "SVISlice",
    "SpotVolDynamics",
    "SurfaceError",
    "TCopula",
    "VolSpec",
    "deribit_chain",
    "draw_innovations",
    "fit_market_model",
    "fit_spot_vol",
    "fit_surface",
    "fit_volatility",
    "iv_model_from_chain",
    "iv_model_from_market",
    "iv_response",
    "load_surface",
    "shocked_iv",
    "simulate_returns",
    "smile",
]
