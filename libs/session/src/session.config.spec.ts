import { resolveSessionConfig } from './session.config';
import { SessionConfigError } from './session.errors';

const KEY = 'k'.repeat(32);

describe('resolveSessionConfig', () => {
  const bad = (options: unknown, env: Record<string, string> = {}): SessionConfigError => {
    try {
      resolveSessionConfig({ useEnv: true, env, ...(options as object) });
    } catch (err) {
      expect(err).toBeInstanceOf(SessionConfigError);
      return err as SessionConfigError;
    }
    throw new Error('expected a SessionConfigError');
  };

  it('applies defaults', () => {
    const c = resolveSessionConfig({ keys: [KEY], useEnv: false });
    expect(c).toMatchObject({
      client: 'default',
      idleTimeout: 1_800_000,
      absoluteTimeout: 43_200_000,
      touchInterval: 60_000,
      unavailableRetryAfter: 5_000,
      cookie: { name: 'rwsid', secure: 'auto', sameSite: 'lax', path: '/' },
      csrf: { enabled: true, header: 'x-csrf-token' },
    });
  });

  it('names the field of every invalid option, never echoing a key', () => {
    expect(bad({}).field).toBe('keys');
    expect(bad({ keys: [process.env.NO_SUCH_SESSION_KEY] }).message).toContain('keys[0] is empty');
    const short = bad({ keys: ['short-secret-value'] });
    expect(short.field).toBe('keys[0]');
    expect(short.message).not.toContain('short-secret-value');
    expect(bad({ keys: [KEY, KEY] }).field).toBe('keys[1]');
    expect(bad({ keys: [KEY], idleTimout: 5 }).message).toContain('did you mean idleTimeout');
    expect(bad({ keys: [KEY], idleTimeout: 1_000, touchInterval: 1_000 }).field).toBe('touchInterval');
    expect(bad({ keys: [KEY], cookie: { sameSite: 'lox' } }).field).toBe('cookie.sameSite');
    expect(bad({ keys: [KEY], cookie: { secure: 'yes' } }).field).toBe('cookie.secure');
    expect(bad({ keys: [KEY], csrf: { exempt: ['login'] } }).field).toBe('csrf.exempt[0]');
    expect(bad({}, { SESSION_IDLE_TIMEOUT: 'soon' }).field).toBe('SESSION_IDLE_TIMEOUT');
    expect(bad({}, { SESSION_KEYS: KEY, SESSION_COOKIE_SECURE: 'maybe' }).field).toBe(
      'SESSION_COOKIE_SECURE',
    );
  });

  it('reads SESSION_* under explicit options', () => {
    const c = resolveSessionConfig({
      useEnv: true,
      env: {
        SESSION_KEYS: `${KEY},${'j'.repeat(40)}`,
        SESSION_IDLE_TIMEOUT: '5000',
        SESSION_COOKIE_SECURE: 'true',
      },
      idleTimeout: 7_000,
    });
    expect(c.keys).toHaveLength(2);
    expect(c.idleTimeout).toBe(7_000);
    expect(c.touchInterval).toBe(700);
    expect(c.cookie.secure).toBe(true);
  });
});
