// The operators' side of the observability profile, checked without Docker:
// - config/prometheus/rules/*.yml pass `promtool check rules`, and the unit tests in config/prometheus/tests/
//   pass `promtool test rules` (every alert has a case that fires it);
// - every metric the rules and the Grafana board (config/grafana/dashboards/*.json) query is one the code
//   really exports: a `redwing_*` metric defined in libs/*/src or apps/*/src, a prom-client default metric,
//   or a recording rule of the rule files;
// - the board's PromQL parses (promtool, as recording rules) and its provisioning matches docker-compose.yml.
// promtool comes from the Debian/Ubuntu package `prometheus` (.ci/run installs it).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { parse, stringify } from 'yaml';

const ROOT = resolve(__dirname, '..');
const RULES_DIR = join(ROOT, 'config', 'prometheus', 'rules');
const TESTS_DIR = join(ROOT, 'config', 'prometheus', 'tests');
const DASHBOARDS_DIR = join(ROOT, 'config', 'grafana', 'dashboards');
const read = (file: string) => readFileSync(file, 'utf8');

interface Rule {
  record?: string;
  alert?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface RuleFile {
  groups: Array<{ name: string; rules: Rule[] }>;
}
interface Target {
  expr: string;
  refId: string;
  datasource?: { uid: string };
}
interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { h: number; w: number; x: number; y: number };
  datasource?: { type: string; uid: string };
  targets?: Target[];
}
interface Dashboard {
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: Array<{ name: string; query: { query: string } | string }> };
}

const ruleFiles = readdirSync(RULES_DIR)
  .filter((f) => /\.ya?ml$/.test(f))
  .map((f) => join(RULES_DIR, f));
const rules = ruleFiles.flatMap((f) => (parse(read(f)) as RuleFile).groups.flatMap((g) => g.rules));
const recorded = new Set(rules.flatMap((r) => r.record ?? []));
const dashboards = readdirSync(DASHBOARDS_DIR)
  .filter((f) => f.endsWith('.json'))
  .map((f) => ({ file: f, board: JSON.parse(read(join(DASHBOARDS_DIR, f))) as Dashboard }));

/** promtool, or a test failure that says how to get it (never a silent skip). */
function promtool(args: string[], cwd = ROOT) {
  const r = spawnSync('promtool', args, { cwd, encoding: 'utf8', timeout: 60_000 });
  if (r.error && (r.error as NodeJS.ErrnoException).code === 'ENOENT') {
    throw new Error(
      'promtool is not installed: install the Debian/Ubuntu package `prometheus` (apt-get install prometheus; ' +
        ".ci/run does it) or put a Prometheus release's promtool on PATH",
    );
  }
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sourceFiles(p));
    else if (name.endsWith('.ts') && !/[.-]spec\.ts$/.test(name)) out.push(p);
  }
  return out;
}

/**
 * Every `redwing_*` metric the code defines: `name: 'redwing_…'` in a counter/gauge/histogram definition,
 * `counter('redwing_…', …)` helpers, and name tables (`commandDuration: 'redwing_…',`) such as REDIS_METRICS.
 * Comment lines are ignored (JSDoc examples are not definitions).
 */
function definedRedwingMetrics(): Set<string> {
  const names = new Set<string>();
  const dirs = [
    ...readdirSync(join(ROOT, 'libs')).map((l) => join(ROOT, 'libs', l, 'src')),
    ...readdirSync(join(ROOT, 'apps')).map((a) => join(ROOT, 'apps', a, 'src')),
  ].filter((d) => {
    try {
      return statSync(d).isDirectory();
    } catch {
      return false;
    }
  });
  const patterns = [
    /\bname:\s*'(redwing_[a-z0-9_]+)'/g,
    /\b(?:counter|gauge|histogram)\(\s*'(redwing_[a-z0-9_]+)'/g,
    /^\s*[a-zA-Z]\w*:\s*'(redwing_[a-z0-9_]+)',?\s*$/gm,
  ];
  for (const file of dirs.flatMap(sourceFiles)) {
    const code = read(file)
      .split('\n')
      .filter((l) => !/^\s*(\*|\/\/|\/\*)/.test(l))
      .join('\n');
    for (const re of patterns) for (const m of code.matchAll(re)) names.add(m[1]);
  }
  return names;
}

/** prom-client's default metrics (MetricsModule's `defaultMetrics`), with the series names of histograms. */
async function defaultMetrics(): Promise<Set<string>> {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const names = new Set<string>();
  for (const m of await registry.getMetricsAsJSON()) {
    names.add(m.name);
    if (String(m.type) === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(m.name + s);
  }
  registry.clear();
  return names;
}

const KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'inf', 'nan', 'Inf', 'NaN']);

