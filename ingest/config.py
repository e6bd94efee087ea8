"""The on-chain ingest configuration: which contracts, from which block, how carefully.

A YAML (``.yaml``/``.yml``) or TOML (``.toml``) file validated by :class:`ChainConfig`; see the
README's *Ingest* section for an example. Addresses are accepted in any case and normalised to
their EIP-55 checksum form; unknown keys are rejected so that a misspelt option is an error,
not a silent default.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from web3 import Web3

from graph.errors import IngestError
from graph.vocab import AssetKind

__all__ = [
    "Address",
    "AssetConfig",
    "ChainConfig",
    "LendingPoolConfig",
    "PairConfig",
    "load_chain_config",
]


def _checksum(value: str) -> str:
    if not Web3.is_address(value):
        raise ValueError(f"must be a 20-byte hex address (got {value!r})")
    return str(Web3.to_checksum_address(value))


#: A contract or account address, normalised to its EIP-55 checksum spelling.
Address = Annotated[str, AfterValidator(_checksum)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AssetConfig(_Model):
    """How one ERC-20 token becomes an ``assets`` row.

    ``id`` defaults to the token's ``symbol()``; ``feed`` is a Chainlink-style aggregator whose
    ``latestRoundData().answer / 10**decimals()`` is the USD price at the ingested block;
    ``price`` fixes the price instead (an oracle of kind ``fixed``). Exactly one of the two.
    """

    id: str | None = Field(default=None, min_length=1)
    kind: AssetKind = AssetKind.TOKEN
    feed: Address | None = None
    price: float | None = Field(default=None, gt=0)
    market_depth_usd: float = Field(default=0.0, ge=0)
    pegged_to: str | None = None
    issuer: str | None = None


class LendingPoolConfig(_Model):
    """An Aave-v3-style ``Pool`` contract; its pool id is ``<protocol>:<address>``."""

    pool: Address
    protocol: str = Field(default="aave-v3", min_length=1)
    protocol_name: str = "Aave v3"
    close_factor: float = Field(default=0.5, gt=0, le=1)
    full_close_threshold: float = Field(default=0.95, ge=0, le=1)
    reserve_usd: float = Field(default=0.0, ge=0)


class PairConfig(_Model):
    """A Uniswap-v2-style pair; its pool id is ``<protocol>:<address>``."""

    pair: Address
    protocol: str = Field(default="uniswap-v2", min_length=1)
    protocol_name: str = "Uniswap v2"
    fee: float = Field(default=0.003, ge=0, lt=1)


class ChainConfig(_Model):
    """Everything an on-chain ingest needs except the RPC URL (which may carry an API key and
    is given on the command line, or as ``rpc`` here).

    Blocks: events are read from ``start_block`` (the pools' deployment) up to the ingested
    block, which is ``block`` (a number, or ``latest`` = the head less ``confirmations``). A
    numbered block closer than ``confirmations`` to the head is refused (reorg safety).
    Logs are read ``chunk_blocks`` blocks per request (halved when the node says a range is too
    large); a request failing with a timeout, a connection error, HTTP 429/5xx or a JSON-RPC
    rate-limit error is retried up to ``max_retries`` times, waiting ``backoff_seconds`` × 2^k
    (at most 30 s); a request may take ``timeout_seconds``. The first request checks that the
    endpoint answers: it may take ``connect_timeout_seconds`` and is retried
    ``connect_retries`` times, so that an unreachable endpoint fails within seconds. Every
    retry is reported as it happens. ``eth_call`` reads go ``batch_size`` to a JSON-RPC
    batch. ``checkpoint``
    (relative to the config file; default ``<config name>.checkpoint.json`` beside it) holds
    the scan's progress.
    """

    name: str = Field(default="chain", min_length=1)
    chain: str = "ethereum"
    rpc: str | None = None
    start_block: int = Field(default=0, ge=0)
    block: int | Literal["latest"] = "latest"
    confirmations: int = Field(default=12, ge=0)
    chunk_blocks: int = Field(default=2000, ge=1)
    batch_size: int = Field(default=100, ge=1, le=10_000)
    max_retries: int = Field(default=6, ge=0)
    backoff_seconds: float = Field(default=0.5, ge=0)
    timeout_seconds: float = Field(default=30.0, gt=0)
    connect_retries: int = Field(default=2, ge=0)
    connect_timeout_seconds: float = Field(default=5.0, gt=0)
    checkpoint: Path | None = None
    lending: tuple[LendingPoolConfig, ...] = ()
    amm: tuple[PairConfig, ...] = ()
    assets: dict[Address, AssetConfig] = Field(default_factory=dict)


def load_chain_config(path: str | Path) -> ChainConfig:
    """Read and validate a YAML or TOML config file; a relative ``checkpoint`` is resolved
    against the file's directory (and defaults to ``<stem>.checkpoint.json`` beside it).

    Raises :class:`~graph.errors.IngestError` naming the file and the offending key.
    """
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise IngestError(f"cannot read the config file ({e.strerror})", source=str(p)) from e
    try:
        if p.suffix.lower() == ".toml":
            doc = tomllib.loads(text)
        elif p.suffix.lower() in (".yaml", ".yml"):
            doc = yaml.safe_load(text)
        else:
            raise IngestError("config must be a .yaml, .yml or .toml file", source=str(p))
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as e:
        first = str(e).splitlines()[0]
        raise IngestError(f"not valid {p.suffix.lstrip('.').upper()} ({first})",
                          source=str(p)) from e
    if not isinstance(doc, dict):
        raise IngestError("expected a mapping of settings at the top level", source=str(p))
    try:
        cfg = ChainConfig.model_validate(doc)
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(x) for x in err["loc"])
        got = f" (got {err['input']!r})" if err["type"] != "missing" else ""
        raise IngestError(f"{err['msg']}{got}", source=str(p), field=loc) from None
    ck = cfg.checkpoint or Path(f"{p.stem}.checkpoint.json")
    return cfg.model_copy(update={"checkpoint": ck if ck.is_absolute() else p.parent / ck})
