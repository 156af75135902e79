// The libs are real packages: `npm run pack` builds them and produces tarballs, and a Nest app OUTSIDE this
// repo installs the @redwing/redis tarball from a file: path (with the exact Nest/ioredis versions the repo
// uses), imports it by its package name, connects to a real redis-server and runs SET/GET through
// RedisClientManager. It also type-checks a small consumer against the installed declarations.
//
// The scratch app's entry is ESM (main.mjs): Nest 12 ships ESM only, and an ESM entry imports both the
// ESM Nest packages and our CommonJS build (Node's CJS named-export detection gives named imports).
import * as fs from 'node:fs';
import { builtinModules } from 'node:module';
import * as path from 'node:path';
import { RedisServer, stopAll } from '../harness';
import { cleanEnv, explain, NPM, readManifest, ROOT, run, scratchDir, TSC, type PackedLib } from './scratch';

const PEERS = [
  '@nestjs/common',
  '@nestjs/core',
  '@nestjs/platform-express',
  'ioredis',
  'reflect-metadata',
  'rxjs',
] as const;
// Builds all eight libs (tsc, one after another) before packing: minutes on a busy 2-core machine.
const SETUP_TIMEOUT = 540_000;
const BUILTINS = new Set(builtinModules);

const MAIN_MJS = `
import 'reflect-metadata';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { RedisClientManager, RedisClientModule } from '@redwing/redis';

class AppModule {}
Module({ imports: [RedisClientModule.forRoot({ url: process.env.REDIS_URL, useEnv: false })] })(AppModule);

const app = await NestFactory.createApplicationContext(AppModule, { logger: ['error'] });
let out;
try {
  const manager = app.get(RedisClientManager);
  const client = manager.get();
  if (!(await client.waitUntilReady(10_000))) throw new Error('the Redis client did not become ready in 10 s');
  const key = manager.key('pack-install', String(process.pid));
  await client.command.set(key, 'hello from outside the repo', 'PX', 60_000);
  const value = await client.command.get(key);
  await client.command.del(key);
  const entry = fileURLToPath(import.meta.resolve('@redwing/redis'));
  const require = createRequire(import.meta.url);
  out = {
    value,
    key,
    entry,
    entryRealpath: fs.realpathSync(entry),
    version: require('@redwing/redis/package.json').version,
    state: client.getConnectionState(),
    breaker: client.getBreakerState(),
  };
} finally {
  await app.close();
}
console.log(JSON.stringify(out));
`;

// Compiled with `tsc --noEmit` against the installed package's declarations. The @ts-expect-error lines
// prove the types are real (an `any` would make them unused and fail the check).
const CHECK_MTS = `
import { RedisClientManager, RedisClientModule, RedisUnavailableError, type RedisClientModuleOptions } from '@redwing/redis';

const options: RedisClientModuleOptions = { url: 'redis://127.0.0.1:6379', commandTimeout: 500, breaker: { enabled: true } };
export const mod = RedisClientModule.forRoot(options);
export async function get(manager: RedisClientManager, key: string): Promise<string | null> {
  return manager.get().command.get(key);
}
export const isUnavailable = (e: unknown): boolean => e instanceof RedisUnavailableError;
// @ts-expect-error commandTimeout is a number
export const bad: RedisClientModuleOptions = { commandTimeout: 'soon' };
// @ts-expect-error no such method
export const nope = (m: RedisClientManager) => m.doesNotExist();
`;

const TSCONFIG = {
  compilerOptions: {
    module: 'nodenext',
    moduleResolution: 'nodenext',
    target: 'ES2023',
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: [],
  },
  files: ['check.mts'],
};

