import { performance } from 'node:perf_hooks';
import { Cluster, type Redis } from 'ioredis';
import { Admission, type CircuitBreaker } from './circuit-breaker';
import {
  RedisCommandTimeoutError,
  RedisConnectionLostError,
  RedisUnavailableError,
  type RedisUnavailableReason,
} from './redis.errors';
import type { CommandOutcome, RedisEvents } from './redis-events';
import { activeBudget, spendBudget, type RedisBudgetScope } from './request-budget';

/**
 * The command hook: every command of a client's shared connection passes through `sendCommand` here.
 * It decides admission (circuit breaker, connection state), parks unsent commands when `maxRetries`
 * allows, and settles each command once: breaker, counters, `command` event, tracer, and the typed
 * error (`RedisCommandTimeoutError`, `RedisConnectionLostError`, `RedisUnavailableError`).
 */

/** Per-client command counters (see `ManagedRedisClient.stats()`). */
export interface ClientCounters {
  /** Commands admitted and sent (or attempted). */
  commands: number;
  /** Commands that failed for an availability reason (timeout, lost connection, LOADING…). */
  failures: number;
  timeouts: number;
  /** Error replies (WRONGTYPE, NOPERM, …): the command reached Redis and was refused. */
  replyErrors: number;
  /** Commands refused before sending: breaker open or connection down. */
  rejected: number;
  /** Times a lib reported serving from its fallback. */
  fallbacks: number;
  /** Times the command connection was reopened because it stayed open but answered no health check. */
  stuckReconnects: number;
}

/**
 * What the hook needs from its client: a narrow view, so the hook owns the in-flight and parked
 * commands and nothing else.
 * @internal
 */
export interface CommandHookContext {
  /** Client name, for errors and events. */
  readonly client: string;
  readonly breaker: CircuitBreaker;
  readonly events: RedisEvents;
  /** The client's counters, updated in place. */
  readonly counters: ClientCounters;
  /** In ms. */
  readonly commandTimeout: number;
  /** Reconnects an unsent command may wait for (`0`: refuse at once). */
  readonly maxRetries: number;
}

/** The fields of an ioredis `Command` the hook touches. */
interface HookedCommand {
  name: string;
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
  promise: Promise<unknown>;
  [ADMITTED]?: Admission | typeof BYPASS;
}

type SendCommand = (command: HookedCommand, stream?: unknown, node?: unknown) => unknown;

/** What `track()` keeps for one command between send and settle. */
interface Tracking {
  hook: CommandHook;
  admission: Admission;
  started: number;
  span: unknown;
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
  /** The request budget the command was sent in (request-budget.ts), spent if it times out. */
  budget: RedisBudgetScope | undefined;
}

interface TrackedCommand extends HookedCommand {
  [TRACKING]: Tracking;
}

interface ParkedCommand {
  command: HookedCommand;
  admission: Admission;
  budget: RedisBudgetScope | undefined;
  attempts: number;
  send: () => unknown;
  deadline: number;
  timer: NodeJS.Timeout;
}

/** ioredis internals read on close: the commands written and awaiting a reply. */
interface CommandQueues {
  prevCommandQueue?: { shift(): { command: HookedCommand } | undefined } | null;
}

const TRACKING = Symbol('redwing.tracking');
const ADMITTED = Symbol('redwing.admitted');
const PIPELINE_ADMISSION = Symbol('redwing.pipelineAdmission');
const BYPASS = -1;
const MAX_PARKED = 1_000;

/** Redis error replies that mean "the server cannot serve right now", not "your command is wrong". */
const UNAVAILABLE_REPLY = /^(LOADING|CLUSTERDOWN|MASTERDOWN|READONLY|TRYAGAIN|BUSY)\b/;
/** ioredis's refusal when a command cannot be written and the offline queue is off (standalone and Cluster). */
const NOT_WRITABLE = 'enableOfflineQueue options is false';
/** ioredis's rejection of a command whose connection closed (or ended) before its reply came. */
const CONNECTION_CLOSED = 'Connection is closed.';
/** ioredis's rejection of the unfinished part of a pipeline/MULTI when the connection closed. */
const ABORTED = 'Command aborted due to connection close';

/**
 * Shared settle functions for standalone connections, which always call `command.resolve()` /
 * `command.reject()` as methods: no closure per command on the hot path. (Cluster detaches `reject` for
 * its redirection logic, so Cluster commands get closures instead; see `track()`.)
 */
function resolveTracked(this: TrackedCommand, value: unknown): void {
  const t = this[TRACKING];
  t.hook.settle(this, t, null);
  t.resolve(value);
}

function rejectTracked(this: TrackedCommand, err: Error): void {
  const t = this[TRACKING];
  t.reject(t.hook.settle(this, t, err));
}

/**
 * Routes every command of one connection through the breaker: refuse at once when the breaker is open or
 * the connection is down, and record outcome and latency. Commands are never queued or re-sent (parking
 * holds only commands that were never written, within their own timeout).
 * @internal created by `ManagedRedisClient` for its command connection
 */
