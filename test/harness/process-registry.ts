import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import type { Socket } from 'node:net';
import * as vm from 'node:vm';

/**
 * Book-keeping shared by every copy of the harness loaded in one OS process.
 *
 * Jest gives each test file its own module registry, so this module is evaluated once per
 * file; the state that must be per *process* (PIDs to reap on exit, ports already handed out,
 * the TLS material) lives on the host `process` object under a global symbol instead.
 */
interface HostState {
  /** PIDs of redis-server children that are still running. */
  readonly livePids: Set<number>;
  /** Temp dirs to delete when the process exits. */
  readonly dirs: Set<string>;
  /** Ports returned by freePort() (or taken by a proxy) in this process. */
  readonly ports: Set<number>;
  /** Process-wide caches (e.g. the TLS material), keyed by name. */
  readonly cache: Map<string, unknown>;
  watchdog?: ChildProcess;
}

const STATE_KEY = Symbol.for('redwing.test-harness.state.v1');

let host: NodeJS.Process | undefined;

/**
 * The real Node.js `process`. Inside a jest sandbox the global `process` is a copy whose
 * 'exit' event never fires, so the safety net must be registered on the host object.
 */
export function hostProcess(): NodeJS.Process {
  if (host) return host;
  try {
    const p = new vm.Script('process').runInThisContext() as NodeJS.Process | undefined;
    host = p && typeof p.on === 'function' && p.pid === process.pid ? p : process;
  } catch {
    host = process;
  }
  return host;
}

/** The process-wide harness state, created (with its exit hook) on first use. */
export function hostState(): HostState {
  const p = hostProcess() as unknown as Record<symbol, HostState | undefined>;
  let state = p[STATE_KEY];
  if (!state) {
    state = { livePids: new Set(), dirs: new Set(), ports: new Set(), cache: new Map() };
    p[STATE_KEY] = state;
    installExitHook(state);
  }
  return state;
}

/** Whether temp dirs are kept for post-mortem inspection (REDWING_KEEP_TEST_DIRS=1). */
export function keepDirs(): boolean {
  return process.env.REDWING_KEEP_TEST_DIRS === '1';
}

function installExitHook(state: HostState): void {
  const real = hostProcess();
  const kill = real.kill.bind(real);
  const rm = fs.rmSync;
  real.on('exit', () => {
    for (const pid of state.livePids) {
      try {
        kill(pid, 'SIGKILL');
      } catch {}
    }
    if (!keepDirs()) {
      for (const dir of state.dirs) {
        try {
          rm(dir, { recursive: true, force: true });
        } catch {}
      }
    }
  });
}

/**
 * A detached helper process that SIGKILLs the registered PIDs and deletes the registered temp
 * dirs when its stdin closes, i.e. when this process dies for any reason, including SIGKILL or a
 * jest worker being force-terminated (cases in which no 'exit' handler runs).
 */
const WATCHDOG_SOURCE = `
const fs = require('node:fs');
const pids = new Set();
const dirs = new Set();
let buf = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d) => {
  buf += d;
  let i;
  while ((i = buf.indexOf('\\n')) >= 0) {
    const line = buf.slice(0, i);
    buf = buf.slice(i + 1);
    const op = line[0];
    const arg = line.slice(1);
    if (op === '>') dirs.add(arg);
    else if (op === '<') dirs.delete(arg);
    else {
      const pid = Number(arg);
      if (!Number.isInteger(pid) || pid <= 0) continue;
      if (op === '+') pids.add(pid); else pids.delete(pid);
    }
  }
});
const reap = () => {
  for (const pid of pids) { try { process.kill(pid, 'SIGKILL'); } catch {} }
  for (const dir of dirs) { try { fs.rmSync(dir, { recursive: true, force: true }); } catch {} }
  process.exit(0);
};
process.stdin.on('end', reap);
process.stdin.on('error', reap);
`;

