// The public API of every lib is pinned in api/<lib>.api.md (scripts/api-report.js, TypeScript compiler
// API). An export added, removed or changed in kind — or a public class member — fails here until the
// report is regenerated with `npm run api:update` and the diff is reviewed.
import { computeReports, differences, type ApiReport } from '../scripts/api-report';

type Reports = Map<string, ApiReport>;

describe('public API report (api/<lib>.api.md)', () => {
  let reports: Reports;

  beforeAll(() => {
    reports = computeReports();
  }, 60_000);

  it('covers every lib with a src/index.ts', () => {
    expect(reports.size).toBeGreaterThanOrEqual(4);
    for (const lib of ['redis', 'cache', 'rate-limit', 'metrics']) expect(reports.has(lib)).toBe(true);
  });

  it('matches the checked-in reports', () => {
    const diffs = differences(reports);
    const message = diffs
      .map((d) => {
        if (d.expected === undefined)
          return `${d.lib}: api/${d.lib}.api.md has no lib with a src/index.ts any more`;
        if (d.actual === undefined) return `${d.lib}: api/${d.lib}.api.md is missing`;
        const want = new Set(d.expected.split('\n'));
        const have = new Set(d.actual.split('\n'));
        const added = [...want].filter((l) => !have.has(l)).map((l) => `  + ${l.trim()}`);
        const removed = [...have].filter((l) => !want.has(l)).map((l) => `  - ${l.trim()}`);
        return [`${d.lib}: the public API changed`, ...added, ...removed].join('\n');
      })
      .join('\n');
    if (diffs.length) {
      throw new Error(
        `${message}\n\nIf the change is intended, run \`npm run api:update\` and commit the api/*.api.md diff.`,
      );
    }
  });

  it('exports no *_MODULE_OPTIONS token and no @internal declaration', () => {
    const leaks: string[] = [];
    for (const [lib, r] of reports) {
      for (const n of r.names) {
        if (n.name.endsWith('_MODULE_OPTIONS')) leaks.push(`${lib}: ${n.name} (module options token)`);
        if (n.internal) leaks.push(`${lib}: ${n.name} (marked @internal, stripped from the .d.ts)`);
      }
    }
    expect(leaks).toEqual([]);
  });
});
