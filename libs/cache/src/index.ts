export { CacheModule } from './cache.module';
export { CacheService } from './cache.service';
export { CacheInterceptor } from './cache.interceptor';
export { Cacheable, CacheEvict, CachePut } from './cache.decorators';
export { CacheValueTooLargeError, CacheSerializationError, CacheConfigError } from './cache.errors';
export { serialize, deserialize, type CachedResponse } from './cache-serializer';
export { escapeGlob } from './cache-keys';
export type { ResolvedHttpConfig as CacheHttpSettings } from './cache.config';
export type {
  CacheArgsFn,
  CacheCompressionOptions,
  CacheEarlyRefreshOptions,
  CacheEntryInput,
  CacheEvictInput,
  CacheEvictOptions,
  CacheHttpOptions,
  CacheL1Options,
  CacheL1Stats,
  CacheLockOptions,
  CacheLookup,
  CacheModuleOptions,
  CacheOutcome,
  CacheProfileOptions,
  CacheProfileStats,
  CachePutOptions,
  CacheReadOptions,
  CacheRecommendation,
  CacheRedisNodeStats,
  CacheRedisStats,
  CacheSetOptions,
  CacheStats,
  CacheableOptions,
  GetOrSetOptions,
  ResolveOptions,
} from './cache.interfaces';
