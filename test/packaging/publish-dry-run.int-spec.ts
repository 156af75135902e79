// Every lib is publishable: `npm publish --dry-run` in each libs/<lib> folder computes the file list npm would
// upload, and that list must be exactly the built package — dist/ (JavaScript, declarations, source maps),
// README.md, LICENSE and package.json — with no sources, tests or specs. The manifest fields a registry and
// a consumer's tooling read (license, repository, exports, types, sideEffects, keywords) are checked too,
// and every lib keeps a CHANGELOG.md for changesets (docs/releasing.md).
//
// Building: libs whose dist/ is missing or older than their sources are built first with
// scripts/build-libs.js (CI's `npm run build` has just built them all, so CI normally builds nothing here).
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..');
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const BUILD_TIMEOUT = 600_000;

interface LibManifest {
  name: string;
  version: string;
  license?: string;
  keywords?: string[];
  repository?: { type?: string; url?: string; directory?: string };
  sideEffects?: boolean;
  main?: string;
  types?: string;
  files?: string[];
  exports?: Record<string, unknown>;
  private?: boolean;
}

interface Lib {
  folder: string;
  dir: string;
  pkg: LibManifest;
}

const libs: Lib[] = fs
  .readdirSync(path.join(ROOT, 'libs'), { withFileTypes: true })
  .filter((e) => e.isDirectory() && fs.existsSync(path.join(ROOT, 'libs', e.name, 'package.json')))
  .map((e) => {
    const dir = path.join(ROOT, 'libs', e.name);
    const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as LibManifest;
    return { folder: e.name, dir, pkg };
  })
  .sort((a, b) => a.folder.localeCompare(b.folder));

/** Environment for child npm processes: no npm_* settings inherited from `npm test`, no jest variables. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^npm_/i.test(k) && !/^npm_config_(cache|registry|userconfig)$/i.test(k)) continue;
    if (k === 'NODE_OPTIONS' || k === 'NODE_PATH' || k.startsWith('JEST_')) continue;
    env[k] = v;
  }
  return { ...env, NO_COLOR: '1', npm_config_fund: 'false', npm_config_audit: 'false' };
}

function explain(what: string, r: SpawnSyncReturns<string>): string {
  return `${what} exited ${r.status ?? r.signal}${r.error ? ` (${r.error.message})` : ''}\n--- stdout\n${r.stdout?.slice(-3_000)}\n--- stderr\n${r.stderr?.slice(-3_000)}`;
}

function newestMtime(dir: string, skip: (file: string) => boolean = () => false): number {
  if (!fs.existsSync(dir)) return 0;
  let newest = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) newest = Math.max(newest, newestMtime(p, skip));
    else if (!skip(p)) newest = Math.max(newest, fs.statSync(p).mtimeMs);
  }
  return newest;
}

/** Libs whose dist/index.js is missing or older than a non-spec source file. */
function staleLibs(): string[] {
  return libs
    .filter(({ dir }) => {
      const built = path.join(dir, 'dist', 'index.js');
      if (!fs.existsSync(built)) return true;
      const sources = newestMtime(path.join(dir, 'src'), (f) => /[.-]spec\.ts$/.test(f));
      return sources > fs.statSync(built).mtimeMs;
    })
    .map((l) => l.folder);
}

interface DryRun {
  name: string;
  version: string;
  files: Array<{ path: string }>;
}

/** `npm publish --dry-run --json` in the lib's folder; npm 10 prints the result, npm 11 keys it by name. */
function publishDryRun(lib: Lib): DryRun {
  let last: SpawnSyncReturns<string> | undefined;
  // One retry: a concurrent build (another packaging spec) swaps dist/ in place for an instant.
  for (let attempt = 0; attempt < 2; attempt++) {
    last = spawnSync(NPM, ['publish', '--dry-run', '--json', '--ignore-scripts', '--loglevel=warn'], {
      cwd: lib.dir,
      env: cleanEnv(),
      encoding: 'utf8',
      timeout: 120_000,
      maxBuffer: 16 * 1024 * 1024,
    });
    if (last.status === 0) {
      const parsed = JSON.parse(last.stdout.slice(last.stdout.indexOf('{'))) as
        DryRun | Record<string, DryRun>;
      return 'files' in parsed ? (parsed as DryRun) : (parsed as Record<string, DryRun>)[lib.pkg.name];
    }
  }
  throw new Error(explain(`npm publish --dry-run in libs/${lib.folder}`, last!));
}

/** What may ship: compiled JavaScript, declarations and source maps under dist/, plus the four top files. */
const ALLOWED = [/^dist\/.+\.(js|d\.ts|js\.map)$/, /^README\.md$/, /^LICENSE$/, /^package\.json$/];
const FORBIDDEN = [
  /(^|\/)test\//,
  /[.-]spec\./,
  /(^|\/)src\//,
  /tsconfig/,
  /(?<!\.d)\.ts$/,
  /\.tsbuildinfo$/,
];

