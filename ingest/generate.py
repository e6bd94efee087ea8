"""A seeded generator of synthetic but realistic DeFi ecosystems.

:func:`generate_ecosystem` builds a validated :class:`~graph.snapshot.Snapshot` of an Ethereum
DeFi ecosystem as of 2023-09-01 00:00 UTC with a requested number of positions. The same
``(positions, seed, config)`` always gives the same tables (and, through
:meth:`Snapshot.save`, the same bytes); all randomness comes from one
``numpy.random.SeedSequence(seed)`` whose spawned children drive the parts of the generator.

What is generated
-----------------
Protocols (``protocols``) and their pools (``pools``):

- ``aave-v3`` (lending; close factor 0.5, all debt below health factor 0.95): pool
  ``aave-v3:main`` with the published Aave v3 Ethereum reserve parameters; issues aWETH.
- ``compound-v3`` (lending; close factor 1): pool ``compound-v3:cusdcv3``, which lends only
  USDC against WETH, WBTC, LINK, UNI and COMP.
- ``maker`` (cdp): vault types ``maker:ETH-A``, ``maker:WSTETH-A``, ``maker:WBTC-A`` that mint
  DAI up to a debt ceiling, and the peg stability module ``maker:PSM-USDC-A`` holding USDC.
- ``lido`` (lst): ``lido:staking`` holds the ETH behind stETH; wstETH wraps stETH.
- ``uniswap-v2`` constant-product pools WETH/USDC, WBTC/WETH and BAL/WETH (reserves of equal
  value at the snapshot prices) and ``curve`` stableswap pools stETH/ETH (A = 50; balances set
  so that the pool's marginal price equals the snapshot stETH/ETH price) and DAI/USDC/USDT
  (A = 2000, balanced); the Curve stETH/ETH LP token is steCRV.
- ``yearn`` (vault): ``yearn:yvWETH`` holds aWETH; its share token is yvWETH.
- ``isolend`` (lending; close factor 1): isolated markets in the style of Abracadabra, Fraxlend
  or Inverse FiRM that accept aWETH, yvWETH (lend USDC) and steCRV (lends DAI) as collateral.
  Their parameters are derived from Aave's for the underlying (WETH for aWETH and yvWETH,
  wstETH for steCRV) less ``derived_haircut`` on ltv and liquidation threshold.
- ``deribit`` (options): margin pool ``deribit:margin`` (BTC, ETH and USDC collateral, counted
  at full value; the requirement is the pool's ``maintenance_margin``).

Cross-holdings: aWETH, yvWETH and steCRV are collateral in ``isolend``; wstETH in Aave and
Maker; ``protocol_deposits`` record Maker's DAI in Aave (a direct-deposit module), Maker's
stablecoins in the Curve 3pool and Yearn's WETH in Aave. Every asset has an oracle: feeds for
majors, fixed prices for USDC and DAI, a TWAP that reads ``uniswap-v2:BAL-WETH`` for BAL, and
exchange-rate oracles that read the pool behind wstETH, aWETH, yvWETH and steCRV.

Accounts and positions: accounts hold a Zipf-distributed number of positions (most one or two,
a few whales many), at most one per lending market or options venue (extra positions of a
whale are further Maker vaults). Position sizes are log-normal in USD, with part of the
log-variance shared by an account's positions. A lending or CDP position has one to three
collateral assets accepted by its pool (one in a single-collateral market) and zero to two debt
assets lent by it (never one of its collateral assets; holders of an ETH liquid-staking token
mostly borrow WETH); its debt is set so that its health factor
``HF = Σ collateral·price·liquidation_threshold / Σ debt·price`` equals a draw from a
three-part mixture (a share just above 1, a log-normal core between 1 and about 1.5, a
log-normal tail; see :meth:`GeneratorConfig.hf_cdf`). Option accounts hold one to four European
legs (calls and puts on BTC or ETH, strikes on Deribit's grid around spot, expiries on
Deribit's calendar 1 to 84 days after the snapshot, implied vol with a smile) and are funded at
a margin health drawn from the same mixture times their requirement
``maintenance_margin·Σ short notional + Σ short Black–Scholes mark`` (at least
``maintenance_margin·Σ notional``). A few ``dealer`` accounts hold large, net short-gamma books.

Totals are consistent with the positions: ``pool_lends.borrowed`` is the sum of the positions'
debt per pool and asset; ``supplied`` is ``borrowed`` over a utilisation drawn in
``[utilisation_min, utilisation_max]``, except that on Aave supply also covers every aToken
(collateral, deposits by other protocols, aWETH held by Yearn or posted in isolend), so assets
mostly posted as collateral there (WETH, wstETH, WBTC, ...) show a lower utilisation, as on
chain; a Maker ceiling is minted DAI
over such a utilisation. ``pool_holdings`` of lending, CDP and options pools are the
collateral they custody plus idle liquidity.

Sources of the numbers
----------------------
- Risk parameters: ``ingest/data/risk_params.csv`` (Aave v3 Ethereum reserve configurations of
  September 2023, Compound v3 cUSDCv3 asset configurations, Maker vault types; see its header).
- Prices: ETH 1645.18 and BTC 25927.42 USD (CoinGecko daily series, 2023-09-01 00:00 UTC);
  stETH per wstETH 1.1247, ETH per rETH 1.0717 and per cbETH 1.0365 (ratios of the Aave v3
  Ethereum oracle answers to its WETH answer in the reserve snapshot behind the risk
  parameters); stETH 0.999 ETH; stablecoins 1 USD;
  governance tokens: rounded market prices of about 2023-09-01 (within roughly 10%).
- Implied volatility: at the money 0.40 (BTC) and 0.42 (ETH); BTC DVOL closed at 36.1 on
  2023-09-01, below the generator's floor of 0.40; the smile rises to at most 1.2.
- Pool sizes (AMM total value locked) and 2% order-book depth: rounded orders of magnitude for
  September 2023 (tens of millions of USD of depth for ETH and BTC, millions for stablecoins,
  hundreds of thousands for small tokens), both multiplied by ``liquidity_scale``. They do not
  scale with ``positions``: at the default sizes (median position 1,500 USD, log-sd 2.3, so a
  mean of about 21,000 USD) one million positions are about the size of the real market; pass
  ``liquidity_scale = positions / 1e6`` to keep liquidity proportional in smaller ecosystems.
- Shares (collateral and debt mixes, ``no_debt_share``, PSM and direct-deposit sizes, the
  share of stETH held in the modelled pools) are modelling assumptions, named where defined.

Formulas: option marks and gammas are :mod:`simulate.formulas.black_scholes`, the stETH/ETH
pool's invariant and marginal price :mod:`simulate.formulas.stableswap` — the definitions the
cascade reads the snapshot with. (The generator is a source of snapshots, like an ingestor, so
it lives in ``ingest``, which may import ``graph`` and the simulator's pure formula modules.)

Token amounts and reproducible bytes
------------------------------------
A token amount on chain is a whole number of the token's base units (``10^-decimals``). A
float64 holds that exactly only below 2^53 base units (0.009 of an 18-decimal token), and the
generator's amounts come out of ``exp``, ``log`` and the normal CDF, whose last bit differs
between numpy and scipy builds and between CPUs (SIMD code paths). So every amount the
generator draws or computes through such a function — position collateral and debt, option
sizes, the stETH/ETH pool's balances — is rounded (:func:`round_amounts`) to the grid
``10^-q`` with ``q = min(decimals, AMOUNT_DIGITS - 1 - e)``, ``e = ⌊log10 amount⌋``: the
token's decimals, but never more than ``AMOUNT_DIGITS`` = 9 significant digits, far coarser
than float64's 15-17 digits. A build whose ``exp`` differs by a few ulps (relative 1e-16 to
1e-15) then changes a stored amount only if the exact value lies within that distance of a
rounding boundary: a chance of 1e-7 to 1e-6 per amount. (Every rounded amount of
``data/sample`` lies at least 4.6e-13, some 4,000 ulps, from a boundary; the tests move every
``exp``, ``log`` and normal-CDF result by one ulp and get the same bytes.) Collateral and
option sizes round to the nearest grid point (at least one base unit); debt rounds down, after
the collateral, so that a health factor never falls below its drawn value. Implied vols are
rounded to 4 decimals (a hundredth of a vol point, as Deribit quotes them); option marks and
margin requirements are computed from the rounded vols and sizes.

Everything else — pool totals (``borrowed`` stays the sum of the rounded debt), supplies,
custody, AMM reserves, Yearn, Lido and Maker balances, protocol reserves — is computed from the
rounded amounts and constants with IEEE-754 additions, multiplications and divisions in a fixed
order (``np.bincount`` and ``np.sum``, no BLAS products), which give the same bits on every
machine, and is not rounded again. The risk parameters are parsed with Python's correctly
rounded ``float``. ``contagion generate`` therefore writes the same tables in every
environment; the Parquet files also record the pyarrow version that wrote them (pinned by
``requirements.lock``).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from importlib import resources
from typing import NamedTuple, Self

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, model_validator

from graph.snapshot import STR_DTYPE, Manifest, Snapshot
from graph.vocab import (
    AccountKind,
    AssetKind,
    OptionKind,
    OptionSide,
    OracleKind,
    PoolKind,
    ProtocolKind,
)
from simulate.formulas.black_scholes import bs_gamma, bs_price
from simulate.formulas.stableswap import stableswap_d, stableswap_price

__all__ = [
    "AMOUNT_DIGITS",
    "AS_OF",
    "MAX_POSITIONS",
    "MIN_POSITIONS",
    "GeneratorConfig",
    "ProtocolShares",
    "generate_ecosystem",
    "load_risk_params",
    "round_amounts",
]

#: The time every generated snapshot describes.
AS_OF = datetime(2023, 9, 1, tzinfo=UTC)
MIN_POSITIONS = 100
MAX_POSITIONS = 10_000_000

_AS_OF_S = int(AS_OF.timestamp())
_YEAR_S = 365.0 * 86400.0
_STR = STR_DTYPE
_HF_FLOOR = 1.0 + 1e-9  # a sampled HF never rounds below 1 when recomputed from the amounts

#: Significant decimal digits a generated token amount keeps at most (module docstring).
AMOUNT_DIGITS = 9
_IV_DECIMALS = 4  # implied vol to a hundredth of a vol point
_POW10 = np.array([float(10**k) for k in range(23)])  # 10^0 .. 10^22, exact in float64
_DECADES = np.array([float(f"1e{k}") for k in range(-30, 31)])  # floats nearest 10^-30 .. 10^30

# ----------------------------------------------------------------------------- configuration


class ProtocolShares(BaseModel):
    """Share of the (non-dealer) positions in each position-holding protocol; sums to 1."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    aave_v3: float = Field(default=0.50, ge=0.0, le=1.0)
    compound_v3: float = Field(default=0.10, ge=0.0, le=1.0)
    maker: float = Field(default=0.15, ge=0.0, le=1.0)
    isolend: float = Field(default=0.05, ge=0.0, le=1.0)
    deribit: float = Field(default=0.20, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _sums_to_one(self) -> Self:
        total = self.aave_v3 + self.compound_v3 + self.maker + self.isolend + self.deribit
        if abs(total - 1.0) > 1e-9:
            raise ValueError(f"protocol shares must sum to 1 (got {total:g})")
        return self


class GeneratorConfig(BaseModel):
    """Parameters of :func:`generate_ecosystem` (immutable; every field validated).

    Sizes are USD; shares and ratios are fractions. The health-factor mixture (lending and CDP
    positions with debt, and the margin health of option accounts) is: with probability
    ``hf_near_share`` uniform on ``(1, hf_near_max]``; with probability ``hf_tail_share``
    ``1 + (hf_tail_median - 1)·exp(hf_tail_sigma·Z)``; otherwise
    ``1 + (hf_core_median - 1)·exp(hf_core_sigma·Z)``, Z standard normal.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    shares: ProtocolShares = ProtocolShares()
    # position sizes: log-normal in USD
    position_usd_median: float = Field(default=1_500.0, gt=0.0)
    position_usd_sigma: float = Field(default=2.3, gt=0.0, le=4.0)
    account_size_correlation: float = Field(default=0.5, ge=0.0, le=1.0)
    # positions per account: Zipf(exponent), capped
    positions_per_account_exponent: float = Field(default=3.0, gt=1.0, le=10.0)
    max_positions_per_account: int = Field(default=200, ge=1, le=100_000)
    # leverage
    no_debt_share: float = Field(default=0.2, ge=0.0, lt=1.0)
    hf_near_share: float = Field(default=0.05, ge=0.0, le=1.0)
    hf_near_max: float = Field(default=1.05, gt=1.0, le=1.5)
    hf_core_median: float = Field(default=1.25, gt=1.0)
    hf_core_sigma: float = Field(default=0.5, gt=0.0, le=3.0)
    hf_tail_share: float = Field(default=0.25, ge=0.0, le=1.0)
    hf_tail_median: float = Field(default=2.5, gt=1.0)
    hf_tail_sigma: float = Field(default=1.0, gt=0.0, le=3.0)
    # lending pools
    utilisation_min: float = Field(default=0.4, gt=0.0, lt=1.0)
    utilisation_max: float = Field(default=0.9, gt=0.0, lt=1.0)
    reserve_ratio: float = Field(default=0.03, ge=0.0, le=1.0)
    derived_haircut: float = Field(default=0.05, ge=0.0, lt=0.4)
    # market liquidity (AMM reserves and order-book depth) relative to September 2023
    liquidity_scale: float = Field(default=1.0, gt=0.0)
    # options venue
    options_maintenance_margin: float = Field(default=0.1, gt=0.0, le=1.0)
    options_liquidation_penalty: float = Field(default=0.05, ge=0.0, le=0.5)
    user_short_share: float = Field(default=0.7, ge=0.0, le=1.0)
    dealers: int = Field(default=4, ge=0, le=50)
    dealer_legs: int = Field(default=40, ge=1, le=500)
    dealer_notional_share: float = Field(default=0.3, ge=0.0, lt=1.0)
    # cross-holdings
    receipt_collateral: bool = True  # isolend markets for aWETH and yvWETH
    lp_collateral: bool = True  # isolend market for steCRV
    protocol_deposits: bool = True  # Maker in Aave and the 3pool, Yearn in Aave

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.hf_near_share + self.hf_tail_share > 1.0:
            raise ValueError("hf_near_share + hf_tail_share must be <= 1 "
                             f"(got {self.hf_near_share + self.hf_tail_share:g})")
        if self.utilisation_min > self.utilisation_max:
            raise ValueError(f"utilisation_min must be <= utilisation_max "
                             f"({self.utilisation_max:g}) (got {self.utilisation_min:g})")
        if self.shares.isolend > 0 and not (self.receipt_collateral or self.lp_collateral):
            raise ValueError("shares.isolend must be 0 when receipt_collateral and "
                             f"lp_collateral are both off (got {self.shares.isolend:g})")
        if self.shares.deribit == 0 and self.dealers > 0:
            raise ValueError(f"dealers must be 0 when shares.deribit is 0 (got {self.dealers})")
        return self

    def hf_cdf(self, x: float) -> float:
        """P(HF <= x) for a generated lending or CDP position with debt.

        With the defaults ``hf_cdf(1.5)`` is about 0.73: most borrowers sit between 1 and 1.5.
        """
        if x <= 1.0:
            return 0.0

        def lognormal_part(median: float, sigma: float) -> float:
            z = math.log((x - 1.0) / (median - 1.0)) / sigma
            return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))

        near = min(1.0, (x - 1.0) / (self.hf_near_max - 1.0))
        core = 1.0 - self.hf_near_share - self.hf_tail_share
        return (self.hf_near_share * near
                + core * lognormal_part(self.hf_core_median, self.hf_core_sigma)
                + self.hf_tail_share * lognormal_part(self.hf_tail_median, self.hf_tail_sigma))


# ----------------------------------------------------------------------------- the ecosystem

_ETH = 1645.18
_BTC = 25927.42
_STETH = 0.999 * _ETH
_WSTETH_STETH = 1.1247
_YVWETH_PRICE_PER_SHARE = 1.02  # assumption: yvWETH has earned 2% since launch
_STECRV_VIRTUAL_PRICE = 1.10  # approximately the pool's virtual price in 2023


class _Protocol(NamedTuple):
    id: str
    name: str
    kind: ProtocolKind
    close_factor: float
    full_close_threshold: float


_PROTOCOLS = (
    _Protocol("aave-v3", "Aave v3", ProtocolKind.LENDING, 0.5, 0.95),
    _Protocol("compound-v3", "Compound v3", ProtocolKind.LENDING, 1.0, 1.0),
    _Protocol("maker", "MakerDAO", ProtocolKind.CDP, 1.0, 1.0),
    _Protocol("isolend", "Isolated lending markets", ProtocolKind.LENDING, 1.0, 1.0),
    _Protocol("lido", "Lido", ProtocolKind.LST, 1.0, 1.0),
    _Protocol("uniswap-v2", "Uniswap v2", ProtocolKind.DEX, 1.0, 1.0),
    _Protocol("curve", "Curve", ProtocolKind.DEX, 1.0, 1.0),
    _Protocol("yearn", "Yearn", ProtocolKind.VAULT, 1.0, 1.0),
    _Protocol("deribit", "Deribit", ProtocolKind.OPTIONS, 1.0, 1.0),
)


class _Asset(NamedTuple):
    id: str
    kind: AssetKind
    price: float  # USD
    decimals: int
    depth_usd: float  # 2% order-book depth before liquidity_scale; 0 = no order book
    issuer: str | None
    pegged_to: str | None
    oracle: OracleKind
    oracle_reads: str | None


_F, _X, _T, _R = OracleKind.FEED, OracleKind.FIXED, OracleKind.TWAP, OracleKind.EXCHANGE_RATE
_NAT, _STB, _LST, _WRP = AssetKind.NATIVE, AssetKind.STABLE, AssetKind.LST, AssetKind.WRAPPED
_TOK = AssetKind.TOKEN
_ASSETS = (
    _Asset("ETH", _NAT, _ETH, 18, 40e6, None, None, _F, None),
    _Asset("WETH", _WRP, _ETH, 18, 40e6, None, "ETH", _F, None),
    _Asset("BTC", _NAT, _BTC, 8, 60e6, None, None, _F, None),
    _Asset("WBTC", _WRP, _BTC, 8, 8e6, None, "BTC", _F, None),
    _Asset("stETH", _LST, _STETH, 18, 10e6, "lido", "ETH", _F, None),
    _Asset("wstETH", _WRP, _WSTETH_STETH * _STETH, 18, 5e6, "lido", "stETH", _R, "lido:staking"),
    _Asset("rETH", _LST, 1.0717 * _ETH, 18, 2e6, None, "ETH", _F, None),
    _Asset("cbETH", _LST, 1.0365 * _ETH, 18, 1.5e6, None, "ETH", _F, None),
    _Asset("USDC", _STB, 1.0, 6, 30e6, None, None, _X, None),
    _Asset("USDT", _STB, 1.0, 6, 40e6, None, None, _F, None),
    _Asset("DAI", _STB, 1.0, 18, 8e6, "maker", None, _X, None),
    _Asset("LUSD", _STB, 1.0, 18, 1e6, None, None, _F, None),
    _Asset("LINK", _TOK, 6.2, 18, 3e6, None, None, _F, None),
    _Asset("AAVE", _TOK, 54.0, 18, 1.5e6, None, None, _F, None),
    _Asset("UNI", _TOK, 4.4, 18, 2e6, None, None, _F, None),
    _Asset("CRV", _TOK, 0.46, 18, 1e6, None, None, _F, None),
    _Asset("LDO", _TOK, 1.6, 18, 1.2e6, None, None, _F, None),
    _Asset("MKR", _TOK, 1130.0, 18, 1e6, None, None, _F, None),
    _Asset("SNX", _TOK, 2.15, 18, 0.6e6, None, None, _F, None),
    _Asset("BAL", _TOK, 3.7, 18, 0.25e6, None, None, _T, "uniswap-v2:BAL-WETH"),
    _Asset("COMP", _TOK, 41.0, 18, 0.4e6, None, None, _F, None),
    _Asset("aWETH", AssetKind.RECEIPT, _ETH, 18, 0.0, "aave-v3", "WETH", _R, "aave-v3:main"),
    _Asset("yvWETH", AssetKind.RECEIPT, _YVWETH_PRICE_PER_SHARE * _ETH, 18, 0.0, "yearn", "WETH",
           _R, "yearn:yvWETH"),
    _Asset("steCRV", AssetKind.LP, _STECRV_VIRTUAL_PRICE * _STETH, 18, 0.0, "curve", "stETH", _R,
           "curve:steth-eth"),
)
_A = len(_ASSETS)
_AIDX = {a.id: i for i, a in enumerate(_ASSETS)}
_PRICE = np.array([a.price for a in _ASSETS])
_DECIMALS = np.array([a.decimals for a in _ASSETS], dtype=np.int64)

# Pools that hold positions (lending and CDP markets, the options venue).
_AAVE, _COMET = "aave-v3:main", "compound-v3:cusdcv3"
_MAKER_VAULTS = {"maker:ETH-A": 0.5, "maker:WSTETH-A": 0.3, "maker:WBTC-A": 0.2}  # assumption
_ISOLEND_MARKETS = {  # market: (collateral, its Aave underlying, lent asset, cross-holding kind)
    "isolend:aWETH": ("aWETH", "WETH", "USDC", "receipt"),
    "isolend:yvWETH": ("yvWETH", "WETH", "USDC", "receipt"),
    "isolend:steCRV": ("steCRV", "wstETH", "DAI", "lp"),
}
_OPTIONS_POOL = "deribit:margin"

# Assumed popularity of collateral and debt assets per position (Aave v3 Ethereum in 2023 was
# dominated by ETH and its LSTs and WBTC as collateral, stablecoins and WETH as debt).
_COLLATERAL_MIX = {
    _AAVE: {"WETH": 0.39, "wstETH": 0.15, "WBTC": 0.12, "USDC": 0.08, "rETH": 0.04,
            "cbETH": 0.03, "DAI": 0.03, "LINK": 0.05, "AAVE": 0.03, "UNI": 0.02, "CRV": 0.015,
            "LDO": 0.015, "MKR": 0.01, "SNX": 0.01, "BAL": 0.01},
    _COMET: {"WETH": 0.55, "WBTC": 0.25, "LINK": 0.08, "UNI": 0.06, "COMP": 0.06},
}
_DEBT_MIX = {
    _AAVE: {"USDC": 0.30, "USDT": 0.18, "DAI": 0.12, "WETH": 0.225, "LUSD": 0.03, "WBTC": 0.04,
            "wstETH": 0.03, "rETH": 0.01, "cbETH": 0.01, "LINK": 0.015, "CRV": 0.01,
            "UNI": 0.005, "LDO": 0.005, "MKR": 0.005, "SNX": 0.005, "BAL": 0.005},
}
# Positions with an ETH liquid-staking token as collateral mostly borrow WETH against it (the
# staking "loop"); their WETH debt weight is multiplied by this.
_LOOP_TILT = np.where(np.array([a.id for a in _ASSETS]) == "WETH", 10.0, 1.0)
_ETH_LST = np.isin(np.array([a.id for a in _ASSETS]), ["wstETH", "rETH", "cbETH"])
_COLLATERAL_COUNT_P = (0.6, 0.3, 0.1)  # 1, 2 or 3 collateral assets
_DEBT_COUNT_P = (0.8, 0.2)  # 1 or 2 debt assets, given some debt

# Market layer: AMM pools (USD value locked in September 2023, rounded) before liquidity_scale.
_UNISWAP_POOLS = {"uniswap-v2:WETH-USDC": ("WETH", "USDC", 45e6),
                  "uniswap-v2:WBTC-WETH": ("WBTC", "WETH", 20e6),
                  "uniswap-v2:BAL-WETH": ("BAL", "WETH", 1.5e6)}
_STETH_POOL, _STETH_POOL_USD, _STETH_POOL_A = "curve:steth-eth", 300e6, 50.0
_THREEPOOL, _THREEPOOL_USD, _THREEPOOL_A = "curve:3pool", 180e6, 2000.0
_UNISWAP_FEE, _STETH_POOL_FEE, _THREEPOOL_FEE = 0.003, 0.0004, 0.0001

# Backing and deposit sizes (assumptions).
_LST_MODELLED_SHARE = 0.2  # share of stETH supply in the pools and positions modelled here
_YVWETH_POSTED_SHARE = 0.5  # share of yvWETH shares posted as collateral in isolend
_YVWETH_MIN_USD = 5e6  # the Yearn vault's size when little of it is posted (x liquidity_scale)
_PSM_SHARE = 0.4  # USDC in Maker's PSM per DAI minted by the modelled vaults
_D3M_SHARE = 0.2  # DAI Maker supplies to Aave per DAI minted by the modelled vaults
_MAKER_3POOL_SHARE = 0.05  # Maker's 3pool deposit per DAI minted, at most a quarter of the pool
_STECRV_POSTED_MAX = 0.5  # steCRV posted as collateral is at most half the LP supply
_MIN_SUPPLY_USD = 1e5  # every lent reserve holds at least this much
_MAX_SWAP_ROUNDS = 50  # bound on the rounds of swaps that separate an account's pools

# Options venue (Deribit conventions): expiries at 08:00 UTC, strike grids, smile.
_EXPIRIES = tuple(int(datetime(2023, m, d, 8, tzinfo=UTC).timestamp()) for m, d in (
    (9, 2), (9, 3), (9, 8), (9, 15), (9, 22), (9, 29), (10, 27), (11, 24)))
_EXPIRY_P = (0.10, 0.06, 0.14, 0.10, 0.08, 0.22, 0.16, 0.14)  # assumption: open-interest mix
_UNDERLYINGS = ("BTC", "ETH")
_UNDERLYING_IDX = np.array([_AIDX[u] for u in _UNDERLYINGS])
_UNDERLYING_P = (0.55, 0.45)  # BTC options carry more open interest than ETH options
_STRIKE_STEP = (500.0, 50.0)
_ATM_VOL = (0.40, 0.42)
_SMILE_WING, _SMILE_SKEW, _IV_MIN, _IV_MAX = 1.0, 0.1, 0.4, 1.2
_OPTION_COLLATERAL = ("BTC", "ETH", "USDC")
_OPTION_COLLATERAL_P = (0.35, 0.35, 0.30)
_LEG_COUNT_P = (0.45, 0.25, 0.18, 0.12)  # 1 to 4 legs per user account
_CALL_P = 0.55
_DEALER_SHORT_P = 0.8
_DEALER_LONG_GAMMA_MAX = 0.5  # a dealer's long dollar gamma is at most half its short gamma
_DEALER_COLLATERAL = {"USDC": 0.5, "BTC": 0.25, "ETH": 0.25}


_FRACTIONS = ("ltv", "liquidation_threshold", "liquidation_bonus")


def load_risk_params() -> pd.DataFrame:
    """The published risk parameters in ``ingest/data/risk_params.csv`` (package data).

    Columns: ``market, asset, decimals, collateral (bool), borrowable (bool), ltv,
    liquidation_threshold, liquidation_bonus`` (fractions, parsed to the nearest float). The
    file's header cites the source of each group of rows.
    """
    ref = resources.files("ingest").joinpath("data", "risk_params.csv")
    with ref.open("r", encoding="utf-8") as f:
        df = pd.read_csv(f, comment="#",
                         dtype={"decimals": "int64", **dict.fromkeys(_FRACTIONS, "str")})
    # Python's float() rounds correctly, whatever pandas' own parser does
    return df.astype({"collateral": bool, "borrowable": bool}).assign(
        **{c: df[c].map(float).astype(np.float64) for c in _FRACTIONS})


def round_amounts(amount: np.ndarray, decimals: np.ndarray, *, down: bool = False
                  ) -> np.ndarray:
    """Token amounts ``[n]`` (>= 0) rounded to their token's grid (module docstring).

    ``decimals`` ``[n]``: the token's decimals (0 to 22). The grid of an amount ``x`` is
    ``10^-q``, ``q = min(decimals, AMOUNT_DIGITS - 1 - ⌊log10 x⌋)``: whole base units, and at
    most ``AMOUNT_DIGITS`` significant digits. To the nearest grid point (ties to even), a
    positive amount to at least one base unit; with ``down``, towards zero (0 possible). Only
    comparisons, one multiplication or division by an exact power of ten, ``rint``/``floor``
    and its inverse: the same bits on every IEEE-754 machine for the same input.

    >>> round_amounts(np.array([1234.56789123456, 0.000123456789123, 2e-9, 0.0]),
    ...               np.array([18, 18, 8, 6])).tolist()
    [1234.56789, 0.000123456789, 1e-08, 0.0]
    >>> round_amounts(np.array([1.23456789987, 9_876_543.219]), np.array([18, 6]),
    ...               down=True).tolist()
    [1.23456789, 9876543.21]
    """
    x = np.asarray(amount, dtype=np.float64)
    dec = np.asarray(decimals, dtype=np.int64)
    e = np.searchsorted(_DECADES, x, side="right") - 31  # ⌊log10 x⌋ by comparisons
    q = np.minimum(dec, AMOUNT_DIGITS - 1 - e)
    scale = _POW10[np.minimum(np.abs(q), len(_POW10) - 1)]
    up = q >= 0
    y = np.where(up, x * scale, x / scale)
    k = np.floor(y) if down else np.rint(y)
    out = np.where(up, k / scale, k * scale)
    if not down:
        out = np.where((x > 0) & (out == 0), 1.0 / _POW10[dec], out)
    return out


# ----------------------------------------------------------------------------- helpers


def _arrow_str(values: pa.Array) -> pd.Series:
    return pd.Series(values.to_pandas(types_mapper={pa.string(): _STR}.get))


def _dict_arrow(names: list[str], idx: np.ndarray) -> pa.Array:
    """``names[idx]`` as an Arrow string array (dictionary decode, no Python loop)."""
    dictionary = pa.DictionaryArray.from_arrays(pa.array(idx, pa.int32()),
                                                pa.array(names, pa.string()))
    return dictionary.cast(pa.string())


def _labels(names: list[str], idx: np.ndarray) -> pd.Series:
    """``names[idx]`` as a string column."""
    return _arrow_str(_dict_arrow(names, idx))


def _numbered(prefix: pa.Array | str, numbers: np.ndarray, width: int) -> pa.Array:
    """``prefix + zero-padded number`` per row (``prefix``: one string or one per row)."""
    digits = pc.utf8_lpad(pc.cast(pa.array(numbers), pa.string()), width, "0")
    return pc.binary_join_element_wise(prefix, digits, "")


def _draw(rng: np.random.Generator, p: np.ndarray | tuple[float, ...], n: int) -> np.ndarray:
    """``n`` indices drawn with probabilities ``p`` (zero-probability entries never drawn)."""
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    cum = np.cumsum(np.asarray(p, dtype=np.float64))
    return np.searchsorted(cum / cum[-1], rng.random(n), side="right")


def _pick_distinct(rng: np.random.Generator, k: np.ndarray, weights: np.ndarray,
                   exclude: np.ndarray | None = None) -> np.ndarray:
    """Per row, ``k[i]`` distinct indices drawn by ``weights``, avoiding ``exclude[i]``.

    ``k``: [n] counts (callers keep them within the number of allowed indices); ``weights``:
    [A]; ``exclude``: [n, e] indices or -1. Returns [n, max(k)] indices, -1 where unused.
    Rejection sampling: a row redraws only where its draw collides.
    """
    n, kmax = len(k), int(k.max(initial=0))
    picks = np.full((n, kmax), -1, dtype=np.int64)
    for j in range(kmax):
        rows = np.flatnonzero(k > j)
        while rows.size:
            draw = _draw(rng, weights, rows.size)
            clash = (picks[rows, :j] == draw[:, None]).any(axis=1)
            if exclude is not None:
                clash |= (exclude[rows] == draw[:, None]).any(axis=1)
            picks[rows[~clash], j] = draw[~clash]
            rows = rows[clash]
    return picks


def _split(rng: np.random.Generator, picks: np.ndarray) -> np.ndarray:
    """Flat Dirichlet(1) weights over the used slots of ``picks`` ([n, k]; rows sum to 1)."""
    e = rng.standard_exponential(picks.shape) * (picks >= 0)
    total = e.sum(axis=1, keepdims=True)
    return np.divide(e, total, out=np.zeros_like(e), where=total > 0)


def _sample_hf(rng: np.random.Generator, n: int, cfg: GeneratorConfig) -> np.ndarray:
    """[n] health factors from the mixture of :class:`GeneratorConfig`, all > 1."""
    part = _draw(rng, (cfg.hf_near_share,
                       1.0 - cfg.hf_near_share - cfg.hf_tail_share,
                       cfg.hf_tail_share), n)
    z = rng.standard_normal(n)
    near = 1.0 + (cfg.hf_near_max - 1.0) * (1.0 - rng.random(n))
    core = 1.0 + (cfg.hf_core_median - 1.0) * np.exp(cfg.hf_core_sigma * z)
    tail = 1.0 + (cfg.hf_tail_median - 1.0) * np.exp(cfg.hf_tail_sigma * z)
    return np.maximum(np.choose(part, (near, core, tail)), _HF_FLOOR)


def _stableswap_pair(total: float, price: float, amp: float) -> tuple[float, float]:
    """Balances ``(x, y)``, ``x + y = total``, of a two-coin stableswap pool whose marginal price
    of x in y (:func:`~simulate.formulas.stableswap.stableswap_price`) is ``price`` <= 1: the
    price of x falls as x's share ``s`` grows, so ``s`` is found by bisection on
    ``[0.5, 0.999]`` (60 halvings: the share to 4e-19)."""

    def marginal(s: float) -> float:
        x = np.array([s * total, (1.0 - s) * total])
        return stableswap_price(x, amp, 0, 1, stableswap_d(x, amp))

    lo, hi = 0.5, 0.999
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if marginal(mid) > price else (lo, mid)
    s = 0.5 * (lo + hi)
    return s * total, (1.0 - s) * total


# ----------------------------------------------------------------------------- the kernel


def _position_pools(cfg: GeneratorConfig) -> tuple[list[str], np.ndarray]:
    """Pools that hold user positions and the share of positions in each."""
    sh = cfg.shares
    markets = [m for m, (_, _, _, kind) in _ISOLEND_MARKETS.items()
               if (cfg.receipt_collateral if kind == "receipt" else cfg.lp_collateral)]
    pools = [_AAVE, _COMET, *_MAKER_VAULTS, *markets, _OPTIONS_POOL]
    weights = [sh.aave_v3, sh.compound_v3,
               *(sh.maker * w for w in _MAKER_VAULTS.values()),
               *(sh.isolend / len(markets) for _ in markets), sh.deribit]
    return pools, np.array(weights)


def _accounts(rng: np.random.Generator, n: int, cfg: GeneratorConfig
              ) -> tuple[np.ndarray, np.ndarray]:
    """Owners of ``n`` positions: account of each position [n] and positions per account [U].
    Counts are Zipf(exponent) draws capped at the maximum; the last account is cut to fit."""
    k = np.minimum(rng.zipf(cfg.positions_per_account_exponent, n),
                   cfg.max_positions_per_account)
    end = np.cumsum(k)
    u = int(np.searchsorted(end, n)) + 1  # first account whose positions reach n
    k = k[:u]
    k[-1] -= end[u - 1] - n
    return np.repeat(np.arange(u), k), k


def _assign_pools(rng: np.random.Generator, account: np.ndarray, per_account: np.ndarray,
                  pools: list[str], weights: np.ndarray) -> np.ndarray:
    """Pool of each position such that pools get ``weights`` of the positions (in expectation)
    and an account holds at most one position per pool, Maker vault types excepted (owners
    often hold several vaults).

    ``account``: [n] owner of each position, grouped by account; ``per_account``: [U]. An
    account's positions beyond the number of other pools are Maker vaults (without Maker, they
    repeat pools); the rest are drawn with weights corrected for those. Then every position
    that repeats its account's pool swaps pools with the position of a single-position account
    in a pool the account lacks (which keeps each pool's count and cannot create a repeat
    there), until none is left. Returns [n] indices into ``pools``.
    """
    n = len(account)
    repeatable = np.array([p in _MAKER_VAULTS for p in pools])
    distinct = int(np.count_nonzero(weights * ~repeatable))
    rank = np.arange(n) - np.repeat(np.cumsum(per_account) - per_account, per_account)
    overflow = rank >= distinct
    n_over = int(np.count_nonzero(overflow))
    over_w = weights * repeatable if (weights * repeatable).sum() > 0 else weights
    target = weights / weights.sum() * n
    pool = np.empty(n, dtype=np.int64)
    pool[overflow] = _draw(rng, over_w, n_over)
    pool[~overflow] = _draw(rng, np.maximum(target - over_w / over_w.sum() * n_over, 0.0),
                            n - n_over)
    singles = np.flatnonzero(per_account[account] == 1)
    check = np.flatnonzero((per_account[account] > 1) & ~overflow)
    log_w = np.log(weights, out=np.full(len(pools), -np.inf), where=weights > 0)
    for _ in range(_MAX_SWAP_ROUNDS):
        key = account[check] * len(pools) + pool[check]
        order = np.argsort(key, kind="stable")
        d = check[order[1:][key[order[1:]] == key[order[:-1]]]]
        d = d[~repeatable[pool[d]]]
        if not d.size:
            break
        # for each repeat, a pool its account lacks (or a Maker vault type), by weight ...
        held = np.zeros(len(per_account), dtype=np.int64)
        np.bitwise_or.at(held, account[check], np.left_shift(1, pool[check]))
        by_pool = np.bincount(pool[singles], minlength=len(pools))
        lacks = ((held[account[d], None] >> np.arange(len(pools))) & 1) == 0
        ok = (lacks | repeatable) & (by_pool > 0)
        keys = np.where(ok, log_w + rng.gumbel(size=ok.shape), -np.inf)
        q = np.argmax(keys, axis=1)
        found = np.isfinite(keys[np.arange(d.size), q])
        if not found.any():
            break
        retry = account[d]
        d, q = d[found], q[found]
        # ... and a single-position account in that pool to swap with (one swap per partner)
        sorted_singles = singles[np.argsort(pool[singles], kind="stable")]
        start = np.cumsum(by_pool) - by_pool
        partner = sorted_singles[start[q] + rng.integers(0, by_pool[q])]
        _, first = np.unique(partner, return_index=True)
        d, partner = d[first], partner[first]
        pool[d], pool[partner] = pool[partner], pool[d]
        check = check[np.isin(account[check], retry)]  # other accounts did not change
    return pool


def _pool_params(cfg: GeneratorConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``pool_collateral`` rows and lent (pool, asset) pairs of the position-holding pools."""
    rp = load_risk_params()
    coll = rp.loc[rp["collateral"], ["market", "asset", "ltv", "liquidation_threshold",
                                     "liquidation_bonus"]].rename(columns={"market": "pool"})
    lent = rp.loc[rp["borrowable"], ["market", "asset"]].rename(columns={"market": "pool"})
    aave = coll[coll["pool"] == _AAVE].set_index("asset")
    pools, _ = _position_pools(cfg)
    h = cfg.derived_haircut
    derived, derived_lent = [], []
    for market, (token, underlying, lends, _) in _ISOLEND_MARKETS.items():
        if market in pools:
            base = aave.loc[underlying]
            derived.append((market, token, base["ltv"] - h, base["liquidation_threshold"] - h,
                            base["liquidation_bonus"]))
            derived_lent.append((market, lends))
    penalty = cfg.options_liquidation_penalty
    derived += [(_OPTIONS_POOL, a, 1.0, 1.0, penalty) for a in _OPTION_COLLATERAL]
    coll = pd.concat([coll, pd.DataFrame(derived, columns=coll.columns)], ignore_index=True)
    lent = pd.concat([lent, pd.DataFrame(derived_lent, columns=lent.columns)],
                     ignore_index=True)
    return coll, lent


