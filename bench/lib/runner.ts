import { performance } from 'node:perf_hooks';

export interface RunOptions {
  /** Measured duration in ms; the run stops issuing operations once it has passed. */
  ms: number;
  /** Operations kept in flight at once (one async worker each). */
  concurrency: number;
  /** One operation. A rejection counts as an error, not as an op. */
  op: () => Promise<unknown>;
  /** Hard cap on operations started, whatever the time. @default 50_000_000 */
  maxOps?: number;
  /** Stop early after this many errors. @default 1_000 */
  maxErrors?: number;
}

export interface RunResult {
  /** Operations that resolved. */
  ops: number;
  errors: number;
  firstError?: string;
  elapsedMs: number;
  opsPerSec: number;
  /** Process CPU time (user + system) per resolved op, in µs, from `process.cpuUsage()`. */
  cpuUsPerOp: number;
  /** Process CPU time over wall time (1.0 = one core saturated). */
  cpuLoad: number;
}

/**
 * Run `op` with `concurrency` operations in flight for `ms` milliseconds (bounded by `maxOps` and
 * `maxErrors` too) and report throughput and CPU per operation. Waits for every in-flight op to settle,
 * so the next measurement starts from an idle connection.
 */
export async function runFor(options: RunOptions): Promise<RunResult> {
  const { ms, concurrency, op, maxOps = 50_000_000, maxErrors = 1_000 } = options;
  if (!(ms > 0) || !(concurrency > 0)) throw new Error('runFor: ms and concurrency must be > 0');
  let started = 0;
  let ops = 0;
  let errors = 0;
  let firstError: string | undefined;
  let stop = false;

  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const deadline = t0 + ms;

  const worker = async (): Promise<void> => {
    while (!stop) {
      if (started >= maxOps || performance.now() >= deadline) {
        stop = true;
        break;
      }
      started++;
      try {
        await op();
        ops++;
      } catch (err) {
        errors++;
        firstError ??= err instanceof Error ? `${err.name}: ${err.message}` : String(err);
        if (errors >= maxErrors) stop = true;
      }
    }
  };

  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsedMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const cpuUs = cpu.user + cpu.system;
  return {
    ops,
    errors,
    firstError,
    elapsedMs,
    opsPerSec: (ops * 1000) / elapsedMs,
    cpuUsPerOp: ops > 0 ? cpuUs / ops : NaN,
    cpuLoad: cpuUs / 1000 / elapsedMs,
  };
}
