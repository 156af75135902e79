import type { MetricsRegistry } from '@redwing/redis';
import type { SessionRejectReason } from './session.interfaces';

/** Why a session was destroyed (label of `redwing_session_destroyed_total`). */
export type DestroyReason = 'logout' | 'logout_all' | 'regenerate';

interface Incrementable {
  inc(value?: number): void;
}

const REJECT_REASONS: readonly SessionRejectReason[] = [
  'malformed',
  'unknown',
  'expired',
  'tamper',
  'unknown_key',
];
const DESTROY_REASONS: readonly DestroyReason[] = ['logout', 'logout_all', 'regenerate'];
const OPERATIONS = ['load', 'create', 'update', 'destroy', 'touch', 'list', 'destroyAll'] as const;

/**
 * The session lib's Prometheus metrics (when `MetricsModule` provides `REDWING_METRICS`), all with bounded
 * labels and never an id, cookie or token:
 * - `redwing_session_created_total`
 * - `redwing_session_destroyed_total{reason}`: logout, logout_all, regenerate
 * - `redwing_session_expired_total`: sessions found past their deadline by a read, and index entries of
 *   expired sessions removed by the index cleanup
 * - `redwing_session_rejected_total{reason}`: presented ids refused — malformed, unknown (logged out or
 *   expired and already removed by Redis), expired, tamper (decryption failed), unknown_key (retired key)
 * - `redwing_session_unavailable_total{operation}`: operations refused because Redis was unavailable
 * - `redwing_session_refused_subscriptions_current`: 1 while Redis refuses the revocation channel's
 *   SUBSCRIBE (an ACL without that channel): this instance does not hear other instances' logouts; the
 *   SUBSCRIBE is sent again until accepted
 */
export class SessionMetrics {
  private readonly created?: Incrementable;
  private readonly expiredCounter?: Incrementable;
  private readonly rejectedBy: Partial<Record<SessionRejectReason, Incrementable>> = {};
  private readonly destroyedBy: Partial<Record<DestroyReason, Incrementable>> = {};
  private readonly unavailableBy: Partial<Record<string, Incrementable>> = {};

  constructor(metrics: MetricsRegistry | undefined, revocationsRefused: () => boolean = () => false) {
    if (!metrics) return;
    metrics.gauge({
      name: 'redwing_session_refused_subscriptions_current',
      help: "1 while Redis refuses the revocation channel's SUBSCRIBE (ACL): other instances' logouts are not heard",
      collect() {
        this.set(revocationsRefused() ? 1 : 0);
      },
    });
    this.created = metrics.counter({ name: 'redwing_session_created_total', help: 'Sessions created' });
    this.expiredCounter = metrics.counter({
      name: 'redwing_session_expired_total',
      help: 'Sessions found expired by a read or removed from a user index as expired',
    });
    const rejected = metrics.counter({
      name: 'redwing_session_rejected_total',
      help: 'Presented session ids refused, by reason (malformed, unknown, expired, tamper, unknown_key)',
      labelNames: ['reason'],
    });
    for (const r of REJECT_REASONS) this.rejectedBy[r] = rejected.labels(r);
    const destroyed = metrics.counter({
      name: 'redwing_session_destroyed_total',
      help: 'Sessions destroyed, by reason (logout, logout_all, regenerate)',
      labelNames: ['reason'],
    });
    for (const r of DESTROY_REASONS) this.destroyedBy[r] = destroyed.labels(r);
    const unavailable = metrics.counter({
      name: 'redwing_session_unavailable_total',
      help: 'Session operations refused (503) because Redis was unavailable, by operation',
      labelNames: ['operation'],
    });
    for (const op of OPERATIONS) this.unavailableBy[op] = unavailable.labels(op);
  }

  create(): void {
    this.created?.inc();
  }

  expired(count = 1): void {
    if (count > 0) this.expiredCounter?.inc(count);
  }

  rejected(reason: SessionRejectReason): void {
    this.rejectedBy[reason]?.inc();
  }

  destroyed(reason: DestroyReason, count = 1): void {
    if (count > 0) this.destroyedBy[reason]?.inc(count);
  }

  unavailable(operation: string): void {
    this.unavailableBy[operation]?.inc();
  }
}
