// The dashboard at GET / of the real gateway (createApp) in headless Chromium (/usr/bin/chromium through
// playwright-core; no browser is ever downloaded), against a real redis-server: the page renders real
// numbers — request rate, cache hit rate and limiter rejections from the cluster series, Redis memory,
// readiness and breaker per client — then shows "degraded" within seconds of Redis being killed, and
// recovers. Screenshots go to test-artifacts/ (gitignored).
import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { INestApplication } from '@nestjs/common';
import { chromium, type Browser, type Page } from 'playwright-core';
import { MetricsService, SeriesService } from '@redwing/metrics';
import { RedisClientManager } from '@redwing/redis';
import { RedisServer, stopAll } from '../../../test/harness';
import {
  gatewayEnv,
  NO_TELEMETRY,
  postJson,
  serveGateway,
  startTwoGateways,
  stopTwoGateways,
  type TwoGateways,
} from './support';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = resolve(__dirname, '../../../test-artifacts');
const HAVE_CHROMIUM = existsSync(CHROMIUM);

/** Adds `n` to a counter the way the cache or rate-limit lib would, whatever labels it was registered with. */
function bump(metrics: MetricsService, name: string, labels: Record<string, string>, n: number): void {
  const existing = metrics.registry.getSingleMetric(name) as
    { labelNames?: string[]; inc(labels: Record<string, string>, n: number): void } | undefined;
  const counter =
    existing ?? metrics.counter({ name, help: `${name} (test)`, labelNames: Object.keys(labels) });
  const names = (counter as { labelNames?: string[] }).labelNames ?? [];
  const filled = Object.fromEntries(names.map((l) => [l, labels[l] ?? 'test']));
  counter.inc(filled, n);
}

const text = (page: Page, selector: string) => page.locator(selector).innerText();

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-quic',
  '--no-first-run',
  '--disable-component-update',
  '--disable-sync',
];

(HAVE_CHROMIUM ? describe : describe.skip)(
  HAVE_CHROMIUM
    ? 'dashboard in headless Chromium'
    : `dashboard SKIPPED: ${CHROMIUM} not found (apt-get install chromium)`,
  () => {
    let redis: RedisServer;
    let app: INestApplication;
    let base: string;
    let browser: Browser;

    beforeAll(async () => {
      mkdirSync(ARTIFACTS, { recursive: true });
      redis = await RedisServer.start();
      ({ app, base } = await serveGateway(
        'fastify',
        gatewayEnv(redis.url(), { METRICS_SERIES_FLUSH_INTERVAL: '200', ...NO_TELEMETRY }),
      ));
      await app.get(RedisClientManager).get().waitUntilReady(5_000);
      browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: [
          '--headless',
          '--no-sandbox',
          '--disable-gpu',
          '--disable-background-networking',
          '--disable-quic',
          '--no-first-run',
          '--disable-component-update',
          '--disable-sync',
        ],
      });
    }, 30_000);

    afterAll(async () => {
      await browser?.close();
      await app?.close();
      delete process.env.METRICS_SERIES_FLUSH_INTERVAL;
      await stopAll();
    });

    it('renders real numbers, shows "degraded" within seconds of a Redis kill, and recovers', async () => {
      // Traffic, plus cache and limiter activity through the metrics API the libs use.
      for (let i = 0; i < 30; i++) expect((await fetch(`${base}/traffic/${i}`)).status).toBe(404);
      const metrics = app.get(MetricsService);
      bump(metrics, 'redwing_cache_hits_total', { tier: 'l1', profile: 'default' }, 30);
      bump(metrics, 'redwing_cache_misses_total', { profile: 'default' }, 10);
      bump(metrics, 'redwing_ratelimit_decisions_total', { result: 'denied', mode: 'redis' }, 5);
      expect(await app.get(SeriesService).flush()).toMatch(/^(ok|empty)$/);

      const page = await browser.newPage({ viewport: { width: 1200, height: 760 } });
      const problems: string[] = [];
      page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
      page.on('console', (msg) => {
        if (msg.type() === 'error') problems.push(`console: ${msg.text()}`);
      });
      const res = await page.goto(`${base}/`);
      expect(res?.status()).toBe(200);
      expect(res?.headers()['content-security-policy']).toContain("script-src 'self'");

      await page.waitForFunction(() => document.getElementById('status')?.textContent === 'ok', null, {
        timeout: 5_000,
      });
      // The series carry what was counted above (cluster-wide, through Redis).
      await page.waitForFunction(() => document.getElementById('hit-rate')?.textContent === '75.0 %', null, {
        timeout: 5_000,
      });
      expect(await text(page, '#rejections')).toBe('5');
      expect(await text(page, '#hit-rate-sub')).toContain('30 hits · 10 misses');
      const rate = Number(await text(page, '#request-rate'));
      expect(rate).toBeGreaterThan(0);
      expect(await text(page, '#request-rate-sub')).toMatch(/30 requests/);
      expect(await text(page, '#memory')).toMatch(/^\d+(\.\d)? (KiB|MiB|GiB)$/);
      expect(await text(page, '#instances')).toBe('1 instance reporting');
      const row = page.locator('#clients tr[data-client="default"] td');
      expect(await row.allInnerTexts()).toEqual([
        'default',
        'up',
        'ready',
        'closed',
        expect.stringMatching(/^\d+\.\d\d ms$/),
        expect.stringMatching(/^\d+(\.\d)? (KiB|MiB)$/),
        `redis://127.0.0.1:${redis.port}`,
      ]);
      expect(await page.locator('#spark rect').count()).toBe(6);
      expect(problems).toEqual([]);
      await page.screenshot({ path: join(ARTIFACTS, 'dashboard-ok.png'), fullPage: true });

      // Kill Redis: the page must say so within a few seconds (two refreshes of 2 s, plus slack).
      const killedAt = Date.now();
      await redis.kill('SIGKILL');
      await page.waitForFunction(() => document.getElementById('status')?.textContent === 'degraded', null, {
        timeout: 6_000,
      });
      const seconds = (Date.now() - killedAt) / 1_000;
      expect(seconds).toBeLessThan(6);
      await page.waitForFunction(() => !(document.getElementById('notice') as HTMLElement).hidden, null, {
        timeout: 4_000,
      });
      expect(await text(page, '#notice')).toContain('Redis is not reachable');
      expect(await page.locator('#clients tr[data-client="default"] td').nth(1).innerText()).toBe('degraded');
      // Without the cluster series the cards fall back to this instance's own counts, and say so.
      expect(await text(page, '#request-rate-sub')).toBe('req/s, this instance only');
      expect(await text(page, '#hit-rate')).toBe('75.0 %');
      expect(await text(page, '#hit-rate-sub')).toContain('this instance since start');
      expect(await text(page, '#rejections')).toBe('5');
      await page.screenshot({ path: join(ARTIFACTS, 'dashboard-degraded.png'), fullPage: true });

      await redis.restart();
      await page.waitForFunction(() => document.getElementById('status')?.textContent === 'ok', null, {
        timeout: 10_000,
      });
      await page.close();
    }, 40_000);
  },
);

