import {
  BadRequestException,
  Controller,
  Get,
  Header,
  HttpException,
  HttpStatus,
  Query,
} from '@nestjs/common';
import {
  MAX_QUERY_BUCKETS,
  RedisMetrics,
  SeriesService,
  SeriesUnavailableError,
  type RedisMemory,
  type SeriesQueryResult,
} from '@redwing/metrics';
import { listQuery, singleQuery } from '../http/query-params';

/** Aggregates `GET /stats/series?agg=` can single out. */
const AGGREGATES = ['sum', 'avg', 'rate'] as const;
type Aggregate = (typeof AGGREGATES)[number];

/** Body of `GET /stats/series`: the query result, plus `values` when `agg` was given. */
export type SeriesResponse = SeriesQueryResult & { agg?: Aggregate; values?: Record<string, number> };

/** Body of `GET /stats/overview`: this instance's view, readable whatever the state of Redis. */
export interface OverviewResponse {
  service: string;
  instance: string;
  uptimeMs: number;
  process: { rssBytes: number; heapUsedBytes: number; heapTotalBytes: number };
  /** Memory of each Redis client as last sampled (`null` fields while it has never answered). */
  redis: Record<string, RedisMemory>;
  /** What this instance counted since start, per series. */
  local: Record<string, number>;
  /** Series names the cluster-wide query knows. */
  series: string[];
}

/** Parses an instant: epoch milliseconds or an ISO 8601 date. */
function instant(name: string, value: string | undefined): number | undefined {
  if (value === undefined || value === '') return undefined;
  const n = /^\d+$/.test(value) ? Number(value) : Date.parse(value);
  if (!Number.isFinite(n)) {
    throw new BadRequestException(`${name} must be epoch milliseconds or an ISO 8601 date`);
  }
  return n;
}

/**
 * The cluster-wide series (`GET /stats/series`) and this instance's overview (`GET /stats/overview`),
 * for the dashboard and for anyone who wants numbers without Prometheus.
 */
@Controller('stats')
export class StatsController {
  private readonly startedAt = Date.now();

  constructor(
    private readonly series: SeriesService,
    private readonly redis: RedisMetrics,
  ) {}

  /**
   * Per-minute points and sum / avg / rate of the series, aggregated over every gateway instance.
   * Query: `names` (comma-separated and/or repeated; default all), `from` and `to` (epoch ms or ISO date;
   * default the last `minutes`, 15), `agg` (sum | avg | rate: also return `values` with that aggregate per
   * series). Every parameter but `names` is given at most once.
   * @throws BadRequestException for an unknown name, a bad range or a repeated single-valued parameter;
   *   503 while Redis is unavailable
   */
  @Get('series')
  @Header('Cache-Control', 'no-store')
  async query(
    @Query('names') namesQuery?: unknown,
    @Query('from') fromQuery?: unknown,
    @Query('to') toQuery?: unknown,
    @Query('minutes') minutesQuery?: unknown,
    @Query('agg') aggQuery?: unknown,
  ): Promise<SeriesResponse> {
    const namesParam = listQuery('names', namesQuery);
    const fromParam = singleQuery('from', fromQuery);
    const toParam = singleQuery('to', toQuery);
    const minutesParam = singleQuery('minutes', minutesQuery);
    const aggParam = singleQuery('agg', aggQuery);
    if (!this.series.enabled) {
      throw new HttpException(
        { statusCode: 404, error: 'Not Found', message: 'Series are off (METRICS_SERIES_ENABLED=false).' },
        HttpStatus.NOT_FOUND,
      );
    }
    const known = this.series.seriesNames;
    const names = namesParam?.length ? namesParam : known;
    const unknown = names.filter((n) => !known.includes(n));
    if (unknown.length) {
      throw new BadRequestException(`unknown series: ${unknown.join(', ')}; known: ${known.join(', ')}`);
    }
    let minutes = 15;
    if (minutesParam !== undefined) {
      minutes = /^\d+$/.test(minutesParam) ? Number(minutesParam) : NaN;
      if (!(minutes >= 1 && minutes <= MAX_QUERY_BUCKETS)) {
        throw new BadRequestException(`minutes must be an integer from 1 to ${MAX_QUERY_BUCKETS}`);
      }
    }
    if (aggParam !== undefined && !(AGGREGATES as readonly string[]).includes(aggParam)) {
      throw new BadRequestException(`agg must be one of ${AGGREGATES.join(', ')}`);
    }
    const to = instant('to', toParam) ?? Date.now();
    const from = instant('from', fromParam) ?? to - minutes * 60_000;
    let result: SeriesQueryResult;
    try {
      result = await this.series.query({ from, to, names });
    } catch (err) {
      if (err instanceof SeriesUnavailableError) {
        throw new HttpException(
          { statusCode: 503, error: 'Service Unavailable', message: err.message },
          HttpStatus.SERVICE_UNAVAILABLE,
        );
      }
      if (err instanceof RangeError) throw new BadRequestException(err.message);
      throw err;
    }
    if (!aggParam) return result;
    const agg = aggParam as Aggregate;
    const values = Object.fromEntries(Object.entries(result.series).map(([n, s]) => [n, s[agg]]));
    return { ...result, agg, values };
  }

  /** This instance: process memory, Redis memory per client, local counts. Never waits on a dead Redis. */
  @Get('overview')
  @Header('Cache-Control', 'no-store')
  async overview(): Promise<OverviewResponse> {
    const mem = process.memoryUsage();
    return {
      service: this.series.serviceName,
      instance: this.series.instanceId,
      uptimeMs: Date.now() - this.startedAt,
      process: { rssBytes: mem.rss, heapUsedBytes: mem.heapUsed, heapTotalBytes: mem.heapTotal },
      redis: await this.redis.memory(),
      local: this.series.localTotals(),
      series: this.series.seriesNames,
    };
  }
}
