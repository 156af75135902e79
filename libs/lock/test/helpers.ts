import { fork, type ChildProcess, type Serializable } from 'node:child_process';
import * as path from 'node:path';
import type { ModuleMetadata } from '@nestjs/common';
import { Test, type TestingModule } from '@nestjs/testing';
import { MetricsService } from '@redwing/metrics';
import { LockModule, LockService, type LockModuleOptions } from '@redwing/lock';
import { RedisClientManager, RedisClientModule, type RedisClientModuleOptions } from '@redwing/redis';
import { CapturingLogger, fastRedisOptions, waitFor } from '../../../test/harness';

export { CapturingLogger, fastRedisOptions, sleep, waitFor } from '../../../test/harness';

import { TestMetricsModule } from '../../../test/nest-testing';

export { TestMetricsModule };

export interface Booted {
  module: TestingModule;
  locks: LockService;
  manager: RedisClientManager;
  metrics: MetricsService;
  logger: CapturingLogger;
}

/**
 * A Nest context with Redis (fast test timeouts), metrics and the lock module, every Redis client ready.
 * `extra` adds providers (e.g. a service with `@WithLock`).
 */
export async function bootLocks(
  redis: RedisClientModuleOptions,
  lock: LockModuleOptions = {},
  extra: Pick<ModuleMetadata, 'providers'> = {},
): Promise<Booted> {
  const logger = new CapturingLogger();
  const module = await Test.createTestingModule({
    imports: [
      RedisClientModule.forRoot({ ...fastRedisOptions({ commandTimeout: 500 }), ...redis }),
      TestMetricsModule,
      LockModule.forRoot({ useEnv: false, ...lock }),
    ],
    providers: extra.providers ?? [],
  })
    .setLogger(logger)
    .compile();
  await module.init();
  const manager = module.get(RedisClientManager);
  for (const client of manager.all()) {
    if (!(await client.waitUntilReady(10_000)))
      throw new Error(`Redis client ${client.name} not ready within 10 s`);
  }
  return { module, locks: module.get(LockService), manager, metrics: module.get(MetricsService), logger };
}

/** The value of a counter/histogram-count sample in the Prometheus text, or 0. */
export async function metricValue(metrics: MetricsService, line: string): Promise<number> {
  const text = await metrics.registry.metrics();
  const found = text.split('\n').find((l) => l.startsWith(line + ' '));
  return found ? Number(found.slice(line.length + 1)) : 0;
}

const ROOT = path.resolve(__dirname, '../../..');

/** A lock user in a child process (fixtures/lock-process.ts), with its IPC messages queued for the test. */
export class LockProcess {
  readonly messages: Array<Record<string, unknown>> = [];
  private constructor(readonly child: ChildProcess) {
    child.on('message', (m: unknown) => {
      if (typeof m === 'object' && m !== null) this.messages.push(m as Record<string, unknown>);
    });
  }

  /** Forks the process on the lib sources and waits (≤ 30 s) for it to say `ready`. */
  static async start(redisUrl: string): Promise<LockProcess> {
    const child = fork(path.join(__dirname, 'fixtures/lock-process.ts'), [], {
      execArgv: ['--require', path.join(ROOT, 'bench/register.js')],
      env: { ...process.env, LOCK_TEST_REDIS_URL: redisUrl, REDWING_BENCH_LIBS: 'src' },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`lock process ${child.pid} not ready within 30 s`)),
        30_000,
      );
      child.on('message', (m) => {
        if (m === 'ready') {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code) => reject(new Error(`lock process exited with ${code}`)));
    });
    return new LockProcess(child);
  }

  get pid(): number {
    return this.child.pid!;
  }

  send(message: unknown): void {
    this.child.send(message as Serializable);
  }

  /** The first queued message with `key` (removed from the queue), waiting up to `timeout` ms. */
  async next(key: string, timeout = 10_000): Promise<Record<string, unknown>> {
    return waitFor(
      `message "${key}" from ${this.pid}`,
      timeout,
      () => {
        const i = this.messages.findIndex((m) => key in m);
        return i < 0 ? undefined : this.messages.splice(i, 1)[0];
      },
      { intervalMs: 5 },
    );
  }

  /** Asks it to exit; SIGKILLs it after 5 s (or at once when it is stopped). */
  async stop(): Promise<void> {
    const child = this.child;
    if (child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      child.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      try {
        child.kill('SIGCONT');
        child.send('exit');
      } catch {
        child.kill('SIGKILL');
      }
    });
  }
}