(HAVE_CHROMIUM ? describe : describe.skip)(
  HAVE_CHROMIUM
    ? 'dashboard live feed in headless Chromium'
    : `dashboard live feed SKIPPED: ${CHROMIUM} not found (apt-get install chromium)`,
  () => {
    let two: TwoGateways;
    let browser: Browser;

    beforeAll(async () => {
      mkdirSync(ARTIFACTS, { recursive: true });
      two = await startTwoGateways((adapter, url) => serveGateway(adapter, gatewayEnv(url, NO_TELEMETRY)));
      browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    }, 30_000);

    afterAll(async () => {
      await browser?.close();
      await stopTwoGateways(two ?? {});
      await stopAll();
    });

    it('shows a card added over HTTP on instance B within 1 s on the page connected to instance A', async () => {
      const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
      const problems: string[] = [];
      page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
      page.on('console', (msg) => {
        if (msg.type() === 'error') problems.push(`console: ${msg.text()}`);
      });
      expect((await page.goto(`${two.a.base}/?board=3`))?.status()).toBe(200);
      await page.waitForFunction(() => document.getElementById('live-status')?.textContent === 'live', null, {
        timeout: 10_000,
      });
      expect(await page.locator('#live-channel').textContent()).toBe('board:3');

      const posted = Date.now();
      expect((await postJson(two.b.base, '/boards/3/cards', { title: 'from B' })).status).toBe(201);
      await page.waitForFunction(
        () => document.getElementById('live-feed')?.textContent?.includes('card.created: from B'),
        null,
        { timeout: 1_000 },
      );
      expect(Date.now() - posted).toBeLessThanOrEqual(1_000);
      expect(await page.locator('#live-feed li').count()).toBe(1);
      expect(problems).toEqual([]);
      await page.screenshot({ path: join(ARTIFACTS, 'dashboard-live.png'), fullPage: true });
      await page.close();
    }, 30_000);
  },
);
