// Redwing gateway dashboard: polls /health/ready, /stats/overview and /stats/series every 2 s and renders
// readiness, breaker state per client, request rate, cache hit rate, limiter rejections and memory.
// Plain browser JavaScript, no build step. Every value is written with textContent (never innerHTML).
/* global document, fetch, setTimeout */
'use strict';

(() => {
  const REFRESH_MS = 2_000;
  const WINDOW_MINUTES = 5;
  const $ = (id) => document.getElementById(id);

  /** Previous local sample, for this instance's own rate while the cluster series are unavailable. */
  let previousLocal = null;

  async function getJson(path) {
    try {
      const res = await fetch(path, { cache: 'no-store', headers: { accept: 'application/json' } });
      let body = null;
      try {
        body = await res.json();
      } catch {
        body = null;
      }
      return { ok: res.ok, status: res.status, body };
    } catch {
      return { ok: false, status: 0, body: null };
    }
  }

  const number = (n, digits) =>
    n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

  function bytes(n) {
    if (n === null || n === undefined) return '–';
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    let v = n;
    while (v >= 1024 && i < units.length - 1) {
      v /= 1024;
      i++;
    }
    return `${number(v, i === 0 ? 0 : 1)} ${units[i]}`;
  }

  function rate(perSecond) {
    return perSecond >= 100 ? number(perSecond, 0) : number(perSecond, 2);
  }

  function text(id, value) {
    const el = $(id);
    if (el.textContent !== value) el.textContent = value;
  }

  function renderStatus(ready) {
    let status = 'unreachable';
    if (ready.status === 503) status = 'unavailable';
    else if (ready.body && typeof ready.body.status === 'string') status = ready.body.status;
    const badge = $('status');
    badge.dataset.status = status;
    text('status', status);
    document.title = `${status} · Redwing gateway`;
  }

  function cell(row, value, className) {
    const td = document.createElement('td');
    if (className) {
      const span = document.createElement('span');
      span.className = `pill ${className}`;
      span.textContent = value;
      td.append(span);
    } else {
      td.textContent = value;
    }
    row.append(td);
  }

  function renderClients(ready, overview) {
    const clients = (ready.body && ready.body.redis) || {};
    const memory = (overview.body && overview.body.redis) || {};
    const rows = Object.entries(clients).map(([name, c]) => {
      const row = document.createElement('tr');
      row.dataset.client = name;
      cell(row, name);
      cell(row, c.status, c.status === 'up' ? 'pill-up' : 'pill-degraded');
      cell(row, c.state);
      cell(
        row,
        c.breaker,
        c.breaker === 'closed' ? 'pill-up' : c.breaker === 'half-open' ? 'pill-degraded' : 'pill-bad',
      );
      cell(row, c.latencyMs === null || c.latencyMs === undefined ? '–' : `${number(c.latencyMs, 2)} ms`);
      const m = memory[name];
      cell(
        row,
        m && m.usedBytes !== null
          ? `${bytes(m.usedBytes)}${m.maxBytes ? ` / ${bytes(m.maxBytes)}` : ''}`
          : '–',
      );
      cell(row, c.url);
      return row;
    });
    $('clients').tBodies[0].replaceChildren(...rows);
  }

  function renderSpark(points) {
    const svg = $('spark');
    const max = Math.max(1, ...points.map((p) => p[1]));
    const width = 100 / Math.max(points.length, 1);
    const bars = points.map((p, i) => {
      const rect = document.createElementNS('http://www.w3.org/2000/svg', 'rect');
      const h = Math.max(0.5, (p[1] / max) * 24);
      rect.setAttribute('x', String(i * width + width * 0.1));
      rect.setAttribute('width', String(width * 0.8));
      rect.setAttribute('y', String(24 - h));
      rect.setAttribute('height', String(h));
      const title = document.createElementNS('http://www.w3.org/2000/svg', 'title');
      title.textContent = `${new Date(p[0]).toLocaleTimeString()}: ${p[1]} requests`;
      rect.append(title);
      return rect;
    });
    svg.replaceChildren(...bars);
  }

  function renderSeries(series, overview) {
    const notice = $('notice');
    const local = overview.body && overview.body.local;
    const now = Date.now();
    if (series.ok && series.body) {
      notice.hidden = true;
      $('spark').classList.remove('stale');
      const s = series.body.series;
      text('request-rate', rate(s.requests.rate));
      text(
        'request-rate-sub',
        `req/s, all instances, last ${WINDOW_MINUTES} min · ${number(s.requests.sum, 0)} requests`,
      );
      renderSpark(s.requests.points);
      const hits = s.cache_hits ? s.cache_hits.sum : 0;
      const misses = s.cache_misses ? s.cache_misses.sum : 0;
      if (hits + misses > 0) {
        text('hit-rate', `${number((100 * hits) / (hits + misses), 1)} %`);
        text(
          'hit-rate-sub',
          `${number(hits, 0)} hits · ${number(misses, 0)} misses, last ${WINDOW_MINUTES} min`,
        );
      } else {
        text('hit-rate', '–');
        text('hit-rate-sub', `no cache lookups in the last ${WINDOW_MINUTES} min`);
      }
      const rejected = s.limiter_rejections ? s.limiter_rejections.sum : 0;
      text('rejections', number(rejected, 0));
      text(
        'rejections-sub',
        `last ${WINDOW_MINUTES} min · ${number(rejected / WINDOW_MINUTES, 1)}/min, all instances`,
      );
      text(
        'instances',
        `${series.body.instances} instance${series.body.instances === 1 ? '' : 's'} reporting`,
      );
    } else {
      // Redis is down (503) or the series are off: say so, and show this instance's own counts instead.
      notice.hidden = false;
      notice.textContent =
        series.status === 503
          ? 'Cluster-wide series unavailable: Redis is not reachable. Showing this instance only.'
          : 'Cluster-wide series unavailable. Showing this instance only.';
      $('spark').classList.add('stale');
      if (local && previousLocal) {
        const seconds = Math.max(0.001, (now - previousLocal.t) / 1000);
        text('request-rate', rate(Math.max(0, local.requests - previousLocal.requests) / seconds));
      }
      text('request-rate-sub', 'req/s, this instance only');
      if (local) {
        const hits = local.cache_hits || 0;
        const misses = local.cache_misses || 0;
        text('hit-rate', hits + misses > 0 ? `${number((100 * hits) / (hits + misses), 1)} %` : '–');
        text(
          'hit-rate-sub',
          `this instance since start · ${number(hits, 0)} hits · ${number(misses, 0)} misses`,
        );
        text('rejections', number(local.limiter_rejections || 0, 0));
        text('rejections-sub', 'this instance since start');
      }
      text('instances', 'instances unknown');
    }
    if (local) previousLocal = { t: now, requests: local.requests };
  }

  function renderMemory(overview) {
    const body = overview.body;
    if (!body) return;
    const clients = Object.entries(body.redis || {});
    const main = clients.find(([name]) => name === 'default') || clients[0];
    if (main && main[1].usedBytes !== null) {
      text('memory', bytes(main[1].usedBytes));
      const max = main[1].maxBytes ? `of ${bytes(main[1].maxBytes)} maxmemory` : 'no maxmemory';
      const age = Date.now() - main[1].sampledAt;
      const when = age > 15_000 ? ` (as of ${new Date(main[1].sampledAt).toLocaleTimeString()})` : '';
      text('memory-sub', `Redis ${main[0]}${when}, ${max} · gateway RSS ${bytes(body.process.rssBytes)}`);
    } else {
      text('memory', bytes(body.process.rssBytes));
      text('memory-sub', 'gateway RSS (Redis memory not sampled yet)');
    }
    text('service', body.service);
    text('instance', body.instance);
  }

  // Counts per state of the export queue and its dead-letter queue size (GET /jobs).
  function renderJobs(jobs) {
    const c = jobs.body && jobs.body.counts;
    if (!c) {
      text('jobs', '–');
      text('jobs-sub', 'job queue unavailable');
      return;
    }
    text('jobs', `${c.waiting + c.prioritized + c.delayed} queued · ${c.active} active`);
    text(
      'jobs-sub',
      `${c.completed} completed · ${c.failed} failed · dead-letter queue ${c['dead-lettered']}`,
    );
  }

  async function refresh() {
    const [ready, overview, series, jobs] = await Promise.all([
      getJson('/health/ready'),
      getJson('/stats/overview'),
      getJson(`/stats/series?minutes=${WINDOW_MINUTES}`),
      getJson('/jobs'),
    ]);
    renderJobs(jobs);
    renderStatus(ready);
    renderClients(ready, overview);
    renderMemory(overview);
    renderSeries(series, overview);
    text('updated', new Date().toLocaleTimeString());
    document.body.dataset.refreshed = String(Date.now());
  }

  async function loop() {
    try {
      await refresh();
    } catch (err) {
      $('notice').hidden = false;
      $('notice').textContent = `Dashboard error: ${err && err.message ? err.message : err}`;
    }
    setTimeout(loop, REFRESH_MS);
  }

  void loop();
})();

