// SPDX-License-Identifier: Apache-2.0
// Test fixture: a plain ERC-20 token (symbol, decimals, totalSupply, balances, transfers) whose
// minter can mint and burn. The lending-pool fixture also uses it for its debt tokens.
pragma solidity 0.8.28;

contract TestERC20 {
    string public name;
    string public symbol;
    uint8 public decimals;
    uint256 public totalSupply;
    address public minter;
    mapping(address => uint256) public balanceOf;
    mapping(address => mapping(address => uint256)) public allowance;

    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);

    constructor(string memory name_, string memory symbol_, uint8 decimals_) {
        name = name_;
        symbol = symbol_;
        decimals = decimals_;
        minter = msg.sender;
    }

    modifier onlyMinter() {
        require(msg.sender == minter, "only the minter");
        _;
    }

    function setMinter(address minter_) external onlyMinter {
        minter = minter_;
    }

    function transfer(address to, uint256 value) external returns (bool) {
        _move(msg.sender, to, value);
        return true;
    }

    function approve(address spender, uint256 value) external returns (bool) {
        allowance[msg.sender][spender] = value;
        emit Approval(msg.sender, spender, value);
        return true;
    }

    function transferFrom(address from, address to, uint256 value) external returns (bool) {
        uint256 allowed = allowance[from][msg.sender];
        if (allowed != type(uint256).max) {
            require(allowed >= value, "allowance exceeded");
            allowance[from][msg.sender] = allowed - value;
        }
        _move(from, to, value);
        return true;
    }

    function mint(address to, uint256 value) external onlyMinter {
        totalSupply += value;
        balanceOf[to] += value;
        emit Transfer(address(0), to, value);
    }

    function burn(address from, uint256 value) external onlyMinter {
        require(balanceOf[from] >= value, "burn exceeds balance");
        balanceOf[from] -= value;
        totalSupply -= value;
        emit Transfer(from, address(0), value);
    }

    function _move(address from, address to, uint256 value) internal {
        require(balanceOf[from] >= value, "transfer exceeds balance");
        balanceOf[from] -= value;
        balanceOf[to] += value;
        emit Transfer(from, to, value);
    }
}

/// The receipt token of a reserve: holds the reserve's liquidity, as an Aave v3 aToken does.
/// Balances are not scaled (the liquidity index stays at 1 ray in this fixture).
contract TestAToken is TestERC20 {
    address public immutable UNDERLYING_ASSET_ADDRESS;
    address public immutable POOL;

    constructor(string memory name_, string memory symbol_, uint8 decimals_, address underlying,
                address pool) TestERC20(name_, symbol_, decimals_) {
        UNDERLYING_ASSET_ADDRESS = underlying;
        POOL = pool;
        minter = pool;
    }

    function transferUnderlyingTo(address to, uint256 amount) external onlyMinter {
        require(TestERC20(UNDERLYING_ASSET_ADDRESS).transfer(to, amount), "transfer failed");
    }

    function moveOnLiquidation(address from, address to, uint256 value) external onlyMinter {
        _move(from, to, value);
    }
}
