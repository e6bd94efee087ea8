"""The tables of a :class:`~graph.snapshot.Snapshot` and how each maps onto the property graph.

A snapshot is relational: one table per record type. Node tables (``protocols``, ``assets``,
``pools``, ``oracles``, ``accounts``, ``positions``) have an ``id`` unique across *all* node
tables, and their foreign-key columns become relationships (``assets.issuer`` is
``(Asset)-[:ISSUED_BY]->(Protocol)``). Edge tables (``pool_collateral``, ``position_debt``, ...)
become one relationship per row, with the remaining columns as its properties.

Units: amounts are token units (not wei), prices and ``*_usd`` fields are US dollars, times are
Unix seconds (UTC), ratios are fractions (0.83, not 8300 basis points).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

from graph.vocab import (
    AccountKind,
    AssetKind,
    NodeLabel,
    OptionKind,
    OptionSide,
    OracleKind,
    PoolKind,
    ProtocolKind,
    RelType,
)

__all__ = [
    "EDGE_TABLES",
    "NODE_TABLES",
    "SCHEMA_VERSION",
    "TABLES",
    "Column",
    "TableSpec",
    "rel_endpoints",
    "table_for_label",
]

SCHEMA_VERSION = 1

DType = Literal["str", "float", "int"]


@dataclass(frozen=True)
class Column:
    """One column: its type, whether it may be null, its allowed range, values or referent.

    ``low``/``high`` bound numeric values (open bounds exclude the end point); ``choices``
    restricts strings to an enumeration; ``ref`` names the node table whose ``id`` the value
    must be; ``rel``/``rel_out`` turn a foreign key of a node table into a relationship
    (``rel_out=True``: from this record's node to the referenced one).
    """

    name: str
    dtype: DType
    required: bool = True
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: type[StrEnum] | None = None
    ref: str | None = None
    rel: RelType | None = None
    rel_out: bool = True

    def range_text(self) -> str:
        lo = "-inf" if self.low is None else f"{self.low:g}"
        hi = "inf" if self.high is None else f"{self.high:g}"
        if self.high is None:
            return f"{'>' if self.low_open else '>='} {lo}"
        if self.low is None:
            return f"{'<' if self.high_open else '<='} {hi}"
        return f"in {'(' if self.low_open else '['}{lo}, {hi}{')' if self.high_open else ']'}"


@dataclass(frozen=True)
class TableSpec:
    """A snapshot table: its columns, its key, and what it is in the graph.

    A node table has ``label``; an edge table has ``rel`` (relationship type) with ``src`` and
    ``dst`` columns referring to node tables. ``rel_key`` lists the extra columns that, with
    ``src`` and ``dst``, identify one relationship (several option legs may join one position
    and one asset).
    """

    name: str
    columns: tuple[Column, ...]
    label: NodeLabel | None = None
    rel: RelType | None = None
    src: str = ""
    dst: str = ""
    rel_key: tuple[str, ...] = ()
    doc: str = ""
    key: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        key = ("id",) if self.label is not None else (self.src, self.dst, *self.rel_key)
        object.__setattr__(self, "key", key)

    @property
    def is_node(self) -> bool:
        return self.label is not None

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    def property_columns(self) -> tuple[Column, ...]:
        """Columns stored as node/relationship properties (not foreign keys or endpoints)."""
        if self.is_node:
            return tuple(c for c in self.columns if c.rel is None)
        return tuple(c for c in self.columns if c.name not in (self.src, self.dst))

    def fk_columns(self) -> tuple[Column, ...]:
        """Foreign-key columns of a node table that become relationships."""
        return tuple(c for c in self.columns if c.rel is not None)


def _id() -> Column:
    return Column("id", "str")


def _nonneg(name: str) -> Column:
    return Column(name, "float", low=0.0)


def _ratio(name: str, *, required: bool = True, low_open: bool = False,
           high: float = 1.0) -> Column:
    return Column(name, "float", required=required, low=0.0, high=high, low_open=low_open)


TABLES: dict[str, TableSpec] = {
    t.name: t
    for t in (
        TableSpec(
            "protocols",
            (
                _id(),
                Column("name", "str"),
                Column("kind", "str", choices=ProtocolKind),
                _ratio("close_factor", low_open=True),
                _ratio("full_close_threshold"),
                _nonneg("reserve_usd"),
            ),
            label=NodeLabel.PROTOCOL,
            doc="A protocol. close_factor: share of a position's debt one liquidation may repay; "
            "below health factor full_close_threshold it may repay all (Aave v3: 0.5 and 0.95). "
            "reserve_usd: the buffer (treasury, safety module) that absorbs bad debt first.",
        ),
        TableSpec(
            "oracles",
            (
                _id(),
                Column("kind", "str", choices=OracleKind),
                Column("reads", "str", required=False, ref="pools", rel=RelType.READS),
                Column("deviation_threshold", "float", required=False, low=0.0, high=1.0,
                       high_open=True),
                Column("heartbeat_seconds", "float", required=False, low=0.0, low_open=True),
                Column("twap_window_seconds", "float", required=False, low=0.0),
            ),
            label=NodeLabel.ORACLE,
            doc="A price source; reads: the pool a TWAP or exchange-rate oracle reads. A feed "
            "reports the market price when it has moved more than deviation_threshold (a "
            "fraction) from the last report or heartbeat_seconds have passed since it; a TWAP "
            "averages its pool's price over twap_window_seconds (0: the spot price). Null: "
            "the kind's default (feed 0.005 and 3600 s, TWAP 1800 s; "
            "simulate.cascade.oracles).",
        ),
        TableSpec(
            "assets",
            (
                _id(),
                Column("symbol", "str"),
                Column("kind", "str", choices=AssetKind),
                Column("price", "float", low=0.0, low_open=True),
                Column("decimals", "int", low=0, high=77),
                _nonneg("market_depth_usd"),
                Column("issuer", "str", required=False, ref="protocols", rel=RelType.ISSUED_BY),
                Column("pegged_to", "str", required=False, ref="assets", rel=RelType.PEGGED_TO),
                Column("oracle", "str", required=False, ref="oracles", rel=RelType.PRICED_BY),
            ),
            label=NodeLabel.ASSET,
            doc="A token. price in USD; market_depth_usd: off-chain order-book depth within 2% "
            "of mid (the liquidity a fire sale meets outside the modelled pools).",
        ),
        TableSpec(
            "pools",
            (
                _id(),
                Column(
                    "protocol", "str", ref="protocols", rel=RelType.OPERATES, rel_out=False
                ),
                Column("kind", "str", choices=PoolKind),
                Column("fee", "float", required=False, low=0.0, high=1.0, high_open=True),
                Column("amplification", "float", required=False, low=0.0, low_open=True),
                _ratio("maintenance_margin", required=False, low_open=True),
                _ratio("liquidation_penalty", required=False, high=0.5),
            ),
            label=NodeLabel.POOL,
            doc="A lending market, CDP vault type, AMM pool, options margin pool or vault. fee and "
            "amplification (stableswap A; null = constant product) apply to AMM pools; "
            "maintenance_margin and liquidation_penalty to options/perp pools.",
        ),
        TableSpec(
            "accounts",
            (_id(), Column("kind", "str", choices=AccountKind)),
            label=NodeLabel.ACCOUNT,
            doc="An address holding positions.",
        ),
        TableSpec(
            "positions",
            (
                _id(),
                Column("account", "str", ref="accounts", rel=RelType.OWNS, rel_out=False),
                Column("pool", "str", ref="pools", rel=RelType.IN),
            ),
            label=NodeLabel.POSITION,
            doc="An account's position in one pool: collateral, debt and option legs.",
        ),
        TableSpec(
            "pool_collateral",
            (
                Column("pool", "str", ref="pools"),
                Column("asset", "str", ref="assets"),
                _ratio("ltv"),
                _ratio("liquidation_threshold", low_open=True),
                _ratio("liquidation_bonus", high=0.5),
            ),
            rel=RelType.ACCEPTS_COLLATERAL,
            src="pool",
            dst="asset",
            doc="An asset a pool accepts as collateral, with its risk parameters (ltv <= "
            "liquidation_threshold; liquidation_bonus 0.05 = liquidators get 5% extra).",
        ),
        TableSpec(
            "pool_lends",
            (
                Column("pool", "str", ref="pools"),
                Column("asset", "str", ref="assets"),
                _nonneg("supplied"),
                _nonneg("borrowed"),
            ),
            rel=RelType.LENDS,
            src="pool",
            dst="asset",
            doc="An asset a pool lends (or, for a CDP, mints up to its ceiling): supplied and "
            "borrowed totals in token units, borrowed <= supplied.",
        ),
        TableSpec(
            "pool_holdings",
            (
                Column("pool", "str", ref="pools"),
                Column("asset", "str", ref="assets"),
                _nonneg("amount"),
            ),
            rel=RelType.HOLDS,
            src="pool",
            dst="asset",
            doc="Token balances of a pool (AMM reserves, staked underlying, vault holdings).",
        ),
        TableSpec(
            "protocol_deposits",
            (
                Column("protocol", "str", ref="protocols"),
                Column("pool", "str", ref="pools"),
                _nonneg("amount_usd"),
            ),
            rel=RelType.DEPOSITS_IN,
            src="protocol",
            dst="pool",
            doc="Treasury or backing assets a protocol keeps in another protocol's pool (USD).",
        ),
        TableSpec(
            "position_collateral",
            (
                Column("position", "str", ref="positions"),
                Column("asset", "str", ref="assets"),
                _nonneg("amount"),
            ),
            rel=RelType.COLLATERAL,
            src="position",
            dst="asset",
            doc="Collateral of a position (the asset must be accepted by the position's pool).",
        ),
        TableSpec(
            "position_debt",
            (
                Column("position", "str", ref="positions"),
                Column("asset", "str", ref="assets"),
                _nonneg("amount"),
            ),
            rel=RelType.DEBT,
            src="position",
            dst="asset",
            doc="Debt of a position (the asset must be lent by the position's pool).",
        ),
        TableSpec(
            "position_options",
            (
                Column("position", "str", ref="positions"),
                Column("asset", "str", ref="assets"),
                Column("kind", "str", choices=OptionKind),
                Column("side", "str", choices=OptionSide),
                Column("strike", "float", low=0.0, low_open=True),
                Column("expiry", "int", low=0),
                Column("size", "float", low=0.0, low_open=True),
                Column("implied_vol", "float", required=False, low=0.0, low_open=True),
            ),
            rel=RelType.OPTION,
            src="position",
            dst="asset",
            rel_key=("kind", "strike", "expiry"),
            doc="A European option leg on an underlying asset: size in units of the underlying, "
            "expiry in Unix seconds, implied_vol the annualised mark IV at the snapshot.",
        ),
    )
}

NODE_TABLES: tuple[str, ...] = tuple(n for n, t in TABLES.items() if t.is_node)
EDGE_TABLES: tuple[str, ...] = tuple(n for n, t in TABLES.items() if not t.is_node)


def table_for_label(label: NodeLabel | str) -> TableSpec:
    """The node table whose rows are nodes with ``label``."""
    for t in TABLES.values():
        if t.label == label:
            return t
    raise KeyError(f"no table for node label {label!r}")


def rel_endpoints(rel: RelType | str) -> tuple[NodeLabel, NodeLabel]:
    """The labels at the start and the end of every relationship of type ``rel``.

    >>> rel_endpoints("OPERATES")
    (<NodeLabel.PROTOCOL: 'Protocol'>, <NodeLabel.POOL: 'Pool'>)
    """
    for t in TABLES.values():
        if t.label is not None:
            for c in t.fk_columns():
                if c.rel == rel:
                    other = TABLES[str(c.ref)].label
                    assert other is not None
                    return (t.label, other) if c.rel_out else (other, t.label)
        elif t.rel == rel:
            src = TABLES[str(t.column(t.src).ref)].label
            dst = TABLES[str(t.column(t.dst).ref)].label
            assert src is not None and dst is not None
            return src, dst
    raise KeyError(f"no relationship type {rel!r} (expected one of {', '.join(RelType)})")
