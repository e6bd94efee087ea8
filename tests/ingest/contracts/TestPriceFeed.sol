// SPDX-License-Identifier: Apache-2.0
// Test fixture: a Chainlink-style price feed (AggregatorV3Interface's read functions) whose
// owner sets the answer.
pragma solidity 0.8.28;

contract TestPriceFeed {
    uint8 public decimals;
    string public description;
    uint256 public constant version = 4;
    address public owner;

    uint80 private _roundId;
    int256 private _answer;
    uint256 private _updatedAt;

    event AnswerUpdated(int256 indexed current, uint256 indexed roundId, uint256 updatedAt);

    constructor(uint8 decimals_, string memory description_, int256 answer) {
        decimals = decimals_;
        description = description_;
        owner = msg.sender;
        _set(answer);
    }

    function setAnswer(int256 answer) external {
        require(msg.sender == owner, "only the owner");
        _set(answer);
    }

    function latestAnswer() external view returns (int256) {
        return _answer;
    }

    function latestRoundData() external view returns (uint80 roundId, int256 answer,
            uint256 startedAt, uint256 updatedAt, uint80 answeredInRound) {
        return (_roundId, _answer, _updatedAt, _updatedAt, _roundId);
    }

    function _set(int256 answer) internal {
        _roundId += 1;
        _answer = answer;
        _updatedAt = block.timestamp;
        emit AnswerUpdated(answer, _roundId, block.timestamp);
    }
}
