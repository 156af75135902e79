import * as net from 'node:net';
import { hostState } from './process-registry';

/** The only interface the harness ever binds or connects to. */
export const HOST = '127.0.0.1' as const;

function bindEphemeral(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen({ port: 0, host: HOST, exclusive: true }, () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * A TCP port on 127.0.0.1 that was free a moment ago: binds port 0, reads the port the kernel
 * chose and closes the socket. A port is never handed out twice in one process (a server that
 * was killed keeps its port for restart()). Another process may still grab it in between;
 * RedisServer.start() retries with a new port when that happens.
 */
export async function freePort(): Promise<number> {
  const used = hostState().ports;
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = await bindEphemeral();
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