export class CommandHook {
  /** While true, commands skip the breaker (the client's health PING). */
  bypass = false;

  private readonly isCluster: boolean;
  private readonly parked: ParkedCommand[] = [];

  constructor(
    private readonly conn: Redis | Cluster,
    private readonly ctx: CommandHookContext,
  ) {
    this.isCluster = conn instanceof Cluster;
    this.install();
  }

  /** The connection is ready: send parked commands, in order, with what is left of their timeout. */
  onReady(): void {
    for (const p of this.parked.splice(0)) {
      clearTimeout(p.timer);
      const remaining = p.deadline - Date.now();
      if (remaining <= 0 || this.conn.status !== 'ready') {
        this.park(p);
        continue;
      }
      (p.command as unknown as { setTimeout(ms: number): void }).setTimeout(remaining);
      this.track(p.command, p.admission, p.budget);
      p.send();
    }
  }

  /**
   * The connection closed: commands written and awaiting their reply can no longer get one (ioredis
   * would hold them until their timeout, then drop them on reconnect). Reject them now; they settle
   * with `RedisConnectionLostError` and count as availability failures.
   */
  onClose(): void {
    if (this.isCluster) return; // Cluster node connections reject their own commands (see classify)
    // Set by ioredis only when the connection was ready: handshake commands of a failed connect are left
    // to ioredis, which handles their failure itself.
    const queue = (this.conn as unknown as CommandQueues).prevCommandQueue;
    for (let item = queue?.shift(); item; item = queue?.shift()) {
      item.command.reject(new Error(CONNECTION_CLOSED));
    }
  }

  /** Refuse every parked command (the client is closing). */
  refuseParked(reason: RedisUnavailableReason): void {
    for (const p of this.parked.splice(0)) {
      clearTimeout(p.timer);
      this.refuse(p.command, reason);
    }
  }

  /** Why the breaker refuses: forced open by an operator, or open. */
  rejectReason(): RedisUnavailableReason {
    return this.ctx.breaker.getState() === 'forced-open' ? 'forced-open' : 'breaker-open';
  }

  /**
   * Record the outcome of a tracked command (breaker, counters, event, tracer) and return the error to
   * reject with (typed for timeouts, lost connections and "not writable").
   * @internal called by the settle functions
   */
  settle(command: HookedCommand, t: Tracking, err: Error | null): Error {
    const now = performance.now();
    const duration = now - t.started;
    const { counters, breaker, events } = this.ctx;
    let outcome: CommandOutcome = 'ok';
    let mapped = err as Error;
    if (err) {
      [mapped, outcome] = this.classify(err, command.name);
      if (outcome === 'reply-error') counters.replyErrors++;
      else counters.failures++;
      if (t.budget !== undefined) {
        if (outcome === 'timeout') spendBudget(t.budget, 'timeout');
        else if (mapped instanceof RedisConnectionLostError) spendBudget(t.budget, 'connection-lost');
      }
    }
    breaker.record(t.admission, outcome !== 'ok' && outcome !== 'reply-error', duration, now);
    if (events.commandObserved) this.emitCommand(command.name, duration, outcome);
    const tracer = events.tracer;
    if (tracer && t.span !== undefined) tracer.end(t.span, outcome, err ? mapped : undefined);
    return mapped;
  }

  // ---------------------------------------------------------------------------------------------

  private install(): void {
    const conn = this.conn;
    const original = conn.sendCommand as unknown as SendCommand;
    const hooked: SendCommand = (command, stream, node) => {
      if (this.bypass || (this.isCluster && command[ADMITTED] !== undefined)) {
        // Health PINGs skip the breaker; a cluster redirection re-sends an admitted command.
        if (this.isCluster) command[ADMITTED] ??= BYPASS;
        return original.call(conn, command, stream, node);
      }
      const status = conn.status;
      if (status === 'connect' || status === 'wait') {
        // Handshake commands (AUTH, HELLO, SELECT, the ready check) run before 'ready'.
        command[ADMITTED] = BYPASS;
        this.wrapUnavailable(command);
        return original.call(conn, command, stream, node);
      }
      // One Redis wait per request: once a command of this request timed out or lost its connection, the
      // rest are refused before the breaker is asked (they must not take a half-open probe slot).
      const budget = activeBudget();
      if (budget?.spent) {
        if (this.isCluster) command[ADMITTED] = BYPASS;
        this.refuse(command, 'request-budget');
        return command.promise;
      }
      const admission = this.admit(stream);
      if (this.isCluster) command[ADMITTED] = admission;
      if (admission === Admission.Rejected) {
        this.refuse(command, this.rejectReason());
        return command.promise;
      }
      this.ctx.counters.commands++;
      if (status !== 'ready') {
        if (this.ctx.maxRetries > 0 && status !== 'end') {
          this.park({
            command,
            admission,
            budget,
            attempts: 0,
            send: () => original.call(conn, command, stream, node),
          });
          return command.promise;
        }
        this.ctx.breaker.record(admission, true, 0);
        this.ctx.counters.failures++;
        this.refuse(command, status === 'end' ? 'closed' : 'disconnected');
        return command.promise;
      }
      this.track(command, admission, budget);
      return original.call(conn, command, stream, node);
    };
    conn.sendCommand = hooked as unknown as typeof conn.sendCommand;
  }

