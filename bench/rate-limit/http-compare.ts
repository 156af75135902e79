import { type ChildProcess, fork } from 'node:child_process';
import * as path from 'node:path';
import { median, type BenchSettings, type ComparisonSummary } from '../lib';

/** The part of autocannon's result this harness reads (autocannon ships no types). */
interface AutocannonResult {
  requests: { total: number };
  latency: { average: number; p99: number };
  duration: number;
  errors: number;
  timeouts: number;
  non2xx: number;
}
type Autocannon = (opts: {
  url: string;
  connections: number;
  duration: number;
  pipelining: number;
}) => Promise<AutocannonResult>;
const autocannon = require('autocannon') as Autocannon;

/** One HTTP endpoint under test. */
export interface HttpSide {
  label: string;
  url: string;
}

/** The server process: its apps' ports and its CPU clock. */
export class ServerProcess {
  private constructor(
    private readonly child: ChildProcess,
    readonly ports: Record<string, number>,
  ) {}

  /** Fork `script` (TypeScript, compiled on load by bench/register.js) and wait for its 'ready' message. */
  static async start(script: string, env: Record<string, string>): Promise<ServerProcess> {
    const child = fork(script, [], {
      execArgv: ['--expose-gc', '--require', path.join(__dirname, '..', 'register.js')],
      env: { ...process.env, ...env },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const ports = await new Promise<Record<string, number>>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${script}: not ready within 30 s`)), 30_000);
      child.once('exit', (code) => reject(new Error(`${script} exited with ${code} before it was ready`)));
      child.on('message', (m: { type: string; ports?: Record<string, number> }) => {
        if (m.type === 'ready') {
          clearTimeout(timer);
          resolve(m.ports!);
        }
      });
    });
    return new ServerProcess(child, ports);
  }

  /** User + system CPU time of the server process so far, µs. */
  cpu(): Promise<number> {
    return this.ask<{ usage: NodeJS.CpuUsage }>('cpu').then((m) => m.usage.user + m.usage.system);
  }

  async gc(): Promise<void> {
    await this.ask('gc');
  }

  async stop(): Promise<void> {
    const exited = new Promise<void>((r) => this.child.once('exit', () => r()));
    this.child.send({ type: 'stop' });
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  }

  private ask<T>(type: string): Promise<T> {
    return new Promise((resolve) => {
      const onMessage = (m: { type: string }) => {
        if (m.type !== type) return;
        this.child.off('message', onMessage);
        resolve(m as T);
      };
      this.child.on('message', onMessage);
      this.child.send({ type });
    });
  }
}

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
  const cpu0 = await server.cpu();
  const r = await autocannon({ url: side.url, connections, duration: ms / 1_000, pipelining: 1 });
  const cpu1 = await server.cpu();
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
    cpuUsPerReq: (cpu1 - cpu0) / r.requests.total,
  };
}

/**
 * The HTTP twin of `compare()` (bench/lib/compare.ts): warm both sides up, then `rounds` rounds of ours and
 * the peer back to back (order flipped every round) with autocannon, 10 connections. Throughput is req/s;
 * "CPU µs/op" is the *server* process's CPU per request. Prints one JSON line per measurement and returns
 * a summary the shared table formatter prints.
 */
export async function compareHttp(options: {
  scenario: string;
  variant: string;
  description: string;
  ours: HttpSide;
  peer: HttpSide;
  goal?: number;
  settings: BenchSettings;
  server: ServerProcess;
  connections?: number;
}): Promise<ComparisonSummary & { latencyMs: { ours: number; peer: number } }> {
  const { scenario, variant, settings, server } = options;
  const connections = options.connections ?? 10;
  const sides = { ours: options.ours, peer: options.peer } as const;
  if (settings.warmupMs > 0) {
    for (const side of ['ours', 'peer'] as const)
      await measure(server, sides[side], settings.warmupMs, connections);
  }
  const runs: Record<'ours' | 'peer', HttpRun[]> = { ours: [], peer: [] };
  for (let round = 1; round <= settings.rounds; round++) {
    const order = round % 2 === 1 ? (['ours', 'peer'] as const) : (['peer', 'ours'] as const);
    for (const side of order) {
      await server.gc();
      const r = await measure(server, sides[side], settings.ms, connections);
      runs[side].push(r);
      process.stdout.write(
        JSON.stringify({
          type: 'measurement',
          scenario,
          variant,
          round,
          side,
          label: sides[side].label,
          concurrency: connections,
          ms: settings.ms,
          ops: r.requests,
          opsPerSec: Math.round(r.reqPerSec),
          cpuUsPerOp: Math.round(r.cpuUsPerReq * 100) / 100,
          meanLatencyMs: Math.round(r.meanLatencyMs * 100) / 100,
          p99LatencyMs: r.p99LatencyMs,
        }) + '\n',
      );
    }
  }
  const spread = (values: number[]) => ({
    median: median(values),
    min: Math.min(...values),
    max: Math.max(...values),
  });
  const stats = (side: 'ours' | 'peer') => ({
    label: sides[side].label,
    opsPerSec: spread(runs[side].map((r) => r.reqPerSec)),
    cpuUsPerOp: spread(runs[side].map((r) => r.cpuUsPerReq)),
    errors: 0,
  });
  const ratio = spread(runs.ours.map((o, i) => o.reqPerSec / runs.peer[i].reqPerSec));
  const summary = {
    type: 'summary' as const,
    scenario,
    variant,
    description: options.description,
    concurrency: connections,
    rounds: settings.rounds,
    ms: settings.ms,
    warmupMs: settings.warmupMs,
    ours: stats('ours'),
    peer: stats('peer'),
    ratio,
    cpuRatio: spread(runs.ours.map((o, i) => o.cpuUsPerReq / runs.peer[i].cpuUsPerReq)),
    goal: options.goal,
    meetsGoal: options.goal === undefined ? undefined : ratio.median >= options.goal,
    latencyMs: {
      ours: median(runs.ours.map((r) => r.meanLatencyMs)),
      peer: median(runs.peer.map((r) => r.meanLatencyMs)),
    },
  };
  process.stdout.write(JSON.stringify(summary) + '\n');
  return summary;
}
