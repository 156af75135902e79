/**
 * Option checking shared by every Redwing lib: field checks, unknown keys with one "did you mean",
 * environment layering. A lib creates one {@link OptionChecker} with its own error factory, so errors are
 * the lib's typed `<Lib>ConfigError` while `@redwing/redis` imports no lib.
 * Messages name the field, say what is allowed and never echo a rejected string (it may be a secret).
 */

/** Builds the calling lib's config error, e.g. `(field, message) => new LockConfigError(field, message)`. */
export type ConfigErrorFactory = (field: string, message: string) => Error;

/** Range of a number option; `unit` is shown in messages (`ms`, `bytes`, `%`). */
export interface NumberRange {
  min: number;
  max: number;
  unit?: string;
}

/** How one environment variable maps to an option. */
export interface EnvOption {
  /** Variable name, e.g. `LOCK_TTL`. */
  name: string;
  /** Dotted option path it sets, e.g. `ttl` or `retry.count`. */
  field: string;
  kind: 'int' | 'number' | 'bool' | 'string' | 'list';
  /** For `int`/`number`: the allowed range, checked and named in the message (the value is not echoed). */
  range?: NumberRange;
  /**
   * A parser for what the kinds do not cover (URLs, `host:port` lists, file paths): it gets the trimmed
   * text and the raw text, and throws the lib's config error (from `OptionChecker.fail`) naming the variable.
   * Its return value replaces the parsed `kind`.
   */
  parse?: (text: string, raw: string) => unknown;
  /** For the README table. */
  description?: string;
  /** For the README table. */
  default?: string;
}

/** Plain object of options (what `object()` returns). */
export type OptionBag = Record<string, unknown>;

// eslint-disable-next-line no-control-regex -- control characters are what it finds
const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;
const IDENTIFIER = /^[A-Za-z_$][\w$-]*$/;
const TRUE_WORDS = ['true', '1', 'yes', 'on'];
const FALSE_WORDS = ['false', '0', 'no', 'off'];

/**
 * Checks option values and throws through the lib's error factory. Every method returns `undefined` for
 * an `undefined` value (apply the default with `??`), so it composes with layered options.
 * @example
 * const check = new OptionChecker((field, message) => new LockConfigError(field, message));
 * const o = check.object(options, 'options');
 * check.keys(o, ['ttl', 'wait'], '');
 * const ttl = check.int(o.ttl, 'ttl', { min: 10, max: 3_600_000, unit: 'ms' }) ?? 30_000;
 */
export class OptionChecker {
  constructor(private readonly makeError: ConfigErrorFactory) {}

  /** The lib's config error for `field`: for checks this class does not cover. */
  fail(field: string, message: string): Error {
    return this.makeError(field, message);
  }

