export { CacheModule } from './cache.module';
export { CacheService, type CacheOutcome } from './cache.service';
export { CacheInterceptor } from './cache.interceptor';
export { Cacheable, CacheEvict, CachePut } from './cache.decorators';
export { CacheValueTooLargeError, CacheSerializationError, CacheConfigError } from './cache.errors';
export { CACHE_MODULE_OPTIONS } from './cache.module-definition';
export { serialize, deserialize, type CachedResponse } from './cache-serializer';
export { escapeGlob } from './cache-keys';
export type * from './cache.interfaces';
