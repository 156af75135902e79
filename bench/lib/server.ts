// The server-process end of http.ts (ServerProcess): a child that runs Nest apps, answers the parent's
// questions over IPC and closes the apps on `exit`.
import type { INestApplication } from '@nestjs/common';
import { HOST } from './redis-server';

/** Listens on a free loopback port and returns it. */
export async function listen(app: INestApplication): Promise<number> {
  await app.listen(0, HOST);
  return (app.getHttpServer().address() as { port: number }).port;
}

/**
 * Starts answering the parent's questions: `cpu` (user + system µs so far), `gc` (collects garbage when
 * the process runs with `--expose-gc`), `exit` (closes `apps`, then exits), and whatever `answers` maps.
 * Exits too when the parent goes away.
 */
export function serve(
  apps: INestApplication[],
  answers: Record<string, () => unknown | Promise<unknown>> = {},
): void {
  process.on('message', (m: { id: number; what: string }) => {
    void (async () => {
      if (m.what === 'exit') {
        await Promise.allSettled(apps.map((a) => a.close()));
        process.exit(0);
      }
      const value = Object.hasOwn(builtIn, m.what) ? builtIn[m.what]() : await answers[m.what]?.();
      process.send!({ id: m.id, value });
    })();
  });
  process.on('disconnect', () => process.exit(0));
}

const builtIn: Record<string, () => unknown> = {
  cpu: () => {
    const u = process.cpuUsage();
    return u.user + u.system;
  },
  gc: () => (globalThis as { gc?: () => void }).gc?.(),
};

/**
 * Files bench/register.js compiled from TypeScript in this process (0 when it runs what `npm run bench`
 * compiled beforehand, or `undefined` without the register).
 */
export function compiledInMemory(): number | undefined {
  return (globalThis as Record<symbol, number | undefined>)[Symbol.for('redwing.bench.compiledInMemory')];
}

/**
 * Throws when this process compiled TypeScript in memory although `npm run bench` compiled the bench
 * (REDWING_BENCH_BUILD) and the libs load from their tsc build: a measured server must run plain JavaScript.
 */
export function assertCompiled(name: string): void {
  const n = compiledInMemory() ?? 0;
  if (process.env.REDWING_BENCH_BUILD && process.env.REDWING_BENCH_LIBS !== 'src' && n > 0) {
    throw new Error(
      `${name}: ${n} TypeScript file(s) were compiled in memory in the server process; ` +
        `it must run the JavaScript scripts/bench.js compiled (fork the .js, not the .ts)`,
    );
  }
}

/** Tells the parent the server is up, with the port of each app by name. */
export function ready(ports: Record<string, number>): void {
  assertCompiled(process.argv[1] ?? 'bench server');
  process.send!({ ready: ports });
}

/** Runs a server's `main`; on failure prints `<name>: <stack>` to stderr and exits 1. */
export function serverMain(name: string, main: () => Promise<void>): void {
  main().catch((err: unknown) => {
    process.stderr.write(`${name}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
}
