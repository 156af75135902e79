import { type ChildProcess, execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import type { Readable } from 'node:stream';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Socket } from 'node:net';
import { freePort, HOST, reservePort } from './ports';
import {
  isProcessAlive,
  recordStarted,
  registerStoppable,
  removeDir,
  trackDir,
  trackPid,
  unregisterStoppable,
  untrackPid,
} from './process-registry';
import { parseInfo, type RespArg, respCommand, type RespEndpoint, type RespValue } from './resp';
import { type TlsMaterial, tlsMaterial } from './tls-material';
import { settlesWithin, waitFor, withTimeout } from './wait';

/** Options for a standalone redis-server started by the harness. */
export interface RedisServerOptions {
  /** Port to listen on (the TLS port when `tls`); default: a free port. */
  port?: number;
  /** Enables AOF persistence (then the default RDB save policy also applies). */
  appendonly?: boolean;
  /** AOF fsync policy (default `everysec`); only with `appendonly`. */
  appendfsync?: 'always' | 'everysec' | 'no';
  /** e.g. `'64mb'`. */
  maxmemory?: string;
  /** e.g. `'allkeys-lru'`. */
  maxmemoryPolicy?: string;
  /** Password of the `default` user. */
  requirepass?: string;
  /** ACL users, e.g. `{ name: 'app', password: 'p', rules: ['~app:*', '&app:*', '+@all', '-@dangerous'] }`. */
  users?: Array<{ name: string; password: string; rules: string[] }>;
  /** TLS only (plain port disabled), with certificates from {@link tlsMaterial}; `tls-auth-clients optional`. */
  tls?: boolean;
  /** Appended verbatim to the redis-server command line, e.g. `['--maxclients', '50']`. */
  extraArgs?: string[];
}

/** TLS files and PEM contents of a TLS server (see {@link TlsMaterial}). */
export type RedisServerTls = TlsMaterial;

/** @internal How to launch one redis-server / sentinel process. */
export interface LaunchSpec {
  kind: 'server' | 'sentinel';
  /** Fixed port; when absent a free port is chosen (and re-chosen if it turns out to be taken). */
  port?: number;
  /** Called once, after the temp dir was created and the port chosen (e.g. to write a config file). */
  prepare?: (dir: string, port: number) => void;
  /** The full argv after `redis-server`, built on every (re)start. */
  args: (port: number, dir: string) => string[];
  /** Credentials of an admin user, used by cli(), info() and readiness checks. */
  auth?: { username?: string; password: string };
  tls?: TlsMaterial;
}

/** Thrown when redis-server could not bind its port (another process took it). */
export class PortInUseError extends Error {
  override readonly name = 'PortInUseError';
}

const READY_TIMEOUT_MS = 10_000;
const STOP_GRACE_MS = 5_000;
const KILL_WAIT_MS = 10_000;

/** Creates a fresh, empty working dir under os.tmpdir(). */
function freshDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'redwing-test-'));
  trackDir(dir);
  // mkdtemp gives an empty dir; be explicit about the files that would leak state into a start.
  for (const f of ['dump.rdb', 'nodes.conf']) fs.rmSync(path.join(dir, f), { force: true });
  return dir;
}

function tail(text: string, lines: number): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

/**
 * One redis-server (or sentinel) child process on 127.0.0.1, in its own temp dir, tracked by
 * PID. It is spawned with `--daemonize no`, so the harness is its parent and reaps it.
 */
export class RedisServer {
  /** Always 127.0.0.1. */
  readonly host = HOST;
  /** TLS material when started with `tls: true`. */
  readonly tls?: RedisServerTls;

  private child?: ChildProcess;
  private exited: Promise<void> = Promise.resolve();
  private stderrTail = '';
  private paused = false;
  private currentPid = 0;
  private stopping?: Promise<void>;

  private constructor(
    private readonly spec: LaunchSpec,
    private readonly portNumber: number,
    private readonly workDir: string,
  ) {
    this.tls = spec.tls;
  }

