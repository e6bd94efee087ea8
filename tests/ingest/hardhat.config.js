// The local JSON-RPC node of the ingest tests: Hardhat Network, automining one block per
// transaction, no base fee. Hardhat compiles nothing here (its sources path is empty): the
// test contracts are compiled with solc-js by scripts/compile-contracts.js.
module.exports = {
  networks: { hardhat: { chainId: 31337, initialBaseFeePerGas: 0 } },
  paths: {
    sources: "../../build/hardhat-no-sources",
    cache: "../../build/hardhat-cache",
    artifacts: "../../build/hardhat-artifacts",
  },
};
