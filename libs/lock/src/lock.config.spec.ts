import { LockConfigError } from './lock.errors';
import { callOptions, checkResource, resolveLockConfig } from './lock.config';
import { compileTemplate } from './resource-template';

describe('resolveLockConfig', () => {
  it('applies defaults, then LOCK_* variables, then explicit options', () => {
    expect(resolveLockConfig({}, {})).toEqual({
      clients: ['default'],
      ttl: 30_000,
      wait: 10_000,
      retryInterval: 250,
      driftFactor: 0.01,
    });
    const env = { LOCK_TTL: '5000', LOCK_CLIENTS: 'a, b ,c', LOCK_WAIT: '0' };
    expect(resolveLockConfig({ wait: 100 }, env)).toMatchObject({
      clients: ['a', 'b', 'c'],
      ttl: 5_000,
      wait: 100,
    });
    expect(resolveLockConfig({ useEnv: false }, env).ttl).toBe(30_000);
  });

  it.each([
    [{ ttl: 10 }, 'ttl'],
    [{ ttl: 1.5 }, 'ttl'],
    [{ wait: -1 }, 'wait'],
    [{ clients: [] }, 'clients'],
    [{ clients: ['a', 'b'] }, 'clients'],
    [{ clients: ['a', 'a', 'b'] }, 'clients'],
    [{ clients: ['bad name'] }, 'clients[0]'],
    [{ retryInterval: 0 }, 'retryInterval'],
    [{ tll: 1_000 }, 'tll'],
    [{ driftFactor: 1 }, 'driftFactor'],
  ])('rejects %j naming %s', (options, field) => {
    const err = (() => {
      try {
        resolveLockConfig(options as never, {});
      } catch (e) {
        return e;
      }
    })() as LockConfigError;
    expect(err).toBeInstanceOf(LockConfigError);
    expect(err.field).toBe(field);
  });

  it('suggests the option a typo meant, and names a malformed variable without echoing it', () => {
    expect(() => resolveLockConfig({ tll: 1 } as never, {})).toThrow(/did you mean ttl/);
    expect(() => resolveLockConfig({}, { LOCK_TTL: 'secret-ish' })).toThrow(/LOCK_TTL must be an integer/);
    expect(() => resolveLockConfig({}, { LOCK_TTL: 'secret-ish' })).not.toThrow(/secret-ish/);
  });
});

describe('call options and resources', () => {
  const config = resolveLockConfig({}, {});
  it('defaults extendEvery to ttl/3 and checks ranges', () => {
    expect(callOptions({ ttl: 900 }, config)).toEqual({ ttl: 900, wait: 10_000, extendEvery: 300 });
    expect(() => callOptions({ ttl: 900, extendEvery: 900 }, config)).toThrow(LockConfigError);
  });
  it('refuses empty names and braces (they would break the Cluster hash tag)', () => {
    expect(() => checkResource('')).toThrow(LockConfigError);
    expect(() => checkResource('a{b}')).toThrow(/hash tag/);
    expect(checkResource('order:42')).toBe('order:42');
  });
});

describe('@WithLock resource templates', () => {
  it('renders arguments and their properties', () => {
    const t = compileTemplate('order:{0}:user:{1.id}', 'S.m');
    expect(t.maxArg).toBe(1);
    expect(t.render([42, { id: 'u1' }])).toBe('order:42:user:u1');
  });
  it.each(['', 'order:{x}', 'order:{0', 'order:}0{', 'order:{0.}'])('rejects %j', (template) => {
    expect(() => compileTemplate(template, 'S.m')).toThrow(LockConfigError);
  });
});