  /**
   * Hold a command that could not be sent (connection down) until the connection is ready again, within
   * its `commandTimeout`. On the deadline it is removed before it is rejected, so it can never be sent
   * late. At most `MAX_PARKED` commands wait; more are refused at once.
   */
  private park(entry: Omit<ParkedCommand, 'deadline' | 'timer'>): void {
    const { breaker, counters, commandTimeout, maxRetries } = this.ctx;
    if (this.parked.length >= MAX_PARKED || entry.attempts >= maxRetries) {
      breaker.record(entry.admission, true, 0);
      counters.failures++;
      this.refuse(entry.command, 'disconnected');
      return;
    }
    const parked = entry as ParkedCommand;
    parked.attempts++;
    parked.deadline ??= Date.now() + commandTimeout;
    parked.timer = setTimeout(() => {
      const i = this.parked.indexOf(parked);
      if (i >= 0) this.parked.splice(i, 1);
      breaker.record(parked.admission, true, commandTimeout);
      counters.failures++;
      // It waited its whole timeout for a reconnect: the request has had its Redis wait.
      spendBudget(parked.budget, 'disconnected');
      this.refuse(parked.command, 'disconnected');
    }, parked.deadline - Date.now());
    this.parked.push(parked);
  }

  /**
   * One admission per pipeline: every command of a MULTI/pipeline shares the decision of the first, so a
   * half-open breaker never lets half a transaction through.
   */
  private admit(stream: unknown): Admission {
    const breaker = this.ctx.breaker;
    if (stream && typeof stream === 'object') {
      const s = stream as { [PIPELINE_ADMISSION]?: Admission };
      const known = s[PIPELINE_ADMISSION];
      if (known !== undefined) return known === Admission.Probe ? Admission.Allowed : known;
      const decided = breaker.tryAcquire();
      s[PIPELINE_ADMISSION] = decided;
      return decided;
    }
    return breaker.tryAcquire();
  }

  private refuse(command: HookedCommand, reason: RedisUnavailableReason): void {
    this.ctx.counters.rejected++;
    if (this.ctx.events.commandObserved) this.emitCommand(command.name, 0, 'unavailable');
    command.reject(new RedisUnavailableError(this.ctx.client, reason, command.name));
  }

  /** Handshake-window commands: map ioredis's "not writable" error to the typed one. */
  private wrapUnavailable(command: HookedCommand): void {
    const reject = command.reject;
    command.reject = (err: Error) =>
      reject(
        err.message.includes(NOT_WRITABLE)
          ? new RedisUnavailableError(this.ctx.client, 'disconnected', command.name)
          : err,
      );
  }

  private track(command: HookedCommand, admission: Admission, budget: RedisBudgetScope | undefined): void {
    const tracer = this.ctx.events.tracer;
    const t: Tracking = {
      hook: this,
      admission,
      budget,
      started: performance.now(),
      span: tracer ? tracer.start(this.ctx.client, command.name) : undefined,
      resolve: command.resolve,
      reject: command.reject,
    };
    if (!this.isCluster) {
      (command as TrackedCommand)[TRACKING] = t;
      command.resolve = resolveTracked;
      command.reject = rejectTracked;
      return;
    }
    command.resolve = (value: unknown) => {
      this.settle(command, t, null);
      t.resolve(value);
    };
    command.reject = (err: Error) => t.reject(this.settle(command, t, err));
  }

  private classify(err: Error, command: string): [Error, CommandOutcome] {
    const message = err?.message ?? '';
    const client = this.ctx.client;
    if (message === 'Command timed out') {
      this.ctx.counters.timeouts++;
      return [new RedisCommandTimeoutError(client, command, this.ctx.commandTimeout), 'timeout'];
    }
    if (message.includes(NOT_WRITABLE)) {
      return [new RedisUnavailableError(client, 'disconnected', command), 'unavailable'];
    }
    if (message === CONNECTION_CLOSED || message === ABORTED) {
      return [new RedisConnectionLostError(client, command, { cause: err }), 'error'];
    }
    if (err?.name === 'ReplyError') {
      return [err, UNAVAILABLE_REPLY.test(message) ? 'error' : 'reply-error'];
    }
    return [err, 'error'];
  }

  private emitCommand(command: string, durationMs: number, outcome: CommandOutcome): void {
    this.ctx.events.emit('command', { client: this.ctx.client, command, durationMs, outcome });
  }
}
