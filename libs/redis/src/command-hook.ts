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
import { activeBudget, onBudgetSpent, spendBudget, type RedisBudgetScope } from './request-budget';

/**
 * The command hook: every command of a client's shared connection passes through `sendCommand` here.
 * It decides admission (circuit breaker, connection state), parks unsent commands when `maxRetries`
 * allows, times commands out, and settles each command once: breaker, counters, `command` event, tracer,
 * and the typed error (`RedisCommandTimeoutError`, `RedisConnectionLostError`, `RedisUnavailableError`).
 *
 * It never changes an ioredis `Command` it admits: no property added, no `resolve`/`reject` replaced.
 * Mutating the command (a new hidden class per command, a larger property store) cost measurable GC and
 * socket-write time in the benches. It observes the outcome from `command.promise`, and the errors it
 * types are the ones it raises itself, through the command's own `reject`: the timeout (the hook owns the
 * command timeout of its connection, see `Flight`) and the lost connection (it rejects what is in flight
 * before ioredis sees the socket close). Every path, direct calls, pipelines, MULTI and auto-pipelining,
 * therefore sees the typed error in `command.promise` itself.
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

/**
 * The members of an ioredis `Command` the hook uses: all public in ioredis 5 and 6 (`setTimeout` only for
 * handshake commands and health PINGs, which the hook does not track).
 */
interface HookedCommand {
  name: string;
  reject: (err: Error) => void;
  promise: Promise<unknown>;
  setTimeout(ms: number): void;
}

type SendCommand = (command: HookedCommand, stream?: unknown, node?: unknown) => unknown;

/**
 * One admitted command between send and settle, held by the hook (never by the command). `ok`/`fail` are
 * the handlers passed to `command.promise.then`.
 */
class Flight {
  /** Settled, or timed out / lost by the hook (its handler still runs and does the accounting). */
  done = false;
  readonly ok: () => void;
  readonly fail: (err: Error) => void;

  constructor(
    readonly hook: CommandHook,
    readonly command: HookedCommand,
    readonly admission: Admission,
    /** The request budget the command was sent in (request-budget.ts), spent if it times out. */
    readonly budget: RedisBudgetScope | undefined,
    readonly started: number,
    /** `performance.now()` time at which the hook rejects it with `RedisCommandTimeoutError`. */
    readonly deadline: number,
    readonly span: unknown,
  ) {
    this.ok = () => hook.settle(this, null);
    this.fail = (err: Error) => hook.settle(this, err);
  }
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

/** The socket of a standalone connection (`Redis#stream`), watched for its close. */
interface Closable {
  prependOnceListener(event: 'close', listener: () => void): unknown;
}

const MAX_PARKED = 1_000;
/** Settled flights kept before the in-flight list is compacted (amortises the copy). */
const COMPACT_AFTER = 1_024;
/**
 * Cluster only: the command timeout left to ioredis on the node connections, beyond the hook's own. Node
 * connections run commands the hook never sees (handshakes, slot refreshes) that still need a timeout;
 * the hook's own deadline always comes first for the commands it tracks.
 * @internal
 */
export const CLUSTER_NODE_TIMEOUT_MARGIN = 100;

/** Redis error replies that mean "the server cannot serve right now", not "your command is wrong". */
const UNAVAILABLE_REPLY = /^(LOADING|CLUSTERDOWN|MASTERDOWN|READONLY|TRYAGAIN|BUSY)\b/;
/** ioredis's refusal when a command cannot be written and the offline queue is off (standalone and Cluster). */
const NOT_WRITABLE = 'enableOfflineQueue options is false';
/** ioredis's rejection of a command whose connection closed (or ended) before its reply came. */
const CONNECTION_CLOSED = 'Connection is closed.';
/** ioredis's rejection of the unfinished part of a pipeline/MULTI when the connection closed. */
const ABORTED = 'Command aborted due to connection close';
/** ioredis's own command timeout (Cluster node connections, handshake commands). */
const TIMED_OUT = 'Command timed out';

/**
 * Routes every command of one connection through the breaker: refuse at once when the breaker is open or
 * the connection is down, and record outcome and latency. Commands are never queued or re-sent (parking
 * holds only commands that were never written, within their own timeout).
 *
 * The connection must be created without ioredis's `commandTimeout` (standalone) or with it raised by
 * {@link CLUSTER_NODE_TIMEOUT_MARGIN} (Cluster nodes): the hook times commands out itself, from one timer
 * for all of them (see `sweep`), so the typed error is what every caller sees.
 * @internal created by `ManagedRedisClient` for its command connection
 */
export class CommandHook {
  /** While true, commands skip the breaker (the client's health PING). */
  bypass = false;

