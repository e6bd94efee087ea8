"""The market model: per-asset volatility, joint shocks, implied volatility (DESIGN.md §4.1)."""