describe('packaging: @redwing/redis installed from its tarball outside the repo', () => {
  let scratch: string;
  let redis: RedisServer | undefined;
  let packed: PackedLib[];
  let redisLib: PackedLib;
  let installed = false;

  beforeAll(async () => {
    const pack = run(process.execPath, [path.join(ROOT, 'scripts', 'pack.js')], ROOT, 360_000);
    if (pack.status !== 0) throw new Error(explain('npm run pack', pack));
    packed = readManifest();
    const found = packed.find((p) => p.name === '@redwing/redis');
    if (!found) throw new Error(`no @redwing/redis in .pack/manifest.json: ${JSON.stringify(packed)}`);
    redisLib = found;

    scratch = scratchDir('redwing-pack-install-');

    const rootPkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
    };
    const tgz = path.basename(redisLib.tarball);
    fs.copyFileSync(redisLib.tarball, path.join(scratch, tgz));
    const dependencies: Record<string, string> = { '@redwing/redis': `file:./${tgz}` };
    for (const name of PEERS) {
      const version = rootPkg.dependencies[name];
      if (!version) throw new Error(`root package.json has no dependency ${name}`);
      dependencies[name] = version;
    }
    const appPkg = { name: 'redwing-outside-app', version: '0.0.0', private: true, dependencies };
    fs.writeFileSync(path.join(scratch, 'package.json'), JSON.stringify(appPkg, null, 2) + '\n');
    fs.writeFileSync(path.join(scratch, 'main.mjs'), MAIN_MJS);
    fs.writeFileSync(path.join(scratch, 'check.mts'), CHECK_MTS);
    fs.writeFileSync(path.join(scratch, 'tsconfig.json'), JSON.stringify(TSCONFIG, null, 2) + '\n');

    const install = run(
      NPM,
      ['install', '--no-fund', '--no-audit', '--prefer-offline', '--loglevel=error'],
      scratch,
      180_000,
    );
    if (install.status !== 0) throw new Error(explain('npm install in the scratch app', install));
    installed = true;
    redis = await RedisServer.start();
  }, SETUP_TIMEOUT);

  afterAll(async () => {
    await redis?.stop();
    await stopAll();
    if (scratch && process.env.REDWING_KEEP_TEST_DIRS !== '1')
      fs.rmSync(scratch, { recursive: true, force: true });
  });

  it('packs tarballs that hold only dist/, package.json, README.md and LICENSE', () => {
    for (const lib of packed) {
      expect(fs.existsSync(lib.tarball)).toBe(true);
      const stray = lib.files.filter((f) => !/^(dist\/|package\.json$|README\.md$|LICENSE$)/i.test(f));
      expect({ lib: lib.name, stray }).toEqual({ lib: lib.name, stray: [] });
      expect(lib.files).toEqual(expect.arrayContaining(['package.json', 'dist/index.js', 'dist/index.d.ts']));
      expect(lib.files.some((f) => /\.spec\.|-spec\./.test(f))).toBe(false);
    }
  });

  it('declares every package its built JavaScript requires (dependencies or peerDependencies)', () => {
    for (const lib of packed) {
      const dir = lib.dir;
      const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as Record<
        string,
        Record<string, string> | undefined
      >;
      const declared = new Set([
        ...Object.keys(pkg.dependencies ?? {}),
        ...Object.keys(pkg.peerDependencies ?? {}),
        ...Object.keys(pkg.optionalDependencies ?? {}),
      ]);
      const undeclared = new Set<string>();
      for (const file of lib.files.filter((f) => f.endsWith('.js'))) {
        const code = fs.readFileSync(path.join(dir, file), 'utf8');
        for (const m of code.matchAll(/\brequire\("([^".][^"]*)"\)|\bimport\("([^".][^"]*)"\)/g)) {
          const spec = m[1] ?? m[2];
          if (spec.startsWith('node:') || BUILTINS.has(spec.split('/')[0])) continue;
          const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0];
          if (!declared.has(name)) undeclared.add(`${name} (${file})`);
        }
      }
      expect({ lib: lib.name, undeclared: [...undeclared] }).toEqual({ lib: lib.name, undeclared: [] });
    }
  });

  it('installs @redwing/redis as a real directory in the outside app, with its own dependencies', () => {
    expect(installed).toBe(true);
    const dir = path.join(scratch, 'node_modules', '@redwing', 'redis');
    expect(fs.lstatSync(dir).isSymbolicLink()).toBe(false);
    expect(fs.existsSync(path.join(dir, 'dist', 'index.js'))).toBe(true);
    expect(fs.existsSync(path.join(dir, 'src'))).toBe(false);
    const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as {
      dependencies?: Record<string, string>;
    };
    // Every runtime dependency the lib declares must have been installed next to it.
    // (Looked up on disk: packages with an "exports" map may not export ./package.json.)
    for (const dep of Object.keys(pkg.dependencies ?? {})) {
      const places = [path.join(dir, 'node_modules', dep), path.join(scratch, 'node_modules', dep)];
      expect({ dep, installed: places.some((p) => fs.existsSync(path.join(p, 'package.json'))) }).toEqual({
        dep,
        installed: true,
      });
    }
  });

  it('boots a Nest app (ESM entry) that does SET/GET through RedisClientManager against a real redis-server', () => {
    const r = run(process.execPath, ['main.mjs'], scratch, 60_000, cleanEnv({ REDIS_URL: redis!.url() }));
    if (r.status !== 0) throw new Error(explain('node main.mjs', r));
    const last = r.stdout.trim().split('\n').pop() ?? '';
    const out = JSON.parse(last) as Record<string, string>;
    expect(out.value).toBe('hello from outside the repo');
    expect(out.key).toMatch(/^redwing:pack-install:\d+$/);
    expect(out.state).toBe('ready');
    expect(out.breaker).toBe('closed');
    expect(out.version).toBe(redisLib.version);
    // Resolved from the scratch app's own node_modules, not from the repo (no symlink back into it).
    const installedDir = path.join(scratch, 'node_modules', '@redwing', 'redis') + path.sep;
    expect(out.entry).toBe(path.join(installedDir, 'dist', 'index.js'));
    expect(out.entryRealpath.startsWith(installedDir)).toBe(true);
    expect(out.entryRealpath.startsWith(ROOT + path.sep)).toBe(false);
  }, 90_000);

  it('type-checks a TypeScript consumer against the installed declarations', () => {
    const r = run(process.execPath, [TSC, '-p', 'tsconfig.json'], scratch, 120_000);
    if (r.status !== 0) throw new Error(explain('tsc -p tsconfig.json (scratch app)', r));
  }, 150_000);
});