  private readonly isCluster: boolean;
  private readonly parked: ParkedCommand[] = [];
  /**
   * Admitted commands awaiting their outcome, in deadline order (send order, except a parked command sent
   * late with what was left of its timeout). Entries before `head` are cleared.
   */
  private flights: Array<Flight | null> = [];
  private head = 0;
  /** The one timer of all in-flight deadlines, armed for `timerAt`. */
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;
  /** The socket the hook listens to for its close (standalone). */
  private watched: unknown;
  /** The pipeline (fake stream object) whose admission is `lastAdmission`: a pipeline sends in one loop. */
  private lastPipeline: unknown;
  private lastAdmission = Admission.Rejected;
  private readonly sweep = (): void => this.expire();
  private readonly streamClosed = (): void => this.lose();

  constructor(
    private readonly conn: Redis | Cluster,
    private readonly ctx: CommandHookContext,
  ) {
    this.isCluster = conn instanceof Cluster;
    this.install();
  }

  /** The connection is ready: send parked commands, in order, with what is left of their timeout. */
  onReady(): void {
    this.watchStream();
    for (const p of this.parked.splice(0)) {
      clearTimeout(p.timer);
      const remaining = p.deadline - Date.now();
      if (remaining <= 0 || this.conn.status !== 'ready') {
        this.park(p);
        continue;
      }
      this.track(p.command, p.admission, p.budget, performance.now() + remaining);
      p.send();
    }
  }

  /**
   * The connection closed. Commands written and awaiting their reply can no longer get one (ioredis would
   * hold them until their timeout, then drop them on reconnect): they fail now with
   * `RedisConnectionLostError` and count as availability failures. Normally done already from the socket's
   * own `close` (before ioredis aborts unfinished pipelines with its untyped error); this catches the rest.
   */
  onClose(): void {
    // Cluster: its node connections re-send a closed node's commands themselves (retryDelayOnFailover).
    if (!this.isCluster) this.lose();
  }

  /** Refuse every parked command and stop the timeout timer (the client is closing). */
  refuseParked(reason: RedisUnavailableReason): void {
    for (const p of this.parked.splice(0)) {
      clearTimeout(p.timer);
      this.refuse(p.command, reason);
    }
  }

  /** The client closed: nothing can be in flight any more. */
  dispose(): void {
    this.lose();
    this.lastPipeline = undefined;
  }

  /** Why the breaker refuses: forced open by an operator, or open. */
  rejectReason(): RedisUnavailableReason {
    return this.ctx.breaker.getState() === 'forced-open' ? 'forced-open' : 'breaker-open';
  }

  /**
   * Record the outcome of a tracked command (breaker, counters, event, tracer). Runs once per command,
   * from its promise, whatever settled it.
   * @internal called by `Flight`
   */
  settle(f: Flight, err: Error | null): void {
    const now = performance.now();
    if (!f.done) {
      f.done = true;
      if (this.flights[this.head] === f) this.advance();
    }
    const duration = now - f.started;
    const { counters, breaker, events } = this.ctx;
    let outcome: CommandOutcome = 'ok';
    if (err) {
      outcome = this.classify(err, f.budget);
      if (outcome === 'reply-error') counters.replyErrors++;
      else counters.failures++;
    }
    breaker.record(f.admission, outcome !== 'ok' && outcome !== 'reply-error', duration, now);
    if (events.commandObserved) this.emitCommand(f.command.name, duration, outcome);
    const tracer = events.tracer;
    if (tracer && f.span !== undefined) {
      try {
        tracer.end(f.span, outcome, err ?? undefined);
      } catch {
        // a throwing tracer must not leave the command's promise chain rejected
      }
    }
  }

  // ---------------------------------------------------------------------------------------------

