#!/usr/bin/env node
// Compiles TestToken.sol with solc-js into TestToken.json ({abi, bytecode}).
// The output is committed so tests need no compiler; rerun after editing the
// contract: `node tests/contracts/build.js` (or `npm run build:contracts`).
'use strict';
const fs = require('fs');
const path = require('path');
const solc = require('solc');

const dir = __dirname;
const source = fs.readFileSync(path.join(dir, 'TestToken.sol'), 'utf8');

const input = {
  language: 'Solidity',
  sources: { 'TestToken.sol': { content: source } },
  settings: {
    // Pinned so the bytecode runs on anvil's default hardfork and stays
    // reproducible across solc-js versions.
    evmVersion: 'cancun',
    optimizer: { enabled: true, runs: 200 },
    // No metadata hash: the committed JSON then does not change with paths.
    metadata: { bytecodeHash: 'none' },
    outputSelection: { '*': { TestToken: ['abi', 'evm.bytecode.object'] } },
  },
};

const output = JSON.parse(solc.compile(JSON.stringify(input)));
const errors = (output.errors || []).filter((e) => e.severity === 'error');
for (const e of output.errors || []) console.error(e.formattedMessage);
if (errors.length) process.exit(1);

const c = output.contracts['TestToken.sol'].TestToken;
const out = {
  contractName: 'TestToken',
  compiler: 'solc-js ' + solc.version(),
  evmVersion: input.settings.evmVersion,
  abi: c.abi,
  bytecode: '0x' + c.evm.bytecode.object,
};
fs.writeFileSync(path.join(dir, 'TestToken.json'), JSON.stringify(out, null, 2) + '\n');
console.log('wrote ' + path.join(dir, 'TestToken.json') + ' (' + (c.evm.bytecode.object.length / 2) + ' bytes)');
