// session: an authenticated request that loads the session, Nest 12 + Express on both sides, 10 autocannon
// connections from 127.0.0.1 sending one logged-in cookie:
//   ours = @redwing/session (cookie middleware, AES-256-GCM at rest, @Authenticated() + @CurrentUser())
//   peer = express-session + connect-redis on node-redis (defaults; touches the store on every request)
// Goal (BENCH.md): ≥ 1.2× req/s. Both apps run in a child process (bench/session/session-server.ts);
// "CPU µs/op" is that server process's CPU per request.
//
//   npm run bench -- session --rounds 5 --ms 10000 --warmup 2000   (BENCH.md: 2 s warm-up, 10 s measured)
//   npm run bench -- session --rounds 3 --ms 2000                  (quicker)
import * as path from 'node:path';
import { benchMain, meetsGoal, median, printJsonLine, round2, runComparison } from './lib';
import { loadTest, withServer, type ServerProcess } from './lib/http';
import type { ComparisonSummary } from './lib';

const SCENARIO = 'session';
const CONNECTIONS = 10;

interface Side {
  label: string;
  url: string;
  cookie: string;
}

interface Run {
  reqPerSec: number;
  requests: number;
  meanLatencyMs: number;
  p99LatencyMs: number;
  cpuUsPerReq: number;
}

async function measure(server: ServerProcess, side: Side, ms: number): Promise<Run> {
  const { result: r, cpuUs } = await loadTest(server, {
    url: side.url,
    connections: CONNECTIONS,
    duration: ms / 1_000,
    pipelining: 1,
    headers: { cookie: side.cookie },
  });
  if (r.errors > 0 || r.timeouts > 0 || r.non2xx > 0 || r.requests.total === 0) {
    throw new Error(
      `${side.label}: ${r.requests.total} requests, ${r.errors} errors, ${r.timeouts} timeouts, ${r.non2xx} non-2xx`,
    );
  }
  return {
    reqPerSec: r.requests.total / r.duration,
    requests: r.requests.total,
    meanLatencyMs: r.latency.average,
    p99LatencyMs: r.latency.p99,
    cpuUsPerReq: cpuUs / r.requests.total,
  };
}

benchMain(SCENARIO, (settings) =>
  withServer(
    path.join(__dirname, 'session', 'session-server.ts'),
    async (server) => {
      const cookies = await server.ask<{ ours: string; peer: string }>('cookies');
      const sides = {
        ours: { label: '@redwing/session', url: server.url('ours', '/me'), cookie: cookies.ours },
        peer: {
          label: 'express-session + connect-redis',
          url: server.url('peer', '/me'),
          cookie: cookies.peer,
        },
      };
      for (const side of Object.values(sides)) {
        const res = await fetch(side.url, { headers: { cookie: side.cookie } });
        const body = (await res.json()) as { user?: string };
        if (res.status !== 200 || body.user !== 'alice')
          throw new Error(`${side.label}: GET /me answered ${res.status}`);
      }
      const { runs, summary } = await runComparison<Run>({
        scenario: SCENARIO,
        variant: 'express',
        description: 'GET /me loading the session from Redis (Express, 10 connections, one logged-in cookie)',
        goal: 1.2,
        settings,
        concurrency: CONNECTIONS,
        sides,
        warmUp: (side) => measure(server, sides[side], settings.warmupMs),
        measure: async (side) => {
          await server.gc();
          return measure(server, sides[side], settings.ms);
        },
        fields: (r) => ({
          ms: settings.ms,
          ops: r.requests,
          opsPerSec: Math.round(r.reqPerSec),
          cpuUsPerOp: round2(r.cpuUsPerReq),
          meanLatencyMs: round2(r.meanLatencyMs),
          p99LatencyMs: r.p99LatencyMs,
        }),
        opsPerSec: (r) => r.reqPerSec,
        cpuUsPerOp: (r) => r.cpuUsPerReq,
      });
      const result: ComparisonSummary & { latencyMs: { ours: number; peer: number } } = {
        ...summary,
        meetsGoal: meetsGoal(summary),
        latencyMs: {
          ours: median(runs.ours.map((r) => r.meanLatencyMs)),
          peer: median(runs.peer.map((r) => r.meanLatencyMs)),
        },
      };
      printJsonLine(result);
      process.stdout.write(
        `mean latency ours ${result.latencyMs.ours.toFixed(2)} ms, peer ${result.latencyMs.peer.toFixed(2)} ms\n`,
      );
      return [result];
    },
    { execArgv: ['--expose-gc'], stdout: 'inherit' },
  ),
);
