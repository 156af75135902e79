import { Admission, CircuitBreaker, type BreakerTransition } from './circuit-breaker';
import type { RedisBreakerOptions } from './redis.interfaces';

const defaults: Required<RedisBreakerOptions> = {
  enabled: true,
  failureRateThreshold: 50,
  slowCallRateThreshold: 80,
  slowCallDuration: 500,
  window: 10_000,
  minimumVolume: 10,
  resetTimeout: 5_000,
  resetJitter: 0,
  maxHalfOpenTime: 2_000,
};

function setup(overrides: Partial<RedisBreakerOptions> = {}, random = () => 0.5) {
  let now = 1_000_000;
  const transitions: BreakerTransition[] = [];
  const breaker = new CircuitBreaker(
    { ...defaults, ...overrides },
    (t) => transitions.push(t),
    () => now,
    random,
  );
  const call = (failed: boolean, duration = 1) => {
    const a = breaker.tryAcquire();
    if (a !== Admission.Rejected) breaker.record(a, failed, duration);
    return a;
  };
  return { breaker, transitions, call, advance: (ms: number) => (now += ms) };
}

describe('CircuitBreaker', () => {
  it('stays closed below the minimum volume even when every call fails', () => {
    const { breaker, call } = setup();
    for (let i = 0; i < 9; i++) call(true);
    expect(breaker.getState()).toBe('closed');
    call(true);
    expect(breaker.getState()).toBe('open');
  });

  it('opens on the failure rate threshold and not below it', () => {
    const { breaker, call } = setup({ minimumVolume: 10 });
    for (let i = 0; i < 6; i++) call(false);
    for (let i = 0; i < 4; i++) call(true); // 40 %
    expect(breaker.getState()).toBe('closed');
    call(true); // 5/11 = 45 %
    expect(breaker.getState()).toBe('closed');
    call(true); // 6/12 = 50 %
    expect(breaker.getState()).toBe('open');
  });

  it('opens on the slow-call rate even when nothing fails', () => {
    const { breaker, call, transitions } = setup({ slowCallRateThreshold: 80, minimumVolume: 5 });
    for (let i = 0; i < 5; i++) call(false, 600);
    expect(breaker.getState()).toBe('open');
    expect(transitions[0].reason).toMatch(/slow-call rate 100%/);
  });

  it('forgets outcomes older than the window', () => {
    const { breaker, call, advance } = setup({ minimumVolume: 10, window: 10_000 });
    for (let i = 0; i < 9; i++) call(true);
    advance(11_000);
    call(true);
    expect(breaker.getState()).toBe('closed');
  });

  it('rejects while open, then lets exactly one probe through after the reset timeout', () => {
    const { breaker, call, advance } = setup();
    for (let i = 0; i < 10; i++) call(true);
    expect(breaker.tryAcquire()).toBe(Admission.Rejected);
    advance(5_000);
    const decisions = Array.from({ length: 100 }, () => breaker.tryAcquire());
    expect(decisions.filter((d) => d === Admission.Probe)).toHaveLength(1);
    expect(decisions.filter((d) => d === Admission.Allowed)).toHaveLength(0);
    expect(breaker.getState()).toBe('half-open');
  });

  it('closes when the probe succeeds and re-opens when it fails', () => {
    const { breaker, call, advance } = setup();
    for (let i = 0; i < 10; i++) call(true);
    advance(5_000);
    expect(call(true)).toBe(Admission.Probe);
    expect(breaker.getState()).toBe('open');
    advance(5_000);
    expect(call(false)).toBe(Admission.Probe);
    expect(breaker.getState()).toBe('closed');
    expect(breaker.tryAcquire()).toBe(Admission.Allowed);
  });

  it('treats a slow probe as a failure', () => {
    const { breaker, call, advance } = setup();
    for (let i = 0; i < 10; i++) call(true);
    advance(5_000);
    call(false, 900);
    expect(breaker.getState()).toBe('open');
  });

  it('re-opens when the probe stays unanswered longer than maxHalfOpenTime', () => {
    const { breaker, call, advance } = setup({ maxHalfOpenTime: 2_000 });
    for (let i = 0; i < 10; i++) call(true);
    advance(5_000);
    expect(breaker.tryAcquire()).toBe(Admission.Probe); // never recorded
    advance(1_999);
    expect(breaker.tryAcquire()).toBe(Admission.Rejected);
    advance(1);
    expect(breaker.tryAcquire()).toBe(Admission.Rejected);
    expect(breaker.getState()).toBe('open');
  });

  it('jitters the reset timeout within ±resetJitter', () => {
    for (const [random, expected] of [
      [0, 4_000],
      [0.999999, 6_000],
    ] as const) {
      const { breaker, call, advance } = setup({ resetJitter: 0.2 }, () => random);
      for (let i = 0; i < 10; i++) call(true);
      advance(expected - 1);
      expect(breaker.tryAcquire()).toBe(Admission.Rejected);
      advance(1);
      expect(breaker.tryAcquire()).toBe(Admission.Probe);
    }
  });

  it('lets the next call probe at once after connectionRestored()', () => {
    const { breaker, call } = setup();
    for (let i = 0; i < 10; i++) call(true);
    breaker.connectionRestored();
    expect(breaker.tryAcquire()).toBe(Admission.Probe);
  });

  it('obeys force-open and force-close until released', () => {
    const { breaker, call, transitions } = setup();
    breaker.forceOpen();
    expect(breaker.tryAcquire()).toBe(Admission.Rejected);
    expect(breaker.wouldAdmit()).toBe(false);
    breaker.forceClose();
    for (let i = 0; i < 50; i++) call(true);
    expect(breaker.getState()).toBe('forced-closed');
    breaker.release();
    expect(breaker.getState()).toBe('closed');
    expect(transitions.map((t) => t.current)).toEqual(['forced-open', 'forced-closed', 'closed']);
    expect(breaker.getCounts()).toEqual({ opened: 1, rejected: 1 });
  });

  it('never opens when disabled', () => {
    const { breaker, call } = setup({ enabled: false });
    for (let i = 0; i < 100; i++) call(true);
    expect(breaker.getState()).toBe('closed');
  });
});