  /**
   * Starts a standalone redis-server on a free port and waits (≤ 10 s) until it answers PING.
   * The error on failure includes the tail of its log. Fixed arguments: `--bind 127.0.0.1
   * --daemonize no --shutdown-timeout 0 --repl-diskless-sync-delay 0`, a fresh `--dir` with
   * `--logfile redis.log`, and `--save "" --appendonly no` unless `appendonly`; `extraArgs`
   * come last and can override them.
   */
  static async start(opts: RedisServerOptions = {}): Promise<RedisServer> {
    const material = opts.tls ? await tlsMaterial() : undefined;
    return RedisServer.launch({
      kind: 'server',
      port: opts.port,
      tls: material,
      auth: opts.requirepass !== undefined ? { password: opts.requirepass } : undefined,
      args: (port, dir) => serverArgs(opts, port, dir, material),
    });
  }

  /** @internal Starts a process from a launch spec (used by RedisCluster and RedisSentinel). */
  static async launch(spec: LaunchSpec): Promise<RedisServer> {
    const attempts = spec.port === undefined ? 5 : 1;
    if (spec.port !== undefined) reservePort(spec.port);
    for (let attempt = 1; ; attempt++) {
      const port = spec.port ?? (await freePort());
      const dir = freshDir();
      spec.prepare?.(dir, port);
      const server = new RedisServer(spec, port, dir);
      registerStoppable(server);
      try {
        await server.boot();
        return server;
      } catch (err) {
        await server.stop().catch(() => undefined);
        if (err instanceof PortInUseError && attempt < attempts) continue;
        throw err;
      }
    }
  }

  /** The port clients connect to (the TLS port for a TLS server). */
  get port(): number {
    return this.portNumber;
  }

  /** PID of the current process (of the last one after kill()). */
  get pid(): number {
    return this.currentPid;
  }

  /** The server's working dir (AOF, RDB, nodes.conf, redis.log). Deleted by stop(). */
  get dir(): string {
    return this.workDir;
  }

  /** Whether the process is running (paused counts as running). */
  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Whether the process is currently stopped with SIGSTOP. */
  get isPaused(): boolean {
    return this.paused && this.running;
  }

  /** Path of the redis log file. */
  get logFile(): string {
    return path.join(this.workDir, 'redis.log');
  }

  /** Connection details for harness-internal commands (admin credentials, TLS). */
  get endpoint(): RespEndpoint {
    return {
      host: this.host,
      port: this.portNumber,
      username: this.spec.auth?.username,
      password: this.spec.auth?.password,
      tls: this.tls ? { ca: this.tls.ca, cert: this.tls.clientCert, key: this.tls.clientKey } : undefined,
    };
  }

  /**
   * A connection URL: `redis://` or `rediss://` (TLS). Without options it carries the
   * `requirepass` password (if any); pass `username`/`password` for an ACL user.
   */
  url(opts: { username?: string; password?: string; db?: number } = {}): string {
    const scheme = this.tls ? 'rediss' : 'redis';
    const useDefault = opts.username === undefined && opts.password === undefined;
    const password = useDefault ? this.spec.auth?.password : opts.password;
    const username = useDefault ? this.spec.auth?.username : opts.username;
    let auth = '';
    if (username !== undefined || password !== undefined) {
      auth = `${encodeURIComponent(username ?? '')}${password !== undefined ? ':' + encodeURIComponent(password) : ''}@`;
    }
    const db = opts.db !== undefined ? `/${opts.db}` : '';
    return `${scheme}://${auth}${this.host}:${this.portNumber}${db}`;
  }

