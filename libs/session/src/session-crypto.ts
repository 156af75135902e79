import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  hkdfSync,
  randomBytes,
  timingSafeEqual,
} from 'node:crypto';

/** Why a stored value did not decrypt. */
export type DecryptFailure = 'tamper' | 'unknown_key';

interface RingKey {
  /** 4-byte key id written in front of every blob. */
  id: Buffer;
  enc: Buffer;
  csrf: Buffer;
}

const VERSION = 1;
const HEADER = 1 + 4 + 12 + 16;
const SALT = Buffer.from('redwing/session/v1');
/** `<6-char user tag>.<43-char secret>`: 256 random bits in the secret part. */
const ID_PATTERN = /^[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{43}$/;

const b64url = (buf: Buffer): string => buf.toString('base64url');
const sha256 = (text: string): Buffer => createHash('sha256').update(text).digest();

/**
 * The session lib's cryptography: ids, non-secret refs, field names, AES-256-GCM with a key ring, CSRF tokens.
 *
 * - An id is `<tag>.<secret>`: `tag` is 6 characters derived from the user id (random for anonymous
 *   sessions) so all sessions of a user share one Redis Cluster hash slot; `secret` is 32 bytes from
 *   `crypto.randomBytes` (256 bits).
 * - Every value is encrypted with the ring's first key (AES-256-GCM, random 96-bit IV) with the session id and
 *   the field as associated data: a blob copied to another session or field does not decrypt.
 * - Keys are derived from each secret with HKDF-SHA256 (one for encryption, one for CSRF tokens, one id).
 */
export class SessionCrypto {
  private readonly ring: RingKey[];
  private readonly byId = new Map<string, RingKey>();

  constructor(secrets: readonly Buffer[]) {
    this.ring = secrets.map((secret) => {
      const derive = (info: string, length: number) =>
        Buffer.from(hkdfSync('sha256', secret, SALT, info, length));
      return { id: derive('kid', 4), enc: derive('enc', 32), csrf: derive('csrf', 32) };
    });
    for (const key of this.ring) this.byId.set(key.id.toString('hex'), key);
  }

  /** A new session id for `userId` (anonymous: `null`). */
  newId(userId: string | null): string {
    const tag = userId === null ? b64url(randomBytes(6)).slice(0, 6) : this.userTag(userId);
    return `${tag}.${b64url(randomBytes(32))}`;
  }

  /** Whether `id` has the shape of a session id (cheap check before any Redis call). */
  isWellFormed(id: unknown): id is string {
    return typeof id === 'string' && ID_PATTERN.test(id);
  }

  /** Hash tag of a user's keys: 6 characters of SHA-256 of the user id. */
  userTag(userId: string): string {
    return b64url(sha256(`redwing/session/user-tag:${userId}`)).slice(0, 6);
  }

  /** Tag part of an id. */
  tagOf(id: string): string {
    return id.slice(0, 6);
  }

  /** Per-user index name: 128 bits of SHA-256 of the user id. */
  userHash(userId: string): string {
    return b64url(sha256(`redwing/session/user:${userId}`)).slice(0, 22);
  }

  /** Non-secret, stable reference of a session: 128 bits of SHA-256 of its id (one-way; ids have 256 bits). */
  ref(id: string): string {
    return b64url(sha256(`redwing/session/ref:${id}`)).slice(0, 22);
  }

  /** Hash field of a data field: keyed by the session id, so field names are not readable in Redis. */
  fieldOf(id: string, name: string): string {
    return `f:${b64url(createHmac('sha256', id).update(name).digest()).slice(0, 22)}`;
  }

  /** Encrypt `plain` for `field` of session `id` with the newest key; base64 text. */
  encrypt(id: string, field: string, plain: Buffer): string {
    const key = this.ring[0];
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key.enc, iv);
    cipher.setAAD(Buffer.from(`${id}\0${field}`));
    const body = Buffer.concat([cipher.update(plain), cipher.final()]);
    return Buffer.concat([Buffer.from([VERSION]), key.id, iv, cipher.getAuthTag(), body]).toString('base64');
  }

  /** Decrypt a value written by {@link encrypt} for the same `id` and `field`, or say why it cannot be. */
  decrypt(id: string, field: string, stored: string): Buffer | DecryptFailure {
    const blob = Buffer.from(stored, 'base64');
    if (blob.length < HEADER || blob[0] !== VERSION) return 'tamper';
    const key = this.byId.get(blob.subarray(1, 5).toString('hex'));
    if (!key) return 'unknown_key';
    try {
      const decipher = createDecipheriv('aes-256-gcm', key.enc, blob.subarray(5, 17));
      decipher.setAAD(Buffer.from(`${id}\0${field}`));
      decipher.setAuthTag(blob.subarray(17, HEADER));
      return Buffer.concat([decipher.update(blob.subarray(HEADER)), decipher.final()]);
    } catch {
      return 'tamper';
    }
  }

  /** The CSRF token of session `id`: HMAC-SHA256 under the newest key's CSRF key (43 characters). */
  csrfToken(id: string): string {
    return this.csrfWith(this.ring[0], id);
  }

  /** Whether `token` is the CSRF token of `id` under any key of the ring (constant-time compare). */
  verifyCsrf(id: string, token: unknown): boolean {
    if (typeof token !== 'string' || token.length !== 43) return false;
    const given = Buffer.from(token);
    let ok = false;
    for (const key of this.ring) {
      if (timingSafeEqual(given, Buffer.from(this.csrfWith(key, id)))) ok = true;
    }
    return ok;
  }

  private csrfWith(key: RingKey, id: string): string {
    return b64url(createHmac('sha256', key.csrf).update(`csrf:${id}`).digest());
  }
}