  /** A plain object (not null, an array or a Buffer). */
  object(value: unknown, field: string, example = 'an object of options'): OptionBag {
    if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Uint8Array) {
      throw this.fail(field, `must be ${example}; got ${describeValue(value)}`);
    }
    return value as OptionBag;
  }

  /** `object()` that lets `undefined` through. */
  optionalObject(value: unknown, field: string, example?: string): OptionBag | undefined {
    return value === undefined ? undefined : this.object(value, field, example);
  }

  /**
   * Refuse keys not in `known`, with one "did you mean" (see {@link closestName}). `prefix` is the path of
   * `obj` with a trailing dot (`''` at the top). `seeAlso` completes "remove it (see …)".
   */
  keys(obj: object, known: readonly string[], prefix: string, seeAlso = 'the lib README'): void {
    for (const key of Object.keys(obj)) {
      if (known.includes(key)) continue;
      const field = IDENTIFIER.test(key)
        ? prefix + key
        : `${prefix.replace(/\.$/, '')}[${JSON.stringify(sanitize(key).slice(0, 40))}]`;
      const hint = closestName(key, known);
      throw this.fail(
        field,
        `is an unknown option${hint ? `; did you mean ${hint}?` : `; remove it (see the options in ${seeAlso})`}`,
      );
    }
  }

  /** An integer within `range`. */
  int(value: unknown, field: string, range: NumberRange): number | undefined {
    if (value === undefined) return undefined;
    // Out of range says "an integer from … to …" too: the whole rule in one message.
    if (
      typeof value !== 'number' ||
      !Number.isInteger(value) ||
      !(value >= range.min && value <= range.max)
    ) {
      throw this.fail(field, `must be an integer${rangeText(range)}; got ${describeValue(value)}`);
    }
    return value;
  }

  /** A finite number within `range`. */
  number(value: unknown, field: string, range: NumberRange): number | undefined {
    if (value === undefined) return undefined;
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      throw this.fail(field, `must be a number${rangeText(range)}; got ${describeValue(value)}`);
    }
    return this.inRange(value, field, range);
  }

  /** A duration in milliseconds: an integer from `min` (default 1) to `max` (default one day). */
  duration(value: unknown, field: string, range: Partial<NumberRange> = {}): number | undefined {
    return this.int(value, field, { min: range.min ?? 1, max: range.max ?? 86_400_000, unit: 'ms' });
  }

  bool(value: unknown, field: string): boolean | undefined {
    if (value === undefined) return undefined;
    if (typeof value !== 'boolean')
      throw this.fail(field, `must be true or false; got ${describeValue(value)}`);
    return value;
  }

  /** A string; with `pattern`, `hint` says in words what the pattern allows. */
  string(
    value: unknown,
    field: string,
    rule: { pattern?: RegExp; hint?: string; nonEmpty?: boolean } = {},
  ): string | undefined {
    if (value === undefined) return undefined;
    if (typeof value !== 'string') throw this.fail(field, `must be a string; got ${describeValue(value)}`);
    if (rule.nonEmpty && value === '') throw this.fail(field, 'must not be empty');
    if (rule.pattern && !rule.pattern.test(value)) {
      throw this.fail(field, `must be ${rule.hint ?? `a string matching ${String(rule.pattern)}`}`);
    }
    return value;
  }

  /** One of `allowed`. */
  oneOf<T extends string>(value: unknown, field: string, allowed: readonly T[]): T | undefined {
    if (value === undefined) return undefined;
    if (typeof value !== 'string' || !allowed.includes(value as T)) {
      // The rejected string is not shown (it may be a secret pasted into the wrong field); a hint is.
      const shown = typeof value === 'string' ? 'another string' : describeValue(value);
      const hint = typeof value === 'string' ? closestName(value, allowed) : undefined;
      throw this.fail(
        field,
        `must be one of ${allowed.map((a) => `"${a}"`).join(', ')}; got ${shown}${hint ? ` (did you mean "${hint}"?)` : ''}`,
      );
    }
    return value as T;
  }

  /** A function. */
  fn<F extends (...args: never[]) => unknown>(
    value: unknown,
    field: string,
    shape = 'a function',
  ): F | undefined {
    if (value === undefined) return undefined;
    if (typeof value !== 'function') throw this.fail(field, `must be ${shape}; got ${describeValue(value)}`);
    return value as F;
  }

  /** An array whose items each pass `item` (called with `field[i]`). */
  array<T>(value: unknown, field: string, item: (value: unknown, field: string) => T): T[] | undefined {
    if (value === undefined) return undefined;
    if (!Array.isArray(value)) throw this.fail(field, `must be an array; got ${describeValue(value)}`);
    return value.map((v, i) => item(v, `${field}[${i}]`));
  }

  /**
   * Options from environment variables: a nested object with each set variable parsed by its `kind` (or
   * its `parse`) and placed at its dotted `field`. Unset and empty variables are skipped; a malformed one
   * throws naming the variable (never echoing its value). Values are trimmed before parsing.
   * @example
   * const fromEnv = check.env(process.env, [{ name: 'LOCK_TTL', field: 'ttl', kind: 'int', range: { min: 10, max: 3_600_000, unit: 'ms' } }]);
   * const options = layerOptions(DEFAULTS, fromEnv, explicit);
   * @throws the lib's config error naming the variable
   */
  env(env: Readonly<Record<string, unknown>>, options: readonly EnvOption[]): OptionBag {
    const out: OptionBag = {};
    for (const spec of options) {
      const raw = env[spec.name];
      if (raw === undefined) continue;
      if (typeof raw !== 'string') throw this.fail(spec.name, `must be a string; got ${describeValue(raw)}`);
      if (raw.trim() === '') continue;
      const value = spec.parse ? spec.parse(raw.trim(), raw) : this.parseEnv(spec, raw.trim());
      setPath(out, spec.field, value);
    }
    return out;
  }

  private parseEnv(spec: EnvOption, text: string): unknown {
    switch (spec.kind) {
      case 'int':
      case 'number': {
        const n = Number(text);
        const what = `${spec.kind === 'int' ? 'an integer' : 'a number'}${spec.range ? rangeText(spec.range) : ''}`;
        if (!/^[-+]?\d+(\.\d+)?$/.test(text) || (spec.kind === 'int' && !Number.isInteger(n))) {
          throw this.fail(spec.name, `must be ${what}`);
        }
        if (spec.range && !(n >= spec.range.min && n <= spec.range.max))
          throw this.fail(spec.name, `must be ${what}`);
        return n;
      }
      case 'bool': {
        const lower = text.toLowerCase();
        if (TRUE_WORDS.includes(lower)) return true;
        if (FALSE_WORDS.includes(lower)) return false;
        throw this.fail(
          spec.name,
          'must be true or false (written true/false, 1/0 or yes/no; on/off also work)',
        );
      }
      case 'list':
        return text
          .split(',')
          .map((part) => part.trim())
          .filter((part) => part !== '');
      case 'string':
        return text;
    }
  }

  private inRange(value: number, field: string, range: NumberRange): number {
    if (!(value >= range.min && value <= range.max)) {
      throw this.fail(field, `must be${rangeText(range)}; got ${value}`);
    }
    return value;
  }
}