  /**
   * Sends `signal` (default SIGKILL) to the process and waits (≤ 10 s) until it has exited and
   * been reaped. A paused process is resumed after the signal so it can act on it. The dir is
   * kept, so restart() can follow.
   */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (signal === 'SIGSTOP' || signal === 'SIGCONT' || signal === 'SIGTSTP') {
      throw new TypeError(`kill(${signal}): use pause()/resume() instead`);
    }
    const child = this.child;
    if (!child || !this.running) return;
    child.ref();
    try {
      process.kill(this.currentPid, signal);
      if (this.paused && signal !== 'SIGKILL') process.kill(this.currentPid, 'SIGCONT');
      this.paused = false;
      await withTimeout(
        this.exited,
        KILL_WAIT_MS,
        `redis on port ${this.portNumber} (pid ${this.currentPid}) did not exit within ${KILL_WAIT_MS} ms of ${signal}`,
      );
    } finally {
      child.unref();
    }
  }

  /** Freezes the process with SIGSTOP (its sockets stay open, nothing is answered). */
  pause(): void {
    if (!this.running) throw new Error(`pause(): redis on port ${this.portNumber} is not running`);
    process.kill(this.currentPid, 'SIGSTOP');
    this.paused = true;
  }

  /** Continues a paused process with SIGCONT. */
  resume(): void {
    if (!this.running) throw new Error(`resume(): redis on port ${this.portNumber} is not running`);
    process.kill(this.currentPid, 'SIGCONT');
    this.paused = false;
  }

  /**
   * Starts the process again on the same port and dir (AOF/RDB data and nodes.conf are kept)
   * and waits for PING. A running process is first stopped with SIGTERM (SIGKILL after 5 s).
   */
  async restart(): Promise<void> {
    if (this.stopping) throw new Error(`restart(): redis on port ${this.portNumber} was stopped for good`);
    if (this.running) await this.terminate();
    await this.boot();
  }

  /**
   * Stops for good: SIGTERM, SIGKILL after 5 s, waits until reaped, then deletes the dir (set
   * REDWING_KEEP_TEST_DIRS=1 to keep it). Idempotent.
   */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      try {
        await this.terminate();
      } finally {
        unregisterStoppable(this);
        removeDir(this.workDir);
      }
    })();
    return this.stopping;
  }

  /**
   * Runs `redis-cli` against this server (with auth and TLS options as needed) and returns its
   * trimmed stdout. Note that redis-cli reports command errors on stdout with exit code 0.
   */
  cli(...args: string[]): Promise<string> {
    const base = ['-h', this.host, '-p', String(this.portNumber)];
    const auth = this.spec.auth;
    if (auth) {
      if (auth.username) base.push('--user', auth.username, '--pass', auth.password);
      else base.push('-a', auth.password);
      base.push('--no-auth-warning');
    }
    if (this.tls) {
      base.push('--tls', '--cacert', this.tls.caFile, '--cert', this.tls.clientCertFile);
      base.push('--key', this.tls.clientKeyFile);
    }
    return new Promise((resolve, reject) => {
      execFile('redis-cli', [...base, ...args], { timeout: 10_000 }, (err, stdout, stderr) => {
        if (err) {
          const detail = `${stderr}${stdout}`.trim();
          reject(
            new Error(
              `redis-cli ${args.join(' ')} (port ${this.portNumber}) failed: ${detail || err.message}`,
            ),
          );
        } else {
          resolve(stdout.trim());
        }
      });
    });
  }

  /** INFO [section], parsed into key/value pairs. */
  async info(section?: string): Promise<Record<string, string>> {
    const reply = await this.command(...(section ? ['INFO', section] : ['INFO']));
    return parseInfo(String(reply));
  }

  /**
   * Sends one command over a short-lived connection (admin auth, TLS) and returns the decoded
   * reply; an error reply is thrown as RespError.
   */
  command(...args: RespArg[]): Promise<RespValue> {
    return respCommand(this.endpoint, args);
  }

  /** @internal Same as command(), with a custom timeout and optionally Buffer bulk strings. */
  commandWith(opts: { timeoutMs?: number; buffers?: boolean }, ...args: RespArg[]): Promise<RespValue> {
    return respCommand(this.endpoint, args, opts);
  }

  /** The last `lines` lines of the redis log plus anything written to stderr. */
  logTail(lines = 20): string {
    let log = '';
    try {
      log = tail(fs.readFileSync(this.logFile, 'utf8'), lines);
    } catch {}
    const err = this.stderrTail.trim();
    return [`--- ${this.logFile} (tail) ---`, log, err ? `--- stderr ---\n${tail(err, lines)}` : '']
      .filter(Boolean)
      .join('\n');
  }

  private async terminate(): Promise<void> {
    if (!this.running) return;
    const child = this.child!;
    child.ref();
    try {
      process.kill(this.currentPid, 'SIGTERM');
      if (this.paused) process.kill(this.currentPid, 'SIGCONT');
      this.paused = false;
      const gone = await settlesWithin(this.exited, STOP_GRACE_MS);
      if (!gone && this.running) {
        process.kill(this.currentPid, 'SIGKILL');
        await withTimeout(this.exited, KILL_WAIT_MS, `pid ${this.currentPid} survived SIGKILL`);
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
    } finally {
      child.unref();
    }
  }

  private async boot(): Promise<void> {
    const args = this.spec.args(this.portNumber, this.workDir);
    const child = spawn('redis-server', args, { cwd: this.workDir, stdio: ['ignore', 'ignore', 'pipe'] });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
    const pid = child.pid!;
    this.child = child;
    this.currentPid = pid;
    this.paused = false;
    this.stderrTail = '';
    trackPid(pid);
    recordStarted(pid);
    this.exited = new Promise((resolve) => {
      child.once('exit', () => {
        untrackPid(pid);
        resolve();
      });
    });
    const stderr = child.stderr as (Readable & Partial<Pick<Socket, 'unref'>>) | null;
    stderr?.setEncoding('utf8');
    stderr?.on('data', (d: string) => {
      this.stderrTail = (this.stderrTail + d).slice(-4096);
    });
    stderr?.unref?.();
    child.unref();

    let exitedEarly = false;
    void this.exited.then(() => (exitedEarly = true));
    const what = `${this.spec.kind} on ${this.host}:${this.portNumber} (pid ${pid}) to answer PING`;
    try {
      await waitFor(
        what,
        READY_TIMEOUT_MS,
        async () => {
          if (exitedEarly) throw new Error('process exited');
          return (await respCommand(this.endpoint, ['PING'], { timeoutMs: 1000 })) === 'PONG';
        },
        { intervalMs: 50, details: () => this.logTail() },
      );
      // Make sure the PONG came from our process, not from someone else on a reused port.
      const reported = Number((await this.info('server')).process_id);
      if (reported !== pid) {
        throw new PortInUseError(
          `port ${this.portNumber} is answered by pid ${reported}, not by our pid ${pid}`,
        );
      }
    } catch (err) {
      const died = exitedEarly || !isProcessAlive(pid);
      await this.terminate().catch(() => undefined);
      const log = this.logTail();
      if (err instanceof PortInUseError || /Address already in use/i.test(log)) {
        throw new PortInUseError(`${this.spec.kind} could not bind port ${this.portNumber}\n${log}`, {
          cause: err,
        });
      }
      if (died) {
        throw new Error(`redis ${this.spec.kind} on port ${this.portNumber} exited during start-up\n${log}`, {
          cause: err,
        });
      }
      throw err;
    }
  }
}

