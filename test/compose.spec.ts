// docker-compose.yml, the Dockerfile and config/ checked without a Docker engine: the compose file is parsed,
// everything it mounts or names is checked against the repository, the gateway's environment against the
// gateway's own env schema, and every redis-*.conf is booted with the real redis-server.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Redis } from 'ioredis';
import { parse } from 'yaml';
import { gatewayEnvSchema } from '../apps/gateway/src/config/gateway-env.schema';
import { GATEWAY_NODE_FLAGS } from '../scripts/gateway-node-flags';

const ROOT = resolve(__dirname, '..');
const read = (file: string) => readFileSync(join(ROOT, file), 'utf8');

interface ComposeService {
  image?: string;
  build?: { context: string; dockerfile?: string };
  command?: string[] | string;
  environment?: Record<string, string>;
  ports?: string[];
  volumes?: string[];
  profiles?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
}

const compose = parse(read('docker-compose.yml')) as {
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
};
const service = (name: string): ComposeService => {
  const s = compose.services[name];
  if (!s) throw new Error(`docker-compose.yml has no service "${name}"`);
  return s;
};

/** Bind mounts of a service as { source (repo-relative), target }; named volumes as { volume, target }. */
function mounts(s: ComposeService) {
  return (s.volumes ?? []).map((v) => {
    const [source, target] = v.split(':');
    return source.startsWith('./') ? { source: source.slice(2), target } : { volume: source, target };
  });
}

/** `redis.conf` directives (last one wins, as in Redis); multi-argument values are kept as one string. */
function parseRedisConf(text: string): Map<string, string> {
  const conf = new Map<string, string>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const [key, ...rest] = line.split(/\s+/);
    conf.set(key.toLowerCase(), rest.join(' ').replace(/^"(.*)"$/, '$1'));
  }
  return conf;
}

/** The settings a Redis service runs with: its mounted config file, overridden by `--flag value` in command. */
function effectiveRedisSettings(name: string) {
  const s = service(name);
  const command = Array.isArray(s.command) ? s.command : (s.command ?? '').split(/\s+/);
  expect(command[0]).toBe('redis-server');
  const confPath = command[1];
  const mount = mounts(s).find((m) => m.target === confPath);
  expect(mount?.source).toMatch(/^config\/redis-.+\.conf$/);
  const source = mount!.source!;
  expect(existsSync(join(ROOT, source))).toBe(true);
  const settings = parseRedisConf(read(source));
  for (let i = 2; i < command.length; i += 2) settings.set(command[i].replace(/^--/, ''), command[i + 1]);
  return { source, settings };
}

/** Interface and port of a `HOST:CONTAINER` / `IP:HOST:CONTAINER` mapping. */
function portMapping(spec: string) {
  const parts = spec.split(':');
  return { published: Number(parts.at(-2)), target: Number(parts.at(-1)) };
}

