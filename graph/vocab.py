"""The domain vocabulary: node labels, relationship types and the enumerations used by records.

One module, imported everywhere, so that a label or a relationship type is spelled in one place
(docs/architecture.md §3). Relationship direction reads "depends on":
``(Pool)-[:ACCEPTS_COLLATERAL]->(Asset)`` means the pool's solvency depends on the asset's price.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "DEPENDENCY_RELS",
    "AccountKind",
    "AssetKind",
    "NodeLabel",
    "OptionKind",
    "OptionSide",
    "OracleKind",
    "PoolKind",
    "ProtocolKind",
    "RelType",
]


class NodeLabel(StrEnum):
    """Neo4j node labels (the in-process store uses the same names)."""

    PROTOCOL = "Protocol"
    ASSET = "Asset"
    POOL = "Pool"
    ORACLE = "Oracle"
    ACCOUNT = "Account"
    POSITION = "Position"


class RelType(StrEnum):
    """Relationship types; the direction is "depends on" unless noted in docs/architecture.md §3."""

    OPERATES = "OPERATES"  # (Protocol)->(Pool)
    # (Pool)->(Asset) {ltv, liquidation_threshold, liquidation_bonus}
    ACCEPTS_COLLATERAL = "ACCEPTS_COLLATERAL"
    LENDS = "LENDS"  # (Pool)->(Asset) {supplied, borrowed}
    HOLDS = "HOLDS"  # (Pool)->(Asset) {amount}
    ISSUED_BY = "ISSUED_BY"  # (Asset)->(Protocol)
    PEGGED_TO = "PEGGED_TO"  # (Asset)->(Asset)
    PRICED_BY = "PRICED_BY"  # (Asset)->(Oracle)
    READS = "READS"  # (Oracle)->(Pool)
    DEPOSITS_IN = "DEPOSITS_IN"  # (Protocol)->(Pool) {amount}
    OWNS = "OWNS"  # (Account)->(Position)
    IN = "IN"  # (Position)->(Pool)
    COLLATERAL = "COLLATERAL"  # (Position)->(Asset) {amount}
    DEBT = "DEBT"  # (Position)->(Asset) {amount}
    OPTION = "OPTION"  # (Position)->(Asset) {kind, side, strike, expiry, size, implied_vol}


#: Relationships between protocols, pools, assets and oracles: the layer that dependency
#: subgraphs and contagion paths walk (accounts and positions hang off it).
DEPENDENCY_RELS: tuple[RelType, ...] = (
    RelType.OPERATES,
    RelType.ACCEPTS_COLLATERAL,
    RelType.LENDS,
    RelType.HOLDS,
    RelType.ISSUED_BY,
    RelType.PEGGED_TO,
    RelType.PRICED_BY,
    RelType.READS,
    RelType.DEPOSITS_IN,
)


class ProtocolKind(StrEnum):
    LENDING = "lending"
    CDP = "cdp"
    DEX = "dex"
    OPTIONS = "options"
    PERP = "perp"
    LST = "lst"
    STABLECOIN = "stablecoin"
    VAULT = "vault"
    BRIDGE = "bridge"


class AssetKind(StrEnum):
    NATIVE = "native"  # a chain's own coin (ETH) or a major with no issuer in the graph (BTC)
    TOKEN = "token"  # a governance or utility token (LINK, AAVE, CRV, ...)
    STABLE = "stable"
    LST = "lst"
    LP = "lp"
    RECEIPT = "receipt"
    WRAPPED = "wrapped"


class PoolKind(StrEnum):
    LENDING = "lending"  # an Aave/Compound-style money market
    CDP = "cdp"  # a Maker-style vault type that mints its protocol's stablecoin
    AMM = "amm"  # a constant-product (or stableswap, with amplification) pool
    OPTIONS = "options"  # an options venue's margin pool
    PERP = "perp"
    VAULT = "vault"
    STAKING = "staking"  # an LST's staking pool (holds the underlying)


class OracleKind(StrEnum):
    FEED = "feed"  # an off-chain aggregated feed (Chainlink-style)
    TWAP = "twap"  # a time-weighted price read from an AMM pool
    EXCHANGE_RATE = "exchange_rate"  # a contract rate (LST / receipt token redemption rate)
    FIXED = "fixed"  # a hard-coded price (some stablecoin markets)


class AccountKind(StrEnum):
    USER = "user"
    DEALER = "dealer"  # a market maker that delta-hedges its option book
    CONTRACT = "contract"  # a protocol-owned or strategy account


class OptionKind(StrEnum):
    CALL = "call"
    PUT = "put"


class OptionSide(StrEnum):
    LONG = "long"
    SHORT = "short"