/**
 * Deep-merge option layers, later layers winning key by key (plain objects merge; arrays, functions and
 * class instances are replaced whole). Typical order: defaults, environment, explicit options.
 */
export function layerOptions<T extends object>(
  ...layers: ReadonlyArray<Partial<T> | OptionBag | undefined>
): T {
  const out: OptionBag = {};
  for (const layer of layers) if (layer) mergeInto(out, layer as OptionBag);
  return out as T;
}

/**
 * The candidate a mistyped name most likely meant: case-insensitive equal, or within an edit distance of
 * 1 (names up to 4 characters), 2 (up to 8) or 3 (longer). `undefined` when none is that close.
 */
export function closestName(name: string, candidates: readonly string[]): string | undefined {
  if (name.length > 64) return undefined;
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const d = candidate.toLowerCase() === name.toLowerCase() ? 0 : editDistance(name, candidate);
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  const allowed = name.length <= 4 ? 1 : name.length <= 8 ? 2 : 3;
  return bestDistance <= allowed ? best : undefined;
}

/** Describes a rejected value without echoing strings (they may be secrets). */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (Array.isArray(value)) return 'an array';
  switch (typeof value) {
    case 'number':
    case 'boolean':
      return String(value);
    case 'string':
      return 'a string';
    case 'object':
      return 'an object';
    default:
      return `a ${typeof value}`;
  }
}

/** User text for a message: control characters replaced, at most 80 characters, quoted. */
export function quoteValue(text: string): string {
  const clean = sanitize(text);
  return JSON.stringify(clean.length > 80 ? `${clean.slice(0, 77)}...` : clean);
}

function sanitize(text: string): string {
  return String(text).replace(CONTROL_CHARS, '?').slice(0, 120);
}

function rangeText(range: NumberRange): string {
  const unit = range.unit ? ` ${range.unit}` : '';
  return ` from ${range.min} to ${range.max}${unit}`;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length];
}

function setPath(target: OptionBag, path: string, value: unknown): void {
  const keys = path.split('.');
  let node = target;
  for (const key of keys.slice(0, -1)) node = (node[key] ??= {}) as OptionBag;
  node[keys[keys.length - 1]] = value;
}

function isPlain(value: unknown): value is OptionBag {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

function mergeInto(target: OptionBag, source: OptionBag): void {
  for (const [key, value] of Object.entries(source)) {
    if (value === undefined || key === '__proto__' || key === 'constructor' || key === 'prototype') continue;
    const current = target[key];
    if (isPlain(value) && isPlain(current)) {
      const copy: OptionBag = { ...current };
      mergeInto(copy, value);
      target[key] = copy;
    } else if (isPlain(value)) {
      const copy: OptionBag = {};
      mergeInto(copy, value);
      target[key] = copy;
    } else {
      target[key] = value;
    }
  }
}
