"""The contract interfaces the on-chain ingestor reads, with their real signatures.

Only the functions and events used are listed. They are those of the deployed contracts, so
the ingestor works against mainnet addresses unchanged:

- **Aave v3 Pool** (``IPool``): ``getReservesList()``, ``getReserveData(address)`` (the
  ``ReserveData`` struct of v3.0/v3.1, kept as ``ReserveDataLegacy`` by later versions),
  ``getConfiguration(address)`` and ``getUserConfiguration(address)`` (bitmaps), and the events
  ``Supply``, ``Borrow``, ``Repay``, ``Withdraw`` and ``LiquidationCall``.
- **Uniswap v2 pair** (``IUniswapV2Pair``): ``token0()``, ``token1()``, ``getReserves()`` and
  the ``Sync(uint112,uint112)`` event.
- **Chainlink aggregator** (``AggregatorV3Interface``): ``decimals()``, ``latestRoundData()``.
- **ERC-20**: ``symbol()``, ``decimals()``, ``totalSupply()``, ``balanceOf(address)``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["AAVE_V3_POOL", "CHAINLINK_FEED", "ERC20", "UNISWAP_V2_PAIR"]

ABI = list[dict[str, Any]]


def _p(name: str, typ: str, indexed: bool | None = None, **extra: Any) -> dict[str, Any]:
    d: dict[str, Any] = {"name": name, "type": typ, **extra}
    if indexed is not None:
        d["indexed"] = indexed
    return d


def _fn(name: str, inputs: list[dict[str, Any]], outputs: list[dict[str, Any]]
        ) -> dict[str, Any]:
    return {"type": "function", "name": name, "stateMutability": "view", "inputs": inputs,
            "outputs": outputs}


def _event(name: str, inputs: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "event", "name": name, "anonymous": False, "inputs": inputs}


_RESERVE_DATA = [
    _p("configuration", "tuple", components=[_p("data", "uint256")]),
    _p("liquidityIndex", "uint128"),
    _p("currentLiquidityRate", "uint128"),
    _p("variableBorrowIndex", "uint128"),
    _p("currentVariableBorrowRate", "uint128"),
    _p("currentStableBorrowRate", "uint128"),
    _p("lastUpdateTimestamp", "uint40"),
    _p("id", "uint16"),
    _p("aTokenAddress", "address"),
    _p("stableDebtTokenAddress", "address"),
    _p("variableDebtTokenAddress", "address"),
    _p("interestRateStrategyAddress", "address"),
    _p("accruedToTreasury", "uint128"),
    _p("unbacked", "uint128"),
    _p("isolationModeTotalDebt", "uint128"),
]

AAVE_V3_POOL: ABI = [
    _fn("getReservesList", [], [_p("", "address[]")]),
    _fn("getReserveData", [_p("asset", "address")],
        [_p("", "tuple", components=_RESERVE_DATA)]),
    _fn("getConfiguration", [_p("asset", "address")],
        [_p("", "tuple", components=[_p("data", "uint256")])]),
    _fn("getUserConfiguration", [_p("user", "address")],
        [_p("", "tuple", components=[_p("data", "uint256")])]),
    _event("Supply", [
        _p("reserve", "address", True), _p("user", "address", False),
        _p("onBehalfOf", "address", True), _p("amount", "uint256", False),
        _p("referralCode", "uint16", True)]),
    _event("Withdraw", [
        _p("reserve", "address", True), _p("user", "address", True),
        _p("to", "address", True), _p("amount", "uint256", False)]),
    _event("Borrow", [
        _p("reserve", "address", True), _p("user", "address", False),
        _p("onBehalfOf", "address", True), _p("amount", "uint256", False),
        _p("interestRateMode", "uint8", False), _p("borrowRate", "uint256", False),
        _p("referralCode", "uint16", True)]),
    _event("Repay", [
        _p("reserve", "address", True), _p("user", "address", True),
        _p("repayer", "address", True), _p("amount", "uint256", False),
        _p("useATokens", "bool", False)]),
    _event("LiquidationCall", [
        _p("collateralAsset", "address", True), _p("debtAsset", "address", True),
        _p("user", "address", True), _p("debtToCover", "uint256", False),
        _p("liquidatedCollateralAmount", "uint256", False), _p("liquidator", "address", False),
        _p("receiveAToken", "bool", False)]),
]

UNISWAP_V2_PAIR: ABI = [
    _fn("token0", [], [_p("", "address")]),
    _fn("token1", [], [_p("", "address")]),
    _fn("getReserves", [], [_p("_reserve0", "uint112"), _p("_reserve1", "uint112"),
                            _p("_blockTimestampLast", "uint32")]),
    _event("Sync", [_p("reserve0", "uint112", False), _p("reserve1", "uint112", False)]),
]

CHAINLINK_FEED: ABI = [
    _fn("decimals", [], [_p("", "uint8")]),
    _fn("latestRoundData", [], [
        _p("roundId", "uint80"), _p("answer", "int256"), _p("startedAt", "uint256"),
        _p("updatedAt", "uint256"), _p("answeredInRound", "uint80")]),
]

ERC20: ABI = [
    _fn("symbol", [], [_p("", "string")]),
    _fn("decimals", [], [_p("", "uint8")]),
    _fn("totalSupply", [], [_p("", "uint256")]),
    _fn("balanceOf", [_p("account", "address")], [_p("", "uint256")]),
]
