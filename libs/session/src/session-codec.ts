import { FIELD } from './session.constants';
import type { SessionCrypto } from './session-crypto';
import { SessionValueTooLargeError } from './session.errors';
import type { SessionData, SessionRecord, SessionRejectReason } from './session.interfaces';

/** Encrypted metadata of a session (field `_m`). */
export interface SessionMeta {
  /** user id, or null */
  u: string | null;
  /** created at, ms */
  c: number;
  /** absolute deadline, ms */
  a: number;
}

/** Session ids of records loaded in this process, so a record can be passed back without exposing its id. */
const idsOfRecords = new WeakMap<object, string>();

/** The id behind a record loaded by a `SessionService` of this process, if any. */
export function idOfRecord(record: object): string | undefined {
  return idsOfRecords.get(record);
}

/** Encrypts session fields to hash field/value pairs, and decodes a hash back to a record. */
export class SessionCodec {
  constructor(
    private readonly crypto: SessionCrypto,
    private readonly maxValueSize: number,
  ) {}

  /**
   * Field/value pairs of the metadata (`_m` encrypted, `_a` in clear for the scripts). The metadata is bound to
   * the session's ref (a one-way function of the id) rather than the id, so `listForUser`, which only knows
   * refs, can read it; a blob moved to another session still fails.
   */
  meta(ref: string, meta: SessionMeta): string[] {
    const blob = this.crypto.encrypt(ref, FIELD.meta, Buffer.from(JSON.stringify(meta)));
    return [FIELD.meta, blob, FIELD.absolute, String(meta.a)];
  }

  /**
   * Pairs to set and fields to delete for `changes` (a value of `undefined` deletes the field).
   * @throws SessionValueTooLargeError when a value serializes to more than `maxValueSize` bytes
   */
  fields(
    id: string,
    changes: Partial<SessionData> | Record<string, unknown>,
  ): { set: string[]; del: string[] } {
    const set: string[] = [];
    const del: string[] = [];
    for (const [name, value] of Object.entries(changes)) {
      const field = this.crypto.fieldOf(id, name);
      if (value === undefined) {
        del.push(field);
        continue;
      }
      const plain = Buffer.from(JSON.stringify([name, value]));
      if (plain.length > this.maxValueSize)
        throw new SessionValueTooLargeError(name, plain.length, this.maxValueSize);
      set.push(field, this.crypto.encrypt(id, field, plain));
    }
    return { set, del };
  }

  /** Decrypted metadata of the session `ref`, or why it cannot be read. */
  readMeta(ref: string, blob: string): SessionMeta | SessionRejectReason {
    const plain = this.crypto.decrypt(ref, FIELD.meta, blob);
    if (typeof plain === 'string') return plain;
    return JSON.parse(plain.toString()) as SessionMeta;
  }

  /**
   * The record of a hash (`flat` = field1, value1, …) whose TTL is `pttl`, or why it is refused. Every field
   * must decrypt under its own name and this id; `_a` must match the encrypted deadline.
   */
  decode(
    id: string,
    ref: string,
    pttl: number,
    flat: readonly string[],
  ): SessionRecord | SessionRejectReason {
    let meta: SessionMeta | undefined;
    let absolute: string | undefined;
    const data: Record<string, unknown> = {};
    for (let i = 0; i < flat.length; i += 2) {
      const field = flat[i];
      const value = flat[i + 1];
      if (field === FIELD.absolute) {
        absolute = value;
        continue;
      }
      if (field === FIELD.meta) {
        const m = this.readMeta(ref, value);
        if (typeof m === 'string') return m;
        meta = m;
        continue;
      }
      const plain = this.crypto.decrypt(id, field, value);
      if (typeof plain === 'string') return plain;
      const [name, v] = JSON.parse(plain.toString()) as [string, unknown];
      data[name] = v;
    }
    if (!meta || absolute !== String(meta.a)) return 'tamper';
    const now = Date.now();
    if (meta.a <= now) return 'expired';
    const record: SessionRecord = {
      ref,
      userId: meta.u,
      data: data as SessionData,
      createdAt: meta.c,
      expiresAt: Math.min(now + pttl, meta.a),
      absoluteExpiresAt: meta.a,
    };
    idsOfRecords.set(record, id);
    return record;
  }

  /** A record for a session just written (no read needed). */
  fresh(
    id: string,
    ref: string,
    meta: SessionMeta,
    data: Record<string, unknown>,
    ttl: number,
  ): SessionRecord {
    const record: SessionRecord = {
      ref,
      userId: meta.u,
      data: { ...data } as SessionData,
      createdAt: meta.c,
      expiresAt: meta.c + ttl,
      absoluteExpiresAt: meta.a,
    };
    idsOfRecords.set(record, id);
    return record;
  }
}
