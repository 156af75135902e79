import { Logger } from '@nestjs/common';
import { scryptSync } from 'node:crypto';
import { inspect } from 'node:util';
import { DemoUsersService } from './demo-users.service';

describe('DemoUsersService', () => {
  const saved = process.env.AUTH_DEMO_USERS;

  beforeEach(() => jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined));

  afterEach(() => {
    jest.restoreAllMocks();
    if (saved === undefined) delete process.env.AUTH_DEMO_USERS;
    else process.env.AUTH_DEMO_USERS = saved;
  });

  it('keeps only salted scrypt hashes (N = 2^14, r = 8, p = 1) of AUTH_DEMO_USERS, never the passwords', async () => {
    process.env.AUTH_DEMO_USERS = 'alice:wonder-land-pw,bob:c:with:colons';
    const service = new DemoUsersService();
    await service.onModuleInit();
    const stored = (service as unknown as { users: Map<string, { salt: Buffer; hash: Buffer }> }).users;
    expect([...stored.keys()].sort()).toEqual(['alice', 'bob']); // hashed in parallel: any order
    for (const [name, password] of [
      ['alice', 'wonder-land-pw'],
      ['bob', 'c:with:colons'],
    ] as const) {
      const { salt, hash } = stored.get(name)!;
      expect(salt).toHaveLength(16);
      expect(hash.equals(scryptSync(password, salt, 32, { N: 16_384, r: 8, p: 1 }))).toBe(true);
    }
    expect(stored.get('alice')!.salt.equals(stored.get('bob')!.salt)).toBe(false);
    const dump = inspect(service, { depth: 5, showHidden: true });
    expect(dump).not.toContain('wonder-land-pw');
    expect(dump).not.toContain('c:with:colons');
  });

  it('verifies the right password only, for known users only', async () => {
    process.env.AUTH_DEMO_USERS = 'alice:wonder-land-pw';
    const service = new DemoUsersService();
    await service.onModuleInit();
    expect(await service.verify('alice', 'wonder-land-pw')).toBe(true);
    expect(await service.verify('alice', 'wonder-land-PW')).toBe(false);
    expect(await service.verify('alice', '')).toBe(false);
    expect(await service.verify('mallory', 'wonder-land-pw')).toBe(false);
  });
});