describe('docker-compose.yml', () => {
  it('defines the Redis pair and the gateway by default, the collector, Prometheus and Grafana behind a profile', () => {
    expect(Object.keys(compose.services).sort()).toEqual(
      ['gateway', 'grafana', 'otel-collector', 'prometheus', 'redis-cache', 'redis-durable'].sort(),
    );
    for (const name of ['redis-cache', 'redis-durable', 'gateway'])
      expect(service(name).profiles).toBeUndefined();
    for (const name of ['otel-collector', 'prometheus', 'grafana'])
      expect(service(name).profiles).toEqual(['observability']);
    for (const name of ['redis-cache', 'redis-durable'])
      expect(service(name).image).toMatch(/^redis:7(\.|$)/);
  });

  it('runs redis-cache as an evicting cache (allkeys-lru, nothing persisted)', () => {
    const { settings } = effectiveRedisSettings('redis-cache');
    expect(settings.get('maxmemory-policy')).toBe('allkeys-lru');
    expect(settings.get('maxmemory')).toMatch(/^\d+[kmg]b$/i);
    expect(settings.get('appendonly')).toBe('no');
    expect(settings.get('save')).toBe('');
  });

  it('runs redis-durable with noeviction and an fsync-every-second AOF on a named volume', () => {
    const { settings } = effectiveRedisSettings('redis-durable');
    expect(settings.get('maxmemory-policy')).toBe('noeviction');
    expect(settings.get('appendonly')).toBe('yes');
    expect(settings.get('appendfsync')).toBe('everysec');
    // The official image runs redis-server in /data; the data must live on a named volume there.
    expect(settings.get('dir') ?? './').toMatch(/^(\.\/|\/data)$/);
    const data = mounts(service('redis-durable')).find((m) => m.target === '/data');
    expect(data?.volume).toBeDefined();
    expect(compose.volumes).toHaveProperty(data!.volume!);
  });

  it('publishes the gateway on 3000, listening on all interfaces inside the container', () => {
    const gateway = service('gateway');
    expect(gateway.ports?.map(portMapping)).toEqual([{ published: 3000, target: 3000 }]);
    expect(gateway.environment?.PORT).toBe('3000');
    expect(gateway.environment?.HOST).toBe('0.0.0.0');
    expect(gateway.build).toEqual({ context: '.', dockerfile: 'Dockerfile' });
  });

  it('gives the gateway only variables its env schema declares, with valid values', () => {
    const env = service('gateway').environment ?? {};
    const { error } = gatewayEnvSchema.validate(env, { abortEarly: false, allowUnknown: false });
    expect(error?.details.map((d) => d.message) ?? []).toEqual([]);
  });

  it('points the gateway at the Redis services by name and waits for them to be healthy', () => {
    const gateway = service('gateway');
    expect(new URL(gateway.environment!.REDIS_URL).host).toBe('redis-cache:6379');
    expect(new URL(gateway.environment!.REDIS_DURABLE_URL).host).toBe('redis-durable:6379');
    expect(gateway.depends_on).toEqual({
      'redis-cache': { condition: 'service_healthy' },
      'redis-durable': { condition: 'service_healthy' },
    });
    for (const name of ['redis-cache', 'redis-durable']) {
      expect(service(name).healthcheck?.test).toEqual(['CMD', 'redis-cli', 'ping']);
    }
    expect(gateway.healthcheck?.test.join(' ')).toContain('127.0.0.1:3000/health');
  });

  it('lets Prometheus scrape the gateway service by name on its port', () => {
    const prometheus = service('prometheus');
    const mount = mounts(prometheus).find((m) => m.target === '/etc/prometheus/prometheus.yml');
    expect(mount?.source).toBe('config/prometheus.yml');
    const config = parse(read(mount!.source!)) as {
      scrape_configs: Array<{
        job_name: string;
        metrics_path?: string;
        static_configs: Array<{ targets: string[] }>;
      }>;
    };
    const job = config.scrape_configs.find((j) => j.job_name === 'gateway');
    expect(job?.metrics_path ?? '/metrics').toBe('/metrics');
    const targets = job!.static_configs.flatMap((c) => c.targets);
    expect(targets).toEqual([`gateway:${service('gateway').environment!.PORT}`]);
    expect(prometheus.command).toContain('--config.file=/etc/prometheus/prometheus.yml');
  });

  it('mounts the alert rules where prometheus.yml loads them from', () => {
    const prometheus = service('prometheus');
    const config = parse(read('config/prometheus.yml')) as { rule_files?: string[] };
    expect(config.rule_files).toEqual(['/etc/prometheus/rules/*.yml']);
    const rules = mounts(prometheus).find((m) => m.target === '/etc/prometheus/rules');
    expect(rules?.source).toBe('config/prometheus/rules');
    const files = readdirSync(join(ROOT, rules!.source!)).filter((f) => f.endsWith('.yml'));
    expect(files).toContain('redwing.rules.yml');
  });

  it('runs Grafana with the provisioned board, published on 127.0.0.1 only, after Prometheus', () => {
    const grafana = service('grafana');
    expect(grafana.image).toMatch(/^grafana\/grafana:\d+\.\d+\.\d+$/);
    expect(grafana.ports).toEqual(['127.0.0.1:3001:3000']);
    expect(grafana.ports?.map(portMapping)).toEqual([{ published: 3001, target: 3000 }]);
    const byTarget = Object.fromEntries(mounts(grafana).map((m) => [m.target, m.source ?? m.volume]));
    expect(byTarget['/etc/grafana/provisioning']).toBe('config/grafana/provisioning');
    expect(byTarget['/etc/grafana/dashboards']).toBe('config/grafana/dashboards');
    expect(compose.volumes).toHaveProperty(byTarget['/var/lib/grafana']!);
    const home = grafana.environment?.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH ?? '';
    expect(
      existsSync(join(ROOT, 'config/grafana/dashboards', home.replace('/etc/grafana/dashboards/', ''))),
    ).toBe(true);
    expect(grafana.depends_on).toEqual({ prometheus: { condition: 'service_started' } });
  });

  it('mounts an OpenTelemetry collector config that exists and wires every pipeline to defined components', () => {
    const collector = service('otel-collector');
    const configFlag = (collector.command as string[]).find((c) => c.startsWith('--config='));
    const mount = mounts(collector).find((m) => m.target === configFlag?.slice('--config='.length));
    expect(mount?.source).toBe('config/otel-collector.yaml');
    const config = parse(read(mount!.source!)) as Record<string, Record<string, unknown>> & {
      service: { pipelines: Record<string, Record<'receivers' | 'processors' | 'exporters', string[]>> };
    };
    expect(Object.keys(config.service.pipelines)).toContain('traces');
    for (const pipeline of Object.values(config.service.pipelines)) {
      for (const kind of ['receivers', 'processors', 'exporters'] as const) {
        for (const component of pipeline[kind] ?? []) expect(Object.keys(config[kind])).toContain(component);
      }
    }
    const otlp = config.receivers.otlp as { protocols: Record<string, { endpoint: string }> };
    expect(otlp.protocols.http.endpoint).toBe('0.0.0.0:4318');
    expect(collector.ports).toEqual(expect.arrayContaining(['4317:4317', '4318:4318']));
  });

  it('mounts only files that exist in the repository', () => {
    for (const [name, s] of Object.entries(compose.services)) {
      for (const m of mounts(s)) {
        if (m.source)
          expect({ name, exists: existsSync(join(ROOT, m.source)) }).toEqual({ name, exists: true });
        else expect(compose.volumes).toHaveProperty(m.volume!);
      }
    }
  });
});

