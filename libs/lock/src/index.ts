export { LockModule } from './lock.module';
export { LockService, type LockScope } from './lock.service';
export { LeaderElection } from './leader-election';
export { WithLock } from './with-lock.decorator';
export { LockBusyError, LockConfigError, LockLostError, LockUnavailableError } from './lock.errors';
export { resolveLockConfig, LOCK_ENV_VARS, type ResolvedLockConfig } from './lock.config';
export { acquireLockScript } from './scripts/acquire-lock.script';
export { releaseLockScript } from './scripts/release-lock.script';
export { extendLockScript } from './scripts/extend-lock.script';
export { handoffLockScript } from './scripts/handoff-lock.script';
export { ratchetFenceScript } from './scripts/ratchet-fence.script';
export { writeFencedScript } from './scripts/write-fenced.script';
export type {
  AcquireOptions,
  FencedValue,
  FencedWriteResult,
  LeaderElectionOptions,
  LeaderLease,
  LeaderRevokeReason,
  LeaderRole,
  Lock,
  LockModuleOptions,
  UsingOptions,
  WithLockOptions,
} from './lock.interfaces';
