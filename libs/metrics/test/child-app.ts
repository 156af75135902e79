/**
 * Runs a TypeScript entry point in a separate, plain Node process (compiled on load by
 * `bench/register.js` with `@redwing/*` mapped to the lib sources), the way the gateway runs in
 * production. The OpenTelemetry OTLP/HTTP exporter loads `http` with a dynamic `import()`, which jest's
 * module sandbox refuses without `--experimental-vm-modules`, so the export path is tested here.
 *
 * The entry prints a line matching `ready` (default `LISTENING <url>`) once it serves, and exits on SIGTERM.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join, resolve } from 'node:path';

const ROOT = resolve(__dirname, '../../..');

/** How a child ended. */
export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ChildApp {
  url: string;
  pid: number;
  output(): string;
  /**
   * SIGTERM, then SIGKILL after `grace` ms; resolves with how it ended. A Nest app with shutdown hooks
   * re-raises SIGTERM after closing, so a clean stop is `{ code: null, signal: 'SIGTERM' }` for it.
   */
  stop(grace?: number): Promise<Exit>;
}

const running = new Set<ChildProcess>();
// A crashed test must not leave a gateway behind.
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

export async function startChildApp(
  entry: string,
  env: Record<string, string | undefined>,
  options: { timeout?: number; ready?: RegExp } = {},
): Promise<ChildApp> {
  const timeout = options.timeout ?? 20_000;
  const ready = options.ready ?? /LISTENING (\S+)/;
  const merged: NodeJS.ProcessEnv = { ...process.env, REDWING_BENCH_LIBS: 'src' };
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete merged[k];
    else merged[k] = v;
  }
  const child = spawn(process.execPath, ['--require', join(ROOT, 'bench/register.js'), entry], {
    cwd: ROOT,
    env: merged,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  let output = '';
  const exited = new Promise<Exit>((done) =>
    child.once('exit', (code, signal) => {
      running.delete(child);
      done({ code, signal });
    }),
  );
  child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
  const url = await new Promise<string>((done, fail) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      fail(new Error(`${entry} did not print ${ready} within ${timeout} ms; output:\n${output}`));
    }, timeout);
    const onData = () => {
      const m = ready.exec(output);
      if (m) {
        clearTimeout(timer);
        child.stdout!.off('data', onData);
        done(m[1]);
      }
    };
    child.stdout!.on('data', onData);
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      fail(new Error(`${entry} exited (${code ?? signal}) before listening; output:\n${output}`));
    });
  });
  return {
    url,
    pid: child.pid!,
    output: () => output,
    stop: async (grace = 5_000) => {
      if (child.exitCode !== null || child.signalCode !== null) {
        return { code: child.exitCode, signal: child.signalCode };
      }
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), grace);
      const exit = await exited;
      clearTimeout(timer);
      return exit;
    },
  };
}