describe('Dockerfile', () => {
  const dockerfile = read('Dockerfile');
  const instructions = dockerfile
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim().replace(/\s+/g, ' '))
    .filter((l) => l && !l.startsWith('#'));

  it('runs the same entry point as `npm run start:prod`', () => {
    const cmd = instructions.filter((l) => l.startsWith('CMD ')).at(-1)!;
    const argv = JSON.parse(cmd.slice(4)) as string[];
    const pkg = JSON.parse(read('package.json')) as { scripts: Record<string, string> };
    expect(argv.join(' ')).toBe(pkg.scripts['start:prod']);
    // The same Node flags as `npm start` and the bench's gateway (scripts/gateway-node-flags.js).
    expect(argv.slice(1, -1)).toEqual(GATEWAY_NODE_FLAGS);
    // The build the Dockerfile runs compiles the libs before the gateway that imports them by package name.
    expect(pkg.scripts.build).toBe('npm run build:libs && nest build gateway');
    expect(instructions.some((l) => l.startsWith('RUN ') && l.includes('&& npm run build &&'))).toBe(true);
  });

  it('builds on node:20-slim in two stages and runs as a non-root user with a liveness HEALTHCHECK', () => {
    const from = instructions.filter((l) => l.startsWith('FROM '));
    expect(from).toEqual(['FROM node:20-slim AS build', 'FROM node:20-slim AS runtime']);
    expect(dockerfile).toContain('npm install --no-fund --no-audit');
    expect(dockerfile).toContain('npm run build');
    const user = instructions.filter((l) => l.startsWith('USER ')).at(-1);
    expect(user).toBe('USER node');
    const healthcheck = instructions.find((l) => l.startsWith('HEALTHCHECK '));
    expect(healthcheck).toContain('/health');
    expect(instructions).toContain('ENV NODE_ENV=production HOST=0.0.0.0 PORT=3000');
  });

  it('keeps node_modules, dist and .env files out of the build context', () => {
    const ignored = read('.dockerignore').split('\n');
    for (const entry of ['**/node_modules', '**/dist', '.env', '.git']) expect(ignored).toContain(entry);
  });
});

