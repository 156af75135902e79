/** Median, min and max of a measurement over rounds. */
export interface Spread {
  median: number;
  min: number;
  max: number;
}

/** Median of the finite values (NaN when there are none). */
export function median(values: number[]): number {
  const s = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** Median, min and max of the finite values. */
export function spread(values: number[]): Spread {
  const finite = values.filter((v) => Number.isFinite(v));
  return { median: median(finite), min: Math.min(...finite), max: Math.max(...finite) };
}

/** Rounded to two decimals, as the JSON lines print CPU and latency figures. */
export function round2(n: number): number {
  return Math.round(n * 100) / 100;
}
