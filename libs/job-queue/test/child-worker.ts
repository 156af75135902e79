// Spawns fixtures/worker-app.ts in its own process and records what it reports.
import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

const ROOT = join(__dirname, '../../..');

export interface ChildEvent {
  type: 'ready' | 'start' | 'done' | 'sigterm';
  id?: string;
}

/** One worker process: its events in order, and its exit. */
export class ChildWorker {
  readonly events: ChildEvent[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly child: ChildProcess;

  private constructor(env: Record<string, string>) {
    this.child = fork(join(__dirname, 'fixtures/worker-app.ts'), [], {
      cwd: ROOT,
      execArgv: ['--require', join(ROOT, 'bench/register.js')],
      env: { ...process.env, REDWING_BENCH_LIBS: 'src', ...env },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.child.on('message', (m: ChildEvent) => this.events.push(m));
    this.exited = new Promise((resolve) =>
      this.child.once('exit', (code, signal) => resolve({ code, signal })),
    );
  }

  /** Start a worker process and wait (≤ 30 s) until its app is up. */
  static async start(env: Record<string, string>): Promise<ChildWorker> {
    const w = new ChildWorker(env);
    const deadline = Date.now() + 30_000;
    while (!w.events.some((e) => e.type === 'ready')) {
      if (Date.now() > deadline || w.child.exitCode !== null) {
        w.kill('SIGKILL');
        throw new Error('worker process did not start within 30 s');
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    return w;
  }

  get pid(): number {
    return this.child.pid!;
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  ids(type: ChildEvent['type']): string[] {
    return this.events.filter((e) => e.type === type).map((e) => e.id!);
  }

  kill(signal: NodeJS.Signals): void {
    if (this.alive) this.child.kill(signal);
  }
}