describe('config/gateway.env.example', () => {
  it('lists only variables the gateway schema declares, with valid values', () => {
    const lines = read('config/gateway.env.example').split('\n');
    const set = Object.fromEntries(
      lines
        .filter((l) => /^[A-Z_]+=/.test(l))
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    const mentioned = lines.flatMap((l) => /^#\s*([A-Z][A-Z0-9_]+)=/.exec(l)?.[1] ?? []);
    const { error } = gatewayEnvSchema.validate(set, { abortEarly: false, allowUnknown: false });
    expect(error?.details.map((d) => d.message) ?? []).toEqual([]);
    const declared = Object.keys(gatewayEnvSchema.describe().keys ?? {});
    for (const key of [...Object.keys(set), ...mentioned]) expect(declared).toContain(key);
    expect(set.REDIS_URL).toBe('redis://127.0.0.1:6379');
  });
});

describe('config/redis-*.conf with the real redis-server', () => {
  const confs = readdirSync(join(ROOT, 'config')).filter((f) => /^redis-.+\.conf$/.test(f));
  const children: ChildProcess[] = [];

  afterAll(() => {
    for (const child of children)
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });

  function freePort(): Promise<number> {
    return new Promise((done, fail) => {
      const server = createServer();
      server.on('error', fail);
      server.listen(0, '127.0.0.1', () => {
        const { port } = server.address() as { port: number };
        server.close(() => done(port));
      });
    });
  }

  it('finds both files', () => {
    expect(confs.sort()).toEqual(['redis-cache.conf', 'redis-durable.conf']);
  });

  it.each([
    ['redis-cache.conf', { 'maxmemory-policy': 'allkeys-lru', appendonly: 'no' }],
    ['redis-durable.conf', { 'maxmemory-policy': 'noeviction', appendonly: 'yes', appendfsync: 'everysec' }],
  ])('%s is accepted by redis-server and applied', async (conf, expected) => {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'redwing-conf-'));
    // Only where it listens and writes is overridden; every other setting comes from the file.
    const child = spawn(
      'redis-server',
      [
        join(ROOT, 'config', conf),
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--dir',
        dir,
        '--daemonize',
        'no',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    children.push(child);
    let stderr = '';
    child.stderr!.on('data', (chunk) => (stderr += chunk));
    const exited = new Promise<void>((done) => child.once('exit', () => done()));
    // No reconnects of its own: the loop below retries `connect()`, which ioredis refuses ("already
    // connecting/connected") while its own reconnect runs — a loaded CI run failed that way.
    const client = new Redis({
      port,
      host: '127.0.0.1',
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    try {
      const deadline = Date.now() + 5_000;
      for (;;) {
        try {
          await client.connect();
          break;
        } catch (err) {
          if (child.exitCode !== null || Date.now() > deadline) {
            throw new Error(`redis-server refused ${conf}: ${stderr || (err as Error).message}`, {
              cause: err,
            });
          }
          await new Promise((r) => setTimeout(r, 50));
        }
      }
      for (const [key, value] of Object.entries(expected)) {
        expect(await client.config('GET', key)).toEqual([key, value]);
      }
    } finally {
      client.disconnect();
      process.kill(child.pid!, 'SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
