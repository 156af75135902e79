import { LockConfigError } from './lock.errors';

type Part = string | { arg: number; path: string[] };

/** A compiled `@WithLock` resource template: `'order:{0}'`, `'user:{1.id}:cart'`. */
export interface ResourceTemplate {
  /** Highest argument index the template reads. */
  maxArg: number;
  render(args: readonly unknown[]): string;
}

const PLACEHOLDER = /\{([^{}]*)\}/g;
const REFERENCE = /^(\d{1,2})((?:\.[A-Za-z_$][\w$]*)*)$/;

/**
 * Compile a resource template; `field` names it in errors (`OrdersService.ship`).
 * @throws LockConfigError for a malformed placeholder or stray brace
 */
export function compileTemplate(template: string, field: string): ResourceTemplate {
  if (typeof template !== 'string' || template === '') {
    throw new LockConfigError(field, "needs a resource template, e.g. @WithLock('order:{0}')");
  }
  const parts: Part[] = [];
  let last = 0;
  let maxArg = -1;
  for (const m of template.matchAll(PLACEHOLDER)) {
    const ref = REFERENCE.exec(m[1]);
    if (!ref) {
      throw new LockConfigError(
        field,
        `has an invalid placeholder {${m[1].slice(0, 20)}}; use {0}, {1}, {0.id}`,
      );
    }
    parts.push(template.slice(last, m.index));
    const arg = Number(ref[1]);
    parts.push({ arg, path: ref[2] ? ref[2].slice(1).split('.') : [] });
    maxArg = Math.max(maxArg, arg);
    last = m.index + m[0].length;
  }
  parts.push(template.slice(last));
  if (parts.some((p) => typeof p === 'string' && /[{}]/.test(p))) {
    throw new LockConfigError(field, 'has an unmatched { or } in its resource template');
  }
  return {
    maxArg,
    render(args) {
      let out = '';
      for (const p of parts) {
        if (typeof p === 'string') {
          out += p;
          continue;
        }
        let v: unknown = args[p.arg];
        for (const k of p.path)
          v = v === null || v === undefined ? undefined : (v as Record<string, unknown>)[k];
        out += String(v);
      }
      return out;
    },
  };
}
