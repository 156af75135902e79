import type { INestApplicationContext } from '@nestjs/common';
import { IoAdapter } from '@nestjs/platform-socket.io';
import type { IncomingMessage } from 'node:http';
import type { Server, ServerOptions } from 'socket.io';

/** What the adapter needs from the environment (see `LIVE_*` in gateway-env.schema.ts). */
export interface LiveAdapterOptions {
  /** Allowed `Origin`s; empty = the gateway's own `http://127.0.0.1:<port>` and `http://localhost:<port>`. */
  allowedOrigins: string[];
  /** Largest message a client may send, bytes (engine.io closes the connection on a bigger one). */
  maxPayload: number;
  /** Called for every refused handshake (for the drop counter). */
  onRefused?: (reason: 'origin') => void;
}

/** Parses `LIVE_ALLOWED_ORIGINS` (comma list) into normalized origins. */
export function parseOrigins(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((o) => o.trim().replace(/\/+$/, '').toLowerCase())
    .filter(Boolean);
}

/** Whether a handshake's `Origin` may open a socket. No `Origin` (a non-browser client) is allowed. */
export function originAllowed(req: IncomingMessage, allowed: readonly string[]): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return true;
  const normalized = origin.trim().toLowerCase();
  if (allowed.length) return allowed.includes(normalized);
  const port = req.socket.localPort;
  return normalized === `http://127.0.0.1:${port}` || normalized === `http://localhost:${port}`;
}

/**
 * socket.io on the gateway's HTTP server (Fastify or Express) with the live endpoint's transport-level
 * limits: the origin allowlist is checked before the handshake (cross-site WebSocket hijacking) and
 * messages over `maxPayload` close the connection.
 */
export class LiveIoAdapter extends IoAdapter {
  constructor(
    app: INestApplicationContext,
    private readonly live: LiveAdapterOptions,
  ) {
    super(app);
  }

  override createIOServer(port: number, options?: ServerOptions): Server {
    const { allowedOrigins, maxPayload, onRefused } = this.live;
    return super.createIOServer(port, {
      ...options,
      maxHttpBufferSize: maxPayload,
      // The browser's same-origin policy does not cover WebSockets; this is what does.
      allowRequest: (req, callback) => {
        if (originAllowed(req, allowedOrigins)) return callback(null, true);
        onRefused?.('origin');
        callback('origin not allowed', false);
      },
    } as ServerOptions);
  }
}