function serverArgs(opts: RedisServerOptions, port: number, dir: string, material?: TlsMaterial): string[] {
  const args = ['--bind', HOST, '--daemonize', 'no', '--shutdown-timeout', '0', '--dir', dir];
  // A master waits 5 s (default) for more replicas before a diskless full sync; tests want it now.
  args.push('--repl-diskless-sync-delay', '0');
  args.push('--logfile', path.join(dir, 'redis.log'));
  if (material) {
    args.push('--port', '0', '--tls-port', String(port));
    args.push('--tls-cert-file', material.certFile, '--tls-key-file', material.keyFile);
    args.push('--tls-ca-cert-file', material.caFile, '--tls-auth-clients', 'optional');
  } else {
    args.push('--port', String(port));
  }
  if (opts.appendonly) args.push('--appendonly', 'yes', '--appendfsync', opts.appendfsync ?? 'everysec');
  else args.push('--save', '', '--appendonly', 'no');
  if (opts.maxmemory !== undefined) args.push('--maxmemory', opts.maxmemory);
  if (opts.maxmemoryPolicy !== undefined) args.push('--maxmemory-policy', opts.maxmemoryPolicy);
  if (opts.requirepass !== undefined) args.push('--requirepass', opts.requirepass);
  for (const u of opts.users ?? []) args.push('--user', u.name, 'on', `>${u.password}`, ...u.rules);
  args.push(...(opts.extraArgs ?? []));
  return args;
}