describe('packaging: npm publish --dry-run for every lib', () => {
  beforeAll(() => {
    const stale = staleLibs();
    if (stale.length === 0) return;
    const r = spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'build-libs.js'), ...stale], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: BUILD_TIMEOUT,
    });
    if (r.status !== 0) throw new Error(explain(`node scripts/build-libs.js ${stale.join(' ')}`, r));
  }, BUILD_TIMEOUT + 10_000);

  it('finds the eight libs', () => {
    expect(libs.map((l) => l.folder)).toEqual([
      'cache',
      'job-queue',
      'lock',
      'metrics',
      'pubsub',
      'rate-limit',
      'redis',
      'session',
    ]);
  });

  describe.each(libs.map((l) => [l.pkg.name, l] as const))('%s', (_name, lib) => {
    it('declares what a registry and a consumer read: MIT, repository, keywords, exports, sideEffects', () => {
      const { pkg } = lib;
      expect(pkg.private).toBeUndefined();
      expect(pkg.license).toBe('MIT');
      expect(pkg.repository).toEqual({
        type: 'git',
        url: 'git+https://github.com/redwing/redwing.git',
        directory: `libs/${lib.folder}`,
      });
      expect(pkg.keywords).toEqual(expect.arrayContaining(['nestjs', 'redis']));
      expect(pkg.sideEffects).toBe(false);
      expect(pkg.main).toBe('dist/index.js');
      expect(pkg.types).toBe('dist/index.d.ts');
      expect(pkg.exports).toEqual({
        '.': { types: './dist/index.d.ts', require: './dist/index.js', default: './dist/index.js' },
        './package.json': './package.json',
      });
      // `types` must come first in a conditional export, or TypeScript never sees it.
      expect(Object.keys(pkg.exports!['.'] as object)[0]).toBe('types');
      expect(pkg.files).toEqual(expect.arrayContaining(['dist', 'README.md', 'LICENSE']));
    });

    it('has an MIT LICENSE and a CHANGELOG.md kept by changesets', () => {
      const license = fs.readFileSync(path.join(lib.dir, 'LICENSE'), 'utf8');
      expect(license).toMatch(/^MIT License\n\nCopyright \(c\) \d{4} The Redwing authors\n/);
      expect(license).toBe(fs.readFileSync(path.join(ROOT, 'LICENSE'), 'utf8'));
      const changelog = fs.readFileSync(path.join(lib.dir, 'CHANGELOG.md'), 'utf8');
      expect(changelog.split('\n')[0]).toBe(`# ${lib.pkg.name}`);
      expect(changelog).toContain(`## ${lib.pkg.version}`);
    });

    it('publishes only dist/ (JS, .d.ts, maps), README.md, LICENSE and package.json', () => {
      const result = publishDryRun(lib);
      expect(result.name).toBe(lib.pkg.name);
      expect(result.version).toBe(lib.pkg.version);
      const files = result.files.map((f) => f.path).sort();
      const stray = files.filter((f) => !ALLOWED.some((re) => re.test(f)));
      const forbidden = files.filter((f) => FORBIDDEN.some((re) => re.test(f)));
      expect({ stray, forbidden }).toEqual({ stray: [], forbidden: [] });
      expect(files).toEqual(
        expect.arrayContaining(['LICENSE', 'README.md', 'package.json', 'dist/index.js', 'dist/index.d.ts']),
      );
      // Every target of the exports map ships.
      for (const target of ['dist/index.js', 'dist/index.d.ts', 'package.json'])
        expect(files).toContain(target);
      // Each compiled module ships with its declarations and its source map.
      for (const js of files.filter((f) => f.endsWith('.js'))) {
        expect(files).toEqual(expect.arrayContaining([js.replace(/\.js$/, '.d.ts'), `${js}.map`]));
      }
    }, 150_000);
  });

  it('keeps changesets configured for public packages on main, the private gateway left out', () => {
    const config = JSON.parse(fs.readFileSync(path.join(ROOT, '.changeset', 'config.json'), 'utf8')) as {
      access: string;
      baseBranch: string;
      privatePackages: { version: boolean; tag: boolean };
    };
    expect(config.access).toBe('public');
    expect(config.baseBranch).toBe('main');
    expect(config.privatePackages).toEqual({ version: false, tag: false });
    const root = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
      license: string;
      devDependencies: Record<string, string>;
    };
    expect(root.license).toBe('MIT');
    expect(root.devDependencies['@changesets/cli']).toBeDefined();
    expect(fs.readFileSync(path.join(ROOT, 'LICENSE'), 'utf8')).toContain('The Redwing authors');
  });
});
