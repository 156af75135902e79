import type { SessionService } from '@redwing/session';
import { DEMO_TOKEN_PREFIX } from '../limited/demo-auth.middleware';

/** Who is behind a socket: a user (session or demo token) or nobody. */
export interface LiveIdentity {
  userId: string | null;
  /** Non-secret reference of the session the socket was opened with, for revocation. */
  sessionRef: string | null;
}

/** A handshake that must be refused; `reason` goes to the client as `connect_error` data. */
export class LiveHandshakeRefused extends Error {
  override readonly name = 'LiveHandshakeRefused';

  constructor(readonly reason: 'invalid-token' | 'unavailable') {
    super(reason === 'unavailable' ? 'sessions are unavailable, retry shortly' : 'unauthorized');
  }
}

const DEMO_USER = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * Authenticates a handshake: `auth.token` (a session id, or a demo token `demo.<user>`, with or without
 * `Bearer `), else the session cookie, else anonymous. A token that is given but not valid is refused (an
 * expired session must not silently become anonymous); a stale cookie only makes the socket anonymous,
 * so a browser can still watch public boards.
 * @throws LiveHandshakeRefused
 */
export async function identify(
  handshake: { auth?: Record<string, unknown>; headers: { cookie?: string } },
  sessions: SessionService | undefined,
): Promise<LiveIdentity> {
  const raw = handshake.auth?.token;
  if (raw !== undefined) {
    if (typeof raw !== 'string' || raw.length > 512) throw new LiveHandshakeRefused('invalid-token');
    const token = raw.startsWith('Bearer ') ? raw.slice(7).trim() : raw.trim();
    if (token.startsWith(DEMO_TOKEN_PREFIX)) {
      const id = token.slice(DEMO_TOKEN_PREFIX.length);
      if (DEMO_USER.test(id)) return { userId: id, sessionRef: null };
      throw new LiveHandshakeRefused('invalid-token');
    }
    if (!sessions) throw new LiveHandshakeRefused('invalid-token');
    const record = await load(() => sessions.get(token));
    if (!record) throw new LiveHandshakeRefused('invalid-token');
    return { userId: record.userId, sessionRef: record.ref };
  }
  const cookie = handshake.headers.cookie;
  if (sessions && cookie) {
    const record = await load(() => sessions.getFromCookieHeader(cookie));
    if (record) return { userId: record.userId, sessionRef: record.ref };
  }
  return { userId: null, sessionRef: null };
}

async function load<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if ((err as Error)?.name === 'SessionUnavailableError') throw new LiveHandshakeRefused('unavailable');
    throw err;
  }
}

/**
 * A job id of the export queue: BullMQ's sequential number, or `idem-` + 32 base64url characters for a job
 * added with an idempotency key.
 */
const JOB_CHANNEL = /^job:(?:[1-9]\d{0,14}|idem-[A-Za-z0-9_-]{32})$/;

/**
 * Who may subscribe to what: `board:<1..1000>` is public (boards are public in the demo); `user:<id>` only
 * for that user; `job:<id>` (progress of a board export, see `BoardExportProcessor`) for any socket, because
 * exports are of public boards. Sequential job ids are guessable: whoever follows a job id sees exactly what
 * `GET /jobs/:id` shows. A queue whose jobs are not public must not publish on `job:<id>` (or needs an owner
 * check here). `stats` (the leader's per-minute cluster digest, what `GET /stats/series` shows) for any
 * socket. Anything else does not exist.
 */
export function authorize(channel: string, identity: LiveIdentity): 'ok' | 'forbidden' | 'invalid-channel' {
  if (channel === 'stats') return 'ok';
  if (channel.startsWith('job:')) return JOB_CHANNEL.test(channel) ? 'ok' : 'invalid-channel';
  const board = /^board:(\d{1,4})$/.exec(channel);
  if (board) {
    const id = Number(board[1]);
    return id >= 1 && id <= 1_000 && String(id) === board[1] ? 'ok' : 'invalid-channel';
  }
  const user = /^user:([A-Za-z0-9_-]{1,64})$/.exec(channel);
  if (user) return identity.userId !== null && identity.userId === user[1] ? 'ok' : 'forbidden';
  return 'invalid-channel';
}
