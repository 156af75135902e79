/** Settings every scenario shares; flags win over environment variables, which win over defaults. */
export interface BenchSettings {
  /** Measured rounds per side. `--rounds` / BENCH_ROUNDS. @default 5 */
  rounds: number;
  /** Measured time per round and side, ms. `--ms` / BENCH_MS. @default 3000 */
  ms: number;
  /** Warm-up per side before round 1, ms. `--warmup` / BENCH_WARMUP_MS. @default 1000 */
  warmupMs: number;
  /** Only the variants whose name contains one of these. `--variant a,b` / BENCH_VARIANT. */
  variants: string[];
  /** Exit 1 when a ratio misses its goal. `--strict` / BENCH_STRICT=1. */
  strict: boolean;
}

const LIMITS = { rounds: [1, 50], ms: [100, 60_000], warmupMs: [0, 30_000] } as const;

function flag(argv: string[], name: string): string | undefined {
  const i = argv.indexOf(`--${name}`);
  if (i >= 0) return argv[i + 1];
  const eq = argv.find((a) => a.startsWith(`--${name}=`));
  return eq?.slice(name.length + 3);
}

function int(name: keyof typeof LIMITS, raw: string | undefined, fallback: number): number {
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  const [min, max] = LIMITS[name];
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new Error(`bench: ${name} must be an integer in [${min}, ${max}], got "${raw}"`);
  }
  return n;
}

export function benchSettings(argv: string[] = process.argv.slice(2), env = process.env): BenchSettings {
  const variants = (flag(argv, 'variant') ?? env.BENCH_VARIANT ?? '')
    .split(',')
    .map((v) => v.trim())
    .filter(Boolean);
  return {
    rounds: int('rounds', flag(argv, 'rounds') ?? env.BENCH_ROUNDS, 5),
    ms: int('ms', flag(argv, 'ms') ?? env.BENCH_MS, 3_000),
    warmupMs: int('warmupMs', flag(argv, 'warmup') ?? env.BENCH_WARMUP_MS, 1_000),
    variants,
    strict: argv.includes('--strict') || env.BENCH_STRICT === '1',
  };
}

/**
 * Whether `variant` runs: no `--variant` filter, a filter equal to its name, or a filter that is a
 * substring of its name and equals no variant name (so `--variant get-c100` picks only `get-c100`).
 */
export function variantSelected(
  settings: BenchSettings,
  variant: string,
  all: readonly string[] = [],
): boolean {
  if (settings.variants.length === 0) return true;
  return settings.variants.some((v) => v === variant || (!all.includes(v) && variant.includes(v)));
}

/**
 * The variants that run, in order: those marked `diagnostic` only when named exactly with `--variant`, the
 * others as variantSelected() says.
 */
export function selectedVariants<V extends { name: string; diagnostic?: boolean }>(
  settings: BenchSettings,
  variants: readonly V[],
): V[] {
  const names = variants.map((v) => v.name);
  return variants.filter((v) =>
    v.diagnostic ? settings.variants.includes(v.name) : variantSelected(settings, v.name, names),
  );
}
