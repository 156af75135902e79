/** Injection token of the resolved, validated configuration (internal). */
export const METRICS_CONFIG = Symbol('redwing.metrics.config');

/** Instrumentation scope of every span this lib creates. */
export const TRACER_NAME = '@redwing/metrics';
