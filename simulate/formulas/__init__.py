"""The simulator's closed-form pricing formulas and invariant solvers, one definition each.

Pure functions of numpy arrays (or floats): they import numpy, scipy and :mod:`graph.errors`
and nothing else of the engine, so every layer that needs them may import them — the cascade,
and the ecosystem generator in :mod:`ingest.generate`, which prices the options and balances
the stableswap pools it generates with the formulas the cascade reads them with.

- :mod:`simulate.formulas.black_scholes`: Black–Scholes price, delta, gamma and vega (zero
  rates), and the smile-consistent delta;
- :mod:`simulate.formulas.svi`: Gatheral's raw SVI total variance, its derivatives, and the
  butterfly-arbitrage factor ``g(k)``;
- :mod:`simulate.formulas.stableswap`: Curve's StableSwap invariant ``D``, the balance ``y``
  that keeps it, the marginal price, and the depth of a pool.

The backing fixed point over cross-holdings is :func:`simulate.clearing.backing_ratios`,
beside the other clearing algorithms.
"""