  private install(): void {
    const conn = this.conn;
    const original = conn.sendCommand as unknown as SendCommand;
    const hooked: SendCommand = (command, stream, node) => {
      const status = conn.status;
      if (this.bypass) {
        // Health PINGs skip the breaker.
        if (!this.isCluster) command.setTimeout(this.ctx.commandTimeout);
        return original.call(conn, command, stream, node);
      }
      if (status === 'connect' || status === 'wait') {
        // Handshake commands (AUTH, HELLO, SELECT, the ready check) run before 'ready'; not tracked, so they
        // keep ioredis's own timer.
        if (!this.isCluster) command.setTimeout(this.ctx.commandTimeout);
        this.wrapUnavailable(command);
        return original.call(conn, command, stream, node);
      }
      // One Redis wait per request: once a command of this request timed out or lost its connection, the
      // rest are refused before the breaker is asked (they must not take a half-open probe slot).
      const budget = activeBudget();
      if (budget?.spent) {
        this.refuse(command, 'request-budget');
        return command.promise;
      }
      const admission = this.admit(stream);
      if (admission === Admission.Rejected) {
        this.refuse(command, this.rejectReason());
        return command.promise;
      }
      this.ctx.counters.commands++;
      // A socket that ended is not writable while the status still says ready (until ioredis handles its
      // close): ioredis would refuse the command with its untyped error, so the hook does it first.
      if (status !== 'ready' || (!this.isCluster && !this.writable())) {
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
      this.track(command, admission, budget, performance.now() + this.ctx.commandTimeout);
      try {
        return original.call(conn, command, stream, node);
      } catch (err) {
        // Thrown before anything was written: settle it now (as an error), not at its deadline.
        command.reject(err as Error);
        throw err;
      }
    };
    conn.sendCommand = hooked as unknown as typeof conn.sendCommand;
  }

  /** Standalone: whether ioredis would write a command now (its `stream` is open for writing). */
  private writable(): boolean {
    const stream = (this.conn as unknown as { stream?: { writable?: boolean } | null }).stream;
    return stream?.writable === true;
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
   * half-open breaker never lets half a transaction through. ioredis sends a pipeline's commands in one
   * synchronous loop with the same `stream` object, so remembering the last one is enough (and marks
   * nothing on ioredis's object).
   */
  private admit(stream: unknown): Admission {
    const breaker = this.ctx.breaker;
    if (stream && typeof stream === 'object') {
      if (stream === this.lastPipeline) {
        const known = this.lastAdmission;
        return known === Admission.Probe ? Admission.Allowed : known;
      }
      const decided = breaker.tryAcquire();
      this.lastPipeline = stream;
      this.lastAdmission = decided;
      return decided;
    }
    return breaker.tryAcquire();
  }

  private refuse(command: HookedCommand, reason: RedisUnavailableReason): void {
    this.ctx.counters.rejected++;
    if (this.ctx.events.commandObserved) this.emitCommand(command.name, 0, 'unavailable');
    command.reject(new RedisUnavailableError(this.ctx.client, reason, command.name));
  }

  /**
   * Handshake-window commands (not tracked, and rare: only while the connection is being set up): map
   * ioredis's "not writable" error to the typed one.
   */
  private wrapUnavailable(command: HookedCommand): void {
    const reject = command.reject;
    command.reject = (err: Error) =>
      reject(
        err.message.includes(NOT_WRITABLE)
          ? new RedisUnavailableError(this.ctx.client, 'disconnected', command.name)
          : err,
      );
  }

  /** Start observing an admitted command: its outcome from its promise, its deadline from the hook's timer. */
  private track(
    command: HookedCommand,
    admission: Admission,
    budget: RedisBudgetScope | undefined,
    deadline: number,
  ): void {
    const tracer = this.ctx.events.tracer;
    const f = new Flight(
      this,
      command,
      admission,
      budget,
      performance.now(),
      deadline,
      tracer ? tracer.start(this.ctx.client, command.name) : undefined,
    );
    // The derived promise never rejects: `settle` does not throw.
    void command.promise.then(f.ok, f.fail);
    if (budget !== undefined) onBudgetSpent(budget, this.cutScope);
    const flights = this.flights;
    const last = flights.length - 1;
    if (last >= this.head && flights[last]!.deadline > deadline) {
      // A parked command sent late: keep the list in deadline order (rare, so a linear search).
      let i = last;
      while (i > this.head && flights[i - 1]!.deadline > deadline) i--;
      flights.splice(i, 0, f);
    } else {
      flights.push(f);
    }
    if (deadline < this.timerAt) this.arm(deadline);
  }

  private arm(deadline: number): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timerAt = deadline;
    this.timer = setTimeout(this.sweep, Math.max(1, Math.ceil(deadline - performance.now())));
    // Pending commands do not keep the process alive by their timeout alone (their socket does).
    this.timer.unref();
  }

  /** Drop settled flights from the head of the list; compact it now and then. */
  private advance(): void {
    const flights = this.flights;
    let head = this.head;
    while (head < flights.length && flights[head]!.done) flights[head++] = null;
    if (head === flights.length) {
      flights.length = 0;
      head = 0;
    } else if (head >= COMPACT_AFTER && head * 2 >= flights.length) {
      flights.copyWithin(0, head);
      flights.length -= head;
      head = 0;
    }
    this.head = head;
  }

  /** The timer fired: reject every command past its deadline with the typed timeout, re-arm for the next. */
  private expire(): void {
    this.timer = undefined;
    this.timerAt = Infinity;
    const now = performance.now();
    const flights = this.flights;
    let head = this.head;
    for (; head < flights.length; head++) {
      const f = flights[head]!;
      if (!f.done) {
        if (f.deadline > now) break;
        f.done = true;
        const { client, commandTimeout } = this.ctx;
        f.command.reject(new RedisCommandTimeoutError(client, f.command.name, commandTimeout));
      }
      flights[head] = null;
    }
    this.head = head;
    this.advance();
    if (this.head < flights.length) this.arm(flights[this.head]!.deadline);
  }

  /**
   * A request's budget was spent (one of its commands timed out or lost its connection): its other commands
   * still in flight on this connection stop waiting now, with the typed timeout (they may or may not run), so
   * the request waits for Redis once in total.
   */
  private readonly cutScope = (scope: RedisBudgetScope): void => {
    const flights = this.flights;
    const now = performance.now();
    for (let i = this.head; i < flights.length; i++) {
      const f = flights[i];
      if (f === null || f === undefined || f.done || f.budget !== scope) continue;
      f.done = true;
      f.command.reject(
        new RedisCommandTimeoutError(this.ctx.client, f.command.name, Math.round(now - f.started)),
      );
    }
    this.advance();
  };

  /** Reject everything in flight with `RedisConnectionLostError` (standalone: the socket closed). */
  private lose(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Infinity;
    const flights = this.flights;
    const from = this.head;
    const to = flights.length;
    this.flights = [];
    this.head = 0;
    for (let i = from; i < to; i++) {
      const f = flights[i]!;
      if (f.done) continue;
      f.done = true;
      f.command.reject(new RedisConnectionLostError(this.ctx.client, f.command.name));
    }
  }

  /**
   * Standalone: listen, first, for the close of the connection's current socket, so commands in flight
   * fail with the typed error before ioredis rejects some of them with its own (unfinished pipelines).
   * Cluster node connections retry a closed node's commands themselves, so Cluster is left alone.
   */
  private watchStream(): void {
    if (this.isCluster) return;
    const stream = (this.conn as unknown as { stream?: Closable }).stream;
    if (!stream || stream === this.watched || typeof stream.prependOnceListener !== 'function') return;
    this.watched = stream;
    stream.prependOnceListener('close', this.streamClosed);
  }

  private classify(err: Error, budget: RedisBudgetScope | undefined): CommandOutcome {
    if (err instanceof RedisCommandTimeoutError) return this.timedOut(budget);
    if (err instanceof RedisConnectionLostError) return this.lost(budget);
    const message = err?.message ?? '';
    if (err?.name === 'ReplyError') return UNAVAILABLE_REPLY.test(message) ? 'error' : 'reply-error';
    // Errors ioredis raises itself: Cluster node connections, and anything the hook did not pre-empt.
    if (message === TIMED_OUT) return this.timedOut(budget);
    if (message === CONNECTION_CLOSED || message === ABORTED) return this.lost(budget);
    if (message.includes(NOT_WRITABLE)) return 'unavailable';
    return 'error';
  }

  private timedOut(budget: RedisBudgetScope | undefined): CommandOutcome {
    this.ctx.counters.timeouts++;
    spendBudget(budget, 'timeout');
    return 'timeout';
  }

  private lost(budget: RedisBudgetScope | undefined): CommandOutcome {
    spendBudget(budget, 'connection-lost');
    return 'error';
  }

  private emitCommand(command: string, durationMs: number, outcome: CommandOutcome): void {
    this.ctx.events.emit('command', { client: this.ctx.client, command, durationMs, outcome });
  }
}
