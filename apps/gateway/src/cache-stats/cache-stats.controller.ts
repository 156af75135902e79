import { Controller, Get } from '@nestjs/common';
import { CacheService, type CacheStats } from '@redwing/cache';

/** `GET /cache/stats`: hit rate, L1 size, Redis memory and eviction policy, namespace keys, recommendations. */
@Controller('cache')
export class CacheStatsController {
  constructor(private readonly cache: CacheService) {}

  @Get('stats')
  stats(): Promise<CacheStats> {
    return this.cache.stats();
  }
}
