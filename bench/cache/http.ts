// HTTP comparisons of the cache benchmarks: autocannon against apps in a server process (bench/lib/http.ts),
// on the shared schedule (bench/lib/comparison.ts), with p50/p99 latencies and per-request paths and headers.
import { meetsGoal, median, printJsonLine, round2, runComparison } from '../lib';
import type { ComparisonHead, ComparisonSummary, Side } from '../lib';
import { loadTest, type ServerProcess } from '../lib/http';

/** One side of an HTTP comparison. */
export interface HttpSide {
  label: string;
  url: string;
  headers?: Record<string, string>;
  /** Chooses each request's path (e.g. a Zipf-distributed board id). */
  path?: () => string;
}

/** Result of one autocannon run. */
export interface HttpRun {
  requests: number;
  reqPerSec: number;
  latencyMeanMs: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  errors: number;
  non2xx: number;
  cpuUsPerReq: number;
}

/** Runs autocannon against one side for `ms`, measuring the server's CPU over the same window. */
export async function hammer(
  server: ServerProcess,
  side: HttpSide,
  ms: number,
  connections = 10,
): Promise<HttpRun> {
  const nextPath = side.path;
  const { result, cpuUs } = await loadTest(server, {
    url: side.url,
    connections,
    duration: ms / 1_000,
    pipelining: 1,
    headers: side.headers,
    requests: nextPath
      ? [{ method: 'GET', setupRequest: (req) => ({ ...req, path: nextPath() }) }]
      : undefined,
  });
  const requests = result.requests.total;
  return {
    requests,
    reqPerSec: requests / (ms / 1_000),
    latencyMeanMs: result.latency.average,
    latencyP50Ms: result.latency.p50,
    latencyP99Ms: result.latency.p99,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
    cpuUsPerReq: requests > 0 ? cpuUs / requests : NaN,
  };
}

/** The summary of an HTTP comparison: the shared format plus latencies (medians over rounds). */
export interface HttpSummary extends ComparisonSummary {
  latency: {
    ours: { mean: number; p50: number; p99: number };
    peer: { mean: number; p50: number; p99: number };
  };
}

/**
 * Warms both sides up, then runs `rounds` rounds of `ms` per side, alternating which goes first, and prints
 * one JSON line per measurement and the summary (like bench/lib/compare.ts). Any error or non-2xx response
 * fails the scenario instead of printing a ratio.
 */
export async function compareHttp(
  options: ComparisonHead & {
    ours: HttpSide;
    peer: HttpSide;
    server: ServerProcess;
    connections?: number;
    /** Called after each measured run of a side (e.g. to read cache stats). */
    after?: (side: Side, run: HttpRun) => Promise<void> | void;
  },
): Promise<HttpSummary> {
  const { ours, peer, server, connections = 10, after, ...head } = options;
  const { settings, goal } = head;
  const sides = { ours, peer };
  const { runs, summary } = await runComparison<HttpRun>({
    ...head,
    concurrency: connections,
    sides,
    warmUp: async (side) =>
      check(await hammer(server, sides[side], settings.warmupMs, connections), side, 'warm-up'),
    measure: async (side, round) => {
      const run = check(await hammer(server, sides[side], settings.ms, connections), side, `round ${round}`);
      await after?.(side, run);
      return run;
    },
    fields: (run) => ({
      ms: settings.ms,
      ops: run.requests,
      errors: run.errors,
      opsPerSec: Math.round(run.reqPerSec),
      cpuUsPerOp: round2(run.cpuUsPerReq),
      latencyMeanMs: round2(run.latencyMeanMs),
      latencyP50Ms: run.latencyP50Ms,
      latencyP99Ms: run.latencyP99Ms,
    }),
    opsPerSec: (r) => r.reqPerSec,
    cpuUsPerOp: (r) => r.cpuUsPerReq,
  });
  const latency = (side: Side) => ({
    mean: round2(median(runs[side].map((r) => r.latencyMeanMs))),
    p50: median(runs[side].map((r) => r.latencyP50Ms)),
    p99: median(runs[side].map((r) => r.latencyP99Ms)),
  });
  const http: HttpSummary = { ...summary, latency: { ours: latency('ours'), peer: latency('peer') } };
  if (goal !== undefined) http.meetsGoal = meetsGoal(http);
  printJsonLine(http);
  return http;
}

function check(run: HttpRun, side: string, when: string): HttpRun {
  if (run.errors > 0 || run.non2xx > 0 || run.requests === 0) {
    throw new Error(
      `${side} had ${run.errors} error(s), ${run.non2xx} non-2xx of ${run.requests} during ${when}`,
    );
  }
  return run;
}

/** Prints the latency table that goes with the ratio table. */
export function latencyTable(summaries: HttpSummary[]): string {
  const rows = summaries.flatMap((s) => [
    `| ${s.variant} | ours: ${s.ours.label} | ${s.latency.ours.mean} | ${s.latency.ours.p50} | ${s.latency.ours.p99} |`,
    `| | peer: ${s.peer.label} | ${s.latency.peer.mean} | ${s.latency.peer.p50} | ${s.latency.peer.p99} |`,
  ]);
  return ['| variant | side | latency mean ms | p50 ms | p99 ms |', '|---|---|---|---|---|', ...rows].join(
    '\n',
  );
}