/** The metric names a PromQL expression selects (functions, keywords, labels, strings and numbers removed). */
export function selectedMetrics(expr: string): string[] {
  const s = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\boffset\s+-?[0-9a-z]+/g, ' ')
    .replace(/(?<![\w:$])\d+(?:\.\d+)?(?:e[+-]?\d+)?/gi, ' ');
  const names: string[] = [];
  for (const m of s.matchAll(/(?<![\w$])[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const rest = s.slice(m.index + m[0].length).trimStart();
    if (rest.startsWith('(') || KEYWORDS.has(m[0])) continue;
    names.push(m[0]);
  }
  return names;
}

let known: Set<string>;
const isKnown = (name: string) => {
  if (known.has(name) || recorded.has(name)) return true;
  // Histogram series of a redwing_*_seconds histogram.
  const base = name.replace(/_(bucket|sum|count)$/, '');
  return base !== name && base.endsWith('_seconds') && known.has(base);
};

beforeAll(async () => {
  known = new Set([...definedRedwingMetrics(), ...(await defaultMetrics())]);
});

describe('metric names the code exports', () => {
  it('finds the metrics of every lib (the check below is only as good as this list)', () => {
    for (const name of [
      'redwing_http_request_duration_seconds',
      'redwing_redis_breaker_state',
      'redwing_redis_memory_max_bytes',
      'redwing_redis_fallbacks_total',
      'redwing_cache_hits_total',
      'redwing_ratelimit_fallback_state',
      'redwing_session_rejected_total',
      'redwing_pubsub_dropped_total',
      'redwing_lock_lost_total',
      'redwing_job_queue_jobs_current',
      'redwing_live_sockets_current',
      'process_cpu_seconds_total',
      'nodejs_heap_size_used_bytes',
    ]) {
      expect({ name, known: known.has(name) }).toEqual({ name, known: true });
    }
  });

  it('extracts only metric names from PromQL, and refuses a misspelt one', () => {
    expect(
      selectedMetrics(
        'histogram_quantile(0.99, sum by (le, route) (rate(redwing_http_request_duration_seconds_bucket{job=~"$job"}[$__rate_interval])))',
      ),
    ).toEqual(['redwing_http_request_duration_seconds_bucket']);
    expect(
      selectedMetrics(
        'max by (client) (a_b) / max(c_d > 0) or vector(0) and on (x) e:f:g offset 5m unless 1e3 > bool 2',
      ),
    ).toEqual(['a_b', 'c_d', 'e:f:g']);
    expect(selectedMetrics('sum(rate(redwing_cache_hit_total[5m]))').filter((n) => !isKnown(n))).toEqual([
      'redwing_cache_hit_total',
    ]);
  });
});

describe('Prometheus rules (config/prometheus/rules)', () => {
  it('pass promtool check rules', () => {
    expect(ruleFiles.length).toBeGreaterThan(0);
    const r = promtool(['check', 'rules', ...ruleFiles]);
    expect({ status: r.status, output: r.output }).toEqual({
      status: 0,
      output: expect.stringContaining('SUCCESS'),
    });
  });

  it('pass their unit tests (promtool test rules config/prometheus/tests/*.yml)', () => {
    const tests = readdirSync(TESTS_DIR).filter((f) => /\.ya?ml$/.test(f));
    expect(tests.length).toBeGreaterThan(0);
    const r = promtool(['test', 'rules', ...tests], TESTS_DIR);
    expect({ status: r.status, output: r.output }).toEqual({
      status: 0,
      output: expect.stringContaining('SUCCESS'),
    });
  });

  it('cover the alerts the operators asked for, each with a severity and a summary', () => {
    const alerts = rules.filter((r) => r.alert);
    for (const name of [
      'RedwingRedisBreakerOpen',
      'RedwingRedisFallbackActive',
      'RedwingCacheHitRateLow',
      'RedwingRateLimitStoreOutage',
      'RedwingRedisMemoryHigh',
      'RedwingLockLeaseLost',
      'RedwingJobQueueDeadLetterGrowing',
      'RedwingJobQueueStalledJobs',
      'RedwingPubSubEventsDropped',
      'RedwingSessionTamperSpike',
    ]) {
      expect(alerts.map((a) => a.alert)).toContain(name);
    }
    for (const a of alerts) {
      expect({ alert: a.alert, severity: a.labels?.severity }).toEqual({
        alert: a.alert,
        severity: expect.stringMatching(/^(critical|warning|info)$/),
      });
      expect(a.annotations?.summary).toBeTruthy();
    }
    expect(rules.find((r) => r.alert === 'RedwingCacheHitRateLow')?.expr).toContain('< 0.7');
    expect(rules.find((r) => r.alert === 'RedwingRedisMemoryHigh')?.expr).toContain('> 0.8');
  });

  it('have a unit test case in which each alert fires', () => {
    const fired = new Set<string>();
    for (const f of readdirSync(TESTS_DIR).filter((n) => /\.ya?ml$/.test(n))) {
      const doc = parse(read(join(TESTS_DIR, f))) as {
        tests: Array<{ alert_rule_test?: Array<{ alertname: string; exp_alerts?: unknown[] }> }>;
      };
      for (const t of doc.tests)
        for (const a of t.alert_rule_test ?? []) if (a.exp_alerts?.length) fired.add(a.alertname);
    }
    const untested = rules.flatMap((r) => (r.alert && !fired.has(r.alert) ? [r.alert] : []));
    expect(untested).toEqual([]);
  });

  it('query only metrics the libs export (or recording rules defined here)', () => {
    const unknown: string[] = [];
    for (const r of rules) {
      const names = selectedMetrics(r.expr);
      expect({ rule: r.record ?? r.alert, selects: names.length > 0 }).toEqual({
        rule: r.record ?? r.alert,
        selects: true,
      });
      for (const n of names) if (!isKnown(n)) unknown.push(`${r.record ?? r.alert}: ${n}`);
    }
    expect(unknown).toEqual([]);
  });
});

describe('Grafana board (config/grafana/dashboards)', () => {
  const provisioning = join(ROOT, 'config', 'grafana', 'provisioning');
  const datasources = parse(read(join(provisioning, 'datasources', 'prometheus.yml'))) as {
    datasources: Array<{ uid: string; type: string; url: string }>;
  };
  const providers = parse(read(join(provisioning, 'dashboards', 'redwing.yml'))) as {
    providers: Array<{ type: string; options: { path: string } }>;
  };
  const compose = parse(read(join(ROOT, 'docker-compose.yml'))) as {
    services: Record<string, { volumes?: string[]; ports?: string[]; profiles?: string[] }>;
  };

  it('has a board with panels', () => {
    expect(dashboards.map((d) => d.file)).toContain('redwing.json');
    for (const { board } of dashboards) {
      expect(board.uid).toMatch(/^[a-z0-9-]+$/);
      expect(board.panels.filter((p) => p.type !== 'row').length).toBeGreaterThan(10);
    }
  });

  it('queries only metrics the libs export, through the provisioned Prometheus datasource', () => {
    const uid = datasources.datasources[0].uid;
    const unknown: string[] = [];
    for (const { file, board } of dashboards) {
      const ids = board.panels.map((p) => p.id);
      expect(new Set(ids).size).toBe(ids.length);
      for (const panel of board.panels.filter((p) => p.type !== 'row')) {
        expect({ panel: panel.title, uid: panel.datasource?.uid }).toEqual({ panel: panel.title, uid });
        expect(panel.gridPos.x + panel.gridPos.w).toBeLessThanOrEqual(24);
        expect({ panel: panel.title, targets: (panel.targets ?? []).length > 0 }).toEqual({
          panel: panel.title,
          targets: true,
        });
        for (const t of panel.targets ?? []) {
          const names = selectedMetrics(t.expr);
          expect({ panel: panel.title, ref: t.refId, selects: names.length > 0 }).toEqual({
            panel: panel.title,
            ref: t.refId,
            selects: true,
          });
          for (const n of names) if (!isKnown(n)) unknown.push(`${file} "${panel.title}" ${t.refId}: ${n}`);
        }
      }
      for (const v of board.templating.list) {
        const q = typeof v.query === 'string' ? v.query : v.query.query;
        const metric = /label_values\(\s*([a-zA-Z_:][\w:]*)/.exec(q)?.[1];
        if (metric && !isKnown(metric)) unknown.push(`${file} variable ${v.name}: ${metric}`);
      }
    }
    expect(unknown).toEqual([]);
  });

  it('holds PromQL that Prometheus parses (promtool check rules on the panel queries)', () => {
    const exprs = dashboards.flatMap(({ board }) =>
      board.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr)),
    );
    // Grafana's variables, replaced by what they expand to.
    const promql = exprs.map((e) =>
      e.replace(/\$__rate_interval|\$__interval|\$__range/g, '5m').replace(/\$\{?(job|instance)\}?/g, '.+'),
    );
    const dir = mkdtempSync(join(tmpdir(), 'redwing-board-'));
    try {
      const file = join(dir, 'board.rules.yml');
      const groups = [
        { name: 'board', rules: promql.map((expr, i) => ({ record: `board:panel_${i}`, expr })) },
      ];
      writeFileSync(file, stringify({ groups }));
      const r = promtool(['check', 'rules', file]);
      expect({ status: r.status, output: r.output }).toEqual({
        status: 0,
        output: expect.stringContaining(`SUCCESS: ${promql.length} rules found`),
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('is provisioned by the compose observability profile: datasource, board folder, port on 127.0.0.1', () => {
    const grafana = compose.services.grafana;
    expect(grafana.profiles).toEqual(['observability']);
    expect(grafana.ports).toEqual(['127.0.0.1:3001:3000']);
    const mount = (source: string) =>
      grafana.volumes?.find((v) => v.startsWith(`./${source}:`))?.split(':')[1] ?? '(not mounted)';
    expect(mount('config/grafana/provisioning')).toBe('/etc/grafana/provisioning');
    expect(providers.providers.map((p) => [p.type, p.options.path])).toEqual([
      ['file', mount('config/grafana/dashboards')],
    ]);
    expect(datasources.datasources).toEqual([
      expect.objectContaining({ type: 'prometheus', uid: 'prometheus', url: 'http://prometheus:9090' }),
    ]);
    expect(compose.services).toHaveProperty('prometheus');
  });
});