// Live event feed: one board's events over the /live WebSocket (socket.io, served by the gateway at
// /socket.io/socket.io.min.js), newest first. After a reconnect it subscribes again with the last event id it
// saw, so nothing is missed; `resync-required` (the gap is older than retention) is shown as a notice.
(() => {
  const MAX_ITEMS = 50;
  const feed = document.getElementById('live-feed');
  const status = document.getElementById('live-status');
  if (!feed || !status) return;
  const setStatus = (value, label) => {
    status.dataset.status = value;
    status.textContent = label;
  };
  const io = globalThis.io;
  if (typeof io !== 'function') {
    setStatus('unavailable', 'no socket.io client');
    return;
  }
  const requested = Number(new globalThis.URLSearchParams(globalThis.location.search).get('board'));
  const channel = `board:${Number.isInteger(requested) && requested >= 1 && requested <= 1000 ? requested : 1}`;
  document.getElementById('live-channel').textContent = channel;
  let lastEventId;

  function add(text, kind) {
    const item = document.createElement('li');
    item.dataset.kind = kind;
    item.textContent = `${new Date().toLocaleTimeString()} ${text}`;
    feed.prepend(item);
    while (feed.children.length > MAX_ITEMS) feed.lastElementChild.remove();
  }

  const socket = io('/live', { transports: ['websocket'] });
  socket.on('connect', () => {
    socket.emit('subscribe', { channel, ...(lastEventId ? { lastEventId } : {}) }, (reply) => {
      if (reply && reply.ok) setStatus('ok', 'live');
      else setStatus('unavailable', `refused: ${reply && reply.error}`);
    });
  });
  socket.on('disconnect', () => setStatus('degraded', 'reconnecting'));
  socket.on('connect_error', () => setStatus('unavailable', 'offline'));
  socket.on('degraded', () => setStatus('degraded', 'degraded'));
  socket.on('recovered', () => setStatus('ok', 'live'));
  socket.on('resync-required', (notice) => add(`resync required (${notice.reason})`, 'resync'));
  socket.on('event', (event) => {
    lastEventId = event.id;
    const card = event.data && event.data.card;
    add(card ? `${event.type}: ${card.title}` : event.type, 'event');
  });
})();
