// socket.io clients of the gateway's /live namespace, shared by the live, live-sessions and jobs-live specs.
import { io, type Socket } from 'socket.io-client';

/** How a test socket authenticates and where it claims to come from. */
export interface LiveClientOptions {
  token?: string;
  cookie?: string;
  origin?: string;
}

/**
 * A socket.io client of `base`'s /live (websocket only, no automatic reconnection), added to `track` so the
 * spec can disconnect every socket it opened.
 */
export function liveClient(base: string, track: Socket[], opts: LiveClientOptions = {}): Socket {
  const headers = {
    ...(opts.origin ? { origin: opts.origin } : {}),
    ...(opts.cookie ? { cookie: opts.cookie } : {}),
  };
  const socket = io(`${base}/live`, {
    transports: ['websocket'],
    reconnection: false,
    forceNew: true,
    ...(opts.token ? { auth: { token: opts.token } } : {}),
    ...(Object.keys(headers).length > 0 ? { extraHeaders: headers } : {}),
  });
  track.push(socket);
  return socket;
}

/** Resolves when connected, rejects with the connect_error. */
export function opened(socket: Socket): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('connect_error', (err) => reject(err));
  });
}

/** `subscribe` with its ack (5 s). */
export function subscribe(
  socket: Socket,
  channel: string,
  lastEventId?: string,
): Promise<{ ok: boolean; error?: string }> {
  return socket.timeout(5_000).emitWithAck('subscribe', { channel, ...(lastEventId ? { lastEventId } : {}) });
}

/** Every `event` message the socket receives from now on, in arrival order. */
export function collectEvents<E>(socket: Socket): E[] {
  const got: E[] = [];
  socket.on('event', (e: E) => got.push(e));
  return got;
}
