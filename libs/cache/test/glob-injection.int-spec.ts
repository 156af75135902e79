// RELIABILITY.md, "glob injection": deleteByPrefix and invalidateTags with prefixes and tags made of the
// characters that mean something to a Redis glob or to Cluster hash tags (* ? [ ] \ : { } ^ -). Every case
// checks that exactly the intended keys were deleted (0 foreign keys, inside or outside the namespace), and
// at the end INFO commandstats must show SCAN calls and no KEYS call at all. 10,000 cases per property on
// a standalone server; the Cluster run repeats a shorter version.
import fc from 'fast-check';
import type { Cluster, Redis } from 'ioredis';
import { RedisCluster, RedisServer, stopAll } from '../../../test/harness';
import { bootCache, type CacheInstance, type Topology } from './helpers';

afterAll(() => stopAll());

const HOSTILE = ['*', '?', '[', ']', '\\', ':', '{', '}', '^', '-', '!', 'a', 'b'];
const hostile = (min: number) =>
  fc.string({ unit: fc.constantFrom(...HOSTILE), minLength: min, maxLength: 8 });
const NS = 'redwing:cache:';

/** Strings a naive glob built from `s` would match although they do not start with `s`. */
function lookalikes(s: string): string[] {
  const out = new Set<string>();
  for (let i = 0; i < s.length; i++) {
    if ('*?[]\\^-!'.includes(s[i])) {
      out.add(s.slice(0, i) + 'zz' + s.slice(i + 1));
      out.add(s.slice(0, i) + s.slice(i + 1));
    }
  }
  out.add(s.slice(0, -1) + 'Q');
  out.add('Q' + s);
  return [...out].filter((x) => !x.startsWith(s));
}

async function commandCount(nodes: Redis[], name: string): Promise<number> {
  let n = 0;
  for (const node of nodes) {
    const m = /calls=(\d+)/.exec(
      (await node.info('commandstats')).split('\n').find((l) => l.startsWith(`cmdstat_${name}:`)) ?? '',
    );
    n += m ? Number(m[1]) : 0;
  }
  return n;
}

describe.each([
  ['standalone', 10_000],
  ['cluster', 300],
] as const)('glob injection on %s', (kind, runs) => {
  let server: RedisServer | undefined;
  let cluster: RedisCluster | undefined;
  let topology: Topology;
  let inst: CacheInstance;
  let raw: Redis | Cluster;
  let nodes: Redis[];

  beforeAll(async () => {
    if (kind === 'standalone') {
      server = await RedisServer.start();
      topology = { url: server.url() };
    } else {
      cluster = await RedisCluster.start();
      topology = { cluster: cluster.seeds() };
    }
    inst = await bootCache(topology, { invalidation: false, l1: false, profiles: { other: {} } });
    raw = inst.manager.get().command;
    nodes = kind === 'cluster' ? (raw as Cluster).nodes('master') : [raw as Redis];
    for (const node of nodes) await node.config('RESETSTAT');
  }, 60_000);

  afterAll(async () => {
    await inst?.module.close();
    await server?.stop();
    await cluster?.stop();
  });

  const flush = () => Promise.all(nodes.map((n) => n.flushdb()));
  const existing = async (keys: string[]) => {
    const found = await Promise.all(keys.map((k) => raw.exists(k)));
    return keys.filter((_, i) => found[i] === 1);
  };

  it(`deleteByPrefix deletes exactly the keys with that literal prefix (${runs} cases)`, async () => {
    let cases = 0;
    let deletedTotal = 0;
    await fc.assert(
      fc.asyncProperty(
        hostile(0),
        fc.array(hostile(0), { minLength: 1, maxLength: 4 }),
        async (prefix, suffixes) => {
          cases++;
          await flush();
          const intended = [...new Set(suffixes.map((s) => prefix + s))].filter((k) => k.length > 0);
          const foreignInProfile = [
            ...new Set([...lookalikes(prefix), ...suffixes.map((s) => `x${s}`)]),
          ].filter((k) => k.length > 0 && !k.startsWith(prefix));
          await inst.cache.mset([...intended, ...foreignInProfile].map((key) => ({ key, value: key })));
          await inst.cache.mset(
            intended.map((key) => ({ key, value: 'other profile' })),
            { profile: 'other' },
          );
          const outside = [
            `redwing:session:${prefix}`,
            `${prefix}`,
            `${NS}~tag:${prefix}`,
            `other:${NS}default:${prefix}`,
          ].filter((k) => k.length > 0);
          await Promise.all(outside.map((k) => raw.set(k, 'foreign')));

          const deleted = await inst.cache.deleteByPrefix(prefix);

          expect(deleted).toBe(intended.length);
          deletedTotal += deleted;
          expect(await existing(intended.map((k) => `${NS}default:${k}`))).toEqual([]);
          const foreign = [
            ...foreignInProfile.map((k) => `${NS}default:${k}`),
            ...intended.map((k) => `${NS}other:${k}`),
            ...outside,
          ];
          expect(await existing(foreign)).toEqual(foreign);
        },
      ),
      { numRuns: runs, seed: 4242 },
    );
    expect(cases).toBe(runs);
    expect(deletedTotal).toBeGreaterThan(runs);
    expect(await commandCount(nodes, 'scan')).toBeGreaterThanOrEqual(runs);
    expect(await commandCount(nodes, 'keys')).toBe(0);
  }, 300_000);

  it(`invalidateTags deletes exactly the entries carrying that tag (${runs} cases)`, async () => {
    let cases = 0;
    await fc.assert(
      fc.asyncProperty(
        hostile(1),
        fc.array(hostile(1), { minLength: 1, maxLength: 4 }),
        async (tag, keys) => {
          cases++;
          await flush();
          const others = lookalikes(tag).filter((t) => t !== tag && t.length > 0);
          const tagged = [...new Set(keys.map((k) => `t:${k}`))];
          const untagged = [...new Set(keys.map((k) => `u:${k}`))];
          await inst.cache.mset(
            tagged.map((key, i) => ({ key, value: i, tags: [tag, ...others.slice(0, 1)] })),
          );
          await inst.cache.mset(
            untagged.map((key, i) => ({ key, value: i, tags: others.length ? others : ['unrelated'] })),
          );
          await inst.cache.set(`t:${keys[0]}`, 'tagged in other profile', { profile: 'other', tags: [tag] });
          await raw.set(`redwing:session:${tag}`, 'foreign');

          const deleted = await inst.cache.invalidateTags([tag]);

          expect(deleted).toBe(tagged.length + 1);
          expect(
            await existing([...tagged.map((k) => `${NS}default:${k}`), `${NS}other:t:${keys[0]}`]),
          ).toEqual([]);
          const foreign = [...untagged.map((k) => `${NS}default:${k}`), `redwing:session:${tag}`];
          expect(await existing(foreign)).toEqual(foreign);
        },
      ),
      { numRuns: runs, seed: 4343 },
    );
    expect(cases).toBe(runs);
    expect(await commandCount(nodes, 'keys')).toBe(0);
  }, 300_000);
});
