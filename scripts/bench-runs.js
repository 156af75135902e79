#!/usr/bin/env node
// `npm run bench:runs`: run benchmark scenarios in N separate bench *processes* and report, per variant,
// the median and spread (min–max) of the same-run ratio over those processes — the figure
// docs/performance.md quotes. Rounds inside one process cannot show per-process effects (GC heuristics,
// JIT decisions, where the heap lands), so every figure we publish is over process runs.
//
//   npm run bench:runs -- cache-l2 redis-client                 5 runs of each, default bench settings
//   npm run bench:runs -- --runs 7 cache-route -- --rounds 3 --ms 2000 --warmup 500
//   npm run bench:runs -- --runs 5 --interleave lock queue      one run of each scenario per pass (default)
//
// Arguments before `--` name scenarios (and `--runs N`); everything after `--` goes to scripts/bench.js for
// every run. The libs are built once, then each run uses `--no-build`. Output: progress lines, then one table
// per scenario; the same table in Markdown is written to bench/results/runs-<time>.md, with the command
// line, the machine's load average before and after each run, and the raw per-run medians.
'use strict';

const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');

const ROOT = path.resolve(__dirname, '..');
const RESULTS_DIR = path.join(ROOT, 'bench', 'results');
const say = (message) => console.log(`[bench:runs] ${message}`);

function parseArgs(argv) {
  const split = argv.indexOf('--');
  const own = split === -1 ? argv : argv.slice(0, split);
  const benchArgs = split === -1 ? [] : argv.slice(split + 1);
  let runs = 5;
  const names = [];
  for (let i = 0; i < own.length; i++) {
    if (own[i] === '--runs') runs = Number(own[++i]);
    else if (own[i].startsWith('--runs=')) runs = Number(own[i].slice('--runs='.length));
    else if (own[i].startsWith('-'))
      throw new Error(`unknown option ${own[i]} (bench options go after "--")`);
    else names.push(own[i]);
  }
  if (!Number.isInteger(runs) || runs < 1 || runs > 50) throw new Error(`--runs must be 1..50, got ${runs}`);
  if (names.length === 0) throw new Error('name at least one scenario (npm run bench -- --list shows them)');
  return { runs, names, benchArgs };
}

const load = () => os.loadavg()[0].toFixed(2);

/** One `scripts/bench.js <name> --no-build …` process; resolves to its summary lines. */
function runOnce(name, benchArgs) {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      [path.join(__dirname, 'bench.js'), name, '--no-build', ...benchArgs],
      {
        cwd: ROOT,
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    const summaries = [];
    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      if (!line.startsWith('{')) return;
      try {
        const row = JSON.parse(line);
        if (row.type === 'summary') summaries.push(row);
      } catch {
        // not one of ours
      }
    });
    child.on('close', (code) => resolve({ ok: code === 0, summaries }));
  });
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const fmt = (x, digits = 2) => (x === undefined || Number.isNaN(x) ? '—' : x.toFixed(digits));
const spread = (xs, digits = 2, unit = '') =>
  xs.length === 0
    ? '—'
    : `${fmt(median(xs), digits)}${unit} (${fmt(Math.min(...xs), digits)}–${fmt(Math.max(...xs), digits)})`;

function table(name, perRun) {
  const variants = new Map();
  for (const summaries of perRun) {
    for (const s of summaries) {
      const v = variants.get(s.variant) ?? {
        goal: s.goal,
        ratio: [],
        cpu: [],
        ours: [],
        peer: [],
        met: 0,
        n: 0,
      };
      if (typeof s.ratio?.median === 'number') v.ratio.push(s.ratio.median);
      if (typeof s.cpuRatio?.median === 'number') v.cpu.push(s.cpuRatio.median);
      if (typeof s.ours?.opsPerSec?.median === 'number') v.ours.push(s.ours.opsPerSec.median);
      if (typeof s.peer?.opsPerSec?.median === 'number') v.peer.push(s.peer.opsPerSec.median);
      if (s.meetsGoal) v.met++;
      v.n++;
      variants.set(s.variant, v);
    }
  }
  const lines = [
    `| ${name} variant | runs | ratio ours/peer, median (min–max) | CPU ratio, median (min–max) | ours ops/s | peer ops/s | goal | runs meeting it |`,
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const [variant, v] of variants) {
    lines.push(
      `| \`${variant}\` | ${v.n} | ${spread(v.ratio, 2, '×')} | ${spread(v.cpu, 2, '×')} | ${fmt(median(v.ours), 0)} | ` +
        `${v.peer.length ? fmt(median(v.peer), 0) : '—'} | ${v.goal === undefined ? '—' : `${v.goal}×`} | ${v.met}/${v.n} |`,
    );
  }
  return lines.join('\n');
}

async function main() {
  const { runs, names, benchArgs } = parseArgs(process.argv.slice(2));
  const flags = benchArgs.filter((a) => a !== '--no-build');
  if (!flags.includes('--src')) {
    say('building the libs once (scripts/build-libs.js)');
    const build = spawnSync(process.execPath, [path.join(__dirname, 'build-libs.js')], {
      cwd: ROOT,
      stdio: 'inherit',
    });
    if (build.status !== 0) throw new Error('build:libs failed');
  }
  const results = new Map(names.map((n) => [n, []]));
  const log = [];
  let failures = 0;
  // Interleaved: one run of every scenario per pass, so slow drift on the machine spreads over all of them.
  for (let pass = 1; pass <= runs; pass++) {
    for (const name of names) {
      const before = load();
      say(`${name}: run ${pass}/${runs} (load ${before})`);
      const { ok, summaries } = await runOnce(name, flags);
      const after = load();
      log.push(
        `- ${name} run ${pass}: ${ok ? 'ok' : 'FAILED (no figures taken from it)'}, load ${before} → ${after}`,
      );
      if (ok) results.get(name).push(summaries);
      else failures++;
    }
  }
  const command = `npm run bench:runs -- --runs ${runs} ${names.join(' ')}${flags.length ? ` -- ${flags.join(' ')}` : ''}`;
  const tables = names.map((n) => table(n, results.get(n)));
  const md = [
    `Command: \`${command}\``,
    `Date: ${new Date().toISOString()}; Node ${process.version}; ${os.cpus().length} CPUs`,
    '',
    ...tables.flatMap((t) => [t, '']),
    'Runs (1-minute load average before → after):',
    ...log,
    '',
  ].join('\n');
  fs.mkdirSync(RESULTS_DIR, { recursive: true });
  const file = path.join(RESULTS_DIR, `runs-${new Date().toISOString().replace(/[:.]/g, '-')}.md`);
  fs.writeFileSync(file, md);
  console.log(`\n${md}`);
  say(`written to ${path.relative(ROOT, file)}`);
  if (failures) throw new Error(`${failures} run(s) failed; their figures are left out (see the list above)`);
}

main().catch((err) => {
  console.error(`[bench:runs] ${err.message}`);
  process.exit(1);
});
