// Job progress over the live endpoint (issue 12 item 7): two real gateways on one redis-server, A (fastify,
// JOB_QUEUE_ROLE=producer) and B (express, worker). `POST /boards/:id/export` on B; anonymous sockets on A and
// on B subscribe `job:<id>` right after and receive `job.progress` events and `job.completed` with the result
// (published by B's processor as resumable events, delivered through Redis to both instances).
import type { Job } from '@redwing/job-queue';
import { PubSubService } from '@redwing/pubsub';
import type { Socket } from 'socket.io-client';
import { stopAll, waitFor } from '../../../test/harness';
import { collectEvents, liveClient, opened, subscribe } from './live-client';
import { BoardExportProcessor, type BoardExportData } from '../src/jobs/board-export.processor';
import { postJson, startJobGateways, stopTwoGateways, type TwoGateways } from './support';

interface JobEvent {
  id: string;
  channel: string;
  type: string;
  data: {
    jobId: string;
    progress?: number;
    error?: string;
    final?: boolean;
    result?: { boardId: number; url: string; steps: number };
  };
  ts: number;
}

const sockets: Socket[] = [];
const collect = (socket: Socket): JobEvent[] => collectEvents<JobEvent>(socket);

async function connect(base: string): Promise<Socket> {
  const socket = liveClient(base, sockets);
  await opened(socket);
  return socket;
}

describe('job progress on /live across two gateways', () => {
  let gw: TwoGateways;

  beforeAll(async () => {
    gw = await startJobGateways({ LIVE_ALLOWED_ORIGINS: undefined });
    await waitFor('both pub/sub subscribers up', 10_000, () =>
      [gw.a, gw.b].every((g) => g.app.get(PubSubService).getState() === 'up'),
    );
  }, 60_000);

  afterAll(async () => {
    for (const s of sockets) s.disconnect();
    await stopTwoGateways(gw ?? {});
    await stopAll();
  });

  it('POST /boards/7/export on B → sockets on A (fastify) and B (express) follow job:<id> to job.completed', async () => {
    const [onA, onB] = await Promise.all([connect(gw.a.base), connect(gw.b.base)]);
    const gotA = collect(onA);
    const gotB = collect(onB);
    const res = await postJson(gw.b.base, '/boards/7/export', {});
    expect(res.status).toBe(202);
    const { jobId } = JSON.parse(res.text) as { jobId: string };
    const channel = `job:${jobId}`;
    // A asks from the start of the job's stream ("0-0"): nothing published before its subscribe is missed.
    // B subscribes live only: it may miss the first step if the worker is faster than the subscribe.
    expect(await subscribe(onA, channel, '0-0')).toEqual({ ok: true });
    expect(await subscribe(onB, channel)).toEqual({ ok: true });

    const completed = (got: JobEvent[]) => got.some((e) => e.type === 'job.completed');
    await waitFor('job.completed on both sockets', 20_000, () => completed(gotA) && completed(gotB));

    expect(gotA.map((e) => e.type)).toEqual([...Array(5).fill('job.progress'), 'job.completed']);
    expect(gotA.map((e) => e.data.progress).slice(0, 5)).toEqual([20, 40, 60, 80, 100]);
    for (const got of [gotA, gotB]) {
      const last = got[got.length - 1]!;
      expect(last).toMatchObject({
        channel,
        type: 'job.completed',
        data: { jobId, result: { boardId: 7, steps: 5, url: expect.stringContaining(`board-7-${jobId}`) } },
      });
      expect(got.every((e) => e.channel === channel && e.data.jobId === jobId)).toBe(true);
      const progress = got.filter((e) => e.type === 'job.progress').map((e) => e.data.progress!);
      expect(progress.length).toBeGreaterThanOrEqual(1);
      expect(progress[progress.length - 1]).toBe(100);
      expect([...progress].sort((x, y) => x - y)).toEqual(progress);
    }
    // Same ids in the same order on both instances (one stream), for the events B saw.
    expect(gotA.slice(-gotB.length).map((e) => e.id)).toEqual(gotB.map((e) => e.id));
  }, 30_000);

  it('a failed attempt is published as job.failed (attempt, final) and reaches a socket on A', async () => {
    const socket = await connect(gw.a.base);
    const got = collect(socket);
    const jobId = '999999';
    expect(await subscribe(socket, `job:${jobId}`)).toEqual({ ok: true });
    // B's real processor, run directly with an aborted signal (as at shutdown after the drain timeout).
    const job = {
      id: jobId,
      data: { boardId: 7, stepMs: 1 },
      updateProgress: async () => undefined,
    } as unknown as Job<BoardExportData>;
    const ctx = { attempt: 3, isFinalAttempt: true, signal: AbortSignal.abort() };
    await expect(gw.b.app.get(BoardExportProcessor).export(job, ctx)).rejects.toThrow('interrupted');
    await waitFor('job.failed on A', 10_000, () => got.length > 0);
    expect(got).toEqual([
      expect.objectContaining({
        channel: `job:${jobId}`,
        type: 'job.failed',
        data: { jobId, error: expect.stringContaining('interrupted'), attempt: 3, final: true },
      }),
    ]);
  }, 15_000);

  it('job:<id> accepts only export job ids (sequential or idem-<32 base64url>)', async () => {
    const socket = await connect(gw.a.base);
    expect(await subscribe(socket, `job:idem-${'a'.repeat(32)}`)).toEqual({ ok: true });
    for (const bad of [
      'job:',
      'job:0',
      'job:01',
      'job:abc',
      'job:1:2',
      'job:idem-short',
      `job:${'9'.repeat(16)}`,
    ]) {
      expect(await subscribe(socket, bad)).toEqual({ ok: false, error: 'invalid-channel' });
    }
  }, 15_000);
});
