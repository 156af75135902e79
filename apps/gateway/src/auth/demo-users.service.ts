import { Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { demoUsersFrom, isProduction } from './auth.config';

/** scrypt cost: N = 2^14, r = 8, p = 1 (the interactive-login parameters of the scrypt paper / OWASP). */
const SCRYPT: ScryptOptions = { N: 16_384, r: 8, p: 1, maxmem: 64 * 1024 * 1024 };
const HASH_BYTES = 32;

interface StoredUser {
  salt: Buffer;
  hash: Buffer;
}

function hashPassword(password: string, salt: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(password.normalize('NFC'), salt, HASH_BYTES, SCRYPT, (err, key) =>
      err ? reject(err) : resolve(key),
    ),
  );
}

/**
 * The gateway's demo users (`AUTH_DEMO_USERS`), kept only as salted scrypt hashes computed at start-up; the
 * plaintext passwords are dropped. Verification costs the same for unknown users (a dummy hash).
 */
@Injectable()
export class DemoUsersService implements OnModuleInit {
  private readonly logger = new Logger('Auth');
  private readonly users = new Map<string, StoredUser>();
  private readonly dummy: StoredUser = { salt: randomBytes(16), hash: randomBytes(HASH_BYTES) };

  async onModuleInit(): Promise<void> {
    const { users, source } = demoUsersFrom(process.env);
    await Promise.all(
      users.map(async ({ name, password }) => {
        const salt = randomBytes(16);
        this.users.set(name, { salt, hash: await hashPassword(password, salt) });
      }),
    );
    const names = [...this.users.keys()].join(', ') || 'none';
    this.logger.log(`demo users (${source}): ${names}`);
    if (source === 'AUTH_DEMO_USERS' && isProduction(process.env)) {
      this.logger.warn('AUTH_DEMO_USERS is set in production: these demo accounts can log in');
    }
  }

  /** Whether `password` is the password of demo user `name`. */
  async verify(name: string, password: string): Promise<boolean> {
    const user = this.users.get(name);
    const stored = user ?? this.dummy;
    const hash = await hashPassword(password, stored.salt);
    return timingSafeEqual(hash, stored.hash) && user !== undefined;
  }
}
