export { startRedis, freePort, HOST, type BenchRedis } from './redis-server';
export { runFor, type RunOptions, type RunResult } from './runner';
export {
  compare,
  formatSummaryTable,
  median,
  type CompareOptions,
  type ComparisonSummary,
  type Contender,
} from './compare';
export { benchSettings, variantSelected, type BenchSettings } from './options';
export { benchMain } from './main';