def _lending(rng: np.random.Generator, size: np.ndarray, lt: np.ndarray, coll_w: np.ndarray,
             debt_w: np.ndarray, cfg: GeneratorConfig
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Collateral and debt of ``n`` positions in one lending or CDP pool.

    ``size``: [n] collateral value (USD); ``lt``: [A] the pool's liquidation thresholds;
    ``coll_w``/``debt_w``: [A] popularity of accepted / lent assets (0 elsewhere). Returns
    collateral and debt asset picks [n, k] (-1 unused) and token amounts [n, k], rounded by
    :func:`round_amounts` (collateral to the nearest grid point; debt down, from the rounded
    collateral, so its health factor is at least the one drawn by :func:`_sample_hf`; a debt
    that rounds to 0 is dropped). Holders of an ETH liquid-staking token lean to WETH debt.
    """
    n = len(size)
    kc = np.minimum(_draw(rng, _COLLATERAL_COUNT_P, n) + 1, np.count_nonzero(coll_w))
    cpick = _pick_distinct(rng, kc, coll_w)
    camount = np.where(cpick >= 0, round_amounts(size[:, None] * _split(rng, cpick)
                                                 / _PRICE[cpick], _DECIMALS[cpick]), 0.0)
    weighted = (camount * _PRICE[cpick] * lt[cpick] * (cpick >= 0)).sum(axis=1)
    borrows = rng.random(n) >= cfg.no_debt_share
    # debt never repeats a collateral asset: a row may pick among the lent assets it does not hold
    held_lent = ((cpick >= 0) & (debt_w[cpick] > 0)).sum(axis=1)
    kd = np.minimum(np.where(borrows, _draw(rng, _DEBT_COUNT_P, n) + 1, 0),
                    np.count_nonzero(debt_w) - held_lent)
    loops = ((cpick >= 0) & _ETH_LST[cpick]).any(axis=1)
    dpick = np.full((n, int(kd.max(initial=0))), -1, dtype=np.int64)
    for rows, w in ((~loops, debt_w), (loops, debt_w * _LOOP_TILT)):
        r = np.flatnonzero(rows)
        sub = _pick_distinct(rng, kd[r], w, exclude=cpick[r])
        dpick[r, :sub.shape[1]] = sub
    debt_usd = weighted / _sample_hf(rng, n, cfg)
    damount = round_amounts(debt_usd[:, None] * _split(rng, dpick) / _PRICE[dpick],
                            _DECIMALS[dpick], down=True)
    dpick = np.where(damount > 0, dpick, -1)
    return cpick, camount, dpick, np.where(dpick >= 0, damount, 0.0)


def _legs(rng: np.random.Generator, leg_pos: np.ndarray, under: np.ndarray,
          notional: np.ndarray, short: np.ndarray) -> dict[str, np.ndarray]:
    """Option legs on Deribit's calendar and strike grid, deduplicated per position/contract.

    Inputs are [L] arrays (position, underlying index into ``_UNDERLYINGS``, notional USD,
    short flag). Returns the kept legs' ``position, asset, spot, is_call, is_short, strike,
    expiry (Unix s), size (units of the underlying, not yet rounded), iv (rounded), mark (USD
    per unit), gamma (per USD)``, each [L'] with L' <= L.
    """
    n = len(leg_pos)
    spot = _PRICE[_UNDERLYING_IDX][under]
    step = np.array(_STRIKE_STEP)[under]
    e = _draw(rng, _EXPIRY_P, n)
    expiry = np.array(_EXPIRIES, dtype=np.int64)[e]
    t = (expiry - _AS_OF_S) / _YEAR_S
    is_call = rng.random(n) < _CALL_P
    moneyness = np.clip(rng.normal(0.0, 0.05 + 0.4 * np.sqrt(t)), -1.0, 1.0)
    steps = np.maximum(np.round(spot * np.exp(moneyness) / step), 1.0)
    strike = steps * step
    k = np.log(strike / spot)
    iv = np.round(np.clip(np.array(_ATM_VOL)[under] + _SMILE_WING * k * k / np.sqrt(t)
                          - _SMILE_SKEW * k, _IV_MIN, _IV_MAX), _IV_DECIMALS)
    # one leg per (position, underlying, kind, strike, expiry): keep the first drawn
    key = (((leg_pos * 2 + under) * 2 + is_call) * 65536 + steps.astype(np.int64)) * 8 + e
    keep = np.sort(np.unique(key, return_index=True)[1])
    mark = bs_price(spot[keep], strike[keep], t[keep], iv[keep], is_call[keep])
    gamma = bs_gamma(spot[keep], strike[keep], t[keep], iv[keep])
    return {"position": leg_pos[keep], "asset": _UNDERLYING_IDX[under[keep]],
            "spot": spot[keep], "is_call": is_call[keep], "is_short": short[keep],
            "strike": strike[keep], "expiry": expiry[keep], "size": notional[keep] / spot[keep],
            "iv": iv[keep], "mark": mark, "gamma": gamma}


def _options(rng: np.random.Generator, size: np.ndarray, cfg: GeneratorConfig
             ) -> tuple[dict[str, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Legs and collateral of the options venue: ``len(size)`` user accounts (notional
    ``size`` USD each) then ``cfg.dealers`` dealer books. Positions are local indices
    (users first). Dealers' long legs are scaled so that their long dollar gamma is at most
    half the short: every dealer is short gamma. Sizes and collateral are rounded by
    :func:`round_amounts`; the margin requirement is computed from the rounded sizes."""
    n_u, n_d = len(size), cfg.dealers
    coll = _draw(rng, _OPTION_COLLATERAL_P, n_u)  # BTC, ETH or USDC
    under = np.where(coll < 2, coll, _draw(rng, _UNDERLYING_P, n_u))  # coin-margined: same coin
    k = _draw(rng, _LEG_COUNT_P, n_u) + 1
    user_pos = np.repeat(np.arange(n_u), k)
    dealer_pos = np.repeat(np.arange(n_u, n_u + n_d), cfg.dealer_legs)
    leg_pos = np.concatenate([user_pos, dealer_pos])
    book = (cfg.dealer_notional_share / (1.0 - cfg.dealer_notional_share)
            * max(float(size.sum()), cfg.position_usd_median) / max(n_d, 1))
    pos_size = np.concatenate([size, np.full(n_d, book)])
    w = rng.uniform(0.25, 1.0, len(leg_pos))
    w /= np.bincount(leg_pos, w, minlength=n_u + n_d)[leg_pos]
    short = np.concatenate([rng.random(len(user_pos)) < cfg.user_short_share,
                            rng.random(len(dealer_pos)) < _DEALER_SHORT_P])
    legs = _legs(rng, leg_pos,
                 np.concatenate([under[user_pos], _draw(rng, _UNDERLYING_P, len(dealer_pos))]),
                 pos_size[leg_pos] * w, short)
    pos, spot, size_u = legs["position"], legs["spot"], legs["size"]
    dollar_gamma = legs["gamma"] * spot * spot * size_u
    is_dealer, is_short = pos >= n_u, legs["is_short"]
    g_short = np.bincount(pos, dollar_gamma * is_short, minlength=n_u + n_d)
    g_long = np.bincount(pos, dollar_gamma * ~is_short, minlength=n_u + n_d)
    with np.errstate(divide="ignore", invalid="ignore"):
        cap = np.where(g_long > 0, np.minimum(1.0, _DEALER_LONG_GAMMA_MAX * g_short / g_long), 1.0)
    size_u = np.where(is_dealer & ~is_short, size_u * cap[pos], size_u)
    size_u = round_amounts(size_u, _DECIMALS[legs["asset"]])
    legs["size"] = size_u
    mm = cfg.options_maintenance_margin
    requirement = np.bincount(pos, is_short * (mm * spot + legs["mark"]) * size_u,
                              minlength=n_u + n_d)
    floor = mm * np.bincount(pos, spot * size_u, minlength=n_u + n_d)
    z = rng.standard_normal(n_d)
    health = np.concatenate([
        _sample_hf(rng, n_u, cfg),
        1.0 + (cfg.hf_tail_median - 1.0) * np.exp(cfg.hf_tail_sigma * z)])
    coll_usd = health * np.maximum(requirement, floor)
    option_coll = np.array([_AIDX[a] for a in _OPTION_COLLATERAL])
    dealer_assets = np.array([_AIDX[a] for a in _DEALER_COLLATERAL])
    dealer_w = np.array(list(_DEALER_COLLATERAL.values()))
    c_pos = np.concatenate([np.arange(n_u), np.repeat(np.arange(n_u, n_u + n_d), len(dealer_w))])
    c_asset = np.concatenate([option_coll[coll], np.tile(dealer_assets, n_d)])
    c_usd = np.concatenate([coll_usd[:n_u], (coll_usd[n_u:, None] * dealer_w).ravel()])
    return legs, (c_pos, c_asset, round_amounts(c_usd / _PRICE[c_asset], _DECIMALS[c_asset]))


def _flatten(pos: np.ndarray, picks: np.ndarray, amounts: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """[n, k] picks and amounts of positions ``pos`` [n] as (position, asset, amount) rows."""
    used = picks >= 0
    return np.broadcast_to(pos[:, None], picks.shape)[used], picks[used], amounts[used]


def _generate(n: int, seed: int, cfg: GeneratorConfig) -> dict[str, pd.DataFrame]:
    """The snapshot tables of an ecosystem with ``n`` positions (arguments already checked).

    Each part draws from its own child of ``SeedSequence(seed)``, so changing how one part
    draws leaves the others' numbers unchanged.
    """
    (s_acct, s_pool, s_size, s_lend, s_opt, s_util) = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(6))
    pos_pools, pos_weights = _position_pools(cfg)
    coll_params, lent = _pool_params(cfg)
    other_pools = ["maker:PSM-USDC-A", "lido:staking", *_UNISWAP_POOLS, _STETH_POOL, _THREEPOOL,
                   "yearn:yvWETH"]
    pool_ids = [*pos_pools, *other_pools]
    pidx = {p: i for i, p in enumerate(pool_ids)}
    n_pools = len(pool_ids)

    # accounts, pools and sizes of the user positions; dealers follow
    n_user = n - cfg.dealers
    account, per_account = _accounts(s_acct, n_user, cfg)
    n_acct = len(per_account)
    pool = _assign_pools(s_pool, account, per_account, pos_pools, pos_weights)
    rho = cfg.account_size_correlation
    z = (math.sqrt(rho) * s_size.standard_normal(n_acct)[account]
         + math.sqrt(1.0 - rho) * s_size.standard_normal(n_user))
    size = cfg.position_usd_median * np.exp(cfg.position_usd_sigma * z)
    pos_pool = np.concatenate([pool, np.full(cfg.dealers, pidx[_OPTIONS_POOL])])
    pos_account = np.concatenate([account, np.arange(n_acct, n_acct + cfg.dealers)])

    # collateral and debt per lending / CDP pool, legs and collateral on the options venue
    lt = np.zeros((n_pools, _A))
    lt[coll_params["pool"].map(pidx).to_numpy(), coll_params["asset"].map(_AIDX).to_numpy()] = (
        coll_params["liquidation_threshold"].to_numpy())
    empty = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
    coll_rows, debt_rows = [empty], [empty]
    for m, name in enumerate(pos_pools[:-1]):
        idx = np.flatnonzero(pool == m)
        if not idx.size:
            continue
        accepted = lt[m] > 0
        lent_here = np.zeros(_A, dtype=bool)
        lent_here[lent.loc[lent["pool"] == name, "asset"].map(_AIDX).to_numpy()] = True
        cmix, dmix = _COLLATERAL_MIX.get(name, {}), _DEBT_MIX.get(name, {})
        coll_w = np.array([cmix.get(a.id, 1.0) for a in _ASSETS]) * accepted
        debt_w = np.array([dmix.get(a.id, 1.0) for a in _ASSETS]) * lent_here
        cpick, camount, dpick, damount = _lending(s_lend, size[idx], lt[m], coll_w, debt_w, cfg)
        coll_rows.append(_flatten(idx, cpick, camount))
        debt_rows.append(_flatten(idx, dpick, damount))
    opt_users = np.flatnonzero(pool == pidx[_OPTIONS_POOL])
    opt_idx = np.concatenate([opt_users, np.arange(n_user, n)])  # users, then dealers
    legs, (oc_pos, oc_asset, oc_amount) = _options(s_opt, size[opt_users], cfg)
    legs["position"] = opt_idx[legs["position"]]
    coll_rows.append((opt_idx[oc_pos], oc_asset, oc_amount))
    c_pos, c_asset, c_amount = (np.concatenate(x) for x in zip(*coll_rows, strict=True))
    d_pos, d_asset, d_amount = (np.concatenate(x) for x in zip(*debt_rows, strict=True))

    # pool totals from the positions
    def per_pool_asset(pos: np.ndarray, asset: np.ndarray, amount: np.ndarray) -> np.ndarray:
        return np.bincount(pos_pool[pos] * _A + asset, amount,
                           minlength=n_pools * _A).reshape(n_pools, _A)

    coll_total = per_pool_asset(c_pos, c_asset, c_amount)
    borrowed = per_pool_asset(d_pos, d_asset, d_amount)
    holdings = np.zeros((n_pools, _A))
    ls = cfg.liquidity_scale
    a = _AIDX
    minted = float(sum(borrowed[pidx[v], a["DAI"]] for v in _MAKER_VAULTS))
    deposits: list[tuple[str, str, float]] = []

    # Yearn's vault (backs yvWETH; its WETH sits in Aave as aWETH when deposits are on)
    yv_posted = float(coll_total[:, a["yvWETH"]].sum())
    yv_shares = max(yv_posted / _YVWETH_POSTED_SHARE, _YVWETH_MIN_USD * ls / _PRICE[a["yvWETH"]])
    yv_weth = yv_shares * _YVWETH_PRICE_PER_SHARE
    holdings[pidx["yearn:yvWETH"], a["aWETH" if cfg.protocol_deposits else "WETH"]] = yv_weth
    # Maker: PSM USDC, direct deposit of DAI into Aave, 3pool position
    holdings[pidx["maker:PSM-USDC-A"], a["USDC"]] = _PSM_SHARE * minted
    d3m = _D3M_SHARE * minted if cfg.protocol_deposits else 0.0
    maker_3pool = (min(_MAKER_3POOL_SHARE * minted, 0.25 * _THREEPOOL_USD * ls)
                   if cfg.protocol_deposits else 0.0)
    if cfg.protocol_deposits:
        deposits += [("maker", _AAVE, d3m), ("maker", _THREEPOOL, maker_3pool),
                     ("yearn", _AAVE, yv_weth * _PRICE[a["WETH"]])]
    # AMM reserves (market layer): constant product at equal value, stableswap at the price
    for name, (x, y, tvl) in _UNISWAP_POOLS.items():
        holdings[pidx[name], a[x]] = 0.5 * tvl * ls / _PRICE[a[x]]
        holdings[pidx[name], a[y]] = 0.5 * tvl * ls / _PRICE[a[y]]
    steth_pool_usd = max(_STETH_POOL_USD * ls, float(coll_total[:, a["steCRV"]].sum())
                         * _PRICE[a["steCRV"]] / _STECRV_POSTED_MAX)
    pair = [a["stETH"], a["ETH"]]
    st, eth = round_amounts(np.array(_stableswap_pair(steth_pool_usd / _ETH, _STETH / _ETH,
                                                      _STETH_POOL_A)), _DECIMALS[pair])
    holdings[pidx[_STETH_POOL], pair] = st, eth
    holdings[pidx[_THREEPOOL], [a["DAI"], a["USDC"], a["USDT"]]] = _THREEPOOL_USD * ls / 3.0
    # Lido's staking pool holds the ETH behind all stETH (wstETH counted in stETH)
    steth_modelled = st + _WSTETH_STETH * float(coll_total[:, a["wstETH"]].sum())
    holdings[pidx["lido:staking"], a["ETH"]] = steth_modelled / _LST_MODELLED_SHARE

    # lending: supplied = borrowed / utilisation; Aave also counts the aTokens it has issued
    aave = pidx[_AAVE]
    atokens = np.zeros(_A)
    atokens += coll_total[aave]
    atokens[a["WETH"]] += float(coll_total[:, a["aWETH"]].sum()) + (
        yv_weth if cfg.protocol_deposits else 0.0)
    atokens[a["DAI"]] += d3m
    lp, la = lent["pool"].map(pidx).to_numpy(), lent["asset"].map(_AIDX).to_numpy()
    util = s_util.uniform(cfg.utilisation_min, cfg.utilisation_max, len(lent))
    b = borrowed[lp, la]
    supplied = np.maximum.reduce([b / util, np.where(lp == aave, atokens[la], 0.0),
                                  _MIN_SUPPLY_USD / _PRICE[la]])
    is_cdp = np.isin(lp, [pidx[v] for v in _MAKER_VAULTS])
    custody = coll_total.copy()
    custody[aave, np.unique(la[lp == aave])] = 0.0  # Aave collateral of lent assets is supply
    holdings += custody
    np.add.at(holdings, (lp, la), np.where(is_cdp, 0.0, supplied - b))

    # protocol reserves: a share of the debt they are owed (options: of the margin posted)
    value_borrowed = (borrowed * _PRICE).sum(axis=1)  # not a BLAS product: the same bits anywhere
    proto_of_pool = np.array([p.split(":")[0] for p in pool_ids])
    reserve = {p.id: cfg.reserve_ratio * float(value_borrowed[proto_of_pool == p.id].sum())
               for p in _PROTOCOLS}
    reserve["deribit"] = cfg.reserve_ratio * float((coll_total[pidx[_OPTIONS_POOL]] * _PRICE).sum())

    return _tables(n, cfg, pool_ids, pos_pool, pos_account, n_acct, coll_params, lent,
                   supplied, b, holdings, deposits, reserve,
                   (c_pos, c_asset, c_amount), (d_pos, d_asset, d_amount), legs)


_POOL_KIND = {"aave-v3": PoolKind.LENDING, "compound-v3": PoolKind.LENDING,
              "isolend": PoolKind.LENDING, "deribit": PoolKind.OPTIONS, "lido": PoolKind.STAKING,
              "uniswap-v2": PoolKind.AMM, "curve": PoolKind.AMM, "yearn": PoolKind.VAULT}


def _tables(n: int, cfg: GeneratorConfig, pool_ids: list[str], pos_pool: np.ndarray,
            pos_account: np.ndarray, n_acct: int, coll_params: pd.DataFrame,
            lent: pd.DataFrame, supplied: np.ndarray, borrowed: np.ndarray,
            holdings: np.ndarray, deposits: list[tuple[str, str, float]],
            reserve: dict[str, float],
            coll: tuple[np.ndarray, np.ndarray, np.ndarray],
            debt: tuple[np.ndarray, np.ndarray, np.ndarray],
            legs: dict[str, np.ndarray]) -> dict[str, pd.DataFrame]:
    """The snapshot tables of :mod:`graph.schema` from the generated arrays."""
    asset_ids = [x.id for x in _ASSETS]
    protocols = pd.DataFrame({
        "id": [p.id for p in _PROTOCOLS], "name": [p.name for p in _PROTOCOLS],
        "kind": [p.kind.value for p in _PROTOCOLS],
        "close_factor": [p.close_factor for p in _PROTOCOLS],
        "full_close_threshold": [p.full_close_threshold for p in _PROTOCOLS],
        "reserve_usd": [reserve[p.id] for p in _PROTOCOLS]})
    oracles = pd.DataFrame({"id": [f"oracle:{x.id}" for x in _ASSETS],
                            "kind": [x.oracle.value for x in _ASSETS],
                            "reads": [x.oracle_reads for x in _ASSETS]})
    assets = pd.DataFrame({
        "id": asset_ids, "symbol": asset_ids, "kind": [x.kind.value for x in _ASSETS],
        "price": _PRICE, "decimals": np.array([x.decimals for x in _ASSETS], dtype=np.int64),
        "market_depth_usd": [x.depth_usd * cfg.liquidity_scale for x in _ASSETS],
        "issuer": [x.issuer for x in _ASSETS], "pegged_to": [x.pegged_to for x in _ASSETS],
        "oracle": [f"oracle:{x.id}" for x in _ASSETS]})
    proto = [p.split(":")[0] for p in pool_ids]
    fee = {_STETH_POOL: _STETH_POOL_FEE, _THREEPOOL: _THREEPOOL_FEE,
           **dict.fromkeys(_UNISWAP_POOLS, _UNISWAP_FEE)}
    amp = {_STETH_POOL: _STETH_POOL_A, _THREEPOOL: _THREEPOOL_A}
    options = [p == _OPTIONS_POOL for p in pool_ids]
    pools = pd.DataFrame({
        "id": pool_ids, "protocol": proto,
        "kind": [(PoolKind.CDP if p in _MAKER_VAULTS else _POOL_KIND.get(pr, PoolKind.VAULT)
                  ).value for p, pr in zip(pool_ids, proto, strict=True)],
        "fee": [fee.get(p, np.nan) for p in pool_ids],
        "amplification": [amp.get(p, np.nan) for p in pool_ids],
        "maintenance_margin": [cfg.options_maintenance_margin if o else np.nan for o in options],
        "liquidation_penalty": [cfg.options_liquidation_penalty if o else np.nan
                                for o in options]})

    width = max(6, len(str(n - 1)))  # n >= number of accounts
    user_ids = _numbered("acct:", np.arange(n_acct), width)
    dealer_ids = pa.array([f"acct:dealer:{j:02d}" for j in range(cfg.dealers)], pa.string())
    account_ids = pa.concat_arrays([user_ids, dealer_ids])
    accounts = pd.DataFrame({
        "id": _arrow_str(account_ids),
        "kind": _labels([AccountKind.USER.value, AccountKind.DEALER.value],
                        (np.arange(n_acct + cfg.dealers) >= n_acct).astype(np.int64))})
    prefixes = [f"pos:{p}:" for p in pool_ids]
    position_ids = _numbered(_dict_arrow(prefixes, pos_pool), np.arange(n), width)
    positions = pd.DataFrame({"id": _arrow_str(position_ids),
                              "account": _arrow_str(account_ids.take(pa.array(pos_account))),
                              "pool": _labels(pool_ids, pos_pool)})

    def position_edges(pos: np.ndarray, asset: np.ndarray, amount: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame({"position": _arrow_str(position_ids.take(pa.array(pos))),
                             "asset": _labels(asset_ids, asset), "amount": amount})

    hp, ha = np.nonzero(holdings > 0)
    tables = {
        "protocols": protocols, "oracles": oracles, "assets": assets, "pools": pools,
        "accounts": accounts, "positions": positions,
        "pool_collateral": coll_params,
        "pool_lends": lent.assign(supplied=supplied, borrowed=borrowed),
        "pool_holdings": pd.DataFrame({"pool": [pool_ids[i] for i in hp],
                                       "asset": [asset_ids[i] for i in ha],
                                       "amount": holdings[hp, ha]}),
        "protocol_deposits": pd.DataFrame([d for d in deposits if d[2] > 0],
                                          columns=["protocol", "pool", "amount_usd"]),
        "position_collateral": position_edges(*coll),
        "position_debt": position_edges(*debt),
        "position_options": pd.DataFrame({
            "position": _arrow_str(position_ids.take(pa.array(legs["position"]))),
            "asset": _labels(asset_ids, legs["asset"]),
            "kind": _labels([OptionKind.PUT.value, OptionKind.CALL.value],
                            legs["is_call"].astype(np.int64)),
            "side": _labels([OptionSide.LONG.value, OptionSide.SHORT.value],
                            legs["is_short"].astype(np.int64)),
            "strike": legs["strike"], "expiry": legs["expiry"], "size": legs["size"],
            "implied_vol": legs["iv"]}),
    }
    return tables


def generate_ecosystem(positions: int, seed: int,
                       config: GeneratorConfig | None = None) -> Snapshot:
    """Generate a validated ecosystem snapshot with ``positions`` positions.

    ``positions``: 100 to 10,000,000 (``config.dealers`` of them are dealer books on the
    options venue); ``seed``: a non-negative integer. The same arguments always give equal
    tables; see the module docstring for what is generated and where the numbers come from.
    The manifest records ``positions``, ``seed`` and every field of ``config``.

    >>> snap = generate_ecosystem(1_000, seed=7)
    >>> snap.num_rows("positions"), snap.manifest.source
    (1000, 'generated')
    """
    if isinstance(positions, bool) or not isinstance(positions, int | np.integer) or not (
            MIN_POSITIONS <= positions <= MAX_POSITIONS):
        raise ValueError(f"positions must be an integer between {MIN_POSITIONS:,} and "
                         f"{MAX_POSITIONS:,} (got {positions!r})")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer (got {seed!r})")
    if config is None:
        config = GeneratorConfig()
    elif not isinstance(config, GeneratorConfig):
        raise TypeError(f"config must be a GeneratorConfig or None (got {type(config).__name__})")
    n, s = int(positions), int(seed)
    tables = _generate(n, s, config)
    manifest = Manifest(name=f"generated-{n}-seed-{s}", source="generated", as_of=AS_OF,
                        params={"positions": n, "seed": s, **config.model_dump(mode="json")})
    return Snapshot.from_tables(tables, manifest)
