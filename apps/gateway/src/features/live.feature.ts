import type { DynamicModule, Type } from '@nestjs/common';
import { PubSubModule } from '@redwing/pubsub';
import { LiveModule } from '../live/live.module';

/**
 * Modules the live-events feature adds to the gateway (app.module.ts imports this list): `PubSubModule`
 * (global, so `POST /boards/:id/cards` can publish; `PUBSUB_*` variables tune retention) and the `/live`
 * WebSocket endpoint. The socket.io adapter with the origin allowlist and payload limit is installed in
 * bootstrap.ts (`LiveIoAdapter`).
 */
export const liveFeature: Array<Type<unknown> | DynamicModule> = [
  PubSubModule.forRoot({ isGlobal: true }),
  LiveModule,
];
