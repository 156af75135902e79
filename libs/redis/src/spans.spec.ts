import { runInSpan, setSpanRunner, type SpanRunner } from './spans';

describe('runInSpan', () => {
  afterEach(() => setSpanRunner(null));

  it('is a plain call with a span that records nothing while no runner is installed', async () => {
    const result = runInSpan('cache.lookup', { a: 1 }, (span) => {
      expect(span.setAttribute('redwing.cache.result', 'hit')).toBeUndefined();
      return 42;
    });
    expect(result).toBe(42);
    await expect(runInSpan('x', undefined, async () => 'async')).resolves.toBe('async');
    expect(() =>
      runInSpan('x', undefined, () => {
        throw new Error('boom');
      }),
    ).toThrow('boom');
  });

  it('goes through the installed runner, with its name, attributes and span, until it is removed', () => {
    const seen: Array<{ name: string; attributes: unknown; set: Array<[string, unknown]> }> = [];
    const runner: SpanRunner = (name, attributes, fn) => {
      const entry = { name, attributes, set: [] as Array<[string, unknown]> };
      seen.push(entry);
      return fn({ setAttribute: (k, v) => entry.set.push([k, v]) });
    };
    setSpanRunner(runner);
    expect(
      runInSpan(
        'ratelimit.decision',
        { 'redwing.ratelimit.limits': 2 },
        (s) => (s.setAttribute('o', 'ok'), 7),
      ),
    ).toBe(7);
    expect(seen).toEqual([
      { name: 'ratelimit.decision', attributes: { 'redwing.ratelimit.limits': 2 }, set: [['o', 'ok']] },
    ]);
    setSpanRunner(null);
    runInSpan('after', undefined, () => undefined);
    expect(seen).toHaveLength(1);
  });

  it('hands its options (links, root, kind) to the runner, and reads nothing of them without one', () => {
    const seen: unknown[] = [];
    setSpanRunner((_name, _attributes, fn, options) => {
      seen.push(options);
      return fn({ setAttribute: () => undefined });
    });
    const options = { links: ['00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'], root: true };
    runInSpan('pubsub.deliver', undefined, () => undefined, { ...options, kind: 'consumer' });
    runInSpan('plain', undefined, () => undefined);
    expect(seen).toEqual([{ ...options, kind: 'consumer' }, undefined]);
    setSpanRunner(null);
    const untouchable = new Proxy(
      {},
      {
        get: () => {
          throw new Error('options read while no runner is installed');
        },
      },
    );
    expect(runInSpan('off', undefined, () => 'plain call', untouchable)).toBe('plain call');
  });

  it('is shared by every copy of the package in the process (a registered global symbol)', () => {
    const names: string[] = [];
    (globalThis as Record<symbol, SpanRunner>)[Symbol.for('redwing.spanRunner')] = (name, _a, fn) => {
      names.push(name);
      return fn({ setAttribute: () => undefined });
    };
    runInSpan('from-another-copy', undefined, () => undefined);
    expect(names).toEqual(['from-another-copy']);
  });
});
