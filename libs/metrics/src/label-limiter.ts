/** The label value that stands for every value past a {@link LabelLimiter}'s bound. */
export const OTHER = 'other';

/**
 * Keeps a label's set of values bounded: the first `max` distinct values pass through, later ones become
 * `other`. Route templates and command names are bounded by the code already; this is the guarantee for
 * the day they are not (a wildcard route, a script per tenant).
 */
export class LabelLimiter {
  private readonly seen = new Set<string>();

  constructor(private readonly max: number) {}

  /** `value` while fewer than `max` values were seen (or it is one of them), else `other`. */
  get(value: string): string {
    if (this.seen.has(value)) return value;
    if (this.seen.size >= this.max) return OTHER;
    this.seen.add(value);
    return value;
  }
}
