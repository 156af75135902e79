// HTTP comparisons of the rate-limit benchmarks: autocannon against apps in a server process
// (bench/lib/http.ts), on the shared schedule (bench/lib/comparison.ts), garbage collected in the server
// before every measured run.
import { meetsGoal, median, printJsonLine, round2, runComparison } from '../lib';
import type { ComparisonHead, ComparisonSummary } from '../lib';
import { loadTest, type ServerOptions, type ServerProcess } from '../lib/http';

/** How the rate-limit servers run: with `--expose-gc` (for ServerProcess.gc()), their stdout shown. */
export const SERVER_OPTIONS: ServerOptions = { execArgv: ['--expose-gc'], stdout: 'inherit' };

/** One HTTP endpoint under test. */
export interface HttpSide {
  label: string;
  url: string;
}

/** The shared summary plus the median over rounds of each side's mean latency, ms. */
export type HttpSummary = ComparisonSummary & { latencyMs: { ours: number; peer: number } };

interface HttpRun {
  reqPerSec: number;
  requests: number;
  meanLatencyMs: number;
  p99LatencyMs: number;
  cpuUsPerReq: number;
}

async function measure(
  server: ServerProcess,
  side: HttpSide,
  ms: number,
  connections: number,
): Promise<HttpRun> {
  const { result: r, cpuUs } = await loadTest(server, {
    url: side.url,
    connections,
    duration: ms / 1_000,
    pipelining: 1,
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

/**
 * The HTTP twin of `compare()` (bench/lib/compare.ts): warm both sides up, then `rounds` rounds of ours and
 * the peer back to back (order flipped every round) with autocannon, 10 connections. Throughput is req/s;
 * "CPU µs/op" is the *server* process's CPU per request. Prints one JSON line per measurement and returns
 * a summary the shared table formatter prints.
 */
export async function compareHttp(
  options: ComparisonHead & { ours: HttpSide; peer: HttpSide; server: ServerProcess; connections?: number },
): Promise<HttpSummary> {
  const { ours, peer, server, connections = 10, ...head } = options;
  const { settings } = head;
  const sides = { ours, peer };
  const { runs, summary } = await runComparison<HttpRun>({
    ...head,
    concurrency: connections,
    sides,
    warmUp: (side) => measure(server, sides[side], settings.warmupMs, connections),
    measure: async (side) => {
      await server.gc();
      return measure(server, sides[side], settings.ms, connections);
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
  const http: HttpSummary = {
    ...summary,
    meetsGoal: meetsGoal(summary),
    latencyMs: {
      ours: median(runs.ours.map((r) => r.meanLatencyMs)),
      peer: median(runs.peer.map((r) => r.meanLatencyMs)),
    },
  };
  printJsonLine(http);
  return http;
}
