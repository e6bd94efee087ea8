// SPDX-License-Identifier: Apache-2.0
// Test fixture: an Aave-v3-style lending pool. It has the v3 Pool's read functions
// (getReservesList, getReserveData, getConfiguration, getUserConfiguration), its user actions
// (supply, withdraw, borrow, repay, setUserUseReserveAsCollateral, liquidationCall) with their
// real signatures and events, and packs reserve and user configuration into bitmaps laid out
// as v3's ReserveConfiguration and UserConfiguration libraries do. It is not a protocol: there
// are no interest rates (every index stays at 1 ray), no health-factor checks and no fees.
pragma solidity 0.8.28;

import {TestERC20, TestAToken} from "./TestERC20.sol";

interface IPriceFeed {
    function latestAnswer() external view returns (int256);
}

contract TestPool {
    struct ReserveConfigurationMap {
        uint256 data;
    }

    struct UserConfigurationMap {
        uint256 data;
    }

    struct ReserveData {
        ReserveConfigurationMap configuration;
        uint128 liquidityIndex;
        uint128 currentLiquidityRate;
        uint128 variableBorrowIndex;
        uint128 currentVariableBorrowRate;
        uint128 currentStableBorrowRate;
        uint40 lastUpdateTimestamp;
        uint16 id;
        address aTokenAddress;
        address stableDebtTokenAddress;
        address variableDebtTokenAddress;
        address interestRateStrategyAddress;
        uint128 accruedToTreasury;
        uint128 unbacked;
        uint128 isolationModeTotalDebt;
    }

    uint256 private constant RAY = 1e27;

    address public immutable admin;
    address[] private _reservesList;
    mapping(address => ReserveData) private _reserves;
    mapping(address => UserConfigurationMap) private _users;
    mapping(address => address) public priceFeed;

    event Supply(address indexed reserve, address user, address indexed onBehalfOf,
                 uint256 amount, uint16 indexed referralCode);
    event Withdraw(address indexed reserve, address indexed user, address indexed to,
                   uint256 amount);
    event Borrow(address indexed reserve, address user, address indexed onBehalfOf,
                 uint256 amount, uint8 interestRateMode, uint256 borrowRate,
                 uint16 indexed referralCode);
    event Repay(address indexed reserve, address indexed user, address indexed repayer,
                uint256 amount, bool useATokens);
    event LiquidationCall(address indexed collateralAsset, address indexed debtAsset,
                          address indexed user, uint256 debtToCover,
                          uint256 liquidatedCollateralAmount, address liquidator,
                          bool receiveAToken);
    event ReserveUsedAsCollateralEnabled(address indexed reserve, address indexed user);
    event ReserveUsedAsCollateralDisabled(address indexed reserve, address indexed user);

    constructor() {
        admin = msg.sender;
    }

    modifier onlyAdmin() {
        require(msg.sender == admin, "only the admin");
        _;
    }

    // ----------------------------------------------------------------- administration

    function initReserve(address asset, address aToken, address stableDebtToken,
                         address variableDebtToken, address feed) external onlyAdmin {
        require(_reserves[asset].aTokenAddress == address(0), "reserve exists");
        ReserveData storage r = _reserves[asset];
        r.liquidityIndex = uint128(RAY);
        r.variableBorrowIndex = uint128(RAY);
        r.id = uint16(_reservesList.length);
        r.aTokenAddress = aToken;
        r.stableDebtTokenAddress = stableDebtToken;
        r.variableDebtTokenAddress = variableDebtToken;
        r.lastUpdateTimestamp = uint40(block.timestamp);
        _reservesList.push(asset);
        priceFeed[asset] = feed;
    }

    /// Packs the parameters as v3's ReserveConfiguration setters do: ltv, liquidation
    /// threshold and bonus in basis points (the bonus includes the 100%).
    function configureReserve(address asset, uint256 ltv, uint256 liquidationThreshold,
                              uint256 liquidationBonus, uint256 decimals,
                              bool borrowingEnabled) external onlyAdmin {
        require(ltv <= liquidationThreshold && liquidationThreshold < 1 << 16, "bad threshold");
        require(liquidationBonus < 1 << 16 && decimals < 1 << 8, "bad bonus or decimals");
        uint256 data = _reserves[asset].configuration.data & ~uint256(0xFFFFFFFFFFFFFFFFFFFF);
        data |= ltv | (liquidationThreshold << 16) | (liquidationBonus << 32) | (decimals << 48);
        data |= (uint256(1) << 56) | (uint256(1) << 63) | (uint256(1000) << 64);
        if (borrowingEnabled) data |= uint256(1) << 58;
        _reserves[asset].configuration.data = data;
    }

    /// Borrow cap (bits 80-115) and supply cap (bits 116-151) in whole tokens (0 = none).
    function setCaps(address asset, uint256 borrowCap, uint256 supplyCap) external onlyAdmin {
        require(borrowCap < 1 << 36 && supplyCap < 1 << 36, "bad cap");
        uint256 mask = ((uint256(1) << 72) - 1) << 80;
        uint256 data = _reserves[asset].configuration.data & ~mask;
        _reserves[asset].configuration.data = data | (borrowCap << 80) | (supplyCap << 116);
    }

    // ----------------------------------------------------------------- reads (Aave v3 Pool)

    function getReservesList() external view returns (address[] memory) {
        return _reservesList;
    }

    function getReserveData(address asset) external view returns (ReserveData memory) {
        return _reserves[asset];
    }

    function getConfiguration(address asset) external view
            returns (ReserveConfigurationMap memory) {
        return _reserves[asset].configuration;
    }

    function getUserConfiguration(address user) external view
            returns (UserConfigurationMap memory) {
        return _users[user];
    }

    // ----------------------------------------------------------------- user actions

    function supply(address asset, uint256 amount, address onBehalfOf, uint16 referralCode)
            external {
        ReserveData storage r = _reserves[asset];
        TestAToken aToken = TestAToken(r.aTokenAddress);
        bool first = aToken.balanceOf(onBehalfOf) == 0;
        require(TestERC20(asset).transferFrom(msg.sender, address(aToken), amount), "pull");
        aToken.mint(onBehalfOf, amount);
        if (first && _ltv(r) != 0) {
            _setCollateral(r.id, onBehalfOf, true);
            emit ReserveUsedAsCollateralEnabled(asset, onBehalfOf);
        }
        emit Supply(asset, msg.sender, onBehalfOf, amount, referralCode);
    }

    function withdraw(address asset, uint256 amount, address to) external returns (uint256) {
        ReserveData storage r = _reserves[asset];
        TestAToken aToken = TestAToken(r.aTokenAddress);
        uint256 balance = aToken.balanceOf(msg.sender);
        if (amount == type(uint256).max) amount = balance;
        aToken.burn(msg.sender, amount);
        aToken.transferUnderlyingTo(to, amount);
        if (amount == balance && _isCollateral(r.id, msg.sender)) {
            _setCollateral(r.id, msg.sender, false);
            emit ReserveUsedAsCollateralDisabled(asset, msg.sender);
        }
        emit Withdraw(asset, msg.sender, to, amount);
        return amount;
    }

    function borrow(address asset, uint256 amount, uint256 interestRateMode,
                    uint16 referralCode, address onBehalfOf) external {
        ReserveData storage r = _reserves[asset];
        require(interestRateMode == 1 || interestRateMode == 2, "invalid interest rate mode");
        require((r.configuration.data >> 58) & 1 == 1, "borrowing not enabled");
        address debtToken = interestRateMode == 1 ? r.stableDebtTokenAddress
                                                  : r.variableDebtTokenAddress;
        TestERC20(debtToken).mint(onBehalfOf, amount);
        TestAToken(r.aTokenAddress).transferUnderlyingTo(msg.sender, amount);
        _setBorrowing(r.id, onBehalfOf, true);
        emit Borrow(asset, msg.sender, onBehalfOf, amount, uint8(interestRateMode), 0,
                    referralCode);
    }

    function repay(address asset, uint256 amount, uint256 interestRateMode, address onBehalfOf)
            external returns (uint256) {
        ReserveData storage r = _reserves[asset];
        address debtToken = interestRateMode == 1 ? r.stableDebtTokenAddress
                                                  : r.variableDebtTokenAddress;
        uint256 debt = TestERC20(debtToken).balanceOf(onBehalfOf);
        if (amount > debt) amount = debt;
        require(TestERC20(asset).transferFrom(msg.sender, r.aTokenAddress, amount), "pull");
        TestERC20(debtToken).burn(onBehalfOf, amount);
        if (_totalDebt(r, onBehalfOf) == 0) _setBorrowing(r.id, onBehalfOf, false);
        emit Repay(asset, onBehalfOf, msg.sender, amount, false);
        return amount;
    }

    function setUserUseReserveAsCollateral(address asset, bool useAsCollateral) external {
        ReserveData storage r = _reserves[asset];
        require(TestAToken(r.aTokenAddress).balanceOf(msg.sender) > 0, "no supply");
        _setCollateral(r.id, msg.sender, useAsCollateral);
        if (useAsCollateral) emit ReserveUsedAsCollateralEnabled(asset, msg.sender);
        else emit ReserveUsedAsCollateralDisabled(asset, msg.sender);
    }

    /// Repays `debtToCover` of the user's variable debt and seizes collateral worth that much
    /// plus the reserve's liquidation bonus at the feeds' prices:
    /// seized = debtToCover * pDebt * 10^dColl * bonus / (pColl * 10^dDebt * 10000).
    function liquidationCall(address collateralAsset, address debtAsset, address user,
                             uint256 debtToCover, bool receiveAToken) external {
        ReserveData storage c = _reserves[collateralAsset];
        ReserveData storage d = _reserves[debtAsset];
        TestERC20 debtToken = TestERC20(d.variableDebtTokenAddress);
        TestAToken aColl = TestAToken(c.aTokenAddress);
        require(debtToCover <= debtToken.balanceOf(user), "more than the debt");
        uint256 pDebt = uint256(IPriceFeed(priceFeed[debtAsset]).latestAnswer());
        uint256 pColl = uint256(IPriceFeed(priceFeed[collateralAsset]).latestAnswer());
        uint256 seized = debtToCover * pDebt * 10 ** _decimals(c) * _bonus(c)
            / (pColl * 10 ** _decimals(d) * 10000);
        require(seized <= aColl.balanceOf(user), "not enough collateral");
        require(TestERC20(debtAsset).transferFrom(msg.sender, d.aTokenAddress, debtToCover),
                "pull");
        debtToken.burn(user, debtToCover);
        if (_totalDebt(d, user) == 0) _setBorrowing(d.id, user, false);
        if (receiveAToken) {
            bool first = aColl.balanceOf(msg.sender) == 0;
            aColl.moveOnLiquidation(user, msg.sender, seized);
            if (first) {
                _setCollateral(c.id, msg.sender, true);
                emit ReserveUsedAsCollateralEnabled(collateralAsset, msg.sender);
            }
        } else {
            aColl.burn(user, seized);
            aColl.transferUnderlyingTo(msg.sender, seized);
        }
        if (aColl.balanceOf(user) == 0 && _isCollateral(c.id, user)) {
            _setCollateral(c.id, user, false);
            emit ReserveUsedAsCollateralDisabled(collateralAsset, user);
        }
        emit LiquidationCall(collateralAsset, debtAsset, user, debtToCover, seized, msg.sender,
                             receiveAToken);
    }

    // ----------------------------------------------------------------- bitmaps

    function _ltv(ReserveData storage r) private view returns (uint256) {
        return r.configuration.data & 0xFFFF;
    }

    function _bonus(ReserveData storage r) private view returns (uint256) {
        return (r.configuration.data >> 32) & 0xFFFF;
    }

    function _decimals(ReserveData storage r) private view returns (uint256) {
        return (r.configuration.data >> 48) & 0xFF;
    }

    function _totalDebt(ReserveData storage r, address user) private view returns (uint256) {
        return TestERC20(r.variableDebtTokenAddress).balanceOf(user)
            + TestERC20(r.stableDebtTokenAddress).balanceOf(user);
    }

    function _isCollateral(uint16 id, address user) private view returns (bool) {
        return (_users[user].data >> (uint256(id) * 2 + 1)) & 1 == 1;
    }

    function _setCollateral(uint16 id, address user, bool on) private {
        uint256 bit = uint256(1) << (uint256(id) * 2 + 1);
        _users[user].data = on ? _users[user].data | bit : _users[user].data & ~bit;
    }

    function _setBorrowing(uint16 id, address user, bool on) private {
        uint256 bit = uint256(1) << (uint256(id) * 2);
        _users[user].data = on ? _users[user].data | bit : _users[user].data & ~bit;
    }
}
