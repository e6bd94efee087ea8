#!/usr/bin/env node
// Compile Solidity sources with solc-js (the `solc` npm package pinned in package.json; no
// compiler download) into one JSON file: {"compiler": version, "contracts": {Name: {abi,
// bytecode}}}.
//
// Usage: node scripts/compile-contracts.js SOURCE_DIR OUT_FILE
"use strict";
const fs = require("fs");
const path = require("path");
const solc = require("solc");

const [srcDir, outFile] = process.argv.slice(2);
if (!srcDir || !outFile) {
  console.error("usage: compile-contracts.js SOURCE_DIR OUT_FILE");
  process.exit(2);
}
const sources = {};
for (const name of fs.readdirSync(srcDir).filter((f) => f.endsWith(".sol")).sort()) {
  sources[name] = { content: fs.readFileSync(path.join(srcDir, name), "utf8") };
}
if (Object.keys(sources).length === 0) {
  console.error(`compile-contracts: no .sol files in ${srcDir}`);
  process.exit(1);
}
const input = {
  language: "Solidity",
  sources,
  settings: {
    optimizer: { enabled: true, runs: 200 },
    evmVersion: "paris",
    outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } },
  },
};
const findImports = (p) => {
  const f = path.join(srcDir, path.basename(p));
  return fs.existsSync(f) ? { contents: fs.readFileSync(f, "utf8") } : { error: `not found: ${p}` };
};
const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));
const errors = (output.errors || []).filter((e) => e.severity === "error");
for (const e of output.errors || []) console.error(e.formattedMessage);
if (errors.length) process.exit(1);
const contracts = {};
for (const file of Object.keys(output.contracts).sort()) {
  for (const [name, c] of Object.entries(output.contracts[file])) {
    contracts[name] = { abi: c.abi, bytecode: "0x" + c.evm.bytecode.object };
  }
}
fs.mkdirSync(path.dirname(path.resolve(outFile)), { recursive: true });
fs.writeFileSync(outFile, JSON.stringify({ compiler: solc.version(), contracts }, null, 1));
console.log(`compiled ${Object.keys(contracts).length} contracts with solc ${solc.version()}`);
