// One corner of the compatibility matrix (issue 14): a Nest app OUTSIDE the repo installs every packed lib
// (.pack/*.tgz) together with the Nest and ioredis versions of the corner, fetched from the npm registry, so
// npm checks our peer ranges against them (an out-of-range peer fails the install with ERESOLVE). The app is
// TypeScript, compiled with tsc against the installed declarations (legacy decorators + metadata, as Nest apps
// are built), then booted on Express against a real redis-server; it exercises each lib once:
//   redis SET/GET, cache set/get + @Cacheable on a provider (DiscoveryService/MetadataScanner/Reflector),
//   lock acquire/release (fence), pub/sub subscribe + publish, a BullMQ job through @Processor/@Process,
//   a @RateLimit route over HTTP (2 allowed, then 429), GET /metrics, session imported.
//
// Not part of `npm test` (the file name does not match jest's testRegex): scripts/compat-corners.js runs it
// once per corner with
//   REDWING_CORNER_NEST     version or range for @nestjs/common, core and platform-express (e.g. 11.0.0, ^12)
//   REDWING_CORNER_IOREDIS  version or range for ioredis (e.g. 5.9.0, ^6)
// after packing the libs (scripts/pack.js). The app's entry is ESM (Nest 12 ships ESM only; Nest 11 is
// CommonJS and is imported through Node's CJS named-export detection, our libs require() either).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RedisServer, stopAll } from '../harness';
import { cleanEnv, explain, NPM, readManifest, ROOT, run, scratchDir, TSC, type PackedLib } from './scratch';

const NEST = process.env.REDWING_CORNER_NEST ?? '';
const IOREDIS = process.env.REDWING_CORNER_IOREDIS ?? '';
if (!NEST || !IOREDIS) {
  throw new Error('set REDWING_CORNER_NEST and REDWING_CORNER_IOREDIS (node scripts/compat-corners.js does)');
}
const SETUP_TIMEOUT = 300_000;

/** The major a version or range names: '11.0.0' -> 11, '^12' -> 12, '^5.9.0' -> 5. */
function majorOf(spec: string): number {
  const m = /(\d+)/.exec(spec);
  if (!m) throw new Error(`no major version in ${JSON.stringify(spec)}`);
  return Number(m[1]);
}