function watchdog(state: HostState): ChildProcess | undefined {
  if (state.watchdog && state.watchdog.exitCode === null && !state.watchdog.killed) return state.watchdog;
  try {
    const child = spawn(process.execPath, ['-e', WATCHDOG_SOURCE], {
      stdio: ['pipe', 'ignore', 'ignore'],
      detached: true,
    });
    child.on('error', () => {});
    child.stdin?.on('error', () => {});
    child.unref();
    (child.stdin as Socket | null)?.unref();
    state.watchdog = child;
    // A replacement watchdog learns everything still outstanding.
    const backlog = [...state.livePids].map((pid) => `+${pid}\n`);
    if (!keepDirs()) backlog.push(...[...state.dirs].map((dir) => `>${dir}\n`));
    if (backlog.length > 0) child.stdin?.write(backlog.join(''));
    return child;
  } catch {
    return undefined;
  }
}

function tellWatchdog(line: string): void {
  const child = watchdog(hostState());
  try {
    child?.stdin?.write(line + '\n');
  } catch {}
}

/** Records a freshly spawned child so it is killed if this process goes away. */
export function trackPid(pid: number): void {
  hostState().livePids.add(pid);
  tellWatchdog('+' + pid);
}

/** Forgets a child once it has exited and been reaped. */
export function untrackPid(pid: number): void {
  hostState().livePids.delete(pid);
  tellWatchdog('-' + pid);
}

/** Registers a temp dir for deletion at process exit (or by the watchdog if the process dies). */
export function trackDir(dir: string): void {
  hostState().dirs.add(dir);
  if (!keepDirs()) tellWatchdog('>' + dir);
}

/** Deletes a temp dir now (unless REDWING_KEEP_TEST_DIRS=1). */
export function removeDir(dir: string): void {
  hostState().dirs.delete(dir);
  if (keepDirs()) return;
  fs.rmSync(dir, { recursive: true, force: true });
  tellWatchdog('<' + dir);
}

/** Anything stopAll() must stop. */
export interface Stoppable {
  stop(): Promise<void>;
}

// Per module instance (i.e. per jest test file): what stopAll() stops and startedPids() reports.
const stoppables = new Set<Stoppable>();
const started: number[] = [];

/** Registers a server/cluster/sentinel/proxy for stopAll(). */
export function registerStoppable(s: Stoppable): void {
  stoppables.add(s);
}

/** Removes a stopped resource from the stopAll() set. */
export function unregisterStoppable(s: Stoppable): void {
  stoppables.delete(s);
}

/** Records a PID started through this copy of the harness (see startedPids()). */
export function recordStarted(pid: number): void {
  started.push(pid);
}

/**
 * Every PID of a redis-server (or sentinel) process started by this copy of the harness,
 * including restarts. Meant for afterAll assertions that nothing was left running.
 */
export function startedPids(): number[] {
  return [...started];
}

/**
 * Stops every server, cluster, sentinel set and proxy this module started and that is not yet
 * stopped. Safe to call repeatedly; meant for afterAll().
 */
export async function stopAll(): Promise<void> {
  const all = [...stoppables];
  const results = await Promise.allSettled(all.map((s) => s.stop()));
  const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed.length > 0) {
    throw new AggregateError(
      failed.map((f) => f.reason as unknown),
      `stopAll: ${failed.length} of ${all.length} resources failed to stop`,
    );
  }
}

/**
 * True when `pid` is a running process (not a zombie). Reads /proc on Linux; elsewhere falls
 * back to signal 0.
 */
export function isProcessAlive(pid: number): boolean {
  if (fs.existsSync('/proc/self/stat')) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      // "pid (comm) S ..." - comm may contain spaces or parens; the state follows the last ')'.
      const state = stat.charAt(stat.lastIndexOf(')') + 2);
      return state !== 'Z' && state !== 'X';
    } catch {
      return false;
    }
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
