export { RateLimitModule } from './rate-limit.module';
export { RateLimitService } from './rate-limit.service';
export { RateLimitGuard } from './rate-limit.guard';
export { RateLimit, SkipRateLimit } from './rate-limit.decorator';
export {
  RateLimitConfigError,
  RateLimitExceededException,
  RateLimitUnavailableException,
  type RateLimitResponseBody,
} from './rate-limit.errors';
export { clientIpKey, normalizeIp, type ClientIpOptions, type ClientIpSource } from './client-ip';
export { RATE_LIMIT_MODULE_OPTIONS } from './rate-limit.module-definition';
export { consumeSlidingWindowScript } from './scripts/consume-sliding-window.script';
export { consumeTokenBucketScript } from './scripts/consume-token-bucket.script';
export type * from './rate-limit.interfaces';