const MAIN_MTS = `
import 'reflect-metadata';
import { Controller, Get, Injectable, Module } from '@nestjs/common';
import { APP_GUARD, NestFactory } from '@nestjs/core';
import { RedisClientManager, RedisClientModule } from '@redwing/redis';
import { Cacheable, CacheModule, CacheService } from '@redwing/cache';
import { LockModule, LockService } from '@redwing/lock';
import { PubSubModule, PubSubService } from '@redwing/pubsub';
import { InjectQueue, JobQueue, JobQueueModule, Process, Processor, type Job } from '@redwing/job-queue';
import { RateLimit, RateLimitGuard, RateLimitModule } from '@redwing/rate-limit';
import { MetricsModule } from '@redwing/metrics';
import { SessionModule } from '@redwing/session';

const proc = (globalThis as unknown as { process: { env: Record<string, string | undefined>; exit(code: number): never } }).process;

let jobDone: (n: number) => void = () => undefined;
const jobResult = new Promise<number>((resolve) => (jobDone = resolve));

@Injectable()
class Loader {
  calls = 0;
  @Cacheable({ key: (id: string) => \`outside:\${id}\`, ttl: 60_000 })
  async load(id: string): Promise<{ id: string; n: number }> {
    this.calls++;
    return { id, n: this.calls };
  }
}

@Processor('work')
class WorkProcessor {
  @Process('double')
  async double(job: Job<{ n: number }>): Promise<number> {
    jobDone(job.data.n * 2);
    return job.data.n * 2;
  }
}

@Injectable()
class QueueHolder {
  constructor(@InjectQueue('work') readonly queue: JobQueue) {}
}

@Controller('limited')
class LimitedController {
  @Get()
  @RateLimit({ points: 2, duration: 60_000 })
  get(): { ok: true } {
    return { ok: true };
  }
}

@Module({
  imports: [
    RedisClientModule.forRoot({ url: proc.env.REDIS_URL, useEnv: false }),
    CacheModule.forRoot({ ttl: 60_000 }),
    LockModule.forRoot({ isGlobal: true }),
    PubSubModule.forRoot({}),
    JobQueueModule.forRoot({}),
    JobQueueModule.registerQueue({ name: 'work' }),
    RateLimitModule.forRoot({ points: 100, duration: 60_000 }),
    MetricsModule.forRoot({ serviceName: 'outside-app' }),
  ],
  controllers: [LimitedController],
  providers: [Loader, WorkProcessor, QueueHolder, { provide: APP_GUARD, useClass: RateLimitGuard }],
})
class AppModule {}


// Proves the declarations are real types (an \`any\` would make this directive unused and fail the build).
// @ts-expect-error ttl is a number of milliseconds
export const wrong = () => CacheModule.forRoot({ ttl: 'a minute' });

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(\`\${what}: nothing in \${ms} ms\`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

const app = await NestFactory.create(AppModule, { logger: ['error'] });
await app.listen(0, '127.0.0.1');
const out: Record<string, unknown> = {};
try {
  const address = app.getHttpServer().address() as { port: number };
  const base = \`http://127.0.0.1:\${address.port}\`;

  const manager = app.get(RedisClientManager);
  const client = manager.get();
  if (!(await client.waitUntilReady(10_000))) throw new Error('the Redis client did not become ready in 10 s');
  const key = manager.key('outside-app', 'k');
  await client.command.set(key, 'v', 'PX', 60_000);
  out.redis = await client.command.get(key);

  const cache = app.get(CacheService);
  await cache.set('outside:value', { a: 1 });
  out.cache = await cache.get('outside:value');
  const loader = app.get(Loader);
  const first = await loader.load('x');
  const second = await loader.load('x');
  out.cacheable = { first, second, calls: loader.calls };

  const locks = app.get(LockService);
  const lock = await locks.acquire('outside-app', { ttl: 5_000 });
  out.lock = { fence: lock.fence, released: await locks.release(lock) };

  const pubsub = app.get(PubSubService);
  let received!: (data: unknown) => void;
  const got = new Promise<unknown>((resolve) => (received = resolve));
  const sub = pubsub.subscribe<{ hello: string }>('outside', (m) => received(m.data));
  await within(sub.ready, 5_000, 'subscribe');
  out.published = await pubsub.publish('outside', { hello: 'world' });
  out.pubsub = await within(got, 5_000, 'pub/sub message');
  await sub.unsubscribe();

  const queue = app.get(QueueHolder).queue;
  await queue.add('double', { n: 21 });
  out.job = await within(jobResult, 15_000, 'job');

  const statuses: number[] = [];
  for (let i = 0; i < 3; i++) statuses.push((await fetch(\`\${base}/limited\`)).status);
  out.rateLimit = statuses;

  const metrics = await fetch(\`\${base}/metrics\`);
  const text = await metrics.text();
  // The HTTP metrics come from the adapter's request hook (Express: setOnRequestHook, from Nest 11.1.4).
  const limited = [...text.matchAll(/^redwing_http_request_duration_seconds_count\\{[^}]*route="\\/limited"[^}]*\\} (\\d+)/gm)];
  out.metrics = {
    status: metrics.status,
    redwingSeries: (text.match(/^redwing_[a-z_]+/gm) ?? []).length,
    limitedRequests: limited.reduce((sum, m) => sum + Number(m[1]), 0),
  };
  out.session = typeof SessionModule;
} finally {
  await app.close();
}
console.log(JSON.stringify(out));
// Everything is closed: the process must end by itself.
const watchdog = setTimeout(() => {
  console.error('the process did not exit within 10 s of app.close()');
  proc.exit(3);
}, 10_000) as unknown as { unref(): void };
watchdog.unref();
`;

const TSCONFIG = {
  compilerOptions: {
    module: 'nodenext',
    moduleResolution: 'nodenext',
    target: 'ES2023',
    strict: true,
    experimentalDecorators: true,
    emitDecoratorMetadata: true,
    skipLibCheck: true,
    types: [],
    rootDir: 'src',
    outDir: 'dist',
  },
  files: ['src/main.mts'],
};

