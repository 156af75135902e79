// What every scenario may use. The modules that load more than Node built-ins are imported directly:
// http.ts (autocannon; the load-generator end of HTTP benches), server.ts (their server-process end),
// redis-module.ts (@redwing/redis, ioredis), metrics-registry.ts (@redwing/metrics), nest-context.ts (Nest).
export { startRedis, withRedis, freePort, HOST, type BenchRedis } from './redis-server';
export { runFor, type RunOptions, type RunResult } from './runner';
export { compare, type CompareOptions, type Contender } from './compare';
export {
  runComparison,
  meetsGoal,
  type Comparison,
  type ComparisonHead,
  type ComparisonSummary,
  type Side,
  type SideStats,
} from './comparison';
export { formatSummaryTable, printJsonLine } from './output';
export { median, spread, round2, type Spread } from './stats';
export { benchSettings, selectedVariants, variantSelected, type BenchSettings } from './options';
export { benchMain, benchVariants } from './main';
