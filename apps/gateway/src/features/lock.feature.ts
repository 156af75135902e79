import type { DynamicModule, Type } from '@nestjs/common';
import { LockModule } from '@redwing/lock';
import { ArchiveModule } from '../archive/archive.module';
import { LeaderModule } from '../leader/leader.module';

/**
 * Modules the lock feature adds to the gateway (app.module.ts imports this list): `LockModule` (global,
 * configured from `LOCK_*` by the lib itself), `POST /boards/:id/archive` (locked, fenced work) and the
 * leader-only housekeeping task with `GET /leader`.
 */
export const lockFeature: Array<Type<unknown> | DynamicModule> = [
  LockModule.forRoot({ isGlobal: true }),
  ArchiveModule,
  LeaderModule,
];
