#!/usr/bin/env node
// `npm test`: run jest (unit, integration and e2e against real redis-server processes) and end with one
// plain summary line, `tests: N passed, N failed, N skipped`, that CI and humans can read at a glance.
// Extra arguments go to jest: `npm test -- libs/redis`.
'use strict';

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');
const results = path.join(ROOT, '.tmp', 'jest-results.json');
fs.mkdirSync(path.dirname(results), { recursive: true });
fs.rmSync(results, { force: true });

const jest = require.resolve('jest/bin/jest', { paths: [ROOT] });
const run = spawnSync(
  process.execPath,
  [jest, '--json', `--outputFile=${results}`, ...process.argv.slice(2)],
  {
    cwd: ROOT,
    stdio: 'inherit',
  },
);

let summary = 'tests: no results were written (jest crashed before reporting)';
if (fs.existsSync(results)) {
  const r = JSON.parse(fs.readFileSync(results, 'utf8'));
  const skipped = r.numPendingTests + r.numTodoTests;
  summary = `tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped`;
  if (r.numRuntimeErrorTestSuites > 0) summary += ` (${r.numRuntimeErrorTestSuites} suite(s) failed to run)`;
}
console.log(`\n${summary}`);
process.exit(run.status ?? 1);
