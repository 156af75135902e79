// The two sides of the fan-out bench, each as two "gateway instances" on one redis-server, with a socket.io
// namespace /live on an HTTP server and one room per channel:
// - ours: Nest apps with RedisClientModule + PubSubModule + the gateway's LiveModule (LiveGateway: one
//   subscribeFrom per channel and instance, broadcast to the room), installed with the gateway's LiveIoAdapter;
//   events published with PubSubService.publishEvent (resumable tier: Redis Stream + pub/sub).
// - peers: plain socket.io servers with @socket.io/redis-adapter (pub/sub) or @socket.io/redis-streams-adapter
//   (a Redis Stream every instance XREADs), events published with io.of('/live').to(room).emit().
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Module, type INestApplication } from '@nestjs/common';
import { ConfigModule } from '@nestjs/config';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { PubSubModule, PubSubService } from '@redwing/pubsub';
import { RedisClientModule } from '@redwing/redis';
import { createAdapter as createPubSubAdapter } from '@socket.io/redis-adapter';
import { createAdapter as createStreamsAdapter } from '@socket.io/redis-streams-adapter';
import { Redis } from 'ioredis';
import { Server } from 'socket.io';
import { LiveIoAdapter } from '../../apps/gateway/src/live/live-io.adapter';
import { LiveModule } from '../../apps/gateway/src/live/live.module';
import { HOST } from '../lib';

/** Two instances of one side: where clients connect, and how an event is published (on instance B). */
export interface FanOutSide {
  label: string;
  bases: [string, string];
  publish(channel: string, data: { t: number; n: number }): Promise<unknown>;
  close(): Promise<void>;
}

export type PeerKind = 'redis-adapter' | 'redis-streams-adapter';

async function oursInstance(url: string): Promise<INestApplication> {
  @Module({
    imports: [
      ConfigModule.forRoot({ isGlobal: true, ignoreEnvFile: true }),
      RedisClientModule.forRoot({ url, useEnv: false }),
      PubSubModule.forRoot({ isGlobal: true, useEnv: false }),
      LiveModule,
    ],
  })
  class FanOutModule {}
  const app = await NestFactory.create(FanOutModule, new ExpressAdapter(), { logger: ['error'] });
  app.useWebSocketAdapter(new LiveIoAdapter(app, { allowedOrigins: [], maxPayload: 16_384 }));
  await app.listen(0, HOST);
  return app;
}

const baseOf = (server: HttpServer) => `http://${HOST}:${(server.address() as AddressInfo).port}`;

export async function ours(url: string): Promise<FanOutSide> {
  const a = await oursInstance(url);
  const b = await oursInstance(url);
  const pubsub = b.get(PubSubService);
  return {
    label: '@redwing/pubsub resumable + LiveGateway',
    bases: [baseOf(a.getHttpServer()), baseOf(b.getHttpServer())],
    publish: (channel, data) => pubsub.publishEvent(channel, { type: 'bench', data }),
    close: async () => {
      await a.close();
      await b.close();
    },
  };
}

interface PeerInstance {
  io: Server;
  http: HttpServer;
  clients: Redis[];
}

async function peerInstance(url: string, kind: PeerKind): Promise<PeerInstance> {
  const http = createServer();
  let clients: Redis[];
  let adapter;
  if (kind === 'redis-adapter') {
    const pub = new Redis(url);
    const sub = pub.duplicate();
    clients = [pub, sub];
    adapter = createPubSubAdapter(pub, sub);
  } else {
    const client = new Redis(url);
    clients = [client];
    adapter = createStreamsAdapter(client);
  }
  const io = new Server(http, { adapter, maxHttpBufferSize: 16_384 });
  io.of('/live').on('connection', (socket) => {
    socket.on('subscribe', async (body: { channel?: string }, ack?: (r: object) => void) => {
      await socket.join(`ch:${body?.channel}`);
      ack?.({ ok: true });
    });
  });
  await new Promise<void>((resolve) => http.listen(0, HOST, resolve));
  return { io, http, clients };
}

export async function peer(url: string, kind: PeerKind): Promise<FanOutSide> {
  const a = await peerInstance(url, kind);
  const b = await peerInstance(url, kind);
  let id = 0;
  return {
    label: `socket.io + @socket.io/${kind}`,
    bases: [baseOf(a.http), baseOf(b.http)],
    publish: async (channel, data) => {
      b.io
        .of('/live')
        .to(`ch:${channel}`)
        .emit('event', { id: String(++id), channel, type: 'bench', data, ts: Date.now() });
    },
    close: async () => {
      for (const i of [a, b]) {
        await new Promise<void>((resolve) => void i.io.close(() => resolve()));
        // QUIT lets the adapter's commands in flight finish instead of rejecting them unhandled.
        for (const c of i.clients) await c.quit().catch(() => c.disconnect());
      }
    },
  };
}
