import type { SessionCrypto } from './session-crypto';

/** Where one session lives in Redis. */
export interface SessionKeySet {
  /** Non-secret reference (SHA-256 of the id). */
  ref: string;
  /** Hash tag shared with the user's other sessions and index. */
  tag: string;
  /** Prefix of the session hashes of this tag (`<base>:{<tag>}:s:`). */
  prefix: string;
  /** The session hash. */
  session: string;
}

/**
 * Key names: `<base>:{<tag>}:s:<ref>` per session, `<base>:{<tag>}:u:<user hash>` per user index (`-` for
 * anonymous sessions, which are not indexed). One hash tag per user, so every multi-key script is one slot.
 */
export class SessionKeys {
  constructor(
    private readonly base: string,
    private readonly crypto: SessionCrypto,
  ) {}

  of(id: string): SessionKeySet {
    const tag = this.crypto.tagOf(id);
    const ref = this.crypto.ref(id);
    const prefix = this.prefix(tag);
    return { ref, tag, prefix, session: prefix + ref };
  }

  prefix(tag: string): string {
    return `${this.base}:{${tag}}:s:`;
  }

  index(tag: string, userId: string | null): string {
    return `${this.base}:{${tag}}:u:${userId === null ? '-' : this.crypto.userHash(userId)}`;
  }
}

/**
 * A user id as the service takes it: 1–256 characters, or `null`/absent for anonymous.
 * @throws TypeError otherwise
 */
export function checkUserId(userId: unknown): string | null {
  if (userId === undefined || userId === null) return null;
  if (typeof userId !== 'string' || userId.length < 1 || userId.length > 256) {
    throw new TypeError('SessionService: userId must be a string of 1–256 characters, or null');
  }
  return userId;
}
