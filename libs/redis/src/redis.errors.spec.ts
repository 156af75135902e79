import {
  describeRedisError,
  isRedisUnavailable,
  RedisCommandTimeoutError,
  RedisConfigError,
  RedisConnectionLostError,
  RedisPoolTimeoutError,
  RedisScriptError,
  RedisUnavailableError,
} from './redis.errors';

/** An ioredis-shaped error: a name and a message, as the reply parser and the socket layer build them. */
function named(name: string, message: string): Error {
  const err = new Error(message);
  err.name = name;
  return err;
}

describe('isRedisUnavailable: "Redis could not be used" vs "Redis refused this call"', () => {
  it.each<[string, unknown, boolean]>([
    // Redwing's own: not sent, or outcome unknown; all mean Redis is not usable now.
    ['RedisUnavailableError', new RedisUnavailableError('default', 'breaker-open', 'GET'), true],
    ['RedisCommandTimeoutError', new RedisCommandTimeoutError('default', 'GET', 300), true],
    ['RedisConnectionLostError', new RedisConnectionLostError('default', 'INCR'), true],
    // Reply errors that say "cannot serve now".
    ['LOADING', named('ReplyError', 'LOADING Redis is loading the dataset in memory'), true],
    ['CLUSTERDOWN', named('ReplyError', 'CLUSTERDOWN The cluster is down'), true],
    ['MASTERDOWN', named('ReplyError', 'MASTERDOWN Link with MASTER is down'), true],
    ['READONLY', named('ReplyError', "READONLY You can't write against a read only replica."), true],
    ['TRYAGAIN', named('ReplyError', 'TRYAGAIN Multiple keys request during rehashing of slot'), true],
    ['BUSY', named('ReplyError', 'BUSY Redis is busy running a script.'), true],
    // Reply errors that say "this call is wrong": surface them.
    [
      'WRONGTYPE',
      named('ReplyError', 'WRONGTYPE Operation against a key holding the wrong kind of value'),
      false,
    ],
    [
      'NOPERM',
      named('ReplyError', "NOPERM User app has no permissions to run the 'flushall' command"),
      false,
    ],
    ['NOSCRIPT', named('ReplyError', 'NOSCRIPT No matching script.'), false],
    ['OOM', named('ReplyError', 'OOM command not allowed when used memory > maxmemory.'), false],
    ['ERR', named('ReplyError', 'ERR wrong number of arguments'), false],
    ['BUSYKEY (not BUSY)', named('ReplyError', 'BUSYKEY Target key name already exists.'), false],
    ['a ReplyError whose text merely mentions LOADING', named('ReplyError', 'ERR LOADING later'), false],
    // Socket level, as ioredis and node surface them.
    ['Connection is closed.', new Error('Connection is closed.'), true],
    [
      "ioredis's AbortError for a pipeline cut by a node's close (Cluster)",
      named('AbortError', 'Command aborted due to connection close'),
      true,
    ],
    [
      'stream not writeable',
      new Error("Stream isn't writeable and enableOfflineQueue options is false"),
      true,
    ],
    ['ECONNREFUSED', new Error('connect ECONNREFUSED 127.0.0.1:6379'), true],
    ['ECONNRESET', new Error('read ECONNRESET'), true],
    ['EPIPE', new Error('write EPIPE'), true],
    ['ETIMEDOUT', new Error('connect ETIMEDOUT'), true],
    ['EHOSTUNREACH', new Error('connect EHOSTUNREACH 10.0.0.1:6379'), true],
    ['slots refresh', new Error('Failed to refresh slots cache.'), true],
    ['no startup node', new Error('None of startup nodes is available'), true],
    [
      'redirections',
      new Error('Too many Cluster redirections. Last error: Error: Connection is closed.'),
      true,
    ],
    [
      'MaxRetriesPerRequestError',
      named('MaxRetriesPerRequestError', 'Reached the max retries per request limit (which is 1).'),
      true,
    ],
    ['ClusterAllFailedError', named('ClusterAllFailedError', 'Failed to refresh slots cache.'), true],
    // Everything else: a bug or bad input, not an outage.
    ['RedisScriptError', new RedisScriptError('lockRelease', -1, 'not the owner'), false],
    ['RedisConfigError', new RedisConfigError('ttl', 'must be an integer'), false],
    ['RedisPoolTimeoutError', new RedisPoolTimeoutError('default', 1_000, 4), false],
    ['TypeError', new TypeError('x is not a function'), false],
    ['plain Error', new Error('boom'), false],
    ['a string', 'ECONNREFUSED', false],
    ['null', null, false],
    ['undefined', undefined, false],
    ['a number', 42, false],
    ['a duck with fallbackAllowed', { fallbackAllowed: true }, true],
    ['a duck with fallbackAllowed false', { fallbackAllowed: false, message: 'x' }, false],
  ])('%s -> %s', (_what, err, expected) => {
    expect(isRedisUnavailable(err)).toBe(expected);
  });
});

describe('describeRedisError: short, log-safe', () => {
  it.each<[string, unknown, string]>([
    [
      'a Redwing error',
      new RedisUnavailableError('default', 'breaker-open'),
      'RedisUnavailableError: breaker-open',
    ],
    [
      'a reply error',
      named('ReplyError', 'WRONGTYPE Operation against a key'),
      'ReplyError: WRONGTYPE Operation against a key',
    ],
    ['a plain Error', new Error('Connection is closed.'), 'Connection is closed.'],
    [
      'a lost connection',
      new RedisConnectionLostError('c', 'GET'),
      expect.stringMatching(
        /^RedisConnectionLostError: The connection of Redis client "c" closed while "GET"/,
      ) as unknown as string,
    ],
    ['a string', 'boom', 'boom'],
    ['null', null, 'null'],
    ['undefined', undefined, 'undefined'],
  ])('%s', (_what, err, expected) => {
    expect(describeRedisError(err)).toEqual(expected);
  });

  it('caps the text at 200 characters', () => {
    const text = describeRedisError(new Error('x'.repeat(1_000)));
    expect(text).toHaveLength(201);
    expect(text.endsWith('…')).toBe(true);
  });

  it('scrubs the secrets it is given, wherever they appear', () => {
    const err = named('ReplyError', 'WRONGPASS invalid username-password pair for p4ssw0rd-XyZ');
    const text = describeRedisError(err, ['p4ssw0rd-XyZ']);
    expect(text).not.toContain('p4ssw0rd-XyZ');
    expect(text).toMatch(/^ReplyError: WRONGPASS/);
  });
});

describe('the errors themselves', () => {
  it('RedisConnectionLostError: outcome unknown, fallback allowed, with its cause', () => {
    const cause = new Error('Connection is closed.');
    const err = new RedisConnectionLostError('orders', 'INCR', { cause });
    expect(err).toMatchObject({
      name: 'RedisConnectionLostError',
      client: 'orders',
      command: 'INCR',
      fallbackAllowed: true,
      outcomeUnknown: true,
      cause,
    });
    expect(err.message).toMatch(/may or may not have run/);
    expect(new RedisUnavailableError('orders', 'disconnected')).not.toHaveProperty('outcomeUnknown');
  });

  it('RedisScriptError carries the script, the code and its meaning', () => {
    const err = new RedisScriptError('lockRelease', -2, 'the lock expired');
    expect(err).toMatchObject({
      name: 'RedisScriptError',
      script: 'lockRelease',
      code: -2,
      meaning: 'the lock expired',
    });
    expect(err.message).toBe('Redis script "lockRelease" failed with code -2: the lock expired');
  });
});