describe(`outside app: Nest ${NEST} + ioredis ${IOREDIS}, every packed lib`, () => {
  let scratch: string;
  let redis: RedisServer | undefined;
  let packed: PackedLib[];

  beforeAll(async () => {
    packed = readManifest();
    scratch = scratchDir('redwing-corner-');
    const rootPkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
    };
    const dependencies: Record<string, string> = {};
    for (const lib of packed) {
      const tgz = path.basename(lib.tarball);
      fs.copyFileSync(lib.tarball, path.join(scratch, tgz));
      dependencies[lib.name] = `file:./${tgz}`;
    }
    for (const name of ['@nestjs/common', '@nestjs/core', '@nestjs/platform-express'])
      dependencies[name] = NEST;
    dependencies.ioredis = IOREDIS;
    for (const name of ['reflect-metadata', 'rxjs']) dependencies[name] = rootPkg.dependencies[name];
    const appPkg = { name: 'redwing-corner-app', version: '0.0.0', private: true, dependencies };
    fs.writeFileSync(path.join(scratch, 'package.json'), JSON.stringify(appPkg, null, 2) + '\n');
    fs.mkdirSync(path.join(scratch, 'src'));
    fs.writeFileSync(path.join(scratch, 'src', 'main.mts'), MAIN_MTS);
    fs.writeFileSync(path.join(scratch, 'tsconfig.json'), JSON.stringify(TSCONFIG, null, 2) + '\n');

    // No --legacy-peer-deps: npm must accept our peer ranges with the corner's Nest and ioredis.
    const install = run(
      NPM,
      ['install', '--no-fund', '--no-audit', '--prefer-offline', '--loglevel=error'],
      scratch,
      240_000,
    );
    if (install.status !== 0) throw new Error(explain('npm install in the corner app', install));
    redis = await RedisServer.start();
  }, SETUP_TIMEOUT);

  afterAll(async () => {
    await redis?.stop();
    await stopAll();
    if (scratch && process.env.REDWING_KEEP_TEST_DIRS !== '1')
      fs.rmSync(scratch, { recursive: true, force: true });
  });

  it('installed the Nest and ioredis majors of the corner, once each (no nested copy under a lib)', () => {
    const version = (dir: string): string =>
      (JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { version: string }).version;
    const nm = path.join(scratch, 'node_modules');
    expect(majorOf(version(path.join(nm, '@nestjs', 'core')))).toBe(majorOf(NEST));
    expect(majorOf(version(path.join(nm, '@nestjs', 'common')))).toBe(majorOf(NEST));
    expect(majorOf(version(path.join(nm, 'ioredis')))).toBe(majorOf(IOREDIS));
    const nested = packed.flatMap((lib) =>
      ['ioredis', '@nestjs/common', '@nestjs/core']
        .map((dep) => path.join(nm, ...lib.name.split('/'), 'node_modules', ...dep.split('/')))
        .filter((p) => fs.existsSync(p)),
    );
    // bullmq takes ioredis as a peer too: one client library in the app.
    nested.push(
      ...['bullmq'].map((d) => path.join(nm, d, 'node_modules', 'ioredis')).filter((p) => fs.existsSync(p)),
    );
    expect(nested).toEqual([]);
  });

  it('builds the TypeScript app with tsc against the installed declarations', () => {
    const r = run(process.execPath, [TSC, '-p', 'tsconfig.json'], scratch, 180_000);
    if (r.status !== 0) throw new Error(explain('tsc -p tsconfig.json (corner app)', r));
    expect(fs.existsSync(path.join(scratch, 'dist', 'main.mjs'))).toBe(true);
  }, 200_000);

  it('boots on Express and every lib works against a real redis-server', () => {
    const r = run(
      process.execPath,
      ['dist/main.mjs'],
      scratch,
      90_000,
      cleanEnv({ REDIS_URL: redis!.url() }),
    );
    if (r.status !== 0) throw new Error(explain('node dist/main.mjs', r));
    const last = r.stdout.trim().split('\n').pop() ?? '';
    const out = JSON.parse(last) as Record<string, unknown>;
    expect(out.redis).toBe('v');
    expect(out.cache).toEqual({ a: 1 });
    // The second call is served from the cache: the method ran once.
    expect(out.cacheable).toEqual({ first: { id: 'x', n: 1 }, second: { id: 'x', n: 1 }, calls: 1 });
    expect(out.lock).toEqual({ fence: expect.any(Number) as number, released: true });
    expect((out.lock as { fence: number }).fence).toBeGreaterThan(0);
    expect(out.published).toBe(true);
    expect(out.pubsub).toEqual({ hello: 'world' });
    expect(out.job).toBe(42);
    expect(out.rateLimit).toEqual([200, 200, 429]);
    const metrics = out.metrics as { status: number; redwingSeries: number; limitedRequests: number };
    expect(metrics.status).toBe(200);
    expect(metrics.redwingSeries).toBeGreaterThan(0);
    // All three requests to /limited (two passed, one refused) were observed by the HTTP metrics.
    expect(metrics.limitedRequests).toBe(3);
    expect(out.session).toBe('function');
  }, 120_000);
});
