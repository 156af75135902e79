/** Defaults of `LockModule.forRoot()` (durations in ms). */
export const LOCK_DEFAULTS = {
  /** Lease length of a lock. */
  ttl: 30_000,
  /** How long `acquire()` waits for a busy lock before `LockBusyError`. */
  wait: 10_000,
  /** Longest pause between two attempts of a waiter that heard no release message (jittered). */
  retryInterval: 250,
  /** Share of the TTL redlock subtracts for clock drift between this host and Redis. */
  driftFactor: 0.01,
  /** Redis clients (names of `RedisClientModule` clients) that vote on every lock. */
  clients: ['default'] as readonly string[],
} as const;

/** Limits of the options (ms unless noted). */
export const LOCK_LIMITS = {
  minTtl: 50,
  maxTtl: 3_600_000,
  maxWait: 3_600_000,
  minRetryInterval: 5,
  maxRetryInterval: 60_000,
  maxClients: 9,
  maxResourceLength: 512,
} as const;

/** The lib segment of every key: `<prefix>:lock:…`. */
export const LOCK_KEY_SEGMENT = 'lock';
/** How long a resource's fence counter outlives its last acquisition (its floor is Redis time anyway). */
export const FENCE_COUNTER_TTL = 86_400_000;
/**
 * Most tokens reserved per grant for local hand-overs: a process passes a contended lock to its own next
 * waiters at most this many times in a row without a round trip, then goes through Redis again (where
 * waiting processes are seen and woken), which bounds how long another process can be kept waiting.
 */
export const LOCAL_HANDOFF_BLOCK = 16;
