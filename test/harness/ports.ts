import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { hostState, isProcessAlive, trackDir } from './process-registry';

/** The only interface the harness ever binds or connects to. */
export const HOST = '127.0.0.1' as const;

/** Lowest port the harness hands out. */
const POOL_LOW = 20_000;
/** The kernel's default ephemeral range where /proc does not say (Linux default). */
const DEFAULT_EPHEMERAL: readonly [number, number] = [32_768, 60_999];
/** Fewest ports worth a pool; below that freePort() falls back to kernel-chosen ports. */
const MIN_POOL = 2_000;

/** Claims of this process, one file per port, under the shared claim dir. */
export const CLAIM_DIR = path.join(os.tmpdir(), 'redwing-test-ports');

/** The kernel's ephemeral (source) port range, from /proc on Linux. */
export function ephemeralRange(): readonly [number, number] {
  try {
    const [low, high] = fs
      .readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')
      .trim()
      .split(/\s+/)
      .map(Number);
    if (Number.isInteger(low) && Number.isInteger(high) && low > 0 && high >= low) return [low, high];
  } catch {}
  return DEFAULT_EPHEMERAL;
}

/**
 * The range freePort() draws from: below the ephemeral range, so that neither the source port
 * of an outgoing connection nor another process's `listen(0)` can take the port of a killed
 * server before restart() binds it again (CI once lost a 10 s SIGKILL test that way). Undefined
 * when the ephemeral range leaves too little room below it.
 */
export function portPool(): readonly [number, number] | undefined {
  const high = Math.min(ephemeralRange()[0], 65_536) - 1;
  return high - POOL_LOW + 1 >= MIN_POOL ? [POOL_LOW, high] : undefined;
}

function bindable(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen({ port, host: HOST, exclusive: true }, () => {
      const bound = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(bound));
    });
  });
}

/**
 * Claims `port` for this process across every process on the host (jest workers, other test
 * runs): a file named after the port, created exclusively, holding our PID. A claim whose PID
 * is gone is removed, but not taken in the same step (two processes may both see it stale);
 * the port comes round again. The file is deleted when this process exits (or by the
 * harness watchdog if it dies).
 */
export function claimPort(port: number): boolean {
  fs.mkdirSync(CLAIM_DIR, { recursive: true });
  const file = path.join(CLAIM_DIR, String(port));
  try {
    fs.writeFileSync(file, String(process.pid), { flag: 'wx' });
    trackDir(file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    try {
      const owner = Number(fs.readFileSync(file, 'utf8'));
      if (owner > 0 && owner !== process.pid && !isProcessAlive(owner)) fs.rmSync(file, { force: true });
    } catch {}
    return false;
  }
}

/**
 * A TCP port on 127.0.0.1 that no other harness user holds and that was bindable a moment ago.
 * Ports come from below the kernel's ephemeral range (see portPool()) and are claimed for the
 * life of the process, so a server that was killed keeps its port for restart(). A process
 * outside the harness may still bind one in between; RedisServer.start() retries with a new
 * port when that happens.
 */
export async function freePort(): Promise<number> {
  const used = hostState().ports;
  const pool = portPool();
  if (!pool) return kernelPort(used);
  const [low, high] = pool;
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = low + Math.floor(Math.random() * (high - low + 1));
    if (used.has(port) || !claimPort(port)) continue;
    used.add(port);
    try {
      return await bindable(port);
    } catch {
      // Bound by something outside the harness: keep the claim (so we do not try it again).
    }
  }
  throw new Error(`freePort: no free port in ${low}-${high} after 200 attempts (claims in ${CLAIM_DIR})`);
}

async function kernelPort(used: Set<number>): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = await bindable(0);
    if (!used.has(port)) {
      used.add(port);
      return port;
    }
  }
  throw new Error('freePort: no unused port found after 100 attempts');
}

/** Marks a port as taken (e.g. one a proxy is listening on) so freePort() never returns it. */
export function reservePort(port: number): void {
  hostState().ports.add(port);
}
