import { compareIds, ResumableCursor, type CursorHost, type Envelope } from './resumable-cursor';
import type { ResumableDelivery } from './pubsub.interfaces';
import type { ReadEventsReply } from './scripts/read-events.script';

const env = (n: number): Envelope => ({ o: 'x', c: 'board:1', t: 'seq', d: { n }, ts: 1 });
const entry = (id: string, n: number): [string, string[]] => [id, ['e', JSON.stringify(env(n))]];

/** A host whose stream is `stream` (id → n); reads answer from it like the read-events script. */
function host(stream: Array<[string, number]>, status = 0) {
  const reads: string[] = [];
  const h: CursorHost = {
    readBatch: 2,
    maxPending: 100,
    retryDelay: 10,
    read: async (_c, after): Promise<ReadEventsReply> => {
      reads.push(after);
      const newest = stream.length ? stream[stream.length - 1][0] : '0-0';
      if (status) return [status, [], newest];
      if (after === '$') return [0, [], newest];
      const rest = stream.filter(([id]) => after === '0-0' || compareIds(id, after) > 0).slice(0, 2);
      return [0, rest.map(([id, n]) => entry(id, n)), newest];
    },
    delivered: () => undefined,
    resynced: () => undefined,
    failed: () => undefined,
  };
  return { h, reads };
}

function collect() {
  const got: ResumableDelivery<{ n: number }>[] = [];
  return {
    got,
    handler: (d: ResumableDelivery<{ n: number }>) => got.push(d),
    numbers: () => got.flatMap((d) => (d.kind === 'event' ? [d.event.data.n] : [])),
  };
}

describe('compareIds', () => {
  it('orders by time, then sequence, numerically', () => {
    expect(compareIds('9-0', '10-0')).toBeLessThan(0);
    expect(compareIds('10-2', '10-10')).toBeLessThan(0);
    expect(compareIds('1700000000001-0', '1700000000000-5')).toBeGreaterThan(0);
    expect(compareIds('5-5', '5-5')).toBe(0);
    expect(compareIds('0-0', '1-0')).toBeLessThan(0);
  });
});

describe('ResumableCursor', () => {
  it('catches up in pages, then delivers live events once and in order', async () => {
    const stream: Array<[string, number]> = [
      ['1-0', 1],
      ['2-0', 2],
      ['3-0', 3],
    ];
    const { h } = host(stream);
    const c = collect();
    const cursor = new ResumableCursor<{ n: number }>('board:1', '0-0', c.handler, h);
    await cursor.catchUp();
    expect(c.numbers()).toEqual([1, 2, 3]);
    cursor.onLive('3-0', '2-0', env(3)); // duplicate
    cursor.onLive('4-0', '3-0', env(4));
    expect(c.numbers()).toEqual([1, 2, 3, 4]);
    expect(cursor.position).toBe('4-0');
  });

  it('reads the gap from the stream when a live event’s predecessor was not delivered', async () => {
    const stream: Array<[string, number]> = [['1-0', 1]];
    const { h, reads } = host(stream);
    const c = collect();
    const cursor = new ResumableCursor<{ n: number }>('board:1', '$', c.handler, h);
    await cursor.catchUp();
    expect(cursor.position).toBe('1-0');
    stream.push(['2-0', 2], ['3-0', 3]);
    cursor.onLive('3-0', '2-0', env(3)); // 2 was missed live
    await new Promise((r) => setTimeout(r, 10));
    expect(c.numbers()).toEqual([2, 3]);
    expect(reads).toEqual(['$', '1-0', '3-0']);
  });

  it('holds live events during a catch-up and delivers them after, without duplicates', async () => {
    const stream: Array<[string, number]> = [
      ['1-0', 1],
      ['2-0', 2],
    ];
    const { h } = host(stream);
    const c = collect();
    const cursor = new ResumableCursor<{ n: number }>('board:1', '0-0', c.handler, h);
    const running = cursor.catchUp();
    cursor.onLive('2-0', '1-0', env(2));
    stream.push(['3-0', 3]);
    cursor.onLive('3-0', '2-0', env(3));
    await running;
    expect(c.numbers()).toEqual([1, 2, 3]);
  });

  it('a catch-up asked for while one runs waits for it: an event published once `ready` resolved is delivered', async () => {
    // A reconnect's catch-up (first) starts a "from now" cursor's read, which Redis answers late; the
    // subscription's own catch-up (ready) must not resolve before the position is known, or an event
    // published right after it would already be behind the position the late read sets.
    const stream: Array<[string, number]> = [['1-0', 1]];
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const { h } = host(stream);
    const read = h.read;
    const gated: CursorHost = { ...h, read: async (c, after) => (await gate, read(c, after)) };
    const c = collect();
    const cursor = new ResumableCursor<{ n: number }>('board:1', '$', c.handler, gated);
    const first = cursor.catchUp();
    let readyResolved = false;
    const ready = cursor.catchUp().then(() => (readyResolved = true));
    await new Promise((r) => setImmediate(r));
    expect(readyResolved).toBe(false);
    open();
    await Promise.all([first, ready]);
    expect(cursor.position).toBe('1-0');
    // Published after `ready`: delivered.
    stream.push(['2-0', 2]);
    cursor.onLive('2-0', '1-0', env(2));
    expect(c.numbers()).toEqual([2]);
  });

  it('turns an unreadable gap into one resync-required delivery and continues after the newest id', async () => {
    const { h } = host([['7-0', 7]], 2);
    const c = collect();
    const cursor = new ResumableCursor<{ n: number }>('board:1', '1-0', c.handler, h);
    await cursor.catchUp();
    expect(c.got).toEqual([
      { kind: 'resync-required', channel: 'board:1', reason: 'trimmed', resumeAfter: '7-0' },
    ]);
    cursor.onLive('8-0', '7-0', env(8));
    expect(c.numbers()).toEqual([8]);
  });
});
