#!/usr/bin/env node
// Compiles every tests/contracts/*.sol with solc-js and writes one <ContractName>.json
// ({contractName, compiler, evmVersion, abi, bytecode}) per deployable contract:
// TestToken.json and the odd payout-test tokens FalseToken.json, FeeToken.json,
// NoReturnToken.json, BlacklistToken.json, and TransferProbe.json (the fee-on-transfer
// probe of cron/token_probe.py). Abstract contracts (TokenBase) and interfaces have
// no bytecode and get no JSON. Contracts in RUNTIME_FOR also get `deployedBytecode`
// (the runtime code: TransferProbe's is used as an eth_call state override, never
// deployed); the others' JSON keeps exactly the fields listed above.
//
// The output is committed so tests need no compiler; rerun after editing a contract:
//   node tests/contracts/build.js        (or `npm run build:contracts`)
// Compiler: the solc-js npm package pinned in package.json (0.8.28, installed by
// `npm ci` / `make install-test` into node_modules). Settings: evmVersion cancun,
// optimizer enabled with 200 runs, metadata.bytecodeHash none; all sources are
// compiled together in one standard-JSON input. With these settings the output is
// reproducible byte for byte (TestToken.json must not change when others are added).
'use strict';
const fs = require('fs');
const path = require('path');
const solc = require('solc');

const dir = __dirname;
const RUNTIME_FOR = new Set(['TransferProbe']);
const files = fs.readdirSync(dir).filter((f) => f.endsWith('.sol')).sort();
const sources = {};
for (const f of files) sources[f] = { content: fs.readFileSync(path.join(dir, f), 'utf8') };

const input = {
  language: 'Solidity',
  sources,
  settings: {
    // Pinned so the bytecode runs on anvil's default hardfork and stays
    // reproducible across solc-js versions.
    evmVersion: 'cancun',
    optimizer: { enabled: true, runs: 200 },
    // No metadata hash: the committed JSON then does not change with paths.
    metadata: { bytecodeHash: 'none' },
    outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] } },
  },
};

// Imports ("./TokenBase.sol") resolve to files in this directory.
function findImports(p) {
  const file = path.join(dir, path.basename(p));
  if (fs.existsSync(file)) return { contents: fs.readFileSync(file, 'utf8') };
  return { error: 'not found: ' + p };
}

const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));
const errors = (output.errors || []).filter((e) => e.severity === 'error');
for (const e of output.errors || []) console.error(e.formattedMessage);
if (errors.length) process.exit(1);

const written = new Set();
for (const file of Object.keys(output.contracts).sort()) {
  for (const name of Object.keys(output.contracts[file]).sort()) {
    const c = output.contracts[file][name];
    if (!c.evm.bytecode.object) continue; // abstract contract or interface
    if (written.has(name)) {
      console.error('duplicate contract name ' + name + ' (in ' + file + ')');
      process.exit(1);
    }
    written.add(name);
    const out = {
      contractName: name,
      compiler: 'solc-js ' + solc.version(),
      evmVersion: input.settings.evmVersion,
      abi: c.abi,
      bytecode: '0x' + c.evm.bytecode.object,
    };
    if (RUNTIME_FOR.has(name)) out.deployedBytecode = '0x' + c.evm.deployedBytecode.object;
    const dest = path.join(dir, name + '.json');
    fs.writeFileSync(dest, JSON.stringify(out, null, 2) + '\n');
    console.log('wrote ' + dest + ' (' + (c.evm.bytecode.object.length / 2) + ' bytes)');
  }
}
