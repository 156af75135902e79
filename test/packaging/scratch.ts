// Helpers shared by the packaging tests that build a scratch app outside the repo (pack-install.int-spec.ts,
// outside-app.corner-spec.ts): a clean child environment, a bounded spawnSync, and a readable failure.
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export const ROOT = path.resolve(__dirname, '..', '..');
export const PACK_DIR = path.join(ROOT, '.pack');
export const TSC = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
export const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';

/** One tarball written by scripts/pack.js (.pack/manifest.json). */
export interface PackedLib {
  name: string;
  /** The lib's folder in the repo. */
  dir: string;
  version: string;
  tarball: string;
  size: number;
  files: string[];
}

/** The environment for child npm/node processes: no npm_* settings inherited from `npm test`. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^npm_/i.test(k) && !/^npm_config_(cache|registry|userconfig)$/i.test(k)) continue;
    if (k === 'NODE_OPTIONS' || k === 'NODE_PATH' || k.startsWith('JEST_')) continue;
    env[k] = v;
  }
  return { ...env, NO_COLOR: '1', ...extra };
}

export function run(
  cmd: string,
  args: string[],
  cwd: string,
  timeout: number,
  env = cleanEnv(),
): SpawnSyncReturns<string> {
  return spawnSync(cmd, args, { cwd, env, encoding: 'utf8', timeout, maxBuffer: 32 * 1024 * 1024 });
}

export function explain(what: string, r: SpawnSyncReturns<string>): string {
  return `${what} exited ${r.status ?? r.signal}${r.error ? ` (${r.error.message})` : ''}\n--- stdout\n${r.stdout?.slice(-4_000)}\n--- stderr\n${r.stderr?.slice(-4_000)}`;
}

export function readManifest(): PackedLib[] {
  return JSON.parse(fs.readFileSync(path.join(PACK_DIR, 'manifest.json'), 'utf8')) as PackedLib[];
}

/** A fresh directory under the OS temp dir; refuses one inside the repo. */
export function scratchDir(prefix: string): string {
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), prefix)));
  if (!path.relative(ROOT, dir).startsWith('..')) throw new Error(`scratch dir ${dir} is inside the repo`);
  return dir;
}
