// What the READMEs promise a new user, checked against the package manifests (issue 13, item 6): every lib
// README says how to install it (the packed tarball today, by name once published) and names each peer
// dependency with its range; the root README states the Node floor every `engines` field declares; the metrics
// and rate-limit READMEs say that `/metrics` is rate-limited under `limitAllRoutes` and how to exempt it.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const root = join(__dirname, '..');
const read = (...parts: string[]) => readFileSync(join(root, ...parts), 'utf8');

interface Manifest {
  name: string;
  version: string;
  engines?: { node?: string };
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
}

const libs = readdirSync(join(root, 'libs')).filter((dir) => {
  try {
    read('libs', dir, 'package.json');
    return true;
  } catch {
    return false;
  }
});

/** The README's `## Install` section, up to the next `## ` heading. */
function installSection(readme: string): string {
  const start = readme.search(/^## Install\s*$/m);
  if (start < 0) return '';
  const rest = readme.slice(start + 1);
  const end = rest.search(/^## /m);
  return end < 0 ? rest : rest.slice(0, end);
}

describe('README truths', () => {
  it('finds the eight libs', () => {
    expect(libs.sort()).toEqual([
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

  describe.each(libs)('libs/%s/README.md', (dir) => {
    const manifest = JSON.parse(read('libs', dir, 'package.json')) as Manifest;
    const install = installSection(read('libs', dir, 'README.md'));

    it('has an Install section naming the packed tarball and the published name', () => {
      const tarball = `${manifest.name.replace(/^@/, '').replace('/', '-')}-${manifest.version}.tgz`;
      expect(install).toContain('npm run pack');
      expect(install).toContain(`npm install /path/to/redwing/.pack/${tarball}`);
      expect(install).toContain(`npm install ${manifest.name}`);
    });

    it('names every peer dependency with the range package.json declares', () => {
      const peers = Object.entries(manifest.peerDependencies ?? {});
      expect(peers.length).toBeGreaterThan(0);
      const missing = peers
        .filter(([name, range]) => !install.includes(`\`${name}\` ${range}`))
        .map(([name, range]) => `${name} ${range}`);
      expect(missing).toEqual([]);
    });
  });

  it('the root README states the Node floor that every engines field declares', () => {
    const engines = new Set(
      ['package.json', ...libs.map((dir) => join('libs', dir, 'package.json'))].map(
        (file) => (JSON.parse(read(file)) as Manifest).engines?.node,
      ),
    );
    expect([...engines]).toEqual(['^20.19.0 || ^22.12.0 || ^24.0.0']);
    const readme = read('README.md');
    expect(readme).toContain('`^20.19.0 || ^22.12.0 || ^24.0.0`');
    expect(readme).toMatch(/≥ 20\.19/);
    expect(readme).toMatch(/≥ 22\.12/);
    expect(readme).toContain('require(esm)');
  });

  it.each(['metrics', 'rate-limit'])(
    'the %s README says /metrics is rate-limited under limitAllRoutes and how to exempt it',
    (dir) => {
      const readme = read('libs', dir, 'README.md');
      expect(readme).toContain('limitAllRoutes');
      expect(readme).toMatch(/`\/metrics`/);
      expect(readme).toContain('`limitAllRoutes: false`');
      expect(readme).toContain('@SkipRateLimit()');
    },
  );
});
