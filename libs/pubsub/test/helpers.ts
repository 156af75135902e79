import { Test, type TestingModule } from '@nestjs/testing';
import {
  PubSubModule,
  PubSubService,
  type PubSubModuleOptions,
  type ResumableDelivery,
} from '@redwing/pubsub';
import { RedisClientManager, RedisClientModule, type RedisClientModuleOptions } from '@redwing/redis';
import { fastRedisOptions } from '../../../test/harness';

export { sleep, waitFor } from '../../../test/harness';

/** One app instance: Redis + PubSubModule, initialised (its subscriber connecting). */
export interface Instance {
  module: TestingModule;
  pubsub: PubSubService;
  manager: RedisClientManager;
}

export async function boot(
  redis: Partial<RedisClientModuleOptions>,
  options: PubSubModuleOptions = {},
): Promise<Instance> {
  const module = await Test.createTestingModule({
    imports: [
      RedisClientModule.forRoot({ ...fastRedisOptions({ commandTimeout: 1_000 }), ...redis }),
      PubSubModule.forRoot({ useEnv: false, ...options }),
    ],
  }).compile();
  await module.init();
  const manager = module.get(RedisClientManager);
  await manager.get().waitUntilReady(10_000);
  const pubsub = module.get(PubSubService);
  return { module, pubsub, manager };
}

/** Collects what a subscribeFrom handler receives. */
export function collector() {
  const deliveries: ResumableDelivery<{ n: number }>[] = [];
  return {
    deliveries,
    handler: (d: ResumableDelivery<{ n: number }>) => void deliveries.push(d),
    numbers: () => deliveries.flatMap((d) => (d.kind === 'event' ? [d.event.data.n] : [])),
    resyncs: () => deliveries.filter((d) => d.kind === 'resync-required'),
    lastId: () => {
      for (let i = deliveries.length - 1; i >= 0; i--) {
        const d = deliveries[i];
        if (d.kind === 'event') return d.event.id;
      }
      return undefined;
    },
  };
}

/** 1..n */
export const range = (n: number) => Array.from({ length: n }, (_, i) => i + 1);
