export { RateLimitModule } from './rate-limit.module';
export { RateLimitService } from './rate-limit.service';
export { RateLimitGuard } from './rate-limit.guard';
export { RateLimit, SkipRateLimit } from './rate-limit.decorator';
export {
  RateLimitConfigError,
  RateLimitScriptError,
  RateLimitExceededException,
  RateLimitUnavailableException,
  type RateLimitResponseBody,
} from './rate-limit.errors';
export { clientIpKey, normalizeIp, type ClientIpOptions, type ClientIpSource } from './client-ip';
export type {
  RateLimitAlgorithm,
  RateLimitCounting,
  RateLimitKey,
  RateLimitLimit,
  RateLimitOptions,
  RateLimitModuleOptions,
  RateLimitMode,
  RateLimitState,
  RateLimitDecision,
  RateLimitCallOptions,
  RateLimitConsumeOptions,
  RateLimitStats,
} from './rate-limit.interfaces';
