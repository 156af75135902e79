// HTTP side of the cache benchmarks: a server child process (so autocannon never shares the apps' event
// loop; "CPU µs/op" is the server process's CPU per request), autocannon runs, and the same alternating
// rounds and summary format as bench/lib/compare.ts.
import { fork, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { median, type BenchSettings, type ComparisonSummary } from '../lib';

/** The part of autocannon's API used here (autocannon ships no types). */
interface AutocannonResult {
  requests: { total: number };
  latency: { average: number; p50: number; p99: number };
  errors: number;
  timeouts: number;
  non2xx: number;
}
type Autocannon = (options: {
  url: string;
  connections: number;
  duration: number;
  pipelining?: number;
  headers?: Record<string, string>;
  requests?: Array<{
    method: string;
    setupRequest?: (req: Record<string, unknown>) => Record<string, unknown>;
  }>;
}) => Promise<AutocannonResult>;
const autocannon = require('autocannon') as Autocannon;

/** Messages a server child answers (see route-server.ts / kanban-server.ts). */
type Reply = { id: number; value: unknown };

/** A bench server running in its own Node process, with request/response over IPC. */
export class ServerProcess {
  private seq = 0;
  private readonly pending = new Map<number, (v: unknown) => void>();

  private constructor(
    private readonly child: ChildProcess,
    readonly ports: Record<string, number>,
  ) {
    child.on('message', (m: Reply) => {
      const done = this.pending.get(m.id);
      if (done) {
        this.pending.delete(m.id);
        done(m.value);
      }
    });
  }

  /**
   * Forks `script` (TypeScript, through bench/register.js) and waits for its `{ ready: ports }`. Node flags
   * for the server only (e.g. `--cpu-prof`) go in `BENCH_SERVER_NODE_ARGS`.
   */
  static start(script: string, env: Record<string, string>): Promise<ServerProcess> {
    const extra = (process.env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean);
    const child = fork(script, [], {
      execArgv: ['--require', path.join(__dirname, '..', 'register.js'), ...extra],
      env: { ...process.env, ...env },
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    process.once('exit', () => child.kill('SIGKILL'));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${script}: not ready within 60 s`)), 60_000);
      child.once('exit', (code) => reject(new Error(`${script} exited with ${code} before it was ready`)));
      child.once('message', (m: { ready?: Record<string, number> }) => {
        clearTimeout(timer);
        if (m.ready) resolve(new ServerProcess(child, m.ready));
        else reject(new Error(`${script}: unexpected first message ${JSON.stringify(m)}`));
      });
    });
  }

  /** Asks the server something (`cpu`, `stats:<app>`, …). */
  ask<T>(what: string): Promise<T> {
    const id = ++this.seq;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`server did not answer "${what}" within 10 s`)),
        10_000,
      );
      this.pending.set(id, (v) => {
        clearTimeout(timer);
        resolve(v as T);
      });
      this.child.send({ id, what });
    });
  }

  /** Server CPU (user + system) so far, µs. */
  cpu(): Promise<number> {
    return this.ask<number>('cpu');
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise<void>((r) => this.child.once('exit', () => r()));
    this.child.send({ id: 0, what: 'exit' });
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  }
}

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
  const cpu0 = await server.cpu();
  const nextPath = side.path;
  const result = await autocannon({
    url: side.url,
    connections,
    duration: ms / 1_000,
    pipelining: 1,
    headers: side.headers,
    requests: nextPath
      ? [{ method: 'GET', setupRequest: (req) => ({ ...req, path: nextPath() }) }]
      : undefined,
  });
  const cpu = (await server.cpu()) - cpu0;
  const requests = result.requests.total;
  return {
    requests,
    reqPerSec: requests / (ms / 1_000),
    latencyMeanMs: result.latency.average,
    latencyP50Ms: result.latency.p50,
    latencyP99Ms: result.latency.p99,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
    cpuUsPerReq: requests > 0 ? cpu / requests : NaN,
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
export async function compareHttp(options: {
  scenario: string;
  variant: string;
  description: string;
  ours: HttpSide;
  peer: HttpSide;
  server: ServerProcess;
  settings: BenchSettings;
  goal?: number;
  connections?: number;
  /** Called after each measured run of a side (e.g. to read cache stats). */
  after?: (side: 'ours' | 'peer', run: HttpRun) => Promise<void> | void;
}): Promise<HttpSummary> {
  const { scenario, variant, settings, server } = options;
  const connections = options.connections ?? 10;
  const sides = { ours: options.ours, peer: options.peer };
  if (settings.warmupMs > 0) {
    for (const side of ['ours', 'peer'] as const)
      check(await hammer(server, sides[side], settings.warmupMs, connections), side, 'warm-up');
  }
  const runs: Record<'ours' | 'peer', HttpRun[]> = { ours: [], peer: [] };
  for (let round = 1; round <= settings.rounds; round++) {
    const order = round % 2 === 1 ? (['ours', 'peer'] as const) : (['peer', 'ours'] as const);
    for (const side of order) {
      const run = check(await hammer(server, sides[side], settings.ms, connections), side, `round ${round}`);
      runs[side].push(run);
      await options.after?.(side, run);
      line({
        type: 'measurement',
        scenario,
        variant,
        round,
        side,
        label: sides[side].label,
        concurrency: connections,
        ms: settings.ms,
        ops: run.requests,
        errors: run.errors,
        opsPerSec: Math.round(run.reqPerSec),
        cpuUsPerOp: round2(run.cpuUsPerReq),
        latencyMeanMs: round2(run.latencyMeanMs),
        latencyP50Ms: run.latencyP50Ms,
        latencyP99Ms: run.latencyP99Ms,
      });
    }
  }
  const spread = (v: number[]) => ({ median: median(v), min: Math.min(...v), max: Math.max(...v) });
  const stats = (side: 'ours' | 'peer') => ({
    label: sides[side].label,
    opsPerSec: spread(runs[side].map((r) => r.reqPerSec)),
    cpuUsPerOp: spread(runs[side].map((r) => r.cpuUsPerReq)),
    errors: 0,
  });
  const latency = (side: 'ours' | 'peer') => ({
    mean: round2(median(runs[side].map((r) => r.latencyMeanMs))),
    p50: median(runs[side].map((r) => r.latencyP50Ms)),
    p99: median(runs[side].map((r) => r.latencyP99Ms)),
  });
  const summary: HttpSummary = {
    type: 'summary',
    scenario,
    variant,
    description: options.description,
    concurrency: connections,
    rounds: settings.rounds,
    ms: settings.ms,
    warmupMs: settings.warmupMs,
    ours: stats('ours'),
    peer: stats('peer'),
    ratio: spread(runs.ours.map((o, i) => o.reqPerSec / runs.peer[i].reqPerSec)),
    cpuRatio: spread(runs.ours.map((o, i) => o.cpuUsPerReq / runs.peer[i].cpuUsPerReq)),
    goal: options.goal,
    latency: { ours: latency('ours'), peer: latency('peer') },
  };
  if (options.goal !== undefined) summary.meetsGoal = summary.ratio.median >= options.goal;
  line(summary as unknown as Record<string, unknown>);
  return summary;
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

export function line(obj: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function round2(n: number): number {
  return Math.round(n * 100) / 100;
}
