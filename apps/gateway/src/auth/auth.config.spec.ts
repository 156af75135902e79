import { GatewayConfigError } from '../config/gateway-env.schema';
import { DEVELOPMENT_SESSION_KEY, demoUsersFrom, sessionOptionsFrom } from './auth.config';

describe('gateway auth configuration', () => {
  it('uses development defaults outside production and none in production', () => {
    expect(demoUsersFrom({}).users.map((u) => u.name)).toEqual(['alice', 'bob']);
    expect(demoUsersFrom({ NODE_ENV: 'production' })).toEqual({ users: [], source: 'none (production)' });
    expect(demoUsersFrom({ NODE_ENV: 'production', AUTH_DEMO_USERS: 'ops:pw' }).users).toEqual([
      { name: 'ops', password: 'pw' },
    ]);
    expect(sessionOptionsFrom({}).options.keys).toEqual([DEVELOPMENT_SESSION_KEY]);
    const prod = sessionOptionsFrom({ NODE_ENV: 'production' });
    expect(prod.source).toBe('random per process');
    expect(prod.options.keys?.[0]).not.toEqual(DEVELOPMENT_SESSION_KEY);
    expect(sessionOptionsFrom({ SESSION_KEYS: 'x'.repeat(40) }).options.keys).toBeUndefined();
  });

  it('parses name:password pairs (passwords may contain colons) and rejects bad entries without echoing them', () => {
    expect(demoUsersFrom({ AUTH_DEMO_USERS: 'a:b:c, d:e' }).users).toEqual([
      { name: 'a', password: 'b:c' },
      { name: 'd', password: 'e' },
    ]);
    for (const value of ['nopassword', 'bad name:pw', 'a:1,a:2', ':secret-pw']) {
      let error: unknown;
      try {
        demoUsersFrom({ AUTH_DEMO_USERS: value });
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(GatewayConfigError);
      expect((error as Error).message).toContain('AUTH_DEMO_USERS');
      expect((error as Error).message).not.toContain('secret-pw');
    }
  });
});
