// Diagnostic (not a scenario; BENCH.md has no goal for it): where the server CPU of a rate-limited request
// goes. The same trivial Fastify route behind guards of increasing cost, 10 autocannon connections, server CPU
// per request (median of 3 rounds of 3 s, order rotating):
//   npm run build:libs && node --expose-gc --require ./bench/register.js bench/rate-limit/guard-ladder.ts
import * as path from 'node:path';
import { median } from '../lib';
import { autocannon, loadTest, withServer } from '../lib/http';
import { SERVER_OPTIONS } from './http-compare';

withServer(
  path.join(__dirname, 'guard-ladder-server.ts'),
  async (server) => {
    const rungs = Object.keys(server.ports);
    const url = (rung: string) => server.url(rung, '/r');
    for (const rung of rungs) await autocannon({ url: url(rung), connections: 10, duration: 1 });
    const cpu: Record<string, number[]> = {};
    for (let round = 0; round < 3; round++) {
      for (const rung of [...rungs.slice(round), ...rungs.slice(0, round)]) {
        await server.gc();
        const { result, cpuUs } = await loadTest(server, { url: url(rung), connections: 10, duration: 3 });
        (cpu[rung] ??= []).push(cpuUs / result.requests.total);
      }
    }
    process.stdout.write('| guard | server CPU µs/request (median of 3) |\n|---|---|\n');
    for (const rung of rungs) process.stdout.write(`| ${rung} | ${median(cpu[rung]).toFixed(1)} |\n`);
  },
  SERVER_OPTIONS,
).catch((err: unknown) => {
  process.stderr.write(`guard-ladder: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
